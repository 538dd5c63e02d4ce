//! The outbox's two periodic jobs: sending what is due, and re-arming bookings whose emails
//! were never armed (with settling expired leases and publishing the queue depth).

use std::time::Duration;

use futures_util::future::BoxFuture;
use mongodb::bson::DateTime;

use super::Job;
use crate::app::AppState;
use crate::config::EmailsConfig;
use crate::emails::store::EmailStore;
use crate::emails::{arm, send};

/// Sends due emails: every lane claims, checks, sends and records one job at a time.
pub struct SendEmails {
    /// This process's lease owner name (unique per run).
    owner: String,
    poll: Duration,
}

impl SendEmails {
    pub fn new(cfg: &EmailsConfig) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        Self {
            owner: format!("{host}:{}:{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            poll: Duration::from_millis(cfg.poll_interval_ms),
        }
    }
}

impl Job for SendEmails {
    fn name(&self) -> &'static str {
        "send-emails"
    }

    fn interval(&self) -> Duration {
        self.poll
    }

    fn run<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            send::send_due(state, &self.owner).await?;
            Ok(())
        })
    }
}

/// Settles expired leases, arms what a crashed writer left unarmed, publishes the queue depth.
pub struct ReconcileEmails {
    every: Duration,
    after: Duration,
}

impl ReconcileEmails {
    pub fn new(cfg: &EmailsConfig) -> Self {
        let after = Duration::from_secs(cfg.reconcile_after_seconds);
        Self {
            every: (after / 2).clamp(Duration::from_secs(1), Duration::from_secs(30)),
            after,
        }
    }
}

impl Job for ReconcileEmails {
    fn name(&self) -> &'static str {
        "reconcile-emails"
    }

    fn interval(&self) -> Duration {
        self.every
    }

    fn run<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let store = EmailStore::new(&state.db);
            if store.any_expired(DateTime::now()).await? {
                let (requeued, unconfirmed) = store.recover_expired(DateTime::now()).await?;
                tracing::warn!(requeued, unconfirmed, "took over email jobs whose worker stopped");
            }
            let late = arm::max_late(&state.config.emails);
            // A failed scan is retried next run; the queue depth is still published.
            match arm::reconcile(&state.db, self.after, late).await {
                Ok(armed) if armed != arm::Reconciled::default() => tracing::warn!(
                    bookings = armed.bookings,
                    clients = armed.clients,
                    "armed emails a stopped writer left unarmed"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "emails left unarmed not looked for; retried next run"
                ),
            }
            let depth = store.queue_depth(DateTime::now()).await?;
            state.metrics.email_queue_depth.set(depth as i64);
            Ok(())
        })
    }
}
