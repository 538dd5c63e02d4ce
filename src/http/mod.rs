//! HTTP plumbing shared by every resource: envelopes, extractors, request ids, admission
//! control, timeouts and metrics.

pub mod client_ip;
pub mod docs;
pub mod envelope;
pub mod extract;
pub mod limits;
pub mod names;
pub mod observe;
pub mod pagination;
pub mod query;
pub mod request_id;

use axum::http::{Method, Uri};

use crate::error::ApiError;

/// Fallback for unknown routes: 404 `Route <path> not found`.
pub async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    let _ = method;
    ApiError::NotFound(format!("Route {} not found", uri.path()))
}

/// Fallback for a known path with a method it does not serve.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
