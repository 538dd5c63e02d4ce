//! Operations endpoints: liveness, readiness, metrics and the OpenAPI document.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
}

/// Liveness answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
}

/// Liveness: the process answers. Checks no dependency.
#[utoipa::path(get, path = "/health", tag = "operations",
    security(()),
    responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
    })
}

/// Readiness answer, with each dependency's status.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    status: &'static str,
    checks: ReadyChecks,
}

/// Per-dependency readiness.
#[derive(Serialize, ToSchema)]
pub struct ReadyChecks {
    mongodb: &'static str,
    redis: &'static str,
    indexes: &'static str,
}

/// Readiness: 200 when MongoDB answers and the indexes are in place; 503 otherwise. Redis down
/// is reported but does not make the instance unready (it degrades to in-process state).
#[utoipa::path(get, path = "/ready", tag = "operations",
    security(()),
    responses((status = 200, body = Ready), (status = 503, body = Ready, description = "Not ready: MongoDB unreachable or the indexes not in place")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let deadline = Duration::from_millis(state.config.mongodb.server_selection_timeout_ms.min(2000));
    let (mongo, redis) = tokio::join!(state.db.ping(deadline), state.redis.status());
    let indexes = state.readiness.indexes_synced();
    let ok = mongo.is_ok() && indexes;
    let body = Ready {
        status: if ok { "ready" } else { "not_ready" },
        checks: ReadyChecks {
            mongodb: if mongo.is_ok() { "up" } else { "down" },
            redis: redis.as_str(),
            indexes: if indexes { "synced" } else { "pending" },
        },
    };
    if ok {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            Json(body),
        )
            .into_response()
    }
}

/// Prometheus exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.cache.publish_usage().await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

/// The OpenAPI document of the whole API.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    security(()),
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub async fn openapi() -> crate::error::ApiResult<Response> {
    Ok(crate::http::envelope::json_bytes(
        crate::openapi::document_bytes().await?,
    ))
}
