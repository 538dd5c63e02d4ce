//! Local wall-clock times in a therapist's IANA zone and their UTC instants.
//!
//! A booking is exchanged as `date` + `startTime`/`endTime` in the therapist's zone and stored
//! also as UTC instants. A local time inside a spring-forward gap does not exist (400); one in
//! a fall-back overlap takes its first occurrence.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Why a local time could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("must be a date as YYYY-MM-DD")]
    BadDate,
    #[error("must be a time as HH:mm (00:00 to 23:59)")]
    BadTime,
    #[error("does not exist on that day in {0} (clocks jump forward)")]
    Nonexistent(String),
    #[error("is not a known IANA time zone")]
    BadZone,
}

/// Parses `YYYY-MM-DD` strictly (years 1900-2200).
pub fn parse_date(s: &str) -> Result<NaiveDate, TimeError> {
    if s.len() != 10 {
        return Err(TimeError::BadDate);
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| TimeError::BadDate)?;
    if !(1900..=2200).contains(&chrono::Datelike::year(&d)) {
        return Err(TimeError::BadDate);
    }
    Ok(d)
}

/// Parses `HH:mm` strictly; `24:00` is accepted only as an end of day.
pub fn parse_time(s: &str) -> Result<NaiveTime, TimeError> {
    let bytes = s.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' || !s.is_ascii() {
        return Err(TimeError::BadTime);
    }
    let h: u32 = s[..2].parse().map_err(|_| TimeError::BadTime)?;
    let m: u32 = s[3..].parse().map_err(|_| TimeError::BadTime)?;
    NaiveTime::from_hms_opt(h, m, 0).ok_or(TimeError::BadTime)
}

/// Minutes since midnight of an `HH:mm` string, allowing `24:00` (1440).
pub fn minutes_of_day(s: &str) -> Result<u32, TimeError> {
    if s == "24:00" {
        return Ok(1440);
    }
    let t = parse_time(s)?;
    Ok(chrono::Timelike::hour(&t) * 60 + chrono::Timelike::minute(&t))
}

/// Parses an IANA zone name.
pub fn parse_zone(s: &str) -> Result<Tz, TimeError> {
    s.parse::<Tz>().map_err(|_| TimeError::BadZone)
}

/// The UTC instant of a local wall-clock time: gap → error, overlap → first occurrence.
pub fn local_to_utc(zone: Tz, local: NaiveDateTime) -> Result<DateTime<Utc>, TimeError> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(TimeError::Nonexistent(zone.name().to_owned())),
    }
}

/// Like `local_to_utc`, but a time inside a gap moves to the first instant after it (for
/// working hours, where "from 02:30" on a spring-forward night means "from when clocks resume").
pub fn local_to_utc_lenient(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let Ok(t) = local_to_utc(zone, local) {
        return t;
    }
    // Gaps are at most a few hours: walk forward a minute at a time until time exists.
    let mut probe = local;
    for _ in 0..(6 * 60) {
        probe += Duration::minutes(1);
        if let Ok(t) = local_to_utc(zone, probe) {
            return t;
        }
    }
    Utc.from_utc_datetime(&local)
}

/// The local start and end of a day as UTC instants (a DST day lasts 23 or 25 hours).
pub fn day_bounds(zone: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = local_to_utc_lenient(zone, date.and_time(NaiveTime::MIN));
    let next = date.succ_opt().unwrap_or(date);
    let end = local_to_utc_lenient(zone, next.and_time(NaiveTime::MIN));
    (start, end)
}

