//! Per-request metrics and the access log line.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;

/// Middleware: records `http_request_duration_seconds` by matched route and logs the request.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // Label by the route template, never the raw URL (unbounded cardinality).
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let elapsed = started.elapsed();
    let status = response.status();
    state
        .metrics
        .http_duration
        .with_label_values(&[method.as_str(), &route, status.as_str()])
        .observe(elapsed.as_secs_f64());
    let ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), %route, latency_ms = ms, "request finished");
    } else {
        tracing::info!(status = status.as_u16(), %route, latency_ms = ms, "request finished");
    }
    response
}
