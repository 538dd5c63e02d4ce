//! Notifications (SPEC section 3): what happened in a therapist's practice, read and unread.
//! They are written by `subscriber`, which turns domain events into notices; nothing else
//! writes them.

pub mod docs;
pub mod model;
pub mod notice;
pub mod store;
pub mod subscriber;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::extract::{parse_id, AuthUser};
use crate::cache::family::{query_key, Family};
use crate::db::{Db, Page};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ApiQuery;
use crate::http::pagination::nested;
use model::{Notification, NotificationQuery};
pub use notice::{Lang, Notice};
use store::NotificationStore;

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
pub async fn record(db: &Db, user: ObjectId, notice: Notice) {
    let data = notice.data();
    let (title, message) = notice::render(notice.kind(), &data, Lang::Es).unwrap_or_default();
    let n = Notification {
        id: ObjectId::new(),
        user_id: user,
        kind: notice.kind().to_owned(),
        title,
        message,
        data,
        is_read: false,
        status: "unread".into(),
        created_at: DateTime::now(),
        read_at: None,
    };
    if let Err(e) = NotificationStore::new(db).insert(&n).await {
        tracing::error!(error = %e, kind = notice.kind(), "could not record notification");
    }
}

fn view(n: &Notification, lang: Lang) -> Value {
    let id = n.id.to_hex();
    let data = notice::plain_ids(&n.data);
    let (title, message) =
        notice::render(&n.kind, &data, lang).unwrap_or_else(|| (n.title.clone(), n.message.clone()));
    json!({
        "id": id, "_id": id,
        "type": n.kind,
        "title": title,
        "message": message,
        "data": mongodb::bson::Bson::Document(data).into_relaxed_extjson(),
        "isRead": n.is_read,
        "status": if n.is_read { "read" } else { "unread" },
        "createdAt": crate::time::rfc3339(n.created_at),
        "readAt": n.read_at.map(crate::time::rfc3339),
    })
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_accept_language(
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The caller's notifications (newest first unless `sortOrder=asc`), in their language, with
/// `total`, `unreadCount` and `hasMore`.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications",
    security(("therapist" = []), ("client" = [])),
    params(ApiQuery<model::NotificationQuery>),
    responses((status = 200, body = crate::http::docs::Data<crate::notifications::docs::NotificationPage>)))]
pub async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> ApiResult<Response> {
    let lang = lang_of(&headers);
    let key = query_key(&format!("list:{lang:?}"), &q);
    let fill = || async {
        let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
        let descending = q.sort_order.unwrap_or_default().descending();
        let found = NotificationStore::new(&state.db)
            .page(me.id, q.read_filter(), descending, &page)
            .await?;
        let list: Vec<Value> = found.items.iter().map(|n| view(n, lang)).collect();
        Ok(envelope::ok_body(json!({
            "notifications": list, "total": found.total, "unreadCount": found.unread,
            "hasMore": found.next.is_some(),
            "pagination": nested(&page, found.total, found.next),
        })))
    };
    state.cache.json(Family::Notifications, me.id, &key, fill).await
}

/// Totals and unread count.
#[utoipa::path(get, path = "/api/notifications/counts", tag = "notifications",
    security(("therapist" = []), ("client" = [])),
    responses((status = 200, body = crate::http::docs::Data<crate::notifications::docs::Counts>)))]
pub async fn counts(State(state): State<AppState>, me: AuthUser) -> ApiResult<Response> {
    let fill = || async {
        let store = NotificationStore::new(&state.db);
        let total = store.total(me.id).await?;
        let unread = store.unread(me.id).await?;
        Ok(envelope::ok_body(
            json!({ "total": total, "unread": unread, "read": total - unread }),
        ))
    };
    state
        .cache
        .json(Family::Notifications, me.id, "counts", fill)
        .await
}

/// Marks one of the caller's notifications read.
#[utoipa::path(post, path = "/api/notifications/{id}/read", tag = "notifications",
    security(("therapist" = []), ("client" = [])),
    params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::http::docs::Data<crate::notifications::docs::NotificationView>)))]
pub async fn mark_read(
    State(state): State<AppState>,
    me: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let found = NotificationStore::new(&state.db)
        .mark_read(me.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Notification"))?;
    read_by(&state, me.id).await;
    Ok(envelope::ok(view(&found, lang_of(&headers))))
}

/// Marks every notification of the caller read.
#[utoipa::path(post, path = "/api/notifications/mark-all-read", tag = "notifications",
    security(("therapist" = []), ("client" = [])),
    responses((status = 200, body = crate::notifications::docs::MarkedAll)))]
pub async fn mark_all_read(State(state): State<AppState>, me: AuthUser) -> ApiResult<Response> {
    let updated = NotificationStore::new(&state.db).mark_all_read(me.id).await?;
    read_by(&state, me.id).await;
    Ok(Json(json!({ "success": true, "message": "All notifications marked as read", "data": { "updated": updated } })).into_response())
}

/// Tells the rest of the service that `user` read notifications (their cached pages go stale).
async fn read_by(state: &AppState, user: ObjectId) {
    state
        .events
        .emit(crate::events::Event::NotificationsRead(
            crate::events::NotificationsRead { user },
        ))
        .await;
}
