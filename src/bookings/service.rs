//! Booking rules: placing local times in the therapist's zone, claiming time, series,
//! transitions, rescheduling and cancelling.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime};
use serde_json::{json, Map, Value};

use super::claims::{buckets, buckets_of, Claimed, Claims, BUCKET_MINUTES};
use super::model::{Booking, BookingStatus, Cancellation};
use super::store::BookingStore;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::events::{BookingChange, BookingChanged, Event};
use crate::time;

/// A requested occurrence, placed in UTC.
#[derive(Debug, Clone)]
pub struct Placed {
    pub date: String,
    pub start_time: String,
    pub end_time: String,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: chrono::DateTime<chrono::Utc>,
}

impl Placed {
    /// Length in minutes.
    pub fn minutes(&self) -> u32 {
        ((self.ends_at - self.starts_at).num_minutes()).max(0) as u32
    }

    /// `{date, startTime, endTime}` of the occurrence.
    pub fn interval(&self) -> Value {
        json!({ "date": self.date, "startTime": self.start_time, "endTime": self.end_time })
    }
}

fn bad(field: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::field(field, e.to_string())
}

/// Validates and places `date` + `startTime`/`endTime` in `zone`.
pub fn place(zone: Tz, date: &str, start: &str, end: &str) -> ApiResult<Placed> {
    let day = time::parse_date(date).map_err(|e| bad("date", e))?;
    let s = time::minutes_of_day(start).map_err(|e| bad("startTime", e))?;
    let e = time::minutes_of_day(end).map_err(|e| bad("endTime", e))?;
    if start == "24:00" {
        return Err(bad("startTime", "must be 00:00 to 23:59"));
    }
    let grid = BUCKET_MINUTES as u32;
    if s % grid != 0 {
        return Err(bad("startTime", format!("must be on a {grid}-minute boundary")));
    }
    if e % grid != 0 {
        return Err(bad("endTime", format!("must be on a {grid}-minute boundary")));
    }
    if e <= s {
        return Err(bad("endTime", "must be after startTime"));
    }
    if e - s > 12 * 60 {
        return Err(bad("endTime", "a session lasts at most 12 hours"));
    }
    let (starts_at, ends_at) = time::local_interval(zone, day, start, end).map_err(|(f, e)| bad(f, e))?;
    Ok(Placed {
        date: date.to_owned(),
        start_time: start.to_owned(),
        end_time: end.to_owned(),
        starts_at,
        ends_at,
    })
}

/// The occurrences of a series: every `interval` weeks, `count` times, same local times.
pub fn series(zone: Tz, first: &Placed, interval_weeks: u32, count: u32) -> ApiResult<Vec<Placed>> {
    let day0: NaiveDate = time::parse_date(&first.date).map_err(|e| bad("date", e))?;
    (0..count)
        .map(|i| {
            let day = day0 + Duration::weeks(i64::from(interval_weeks * i));
            let date = day.format("%Y-%m-%d").to_string();
            place(zone, &date, &first.start_time, &first.end_time).map_err(|e| match e {
                ApiError::Validation(mut errs) => {
                    for err in &mut errs {
                        err.message = format!("{} (occurrence on {date})", err.message);
                    }
                    ApiError::Validation(errs)
                }
                other => other,
            })
        })
        .collect()
}

/// The claims of this deployment.
pub fn claims(state: &AppState) -> Claims {
    Claims::new(&state.db, state.config.bookings.claim_retention_days)
}

