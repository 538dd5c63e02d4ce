//! Notifications (SPEC section 3): what happened in a therapist's practice, read and unread.

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
pub async fn notify(
    state: &AppState,
    user: ObjectId,
    kind: &str,
    title: &str,
    message: String,
    data: Document,
) {
    let d = doc! {
        "userId": user, "type": kind, "title": title, "message": message, "data": data,
        "isRead": false, "status": "unread", "createdAt": DateTime::now(), "readAt": null,
    };
    if let Err(e) = state.db.collection::<Document>(NOTIFICATIONS).insert_one(d).await {
        tracing::error!(error = %e, kind, "could not record notification");
    }
}

fn view(d: &Document) -> Value {
    let id = d.get_object_id("_id").map(|i| i.to_hex()).unwrap_or_default();
    let read = d.get_bool("isRead").unwrap_or(false);
    let data = mongodb::bson::Bson::Document(d.get_document("data").cloned().unwrap_or_default())
        .into_relaxed_extjson();
    json!({
        "id": id, "_id": id,
        "type": d.get_str("type").unwrap_or_default(),
        "title": d.get_str("title").unwrap_or_default(),
        "message": d.get_str("message").unwrap_or_default(),
        "data": data,
        "isRead": read,
        "status": if read { "read" } else { "unread" },
        "createdAt": d.get_datetime("createdAt").map(|t| crate::time::rfc3339(*t)).unwrap_or_default(),
        "readAt": d.get_datetime("readAt").ok().map(|t| crate::time::rfc3339(*t)),
    })
}

/// `GET /api/notifications` query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationQuery {
    pub page: Option<u64>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub unread_only: Option<bool>,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", responses((status = 200)))]
pub async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let mut filter = doc! { "userId": me.id };
    if q.unread_only == Some(true) {
        filter.insert("isRead", false);
    }
    let coll = state.db.collection::<Document>(NOTIFICATIONS);
    let (items, total, next) = page_of(&coll, filter, "createdAt", true, &page).await?;
    let list: Vec<Value> = items.iter().map(view).collect();
    Ok(envelope::ok(
        json!({ "notifications": list, "pagination": nested(&page, total, next) }),
    ))
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
    Ok(envelope::ok(view(&found)))
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
