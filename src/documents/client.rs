//! A client's side of documents: only what a therapist shared with one of their records,
//! never a confidential or deleted one; anything else is 404.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::model::DocumentView;
use super::store::DocumentStore;
use crate::app::AppState;
use crate::auth::extract::{parse_id, ClientUser};
use crate::clients::store::ClientStore;
use crate::db::Page;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ApiQuery;
use crate::http::pagination::nested;

/// Client routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/documents/client", get(client_list))
        .route("/api/documents/client/{id}", get(client_get))
        .route("/api/documents/client/{id}/download", get(client_download))
}

/// Documents shared with the signed-in client (newest first, page or cursor).
#[utoipa::path(get, path = "/api/documents/client", tag = "documents",
    security(("client" = [])), params(ApiQuery<super::model::ClientDocQuery>),
    responses((status = 200, body = crate::http::docs::Data<super::docs::SharedDocumentPage>)))]
pub async fn client_list(
    State(state): State<AppState>,
    me: ClientUser,
    ApiQuery(q): ApiQuery<super::model::ClientDocQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let records = ClientStore::new(&state.db).record_ids_of_user(me.0.id).await?;
    let store = DocumentStore::new(&state.db);
    let (docs, total, next) = if records.is_empty() {
        (Vec::new(), 0, None)
    } else {
        store
            .list(DocumentStore::shared_filter(&records), "createdAt", true, &page)
            .await?
    };
    let documents: Vec<_> = docs.iter().map(DocumentView::for_client).collect();
    let data = json!({ "documents": documents, "pagination": nested(&page, total, next) });
    Ok(Json(json!({ "success": true, "data": data })).into_response())
}

async fn shared(state: &AppState, me: &ClientUser, id: &str) -> ApiResult<super::model::StoredDocument> {
    let id = parse_id(id, "id")?;
    let records = ClientStore::new(&state.db).record_ids_of_user(me.0.id).await?;
    DocumentStore::new(&state.db)
        .shared_get(&records, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Document"))
}

/// One document shared with the signed-in client.
#[utoipa::path(get, path = "/api/documents/client/{id}", tag = "documents",
    security(("client" = [])), params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::http::docs::Data<super::model::SharedDocumentView>)))]
pub async fn client_get(
    State(state): State<AppState>,
    me: ClientUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let d = shared(&state, &me, &id).await?;
    Ok(envelope::ok(DocumentView::for_client(&d)))
}

/// Streams a document shared with the signed-in client (`Range`, `If-None-Match`).
#[utoipa::path(get, path = "/api/documents/client/{id}/download", tag = "documents",
    security(("client" = [])), params(crate::http::docs::IdPath, crate::files::docs::DownloadHeaders),
    responses(crate::files::docs::FileAnswers))]
pub async fn client_download(
    State(state): State<AppState>,
    me: ClientUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let d = shared(&state, &me, &id).await?;
    Ok(super::send(&state, &d, &headers))
}
