//! Background worker: runs periodic jobs until shutdown. `dhara serve` runs it in-process
//! unless `worker.enabled = false`; `dhara worker` runs it alone.
//!
//! Jobs are registered by the capabilities that need them (reminders, clean-ups). Each job is
//! idempotent by construction (claim, act, mark), so several workers may run at once.

use std::time::Duration;

use crate::app::AppState;

/// A periodic job.
pub trait Job: Send + Sync {
    /// Stable name, used in logs.
    fn name(&self) -> &'static str;
    /// How long to wait between runs.
    fn interval(&self) -> Duration;
    /// One run; errors are logged and the job is retried at its next interval.
    fn run<'a>(&'a self, state: &'a AppState) -> futures_util::future::BoxFuture<'a, anyhow::Result<()>>;
}

/// The jobs this build runs.
fn jobs() -> Vec<Box<dyn Job>> {
    vec![Box::new(ReapClaims)]
}

/// Frees time claimed by bookings that were never written (a crash between the two writes) or
/// that were cancelled without their claims being released.
pub struct ReapClaims;

impl Job for ReapClaims {
    fn name(&self) -> &'static str {
        "reap-orphan-claims"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn run<'a>(&'a self, state: &'a AppState) -> futures_util::future::BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let n = crate::bookings::claims::Claims::new(&state.db)
                .reap_orphans(&state.db)
                .await?;
            if n > 0 {
                tracing::warn!(claims = n, "released orphaned time claims");
            }
            Ok(())
        })
    }
}

/// Runs every job on its interval until the app's shutdown token is cancelled.
pub async fn run(state: AppState) {
    let jobs = jobs();
    tracing::info!(jobs = jobs.len(), "worker started");
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs {
        let state = state.clone();
        tasks.spawn(async move {
            loop {
                let started = std::time::Instant::now();
                if let Err(e) = job.run(&state).await {
                    tracing::warn!(job = job.name(), error = format!("{e:#}"), "job failed");
                }
                tracing::debug!(
                    job = job.name(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "job ran"
                );
                tokio::select! {
                    _ = tokio::time::sleep(job.interval()) => {}
                    _ = state.shutdown.cancelled() => return,
                }
            }
        });
    }
    state.shutdown.cancelled().await;
    while tasks.join_next().await.is_some() {}
    tracing::info!("worker stopped");
}
