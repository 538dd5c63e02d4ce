//! What a therapist's blocks and absences say about their time around some local dates: the
//! windows `availability` blocks open, the time absences and `unavailable` blocks close, each
//! block's occurrences (for calendars) and the absences themselves. Bookings are not read here:
//! the bookings module adds them on top (availability never depends on bookings).

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;

use super::model::{Block, BlockType};
use super::recurrence::{self, BlockRule, Occurrence};
use super::slots;
use super::store::AvailabilityStore;
use crate::error::ApiResult;
use crate::time;

/// A therapist's blocks and absences around some local dates, as sorted Unix-second intervals.
pub struct BlockedTime {
    /// Absences and `unavailable` block windows, merged.
    pub closed: Vec<(i64, i64)>,
    /// `availability` block windows, merged.
    pub opened: Vec<(i64, i64)>,
    /// Each block's windows (for calendar events), with its rule.
    pub windows: Vec<(Block, BlockRule, Vec<Occurrence>)>,
    /// Absences.
    pub absences: Vec<Block>,
}

/// The UTC instants bounding the local dates `[from, to]` in `zone`, `pad` more on each side.
pub fn padded_bounds(zone: Tz, from: NaiveDate, to: NaiveDate, pad: Duration) -> (DateTime, DateTime) {
    (
        DateTime::from_chrono(time::day_bounds(zone, from).0 - pad),
        DateTime::from_chrono(time::day_bounds(zone, to).1 + pad),
    )
}

/// Seconds since the epoch of a stored instant.
pub fn secs(d: DateTime) -> i64 {
    d.timestamp_millis() / 1000
}

impl BlockedTime {
    /// Loads absences and blocks (expanded in `zone`) over the local dates `[from, to]`, and
    /// `pad` more on each side.
    pub async fn load(
        store: &AvailabilityStore,
        therapist: ObjectId,
        zone: Tz,
        from: NaiveDate,
        to: NaiveDate,
        pad: Duration,
    ) -> ApiResult<BlockedTime> {
        let (a, b) = padded_bounds(zone, from, to, pad);
        let stored = store.blocks_between(therapist, a, b, None).await?;
        Ok(Self::of(stored, zone, from, to))
    }

    /// Sorts stored blocks and absences into open and closed time over `[from, to]`.
    pub fn of(stored: Vec<Block>, zone: Tz, from: NaiveDate, to: NaiveDate) -> BlockedTime {
        let mut used = BlockedTime {
            closed: Vec::new(),
            opened: Vec::new(),
            windows: Vec::new(),
            absences: Vec::new(),
        };
        // A window of the day before `from` can reach into it (and a padded range beyond `to`).
        let (lo, hi) = (from.pred_opt().unwrap_or(from), to.succ_opt().unwrap_or(to));
        for block in stored {
            if block.kind == "absence" {
                used.closed.push((secs(block.starts_at), secs(block.ends_at)));
                used.absences.push(block);
                continue;
            }
            let Some(rule) = BlockRule::of(&block, zone) else {
                continue;
            };
            let occurrences = recurrence::expand(&rule, zone, lo, hi);
            let into = match rule.block_type {
                BlockType::Availability => &mut used.opened,
                BlockType::Unavailable => &mut used.closed,
            };
            into.extend(
                occurrences
                    .iter()
                    .map(|o| (o.start.timestamp(), o.end.timestamp())),
            );
            used.windows.push((block, rule, occurrences));
        }
        used.closed = slots::merge(std::mem::take(&mut used.closed));
        used.opened = slots::merge(std::mem::take(&mut used.opened));
        used
    }
}
