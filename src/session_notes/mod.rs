//! Session notes (SPEC section 3): a therapist's private clinical notes per client, optionally
//! per booking; never shown to clients. Served at `/api/session-notes` and, for the dashboard's
//! other note service, at `/api/notes`. DELETE removes a note for good.

pub mod model;
pub mod store;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use serde_json::json;

use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::db::OwnerScope;
use crate::db::Page;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::{ApiQuery, ValidatedJson};
use crate::http::pagination::nested;
use model::{NoteInput, NoteListQuery, NotePatch, NoteSort, NoteView, SessionNote, SortOrder};
use store::NoteStore;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/session-notes", get(list).post(create))
        .route("/api/session-notes/{id}", get(get_one).put(update).delete(remove))
        .route("/api/notes", get(list).post(create))
        .route("/api/notes/{id}", get(get_one).put(update).delete(remove))
}

/// A query or body value, `None` when absent or blank.
fn given(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// Lists the caller's notes (client, booking, search, sort, page or cursor).
#[utoipa::path(get, path = "/api/session-notes", tag = "session-notes",
    security(("therapist" = [])),
    params(ApiQuery<model::NoteListQuery>),
    responses((status = 200, body = crate::http::docs::Data<model::NotePage>), (status = 404, description = "No such client or booking")))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<NoteListQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let scope = me.scope();
    let store = NoteStore::new(&state.db);
    let filter = list_filter(&store, &scope, &q).await?;
    let (field, default_desc) = q.sort_by.unwrap_or(NoteSort::CreatedAt).field();
    let descending = q.sort_order.map_or(default_desc, |o| o == SortOrder::Desc);
    let (notes, total, next) = store.list(scope.filter(filter), field, descending, &page).await?;
    let notes: Vec<NoteView> = notes.iter().map(NoteView::from).collect();
    let has_more = match page.cursor {
        Some(_) => next.is_some(),
        None => page.skip() + (notes.len() as u64) < total,
    };
    let data = json!({ "notes": notes, "pagination": nested(&page, total, next), "total": total, "hasMore": has_more });
    Ok(Json(json!({ "success": true, "data": data })).into_response())
}

/// The filter of a list query (the owner is added by the caller's scope): a client must be
/// the caller's (404 otherwise), a search is literal text in the title, content or tags.
async fn list_filter(store: &NoteStore, scope: &OwnerScope, q: &NoteListQuery) -> ApiResult<Document> {
    let mut filter = Document::new();
    if let Some(raw) = given(q.client_id.as_deref()) {
        let id = parse_id(raw, "client_id")?;
        if !store.owns_client(scope, id).await? {
            return Err(ApiError::not_found("Client"));
        }
        filter.insert("clientId", id);
    }
    if let Some(raw) = given(q.booking_id.as_deref()) {
        filter.insert("bookingId", parse_id(raw, "booking_id")?);
    }
    if let Some(search) = given(q.search.as_deref()) {
        if search.chars().count() > 100 {
            return Err(ApiError::field("search", "must be at most 100 characters"));
        }
        let pattern = crate::clients::regex_escape(search);
        filter.insert(
            "$or",
            vec![
                doc! { "title": { "$regex": &pattern, "$options": "i" } },
                doc! { "content": { "$regex": &pattern, "$options": "i" } },
                doc! { "tags": { "$regex": &pattern, "$options": "i" } },
            ],
        );
    }
    Ok(filter)
}

/// Creates a note about one of the caller's clients (and optionally one of their bookings).
#[utoipa::path(post, path = "/api/session-notes", tag = "session-notes",
    security(("therapist" = [])),
    request_body = model::NewNote,
    responses((status = 201, body = crate::http::docs::Data<model::NoteView>), (status = 404, description = "No such client or booking")))]
pub async fn create(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(req): ValidatedJson<NoteInput>,
) -> ApiResult<Response> {
    let content = req
        .content
        .clone()
        .ok_or_else(|| ApiError::field("content", "is required"))?;
    let scope = me.scope();
    let store = NoteStore::new(&state.db);
    let refs = resolve_refs(&store, &scope, &req, None, None).await?;
    let client_id = refs
        .client
        .ok_or_else(|| ApiError::field("clientId", "is required"))?;
    let now = DateTime::now();
    let date = match given(req.date.as_deref()) {
        Some(raw) => parse_when(raw)?,
        None => refs.booking_start.unwrap_or(now),
    };
    let note = SessionNote {
        id: ObjectId::new(),
        therapist_id: me.0.id,
        client_id,
        booking_id: refs.booking,
        title: req.title.unwrap_or_default(),
        content,
        tags: crate::clients::normalize_tags(req.tags.unwrap_or_default()),
        date,
        note_type: req.note_type.unwrap_or_default(),
        category: req.category,
        priority: req.priority.unwrap_or_default(),
        status: req.status.unwrap_or_default(),
        is_emergency: req.is_emergency.unwrap_or(false),
        requires_response: req.requires_response.unwrap_or(false),
        mood: req.mood,
        wellness_score: req.wellness_score,
        created_at: now,
        updated_at: now,
    };
    store.insert(&note).await?;
    Ok(envelope::created(NoteView::from(&note)))
}

