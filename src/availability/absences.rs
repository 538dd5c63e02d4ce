//! Absences (vacation, sick leave...): whole local days the therapist cannot be booked.

use axum::extract::{Path, State};
use axum::response::Response;
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::model::{AbsenceInput, Block, DateRange};
use super::open_time::padded_bounds;
use super::query::range_of;
use super::service;
use super::store::AvailabilityStore;
use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::error::ApiResult;
use crate::http::envelope;
use crate::http::extract::{ApiQuery, ValidatedJson};
use crate::time;

/// An absence as the dashboard reads it: its local days and times in `zone`.
fn absence_view(b: &Block, zone: Tz) -> Value {
    let (sd, st) = time::to_local(zone, b.starts_at.to_chrono());
    let (ed, et) = time::to_local(zone, b.ends_at.to_chrono());
    let id = b.id.to_hex();
    json!({
        "id": id, "_id": id, "therapistId": b.therapist_id.to_hex(), "kind": b.kind,
        "type": b.absence_type, "reason": b.reason,
        "date": sd, "startTime": st, "endTime": et, "startDate": sd, "endDate": ed,
        "startsAt": time::rfc3339(b.starts_at), "endsAt": time::rfc3339(b.ends_at),
    })
}

/// The caller's absences.
#[utoipa::path(get, path = "/api/availability/exceptions", tag = "availability",
    security(("therapist" = [])),
    params(ApiQuery<super::model::DateRange>),
    responses((status = 200, body = crate::http::docs::Data<Vec<super::docs::AbsenceView>>), (status = 404, description = "`therapistId` is another therapist")))]
pub async fn list_absences(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<DateRange>,
) -> ApiResult<Response> {
    super::query::therapist_of(&me, &q)?;
    let store = AvailabilityStore::new(&state.db);
    let zone = store.zone(me.0.id).await?;
    let (from, to) = range_of(&q, zone, 366, 800)?;
    let (a, b) = padded_bounds(zone, from, to, chrono::Duration::zero());
    let list = store.blocks_between(me.0.id, a, b, Some("absence")).await?;
    Ok(envelope::ok(
        list.iter().map(|b| absence_view(b, zone)).collect::<Vec<_>>(),
    ))
}

/// Records an absence (vacation, sick leave...).
#[utoipa::path(post, path = "/api/availability/exceptions", tag = "availability",
    security(("therapist" = [])),
    request_body = super::model::AbsenceInput,
    responses((status = 201, body = crate::http::docs::Data<super::docs::AbsenceView>)))]
pub async fn create_absence(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(input): ValidatedJson<AbsenceInput>,
) -> ApiResult<Response> {
    let (block, zone) = service::create_absence(&state, me.0.id, input).await?;
    Ok(envelope::created(absence_view(&block, zone)))
}

/// Changes an absence.
#[utoipa::path(put, path = "/api/availability/exceptions/{id}", tag = "availability",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    request_body = super::model::AbsenceInput,
    responses((status = 200, body = crate::http::docs::Data<super::docs::AbsenceView>)))]
pub async fn update_absence(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<AbsenceInput>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let (block, zone) = service::update_absence(&state, me.0.id, id, input).await?;
    Ok(envelope::ok(absence_view(&block, zone)))
}

/// Removes an absence.
#[utoipa::path(delete, path = "/api/availability/exceptions/{id}", tag = "availability",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::http::docs::Message)))]
pub async fn delete_absence(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    service::delete_absence(&state, me.0.id, id).await?;
    Ok(envelope::message("Absence removed"))
}
