//! The therapist's changes to their calendar: book (one or a series), edit, cancel, move,
//! complete, no-show. Each handler parses, checks the version the change was read at, and calls
//! one service function. Writes that claim or release time run detached from the request, so a
//! change that has begun always completes.

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::json;

use super::book::book_as_therapist;
use super::list::{load, one_view};
use super::model::{
    BookingPatch, BookingStatus, CancelBooking, CreateBooking, RescheduleBooking, StatusChange, UpdateBooking,
};
use super::place::place;
use super::service::{self, check_version};
use super::store::BookingStore;
use crate::app::AppState;
use crate::auth::extract::Therapist;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::{IfMatch, JsonBody};
use crate::idempotency::{detached, Idempotent};

/// Creates a booking, or an all-or-nothing weekly series (`recurrence`).
#[utoipa::path(post, path = "/api/bookings", tag = "bookings",
    security(("therapist" = [])),
    params(crate::http::docs::IdempotencyKey),
    request_body = CreateBooking,
    responses((status = 201, body = crate::http::docs::Data<crate::bookings::docs::Booked>), (status = 409, description = "`SLOT_TAKEN` (with `conflicts`, `conflictingOccurrences`), `IDEMPOTENCY_KEY_REUSED`, `IDEMPOTENCY_IN_PROGRESS`, `CONCURRENT_UPDATE`")))]
pub async fn create(
    State(state): State<AppState>,
    me: Therapist,
    idem: Idempotent<CreateBooking>,
) -> ApiResult<Response> {
    let st = state.clone();
    idem.once(&state, me.0.id, |req, ids| async move {
        let (created, series) = book_as_therapist(&st, &me, req, &ids).await?;
        let mut views = BookingStore::new(&st.db).views(&created).await?;
        let data = if series {
            json!(views)
        } else {
            views.pop().unwrap_or_default()
        };
        Ok(envelope::created(data))
    })
    .await
}

/// Partial update under the optimistic version (body `version` or `If-Match`; stale: 412).
#[utoipa::path(put, path = "/api/bookings/{id}", tag = "bookings",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath, crate::http::docs::IfMatchHeader),
    request_body = Option<UpdateBooking>,
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::BookingView>), (status = 409, description = "`SLOT_TAKEN`, `CONCURRENT_UPDATE`; `PRICE_BELOW_PAID`, `CURRENCY_HAS_PAYMENTS`: the price or currency would no longer fit its payments"), crate::http::docs::StaleVersion))]
pub async fn update(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(req): JsonBody<UpdateBooking>,
) -> ApiResult<Response> {
    // A move claims and releases time: once begun it runs to completion, whatever the request.
    detached(async move {
        crate::http::extract::require_https(&state.config, "meetingLink", req.meeting_link.as_deref())?;
        let b = load(&state, &me, &id).await?;
        check_version(&b, if_match.or_body(req.version)?)?;
        let updated = service::edit(&state, &b, &req).await?;
        Ok(envelope::ok(one_view(&state, &updated).await?))
    })
    .await
}

/// Cancels (frees the time). Honours `Idempotency-Key`.
#[utoipa::path(patch, path = "/api/bookings/{id}/cancel", tag = "bookings",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath, crate::http::docs::IfMatchHeader, crate::http::docs::IdempotencyKey),
    request_body = Option<CancelBooking>,
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::BookingView>), (status = 409, description = "`IDEMPOTENCY_KEY_REUSED`, `IDEMPOTENCY_IN_PROGRESS`, `CONCURRENT_UPDATE`"), crate::http::docs::StaleVersion))]
pub async fn cancel(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    if_match: IfMatch,
    idem: Idempotent<CancelBooking>,
) -> ApiResult<Response> {
    let st = state.clone();
    idem.once(&state, me.0.id, |req, _| async move {
        let b = load(&st, &me, &id).await?;
        check_version(&b, if_match.or_body(req.version)?)?;
        let by = Some(("therapist", req.reason));
        let updated =
            service::transition(&st, &b, BookingStatus::Cancelled, BookingPatch::default(), by).await?;
        Ok(envelope::ok(one_view(&st, &updated).await?))
    })
    .await
}

/// Moves a booking to another time (claims the new time before letting go of the old).
#[utoipa::path(put, path = "/api/bookings/{id}/reschedule", tag = "bookings",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath, crate::http::docs::IfMatchHeader),
    request_body = RescheduleBooking,
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::BookingView>), (status = 409, description = "`SLOT_TAKEN`, `CONCURRENT_UPDATE`"), crate::http::docs::StaleVersion))]
pub async fn reschedule(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(req): JsonBody<RescheduleBooking>,
) -> ApiResult<Response> {
    // A move claims and releases time: once begun it runs to completion, whatever the request.
    detached(async move {
        let b = load(&state, &me, &id).await?;
        check_version(&b, if_match.or_body(req.version)?)?;
        let zone =
            crate::time::parse_zone(&b.timezone).map_err(|_| ApiError::field("timezone", "is invalid"))?;
        let to = place(zone, &req.date, &req.start_time, &req.end_time)?;
        let patch = BookingPatch {
            reschedule_reason: req.reason,
            ..BookingPatch::default()
        };
        let updated = service::reschedule(&state, &b, &to, patch).await?;
        Ok(envelope::ok(one_view(&state, &updated).await?))
    })
    .await
}

/// Complete or no-show, with optional notes, under the version guard.
async fn set_status(
    state: AppState,
    me: Therapist,
    id: String,
    if_match: IfMatch,
    req: StatusChange,
    to: BookingStatus,
) -> ApiResult<Response> {
    let b = load(&state, &me, &id).await?;
    check_version(&b, if_match.or_body(req.version)?)?;
    let patch = BookingPatch {
        notes: req.notes,
        ..BookingPatch::default()
    };
    let updated = service::transition(&state, &b, to, patch, None).await?;
    Ok(envelope::ok(one_view(&state, &updated).await?))
}

/// Marks a booking completed.
#[utoipa::path(put, path = "/api/bookings/{id}/complete", tag = "bookings",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath, crate::http::docs::IfMatchHeader),
    request_body = Option<super::model::StatusChange>,
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::BookingView>), crate::http::docs::Concurrent, crate::http::docs::StaleVersion))]
pub async fn complete(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(req): JsonBody<StatusChange>,
) -> ApiResult<Response> {
    detached(set_status(state, me, id, if_match, req, BookingStatus::Completed)).await
}

/// Marks a booking as a no-show.
#[utoipa::path(put, path = "/api/bookings/{id}/no-show", tag = "bookings",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath, crate::http::docs::IfMatchHeader),
    request_body = Option<super::model::StatusChange>,
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::BookingView>), crate::http::docs::Concurrent, crate::http::docs::StaleVersion))]
pub async fn no_show(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(req): JsonBody<StatusChange>,
) -> ApiResult<Response> {
    detached(set_status(state, me, id, if_match, req, BookingStatus::NoShow)).await
}
