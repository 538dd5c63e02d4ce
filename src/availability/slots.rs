//! Free slots: open time (working hours and `availability` blocks) minus `unavailable` blocks and
//! absences minus bookings (with buffers), honouring minimum notice and how far ahead booking is
//! open. Pure: the caller loads the data.
//!
//! Intervals are half-open `[start, end)` in Unix seconds; busy lists must be sorted by start.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::model::{Schedule, WEEKDAYS};
use crate::time::{local_to_utc_lenient, minutes_of_day};

/// A free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub start: i64,
    pub end: i64,
}

/// Inputs beyond the schedule.
pub struct SlotRequest<'a> {
    pub zone: Tz,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub duration_minutes: u32,
    pub now: DateTime<Utc>,
    /// The time bookings hold, sorted by start: each from its start to its end plus its own
    /// buffer (what its time claims hold, whatever the schedule's buffer is now).
    pub bookings: &'a [(i64, i64)],
    /// Absences and blocks, sorted by start.
    pub blocked: &'a [(i64, i64)],
}

/// The working intervals of one local day, as UTC seconds (DST-aware).
pub fn working_intervals(schedule: &Schedule, zone: Tz, date: NaiveDate) -> Vec<(i64, i64)> {
    let day = WEEKDAYS[date.weekday().num_days_from_monday() as usize];
    let Some(hours) = schedule.weekly.get(day) else {
        return Vec::new();
    };
    let mut out: Vec<(i64, i64)> = hours
        .iter()
        .filter_map(|h| {
            let s = minutes_of_day(&h.start).ok()?;
            let e = minutes_of_day(&h.end).ok()?;
            let at = |m: u32| {
                let (d, m) = if m >= 1440 {
                    (date.succ_opt()?, m - 1440)
                } else {
                    (date, m)
                };
                let t = chrono::NaiveTime::from_hms_opt(m / 60, m % 60, 0)?;
                Some(local_to_utc_lenient(zone, d.and_time(t)).timestamp())
            };
            let (s, e) = (at(s)?, at(e)?);
            (s < e).then_some((s, e))
        })
        .collect();
    out.sort_unstable();
    out
}

