//! `POST /api/logs`: the dashboard's own log lines (its logger posts one entry per warning or
//! error), written to our log with the request id (the request span carries it) and the
//! caller's id. Never stored in MongoDB.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::app::AppState;
use crate::auth::extract::AuthUser;
use crate::config::Limit;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::RawBody;

/// Largest log body accepted (a client's log line is small; 413 beyond).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Most entries one request may carry.
pub const MAX_ENTRIES: usize = 50;

/// Log posts per signed-in user: the dashboard sends one per warning or error, a few dozen per
/// page load at worst; beyond this a broken client would flood our logs (429).
pub const PER_USER: Limit = Limit {
    max: 60,
    window_seconds: 60,
};

/// Longest text kept from one field of an entry.
const MAX_FIELD_CHARS: usize = 2000;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/logs",
        post(ingest).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

crate::http::docs::text_schema!(
    /// One entry (an object; its `logs` or `entries`, when a list, are the entries), or a list
    /// of at most 50 entries.
    LogBody = "LogBody",
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(utoipa::openapi::schema::ObjectBuilder::new())
        .item(
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(utoipa::openapi::schema::ObjectBuilder::new())
                .max_items(Some(MAX_ENTRIES))
        )
);

/// Accepts one entry (`{level, message, timestamp, url, ...}`), a list of them, or
/// `{logs: [...]}` / `{entries: [...]}`; answers 202.
#[utoipa::path(post, path = "/api/logs", tag = "operations",
    security(("therapist" = []), ("client" = [])),
    request_body = LogBody,
    responses((status = 202, body = Accepted), crate::http::docs::TooManyRequests))]
pub async fn ingest(
    State(state): State<AppState>,
    me: AuthUser,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    state.limiter.hit(PER_USER, &format!("logs:{}", me.id)).await?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "INVALID_JSON",
        message: format!("Malformed JSON: {e}"),
    })?;
    let (field, entries) = entries_of(value)?;
    if entries.len() > MAX_ENTRIES {
        return Err(ApiError::field(
            field,
            format!("at most {MAX_ENTRIES} entries per request"),
        ));
    }
    let mut objects = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        match entry {
            Value::Object(o) => objects.push(o),
            _ => return Err(ApiError::field(format!("{field}[{i}]"), "must be an object")),
        }
    }
    let user = me.id.to_hex();
    for entry in &objects {
        write(&user, entry);
    }
    let body = json!({ "success": true, "data": { "accepted": objects.len() } });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The entries of a body and the name of the field that holds them.
fn entries_of(value: Value) -> ApiResult<(&'static str, Vec<Value>)> {
    match value {
        Value::Array(list) => Ok(("body", list)),
        Value::Object(mut o) => {
            for key in ["logs", "entries"] {
                match o.remove(key) {
                    Some(Value::Array(list)) => return Ok((key, list)),
                    Some(_) => return Err(ApiError::field(key, "must be a list of log entries")),
                    None => {}
                }
            }
            Ok(("body", vec![Value::Object(o)]))
        }
        _ => Err(ApiError::field("body", "must be a log entry or a list of them")),
    }
}

/// Text of a field, control characters replaced (no forged log lines) and length capped.
fn text(v: Option<&Value>) -> String {
    let raw = match v {
        None | Some(Value::Null) => return String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    raw.chars()
        .take(MAX_FIELD_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Writes one entry to our log; the client's errors and warnings at `warn`, the rest at `info`.
fn write(user: &str, entry: &Map<String, Value>) {
    let level = text(entry.get("level")).to_ascii_lowercase();
    let message = text(entry.get("message"));
    let at = text(entry.get("timestamp"));
    let page = text(entry.get("url"));
    let session = text(entry.get("sessionId"));
    let known = ["level", "message", "timestamp", "url", "sessionId", "userAgent"];
    let rest: Map<String, Value> = entry
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let extra = text(Some(&Value::Object(rest)));
    if level == "error" || level == "warn" || level == "warning" {
        tracing::warn!(target: "dhara::client_log", user_id = user, client_level = %level, client_time = %at, page = %page, client_session = %session, extra = %extra, "{message}");
    } else {
        tracing::info!(target: "dhara::client_log", user_id = user, client_level = %level, client_time = %at, page = %page, client_session = %session, extra = %extra, "{message}");
    }
}

/// `202` of `POST /api/logs`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // a schema description
struct Accepted {
    success: bool,
    data: AcceptedCount,
}

/// How many log objects were taken.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct AcceptedCount {
    accepted: u64,
}
