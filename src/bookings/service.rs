//! Every change of a booking, one function per action (change status, cancel, move, edit
//! details; creating one or a series is `create.rs`), each performing its write under the
//! claims and version guards and then telling it (`BookingChanged`).

use std::collections::BTreeSet;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde_json::{json, Map, Value};

use super::claims::{buckets, buckets_of, Claimed, Claims};
use super::model::{Booking, BookingPatch, BookingStatus, Cancellation, UpdateBooking};
use super::place::{place, Placed};
use super::store::BookingStore;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::events::{BookingChange, BookingChanged, Event};

/// The claims of this deployment.
pub fn claims(state: &AppState) -> Claims {
    Claims::new(&state.db, state.config.bookings.claim_retention_days)
}

/// 400 when a booking would end before the time whose claims are kept.
pub(super) fn check_not_too_old(claims: &Claims, ends_at: chrono::DateTime<chrono::Utc>) -> ApiResult<()> {
    if ends_at < claims.earliest_end() {
        return Err(ApiError::field(
            "date",
            "is too far in the past to be booked or moved to",
        ));
    }
    Ok(())
}

/// 503 (after releasing the attempt) when claiming took so long that the reaper could soon
/// take the claims: the booking is never written on top of claims it may lose.
pub(super) async fn check_deadline(
    claims: &Claims,
    token: ObjectId,
    started: std::time::Instant,
) -> ApiResult<()> {
    if started.elapsed().as_secs() as i64 >= super::claims::WRITE_DEADLINE_SECS {
        claims.release_attempt(token).await?;
        return Err(ApiError::Unavailable {
            code: "TIMEOUT",
            message: "The booking could not be written in time; nothing was booked".into(),
            retry_after_secs: 1,
        });
    }
    Ok(())
}

/// The 409 for `wanted`: every blocking booking, and which requested occurrences it blocks.
pub(super) async fn slot_taken(state: &AppState, wanted: &[Booking], exclude: Option<ObjectId>) -> ApiError {
    let store = BookingStore::new(&state.db);
    let mut conflicts: Vec<Value> = Vec::new();
    let mut occurrences: Vec<Value> = Vec::new();
    for w in wanted {
        let found = store
            .in_the_way(
                w.therapist_id,
                w.starts_at,
                w.ends_at,
                w.buffer_minutes,
                exclude.or(Some(w.id)),
            )
            .await
            .unwrap_or_default();
        let occurrence = json!({ "date": w.date, "startTime": w.start_time, "endTime": w.end_time });
        if found.is_empty() {
            // Nothing written blocks it: free, or held by a winner that has not written its
            // booking yet (named below when no occurrence has a written blocker).
            continue;
        }
        occurrences.push(occurrence);
        for b in &found {
            let b = json!({ "date": b.date, "startTime": b.start_time, "endTime": b.end_time });
            if !conflicts.contains(&b) {
                conflicts.push(b);
            }
        }
    }
    if occurrences.is_empty() {
        // Only unwritten claims block: the requested times themselves are what is taken.
        for w in wanted {
            let occurrence = json!({ "date": w.date, "startTime": w.start_time, "endTime": w.end_time });
            conflicts.push(occurrence.clone());
            occurrences.push(occurrence);
        }
    }
    let mut extra = Map::new();
    extra.insert("conflicts".into(), Value::Array(conflicts));
    if wanted.len() > 1 {
        extra.insert("conflictingOccurrences".into(), Value::Array(occurrences));
    }
    ApiError::Conflict {
        code: "SLOT_TAKEN",
        message: "That time is already booked".into(),
        extra,
    }
}

/// 412 when a version was given and differs.
pub fn check_version(current: &Booking, given: Option<i64>) -> ApiResult<()> {
    match given {
        Some(v) if v != current.version => Err(ApiError::PreconditionFailed(format!(
            "This booking changed since you loaded it (version {v}, now {}); reload and try again",
            current.version
        ))),
        _ => Ok(()),
    }
}

/// 400 for a transition the rules forbid.
pub fn check_transition(from: BookingStatus, to: BookingStatus) -> ApiResult<()> {
    if from.can_become(to) {
        Ok(())
    } else {
        Err(ApiError::BadRequest {
            code: "INVALID_STATUS_TRANSITION",
            message: format!("A {} booking cannot become {}", from.as_str(), to.as_str()),
        })
    }
}

fn changed_meanwhile() -> ApiError {
    ApiError::PreconditionFailed("This booking changed meanwhile; reload and try again".into())
}

