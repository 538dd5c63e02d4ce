//! Bookings (SPEC section 3): the therapist's calendar and the client booking site's routes.

pub mod activity;
pub mod claims;
pub mod model;
pub mod service;
pub mod store;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use chrono::Datelike;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::extract::{parse_id, ClientUser, Therapist};
use crate::availability::store::AvailabilityStore;
use crate::clients::store::ClientStore;
use crate::db::SortOrder;
use crate::db::{Cursor, Page};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::{parse_body, ApiQuery, RawBody};
use crate::idempotency;
use crate::time::parse_zone;
use model::{
    Booking, BookingStatus, CancelBooking, CreateBooking, PaymentStatus, RescheduleBooking, UpdateBooking,
};
use service::{check_version, place, Placed};
use store::BookingStore;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/bookings", get(list).post(create))
        .route("/api/bookings/upcoming", get(upcoming))
        .route("/api/bookings/statistics", get(statistics))
        .route("/api/bookings/check-availability", get(check_availability))
        .route("/api/bookings/client", get(client_list))
        .route("/api/bookings/client/book", post(client_book))
        .route("/api/bookings/client/{id}/cancel", patch(client_cancel))
        .route("/api/bookings/{id}", get(get_one).put(update))
        .route("/api/bookings/{id}/cancel", patch(cancel))
        .route("/api/bookings/{id}/reschedule", put(reschedule))
        .route("/api/bookings/{id}/complete", put(complete))
        .route("/api/bookings/{id}/no-show", put(no_show))
}

/// The version a request carries: body field first, else `If-Match`.
fn version_of(headers: &HeaderMap, body: Option<i64>) -> ApiResult<Option<i64>> {
    if body.is_some() {
        return Ok(body);
    }
    match headers.get("if-match") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::field("If-Match", "must be the booking's version number")),
    }
}

async fn load(state: &AppState, me: &Therapist, id: &str) -> ApiResult<Booking> {
    let id = parse_id(id, "id")?;
    BookingStore::new(&state.db)
        .get(&me.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Booking"))
}

async fn one_view(state: &AppState, b: &Booking) -> ApiResult<serde_json::Value> {
    let mut views = BookingStore::new(&state.db)
        .views(std::slice::from_ref(b))
        .await?;
    Ok(views.pop().unwrap_or_default())
}

/// `GET /api/bookings` query (camelCase and the dashboard's snake_case aliases).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingListQuery {
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    pub status: Option<BookingStatus>,
    #[serde(alias = "start_date", alias = "dateFrom", alias = "date_from")]
    pub start_date: Option<String>,
    #[serde(alias = "end_date", alias = "dateTo", alias = "date_to")]
    pub end_date: Option<String>,
    #[serde(
        default,
        alias = "client_id",
        deserialize_with = "crate::http::query::non_empty"
    )]
    pub client_id: Option<String>,
    #[serde(alias = "therapist_id")]
    pub therapist_id: Option<String>,
    pub page: Option<u64>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    #[serde(alias = "sort_by")]
    pub sort_by: Option<BookingSort>,
    #[serde(alias = "sort_order")]
    pub sort_order: Option<SortOrder>,
}

/// Sort fields of the booking list (`dateTime` is the dashboard's name for chronological).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BookingSort {
    #[serde(alias = "startsAt", alias = "dateTime", alias = "startTime")]
    Date,
    CreatedAt,
}

/// The `date` range of a booking list: local days, instants turned into the therapist's days.
async fn date_range(state: &AppState, me: &Therapist, q: &BookingListQuery) -> ApiResult<Option<Document>> {
    use crate::http::query::date_bound;
    let from = date_bound(&[("startDate", &q.start_date)])?;
    let to = date_bound(&[("endDate", &q.end_date)])?;
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    let zone = AvailabilityStore::new(&state.db).zone(me.0.id).await?;
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let (from, to) = (from.map(|b| b.local_day(zone)), to.map(|b| b.local_day(zone)));
    if let (Some(a), Some(b)) = (from, to) {
        if a > b {
            return Err(ApiError::field("endDate", "must not be before startDate"));
        }
    }
    let mut range = Document::new();
    if let Some(a) = from {
        range.insert("$gte", day(a));
    }
    if let Some(b) = to {
        range.insert("$lte", day(b));
    }
    Ok(Some(range))
}

