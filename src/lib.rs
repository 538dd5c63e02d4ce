//! Dhara: booking and practice backend for therapists.
//!
//! `run` is the one entry point: `main` and the integration tests both call it.

pub mod app;
pub mod auth;
pub mod availability;
pub mod batch;
pub mod bookings;
pub mod cache;
pub mod clients;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod documents;
pub mod emails;
pub mod error;
pub mod events;
pub mod files;
pub mod http;
pub mod idempotency;
pub mod logs;
pub mod mail;
pub mod metrics;
pub mod money;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod payments;
pub mod profile;
pub mod ratelimit;
pub mod reviews;
pub mod seed;
pub mod session_notes;
pub mod telemetry;
pub mod time;
pub mod work_locations;
pub mod worker;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use app::AppState;
pub use config::Config;

/// Serves the API on `listener` (and runs the worker when enabled) until `shutdown` is
/// cancelled; then stops accepting, lets in-flight requests finish for up to the configured
/// grace period, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let grace = Duration::from_secs(config.http.shutdown_grace_seconds);
    let worker_enabled = config.worker.enabled;
    let state_smtp_timeout = config.emails.smtp_timeout_seconds;
    let declared = db::indexes::declared()?;
    let state = AppState::build(config, shutdown.clone()).await?;
    tokio::spawn(sync_indexes_until_done(state.clone(), declared));
    let worker = worker_enabled.then(|| tokio::spawn(worker::run(state.clone())));
    let cache = state.cache.clone();
    let service = app::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let mut server = tokio::spawn(async move { server.await });
    let grace_over = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = &mut server => result??,
        _ = grace_over => {
            tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over; abandoning requests still running");
            server.abort();
        }
    }
    tracing::info!("server stopped");
    // The worker finishes the emails it holds (each within the SMTP timeout) before exit.
    if let Some(worker) = worker {
        let smtp = Duration::from_secs(state_smtp_timeout);
        if tokio::time::timeout(smtp + Duration::from_secs(5), worker)
            .await
            .is_err()
        {
            tracing::warn!("worker still busy at exit; its leases expire and another worker takes over");
        }
    }
    // Invalidations that have not reached Redis yet would be lost with this process.
    let left = cache.drain(Duration::from_secs(2)).await;
    if left > 0 {
        tracing::warn!(left, "cache invalidations could not reach Redis before exit; other instances may serve those pages old until their TTL");
    }
    Ok(())
}

/// Applies the declared indexes, retrying with backoff while MongoDB is unreachable (the API
/// answers 503 `NOT_READY` until this has succeeded), then keeps checking every
/// `mongodb.index_check_seconds`: an index lost since (a restored or dropped database, a
/// restarted dev server) is re-created, and while that fails the instance is not ready.
pub async fn sync_indexes_until_done(state: AppState, declared: Vec<db::indexes::CollectionIndexes>) {
    let mut delay = Duration::from_millis(250);
    let every = Duration::from_secs(state.config.mongodb.index_check_seconds);
    loop {
        let replace = state.config.mongodb.replace_changed_indexes;
        match db::indexes::sync(state.db.primary(), &declared, replace).await {
            Ok(report) => {
                if report.has_drift() {
                    tracing::warn!(report = %report, "index definitions differ from indexes/");
                } else if !report.created.is_empty() && state.readiness.indexes_synced() {
                    tracing::warn!(created = ?report.created, "declared indexes were missing; re-created");
                } else if !state.readiness.indexes_synced() {
                    tracing::info!(
                        created = report.created.len(),
                        unchanged = report.unchanged.len(),
                        "indexes in sync"
                    );
                }
                state.readiness.set_indexes_synced();
                delay = every;
            }
            Err(e) => {
                state.readiness.clear_indexes_synced();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "index sync failed");
                delay = (delay * 2).clamp(Duration::from_millis(250), Duration::from_secs(15));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}
