//! Sending the outbox: `concurrency` lanes per worker, each claiming the job due longest ago
//! (atomically, under a lease), asking again whether the booking still warrants it, marking
//! it `submitting`, handing it to SMTP, and recording the answer. Every attempt of a job uses
//! the same `Message-ID`.

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
use crate::bookings::store::BookingStore;
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

/// What became of one claimed job.
enum Outcome {
    Send(crate::mail::Outgoing),
    Cancel(String),
}

fn lease_from(cfg: &crate::config::EmailsConfig, now: DateTime) -> DateTime {
    DateTime::from_millis(now.timestamp_millis() + cfg.lease_seconds as i64 * 1000)
}

async fn handle(state: &AppState, job: &EmailJob) -> anyhow::Result<()> {
    let store = EmailStore::new(&state.db);
    let owner = job.lease_owner.as_deref().unwrap_or_default();
    if job.attempts > state.config.emails.max_attempts {
        // Claimed again and again without an answer: the workers holding it keep stopping.
        let e = SendError::Invalid("given up: every worker holding it stopped before finishing".into());
        return failed(state, &store, job, owner, &e).await;
    }
    let composed = match job.booking_id {
        Some(_) => booking_outcome(state, job).await?,
        None => compose::account_email(job, state.mailer.domain()).map(Outcome::Send),
    };
    let outcome = match composed {
        Ok(outcome) => outcome,
        Err(e) => return failed(state, &store, job, owner, &SendError::Invalid(format!("{e:#}"))).await,
    };
    let kind = job.kind.as_str();
    let email = match outcome {
        Outcome::Cancel(why) => {
            state.metrics.emails_cancelled.with_label_values(&[kind]).inc();
            store
                .finish(&job.id, owner, JobState::Cancelled, doc! { "lastError": why })
                .await?;
            return Ok(());
        }
        Outcome::Send(email) => email,
    };
    let cfg = &state.config.emails;
    if !store
        .mark_submitting(&job.id, owner, lease_from(cfg, DateTime::now()))
        .await?
    {
        // The lease ran out meanwhile and another worker owns the job now.
        return Ok(());
    }
    // The whole exchange (lettre's timeout bounds each command) ends well inside the lease.
    let limit = std::time::Duration::from_secs(cfg.smtp_timeout_seconds);
    let sent = match tokio::time::timeout(limit, state.mailer.send(&email)).await {
        Ok(sent) => sent,
        Err(_) => Err(SendError::Failed(format!(
            "the SMTP exchange took over {}s",
            limit.as_secs()
        ))),
    };
    match sent {
        Ok(()) => {
            let now = Utc::now();
            store
                .finish(
                    &job.id,
                    owner,
                    JobState::Sent,
                    doc! { "sentAt": DateTime::from_chrono(now) },
                )
                .await?;
            state.metrics.emails_sent.with_label_values(&[kind]).inc();
            if let Some(due) = plan::reminder_time(job) {
                let lag = (now - due).num_milliseconds().max(0) as f64 / 1000.0;
                state.metrics.reminder_lag.observe(lag);
            }
            Ok(())
        }
        Err(e) => failed(state, &store, job, owner, &e).await,
    }
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

/// The booking email to send now (or why it cannot be composed), or why it is no longer
/// warranted; the outer error is a failed read.
async fn booking_outcome(state: &AppState, job: &EmailJob) -> anyhow::Result<anyhow::Result<Outcome>> {
    let cancel = |why: &str| Ok(Ok(Outcome::Cancel(why.to_owned())));
    let Some(booking_id) = job.booking_id else {
        return cancel("no booking");
    };
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
    let (name, organizer) = therapist.map(|t| (t.name, t.email)).unwrap_or_default();
    let context = BookingContext {
        booking: &booking,
        client: &client,
        therapist_name: &name,
        organizer_email: &organizer,
    };
    Ok(compose::booking_email(job, &context, &to, state.mailer.domain()).map(Outcome::Send))
}