/// Lists the caller's bookings with each client embedded (one extra query per page).
#[utoipa::path(get, path = "/api/bookings", tag = "bookings", responses((status = 200), (status = 400)))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<BookingListQuery>,
) -> ApiResult<Response> {
    crate::http::query::own_therapist(q.therapist_id.as_deref(), me.0.id)?;
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let mut filter = Document::new();
    if let Some(s) = q.status {
        filter.insert("status", s.as_str());
    }
    if let Some(range) = date_range(&state, &me, &q).await? {
        filter.insert("date", range);
    }
    if let Some(c) = &q.client_id {
        filter.insert("clientId", parse_id(c, "clientId")?);
    }
    let field = match q.sort_by.unwrap_or(BookingSort::Date) {
        BookingSort::Date => "startsAt",
        BookingSort::CreatedAt => "createdAt",
    };
    let descending = q.sort_order.unwrap_or_default() == SortOrder::Desc;
    let dir = if descending { -1 } else { 1 };
    let after = page
        .cursor
        .as_ref()
        .map(|c| c.filter(field, descending))
        .transpose()?;
    let store = BookingStore::new(&state.db);
    let (items, total) = store
        .page(
            me.scope().filter(filter),
            after,
            doc! { field: dir, "_id": dir },
            page.skip(),
            page.limit as i64,
        )
        .await?;
    let next_cursor = if items.len() as u64 == page.limit {
        items
            .last()
            .and_then(|b| mongodb::bson::to_document(b).ok())
            .and_then(|d| Cursor::after(&d, field))
    } else {
        None
    };
    let data = store.views(&items).await?;
    Ok(Json(json!({
        "success": true,
        "count": data.len(),
        "total": total,
        "data": data,
        "pagination": { "page": page.page, "limit": page.limit, "totalPages": page.total_pages(total), "nextCursor": next_cursor },
    }))
    .into_response())
}

/// Creates a booking, or an all-or-nothing weekly series (`recurrence`).
#[utoipa::path(post, path = "/api/bookings", tag = "bookings", request_body = CreateBooking,
    responses((status = 201), (status = 400), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    me: Therapist,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let key = idempotency::key_from(&headers)?;
    let req: CreateBooking = parse_body(&headers, &body)?;
    let st = state.clone();
    let ids = idempotency::Ids::new(me.0.id, "POST /api/bookings", key.as_deref());
    idempotency::once(&state, me.0.id, "POST /api/bookings", key, &body, async move {
        create_inner(&st, me, req, ids).await
    })
    .await
}

