//! The SPEC's success envelope: `{"success": true, "data": ..., "message"?: ...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

/// A 200 with `data`.
pub fn ok<T: Serialize>(data: T) -> Response {
    (StatusCode::OK, Json(json!({ "success": true, "data": data }))).into_response()
}

/// The body `ok` answers, as a value (what a cached response stores).
pub fn ok_body<T: Serialize>(data: T) -> serde_json::Value {
    json!({ "success": true, "data": data })
}

/// A 201 with `data`.
pub fn created<T: Serialize>(data: T) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({ "success": true, "data": data })),
    )
        .into_response()
}

/// A 200 with a message and no data.
pub fn message(text: &str) -> Response {
    (StatusCode::OK, Json(json!({ "success": true, "message": text }))).into_response()
}

/// A 200 whose JSON body is already serialized (a cached response).
pub fn json_bytes(body: axum::body::Bytes) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
