//! Time blocks as the dashboard reads them (bare JSON): stored blocks with their occurrences
//! over a range, and the weekly schedule shown as read-only recurring `availability` blocks.

use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;
use serde_json::{json, Value};

use super::blocks::{hm, SCHEDULE_ID_PREFIX};
use super::model::{Block, BlockType, Repeat, Schedule, WEEKDAYS};
use super::recurrence::{self, BlockRule};
use crate::time;

fn occurrence_views(rule: &BlockRule, zone: Tz, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    recurrence::expand(rule, zone, from, to)
        .iter()
        .map(|o| {
            let (_, st) = time::to_local(zone, o.start);
            let et = if o.end == time::day_bounds(zone, o.date).1 {
                "24:00".to_owned()
            } else {
                time::to_local(zone, o.end).1
            };
            json!({ "date": o.date.to_string(), "startTime": st, "endTime": et,
                "startsAt": rfc(o.start), "endsAt": rfc(o.end) })
        })
        .collect()
}

fn rfc(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A stored block as the dashboard reads it (bare JSON); with its occurrences over `range`.
pub fn view(b: &Block, zone: Tz, range: Option<(NaiveDate, NaiveDate)>) -> Value {
    let id = b.id.to_hex();
    let Some(rule) = BlockRule::of(b, zone) else {
        return json!({ "id": id, "_id": id, "therapistId": b.therapist_id.to_hex(), "kind": b.kind });
    };
    let first = recurrence::window(zone, rule.start_date, rule.start_min, rule.end_min);
    let weekdays: Vec<&str> = if rule.repeat != Repeat::Weekly {
        Vec::new()
    } else if rule.weekdays.is_empty() {
        vec![recurrence::weekday_name(rule.start_date.weekday())]
    } else {
        rule.weekdays
            .iter()
            .map(|d| recurrence::weekday_name(*d))
            .collect()
    };
    let mut v = json!({
        "id": id, "_id": id, "therapistId": b.therapist_id.to_hex(), "kind": "block",
        "source": "block", "readOnly": false,
        "type": rule.block_type, "title": b.title.clone().or_else(|| b.reason.clone()),
        "date": rule.start_date.to_string(),
        "startDate": rule.start_date.to_string(), "endDate": rule.end_date.to_string(),
        "startTime": hm(rule.start_min), "endTime": hm(rule.end_min),
        "repeat": rule.repeat, "selectedWeekdays": weekdays,
        "monthlyBy": if rule.monthly_by_weekday { "weekday" } else { "dayOfMonth" },
        "duration": b.duration, "durationEndDate": b.duration_end_date,
        "until": rule.until.map(|d| d.to_string()),
        "color": b.color, "location": b.location, "notes": b.notes, "reason": b.reason,
        "startsAt": first.map(|w| rfc(w.0)), "endsAt": first.map(|w| rfc(w.1)),
        "createdAt": time::rfc3339(b.created_at), "updatedAt": time::rfc3339(b.updated_at),
    });
    if let Some((from, to)) = range {
        v["occurrences"] = Value::Array(occurrence_views(&rule, zone, from, to));
    }
    v
}

/// Whether a block has any window over the local dates `[from, to]`.
pub fn occurs_within(b: &Block, zone: Tz, from: NaiveDate, to: NaiveDate) -> bool {
    BlockRule::of(b, zone).is_some_and(|r| !recurrence::expand(&r, zone, from, to).is_empty())
}

/// The weekly schedule as read-only recurring `availability` blocks over `[from, to]`: one per
/// working interval, starting on the range's first date of its weekday.
pub fn schedule_views(
    therapist: ObjectId,
    schedule: &Schedule,
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (index, day) in WEEKDAYS.iter().enumerate() {
        let Some(weekday) = recurrence::weekday_of(day) else {
            continue;
        };
        let offset = (7 + index as i64 - i64::from(from.weekday().num_days_from_monday())) % 7;
        let first = from + Duration::days(offset);
        if first > to {
            continue;
        }
        for (i, h) in schedule.weekly.get(*day).into_iter().flatten().enumerate() {
            let (Ok(s), Ok(e)) = (time::minutes_of_day(&h.start), time::minutes_of_day(&h.end)) else {
                continue;
            };
            let rule = BlockRule {
                block_type: BlockType::Availability,
                start_date: first,
                end_date: first,
                start_min: s,
                end_min: e,
                repeat: Repeat::Weekly,
                weekdays: vec![weekday],
                monthly_by_weekday: false,
                until: None,
            };
            let id = format!("{SCHEDULE_ID_PREFIX}{day}-{i}");
            let window = recurrence::window(zone, first, s, e);
            out.push(json!({
                "id": id, "_id": id, "therapistId": therapist.to_hex(), "kind": "schedule",
                "source": "schedule", "readOnly": true,
                "type": BlockType::Availability, "title": "Horario laboral",
                "date": first.to_string(), "startDate": first.to_string(), "endDate": first.to_string(),
                "startTime": h.start, "endTime": h.end,
                "repeat": Repeat::Weekly, "selectedWeekdays": [day], "monthlyBy": "dayOfMonth",
                "duration": "indefinite", "durationEndDate": null, "until": null,
                "color": "sage", "location": h.location, "notes": null, "reason": null,
                "startsAt": window.map(|w| rfc(w.0)), "endsAt": window.map(|w| rfc(w.1)),
                "occurrences": occurrence_views(&rule, zone, from, to),
            }));
        }
    }
    out
}