async fn create_inner(
    state: &AppState,
    me: Therapist,
    req: CreateBooking,
    ids: idempotency::Ids,
) -> ApiResult<Response> {
    crate::http::extract::require_https(&state.config, "meetingLink", req.meeting_link.as_deref())?;
    let client_id = parse_id(&req.client_id, "clientId")?;
    let client = ClientStore::new(&state.db)
        .get(&me.scope(), client_id)
        .await?
        .ok_or_else(|| ApiError::field("clientId", "is not one of your clients"))?;
    let schedule = AvailabilityStore::new(&state.db).schedule(me.0.id).await?;
    let zone = parse_zone(&schedule.timezone).map_err(|_| ApiError::field("timezone", "is invalid"))?;
    let first = place(zone, &req.date, &req.start_time, &req.end_time)?;
    if let Some(d) = req.therapy_duration {
        if d != first.minutes() {
            return Err(ApiError::field(
                "therapyDuration",
                "must equal the minutes between startTime and endTime",
            ));
        }
    }
    let status = req.status.unwrap_or(BookingStatus::Upcoming);
    if !matches!(status, BookingStatus::Pending | BookingStatus::Upcoming) {
        return Err(ApiError::field("status", "a new booking is pending or upcoming"));
    }
    let occurrences = match req.recurrence {
        Some(r) => service::series(zone, &first, r.interval, r.count)?,
        None => vec![first],
    };
    let series_id = (occurrences.len() > 1).then(|| ids.nth(u32::MAX));
    let store = BookingStore::new(&state.db);
    if ids.derived() {
        // A rerun of this keyed request whose first attempt wrote its bookings (and then failed
        // to answer): answer with them instead of colliding with its own time.
        let wanted: Vec<ObjectId> = (0..occurrences.len() as u32).map(|i| ids.nth(i)).collect();
        let existing = store.get_ids(&me.scope(), &wanted).await?;
        if existing.len() == wanted.len() {
            let mut views = store.views(&existing).await?;
            let data = if series_id.is_some() {
                json!(views)
            } else {
                views.pop().unwrap_or_default()
            };
            return Ok(envelope::created(data));
        }
    }
    let now = DateTime::now();
    let bookings: Vec<Booking> = occurrences
        .iter()
        .enumerate()
        .map(|(i, p)| Booking {
            id: ids.nth(i as u32),
            therapist_id: me.0.id,
            client_id: client.id,
            date: p.date.clone(),
            start_time: p.start_time.clone(),
            end_time: p.end_time.clone(),
            starts_at: DateTime::from_chrono(p.starts_at),
            ends_at: DateTime::from_chrono(p.ends_at),
            timezone: schedule.timezone.clone(),
            status,
            therapy_type: req.therapy_type.clone(),
            therapy_duration: p.minutes(),
            amount_cents: req.amount.unwrap_or_default(),
            currency: req.currency.unwrap_or_default(),
            location: req.location.clone(),
            notes: req.notes.clone(),
            client_notes: None,
            meeting_link: req.meeting_link.clone(),
            payment_status: PaymentStatus::Pending,
            buffer_minutes: schedule.buffer_minutes,
            series_id,
            cancellation: None,
            claim_tokens: Vec::new(),
            payment_method: None,
            version: 1,
            created_by: "therapist".into(),
            created_at: now,
            updated_at: now,
        })
        .collect();
    let created = service::create_all(state, bookings, Some(client.name.clone())).await?;
    let mut views = BookingStore::new(&state.db).views(&created).await?;
    let data = if series_id.is_some() {
        json!(views)
    } else {
        views.pop().unwrap_or_default()
    };
    Ok(envelope::created(data))
}

/// One booking with its client.
#[utoipa::path(get, path = "/api/bookings/{id}", tag = "bookings", responses((status = 200), (status = 404)))]
pub async fn get_one(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let b = load(&state, &me, &id).await?;
    Ok(envelope::ok(one_view(&state, &b).await?))
}

/// Partial update under the optimistic version (body `version` or `If-Match`; stale: 412).
#[utoipa::path(put, path = "/api/bookings/{id}", tag = "bookings", request_body = UpdateBooking,
    responses((status = 200), (status = 400), (status = 404), (status = 409), (status = 412)))]
pub async fn update(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    // A move claims and releases time: once begun it runs to completion, whatever the request.
    idempotency::detached(update_inner(state, me, id, headers, body)).await
}