/// Changes status (and the fields of `patch`) under the version guard; releases time on
/// cancel. `cancelled_by` (who, why) is recorded with a cancellation.
pub async fn transition(
    state: &AppState,
    booking: &Booking,
    to: BookingStatus,
    mut patch: BookingPatch,
    cancelled_by: Option<(&str, Option<String>)>,
) -> ApiResult<Booking> {
    check_transition(booking.status, to)?;
    if to == booking.status {
        // Already there (a repeated cancel, a retry): the first change's record stands (who
        // cancelled, when, why) and the version stays; details sent with it are an edit. Time
        // is released again in case the first change stopped before releasing it.
        if !to.holds_time() {
            claims(state).release_all(booking.id).await?;
        }
        return if patch.is_empty()? {
            Ok(booking.clone())
        } else {
            update_details(state, booking, patch).await
        };
    }
    // Its emails follow: a cancellation notice, or its reminders disarmed or armed.
    let email = if to == BookingStatus::Cancelled {
        "cancellation"
    } else {
        "sync"
    };
    patch.pending_email = Some(email.into());
    patch.status = Some(to);
    patch.cancellation = cancelled_by.map(|(by, reason)| Cancellation {
        reason,
        cancelled_at: DateTime::now(),
        cancelled_by: by.to_owned(),
    });
    let updated = BookingStore::new(&state.db)
        .update_versioned(booking, patch)
        .await?
        .ok_or_else(changed_meanwhile)?;
    if !to.holds_time() {
        claims(state).release_all(booking.id).await?;
    }
    // Every way of changing status (PATCH cancel, PUT status, the client's cancel) tells it.
    let kind = match to {
        BookingStatus::Cancelled => BookingChange::Cancelled,
        BookingStatus::Completed => BookingChange::Completed,
        BookingStatus::NoShow => BookingChange::NoShow,
        _ => BookingChange::StatusChanged,
    };
    let mut event = changed(&updated, kind, None);
    event.by_client = cancelled_by_client(&updated);
    state.events.emit(Event::Booking(event)).await;
    Ok(updated)
}

/// Changes a booking's details (type, price, place, notes, link) under the version guard,
/// neither its time nor its status.
pub async fn update_details(state: &AppState, booking: &Booking, patch: BookingPatch) -> ApiResult<Booking> {
    let updated = BookingStore::new(&state.db)
        .update_versioned(booking, patch)
        .await?
        .ok_or_else(changed_meanwhile)?;
    let event = changed(&updated, BookingChange::Updated, None);
    state.events.emit(Event::Booking(event)).await;
    Ok(updated)
}

/// A booking's price may not go below what its payments count as paid, nor its currency change
/// once anything is paid (payments add up to at most its price, in its currency). Read at the
/// version the change is guarded by: a payment recorded meanwhile moves the version, and the
/// change then fails as changed meanwhile.
async fn refuse_price_below_paid(state: &AppState, booking: &Booking, patch: &BookingPatch) -> ApiResult<()> {
    let new_amount = patch.amount_cents.filter(|a| *a != booking.amount_cents);
    let new_currency = patch.currency.filter(|c| *c != booking.currency);
    if new_amount.is_none() && new_currency.is_none() {
        return Ok(());
    }
    let paid = BookingStore::new(&state.db)
        .paid_cents_at(booking.id, booking.version)
        .await?
        .ok_or_else(changed_meanwhile)?;
    if new_amount.is_some_and(|a| a.0 < paid) {
        return Err(ApiError::Conflict {
            code: "PRICE_BELOW_PAID",
            message: format!(
                "This booking's payments count {} as paid; its price cannot go below that (refund first)",
                crate::money::Cents(paid).to_major()
            ),
            extra: Default::default(),
        });
    }
    if new_currency.is_some() && paid > 0 {
        return Err(ApiError::conflict(
            "CURRENCY_HAS_PAYMENTS",
            "This booking has payments in its currency; refund them before changing it",
        ));
    }
    Ok(())
}

/// The event telling that `b` (as it is now) changed.
pub fn changed(b: &Booking, kind: BookingChange, client_name: Option<String>) -> BookingChanged {
    BookingChanged {
        therapist: b.therapist_id,
        client: b.client_id,
        bookings: vec![b.id],
        kind,
        by_client: b.created_by == "client" && kind == BookingChange::Requested,
        client_name,
        date: b.date.clone(),
        time: b.start_time.clone(),
        version: b.version,
    }
}

fn cancelled_by_client(b: &Booking) -> bool {
    b.cancellation
        .as_ref()
        .is_some_and(|c| c.cancelled_by == "client")
}

