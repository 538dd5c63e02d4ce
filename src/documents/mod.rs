//! Documents (SPEC section 3): a therapist's files (consent forms, reports, session material)
//! streamed into GridFS with a SHA-256, listed, edited, deleted (soft), shared with clients
//! and downloaded in ranges. Clients reach only what is shared with them, through
//! `/api/documents/client`.

pub mod client;
pub mod docs;
mod form;
pub mod model;
mod query;
pub mod service;
pub mod store;
mod upload_store;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mongodb::bson::oid::ObjectId;
use serde_json::json;

use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::db::Page;
use crate::error::{ApiError, ApiResult};
use crate::files::serve::{respond, Served};
use crate::files::upload::{check_length, multipart};
use crate::files::FileStore;
use crate::http::envelope;
use crate::http::extract::{ApiQuery, JsonBody};
use crate::http::pagination::nested;
use model::{DocListQuery, DocumentView, ShareRequest, StatsQuery, StoredDocument, UpdateDocument};
use store::DocumentStore;

/// Room for the form's text fields beside the file.
const FORM_OVERHEAD: u64 = 1024 * 1024;

/// Routes of this module.
pub fn routes(state: &AppState) -> Router<AppState> {
    let upload_limit = (state.config.documents.max_file_bytes + FORM_OVERHEAD) as usize;
    Router::new()
        .route(
            "/api/documents/upload",
            post(upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/documents", get(list))
        .route("/api/documents/statistics", get(statistics))
        .route("/api/documents/usage", get(usage))
        .route("/api/documents/{id}", get(get_one).put(update).delete(remove))
        .route("/api/documents/{id}/download", get(download))
        .route("/api/documents/{id}/share", post(share))
        .route("/api/documents/{id}/unshare", post(unshare))
        .merge(client::routes())
}

/// Views of `docs` with their clients' names (one query).
async fn views(store: &DocumentStore, docs: &[StoredDocument]) -> ApiResult<Vec<DocumentView>> {
    let ids: Vec<ObjectId> = docs.iter().filter_map(|d| d.client_id).collect();
    let names = store.client_names(&ids).await?;
    Ok(docs
        .iter()
        .map(|d| DocumentView::new(d, d.client_id.and_then(|c| names.get(&c).cloned())))
        .collect())
}

async fn view(store: &DocumentStore, d: &StoredDocument) -> ApiResult<DocumentView> {
    let mut v = views(store, std::slice::from_ref(d)).await?;
    v.pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no view")))
}

/// Uploads a document (multipart: `file` plus `title, category, clientId, tags, visibility,
/// isConfidential`); 413 past the size limit or the quota, 415 for a refused type.
#[utoipa::path(post, path = "/api/documents/upload", tag = "documents",
    security(("therapist" = [])),
    request_body(content = docs::UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = docs::Uploaded),
        (status = 404, description = "`clientId` is not one of the caller's clients"),
        (status = 413, description = "`FILE_TOO_LARGE` or `STORAGE_QUOTA_EXCEEDED`"),
        (status = 415, description = "Not multipart, or a file type not accepted (by content)")))]
pub async fn upload(
    State(state): State<AppState>,
    me: Therapist,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    check_length(&headers, state.config.documents.max_file_bytes + FORM_OVERHEAD)?;
    let done = service::upload(&state, me.0.id, multipart(form)?).await?;
    let store = DocumentStore::new(&state.db);
    let data = view(&store, &done.document).await?;
    let message = if done.not_shared {
        "Uploaded; not shared with the client because it is marked confidential"
    } else {
        "Uploaded"
    };
    let body = json!({ "success": true, "documentId": data.id, "data": data, "message": message });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Lists the caller's documents (filters, sort, page or cursor).
#[utoipa::path(get, path = "/api/documents", tag = "documents",
    security(("therapist" = [])), params(ApiQuery<model::DocListQuery>),
    responses((status = 200, body = crate::http::docs::Data<docs::DocumentPage>),
        (status = 404, description = "`clientId` is not one of the caller's clients")))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<DocListQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let scope = me.scope();
    let store = DocumentStore::new(&state.db);
    let filter = query::list_filter(&store, &scope, &q).await?;
    let sort = q.sort_by.unwrap_or_default();
    let descending = q.sort_order.unwrap_or_default().descending();
    let (docs, total, next) = store
        .list(scope.filter(filter), sort.field(), descending, &page)
        .await?;
    let documents = views(&store, &docs).await?;
    let has_more = next.is_some();
    let data = json!({ "documents": documents, "pagination": nested(&page, total, next), "total": total, "hasMore": has_more });
    Ok(Json(json!({ "success": true, "data": data })).into_response())
}

/// Count and bytes of the caller's documents per category (or `type`, `visibility`).
#[utoipa::path(get, path = "/api/documents/statistics", tag = "documents",
    security(("therapist" = [])), params(ApiQuery<model::StatsQuery>),
    responses((status = 200, body = crate::http::docs::Data<docs::DocumentStatistics>)))]
