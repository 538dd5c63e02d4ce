//! The client booking site: a therapist's free slots (public, limited per IP), whether a time
//! can be booked, and the signed-in client booking and cancelling their own sessions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::book::book_as_client;
use super::busy::{free_slots, refusal, time_use};
use super::list::my_client_records;
use super::model::{BookingPatch, BookingStatus, CancelBooking, CheckSlot, ClientBook};
use super::place::place;
use super::query::DurationQuery;
use super::service;
use super::store::BookingStore;
use crate::app::AppState;
use crate::auth::extract::{parse_id, AuthUser, ClientUser};
use crate::availability::model::SlotRange;
use crate::availability::query::{public_limit, public_therapist, public_therapist_as, range_of};
use crate::availability::slots::Slot;
use crate::availability::store::AvailabilityStore;
use crate::cache::family::{query_key, Family};
use crate::error::{ApiError, ApiResult};
use crate::http::client_ip::ClientIp;
use crate::http::envelope;
use crate::http::extract::{ApiQuery, ValidatedJson};
use crate::idempotency::Idempotent;
use crate::time;

fn slot_view(zone: Tz, s: &Slot) -> Value {
    let start = Utc.timestamp_opt(s.start, 0).single().unwrap_or_default();
    let end = Utc.timestamp_opt(s.end, 0).single().unwrap_or_default();
    let (date, st) = time::to_local(zone, start);
    let (_, et) = time::to_local(zone, end);
    json!({ "date": date, "startTime": st, "endTime": et, "startsAt": start.to_rfc3339(), "endsAt": end.to_rfc3339() })
}

/// Public: free slots of a therapist over a date range (at most 62 days).
#[utoipa::path(get, path = "/api/availability/therapist/{id}", tag = "availability",
    security((), ("therapist" = []), ("client" = [])),
    params(crate::http::docs::TherapistPath, ApiQuery<crate::availability::model::SlotRange>),
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::Slots>), crate::http::docs::TooManyRequests))]
pub async fn slots_range(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    caller: Option<AuthUser>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SlotRange>,
) -> ApiResult<Response> {
    public_limit(&state, ip).await?;
    let therapist = public_therapist_as(&state, &id, caller).await?;
    let fill = || async {
        let zone = AvailabilityStore::new(&state.db).zone(therapist).await?;
        let (from, to) = range_of(&q.dates(), zone, 14, 62)?;
        let (zone, list) = free_slots(&state, therapist, from, to, q.session_duration.unwrap_or(60)).await?;
        let views: Vec<Value> = list.iter().map(|s| slot_view(zone, s)).collect();
        Ok(envelope::ok_body(
            json!({ "therapistId": therapist.to_hex(), "timezone": zone.name(), "slots": views }),
        ))
    };
    let key = slots_key("range", &q);
    let brief = std::time::Duration::from_secs(60);
    state
        .cache
        .json_for(Family::Availability, therapist, &key, brief, fill)
        .await
}

/// The cache key of a slot page: its parsed query and the current minute (what is free
/// depends on the time: a slot past its notice period is no longer offered); such a page is
/// kept a minute.
fn slots_key<T: serde::Serialize>(what: &str, query: &T) -> String {
    let minute = Utc::now().timestamp() / 60;
    query_key(&format!("{what}:m{minute}"), query)
}

