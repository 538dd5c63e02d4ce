//! The client routes that embed bookings (the list with each client's history, one client
//! with their recent bookings) or depend on them (deactivating, by the soft delete or by an
//! update, is refused while bookings are upcoming). They live above both clients and bookings
//! so neither imports the other.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mongodb::bson::oid::ObjectId;
use serde_json::json;

use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::bookings::store::BookingStore;
use crate::cache::family::Family;
use crate::clients::model::{ClientActivity, ClientStatus, ClientView, UpdateClient};
use crate::clients::query::ClientListQuery;
use crate::clients::service;
use crate::clients::store::ClientStore;
use crate::db::{Db, OwnerScope, Page};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::{ApiQuery, ValidatedJson};
use crate::http::pagination::PagedList;
use crate::reviews::store::ReviewStore;

/// How many of a client's latest bookings their page shows.
const RECENT_BOOKINGS: i64 = 5;

/// Routes of this module (merged with `clients::routes()` on the same paths).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/clients", get(list))
        .route("/api/clients/{id}", get(get_one).put(update).delete(remove))
}

/// Lists the caller's clients (search, status, tags, sort, page or cursor) with their history.
#[utoipa::path(get, path = "/api/clients", tag = "clients",
    security(("therapist" = [])),
    params(ApiQuery<crate::clients::query::ClientListQuery>),
    responses((status = 200, body = crate::http::pagination::PagedList<crate::clients::model::ClientView>)))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<ClientListQuery>,
) -> ApiResult<Response> {
    let key = crate::cache::family::query_key("list", &q);
    let fill = || list_page(&state, &me, q);
    let (body, _) = state
        .cache
        .get_or_fill(Family::Clients, me.0.id, &key, fill)
        .await?;
    Ok(envelope::json_bytes(body))
}

/// The serialized client page `q` asks for, each client with their history.
async fn list_page(state: &AppState, me: &Therapist, q: ClientListQuery) -> ApiResult<Bytes> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let (clients, total, next_cursor) = ClientStore::new(&state.db).list(&me.scope(), &q, &page).await?;
    let ids: Vec<ObjectId> = clients.iter().map(|c| c.id).collect();
    let history = histories(&state.db, &ids).await?;
    let items: Vec<ClientView> = clients
        .iter()
        .map(|c| ClientView::from(c).with_activity(&history.get(&c.id).cloned().unwrap_or_default()))
        .collect();
    let body = PagedList::new(items, total, &page, next_cursor);
    Ok(serde_json::to_vec(&body).map_err(anyhow::Error::from)?.into())
}

/// Completed sessions, the last one, and the average rating of each of `ids` (two
/// aggregations a page, run concurrently).
async fn histories(db: &Db, ids: &[ObjectId]) -> ApiResult<HashMap<ObjectId, ClientActivity>> {
    let (bookings, reviews) = (BookingStore::new(db), ReviewStore::new(db));
    let (sessions, ratings) = tokio::try_join!(
        async { Ok::<_, ApiError>(bookings.completed_sessions(ids).await?) },
        reviews.average_by_client(ids),
    )?;
    let mut out: HashMap<ObjectId, ClientActivity> = HashMap::new();
    for (id, s) in sessions {
        let a = out.entry(id).or_default();
        a.last_session = s.last;
        a.sessions_count = s.count;
    }
    for (id, rating) in ratings {
        out.entry(id).or_default().rating = Some(rating);
    }
    Ok(out)
}

/// One client with their most recent bookings.
#[utoipa::path(get, path = "/api/clients/{id}", tag = "clients",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::http::docs::Data<crate::dashboard::docs::ClientDetail>)))]
pub async fn get_one(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let scope = me.scope();
    let client = ClientStore::new(&state.db).get_or_404(&scope, id).await?;
    let recent = BookingStore::new(&state.db)
        .recent_for_client(&scope, id, RECENT_BOOKINGS)
        .await?;
    let mut view = serde_json::to_value(ClientView::from(&client)).map_err(anyhow::Error::from)?;
    view["recentBookings"] = json!(recent);
    Ok(envelope::ok(view))
}

/// Partial update; an email another of the caller's clients has is a 409, and so is setting
/// `status: inactive` while the client has upcoming bookings (as the soft delete).
#[utoipa::path(put, path = "/api/clients/{id}", tag = "clients",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    request_body = UpdateClient,
    responses((status = 200, body = crate::http::docs::Data<ClientView>), (status = 409, description = "`CLIENT_EXISTS`: another of the caller's clients has this email; `CLIENT_HAS_UPCOMING_BOOKINGS`: deactivating a client with upcoming bookings")))]
pub async fn update(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    ValidatedJson(req): ValidatedJson<UpdateClient>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let scope = me.scope();
    if req.status == Some(ClientStatus::Inactive) {
        ClientStore::new(&state.db).get_or_404(&scope, id).await?;
        refuse_if_upcoming(&state, &scope, id).await?;
    }
    let client = service::update(&state, &scope, id, req).await?;
    Ok(envelope::ok(ClientView::from(&client)))
}

/// A client with upcoming bookings stays active: 409 `CLIENT_HAS_UPCOMING_BOOKINGS`.
async fn refuse_if_upcoming(state: &AppState, scope: &OwnerScope, id: ObjectId) -> ApiResult<()> {
    if BookingStore::new(&state.db).has_upcoming(scope, id).await? {
        return Err(ApiError::conflict(
            "CLIENT_HAS_UPCOMING_BOOKINGS",
            "Cancel or complete this client's upcoming bookings first",
        ));
    }
    Ok(())
}

/// Soft delete (status `inactive`); refused while the client has upcoming bookings.
#[utoipa::path(delete, path = "/api/clients/{id}", tag = "clients",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::clients::docs::Deactivated), (status = 409, description = "`CLIENT_HAS_UPCOMING_BOOKINGS`")))]
pub async fn remove(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let scope = me.scope();
    ClientStore::new(&state.db).get_or_404(&scope, id).await?;
    refuse_if_upcoming(&state, &scope, id).await?;
    let client = service::deactivate(&state, &scope, id).await?;
    let body = json!({ "success": true, "message": "Client deactivated", "data": ClientView::from(&client) });
    Ok(Json(body).into_response())
}
