//! The therapist's calendar: bookings, absences, block windows and working hours as events over
//! a range, and the booked share of open time (occupancy).

use axum::extract::State;
use axum::response::Response;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;
use serde_json::{json, Value};

use super::busy::{occupancy_of, time_use, TimeUse};
use super::store::BookingStore;
use crate::app::AppState;
use crate::auth::extract::Therapist;
use crate::availability::blocks::SCHEDULE_ID_PREFIX;
use crate::availability::model::{DateRange, Schedule};
use crate::availability::open_time::padded_bounds;
use crate::availability::query::{range_of, therapist_of, YEAR_RANGE_DAYS};
use crate::availability::recurrence;
use crate::availability::slots;
use crate::availability::store::AvailabilityStore;
use crate::error::ApiResult;
use crate::http::envelope;
use crate::http::extract::ApiQuery;
use crate::time::{self, rfc3339};

/// The therapist a range query is about, their schedule and zone, and its local dates.
struct Window {
    therapist: ObjectId,
    schedule: Schedule,
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
}

async fn window(state: &AppState, me: &Therapist, q: &DateRange, default_days: i64) -> ApiResult<Window> {
    let therapist = therapist_of(me, q)?;
    let (schedule, zone) = AvailabilityStore::new(&state.db)
        .schedule_in_zone(therapist)
        .await?;
    let (from, to) = range_of(q, zone, default_days, YEAR_RANGE_DAYS)?;
    Ok(Window {
        therapist,
        schedule,
        zone,
        from,
        to,
    })
}

/// Booked share of open time (working hours and `availability` blocks, less absences and
/// `unavailable` blocks) over a range; `totalAvailableHours` is what the dashboard reads.
#[utoipa::path(get, path = "/api/availability/analysis/occupancy", tag = "availability",
    security(("therapist" = [])),
    params(ApiQuery<crate::availability::model::DateRange>),
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::Occupancy>), (status = 404, description = "`therapistId` is another therapist")))]
pub async fn occupancy(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<DateRange>,
) -> ApiResult<Response> {
    let Window {
        therapist,
        schedule,
        zone,
        from,
        to,
    } = window(&state, &me, &q, 30).await?;
    let o = occupancy_of(&state, therapist, &schedule, zone, from, to).await?;
    let hours = |secs: i64| secs as f64 / 3600.0;
    Ok(envelope::ok(json!({
        "startDate": from.to_string(), "endDate": to.to_string(),
        "period": { "startDate": from.to_string(), "endDate": to.to_string() },
        "workingHours": hours(o.working_secs), "availableHours": hours(o.available_secs()),
        "totalAvailableHours": hours(o.available_secs()),
        "bookedHours": hours(o.booked_secs), "totalBookedHours": hours(o.booked_secs),
        "occupancyRate": o.rate(), "bookings": o.bookings, "totalSlots": o.bookings,
    })))
}

/// Bookings, absences, block windows and working hours (`source: "schedule"`) as calendar
/// events.
#[utoipa::path(get, path = "/api/availability/calendar/events", tag = "availability",
    security(("therapist" = [])),
    params(ApiQuery<crate::availability::model::DateRange>),
    responses((status = 200, body = crate::http::docs::Data<Vec<crate::bookings::docs::CalendarEvent>>), (status = 404, description = "`therapistId` is another therapist")))]
pub async fn calendar_events(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<DateRange>,
) -> ApiResult<Response> {
    let Window {
        therapist,
        schedule,
        zone,
        from,
        to,
    } = window(&state, &me, &q, 31).await?;
    let mut events = booking_events(&state, therapist, zone, from, to).await?;
    let used = time_use(&state, therapist, zone, from, to, Duration::zero()).await?;
    events.extend(block_events(&used, zone, from, to));
    events.extend(schedule_events(&schedule, zone, from, to));
    events.sort_by(|x, y| x["start"].as_str().cmp(&y["start"].as_str()));
    Ok(envelope::ok(events))
}

fn event_at(start: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>, zone: Tz) -> Value {
    let (date, st) = time::to_local(zone, start);
    let (_, et) = time::to_local(zone, end);
    let rfc = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({ "start": rfc(start), "end": rfc(end), "date": date, "startTime": st, "endTime": et })
}

/// The bookings over the local dates `[from, to]`, each with its client's view.
async fn booking_events(
    state: &AppState,
    therapist: ObjectId,
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<Vec<Value>> {
    let (a, b) = padded_bounds(zone, from, to, Duration::zero());
    let store = BookingStore::new(&state.db);
    let bookings = store.overlapping(therapist, a, b, 0, None).await?;
    let views = store.views(&bookings).await?;
    Ok(bookings
        .iter()
        .zip(views)
        .map(|(bk, v)| {
            let title = v["client"]["name"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| "Session".into());
            json!({ "id": bk.id.to_hex(), "type": "booking", "title": title,
                "start": rfc3339(bk.starts_at), "end": rfc3339(bk.ends_at),
                "status": bk.status, "booking": v })
        })
        .collect())
}

/// Absences, and the windows of blocks within `[from, to]`.
fn block_events(used: &TimeUse, zone: Tz, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    let mut events = Vec::new();
    for bl in &used.blocked.absences {
        events.push(
            json!({ "id": bl.id.to_hex(), "type": "absence", "absenceType": bl.absence_type,
            "title": bl.reason.clone().unwrap_or_else(|| "Unavailable".into()),
            "start": rfc3339(bl.starts_at), "end": rfc3339(bl.ends_at) }),
        );
    }
    for (block, rule, occurrences) in &used.blocked.windows {
        for o in occurrences.iter().filter(|o| (from..=to).contains(&o.date)) {
            let mut e = event_at(o.start, o.end, zone);
            let extra = json!({ "id": block.id.to_hex(), "blockId": block.id.to_hex(), "type": rule.block_type,
                "source": "block", "title": block.title.clone().or_else(|| block.reason.clone()),
                "color": block.color, "location": block.location, "repeat": rule.repeat });
            if let (Some(m), Value::Object(extra)) = (e.as_object_mut(), extra) {
                m.extend(extra);
            }
            events.push(e);
        }
    }
    events
}

/// The weekly schedule's working hours on each date of `[from, to]`.
fn schedule_events(schedule: &Schedule, zone: Tz, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    let mut events = Vec::new();
    let mut day = from;
    while day <= to {
        for (s, e) in slots::working_intervals(schedule, zone, day) {
            let (Some(s), Some(e)) = (Utc.timestamp_opt(s, 0).single(), Utc.timestamp_opt(e, 0).single())
            else {
                continue;
            };
            let mut ev = event_at(s, e, zone);
            let weekday = recurrence::weekday_name(chrono::Datelike::weekday(&day));
            ev["id"] = json!(format!(
                "{SCHEDULE_ID_PREFIX}{weekday}-{}",
                ev["startTime"].as_str().unwrap_or_default()
            ));
            ev["type"] = json!("availability");
            ev["source"] = json!("schedule");
            ev["title"] = json!("Horario laboral");
            events.push(ev);
        }
        day = day.succ_opt().unwrap_or(to + Duration::days(1));
    }
    events
}
