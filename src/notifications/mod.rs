//! Notifications (SPEC section 3): what happened in a therapist's practice, read and unread.

pub mod notice;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::extract::{parse_id, AuthUser};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ApiQuery;
use crate::http::pagination::{nested, page_of, Page};
pub use notice::{Lang, Notice};

const NOTIFICATIONS: &str = "notifications";

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/notifications", get(list))
        .route("/api/notifications/counts", get(counts))
        .route("/api/notifications/mark-all-read", post(mark_all_read))
        .route("/api/notifications/{id}/read", post(mark_read))
}

/// Records a notification for `user`. A failure is logged, never fails the action it reports.
/// The stored title and message are the Spanish ones; readers get their own language.
pub async fn notify(state: &AppState, user: ObjectId, notice: Notice) {
    let data = notice.data();
    let (title, message) = notice::render(notice.kind(), &data, Lang::Es).unwrap_or_default();
    let d = doc! {
        "userId": user, "type": notice.kind(), "title": title, "message": message, "data": data,
        "isRead": false, "status": "unread", "createdAt": DateTime::now(), "readAt": null,
    };
    if let Err(e) = state.db.collection::<Document>(NOTIFICATIONS).insert_one(d).await {
        tracing::error!(error = %e, kind = notice.kind(), "could not record notification");
    }
}

fn view(d: &Document, lang: Lang) -> Value {
    let id = d.get_object_id("_id").map(|i| i.to_hex()).unwrap_or_default();
    let read = d.get_bool("isRead").unwrap_or(false);
    let data = notice::plain_ids(&d.get_document("data").cloned().unwrap_or_default());
    let kind = d.get_str("type").unwrap_or_default();
    let (title, message) = notice::render(kind, &data, lang).unwrap_or_else(|| {
        (
            d.get_str("title").unwrap_or_default().to_owned(),
            d.get_str("message").unwrap_or_default().to_owned(),
        )
    });
    json!({
        "id": id, "_id": id,
        "type": kind,
        "title": title,
        "message": message,
        "data": mongodb::bson::Bson::Document(data).into_relaxed_extjson(),
        "isRead": read,
        "status": if read { "read" } else { "unread" },
        "createdAt": d.get_datetime("createdAt").map(|t| crate::time::rfc3339(*t)).unwrap_or_default(),
        "readAt": d.get_datetime("readAt").ok().map(|t| crate::time::rfc3339(*t)),
    })
}

fn lang_of(headers: &axum::http::HeaderMap) -> Lang {
    Lang::from_accept_language(
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// `GET /api/notifications` query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationQuery {
    pub page: Option<u64>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    #[serde(alias = "unread_only")]
    pub unread_only: Option<bool>,
    #[serde(alias = "is_read")]
    pub is_read: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    pub status: Option<ReadState>,
    #[serde(alias = "sort_by")]
    pub sort_by: Option<NotificationSort>,
    #[serde(alias = "sort_order")]
    pub sort_order: Option<crate::clients::model::SortOrder>,
}

/// `status` of a notification list.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReadState {
    Read,
    Unread,
}

/// The one order notifications are listed in.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NotificationSort {
    CreatedAt,
}

/// The caller's notifications (newest first unless `sortOrder=asc`), in their language, with
/// `total`, `unreadCount` and `hasMore`.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", responses((status = 200), (status = 400)))]
pub async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    headers: axum::http::HeaderMap,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let mut filter = doc! { "userId": me.id };
    let read = match (q.unread_only, q.is_read, q.status) {
        (Some(true), _, _) => Some(false),
        (_, Some(r), _) => Some(r),
        (_, _, Some(s)) => Some(s == ReadState::Read),
        _ => None,
    };
    if let Some(r) = read {
        filter.insert("isRead", r);
    }
    let descending = q.sort_order.unwrap_or_default() == crate::clients::model::SortOrder::Desc;
    let coll = state.db.collection::<Document>(NOTIFICATIONS);
    let (items, total, next) = page_of(&coll, filter, "createdAt", descending, &page).await?;
    let unread = coll
        .count_documents(doc! { "userId": me.id, "isRead": false })
        .await?;
    let lang = lang_of(&headers);
    let list: Vec<Value> = items.iter().map(|d| view(d, lang)).collect();
    let has_more = next.is_some();
    Ok(envelope::ok(json!({
        "notifications": list, "total": total, "unreadCount": unread, "hasMore": has_more,
        "pagination": nested(&page, total, next),
    })))
}

/// Totals and unread count.
#[utoipa::path(get, path = "/api/notifications/counts", tag = "notifications", responses((status = 200)))]
pub async fn counts(State(state): State<AppState>, me: AuthUser) -> ApiResult<Response> {
    let coll = state.db.collection::<Document>(NOTIFICATIONS);
    let total = coll.count_documents(doc! { "userId": me.id }).await?;
    let unread = coll
        .count_documents(doc! { "userId": me.id, "isRead": false })
        .await?;
    Ok(envelope::ok(
        json!({ "total": total, "unread": unread, "read": total - unread }),
    ))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(post, path = "/api/notifications/{id}/read", tag = "notifications", responses((status = 200), (status = 404)))]
pub async fn mark_read(
    State(state): State<AppState>,
    me: AuthUser,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let coll = state.db.collection::<Document>(NOTIFICATIONS);
    let found = coll
        .find_one_and_update(
            doc! { "_id": id, "userId": me.id },
            doc! { "$set": { "isRead": true, "status": "read", "readAt": DateTime::now() } },
        )
        .return_document(mongodb::options::ReturnDocument::After)
        .await?
        .ok_or_else(|| ApiError::not_found("Notification"))?;
    Ok(envelope::ok(view(&found, lang_of(&headers))))
}

/// Marks every notification of the caller read.
#[utoipa::path(post, path = "/api/notifications/mark-all-read", tag = "notifications", responses((status = 200)))]
pub async fn mark_all_read(State(state): State<AppState>, me: AuthUser) -> ApiResult<Response> {
    let r = state
        .db
        .collection::<Document>(NOTIFICATIONS)
        .update_many(
            doc! { "userId": me.id, "isRead": false },
            doc! { "$set": { "isRead": true, "status": "read", "readAt": DateTime::now() } },
        )
        .await?;
    Ok(Json(json!({ "success": true, "message": "All notifications marked as read", "data": { "updated": r.modified_count } })).into_response())
}