/// One of the caller's notes.
#[utoipa::path(get, path = "/api/session-notes/{id}", tag = "session-notes",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::http::docs::Data<model::NoteView>)))]
pub async fn get_one(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let note = NoteStore::new(&state.db)
        .get(&me.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Note"))?;
    Ok(envelope::ok(NoteView::from(&note)))
}

/// Partial update of one of the caller's notes.
#[utoipa::path(put, path = "/api/session-notes/{id}", tag = "session-notes",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    request_body = model::NoteInput,
    responses((status = 200, body = crate::http::docs::Data<model::NoteView>)))]
pub async fn update(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    ValidatedJson(req): ValidatedJson<NoteInput>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let scope = me.scope();
    let store = NoteStore::new(&state.db);
    let current = store
        .get(&scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Note"))?;
    let refs = resolve_refs(&store, &scope, &req, Some(current.client_id), current.booking_id).await?;
    let patch = NotePatch {
        client_id: refs.client,
        booking_id: refs.booking,
        ..changes(req)?
    };
    let note = store
        .update(&scope, id, &patch)
        .await?
        .ok_or_else(|| ApiError::not_found("Note"))?;
    Ok(envelope::ok(NoteView::from(&note)))
}

/// Deletes one of the caller's notes for good (clinical notes are not kept once deleted).
#[utoipa::path(delete, path = "/api/session-notes/{id}", tag = "session-notes",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    responses((status = 200, body = model::NoteDeleted)))]
pub async fn remove(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    if !NoteStore::new(&state.db).delete(&me.scope(), id).await? {
        return Err(ApiError::not_found("Note"));
    }
    let body =
        json!({ "success": true, "message": "Note deleted", "data": { "id": id.to_hex(), "deleted": true } });
    Ok(Json(body).into_response())
}

/// The patch of an update's plain fields (references are checked separately).
fn changes(req: NoteInput) -> ApiResult<NotePatch> {
    Ok(NotePatch {
        updated_at: DateTime::now(),
        title: req.title,
        content: req.content,
        date: given(req.date.as_deref()).map(parse_when).transpose()?,
        tags: req.tags.map(crate::clients::normalize_tags),
        note_type: req.note_type,
        category: req.category,
        priority: req.priority,
        status: req.status,
        is_emergency: req.is_emergency,
        requires_response: req.requires_response,
        mood: req.mood,
        wellness_score: req.wellness_score,
        client_id: None,
        booking_id: None,
    })
}

/// The client and booking a note body refers to, each checked to be the caller's.
struct Refs {
    client: Option<ObjectId>,
    booking: Option<ObjectId>,
    booking_start: Option<DateTime>,
}

/// Checks `clientId` and `bookingId` of a body: each must be the caller's (400 naming the
/// field otherwise), and a booking must be of the note's client (the given one, else
/// `current_client`, else the booking names it). A note moved to another client without a
/// booking of theirs may not keep `current_booking`, the previous client's.
async fn resolve_refs(
    store: &NoteStore,
    scope: &OwnerScope,
    req: &NoteInput,
    current_client: Option<ObjectId>,
    current_booking: Option<ObjectId>,
) -> ApiResult<Refs> {
    let client = match given(req.client_id.as_deref()) {
        Some(raw) => {
            let id = parse_id(raw, "clientId")?;
            if !store.owns_client(scope, id).await? {
                return Err(ApiError::field("clientId", "is not one of your clients"));
            }
            Some(id)
        }
        None => None,
    };
    let Some(raw) = given(req.booking_id.as_deref()) else {
        if current_booking.is_some() && client.is_some() && client != current_client {
            return Err(ApiError::field(
                "clientId",
                "differs from the client of the note's booking (send a bookingId of theirs too)",
            ));
        }
        return Ok(Refs {
            client,
            booking: None,
            booking_start: None,
        });
    };
    let id = parse_id(raw, "bookingId")?;
    let booking = store
        .own_booking(scope, id)
        .await?
        .ok_or_else(|| ApiError::field("bookingId", "is not one of your bookings"))?;
    let expected = client.or(current_client).unwrap_or(booking.client_id);
    if expected != booking.client_id {
        return Err(ApiError::field("bookingId", "is a booking of another client"));
    }
    Ok(Refs {
        client: client.or(Some(booking.client_id)),
        booking: Some(id),
        booking_start: Some(booking.starts_at),
    })
}

/// `YYYY-MM-DD` (midnight UTC, as the notes page has always sent and read it) or an ISO
/// instant, through the same parser as every date filter.
fn parse_when(raw: &str) -> ApiResult<DateTime> {
    let at = crate::http::query::DateBound::parse(raw, "date")?;
    Ok(DateTime::from_chrono(at.start(chrono_tz::UTC)))
}
