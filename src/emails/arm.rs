//! Arming the outbox. A booking change adds, in the same document write, which email it asks
//! for (`pendingEmails`); right after, this subscriber writes the jobs (the notice and the
//! reminders the booking now warrants, disarming the rest) and clears the request. A process
//! that dies in between leaves the request on the booking, and the reconciler (run by every
//! worker) arms it later: no change's emails are lost, and deterministic job ids make arming
//! twice harmless. Account emails (reset, invitation, verification) are armed by the request
//! that asks for them (`EmailQueue`): it fails when their job cannot be stored.

use chrono::Utc;
use futures_util::future::BoxFuture;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use sha2::{Digest, Sha256};

use super::model::{EmailJob, JobKind};
use super::plan;
use super::store::EmailStore;
use crate::bookings::model::Booking;
use crate::bookings::store::BookingStore;
use crate::clients::store::ClientStore;
use crate::config::EmailsConfig;
use crate::db::{Db, OwnerScope};
use crate::events::{
    BookingChange, ClientChange, ClientChanged, EmailKind, EmailQueue, EmailRequested, Event, Subscriber,
};

/// The event subscriber that writes email jobs.
pub struct Outbox {
    db: Db,
    max_late: chrono::Duration,
}

impl Outbox {
    pub fn new(db: Db, cfg: &EmailsConfig) -> Self {
        Self {
            db,
            max_late: max_late(cfg),
        }
    }
}

/// How late a reminder may still go out.
pub fn max_late(cfg: &EmailsConfig) -> chrono::Duration {
    chrono::Duration::minutes(cfg.reminder_max_late_minutes as i64)
}

impl Subscriber for Outbox {
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event {
                Event::Booking(e) if asks_for_email(e.kind) => {
                    if let Err(e) = self.bookings_changed(&e.bookings).await {
                        // The booking keeps its `pendingEmails`: the reconciler arms it.
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "booking email jobs not written yet; the reconciler arms them after emails.reconcile_after_seconds"
                        );
                    }
                }
                Event::Client(e) if e.kind == ClientChange::Updated => {
                    if let Err(err) = self.client_changed(e).await {
                        // No request is left on the bookings: what the change removed is still
                        // dropped when due (sending asks again), what it added waits for the
                        // booking's next change.
                        tracing::warn!(
                            client = %e.client,
                            error = format!("{err:#}"),
                            "reminders newly wanted by a client's change not armed; armed at the booking's next change"
                        );
                    }
                }
                _ => {}
            }
        })
    }
}

impl EmailQueue for Outbox {
    fn queue<'a>(&'a self, email: &'a EmailRequested) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(arm_account_email(&self.db, email))
    }
}

/// Changes that add to `pendingEmails` (the rest leave emails as they are).
fn asks_for_email(kind: BookingChange) -> bool {
    !matches!(
        kind,
        BookingChange::Updated | BookingChange::Paid | BookingChange::Deleted
    )
}

impl Outbox {
    /// A client's reminder hours (or email preference) may have changed: their upcoming
    /// bookings' reminders follow. (Sending asks again anyway; this arms newly wanted ones.)
    async fn client_changed(&self, e: &ClientChanged) -> anyhow::Result<()> {
        let upcoming = BookingStore::new(&self.db)
            .upcoming_of_client(&OwnerScope::of(e.therapist), e.client, 200)
            .await?;
        for b in &upcoming {
            sync_booking(&self.db, b, self.max_late).await?;
        }
        Ok(())
    }

    async fn bookings_changed(&self, ids: &[ObjectId]) -> anyhow::Result<()> {
        let store = BookingStore::new(&self.db);
        for id in ids {
            if let Some(b) = store.get_unscoped(*id).await? {
                sync_booking(&self.db, &b, self.max_late).await?;
            }
        }
        Ok(())
    }
}

/// Writes the jobs `booking` warrants (its requested notice, its reminders), disarms those it
/// no longer warrants, and clears its request. Two syncs of one booking may interleave (a slow
/// one holding an older version): each reads the booking again after writing and syncs again
/// when it changed, so the last to finish always wrote what the current version warrants.
pub async fn sync_booking(db: &Db, booking: &Booking, max_late: chrono::Duration) -> anyhow::Result<()> {
    let mut synced = sync_version(db, booking, max_late).await?;
    for _ in 0..5 {
        let Some(now) = BookingStore::new(db).get_unscoped(booking.id).await? else {
            return Ok(());
        };
        let wants = reminder_hours(db, &now).await?;
        if (now.version, &wants) == (synced.0, &synced.1) {
            return Ok(());
        }
        synced = sync_version(db, &now, max_late).await?;
    }
    anyhow::bail!(
        "booking {} keeps changing; its emails are left to the next change",
        booking.id
    )
}

