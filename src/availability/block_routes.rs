//! The time blocks routes: create, change and delete a block, and list a range's blocks with
//! the weekly schedule shown as read-only blocks. Bare JSON, as the dashboard reads it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::block_views;
use super::blocks::{self, BlockInput};
use super::model::DateRange;
use super::open_time::padded_bounds;
use super::query::{range_of, resolve_therapist, YEAR_RANGE_DAYS};
use super::service;
use super::store::AvailabilityStore;
use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::error::ApiResult;
use crate::http::extract::{ApiQuery, ValidatedJson};

/// Creates a block (bare JSON, as the dashboard reads it).
#[utoipa::path(post, path = "/api/availability/blocks", tag = "availability",
    security(("therapist" = [])),
    request_body = super::blocks::BlockInput,
    responses((status = 201, body = super::docs::BlockView)))]
pub async fn create_block(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(input): ValidatedJson<BlockInput>,
) -> ApiResult<Response> {
    let (block, zone) = service::create_block(&state, me.0.id, input).await?;
    Ok((StatusCode::CREATED, Json(block_views::view(&block, zone, None))).into_response())
}

/// Updates a block (bare JSON): what the body leaves out keeps its value.
#[utoipa::path(put, path = "/api/availability/blocks/{id}", tag = "availability",
    security(("therapist" = [])),
    params(("id" = String, Path, description = "A block's id (a schedule block's id is read-only: 400)")),
    request_body = super::blocks::BlockInput,
    responses((status = 200, body = super::docs::BlockView)))]
pub async fn update_block(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<BlockInput>,
) -> ApiResult<Response> {
    if let Some(e) = blocks::read_only(&id) {
        return Err(e);
    }
    let id = parse_id(&id, "id")?;
    let (block, zone) = service::update_block(&state, me.0.id, id, input).await?;
    Ok(Json(block_views::view(&block, zone, None)).into_response())
}

/// Deletes a block (bare JSON).
#[utoipa::path(delete, path = "/api/availability/blocks/{id}", tag = "availability",
    security(("therapist" = [])),
    params(("id" = String, Path, description = "A block's id (a schedule block's id is read-only: 400)")),
    responses((status = 200, body = super::docs::BlockDeleted)))]
pub async fn delete_block(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if let Some(e) = blocks::read_only(&id) {
        return Err(e);
    }
    let id = parse_id(&id, "id")?;
    service::delete_block(&state, me.0.id, id).await?;
    Ok(Json(json!({ "deleted": true, "id": id.to_hex() })).into_response())
}

/// The therapist's time blocks over a range (bare JSON list), with the weekly schedule as
/// read-only recurring `availability` blocks (`source: "schedule"`), each with its
/// `occurrences` in the range.
#[utoipa::path(get, path = "/api/availability/therapist/{id}/blocks", tag = "availability",
    security(("therapist" = [])),
    params(crate::http::docs::TherapistPath, ApiQuery<super::model::DateRange>),
    responses((status = 200, body = Vec<super::docs::BlockView>)))]
pub async fn list_blocks(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DateRange>,
) -> ApiResult<Response> {
    let therapist = resolve_therapist(&me, &id, "id")?;
    super::query::therapist_of(&me, &q)?;
    let store = AvailabilityStore::new(&state.db);
    let (schedule, zone) = store.schedule_in_zone(therapist).await?;
    let (from, to) = range_of(&q, zone, 366, YEAR_RANGE_DAYS)?;
    let (a, b) = padded_bounds(zone, from, to, chrono::Duration::zero());
    let list = store.blocks_between(therapist, a, b, Some("block")).await?;
    let mut views = block_views::schedule_views(therapist, &schedule, zone, from, to);
    views.extend(
        list.iter()
            .filter(|b| block_views::occurs_within(b, zone, from, to))
            .map(|b| block_views::view(b, zone, Some((from, to)))),
    );
    views.sort_by(|x, y| {
        (x["startDate"].as_str(), x["startTime"].as_str())
            .cmp(&(y["startDate"].as_str(), y["startTime"].as_str()))
    });
    Ok(Json(views).into_response())
}