/// Sorts and merges intervals that overlap or touch.
pub fn merge(mut list: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    list.retain(|(s, e)| s < e);
    list.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(list.len());
    for (s, e) in list {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Open time over the local dates `[from, to]`: the schedule's working hours plus `opened`
/// (windows of `availability` blocks) within those dates, merged and sorted.
pub fn open_intervals(
    schedule: &Schedule,
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
    opened: &[(i64, i64)],
) -> Vec<(i64, i64)> {
    let lo = crate::time::day_bounds(zone, from).0.timestamp();
    let hi = crate::time::day_bounds(zone, to).1.timestamp();
    let mut all: Vec<(i64, i64)> = opened.iter().map(|&(s, e)| (s.max(lo), e.min(hi))).collect();
    let mut date = from;
    while date <= to {
        all.extend(working_intervals(schedule, zone, date));
        match date.succ_opt() {
            Some(d) => date = d,
            None => break,
        }
    }
    merge(all)
}

/// Free slots over `[from, to]` (inclusive local dates) within the schedule's working hours.
pub fn free_slots(schedule: &Schedule, req: &SlotRequest<'_>) -> Vec<Slot> {
    free_slots_with(schedule, req, &[])
}

/// Free slots over `[from, to]` within working hours and the `opened` intervals.
pub fn free_slots_with(schedule: &Schedule, req: &SlotRequest<'_>, opened: &[(i64, i64)]) -> Vec<Slot> {
    let duration = i64::from(req.duration_minutes) * 60;
    let buffer = i64::from(schedule.buffer_minutes) * 60;
    if duration <= 0 {
        return Vec::new();
    }
    let earliest = (req.now + Duration::hours(i64::from(schedule.min_notice_hours))).timestamp();
    let latest_start = (req.now + Duration::days(i64::from(schedule.max_advance_days))).timestamp();
    let span = |list: &[(i64, i64)]| list.iter().map(|(s, e)| e - s).max().unwrap_or(0);
    let (booking_span, blocked_span) = (span(req.bookings), span(req.blocked));
    let mut out = Vec::new();
    for (ws, we) in open_intervals(schedule, req.zone, req.from, req.to, opened) {
        let mut free = vec![(ws.max(earliest), we)];
        free.retain(|(s, e)| s < e);
        free = subtract(&free, req.blocked, (0, 0), blocked_span);
        // A new booking holds its own time plus the buffer after it: it must end `buffer`
        // before the next booking; what a booking holds after itself is in its interval.
        free = subtract(&free, req.bookings, (buffer, 0), booking_span);
        for (s, e) in free {
            // Align to the 5-minute grid bookings use.
            let mut start = s + (300 - s.rem_euclid(300)) % 300;
            while start + duration <= e && start <= latest_start {
                out.push(Slot {
                    start,
                    end: start + duration,
                });
                start += duration + buffer;
            }
        }
    }
    out
}

/// `free` minus `busy` (each busy interval widened by `pad.0` before it and `pad.1` after).
/// `free` is sorted and disjoint; `busy` sorted by start, no interval longer than `max_span`.
/// Only the busy intervals near `free` are visited (binary search), which keeps 60 days of 500
/// bookings fast.
fn subtract(free: &[(i64, i64)], busy: &[(i64, i64)], pad: (i64, i64), max_span: i64) -> Vec<(i64, i64)> {
    let (before, after) = pad;
    let mut out = Vec::with_capacity(free.len());
    for &(fs, fe) in free {
        // The first interval that can reach `fs` starts no earlier than fs - max_span - after.
        let from = busy.partition_point(|&(bs, _)| bs + max_span + after < fs);
        let mut cursor = fs;
        for &(bs, be) in &busy[from..] {
            let (bs, be) = (bs - before, be + after);
            if bs >= fe {
                break;
            }
            if be <= cursor {
                continue;
            }
            if bs > cursor {
                out.push((cursor, bs.min(fe)));
            }
            cursor = cursor.max(be);
            if cursor >= fe {
                break;
            }
        }
        if cursor < fe {
            out.push((cursor, fe));
        }
    }
    out
}

/// Whether `[start, end)` may be booked by a client: inside open time of its day (working hours
/// or `opened`), clear of absences and `unavailable` blocks, after the minimum notice and within
/// the booking horizon. (Other bookings are left to the time claims, which decide atomically.)
#[allow(clippy::too_many_arguments)]
pub fn within_rules(
    schedule: &Schedule,
    zone: Tz,
    date: NaiveDate,
    start: i64,
    end: i64,
    now: DateTime<Utc>,
    blocked: &[(i64, i64)],
    opened: &[(i64, i64)],
) -> Result<(), &'static str> {
    let next = date.succ_opt().unwrap_or(date);
    if !open_intervals(schedule, zone, date, next, opened)
        .iter()
        .any(|&(s, e)| s <= start && end <= e)
    {
        return Err("is outside the therapist's working hours");
    }
    if blocked.iter().any(|&(s, e)| s < end && start < e) {
        return Err("falls in a time the therapist is not available");
    }
    if start < (now + Duration::hours(i64::from(schedule.min_notice_hours))).timestamp() {
        return Err("is too soon: the therapist needs more notice");
    }
    if start > (now + Duration::days(i64::from(schedule.max_advance_days))).timestamp() {
        return Err("is too far ahead: booking is not open yet");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::model::WorkingHours;
    use chrono::TimeZone;

    fn schedule(buffer: u32) -> Schedule {
        let mut s = Schedule::default();
        for day in WEEKDAYS {
            s.weekly.insert(
                day.into(),
                vec![WorkingHours {
                    start: "09:00".into(),
                    end: "13:00".into(),
                    location: None,
                }],
            );
        }
        s.buffer_minutes = buffer;
        s.min_notice_hours = 0;
        s.max_advance_days = 365;
        s
    }

    fn utc(d: &str, hm: &str) -> i64 {
        let zone: Tz = "Europe/Madrid".parse().unwrap();
        crate::time::local_to_utc(
            zone,
            crate::time::parse_date(d)
                .unwrap()
                .and_time(crate::time::parse_time(hm).unwrap()),
        )
        .unwrap()
        .timestamp()
    }

    fn run(
        s: &Schedule,
        date: &str,
        bookings: &[(i64, i64)],
        blocked: &[(i64, i64)],
        now: DateTime<Utc>,
    ) -> Vec<(String, String)> {
        let zone: Tz = "Europe/Madrid".parse().unwrap();
        let d = crate::time::parse_date(date).unwrap();
        let req = SlotRequest {
            zone,
            from: d,
            to: d,
            duration_minutes: 60,
            now,
            bookings,
            blocked,
        };
        free_slots(s, &req)
            .into_iter()
            .map(|sl| {
                let a = crate::time::to_local(zone, Utc.timestamp_opt(sl.start, 0).unwrap()).1;
                let b = crate::time::to_local(zone, Utc.timestamp_opt(sl.end, 0).unwrap()).1;
                (a, b)
            })
            .collect()
    }

    fn long_ago() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn working_hours_minus_bookings_with_buffers() {
        let s = schedule(0);
        let all = run(&s, "2030-05-06", &[], &[], long_ago());
        assert_eq!(all.len(), 4);
        assert_eq!(all[0], ("09:00".into(), "10:00".into()));
        let booked = [(utc("2030-05-06", "10:00"), utc("2030-05-06", "11:00"))];
        let free = run(&s, "2030-05-06", &booked, &[], long_ago());
        assert_eq!(
            free,
            vec![
                ("09:00".into(), "10:00".into()),
                ("11:00".into(), "12:00".into()),
                ("12:00".into(), "13:00".into())
            ]
        );
        // Made with a 15-minute buffer, the booking holds until 11:15.
        let s = schedule(15);
        let held = [(utc("2030-05-06", "10:00"), utc("2030-05-06", "11:15"))];
        let free = run(&s, "2030-05-06", &held, &[], long_ago());
        assert_eq!(
            free,
            vec![("11:15".into(), "12:15".into())],
            "buffer before and after the booking"
        );
    }

    #[test]
    fn a_booking_holds_the_buffer_it_was_made_with_after_the_schedule_changes() {
        // Made with a 30-minute buffer (held until 11:30); the schedule's buffer is now 0.
        let held = [(utc("2030-05-06", "10:00"), utc("2030-05-06", "11:30"))];
        let free = run(&schedule(0), "2030-05-06", &held, &[], long_ago());
        assert_eq!(
            free,
            vec![("09:00".into(), "10:00".into()), ("11:30".into(), "12:30".into())]
        );
        // Made with none; the schedule's buffer is now 30: a new booking keeps 30 minutes
        // after itself, the old one nothing after it.
        let held = [(utc("2030-05-06", "10:00"), utc("2030-05-06", "11:00"))];
        let free = run(&schedule(30), "2030-05-06", &held, &[], long_ago());
        assert_eq!(
            free,
            vec![("11:00".into(), "12:00".into())],
            "09:00 would hold until 10:30"
        );
    }

    #[test]
    fn absences_notice_and_horizon() {
        let s = schedule(0);
        let absent = [(utc("2030-05-06", "00:00"), utc("2030-05-07", "00:00"))];
        assert!(run(&s, "2030-05-06", &[], &absent, long_ago()).is_empty());
        let now = Utc.timestamp_opt(utc("2030-05-06", "10:30"), 0).unwrap();
        let mut noticed = schedule(0);
        noticed.min_notice_hours = 1;
        let free = run(&noticed, "2030-05-06", &[], &[], now);
        assert_eq!(free, vec![("11:30".into(), "12:30".into())]);
        let mut near = schedule(0);
        near.max_advance_days = 1;
        assert!(run(&near, "2030-05-09", &[], &[], now).is_empty());
    }

    #[test]
    fn dst_days_keep_local_working_hours() {
        let s = schedule(0);
        // 2030-03-31 is Madrid's spring-forward Sunday; 09:00-13:00 local is still 4 slots.
        let free = run(&s, "2030-03-31", &[], &[], long_ago());
        assert_eq!(free.len(), 4);
        assert_eq!(free[0].0, "09:00");
        let free = run(&s, "2030-10-27", &[], &[], long_ago());
        assert_eq!(free.len(), 4);
    }
}
