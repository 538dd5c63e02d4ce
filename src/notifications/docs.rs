//! Schemas of the notifications' answers built as JSON values.
#![allow(dead_code)] // schema descriptions, never built

use serde::Serialize;
use utoipa::ToSchema;

use crate::http::docs::{InstantText, ObjectIdText};
use crate::http::pagination::Nested;

/// A notification, rendered in the caller's language.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    #[schema(value_type = ObjectIdText)]
    id: String,
    #[serde(rename = "type")]
    kind: String,
    title: String,
    message: String,
    data: serde_json::Map<String, serde_json::Value>,
    is_read: bool,
    /// `read` or `unread`.
    status: String,
    #[schema(value_type = InstantText)]
    created_at: String,
    read_at: Option<String>,
}

/// `GET /api/notifications` data.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPage {
    notifications: Vec<NotificationView>,
    total: u64,
    unread_count: u64,
    has_more: bool,
    pagination: Nested,
}

/// `GET /api/notifications/counts` data.
#[derive(Serialize, ToSchema)]
pub struct Counts {
    total: u64,
    unread: u64,
    read: u64,
}

/// `POST /api/notifications/mark-all-read`.
#[derive(Serialize, ToSchema)]
pub struct MarkedAll {
    success: bool,
    message: String,
    data: Updated,
}

/// How many changed.
#[derive(Serialize, ToSchema)]
pub struct Updated {
    updated: u64,
}
