//! Sending the outbox: `concurrency` lanes per worker, each claiming the job due longest ago
//! (atomically, under a lease), asking whether the booking still warrants it and composing it
//! (`prepare`), marking it `submitting`, asking the booking once more, handing it to SMTP and
//! recording the answer (`submit`). Every attempt of a job uses the same `Message-ID`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use chrono::Utc;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime};
use rand::Rng;

use super::arm::max_late;
use super::compose::{self, BookingContext};
use super::model::{backoff, EmailJob, JobState};
use super::plan;
use super::store::EmailStore;
use crate::app::AppState;
use crate::auth::store::AuthStore;
use crate::bookings::model::Booking;
use crate::bookings::store::BookingStore;
use crate::clients::model::Client;
use crate::clients::store::ClientStore;
use crate::db::OwnerScope;
use crate::mail::SendError;

/// Sends due jobs until none is due: one read first (an idle worker writes nothing), one
/// claim, then `concurrency` lanes share a budget of `batch_size` claims; a spent budget starts
/// another round at once. Stops claiming at shutdown (a job in hand is finished). How many jobs
/// it handled.
pub async fn send_due(state: &AppState, owner: &str) -> anyhow::Result<u32> {
    let cfg = &state.config.emails;
    let store = EmailStore::new(&state.db);
    let handled = AtomicU32::new(0);
    // Each claim has a token of its own: a lane of this process that claims a job again
    // after its lease ran out cannot be mistaken for the lane that held it before.
    let claim = || async {
        let now = DateTime::now();
        let token = format!("{owner}:{}", ObjectId::new().to_hex());
        store.claim_next(&token, now, lease_from(cfg, now)).await
    };
    while !state.shutdown.is_cancelled() {
        if !store.any_due(DateTime::now()).await? {
            break;
        }
        let Some(first) = claim().await? else {
            break;
        };
        let budget = AtomicU32::new(cfg.batch_size.saturating_sub(1));
        let dry = AtomicBool::new(false);
        let (budget, dry, handled, claim) = (&budget, &dry, &handled, &claim);
        let lane = |mut next: Option<EmailJob>| async move {
            loop {
                let job = match next.take() {
                    Some(job) => job,
                    None if dry.load(Ordering::SeqCst)
                        || state.shutdown.is_cancelled()
                        || !take_one(budget) =>
                    {
                        break
                    }
                    None => match claim().await {
                        Ok(Some(job)) => job,
                        Ok(None) => {
                            dry.store(true, Ordering::SeqCst);
                            break;
                        }
                        // The other lanes finish what they hold; the next poll tries again.
                        Err(e) => {
                            tracing::warn!(error = %e, "claiming an email job failed");
                            dry.store(true, Ordering::SeqCst);
                            break;
                        }
                    },
                };
                handled.fetch_add(1, Ordering::SeqCst);
                if let Err(e) = handle(state, &job).await {
                    // The lease runs out and the job is claimed again: nothing is lost.
                    tracing::warn!(job = job.id, error = format!("{e:#}"), "email job not settled");
                }
            }
        };
        let mut lanes = vec![lane(Some(first))];
        lanes.extend((1..cfg.concurrency).map(|_| lane(None)));
        futures_util::future::join_all(lanes).await;
        if dry.load(Ordering::SeqCst) {
            break;
        }
    }
    Ok(handled.load(Ordering::SeqCst))
}

fn take_one(budget: &AtomicU32) -> bool {
    budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
        .is_ok()
}

fn lease_from(cfg: &crate::config::EmailsConfig, now: DateTime) -> DateTime {
    DateTime::from_millis(now.timestamp_millis() + cfg.lease_seconds as i64 * 1000)
}

/// What a claimed job comes to before SMTP.
pub enum Prepared {
    /// Send it.
    Ready(Box<Ready>),
    /// No longer warranted, and why.
    Cancel(String),
    /// It cannot be composed (trying again will not help).
    Invalid(String),
}

/// An email ready for SMTP and, for a booking email, what it was composed from.
pub struct Ready {
    pub email: crate::mail::Outgoing,
    source: Option<Source>,
}

/// What a booking email was composed from: asked again right before SMTP.
struct Source {
    booking: Booking,
    client: Client,
    therapist: (String, String),
    to: String,
}

