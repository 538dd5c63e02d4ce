//! Every change of a therapist's availability: one function per action (schedule, block and
//! absence edits) that performs the write and then tells it (`AvailabilityChanged`), so what
//! depends on a therapist's open time (caches, reminders) has one seam to listen to.

use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;

use super::blocks::{self, BlockInput};
use super::model::{AbsenceInput, AbsenceKind, AbsencePatch, Block, Schedule};
use super::recurrence::BlockRule;
use super::store::AvailabilityStore;
use crate::app::AppState;
use crate::db::OwnerScope;
use crate::error::{ApiError, ApiResult};
use crate::events::{AvailabilityChange, AvailabilityChanged, Event};
use crate::time;

async fn changed(state: &AppState, therapist: ObjectId, kind: AvailabilityChange) {
    state
        .events
        .emit(Event::Availability(AvailabilityChanged { therapist, kind }))
        .await;
}

/// Replaces the therapist's booking rules (already validated).
pub async fn put_schedule(state: &AppState, therapist: ObjectId, schedule: &Schedule) -> ApiResult<()> {
    AvailabilityStore::new(&state.db)
        .put_schedule(therapist, schedule)
        .await?;
    changed(state, therapist, AvailabilityChange::Schedule).await;
    Ok(())
}

/// Creates a time block; the block and the zone it was read in.
pub async fn create_block(
    state: &AppState,
    therapist: ObjectId,
    input: BlockInput,
) -> ApiResult<(Block, Tz)> {
    let store = AvailabilityStore::new(&state.db);
    let zone = store.zone(therapist).await?;
    let block = blocks::new_block(therapist, input, zone)?;
    store.insert_block(&block).await?;
    changed(state, therapist, AvailabilityChange::Blocks).await;
    Ok((block, zone))
}

/// Changes a time block: what `input` leaves out keeps its value.
pub async fn update_block(
    state: &AppState,
    therapist: ObjectId,
    id: ObjectId,
    input: BlockInput,
) -> ApiResult<(Block, Tz)> {
    let store = AvailabilityStore::new(&state.db);
    let scope = OwnerScope::of(therapist);
    let zone = store.zone(therapist).await?;
    let mut block = store
        .get_block(&scope, id, "block")
        .await?
        .ok_or_else(|| ApiError::not_found("Block"))?;
    let rule = BlockRule::of(&block, zone).ok_or_else(|| ApiError::not_found("Block"))?;
    input.over(&block, &rule).apply(&mut block, zone)?;
    block.updated_at = DateTime::now();
    if !store.replace_block(&scope, &block).await? {
        return Err(ApiError::not_found("Block"));
    }
    changed(state, therapist, AvailabilityChange::Blocks).await;
    Ok((block, zone))
}

/// Deletes a time block.
pub async fn delete_block(state: &AppState, therapist: ObjectId, id: ObjectId) -> ApiResult<()> {
    let gone = AvailabilityStore::new(&state.db)
        .delete_block(&OwnerScope::of(therapist), id, "block")
        .await?;
    if !gone {
        return Err(ApiError::not_found("Block"));
    }
    changed(state, therapist, AvailabilityChange::Blocks).await;
    Ok(())
}

/// The UTC interval of an absence's whole local days in `zone`.
fn absence_interval(zone: Tz, input: &AbsenceInput) -> ApiResult<(DateTime, DateTime)> {
    let from = input
        .start_date
        .as_deref()
        .ok_or_else(|| ApiError::field("startDate", "is required"))?;
    let to = input.end_date.as_deref().unwrap_or(from);
    let a = time::parse_date(from).map_err(|e| ApiError::field("startDate", e.to_string()))?;
    let b = time::parse_date(to).map_err(|e| ApiError::field("endDate", e.to_string()))?;
    if b < a {
        return Err(ApiError::field("endDate", "must not be before startDate"));
    }
    if (b - a).num_days() > 366 {
        return Err(ApiError::field("endDate", "an absence lasts at most a year"));
    }
    Ok((
        DateTime::from_chrono(time::day_bounds(zone, a).0),
        DateTime::from_chrono(time::day_bounds(zone, b).1),
    ))
}

/// Records an absence; it and the zone its days were read in.
pub async fn create_absence(
    state: &AppState,
    therapist: ObjectId,
    input: AbsenceInput,
) -> ApiResult<(Block, Tz)> {
    let store = AvailabilityStore::new(&state.db);
    let zone = store.zone(therapist).await?;
    let (starts_at, ends_at) = absence_interval(zone, &input)?;
    let mut block = blocks::empty(therapist, "absence");
    block.absence_type = Some(input.absence_type.unwrap_or(AbsenceKind::Other));
    block.reason = input.reason;
    (block.starts_at, block.ends_at) = (starts_at, ends_at);
    store.insert_block(&block).await?;
    changed(state, therapist, AvailabilityChange::Absences).await;
    Ok((block, zone))
}

/// Changes an absence's days (and reason or type when given).
pub async fn update_absence(
    state: &AppState,
    therapist: ObjectId,
    id: ObjectId,
    input: AbsenceInput,
) -> ApiResult<(Block, Tz)> {
    let store = AvailabilityStore::new(&state.db);
    let zone = store.zone(therapist).await?;
    let (starts_at, ends_at) = absence_interval(zone, &input)?;
    let patch = AbsencePatch {
        starts_at,
        ends_at,
        reason: input.reason,
        absence_type: input.absence_type,
        updated_at: DateTime::now(),
    };
    let block = store
        .update_absence(&OwnerScope::of(therapist), id, &patch)
        .await?
        .ok_or_else(|| ApiError::not_found("Absence"))?;
    changed(state, therapist, AvailabilityChange::Absences).await;
    Ok((block, zone))
}

/// Removes an absence.
pub async fn delete_absence(state: &AppState, therapist: ObjectId, id: ObjectId) -> ApiResult<()> {
    let gone = AvailabilityStore::new(&state.db)
        .delete_block(&OwnerScope::of(therapist), id, "absence")
        .await?;
    if !gone {
        return Err(ApiError::not_found("Absence"));
    }
    changed(state, therapist, AvailabilityChange::Absences).await;
    Ok(())
}