async fn update_inner(
    state: AppState,
    me: Therapist,
    id: String,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req: UpdateBooking = parse_body(&headers, &body)?;
    crate::http::extract::require_https(&state.config, "meetingLink", req.meeting_link.as_deref())?;
    let b = load(&state, &me, &id).await?;
    check_version(&b, version_of(&headers, req.version)?)?;
    let mut set = Document::new();
    if let Some(v) = &req.therapy_type {
        set.insert("therapyType", v);
    }
    if let Some(v) = req.amount {
        set.insert("amountCents", v.0);
    }
    if let Some(v) = req.currency {
        set.insert("currency", mongodb::bson::to_bson(&v)?);
    }
    for (k, v) in [
        ("location", &req.location),
        ("notes", &req.notes),
        ("meetingLink", &req.meeting_link),
    ] {
        if let Some(v) = v {
            set.insert(k, v);
        }
    }
    let moved = req.date.is_some() || req.start_time.is_some() || req.end_time.is_some();
    let updated = if moved {
        let zone = parse_zone(&b.timezone).map_err(|_| ApiError::field("timezone", "is invalid"))?;
        let to = place(
            zone,
            req.date.as_deref().unwrap_or(&b.date),
            req.start_time.as_deref().unwrap_or(&b.start_time),
            req.end_time.as_deref().unwrap_or(&b.end_time),
        )?;
        if req.status.is_some_and(|s| s != b.status) {
            return Err(ApiError::field(
                "status",
                "change the time and the status in separate requests",
            ));
        }
        service::reschedule(&state, &b, &to, set).await?
    } else if let Some(status) = req.status {
        let cancelled_by = (status == BookingStatus::Cancelled).then_some(("therapist", None));
        service::transition(&state, &b, status, set, cancelled_by).await?
    } else {
        set.insert("updatedAt", DateTime::now());
        let guard = doc! { "_id": b.id, "therapistId": b.therapist_id, "version": b.version };
        BookingStore::new(&state.db)
            .update_guarded(guard, set)
            .await?
            .ok_or_else(|| {
                ApiError::PreconditionFailed("This booking changed meanwhile; reload and try again".into())
            })?
    };
    Ok(envelope::ok(one_view(&state, &updated).await?))
}

/// Cancels (frees the time). Honours `Idempotency-Key`.
#[utoipa::path(patch, path = "/api/bookings/{id}/cancel", tag = "bookings", request_body = CancelBooking,
    responses((status = 200), (status = 400), (status = 404), (status = 412)))]
pub async fn cancel(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let key = idempotency::key_from(&headers)?;
    let req: CancelBooking = parse_body(&headers, &body)?;
    let route = format!("PATCH /api/bookings/{id}/cancel");
    let st = state.clone();
    idempotency::once(&state, me.0.id, &route, key, &body, async move {
        let state = st;
        let b = load(&state, &me, &id).await?;
        check_version(&b, version_of(&headers, req.version)?)?;
        let updated = service::transition(
            &state,
            &b,
            BookingStatus::Cancelled,
            Document::new(),
            Some(("therapist", req.reason)),
        )
        .await?;
        Ok(envelope::ok(one_view(&state, &updated).await?))
    })
    .await
}

/// Moves a booking to another time (claims the new time before letting go of the old).
#[utoipa::path(put, path = "/api/bookings/{id}/reschedule", tag = "bookings", request_body = RescheduleBooking,
    responses((status = 200), (status = 400), (status = 404), (status = 409), (status = 412)))]
pub async fn reschedule(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    // A move claims and releases time: once begun it runs to completion, whatever the request.
    idempotency::detached(reschedule_inner(state, me, id, headers, body)).await
}

async fn reschedule_inner(
    state: AppState,
    me: Therapist,
    id: String,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req: RescheduleBooking = parse_body(&headers, &body)?;
    let b = load(&state, &me, &id).await?;
    check_version(&b, version_of(&headers, req.version)?)?;
    let zone = parse_zone(&b.timezone).map_err(|_| ApiError::field("timezone", "is invalid"))?;
    let to = place(zone, &req.date, &req.start_time, &req.end_time)?;
    let mut extra = Document::new();
    if let Some(r) = req.reason {
        extra.insert("rescheduleReason", r);
    }
    let updated = service::reschedule(&state, &b, &to, extra).await?;
    Ok(envelope::ok(one_view(&state, &updated).await?))
}

