//! A therapist's time as bookings and availability together decide it: what bookings hold on
//! top of what blocks and absences open and close, and what follows from it (free slots for
//! the booking site, occupancy for the dashboard).

use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;

use super::store::BookingStore;
use crate::app::AppState;
use crate::availability::model::{Schedule, MAX_BUFFER_MINUTES};
use crate::availability::open_time::{padded_bounds, secs, BlockedTime};
use crate::availability::slots::{self, Slot, SlotRequest};
use crate::availability::store::AvailabilityStore;
use crate::error::{ApiError, ApiResult};
use crate::time;

/// A therapist's time around some local dates, as sorted Unix-second intervals.
pub struct TimeUse {
    /// Bookings holding time, sorted by start.
    pub bookings: Vec<(i64, i64)>,
    /// What those bookings hold, sorted by start: each to its end plus the buffer it was made
    /// with (what its time claims hold), which the schedule's buffer may since have changed.
    pub held: Vec<(i64, i64)>,
    /// What blocks and absences open and close.
    pub blocked: BlockedTime,
}

/// Loads bookings, absences and blocks (expanded in `zone`) over the local dates `[from, to]`,
/// and `pad` more on each side.
pub async fn time_use(
    state: &AppState,
    therapist: ObjectId,
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
    pad: Duration,
) -> ApiResult<TimeUse> {
    let (a, b) = padded_bounds(zone, from, to, pad);
    // A booking ending before `a` may still hold time after it (its own buffer).
    let held_from = DateTime::from_millis(a.timestamp_millis() - i64::from(MAX_BUFFER_MINUTES) * 60_000);
    let (store, blocks) = (BookingStore::new(&state.db), AvailabilityStore::new(&state.db));
    let (found, blocked) = tokio::try_join!(
        async { Ok::<_, ApiError>(store.overlapping(therapist, held_from, b, 0, None).await?) },
        BlockedTime::load(&blocks, therapist, zone, from, to, pad),
    )?;
    let mut bookings: Vec<(i64, i64)> = Vec::with_capacity(found.len());
    let mut held: Vec<(i64, i64)> = Vec::with_capacity(found.len());
    for x in &found {
        let (s, e) = (secs(x.starts_at), secs(x.ends_at));
        held.push((s, secs(x.holds_until())));
        if x.ends_at > a {
            bookings.push((s, e));
        }
    }
    bookings.sort_unstable();
    held.sort_unstable();
    Ok(TimeUse {
        bookings,
        held,
        blocked,
    })
}

/// The free slots of `duration` minutes over the local dates `[from, to]`, and the zone they
/// were computed in.
pub async fn free_slots(
    state: &AppState,
    therapist: ObjectId,
    from: NaiveDate,
    to: NaiveDate,
    duration: u32,
) -> ApiResult<(Tz, Vec<Slot>)> {
    if !(5..=720).contains(&duration) || duration % 5 != 0 {
        return Err(ApiError::field(
            "sessionDuration",
            "must be 5 to 720 minutes, a multiple of 5",
        ));
    }
    let (schedule, zone) = AvailabilityStore::new(&state.db)
        .schedule_in_zone(therapist)
        .await?;
    let pad = Duration::minutes(i64::from(schedule.buffer_minutes) + i64::from(duration));
    let used = time_use(state, therapist, zone, from, to, pad).await?;
    let req = SlotRequest {
        zone,
        from,
        to,
        duration_minutes: duration,
        now: Utc::now(),
        bookings: &used.held,
        blocked: &used.blocked.closed,
    };
    Ok((
        zone,
        slots::free_slots_with(&schedule, &req, &used.blocked.opened),
    ))
}

/// Why a client could not book `[s, e)` on local `day` now (`None`: they could): the rules
/// (notice, how far ahead, open time) and then the time other bookings hold (with the buffer
/// each was made with), which `[s, e)` plus the schedule's buffer after it may not reach.
pub fn refusal(
    schedule: &Schedule,
    zone: Tz,
    day: NaiveDate,
    s: i64,
    e: i64,
    used: &TimeUse,
) -> Option<&'static str> {
    let buf = i64::from(schedule.buffer_minutes) * 60;
    let (closed, opened) = (&used.blocked.closed, &used.blocked.opened);
    match slots::within_rules(schedule, zone, day, s, e, Utc::now(), closed, opened) {
        Err(r) => Some(r),
        Ok(()) if used.held.iter().any(|&(bs, be)| s < be && bs < e + buf) => Some("is already booked"),
        Ok(()) => None,
    }
}

/// Open, closed and booked time over local dates `[from, to]`.
pub struct Occupancy {
    /// Working hours and `availability` blocks.
    pub working_secs: i64,
    /// Of that, what absences and `unavailable` blocks close.
    pub blocked_secs: i64,
    /// Of the open time, what bookings hold.
    pub booked_secs: i64,
    pub bookings: usize,
}

impl Occupancy {
    /// Open time not closed by absences or blocks.
    pub fn available_secs(&self) -> i64 {
        (self.working_secs - self.blocked_secs).max(0)
    }

    /// Booked share of available time, in percent with one decimal.
    pub fn rate(&self) -> f64 {
        let available = self.available_secs();
        if available > 0 {
            (self.booked_secs as f64 * 1000.0 / available as f64).round() / 10.0
        } else {
            0.0
        }
    }
}

/// Total length of the overlap of `open` (merged) with `list`.
fn overlap_secs(open: &[(i64, i64)], list: &[(i64, i64)]) -> i64 {
    open.iter()
        .map(|&(s, e)| {
            list.iter()
                .map(|&(bs, be)| (be.min(e) - bs.max(s)).max(0))
                .sum::<i64>()
        })
        .sum()
}

/// Computes a therapist's occupancy over a range of local dates of `zone` (the therapist's).
pub async fn occupancy_of(
    state: &AppState,
    therapist: ObjectId,
    schedule: &Schedule,
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<Occupancy> {
    let used = time_use(state, therapist, zone, from, to, Duration::zero()).await?;
    let open = slots::open_intervals(schedule, zone, from, to, &used.blocked.opened);
    let (lo, hi) = (
        time::day_bounds(zone, from).0.timestamp(),
        time::day_bounds(zone, to).1.timestamp(),
    );
    Ok(Occupancy {
        working_secs: open.iter().map(|(s, e)| e - s).sum(),
        blocked_secs: overlap_secs(&open, &used.blocked.closed),
        booked_secs: overlap_secs(&open, &used.bookings),
        bookings: used.bookings.iter().filter(|&&(s, e)| s < hi && lo < e).count(),
    })
}
