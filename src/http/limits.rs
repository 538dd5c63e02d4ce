//! Admission control and per-class timeouts (capacity plan, section 2).
//!
//! At most `max_in_flight` requests run at once; up to `max_queued` more wait for a slot; any
//! request beyond that gets 503 at once. Each request runs under its class's timeout, queue time
//! included. Operations endpoints bypass admission so that an overloaded instance still answers
//! its probes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::app::AppState;
use crate::error::ApiError;

/// Timeout classes of the capacity plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    Auth,
    Crud,
    Search,
    Upload,
    Analytics,
}

impl RequestClass {
    /// The request timeout of this class.
    pub fn timeout(self, t: &crate::config::TimeoutConfig) -> std::time::Duration {
        std::time::Duration::from_secs_f64(match self {
            RequestClass::Auth => t.auth_seconds,
            RequestClass::Crud => t.crud_seconds,
            RequestClass::Search => t.search_seconds,
            RequestClass::Upload => t.upload_seconds,
            RequestClass::Analytics => t.analytics_seconds,
        })
    }
}

/// Classifies a request by method and path.
pub fn classify(method: &Method, path: &str) -> RequestClass {
    let p = path.trim_end_matches('/');
    if p.starts_with("/api/auth/") || p == "/api/clients/login" || p == "/api/clients/register" {
        return RequestClass::Auth;
    }
    if is_streamed_upload(p) {
        return RequestClass::Upload;
    }
    if p.starts_with("/api/dashboard")
        || p.ends_with("/statistics")
        || p.ends_with("/stats")
        || p.contains("/analysis/")
    {
        return RequestClass::Analytics;
    }
    let collection_list = p.matches('/').count() == 2 && p.starts_with("/api/");
    if method == Method::GET && (collection_list || p.ends_with("/search")) {
        return RequestClass::Search;
    }
    RequestClass::Crud
}

/// Routes that stream their (large) body themselves: never buffered by `detach_writes`.
const STREAMED_UPLOADS: &[&str] = &[
    "/api/documents/upload",
    "/api/profile/avatar",
    "/api/profile/banner",
];

/// Whether `path` is an upload route that reads its own body as it arrives.
pub fn is_streamed_upload(path: &str) -> bool {
    STREAMED_UPLOADS.contains(&path.trim_end_matches('/'))
}

fn is_operations_path(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// In-flight slots plus a bounded queue.
pub struct Admission {
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    max_queued: usize,
}

impl Admission {
    /// Admission for `max_in_flight` concurrent requests and `max_queued` waiting ones.
    pub fn new(max_in_flight: usize, max_queued: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            queued: AtomicUsize::new(0),
            max_queued,
        }
    }
}

fn overloaded() -> ApiError {
    ApiError::Unavailable {
        code: "OVERLOADED",
        message: "The server is busy, try again shortly".into(),
        retry_after_secs: 1,
    }
}

/// Middleware: admission control.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_operations_path(req.uri().path()) {
        return next.run(req).await;
    }
    let admission = &state.admission;
    let metrics = &state.metrics;
    let permit = match admission.slots.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            let waiting = admission.queued.fetch_add(1, Ordering::SeqCst);
            if waiting >= admission.max_queued {
                admission.queued.fetch_sub(1, Ordering::SeqCst);
                metrics.http_rejected.with_label_values(&["overloaded"]).inc();
                return overloaded().into_response();
            }
            metrics.http_queued.inc();
            let acquired = QueueGuard(admission, metrics).wait().await;
            match acquired {
                Some(permit) => permit,
                None => return overloaded().into_response(),
            }
        }
    };
    let _in_flight = InFlightGuard::enter(metrics);
    let response = next.run(req).await;
    drop(permit);
    response
}

/// Counts a request in flight until it ends, also when its future is dropped (a timeout).
struct InFlightGuard<'a>(&'a crate::metrics::Metrics);

impl<'a> InFlightGuard<'a> {
    fn enter(metrics: &'a crate::metrics::Metrics) -> Self {
        metrics.http_in_flight.inc();
        Self(metrics)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.http_in_flight.dec();
    }
}

/// Leaves the queue count right even when the waiting request is cancelled (timeout).
struct QueueGuard<'a>(&'a Admission, &'a crate::metrics::Metrics);

impl QueueGuard<'_> {
    async fn wait(self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.0.slots.clone().acquire_owned().await.ok()
    }
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::SeqCst);
        self.1.http_queued.dec();
    }
}

/// Middleware: per-class timeout, answering 503 `TIMEOUT`.
pub async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let class = classify(req.method(), req.uri().path());
    let limit = class.timeout(&state.config.http.timeouts);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics.http_rejected.with_label_values(&["timeout"]).inc();
            tracing::warn!(?class, limit_secs = limit.as_secs(), "request timed out");
            ApiError::Unavailable {
                code: "TIMEOUT",
                message: "The request took too long and was abandoned".into(),
                retry_after_secs: 1,
            }
            .into_response()
        }
    }
}

/// Runs a write request's handler to completion even when the request is dropped (its class
/// timeout fired, or the client hung up): a write that has begun always reaches the domain
/// event that follows it (notifications, cache invalidation), never stops between the two.
/// The body is read first, under the request's own timeout and the JSON body limit (a slow or
/// vanished client is never waited for by a detached task; a route that streams a large body
/// is exempted: `STREAMED_UPLOADS`, which detach their own final writes). Reads (`GET`,
/// `HEAD`, `OPTIONS`) are simply dropped.
pub async fn detach_writes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use http_body_util::BodyExt;
    if req.method().is_safe() || (req.method() == Method::POST && is_streamed_upload(req.uri().path())) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let limit = state.config.http.json_body_limit_bytes;
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return ApiError::PayloadTooLarge.into_response()
        }
        Err(_) => {
            return ApiError::BadRequest {
                code: "INVALID_BODY",
                message: "The request body could not be read".into(),
            }
            .into_response()
        }
    };
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let work = tracing::Instrument::in_current_span(next.run(req));
    match tokio::spawn(work).await {
        Ok(response) => response,
        Err(e) => ApiError::Internal(anyhow::anyhow!("request task failed: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_plan() {
        assert_eq!(classify(&Method::POST, "/api/auth/login"), RequestClass::Auth);
        assert_eq!(classify(&Method::POST, "/api/clients/login"), RequestClass::Auth);
        assert_eq!(
            classify(&Method::POST, "/api/documents/upload"),
            RequestClass::Upload
        );
        assert_eq!(
            classify(&Method::POST, "/api/profile/avatar"),
            RequestClass::Upload
        );
        assert_eq!(classify(&Method::GET, "/api/dashboard"), RequestClass::Analytics);
        assert_eq!(
            classify(&Method::GET, "/api/bookings/statistics"),
            RequestClass::Analytics
        );
        assert_eq!(
            classify(&Method::GET, "/api/availability/analysis/occupancy"),
            RequestClass::Analytics
        );
        assert_eq!(classify(&Method::GET, "/api/clients"), RequestClass::Search);
        assert_eq!(classify(&Method::GET, "/api/bookings/"), RequestClass::Search);
        assert_eq!(classify(&Method::GET, "/api/bookings/abc"), RequestClass::Crud);
        assert_eq!(classify(&Method::POST, "/api/bookings"), RequestClass::Crud);
    }
}
