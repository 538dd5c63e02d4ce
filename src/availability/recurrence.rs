//! Time block rules and their expansion into concrete UTC intervals. Pure: no I/O.
//!
//! A block is a daily window `startTime`-`endTime` (local, in the therapist's zone; the end may
//! be `24:00`) on each day of an occurrence. An occurrence starts on a date the rule matches and
//! lasts `endDate - startDate` more days; `repeat` says which dates match, from `startDate` to
//! `until` (inclusive; none: indefinitely). Every window is placed by its local wall-clock time,
//! so a weekly 10:00 stays 10:00 across DST changes (a start inside a spring-forward gap moves to
//! when clocks resume).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use super::model::{Block, BlockType, Repeat, WEEKDAYS};
use crate::time::{self, local_to_utc_lenient};

/// The longest occurrence of a repeating block, in days after its first.
pub const MAX_REPEATING_SPAN_DAYS: i64 = 31;
/// The longest one-off block, in days after its first.
pub const MAX_SPAN_DAYS: i64 = 366;

/// A block's rule, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRule {
    pub block_type: BlockType,
    pub start_date: NaiveDate,
    /// Last day of the first occurrence.
    pub end_date: NaiveDate,
    /// Minutes after local midnight, `start_min < end_min <= 1440`.
    pub start_min: u32,
    pub end_min: u32,
    pub repeat: Repeat,
    /// Weekly: the matching weekdays (empty: the start date's).
    pub weekdays: Vec<Weekday>,
    /// Monthly: the start date's nth weekday instead of its day of the month.
    pub monthly_by_weekday: bool,
    /// Last date an occurrence may start; none: indefinitely.
    pub until: Option<NaiveDate>,
}

/// One window of a block on one local date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// `monday`..`sunday` → weekday.
pub fn weekday_of(name: &str) -> Option<Weekday> {
    WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .and_then(|i| Weekday::try_from(i as u8).ok())
}

/// The schedule's name of a weekday.
pub fn weekday_name(day: Weekday) -> &'static str {
    WEEKDAYS[day.num_days_from_monday() as usize]
}

/// The last start date of a repeat lasting `duration` (the dashboard's choices) from `start`.
/// `Err` names what is wrong with `duration` / `durationEndDate`.
pub fn until_of(
    start: NaiveDate,
    duration: Option<&str>,
    duration_end: Option<NaiveDate>,
) -> Result<Option<NaiveDate>, (&'static str, &'static str)> {
    let months = |n: u32| start.checked_add_months(Months::new(n));
    let until = match duration {
        None => duration_end,
        Some("1_month") => months(1),
        Some("3_months") => months(3),
        Some("6_months") => months(6),
        Some("1_year") => months(12),
        Some("indefinite") => None,
        Some("until_date") => {
            Some(duration_end.ok_or(("durationEndDate", "is required when duration is until_date"))?)
        }
        Some(_) => {
            return Err((
                "duration",
                "must be one of 1_month, 3_months, 6_months, 1_year, until_date, indefinite",
            ))
        }
    };
    if until.is_some_and(|u| u < start) {
        return Err(("durationEndDate", "must not be before startDate"));
    }
    Ok(until)
}

impl BlockRule {
    /// The rule of a stored block. Blocks stored before rules existed (only `startsAt`/`endsAt`)
    /// read as a one-off `unavailable` block over their local dates and times.
    pub fn of(block: &Block, zone: Tz) -> Option<BlockRule> {
        let block_type = block.block_type.unwrap_or(BlockType::Unavailable);
        let (Some(sd), Some(st), Some(et)) = (&block.start_date, &block.start_time, &block.end_time) else {
            return Self::legacy(block, zone, block_type);
        };
        let start_date = time::parse_date(sd).ok()?;
        let end_date = block
            .end_date
            .as_deref()
            .and_then(|d| time::parse_date(d).ok())
            .unwrap_or(start_date);
        let weekdays = block
            .selected_weekdays
            .iter()
            .filter_map(|d| weekday_of(d))
            .collect();
        Some(BlockRule {
            block_type,
            start_date,
            end_date: end_date.max(start_date),
            start_min: time::minutes_of_day(st).ok()?,
            end_min: time::minutes_of_day(et).ok()?,
            repeat: block.repeat.unwrap_or(Repeat::None),
            weekdays,
            monthly_by_weekday: block.monthly_by.as_deref() == Some("weekday"),
            until: block.until.as_deref().and_then(|d| time::parse_date(d).ok()),
        })
    }

    fn legacy(block: &Block, zone: Tz, block_type: BlockType) -> Option<BlockRule> {
        let start = block.starts_at.to_chrono().with_timezone(&zone);
        let end = block.ends_at.to_chrono().with_timezone(&zone);
        let start_min = start.time().signed_duration_since(NaiveTime::MIN).num_minutes() as u32;
        let mut end_date = end.date_naive();
        let mut end_min = end.time().signed_duration_since(NaiveTime::MIN).num_minutes() as u32;
        if end_min == 0 && end_date > start.date_naive() {
            end_date = end_date.pred_opt()?;
            end_min = 1440;
        }
        Some(BlockRule {
            block_type,
            start_date: start.date_naive(),
            end_date,
            start_min,
            end_min,
            repeat: Repeat::None,
            weekdays: Vec::new(),
            monthly_by_weekday: false,
            until: None,
        })
    }