/// Optional body of complete / no-show.
#[derive(Debug, Default, Deserialize, validator::Validate)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub version: Option<i64>,
    #[validate(length(max = 5000))]
    pub notes: Option<String>,
}

async fn set_status(
    state: AppState,
    me: Therapist,
    id: String,
    headers: HeaderMap,
    body: Bytes,
    to: BookingStatus,
) -> ApiResult<Response> {
    let req: StatusChange = parse_body(&headers, &body)?;
    let b = load(&state, &me, &id).await?;
    check_version(&b, version_of(&headers, req.version)?)?;
    let mut set = Document::new();
    if let Some(n) = req.notes {
        set.insert("notes", n);
    }
    let updated = service::transition(&state, &b, to, set, None).await?;
    Ok(envelope::ok(one_view(&state, &updated).await?))
}

/// Marks a booking completed.
#[utoipa::path(put, path = "/api/bookings/{id}/complete", tag = "bookings", responses((status = 200), (status = 400), (status = 404)))]
pub async fn complete(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    idempotency::detached(set_status(state, me, id, headers, body, BookingStatus::Completed)).await
}

/// Marks a booking as a no-show.
#[utoipa::path(put, path = "/api/bookings/{id}/no-show", tag = "bookings", responses((status = 200), (status = 400), (status = 404)))]
pub async fn no_show(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    idempotency::detached(set_status(state, me, id, headers, body, BookingStatus::NoShow)).await
}

/// `?limit` of the upcoming list.
#[derive(Debug, Deserialize)]
pub struct LimitQuery {
    pub limit: Option<u64>,
}

/// The next bookings still to happen.
#[utoipa::path(get, path = "/api/bookings/upcoming", tag = "bookings", responses((status = 200)))]
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

/// `?startDate&endDate` (days of the therapist's calendar or ISO instants; default: this
/// month, in the therapist's zone), `therapistId` as the caller.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeQuery {
    #[serde(alias = "start_date", alias = "date_from", alias = "dateFrom")]
    pub start_date: Option<String>,
    #[serde(alias = "end_date", alias = "date_to", alias = "dateTo")]
    pub end_date: Option<String>,
    #[serde(alias = "therapist_id")]
    pub therapist_id: Option<String>,
}

/// Counts, revenue and rates over a date range.
#[utoipa::path(get, path = "/api/bookings/statistics", tag = "bookings", responses((status = 200), (status = 400)))]
pub async fn statistics(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    use crate::http::query::date_bound;
    crate::http::query::own_therapist(q.therapist_id.as_deref(), me.0.id)?;
    let zone = AvailabilityStore::new(&state.db).zone(me.0.id).await?;
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let month_start = today.with_day(1).unwrap_or(today);
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let from = date_bound(&[("startDate", &q.start_date)])?
        .map(|b| b.local_day(zone))
        .unwrap_or(month_start);
    let to = date_bound(&[("endDate", &q.end_date)])?.map(|b| b.local_day(zone));
    if to.is_some_and(|t| t < from) {
        return Err(ApiError::field("endDate", "must not be before startDate"));
    }
    let (from, to) = (day(from), to.map(day).unwrap_or_else(|| "9999-12-31".to_owned()));
    let d = BookingStore::new(&state.db)
        .statistics(&me.scope(), &from, &to)
        .await?;
    let by_status = crate::db::facet_counts(&d, "byStatus");
    let n = |k: &str| by_status.get(k).copied().unwrap_or(0);
    let first = |facet: &str, field: &str| crate::db::facet_first(&d, facet).get(field).cloned();
    let revenue = first("revenue", "cents")
        .as_ref()
        .and_then(crate::db::as_i64)
        .unwrap_or(0);
    let clients = first("clients", "n")
        .as_ref()
        .and_then(crate::db::as_i64)
        .unwrap_or(0);
    let avg =
        first("duration", "avg").and_then(|b| b.as_f64().or_else(|| crate::db::as_i64(&b).map(|i| i as f64)));
    let total: i64 = by_status.values().sum();
    let finished = n("completed") + n("no_show");
    Ok(envelope::ok(json!({
        "totalBookings": total,
        "completedBookings": n("completed"),
        "upcomingBookings": n("upcoming") + n("pending"),
        "cancelledBookings": n("cancelled"),
        "noShowBookings": n("no_show"),
        "totalRevenue": crate::money::Cents(revenue).to_major(),
        "activeUniqueClients": clients,
        "completionRate": if finished > 0 { (n("completed") as f64 * 1000.0 / finished as f64).round() / 10.0 } else { 0.0 },
        "avgSessionDuration": avg.map(|a| (a * 10.0).round() / 10.0).unwrap_or(0.0),
        "statusCounts": model::status_counts(&by_status),
        "period": { "startDate": from, "endDate": if to == "9999-12-31" { None } else { Some(to) } },
    })))
}

