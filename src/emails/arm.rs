//! Arming the outbox. A booking change adds, in the same document write, which email it asks
//! for (`pendingEmails`); right after, this subscriber writes the jobs (the notice and the
//! reminders the booking now warrants, disarming the rest) and clears the request. A client's
//! change of address or preferences leaves a request on the client record the same way
//! (`remindersRequested`), armed over their upcoming bookings. A process that dies in between
//! leaves the request, and the reconciler (run by every worker) arms it later: no change's
//! emails are lost, and deterministic job ids make arming twice harmless. Account emails
//! (reset, invitation, verification) are armed by the request that asks for them
//! (`EmailQueue`): it fails when their job cannot be stored.

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
use crate::events::{BookingChange, ClientChange, EmailKind, EmailQueue, EmailRequested, Event, Subscriber};

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
                    if let Err(err) = client_changed(&self.db, e.therapist, e.client, self.max_late).await {
                        // The client keeps its request: the reconciler arms it. Meanwhile what
                        // the change removed is still dropped when due (sending asks again).
                        tracing::warn!(
                            client = %e.client,
                            error = format!("{err:#}"),
                            "reminders wanted by a client's change not armed yet; the reconciler arms them after emails.reconcile_after_seconds"
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

    fn ever_queued(&self, kind: EmailKind, about: ObjectId) -> BoxFuture<'_, mongodb::error::Result<bool>> {
        Box::pin(async move {
            EmailStore::new(&self.db)
                .ever_queued(account_kind(kind), about)
                .await
        })
    }
}

/// Changes that add to `pendingEmails` (the rest leave emails as they are).
fn asks_for_email(kind: BookingChange) -> bool {
    !matches!(
        kind,
        BookingChange::Updated | BookingChange::Paid | BookingChange::Deleted
    )
}

/// A client's change that touched what their emails depend on (address, reminder hours, email
/// preference) left a request on the record, written with the change: their upcoming bookings'
/// reminders follow it, then the request is cleared (unless a later change replaced it, whose
/// own arming clears that one). Sending asks again anyway; this arms newly wanted reminders and
/// disarms the rest. The request is read before the client is (each booking's sync reads the
/// client), so a change that landed before it was read is always what gets armed.
/// Whether there was a request to arm.
async fn client_changed(
    db: &Db,
    therapist: ObjectId,
    client: ObjectId,
    max_late: chrono::Duration,
) -> anyhow::Result<bool> {
    let scope = OwnerScope::of(therapist);
    let clients = ClientStore::new(db);
    let Some(token) = clients.reminders_request(&scope, client).await? else {
        return Ok(false);
    };
    let bookings = BookingStore::new(db);
    let mut after = None;
    loop {
        let page = bookings
            .upcoming_of_client(&scope, client, after, UPCOMING_PAGE)
            .await?;
        for b in &page {
            sync_booking(db, b, max_late).await?;
        }
        match page.last() {
            Some(last) if page.len() as i64 == UPCOMING_PAGE => after = Some(last.starts_at),
            _ => break,
        }
    }
    clients.clear_reminders_request(&scope, client, token).await?;
    Ok(true)
}

/// Upcoming bookings of one client read at a time while re-arming them.
const UPCOMING_PAGE: i64 = 200;

impl Outbox {
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

/// What one reconciler run armed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Bookings whose change's emails were armed.
    pub bookings: usize,
    /// Clients whose change's reminders were armed (over their upcoming bookings).
    pub clients: usize,
}

/// Arms the bookings and clients whose writer stopped before arming what their change asked
/// for (requests older than `after`).
pub async fn reconcile(
    db: &Db,
    after: std::time::Duration,
    max_late: chrono::Duration,
) -> anyhow::Result<Reconciled> {
    let cutoff = DateTime::from_millis(DateTime::now().timestamp_millis() - after.as_millis() as i64);
    let mut done = Reconciled::default();
    // Each scan runs whatever became of the other; a failed one is the run's error.
    let bookings = async {
        for b in &BookingStore::new(db).awaiting_emails(cutoff, 200).await? {
            // One booking that cannot be armed now does not hold up the others.
            match sync_booking(db, b, max_late).await {
                Ok(()) => done.bookings += 1,
                Err(e) => {
                    tracing::warn!(booking = %b.id, error = format!("{e:#}"), "emails not armed; retried next run")
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    let clients = async {
        for (client, therapist) in ClientStore::new(db).awaiting_reminders(cutoff, 200).await? {
            match client_changed(db, therapist, client, max_late).await {
                Ok(armed) => done.clients += usize::from(armed),
                Err(e) => {
                    tracing::warn!(%client, error = format!("{e:#}"), "reminders not armed; retried next run")
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    bookings.and(clients)?;
    Ok(done)
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
    job.about = Some(e.about);
    EmailStore::new(db).arm(&job).await?;
    Ok(())
}