/// Moves a booking to `to` (and sets the other fields of `patch`), claiming the new time
/// first (keeping what it already holds).
pub async fn reschedule(
    state: &AppState,
    booking: &Booking,
    to: &Placed,
    mut patch: BookingPatch,
) -> ApiResult<Booking> {
    if !booking.status.holds_time()
        || booking.status == BookingStatus::Completed
        || booking.status == BookingStatus::NoShow
    {
        return Err(ApiError::BadRequest {
            code: "INVALID_STATUS_TRANSITION",
            message: format!("A {} booking cannot be rescheduled", booking.status.as_str()),
        });
    }
    let old = buckets_of(booking);
    let new: BTreeSet<i64> = buckets(to.starts_at, to.ends_at, booking.buffer_minutes)
        .into_iter()
        .collect();
    let added: BTreeSet<i64> = new.difference(&old).copied().collect();
    let claims = claims(state);
    check_not_too_old(&claims, to.ends_at)?;
    // This attempt's own token: a loser of a race on this booking removes only what it wrote.
    let token = ObjectId::new();
    let started = std::time::Instant::now();
    if claims
        .claim(booking.therapist_id, booking.id, token, &added)
        .await?
        != Claimed::Ok
    {
        let mut probe = booking.clone();
        probe.date = to.date.clone();
        probe.start_time = to.start_time.clone();
        probe.end_time = to.end_time.clone();
        probe.starts_at = DateTime::from_chrono(to.starts_at);
        probe.ends_at = DateTime::from_chrono(to.ends_at);
        return Err(slot_taken(state, &[probe], Some(booking.id)).await);
    }
    check_deadline(&claims, token, started).await?;
    let mut tokens = booking.claim_tokens.clone();
    if !added.is_empty() {
        tokens.push(token);
    }
    patch.date = Some(to.date.clone());
    patch.start_time = Some(to.start_time.clone());
    patch.end_time = Some(to.end_time.clone());
    patch.starts_at = Some(DateTime::from_chrono(to.starts_at));
    patch.ends_at = Some(DateTime::from_chrono(to.ends_at));
    patch.therapy_duration = Some(to.minutes());
    patch.claim_tokens = Some(tokens);
    patch.pending_email = Some("reschedule".into());
    match BookingStore::new(&state.db)
        .update_versioned(booking, patch)
        .await
    {
        Ok(Some(updated)) => {
            // Only buckets held under the tokens of the time it had: never a bucket that a
            // later move of this booking (or the reaper and then another booking) took since.
            let dropped: BTreeSet<i64> = old.difference(&new).copied().collect();
            claims
                .release_buckets(booking.id, &booking.claim_tokens, &dropped)
                .await?;
            let event = changed(&updated, BookingChange::Rescheduled, None);
            state.events.emit(Event::Booking(event)).await;
            Ok(updated)
        }
        Ok(None) => {
            claims.release_attempt(token).await?;
            Err(changed_meanwhile())
        }
        Err(e) => {
            let _ = claims.release_attempt(token).await;
            Err(e.into())
        }
    }
}

/// A therapist's edit (`PUT /api/bookings/:id`): a move when it names a new time, else a status
/// change when it names a status, else a details edit; its details are written with either.
pub async fn edit(state: &AppState, booking: &Booking, req: &UpdateBooking) -> ApiResult<Booking> {
    let details = req.details();
    refuse_price_below_paid(state, booking, &details).await?;
    // A time given as it already is (an edit form sending every field back) is no move.
    let to = if req.moves() {
        let zone = crate::time::parse_zone(&booking.timezone)
            .map_err(|_| ApiError::field("timezone", "is invalid"))?;
        let to = place(
            zone,
            req.date.as_deref().unwrap_or(&booking.date),
            req.start_time.as_deref().unwrap_or(&booking.start_time),
            req.end_time.as_deref().unwrap_or(&booking.end_time),
        )?;
        let same = DateTime::from_chrono(to.starts_at) == booking.starts_at
            && DateTime::from_chrono(to.ends_at) == booking.ends_at;
        (!same).then_some(to)
    } else {
        None
    };
    if let Some(to) = to {
        if req.status.is_some_and(|s| s != booking.status) {
            return Err(ApiError::field(
                "status",
                "change the time and the status in separate requests",
            ));
        }
        reschedule(state, booking, &to, details).await
    } else if let Some(status) = req.status {
        let cancelled_by = (status == BookingStatus::Cancelled).then_some(("therapist", None));
        transition(state, booking, status, details, cancelled_by).await
    } else if details.is_empty()? {
        // Nothing to change (an empty body, or only fields this edit does not take): answered
        // as it is, without a write that would move its version under other editors.
        Ok(booking.clone())
    } else {
        update_details(state, booking, details).await
    }
}