pub async fn statistics(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Response> {
    let by = q.group_by.unwrap_or_default();
    let store = DocumentStore::new(&state.db);
    let (groups, used) = tokio::try_join!(store.groups(me.0.id, by.field()), store.usage(me.0.id))?;
    let (mut count, mut bytes, mut map) = (0, 0, serde_json::Map::new());
    let rows: Vec<_> = groups
        .iter()
        .map(|g| {
            let key = g.key.clone().unwrap_or_else(|| "other".into());
            (count, bytes) = (count + g.count, bytes + g.bytes);
            map.insert(key.clone(), json!({ "count": g.count, "totalSize": g.bytes }));
            json!({ "key": key, "count": g.count, "totalSize": g.bytes })
        })
        .collect();
    let key = format!("by{}", capitalize(by.field()));
    let data = json!({
        "groupBy": by.field(), "groups": rows, key: map,
        "totalDocuments": count, "totalSize": bytes,
        "storage": storage(&state, used),
    });
    Ok(envelope::ok(data))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn storage(state: &AppState, used: store::Usage) -> serde_json::Value {
    let limit = state.config.documents.quota_bytes;
    let bytes = used.bytes.max(0) as u64;
    json!({
        "used": bytes, "limit": limit, "available": limit.saturating_sub(bytes),
        "fileCount": used.files.max(0), "percentUsed": (bytes as f64 * 100.0 / limit as f64 * 100.0).round() / 100.0,
        "maxFileSize": state.config.documents.max_file_bytes,
    })
}

/// The caller's storage: bytes used by live documents, the quota, what is left.
#[utoipa::path(get, path = "/api/documents/usage", tag = "documents",
    security(("therapist" = [])),
    responses((status = 200, body = crate::http::docs::Data<docs::Storage>)))]
pub async fn usage(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    let used = DocumentStore::new(&state.db).usage(me.0.id).await?;
    Ok(envelope::ok(storage(&state, used)))
}

/// One of the caller's documents (deleted ones too, while their file is kept).
#[utoipa::path(get, path = "/api/documents/{id}", tag = "documents",
    security(("therapist" = [])), params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::http::docs::Data<DocumentView>)))]
pub async fn get_one(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let store = DocumentStore::new(&state.db);
    let d = store
        .get(&me.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Document"))?;
    Ok(envelope::ok(view(&store, &d).await?))
}

/// Edits a document's title, description, category, tags, visibility, confidentiality or client.
#[utoipa::path(put, path = "/api/documents/{id}", tag = "documents",
    security(("therapist" = [])), params(crate::http::docs::IdPath), request_body = Option<UpdateDocument>,
    responses((status = 200, body = crate::http::docs::Data<DocumentView>)))]
pub async fn update(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateDocument>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let d = service::update(&state, &me.scope(), id, req).await?;
    Ok(envelope::ok(view(&DocumentStore::new(&state.db), &d).await?))
}

/// Deletes a document (soft): it leaves the list and the quota at once; its file is removed
/// after the grace period.
#[utoipa::path(delete, path = "/api/documents/{id}", tag = "documents",
    security(("therapist" = [])), params(crate::http::docs::IdPath),
    responses((status = 200, body = docs::Deleted)))]
pub async fn remove(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let d = service::delete(&state, &me.scope(), id).await?;
    let body = json!({ "success": true, "message": "Document deleted", "data": DocumentView::new(&d, None) });
    Ok(Json(body).into_response())
}

/// Streams one of the caller's live documents (`Range`, `If-None-Match`).
#[utoipa::path(get, path = "/api/documents/{id}/download", tag = "documents",
    security(("therapist" = [])), params(crate::http::docs::IdPath, crate::files::docs::DownloadHeaders),
    responses(crate::files::docs::FileAnswers))]
pub async fn download(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let d = DocumentStore::new(&state.db).live_or_404(&me.scope(), id).await?;
    Ok(send(&state, &d, &headers))
}

/// The download response of `d`.
fn send(state: &AppState, d: &StoredDocument, headers: &HeaderMap) -> Response {
    let served = Served {
        file_id: d.file_id,
        size: d.size.max(0) as u64,
        sha256: &d.sha256,
        mime: &d.mime_type,
        filename: &d.filename,
        cache_control: None,
        inline: false,
    };
    respond(&FileStore::new(&state.db), &served, headers)
}

fn share_target(req: &ShareRequest) -> ApiResult<ObjectId> {
    let raw = req
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::field("clientId", "is required"))?;
    parse_id(raw, "clientId")
}

/// Shares a document with one of the caller's clients (409 when it is confidential).
#[utoipa::path(post, path = "/api/documents/{id}/share", tag = "documents",
    security(("therapist" = [])), params(crate::http::docs::IdPath), request_body = ShareRequest,
    responses((status = 200, body = crate::http::docs::Data<DocumentView>),
        (status = 409, description = "`DOCUMENT_CONFIDENTIAL`: a confidential document is never shared")))]
pub async fn share(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ShareRequest>,
) -> ApiResult<Response> {
    let (id, client) = (parse_id(&id, "id")?, share_target(&req)?);
    let d = service::share(&state, &me.scope(), id, client, true).await?;
    Ok(envelope::ok(view(&DocumentStore::new(&state.db), &d).await?))
}

/// Stops sharing a document with a client.
#[utoipa::path(post, path = "/api/documents/{id}/unshare", tag = "documents",
    security(("therapist" = [])), params(crate::http::docs::IdPath), request_body = ShareRequest,
    responses((status = 200, body = crate::http::docs::Data<DocumentView>)))]
pub async fn unshare(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ShareRequest>,
) -> ApiResult<Response> {
    let (id, client) = (parse_id(&id, "id")?, share_target(&req)?);
    let d = service::share(&state, &me.scope(), id, client, false).await?;
    Ok(envelope::ok(view(&DocumentStore::new(&state.db), &d).await?))
}