impl Source {
    fn compose(&self, job: &EmailJob, domain: &str) -> Prepared {
        let context = BookingContext {
            booking: &self.booking,
            client: &self.client,
            therapist_name: &self.therapist.0,
            organizer_email: &self.therapist.1,
        };
        match compose::booking_email(job, &context, &self.to, domain) {
            Ok(email) => Prepared::Ready(Box::new(Ready { email, source: None })),
            Err(e) => Prepared::Invalid(format!("{e:#}")),
        }
    }
}

async fn handle(state: &AppState, job: &EmailJob) -> anyhow::Result<()> {
    let store = EmailStore::new(&state.db);
    let owner = job.lease_owner.as_deref().unwrap_or_default();
    if job.attempts > state.config.emails.max_attempts {
        // Claimed again and again without an answer: the workers holding it keep stopping.
        let e = SendError::Invalid("given up: every worker holding it stopped before finishing".into());
        return failed(state, &store, job, owner, &e).await;
    }
    match prepare(state, job).await? {
        Prepared::Ready(ready) => submit(state, job, *ready).await,
        Prepared::Cancel(why) => cancel(state, &store, job, owner, why).await,
        Prepared::Invalid(e) => failed(state, &store, job, owner, &SendError::Invalid(e)).await,
    }
}

async fn cancel(
    state: &AppState,
    store: &EmailStore,
    job: &EmailJob,
    owner: &str,
    why: String,
) -> anyhow::Result<()> {
    let kind = job.kind.as_str();
    if store
        .finish(&job.id, owner, JobState::Cancelled, doc! { "lastError": why })
        .await?
    {
        state.metrics.emails_cancelled.with_label_values(&[kind]).inc();
    }
    Ok(())
}

/// Hands a claimed, prepared job to SMTP: records `submitting` (if the claim still holds),
/// asks the booking once more (a change that committed since `prepare` read it: its disarm
/// skips jobs being sent), sends, and records the answer.
pub async fn submit(state: &AppState, job: &EmailJob, ready: Ready) -> anyhow::Result<()> {
    let store = EmailStore::new(&state.db);
    let owner = job.lease_owner.as_deref().unwrap_or_default();
    let cfg = &state.config.emails;
    if !store
        .mark_submitting(&job.id, owner, lease_from(cfg, DateTime::now()))
        .await?
    {
        // The lease ran out meanwhile and another worker owns the job now.
        return Ok(());
    }
    let email = match ready.source {
        None => ready.email,
        Some(mut source) => match recheck(state, job, &mut source).await {
            Ok(None) => ready.email,
            Ok(Some(Prepared::Ready(again))) => again.email,
            Ok(Some(Prepared::Cancel(why))) => return cancel(state, &store, job, owner, why).await,
            Ok(Some(Prepared::Invalid(e))) => {
                return failed(state, &store, job, owner, &SendError::Invalid(e)).await
            }
            // Not sent: tried again after the backoff (not left to expire as `submitting`).
            Err(e) => {
                let e = SendError::Failed(format!("reading the booking again before sending: {e:#}"));
                return failed(state, &store, job, owner, &e).await;
            }
        },
    };
    // The whole exchange (lettre's timeout bounds each command) ends well inside the lease.
    let limit = std::time::Duration::from_secs(cfg.smtp_timeout_seconds);
    let sent = match tokio::time::timeout(limit, state.mailer.send(&email)).await {
        Ok(sent) => sent,
        Err(_) => Err(SendError::Failed(format!(
            "the SMTP exchange took over {}s",
            limit.as_secs()
        ))),
    };
    if let Err(e) = sent {
        return failed(state, &store, job, owner, &e).await;
    }
    let now = Utc::now();
    let recorded = store
        .finish(
            &job.id,
            owner,
            JobState::Sent,
            doc! { "sentAt": DateTime::from_chrono(now) },
        )
        .await?;
    if !recorded {
        // Whoever took the job over recorded it (as sent, unconfirmed): counted by nobody.
        tracing::warn!(
            job = job.id,
            "accepted by SMTP after this worker lost the job's lease; its record is the taker's"
        );
        return Ok(());
    }
    let kind = job.kind.as_str();
    state.metrics.emails_sent.with_label_values(&[kind]).inc();
    if let Some(due) = plan::reminder_time(job) {
        let lag = (now - due).num_milliseconds().max(0) as f64 / 1000.0;
        state.metrics.reminder_lag.observe(lag);
    }
    Ok(())
}

