//! One error type for every handler, rendered as the SPEC's error envelope.
//!
//! Handlers return `Result<_, ApiError>` and use `?`; the cause of a 5xx is logged here and never
//! shown to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// A field-level validation problem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// A problem with one named field.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        /// Extra top-level fields of the body (for example `conflicts`).
        extra: Map<String, Value>,
    },
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("payload too large")]
    PayloadTooLarge,
    /// A 413 with its own code (a file over its limit, a storage quota).
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 naming one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// A 401 with the generic code.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized {
            code: "UNAUTHORIZED",
            message: message.into(),
        }
    }

    /// A 404 for a resource kind, worded the same whether it is missing or someone else's.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// A 409 with a machine code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge | Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_ERROR",
            Self::BadRequest { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unavailable { code, .. }
            | Self::TooLarge { code, .. }
            | Self::Unauthorized { code, .. } => code,
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::PreconditionFailed(_) => "VERSION_CONFLICT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Validation(errors) => match errors.as_slice() {
                [one] => format!("Invalid value for `{}`: {}", one.field, one.message),
                _ => "Validation failed".to_owned(),
            },
            Self::MethodNotAllowed => "Method not allowed on this route".to_owned(),
            Self::PayloadTooLarge => "Request body is too large".to_owned(),
            Self::RateLimited { .. } => "Too many requests, try again later".to_owned(),
            Self::Internal(_) => "Internal server error".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        } else if let Self::Unavailable { message, .. } = &self {
            tracing::warn!(%message, "dependency unavailable");
        }
        let mut body = json!({
            "success": false,
            "message": self.message(),
            "code": self.code(),
        });
        if let (Self::Validation(errors), Some(obj)) = (&self, body.as_object_mut()) {
            obj.insert("errors".into(), json!(errors));
        }
        if let (Self::Conflict { extra, .. }, Some(obj)) = (&self, body.as_object_mut()) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let mut response = (status, Json(body)).into_response();
        let retry_after = match &self {
            Self::RateLimited { retry_after_secs } | Self::Unavailable { retry_after_secs, .. } => {
                Some((*retry_after_secs).max(1))
            }
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<mongodb::error::Error> for ApiError {
    fn from(e: mongodb::error::Error) -> Self {
        if is_duplicate_key(&e) {
            return Self::conflict("DUPLICATE", "A record with these values already exists");
        }
        if is_transient(&e) {
            return Self::Conflict {
                code: "CONCURRENT_UPDATE",
                message: "Another change to the same records happened at the same time; try again".into(),
                extra: Default::default(),
            };
        }
        if is_unavailable(&e) {
            tracing::warn!(error = %e, "MongoDB unavailable");
            return Self::Unavailable {
                code: "DATABASE_UNAVAILABLE",
                message: "The database is unavailable, try again shortly".into(),
                retry_after_secs: 5,
            };
        }
        Self::Internal(anyhow::Error::new(e).context("MongoDB operation"))
    }
}

impl From<bson::ser::Error> for ApiError {
    fn from(e: bson::ser::Error) -> Self {
        Self::Internal(anyhow::Error::new(e).context("BSON encoding"))
    }
}

impl From<bson::de::Error> for ApiError {
    fn from(e: bson::de::Error) -> Self {
        Self::Internal(anyhow::Error::new(e).context("BSON decoding"))
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// The server error code of a command or write error, when there is one.
pub fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => Some(w.code),
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(w)) => Some(w.code),
        mongodb::error::ErrorKind::InsertMany(m) => {
            m.write_errors.as_ref().and_then(|v| v.first()).map(|w| w.code)
        }
        _ => None,
    }
}

/// Whether `e` is a unique-index violation (11000).
pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(m) => m.write_errors.iter().flatten().any(|w| w.code == 11000),
        _ => error_code(e) == Some(11000),
    }
}

/// Whether every write `e` reports failed on a duplicate key, and nothing else went wrong.
pub fn only_duplicate_keys(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|w| !w.is_empty() && w.iter().all(|w| w.code == 11000))
        }
        _ => error_code(e) == Some(11000),
    }
}

/// Whether a transaction that failed with `e` may simply be run again (write conflicts).
pub fn is_transient(e: &mongodb::error::Error) -> bool {
    e.contains_label("TransientTransactionError") || matches!(error_code(e), Some(112) | Some(251))
}

/// Whether `e` means the database cannot be reached right now.
pub fn is_unavailable(e: &mongodb::error::Error) -> bool {
    matches!(
        e.kind.as_ref(),
        mongodb::error::ErrorKind::ServerSelection { .. }
            | mongodb::error::ErrorKind::Io(_)
            | mongodb::error::ErrorKind::ConnectionPoolCleared { .. }
            | mongodb::error::ErrorKind::Shutdown
    ) || e.contains_label("RetryableWriteError") && error_code(e).is_none()
}
