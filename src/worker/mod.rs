//! Background worker: runs periodic jobs until shutdown. `dhara serve` runs it in-process
//! unless `worker.enabled = false`; `dhara worker` runs it alone.
//!
//! Jobs are registered by the capabilities that need them (reminders, clean-ups). Each job is
//! idempotent by construction (claim, act, mark), so several workers may run at once.

use std::time::Duration;

use crate::app::AppState;

mod emails;

/// A periodic job.
pub trait Job: Send + Sync {
    /// Stable name, used in logs.
    fn name(&self) -> &'static str;
    /// How long to wait between runs.
    fn interval(&self) -> Duration;
    /// One run; errors are logged and the job is retried at its next interval.
    fn run<'a>(&'a self, state: &'a AppState) -> futures_util::future::BoxFuture<'a, anyhow::Result<()>>;
}

/// The jobs this build runs (as configured).
fn jobs(state: &AppState) -> Vec<Box<dyn Job>> {
    let mut jobs: Vec<Box<dyn Job>> = Vec::new();
    if state.config.worker.reap_claims {
        jobs.push(Box::<ReapClaims>::default());
    }
    if state.config.worker.purge_files {
        jobs.push(Box::new(PurgeFiles));
    }
    if state.config.worker.send_emails {
        jobs.push(Box::new(emails::SendEmails::new(&state.config.emails)));
        jobs.push(Box::new(emails::ReconcileEmails::new(&state.config.emails)));
    }
    jobs
}

/// Frees time held without reason: claims whose booking never appeared (a crash between the
/// two writes), was cancelled, or moved elsewhere (a crash between claiming the new time and
/// releasing the old), whatever their age; and claims whose time passed the retention. Each run
/// sweeps a bounded number of batches and remembers where it stopped, so every claim is seen
/// again within `claims / (REAP_BATCH * BATCHES_PER_RUN)` minutes.
#[derive(Default)]
pub struct ReapClaims {
    cursor: std::sync::Mutex<Option<String>>,
}

/// Batches of the sweep per run of `ReapClaims`.
const BATCHES_PER_RUN: usize = 10;

impl Job for ReapClaims {
    fn name(&self) -> &'static str {
        "reap-orphan-claims"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn run<'a>(&'a self, state: &'a AppState) -> futures_util::future::BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let claims = crate::bookings::service::claims(state);
            let mut cursor = self.cursor.lock().map(|mut c| c.take()).unwrap_or_default();
            let (mut orphans, mut expired) = (0, 0);
            for _ in 0..BATCHES_PER_RUN {
                let r = claims.reap(&mut cursor).await;
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        self.store_cursor(cursor);
                        return Err(e.into());
                    }
                };
                orphans += r.orphans;
                expired += r.expired;
                if r.wrapped {
                    break;
                }
            }
            self.store_cursor(cursor);
            if orphans > 0 {
                tracing::warn!(claims = orphans, "released time claims no booking uses");
            }
            if expired > 0 {
                tracing::info!(claims = expired, "removed time claims past their retention");
            }
            Ok(())
        })
    }
}

impl ReapClaims {
    fn store_cursor(&self, cursor: Option<String>) {
        if let Ok(mut c) = self.cursor.lock() {
            *c = cursor;
        }
    }
}

/// Removes the files whose records are due (`purgeAfter` passed): deleted documents after
/// their grace period, uploads that never completed (their process died), replaced avatars
/// and banners. Record after file, so a crash in between is finished by the next run; any
/// number of workers may sweep at once (removals are idempotent).
pub struct PurgeFiles;

/// Records swept per batch, and batches per run.
const PURGE_BATCH: i64 = 100;
const PURGE_BATCHES: usize = 10;

impl Job for PurgeFiles {
    fn name(&self) -> &'static str {
        "purge-files"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn run<'a>(&'a self, state: &'a AppState) -> futures_util::future::BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let files = crate::files::FileStore::new(&state.db);
            let documents = crate::documents::store::DocumentStore::new(&state.db);
            let media = crate::profile::media_store::MediaStore::new(&state.db);
            let mut removed = 0;
            // Each owner swept on its own: one failing never stops the other.
            let documents_swept = async {
                for _ in 0..PURGE_BATCHES {
                    let n = documents.purge_due(&files, PURGE_BATCH).await?;
                    removed += n;
                    if n < PURGE_BATCH as usize {
                        break;
                    }
                }
                Ok::<_, mongodb::error::Error>(())
            }
            .await;
            let media_swept = async {
                for _ in 0..PURGE_BATCHES {
                    let n = files.sweep(media.records(), "_id", PURGE_BATCH).await?;
                    removed += n;
                    if n < PURGE_BATCH as usize {
                        break;
                    }
                }
                Ok::<_, mongodb::error::Error>(())
            }
            .await;
            if removed > 0 {
                tracing::info!(files = removed, "removed files of deleted or abandoned uploads");
            }
            documents_swept?;
            media_swept?;
            Ok(())
        })
    }
}

/// Runs every job on its interval until the app's shutdown token is cancelled.
pub async fn run(state: AppState) {
    // Jobs rely on the declared indexes (claims by due time, unique keys): wait for them.
    while !state.readiness.indexes_synced() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
    let jobs = jobs(&state);
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