/// Records a failed attempt: due again after the backoff, or `dead` after the last attempt.
async fn failed(
    state: &AppState,
    store: &EmailStore,
    job: &EmailJob,
    owner: &str,
    e: &SendError,
) -> anyhow::Result<()> {
    let cfg = &state.config.emails;
    let kind = job.kind.as_str();
    state.metrics.emails_failed.with_label_values(&[kind]).inc();
    let error = e.to_string();
    if job.attempts >= cfg.max_attempts || matches!(e, SendError::Invalid(_)) {
        tracing::error!(job = job.id, attempts = job.attempts, error, "email dead");
        state.metrics.emails_dead.with_label_values(&[kind]).inc();
        store
            .finish(&job.id, owner, JobState::Dead, doc! { "lastError": error })
            .await?;
        return Ok(());
    }
    let jitter: f64 = rand::thread_rng().gen_range(-1.0..=1.0);
    let wait = backoff(job.attempts, cfg.backoff_base_ms, cfg.backoff_max_ms, jitter);
    let due = DateTime::from_chrono(Utc::now() + wait);
    tracing::warn!(
        job = job.id,
        attempts = job.attempts,
        error,
        "email failed; retrying later"
    );
    store
        .finish(
            &job.id,
            owner,
            JobState::Failed,
            doc! { "dueAt": due, "lastError": error },
        )
        .await?;
    Ok(())
}

/// Whether a claimed job is still warranted and, if so, its email: an account email as
/// stored, a booking email composed from the booking and client as they are now. An error is a
/// failed read.
pub async fn prepare(state: &AppState, job: &EmailJob) -> anyhow::Result<Prepared> {
    let domain = state.mailer.domain();
    let Some(booking_id) = job.booking_id else {
        return Ok(match compose::account_email(job, domain) {
            Ok(email) => Prepared::Ready(Box::new(Ready { email, source: None })),
            Err(e) => Prepared::Invalid(format!("{e:#}")),
        });
    };
    let cancel = |why: &str| Ok(Prepared::Cancel(why.to_owned()));
    let Some(booking) = BookingStore::new(&state.db).get_unscoped(booking_id).await? else {
        return cancel("the booking was deleted");
    };
    let Some(client) = ClientStore::new(&state.db)
        .get(&OwnerScope::of(booking.therapist_id), booking.client_id)
        .await?
    else {
        return cancel("the client record was deleted");
    };
    let hours = &client.preferences.reminder_hours;
    let late = max_late(&state.config.emails);
    if let Some(why) = plan::unwarranted(job, &booking, hours, Utc::now(), late) {
        return cancel(why);
    }
    if !client.preferences.email_notifications {
        return cancel("the client turned email notifications off");
    }
    let Some(to) = client.email.clone().filter(|e| !e.is_empty()) else {
        return cancel("the client has no email address");
    };
    let therapist = AuthStore::new(&state.db).user_by_id(booking.therapist_id).await?;
    let source = Source {
        booking,
        client,
        therapist: therapist.map(|t| (t.name, t.email)).unwrap_or_default(),
        to,
    };
    Ok(match source.compose(job, domain) {
        Prepared::Ready(mut ready) => {
            ready.source = Some(source);
            Prepared::Ready(ready)
        }
        other => other,
    })
}

/// The booking read again right before SMTP: `None` when it did not change, else the job
/// cancelled if the booking no longer warrants it, or composed again (its client as `prepare`
/// read it).
async fn recheck(state: &AppState, job: &EmailJob, source: &mut Source) -> anyhow::Result<Option<Prepared>> {
    let Some(booking) = BookingStore::new(&state.db)
        .get_unscoped(source.booking.id)
        .await?
    else {
        return Ok(Some(Prepared::Cancel("the booking was deleted".into())));
    };
    let hours = &source.client.preferences.reminder_hours;
    let late = max_late(&state.config.emails);
    if let Some(why) = plan::unwarranted(job, &booking, hours, Utc::now(), late) {
        return Ok(Some(Prepared::Cancel(why.to_owned())));
    }
    if booking.version == source.booking.version {
        return Ok(None);
    }
    source.booking = booking;
    Ok(Some(source.compose(job, state.mailer.domain())))
}