/// A UTC interval, or the field at fault and why.
pub type IntervalResult = Result<(DateTime<Utc>, DateTime<Utc>), (&'static str, TimeError)>;

/// A local interval of one day (`end` may be `24:00`) as UTC instants; strict about gaps.
pub fn local_interval(zone: Tz, date: NaiveDate, start: &str, end: &str) -> IntervalResult {
    let s = parse_time(start).map_err(|e| ("startTime", e))?;
    let starts = local_to_utc(zone, date.and_time(s)).map_err(|e| ("startTime", e))?;
    let ends = if end == "24:00" {
        day_bounds(zone, date).1
    } else {
        let e = parse_time(end).map_err(|e| ("endTime", e))?;
        local_to_utc(zone, date.and_time(e)).map_err(|e| ("endTime", e))?
    };
    Ok((starts, ends))
}

/// RFC 3339 (UTC, milliseconds) of a stored instant.
pub fn rfc3339(d: mongodb::bson::DateTime) -> String {
    d.to_chrono().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The local date and `HH:mm` of a UTC instant.
pub fn to_local(zone: Tz, t: DateTime<Utc>) -> (String, String) {
    let local = t.with_timezone(&zone);
    (
        local.format("%Y-%m-%d").to_string(),
        local.format("%H:%M").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn dt(d: &str, t: &str) -> NaiveDateTime {
        parse_date(d).unwrap().and_time(parse_time(t).unwrap())
    }

    #[test]
    fn strict_parsing() {
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("2026-2-3").is_err());
        assert!(parse_date("20260203").is_err());
        assert!(parse_date("9999-01-01").is_err());
        assert!(parse_time("25:00").is_err());
        assert!(parse_time("24:00").is_err());
        assert!(parse_time("9:00").is_err());
        assert!(parse_time("09:60").is_err());
        assert!(parse_time("0٩:00").is_err());
        assert_eq!(minutes_of_day("24:00").unwrap(), 1440);
        assert_eq!(minutes_of_day("09:30").unwrap(), 570);
        assert!(parse_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn madrid_spring_gap_and_autumn_overlap() {
        let madrid = parse_zone("Europe/Madrid").unwrap();
        // 2026-03-29: 02:00 -> 03:00.
        assert!(matches!(
            local_to_utc(madrid, dt("2026-03-29", "02:30")),
            Err(TimeError::Nonexistent(_))
        ));
        assert_eq!(
            local_to_utc(madrid, dt("2026-03-29", "03:00"))
                .unwrap()
                .to_rfc3339(),
            "2026-03-29T01:00:00+00:00"
        );
        // 2026-10-25: 03:00 -> 02:00; 02:30 happens twice, first at 00:30 UTC.
        assert_eq!(
            local_to_utc(madrid, dt("2026-10-25", "02:30"))
                .unwrap()
                .to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
        let (s, e) = day_bounds(madrid, parse_date("2026-10-25").unwrap());
        assert_eq!((e - s).num_hours(), 25);
        let (s, e) = day_bounds(madrid, parse_date("2026-03-29").unwrap());
        assert_eq!((e - s).num_hours(), 23);
        assert_eq!(
            local_to_utc_lenient(madrid, dt("2026-03-29", "02:30")).to_rfc3339(),
            "2026-03-29T01:00:00+00:00"
        );
    }

    /// Every day of several years in three zones with different DST rules (and hemispheres):
    /// each local time either round-trips exactly, or lies in a gap (and is refused), or is
    /// ambiguous (and maps to the earlier instant).
    #[test]
    fn property_local_utc_round_trip_over_years_of_transitions() {
        for name in ["Europe/Madrid", "America/New_York", "Australia/Sydney"] {
            let zone = parse_zone(name).unwrap();
            let mut day = parse_date("2024-01-01").unwrap();
            let last = parse_date("2029-12-31").unwrap();
            let (mut gaps, mut overlaps) = (0, 0);
            while day <= last {
                for minutes in (0..1440).step_by(15) {
                    let local = day.and_time(NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap());
                    match local_to_utc(zone, local) {
                        Ok(utc) => {
                            assert_eq!(utc.with_timezone(&zone).naive_local(), local, "{name} {local}");
                            let later = zone.from_local_datetime(&local).latest().unwrap();
                            if later.with_timezone(&Utc) != utc {
                                overlaps += 1;
                                assert!(utc < later.with_timezone(&Utc), "first occurrence");
                            }
                        }
                        Err(TimeError::Nonexistent(_)) => {
                            gaps += 1;
                            assert!(zone.from_local_datetime(&local).earliest().is_none());
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                let (s, e) = day_bounds(zone, day);
                let hours = (e - s).num_minutes();
                assert!(
                    [23 * 60, 24 * 60, 25 * 60].contains(&hours),
                    "{name} {day}: {hours}"
                );
                day = day.succ_opt().unwrap();
            }
            // One spring gap (1 h = 4 quarter hours) and one autumn overlap per year, 6 years.
            assert_eq!(gaps, 6 * 4, "{name}");
            assert_eq!(overlaps, 6 * 4, "{name}");
        }
    }

    #[test]
    fn southern_hemisphere_transitions_fall_in_the_right_months() {
        let sydney = parse_zone("Australia/Sydney").unwrap();
        // DST starts first Sunday of October (02:00 -> 03:00), ends first Sunday of April.
        let gap = dt("2026-10-04", "02:30");
        assert!(local_to_utc(sydney, gap).is_err());
        let amb = dt("2026-04-05", "02:30");
        let first = local_to_utc(sydney, amb).unwrap();
        assert_eq!(first.to_rfc3339(), "2026-04-04T15:30:00+00:00");
        assert_eq!(gap.date().month(), 10);
        let ny = parse_zone("America/New_York").unwrap();
        assert!(local_to_utc(ny, dt("2026-03-08", "02:15")).is_err());
        assert_eq!(
            local_to_utc(ny, dt("2026-11-01", "01:30")).unwrap().to_rfc3339(),
            "2026-11-01T05:30:00+00:00"
        );
    }
}
