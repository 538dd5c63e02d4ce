//! Reading bookings: the therapist's list (filtered, sorted, paged, each with its client),
//! the next ones to happen, one booking, and the signed-in client's own bookings.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use serde_json::{json, Value};

use super::model::Booking;
use super::query::{BookingListQuery, ClientBookingQuery, LimitQuery, Order};
use super::store::BookingStore;
use crate::app::AppState;
use crate::auth::extract::{parse_id, ClientUser, Therapist};
use crate::availability::store::AvailabilityStore;
use crate::cache::family::Family;
use crate::clients::store::ClientStore;
use crate::db::{Cursor, Page};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ApiQuery;
use crate::http::pagination::CountedList;

/// One of the therapist's bookings (404 when it is not theirs).
pub async fn load(state: &AppState, me: &Therapist, id: &str) -> ApiResult<Booking> {
    let id = parse_id(id, "id")?;
    BookingStore::new(&state.db)
        .get(&me.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Booking"))
}

/// The dashboard's view of one booking, its client embedded.
pub async fn one_view(state: &AppState, b: &Booking) -> ApiResult<Value> {
    let mut views = BookingStore::new(&state.db)
        .views(std::slice::from_ref(b))
        .await?;
    views
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no view of booking {}", b.id)))
}

/// The caller's client records across therapists.
pub async fn my_client_records(state: &AppState, me: &ClientUser) -> ApiResult<Vec<ObjectId>> {
    Ok(ClientStore::new(&state.db).record_ids_of_user(me.0.id).await?)
}

/// One page of the bookings matching `filter` in `order` (read as `limit + 1`): the page, the
/// total, and the cursor after it when more follow.
async fn read_page(
    store: &BookingStore,
    filter: Document,
    order: Order,
    page: &Page,
) -> ApiResult<(Vec<Booking>, u64, Option<String>)> {
    let (items, total) = store
        .page(
            filter,
            order.after,
            order.sort,
            page.skip(),
            page.limit as i64 + 1,
        )
        .await?;
    let (items, next) = page.split(items, |b| {
        mongodb::bson::to_document(b)
            .ok()
            .and_then(|d| Cursor::after(&d, order.field))
    });
    Ok((items, total, next))
}

/// The bookings list shape (a cursor when another page follows).
fn list_body(data: Vec<Value>, total: u64, page: &Page, next_cursor: Option<String>) -> Response {
    Json(CountedList::new(data, total, page, next_cursor)).into_response()
}

/// Lists the caller's bookings with each client embedded (one extra query per page).
#[utoipa::path(get, path = "/api/bookings", tag = "bookings",
    security(("therapist" = [])),
    params(ApiQuery<super::query::BookingListQuery>),
    responses((status = 200, body = crate::http::pagination::CountedList<crate::bookings::docs::BookingView>)))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<BookingListQuery>,
) -> ApiResult<Response> {
    crate::http::query::own_therapist(q.therapist_id.as_deref(), me.0.id)?;
    let key = crate::cache::family::query_key("list", &q);
    let fill = || list_page(&state, &me, q);
    let (body, _) = state
        .cache
        .get_or_fill(Family::Bookings, me.0.id, &key, fill)
        .await?;
    Ok(envelope::json_bytes(body))
}

/// The serialized list page `q` asks for.
async fn list_page(state: &AppState, me: &Therapist, q: BookingListQuery) -> ApiResult<Bytes> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let mut filter = Document::new();
    if let Some(s) = q.status {
        filter.insert("status", s.as_str());
    }
    if q.has_dates() {
        let zone = AvailabilityStore::new(&state.db).zone(me.0.id).await?;
        if let Some(range) = q.date_range(zone)? {
            filter.insert("date", range);
        }
    }
    if let Some(c) = &q.client_id {
        filter.insert("clientId", parse_id(c, "clientId")?);
    }
    let order = q.order(&page, None)?;
    let store = BookingStore::new(&state.db);
    let (items, total, next) = read_page(&store, me.scope().filter(filter), order, &page).await?;
    let data = store.views(&items).await?;
    let body = CountedList::new(data, total, &page, next);
    Ok(serde_json::to_vec(&body).map_err(anyhow::Error::from)?.into())
}

/// One booking with its client.
#[utoipa::path(get, path = "/api/bookings/{id}", tag = "bookings",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::BookingView>)))]
pub async fn get_one(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let b = load(&state, &me, &id).await?;
    Ok(envelope::ok(one_view(&state, &b).await?))
}

/// The next bookings still to happen.
#[utoipa::path(get, path = "/api/bookings/upcoming", tag = "bookings",
    security(("therapist" = [])),
    params(ApiQuery<super::query::LimitQuery>),
    responses((status = 200, body = crate::bookings::docs::Upcoming)))]
pub async fn upcoming(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(5).clamp(1, 50) as i64;
    let filter = me.scope().filter(doc! {
        "status": { "$in": ["pending", "upcoming"] },
        "startsAt": { "$gte": DateTime::now() },
    });
    let store = BookingStore::new(&state.db);
    let (items, _) = store
        .page(filter, None, doc! { "startsAt": 1, "_id": 1 }, 0, limit)
        .await?;
    let data = store.views(&items).await?;
    Ok(Json(json!({ "success": true, "count": data.len(), "data": data })).into_response())
}

/// The signed-in client's own bookings.
#[utoipa::path(get, path = "/api/bookings/client", tag = "bookings",
    security(("client" = [])),
    params(ApiQuery<super::query::ClientBookingQuery>),
    responses((status = 200, body = crate::http::pagination::CountedList<crate::bookings::docs::BookingView>)))]
pub async fn client_list(
    State(state): State<AppState>,
    me: ClientUser,
    ApiQuery(q): ApiQuery<ClientBookingQuery>,
) -> ApiResult<Response> {
    let q = BookingListQuery::from(q);
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let records = my_client_records(&state, &me).await?;
    let mut filter = doc! { "clientId": { "$in": records } };
    if let Some(s) = q.status {
        filter.insert("status", s.as_str());
    }
    let order = q.order(&page, Some("startsAt"))?;
    let store = BookingStore::new(&state.db);
    let (items, total, next) = read_page(&store, filter, order, &page).await?;
    let names = store.therapist_names(&items).await?;
    let data: Vec<_> = items
        .iter()
        .map(|b| {
            let mut v = b.client_view();
            v["therapist"] = json!({ "id": b.therapist_id.to_hex(), "name": names.get(&b.therapist_id) });
            v
        })
        .collect();
    Ok(list_body(data, total, &page, next))
}