    /// Days an occurrence lasts after its first.
    pub fn span_days(&self) -> i64 {
        (self.end_date - self.start_date).num_days().max(0)
    }

    /// Whether an occurrence starts on `date`.
    pub fn starts_on(&self, date: NaiveDate) -> bool {
        if date < self.start_date || self.until.is_some_and(|u| date > u) {
            return false;
        }
        match self.repeat {
            Repeat::None => date == self.start_date,
            Repeat::Daily => true,
            Repeat::Weekly if self.weekdays.is_empty() => date.weekday() == self.start_date.weekday(),
            Repeat::Weekly => self.weekdays.contains(&date.weekday()),
            Repeat::Monthly if self.monthly_by_weekday => {
                date.weekday() == self.start_date.weekday()
                    && (date.day() - 1) / 7 == (self.start_date.day() - 1) / 7
            }
            Repeat::Monthly => date.day() == self.start_date.day(),
        }
    }

    /// The last local date any window can fall on (none: unbounded).
    pub fn last_date(&self) -> Option<NaiveDate> {
        let last_start = match self.repeat {
            Repeat::None => Some(self.start_date),
            _ => self.until,
        };
        last_start.map(|d| d + Duration::days(self.span_days()))
    }
}

/// The block's windows on the local dates `[from, to]`, in date order, as UTC instants.
pub fn expand(rule: &BlockRule, zone: Tz, from: NaiveDate, to: NaiveDate) -> Vec<Occurrence> {
    let span = rule.span_days();
    let mut first = (from - Duration::days(span)).max(rule.start_date);
    let mut days = BTreeSet::new();
    let last = rule.last_date().map_or(to, |l| l.min(to));
    while first <= last {
        if rule.starts_on(first) {
            for k in 0..=span {
                let day = first + Duration::days(k);
                if (from..=to).contains(&day) {
                    days.insert(day);
                }
            }
        }
        match first.succ_opt() {
            Some(d) => first = d,
            None => break,
        }
    }
    days.into_iter()
        .filter_map(|date| {
            let (start, end) = window(zone, date, rule.start_min, rule.end_min)?;
            Some(Occurrence { date, start, end })
        })
        .collect()
}

