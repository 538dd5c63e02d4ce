//! The stored notification and the list query.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, Document};
use serde::{Deserialize, Serialize};

use crate::db::SortOrder;

/// One notification as stored in `notifications`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    #[serde(rename = "type")]
    pub kind: String,
    /// The Spanish title and message (readers get theirs rendered from `data`).
    pub title: String,
    pub message: String,
    pub data: Document,
    pub is_read: bool,
    pub status: String,
    pub created_at: DateTime,
    #[serde(default)]
    pub read_at: Option<DateTime>,
}

/// `GET /api/notifications` query.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct NotificationQuery {
    #[param(value_type = Option<crate::http::docs::PageNumber>)]
    pub page: Option<u64>,
    #[param(value_type = Option<crate::http::docs::PageLimit>)]
    pub limit: Option<u64>,
    #[param(value_type = Option<crate::http::docs::Cursor>)]
    pub cursor: Option<String>,
    #[serde(alias = "unread_only")]
    pub unread_only: Option<bool>,
    #[serde(alias = "is_read")]
    pub is_read: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    #[param(schema_with = crate::http::docs::filter::<ReadState>)]
    pub status: Option<ReadState>,
    #[serde(alias = "sort_by")]
    #[param(schema_with = crate::http::docs::accepts::<NotificationSort>)]
    pub sort_by: Option<NotificationSort>,
    #[serde(alias = "sort_order")]
    #[param(schema_with = crate::http::docs::accepts::<SortOrder>)]
    pub sort_order: Option<SortOrder>,
}

impl NotificationQuery {
    /// The read state asked for: `unreadOnly=true`, else `isRead`, else `status`.
    pub fn read_filter(&self) -> Option<bool> {
        match (self.unread_only, self.is_read, self.status) {
            (Some(true), _, _) => Some(false),
            (_, Some(r), _) => Some(r),
            (_, _, Some(s)) => Some(s == ReadState::Read),
            _ => None,
        }
    }
}

/// `status` of a notification list.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadState {
    Read,
    Unread,
}

/// The one order notifications are listed in.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum NotificationSort {
    CreatedAt,
}