/// The reminder hours of the booking's client, `None` when it cannot be emailed (no record, no
/// email address, or emails turned off): it then gets no jobs, and adding an email later
/// re-arms its upcoming bookings.
async fn reminder_hours(db: &Db, booking: &Booking) -> anyhow::Result<Option<Vec<u32>>> {
    let client = ClientStore::new(db)
        .get(&OwnerScope::of(booking.therapist_id), booking.client_id)
        .await?;
    Ok(client
        .filter(|c| c.preferences.email_notifications && c.email.as_deref().is_some_and(|e| !e.is_empty()))
        .map(|c| c.preferences.reminder_hours))
}

/// One pass of `sync_booking` for the booking as given: the version and client hours it used.
async fn sync_version(
    db: &Db,
    booking: &Booking,
    max_late: chrono::Duration,
) -> anyhow::Result<(i64, Option<Vec<u32>>)> {
    let store = EmailStore::new(db);
    let now = Utc::now();
    let wants = reminder_hours(db, booking).await?;
    let hours = wants.clone().unwrap_or_default();
    // Every notice its changes asked for; an older one a later change made moot (a move
    // then a cancellation) is dropped when its time comes (`plan::unwarranted`).
    if wants.is_some() {
        for (kind, change) in plan::requested_notices(&booking.pending_emails) {
            store.arm(&plan::notice(booking, kind, change, now)).await?;
        }
    }
    let reminders = plan::reminders(booking, &hours, now, max_late);
    for job in &reminders {
        store.arm(job).await?;
    }
    let keep: Vec<String> = reminders.iter().map(|j| j.id.clone()).collect();
    store
        .disarm(
            booking.id,
            &[JobKind::Reminder],
            &keep,
            "no longer warranted by the booking",
        )
        .await?;
    BookingStore::new(db)
        .clear_pending_email(booking.id, booking.version)
        .await?;
    Ok((booking.version, wants))
}

/// Arms the bookings whose writer stopped before arming them (requests older than `after`).
/// How many bookings were armed.
pub async fn reconcile(
    db: &Db,
    after: std::time::Duration,
    max_late: chrono::Duration,
) -> anyhow::Result<usize> {
    let cutoff = DateTime::from_millis(DateTime::now().timestamp_millis() - after.as_millis() as i64);
    let waiting = BookingStore::new(db).awaiting_emails(cutoff, 200).await?;
    let mut armed = 0;
    for b in &waiting {
        // One booking that cannot be armed now does not hold up the others.
        match sync_booking(db, b, max_late).await {
            Ok(()) => armed += 1,
            Err(e) => {
                tracing::warn!(booking = %b.id, error = format!("{e:#}"), "emails not armed; retried next run")
            }
        }
    }
    Ok(armed)
}

fn account_kind(kind: EmailKind) -> JobKind {
    match kind {
        EmailKind::Verification => JobKind::Verification,
        EmailKind::PasswordReset => JobKind::PasswordReset,
        EmailKind::Invitation => JobKind::Invitation,
    }
}

/// Writes an account email's job, due now. Its id digests the recipient and the data (the
/// link's single-use token), so the same request told twice is one job.
async fn arm_account_email(db: &Db, e: &EmailRequested) -> anyhow::Result<()> {
    let kind = account_kind(e.kind);
    let mut digest = Sha256::new();
    digest.update(e.to.as_bytes());
    digest.update(serde_json::to_vec(&e.vars)?);
    let id = format!("{}:{}", kind.as_str(), &hex::encode(digest.finalize())[..32]);
    let mut job = EmailJob::scheduled(id, kind, DateTime::now());
    job.to = Some(e.to.clone());
    job.language = e.language.clone();
    job.vars = Some(mongodb::bson::to_document(&e.vars)?);
    EmailStore::new(db).arm(&job).await?;
    Ok(())
}