/// `?date&startTime&endTime[&excludeBookingId]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckQuery {
    pub date: String,
    pub start_time: String,
    pub end_time: String,
    pub exclude_booking_id: Option<String>,
}

/// Whether a time is free of the caller's bookings (advisory: creation decides).
#[utoipa::path(get, path = "/api/bookings/check-availability", tag = "bookings", responses((status = 200), (status = 400)))]
pub async fn check_availability(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<CheckQuery>,
) -> ApiResult<Response> {
    let schedule = AvailabilityStore::new(&state.db).schedule(me.0.id).await?;
    let zone = parse_zone(&schedule.timezone).map_err(|_| ApiError::field("timezone", "is invalid"))?;
    let p: Placed = place(zone, &q.date, &q.start_time, &q.end_time)?;
    let exclude = q
        .exclude_booking_id
        .as_deref()
        .map(|e| parse_id(e, "excludeBookingId"))
        .transpose()?;
    let found = BookingStore::new(&state.db)
        .overlapping(
            me.0.id,
            DateTime::from_chrono(p.starts_at),
            DateTime::from_chrono(p.ends_at),
            schedule.buffer_minutes,
            exclude,
        )
        .await?;
    let conflicts: Vec<_> = found.iter().map(|b| json!({ "id": b.id.to_hex(), "date": b.date, "startTime": b.start_time, "endTime": b.end_time })).collect();
    Ok(envelope::ok(
        json!({ "available": conflicts.is_empty(), "requested": p.interval(), "conflicts": conflicts }),
    ))
}

/// The caller's client records across therapists.
async fn my_client_records(state: &AppState, me: &ClientUser) -> ApiResult<Vec<ObjectId>> {
    use futures_util::TryStreamExt;
    let docs: Vec<Document> = state
        .db
        .collection::<Document>("clients")
        .find(doc! { "userId": me.0.id })
        .projection(doc! { "_id": 1 })
        .await?
        .try_collect()
        .await?;
    Ok(docs.iter().filter_map(|d| d.get_object_id("_id").ok()).collect())
}