/// Public: free slots of a therapist on one local date.
#[utoipa::path(get, path = "/api/availability/therapist/{id}/date/{date}", tag = "availability",
    security((), ("therapist" = []), ("client" = [])),
    params(crate::http::docs::TherapistPath, ("date" = crate::http::docs::DateText, Path, description = "A day of the therapist's calendar"), ApiQuery<super::query::DurationQuery>),
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::Slots>), crate::http::docs::TooManyRequests))]
pub async fn slots_for_date(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    caller: Option<AuthUser>,
    Path((id, date)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DurationQuery>,
) -> ApiResult<Response> {
    public_limit(&state, ip).await?;
    let therapist = public_therapist_as(&state, &id, caller).await?;
    let day = time::parse_date(&date).map_err(|e| ApiError::field("date", e.to_string()))?;
    let fill = || async {
        let (zone, list) = free_slots(&state, therapist, day, day, q.session_duration.unwrap_or(60)).await?;
        let views: Vec<Value> = list.iter().map(|s| slot_view(zone, s)).collect();
        Ok(envelope::ok_body(
            json!({ "date": date, "timezone": zone.name(), "slots": views }),
        ))
    };
    let key = slots_key(&format!("date:{date}"), &q);
    let brief = std::time::Duration::from_secs(60);
    state
        .cache
        .json_for(Family::Availability, therapist, &key, brief, fill)
        .await
}

/// Public: whether a client could book this time now.
#[utoipa::path(post, path = "/api/availability/check-slot", tag = "availability",
    security(()),
    request_body = super::model::CheckSlot,
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::SlotCheck>), (status = 404, description = "No such therapist"), crate::http::docs::TooManyRequests))]
pub async fn check_slot(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(req): ValidatedJson<CheckSlot>,
) -> ApiResult<Response> {
    public_limit(&state, ip).await?;
    let therapist = public_therapist(&state, &req.therapist_id).await?;
    let (schedule, zone) = AvailabilityStore::new(&state.db)
        .schedule_in_zone(therapist)
        .await?;
    let p = place(zone, &req.date, &req.start_time, &req.end_time)?;
    let day = time::parse_date(&req.date).map_err(|e| ApiError::field("date", e.to_string()))?;
    let used = time_use(&state, therapist, zone, day, day, Duration::days(1)).await?;
    let reason = refusal(
        &schedule,
        zone,
        day,
        p.starts_at.timestamp(),
        p.ends_at.timestamp(),
        &used,
    );
    Ok(envelope::ok(
        json!({ "available": reason.is_none(), "reason": reason.map(|r| format!("This time {r}")) }),
    ))
}

/// Books a free slot of a therapist from the booking site (status `pending`).
#[utoipa::path(post, path = "/api/bookings/client/book", tag = "bookings",
    security(("client" = [])),
    params(crate::http::docs::IdempotencyKey),
    request_body = ClientBook,
    responses((status = 201, body = crate::http::docs::Data<crate::bookings::docs::BookingView>), (status = 403, description = "The therapist keeps a record for this email that is not linked yet"), (status = 404, description = "No such therapist"), (status = 409, description = "`SLOT_TAKEN`, `IDEMPOTENCY_KEY_REUSED`, `IDEMPOTENCY_IN_PROGRESS`, `CONCURRENT_UPDATE`")))]
pub async fn client_book(
    State(state): State<AppState>,
    me: ClientUser,
    idem: Idempotent<ClientBook>,
) -> ApiResult<Response> {
    let st = state.clone();
    idem.once(&state, me.0.id, |req, ids| async move {
        let booking = book_as_client(&st, &me, req, &ids).await?;
        let data = json!({ "success": true, "data": booking.client_view() });
        Ok((StatusCode::CREATED, Json(data)).into_response())
    })
    .await
}

/// Cancels one of the client's own bookings, if far enough ahead.
#[utoipa::path(patch, path = "/api/bookings/client/{id}/cancel", tag = "bookings",
    security(("client" = [])),
    params(crate::http::docs::IdPath, crate::http::docs::IdempotencyKey),
    request_body = Option<CancelBooking>,
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::BookingView>), (status = 409, description = "`CANCELLATION_WINDOW_PASSED`, `IDEMPOTENCY_KEY_REUSED`, `IDEMPOTENCY_IN_PROGRESS`, `CONCURRENT_UPDATE`")))]
pub async fn client_cancel(
    State(state): State<AppState>,
    me: ClientUser,
    Path(id): Path<String>,
    idem: Idempotent<CancelBooking>,
) -> ApiResult<Response> {
    let st = state.clone();
    idem.once(&state, me.0.id, |req, _| async move {
        let id = parse_id(&id, "id")?;
        let records = my_client_records(&st, &me).await?;
        let b = BookingStore::new(&st.db)
            .get_unscoped(id)
            .await?
            .filter(|b| records.contains(&b.client_id))
            .ok_or_else(|| ApiError::not_found("Booking"))?;
        let hours = st.config.bookings.client_cancel_hours as i64;
        if b.starts_at.to_chrono() - Utc::now() <= Duration::hours(hours) {
            return Err(ApiError::conflict(
                "CANCELLATION_WINDOW_PASSED",
                format!("Bookings can be cancelled online up to {hours} hours before they start"),
            ));
        }
        let by = Some(("client", req.reason));
        let updated =
            service::transition(&st, &b, BookingStatus::Cancelled, BookingPatch::default(), by).await?;
        Ok(envelope::ok(updated.client_view()))
    })
    .await
}
