//! Placing a requested booking: local date and times validated on the claim grid and placed
//! in the therapist's zone (DST-aware), and the occurrences of a weekly series.

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::claims::BUCKET_MINUTES;
use crate::error::{ApiError, ApiResult};
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