/// The signed-in client's own bookings.
#[utoipa::path(get, path = "/api/bookings/client", tag = "bookings", responses((status = 200), (status = 403)))]
pub async fn client_list(
    State(state): State<AppState>,
    me: ClientUser,
    ApiQuery(q): ApiQuery<BookingListQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let records = my_client_records(&state, &me).await?;
    let mut filter = doc! { "clientId": { "$in": records } };
    if let Some(s) = q.status {
        filter.insert("status", s.as_str());
    }
    let descending = q.sort_order.unwrap_or_default() == SortOrder::Desc;
    let dir = if descending { -1 } else { 1 };
    let after = page
        .cursor
        .as_ref()
        .map(|c| c.filter("startsAt", descending))
        .transpose()?;
    let store = BookingStore::new(&state.db);
    let (items, total) = store
        .page(
            filter,
            after,
            doc! { "startsAt": dir, "_id": dir },
            page.skip(),
            page.limit as i64,
        )
        .await?;
    let next_cursor = if items.len() as u64 == page.limit {
        items
            .last()
            .and_then(|b| mongodb::bson::to_document(b).ok())
            .and_then(|d| Cursor::after(&d, "startsAt"))
    } else {
        None
    };
    let names = store.therapist_names(&items).await?;
    let data: Vec<_> = items
        .iter()
        .map(|b| {
            let mut v = b.client_view();
            v["therapist"] = json!({ "id": b.therapist_id.to_hex(), "name": names.get(&b.therapist_id) });
            v
        })
        .collect();
    Ok(Json(json!({
        "success": true, "count": data.len(), "total": total, "data": data,
        "pagination": { "page": page.page, "limit": page.limit, "totalPages": page.total_pages(total), "nextCursor": next_cursor },
    }))
    .into_response())
}

/// Books a free slot of a therapist from the booking site (status `pending`).
#[utoipa::path(post, path = "/api/bookings/client/book", tag = "bookings", request_body = model::ClientBook,
    responses((status = 201), (status = 400), (status = 409)))]
pub async fn client_book(
    State(state): State<AppState>,
    me: ClientUser,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let key = idempotency::key_from(&headers)?;
    let req: model::ClientBook = parse_body(&headers, &body)?;
    let ids = idempotency::Ids::new(me.0.id, "POST /api/bookings/client/book", key.as_deref());
    idempotency::once(&state, me.0.id, "POST /api/bookings/client/book", key, &body, {
        let state = state.clone();
        async move {
            let id = ids.nth(0);
            if ids.derived() {
                // A rerun after its first attempt's outcome was lost: answer with its booking.
                let mine = BookingStore::new(&state.db)
                    .get_unscoped(id)
                    .await?
                    .filter(|b| b.created_by == "client");
                if let Some(b) = mine {
                    let data = json!({ "success": true, "data": b.client_view() });
                    return Ok((StatusCode::CREATED, Json(data)).into_response());
                }
            }
            let created = crate::availability::book_as_client(&state, &me, req, id).await?;
            Ok((
                StatusCode::CREATED,
                Json(json!({ "success": true, "data": created.client_view() })),
            )
                .into_response())
        }
    })
    .await
}

/// Cancels one of the client's own bookings, if far enough ahead.
#[utoipa::path(patch, path = "/api/bookings/client/{id}/cancel", tag = "bookings",
    responses((status = 200), (status = 404), (status = 409)))]
pub async fn client_cancel(
    State(state): State<AppState>,
    me: ClientUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let key = idempotency::key_from(&headers)?;
    let req: CancelBooking = parse_body(&headers, &body)?;
    let route = format!("PATCH /api/bookings/client/{id}/cancel");
    let st = state.clone();
    idempotency::once(&state, me.0.id, &route, key, &body, async move {
        let state = st;
        let id = parse_id(&id, "id")?;
        let records = my_client_records(&state, &me).await?;
        let b = BookingStore::new(&state.db)
            .get_unscoped(id)
            .await?
            .filter(|b| records.contains(&b.client_id))
            .ok_or_else(|| ApiError::not_found("Booking"))?;
        let window = chrono::Duration::hours(state.config.bookings.client_cancel_hours as i64);
        if b.starts_at.to_chrono() - chrono::Utc::now() <= window {
            return Err(ApiError::conflict(
                "CANCELLATION_WINDOW_PASSED",
                format!(
                    "Bookings can be cancelled online up to {} hours before they start",
                    window.num_hours()
                ),
            ));
        }
        let updated = service::transition(
            &state,
            &b,
            BookingStatus::Cancelled,
            Document::new(),
            Some(("client", req.reason)),
        )
        .await?;
        Ok(envelope::ok(updated.client_view()))
    })
    .await
}