/// 400 when a booking would end before the time whose claims are kept.
fn check_not_too_old(claims: &Claims, ends_at: chrono::DateTime<chrono::Utc>) -> ApiResult<()> {
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
async fn check_deadline(claims: &Claims, token: ObjectId, started: std::time::Instant) -> ApiResult<()> {
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

/// Inserts `bookings` (one occurrence each) after claiming their time under one attempt
/// token; all or nothing.
/// Creates `bookings` (one, or a series) atomically against every other claim of their time,
/// then tells it: requested when a client booked, created otherwise.
pub async fn create_all(
    state: &AppState,
    mut bookings: Vec<Booking>,
    client_name: Option<String>,
) -> ApiResult<Vec<Booking>> {
    let claims = claims(state);
    let token = ObjectId::new();
    let started = std::time::Instant::now();
    for b in &bookings {
        check_not_too_old(&claims, b.ends_at.to_chrono())?;
    }
    for b in &mut bookings {
        b.claim_tokens = vec![token];
    }
    for b in &bookings {
        match claims.claim(b.therapist_id, b.id, token, &buckets_of(b)).await {
            Ok(Claimed::Ok) => {}
            Ok(Claimed::Conflict) => {
                claims.release_attempt(token).await?;
                return Err(slot_taken(state, &bookings, None).await);
            }
            Err(e) => {
                let _ = claims.release_attempt(token).await;
                return Err(e.into());
            }
        }
    }
    check_deadline(&claims, token, started).await?;
    let store = BookingStore::new(&state.db);
    if let Err(e) = store.insert_all(&bookings).await {
        // Part of a series may have been written. Remove it before letting go of the time; if
        // that fails too, keep the claims: they protect the time until the reaper sees no
        // booking behind them.
        let ids: Vec<ObjectId> = bookings.iter().map(|b| b.id).collect();
        if store.delete_ids(&ids).await.is_ok() {
            claims.release_attempt(token).await?;
        }
        return Err(e.into());
    }
    if let Some(first) = bookings.first() {
        let kind = if first.created_by == "client" {
            BookingChange::Requested
        } else {
            BookingChange::Created
        };
        let mut event = changed(first, kind, client_name);
        event.bookings = bookings.iter().map(|b| b.id).collect();
        state.events.emit(Event::Booking(event)).await;
    }
    Ok(bookings)
}

/// The 409 for `wanted`: every blocking booking, and which requested occurrences it blocks.
async fn slot_taken(state: &AppState, wanted: &[Booking], exclude: Option<ObjectId>) -> ApiError {
    let store = BookingStore::new(&state.db);
    let mut conflicts: Vec<Value> = Vec::new();
    let mut occurrences: Vec<Value> = Vec::new();
    for w in wanted {
        let found = store
            .overlapping(
                w.therapist_id,
                w.starts_at,
                w.ends_at,
                w.buffer_minutes,
                exclude.or(Some(w.id)),
            )
            .await
            .unwrap_or_default();
        let occurrence = json!({ "date": w.date, "startTime": w.start_time, "endTime": w.end_time });
        // A winner may not have written its booking yet: its claim still blocks this occurrence.
        let blockers: Vec<Value> = if found.is_empty() {
            vec![occurrence.clone()]
        } else {
            found
                .iter()
                .map(|b| json!({ "date": b.date, "startTime": b.start_time, "endTime": b.end_time }))
                .collect()
        };
        if !found.is_empty() || wanted.len() == 1 {
            occurrences.push(occurrence.clone());
        }
        for b in blockers {
            if !conflicts.contains(&b) {
                conflicts.push(b);
            }
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

/// Changes status (and extra fields) under the version guard; releases time on cancel.
pub async fn transition(
    state: &AppState,
    booking: &Booking,
    to: BookingStatus,
    mut set: mongodb::bson::Document,
    cancelled_by: Option<(&str, Option<String>)>,
) -> ApiResult<Booking> {
    check_transition(booking.status, to)?;
    set.insert("status", to.as_str());
    set.insert("updatedAt", DateTime::now());
    if let Some((by, reason)) = cancelled_by {
        let c = Cancellation {
            reason,
            cancelled_at: DateTime::now(),
            cancelled_by: by.to_owned(),
        };
        set.insert("cancellation", mongodb::bson::to_bson(&c)?);
    }
    let guard = doc! { "_id": booking.id, "therapistId": booking.therapist_id, "version": booking.version };
    let updated = BookingStore::new(&state.db)
        .update_guarded(guard, set)
        .await?
        .ok_or_else(|| {
            ApiError::PreconditionFailed("This booking changed meanwhile; reload and try again".into())
        })?;
    if !to.holds_time() {
        claims(state).release_all(booking.id).await?;
    }
    if to != booking.status {
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
    }
    Ok(updated)
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

/// Moves a booking to `to`, claiming the new time first (keeping what it already holds).
pub async fn reschedule(
    state: &AppState,
    booking: &Booking,
    to: &Placed,
    extra: mongodb::bson::Document,
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
        == Claimed::Conflict
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
    let mut set = extra;
    set.insert("date", &to.date);
    set.insert("startTime", &to.start_time);
    set.insert("endTime", &to.end_time);
    set.insert("startsAt", DateTime::from_chrono(to.starts_at));
    set.insert("endsAt", DateTime::from_chrono(to.ends_at));
    set.insert("therapyDuration", to.minutes());
    set.insert("claimTokens", tokens);
    set.insert("updatedAt", DateTime::now());
    let guard = doc! { "_id": booking.id, "therapistId": booking.therapist_id, "version": booking.version };
    match BookingStore::new(&state.db).update_guarded(guard, set).await {
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
            Err(ApiError::PreconditionFailed(
                "This booking changed meanwhile; reload and try again".into(),
            ))
        }
        Err(e) => {
            let _ = claims.release_attempt(token).await;
            Err(e.into())
        }
    }
}