/// A local window of one day as UTC instants (`end_min` 1440: the next local midnight).
pub fn window(
    zone: Tz,
    date: NaiveDate,
    start_min: u32,
    end_min: u32,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let at = |m: u32| -> Option<DateTime<Utc>> {
        if m >= 1440 {
            return Some(time::day_bounds(zone, date).1);
        }
        let t = NaiveTime::from_hms_opt(m / 60, m % 60, 0)?;
        Some(local_to_utc_lenient(zone, date.and_time(t)))
    };
    let (s, e) = (at(start_min)?, at(end_min)?);
    (s < e).then_some((s, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        time::parse_date(s).unwrap()
    }

    fn rule(start: &str, repeat: Repeat) -> BlockRule {
        BlockRule {
            block_type: BlockType::Availability,
            start_date: d(start),
            end_date: d(start),
            start_min: 10 * 60,
            end_min: 12 * 60,
            repeat,
            weekdays: Vec::new(),
            monthly_by_weekday: false,
            until: None,
        }
    }

    fn dates(rule: &BlockRule, zone: Tz, from: &str, to: &str) -> Vec<String> {
        expand(rule, zone, d(from), d(to))
            .iter()
            .map(|o| o.date.to_string())
            .collect()
    }

    fn madrid() -> Tz {
        "Europe/Madrid".parse().unwrap()
    }

    #[test]
    fn one_off_blocks_cover_each_day_of_their_dates() {
        let mut r = rule("2030-05-06", Repeat::None);
        assert_eq!(dates(&r, madrid(), "2030-05-01", "2030-05-31"), ["2030-05-06"]);
        r.end_date = d("2030-05-08");
        assert_eq!(
            dates(&r, madrid(), "2030-05-07", "2030-05-31"),
            ["2030-05-07", "2030-05-08"],
            "an occurrence begun before the range still covers its days in it"
        );
        assert!(dates(&r, madrid(), "2030-05-09", "2030-05-31").is_empty());
        let o = expand(&r, madrid(), d("2030-05-06"), d("2030-05-06"));
        assert_eq!(o[0].start.to_rfc3339(), "2030-05-06T08:00:00+00:00");
        assert_eq!(o[0].end.to_rfc3339(), "2030-05-06T10:00:00+00:00");
    }

    #[test]
    fn daily_weekly_and_monthly_with_an_end_date() {
        let mut daily = rule("2030-05-06", Repeat::Daily);
        daily.until = Some(d("2030-05-09"));
        assert_eq!(
            dates(&daily, madrid(), "2030-05-01", "2030-05-31"),
            ["2030-05-06", "2030-05-07", "2030-05-08", "2030-05-09"]
        );
        // 2030-05-06 is a Monday.
        let mut weekly = rule("2030-05-06", Repeat::Weekly);
        weekly.until = Some(d("2030-05-27"));
        assert_eq!(
            dates(&weekly, madrid(), "2030-05-01", "2030-06-30"),
            ["2030-05-06", "2030-05-13", "2030-05-20", "2030-05-27"]
        );
        weekly.weekdays = vec![Weekday::Mon, Weekday::Wed];
        weekly.until = Some(d("2030-05-13"));
        assert_eq!(
            dates(&weekly, madrid(), "2030-05-01", "2030-06-30"),
            ["2030-05-06", "2030-05-08", "2030-05-13"]
        );
        let monthly = rule("2030-01-31", Repeat::Monthly);
        assert_eq!(
            dates(&monthly, madrid(), "2030-01-01", "2030-05-31"),
            ["2030-01-31", "2030-03-31", "2030-05-31"],
            "months without the day are skipped"
        );
        // 2030-05-14 is the 2nd Tuesday of May.
        let mut nth = rule("2030-05-14", Repeat::Monthly);
        nth.monthly_by_weekday = true;
        assert_eq!(
            dates(&nth, madrid(), "2030-05-01", "2030-07-31"),
            ["2030-05-14", "2030-06-11", "2030-07-09"]
        );
        let open = rule("2030-05-06", Repeat::Weekly);
        assert_eq!(
            dates(&open, madrid(), "2031-05-01", "2031-05-14"),
            ["2031-05-05", "2031-05-12"],
            "no end: repeats indefinitely"
        );
        assert!(dates(&open, madrid(), "2030-04-01", "2030-05-05").is_empty());
    }

    #[test]
    fn dst_changes_keep_the_local_time() {
        // Madrid: 2030-03-31 spring forward, 2030-10-27 fall back (Sundays).
        let mut weekly = rule("2030-03-24", Repeat::Weekly);
        weekly.until = Some(d("2030-11-03"));
        let o = expand(&weekly, madrid(), d("2030-03-24"), d("2030-04-07"));
        let utc: Vec<String> = o
            .iter()
            .map(|x| x.start.format("%m-%d %H:%M").to_string())
            .collect();
        assert_eq!(utc, ["03-24 09:00", "03-31 08:00", "04-07 08:00"]);
        for x in &o {
            assert_eq!(time::to_local(madrid(), x.start).1, "10:00");
            assert_eq!((x.end - x.start).num_minutes(), 120);
        }
        let o = expand(&weekly, madrid(), d("2030-10-20"), d("2030-11-03"));
        let utc: Vec<String> = o
            .iter()
            .map(|x| x.start.format("%m-%d %H:%M").to_string())
            .collect();
        assert_eq!(utc, ["10-20 08:00", "10-27 09:00", "11-03 09:00"]);
        // New York: 2030-03-10 and 2030-11-03. A whole-day block lasts 23 and 25 hours.
        let ny: Tz = "America/New_York".parse().unwrap();
        let mut day = rule("2030-03-09", Repeat::Daily);
        day.start_min = 0;
        day.end_min = 1440;
        let o = expand(&day, ny, d("2030-03-09"), d("2030-03-11"));
        let hours: Vec<i64> = o.iter().map(|x| (x.end - x.start).num_hours()).collect();
        assert_eq!(hours, [24, 23, 24]);
        let o = expand(&day, ny, d("2030-11-03"), d("2030-11-03"));
        assert_eq!((o[0].end - o[0].start).num_hours(), 25);
        // 02:30 does not exist on 2030-03-10 in New York: the window starts when clocks resume.
        let mut gap = rule("2030-03-03", Repeat::Weekly);
        gap.start_min = 150;
        gap.end_min = 240;
        let o = expand(&gap, ny, d("2030-03-03"), d("2030-03-10"));
        assert_eq!(time::to_local(ny, o[0].start).1, "02:30");
        assert_eq!(time::to_local(ny, o[1].start).1, "03:00");
        assert_eq!(time::to_local(ny, o[1].end).1, "04:00");
    }

    #[test]
    fn durations_as_the_dashboard_names_them() {
        let s = d("2030-01-31");
        assert_eq!(until_of(s, Some("1_month"), None), Ok(Some(d("2030-02-28"))));
        assert_eq!(until_of(s, Some("1_year"), None), Ok(Some(d("2031-01-31"))));
        assert_eq!(until_of(s, Some("indefinite"), Some(d("2030-03-01"))), Ok(None));
        assert_eq!(
            until_of(s, None, Some(d("2030-03-01"))),
            Ok(Some(d("2030-03-01")))
        );
        assert_eq!(
            until_of(s, Some("until_date"), None).unwrap_err().0,
            "durationEndDate"
        );
        assert_eq!(until_of(s, Some("forever"), None).unwrap_err().0, "duration");
        assert_eq!(
            until_of(s, None, Some(d("2030-01-01"))).unwrap_err().0,
            "durationEndDate"
        );
    }
}
