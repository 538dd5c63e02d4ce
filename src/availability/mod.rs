//! Availability (SPEC section 3): booking rules, blocks, absences, free slots for the booking
//! site, occupancy and calendar events.

pub mod blocks;
pub mod model;
pub mod recurrence;
pub mod slots;
pub mod store;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime};
use serde::Deserialize;
use serde_json::{json, Value};
use validator::Validate;

use crate::app::AppState;
use crate::auth::extract::{parse_id, ClientUser, Therapist};
use crate::auth::model::Role;
use crate::bookings::model::{Booking, BookingStatus, ClientBook, PaymentStatus};
use crate::bookings::service::place;
use crate::bookings::store::BookingStore;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::{ApiQuery, ValidatedJson};
use crate::time::{self, parse_zone};
use blocks::BlockInput;
use model::{AbsenceKind, Block, BlockType, Schedule, WorkingHours, WEEKDAYS};
use recurrence::BlockRule;
use store::AvailabilityStore;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/availability/schedule", get(get_schedule).put(put_schedule))
        .route("/api/availability/blocks", post(create_block))
        .route(
            "/api/availability/blocks/{id}",
            put(update_block).delete(delete_block),
        )
        .route(
            "/api/availability/exceptions",
            get(list_absences).post(create_absence),
        )
        .route(
            "/api/availability/exceptions/{id}",
            put(update_absence).delete(delete_absence),
        )
        .route("/api/availability/therapist/{id}", get(slots_range))
        .route("/api/availability/therapist/{id}/blocks", get(list_blocks))
        .route(
            "/api/availability/therapist/{id}/date/{date}",
            get(slots_for_date),
        )
        .route("/api/availability/check-slot", post(check_slot))
        .route("/api/availability/analysis/occupancy", get(occupancy))
        .route("/api/availability/calendar/events", get(calendar_events))
}

fn zone_of(schedule: &Schedule) -> ApiResult<Tz> {
    parse_zone(&schedule.timezone).map_err(|_| ApiError::field("timezone", "is not a known IANA time zone"))
}

/// `PUT /api/availability/schedule` body.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleInput {
    pub timezone: String,
    pub weekly: std::collections::BTreeMap<String, Vec<WorkingHours>>,
    #[validate(range(max = 240, message = "must be 0 to 240 minutes"))]
    #[serde(default)]
    pub buffer_minutes: u32,
    #[validate(range(max = 720, message = "must be 0 to 720 hours"))]
    #[serde(default)]
    pub min_notice_hours: u32,
    #[validate(range(min = 1, max = 730, message = "must be 1 to 730 days"))]
    #[serde(default = "ninety")]
    pub max_advance_days: u32,
}

fn ninety() -> u32 {
    90
}

impl ScheduleInput {
    fn into_schedule(self) -> ApiResult<Schedule> {
        parse_zone(&self.timezone)
            .map_err(|_| ApiError::field("timezone", "is not a known IANA time zone"))?;
        let mut weekly = std::collections::BTreeMap::new();
        for day in WEEKDAYS {
            weekly.insert(day.to_owned(), Vec::new());
        }
        for (day, hours) in self.weekly {
            let key = day.to_ascii_lowercase();
            if !WEEKDAYS.contains(&key.as_str()) {
                return Err(ApiError::field(
                    format!("weekly.{day}"),
                    "is not a day of the week",
                ));
            }
            let mut spans = Vec::new();
            for (i, h) in hours.iter().enumerate() {
                let field = format!("weekly.{key}[{i}]");
                let s = time::minutes_of_day(&h.start)
                    .map_err(|e| ApiError::field(format!("{field}.start"), e.to_string()))?;
                let e = time::minutes_of_day(&h.end)
                    .map_err(|e| ApiError::field(format!("{field}.end"), e.to_string()))?;
                if e <= s {
                    return Err(ApiError::field(format!("{field}.end"), "must be after start"));
                }
                spans.push((s, e, field));
            }
            spans.sort();
            for w in spans.windows(2) {
                if w[1].0 < w[0].1 {
                    return Err(ApiError::field(
                        w[1].2.clone(),
                        "overlaps another interval of the day",
                    ));
                }
            }
            weekly.insert(key, hours);
        }
        Ok(Schedule {
            timezone: self.timezone,
            weekly,
            buffer_minutes: self.buffer_minutes,
            min_notice_hours: self.min_notice_hours,
            max_advance_days: self.max_advance_days,
        })
    }
}

/// The caller's booking rules (defaults until set).
#[utoipa::path(get, path = "/api/availability/schedule", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn get_schedule(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    Ok(envelope::ok(
        AvailabilityStore::new(&state.db).schedule(me.0.id).await?,
    ))
}

/// Replaces the caller's booking rules.
#[utoipa::path(put, path = "/api/availability/schedule", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn put_schedule(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(req): ValidatedJson<ScheduleInput>,
) -> ApiResult<Response> {
    let schedule = req.into_schedule()?;
    AvailabilityStore::new(&state.db)
        .put_schedule(me.0.id, &schedule)
        .await?;
    Ok(envelope::ok(schedule))
}

/// An absence (`startDate`..`endDate`, whole days).
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct AbsenceInput {
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    #[serde(rename = "type")]
    pub absence_type: Option<AbsenceKind>,
    #[validate(length(max = 500))]
    pub reason: Option<String>,
}

fn absence_interval(zone: Tz, input: &AbsenceInput) -> ApiResult<(DateTime, DateTime)> {
    let from = input
        .start_date
        .as_deref()
        .ok_or_else(|| ApiError::field("startDate", "is required"))?;
    let to = input.end_date.as_deref().unwrap_or(from);
    let a = time::parse_date(from).map_err(|e| ApiError::field("startDate", e.to_string()))?;
    let b = time::parse_date(to).map_err(|e| ApiError::field("endDate", e.to_string()))?;
    if b < a {
        return Err(ApiError::field("endDate", "must not be before startDate"));
    }
    if (b - a).num_days() > 366 {
        return Err(ApiError::field("endDate", "an absence lasts at most a year"));
    }
    Ok((
        DateTime::from_chrono(time::day_bounds(zone, a).0),
        DateTime::from_chrono(time::day_bounds(zone, b).1),
    ))
}

fn absence_view(b: &Block, zone: Tz) -> Value {
    let (sd, st) = time::to_local(zone, b.starts_at.to_chrono());
    let (ed, et) = time::to_local(zone, b.ends_at.to_chrono());
    let id = b.id.to_hex();
    json!({
        "id": id, "_id": id, "therapistId": b.therapist_id.to_hex(), "kind": b.kind,
        "type": b.absence_type, "reason": b.reason,
        "date": sd, "startTime": st, "endTime": et, "startDate": sd, "endDate": ed,
        "startsAt": crate::time::rfc3339(b.starts_at), "endsAt": crate::time::rfc3339(b.ends_at),
    })
}

/// Creates a block (bare JSON, as the dashboard reads it).
#[utoipa::path(post, path = "/api/availability/blocks", tag = "availability", responses((status = 201), (status = 400)))]
pub async fn create_block(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(input): ValidatedJson<BlockInput>,
) -> ApiResult<Response> {
    let store = AvailabilityStore::new(&state.db);
    let zone = zone_of(&store.schedule(me.0.id).await?)?;
    let block = blocks::new_block(me.0.id, input, zone)?;
    store.insert_block(&block).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(blocks::view(&block, zone, None)),
    )
        .into_response())
}

/// Updates a block (bare JSON): what the body leaves out keeps its value.
#[utoipa::path(put, path = "/api/availability/blocks/{id}", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn update_block(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<BlockInput>,
) -> ApiResult<Response> {
    if let Some(e) = blocks::read_only(&id) {
        return Err(e);
    }
    let id = parse_id(&id, "id")?;
    let store = AvailabilityStore::new(&state.db);
    let zone = zone_of(&store.schedule(me.0.id).await?)?;
    let mut block = store
        .get_block(&me.scope(), id, "block")
        .await?
        .ok_or_else(|| ApiError::not_found("Block"))?;
    let rule = BlockRule::of(&block, zone).ok_or_else(|| ApiError::not_found("Block"))?;
    input.over(&block, &rule).apply(&mut block, zone)?;
    block.updated_at = DateTime::now();
    store
        .replace_block(&me.scope(), &block)
        .await?
        .then_some(())
        .ok_or_else(|| ApiError::not_found("Block"))?;
    Ok(Json(blocks::view(&block, zone, None)).into_response())
}

/// Deletes a block (bare JSON).
#[utoipa::path(delete, path = "/api/availability/blocks/{id}", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn delete_block(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if let Some(e) = blocks::read_only(&id) {
        return Err(e);
    }
    let id = parse_id(&id, "id")?;
    if !AvailabilityStore::new(&state.db)
        .delete_block(&me.scope(), id, "block")
        .await?
    {
        return Err(ApiError::not_found("Block"));
    }
    Ok(Json(json!({ "deleted": true, "id": id.to_hex() })).into_response())
}

/// `current` or the caller's own id (another therapist's is a 404); `field` names the parameter.
fn resolve_therapist(me: &Therapist, raw: &str, field: &str) -> ApiResult<ObjectId> {
    let id = if raw == "current" {
        me.0.id
    } else {
        parse_id(raw, field)?
    };
    if id != me.0.id {
        return Err(ApiError::not_found("Therapist"));
    }
    Ok(id)
}

/// `?startDate&endDate` (local dates `YYYY-MM-DD`, or ISO instants read in the therapist's
/// zone), `therapistId` (`current` or the caller's id), `sessionDuration`. Other parameters the
/// dashboard sends (`view`...) are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateRange {
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub session_duration: Option<u32>,
    pub therapist_id: Option<String>,
}

/// The longest range of the dashboard's calendar, blocks and occupancy: a year (it asks 123
/// days), inclusive.
const YEAR_RANGE_DAYS: i64 = 367;

/// A local date of a range parameter: `YYYY-MM-DD`, or an ISO instant (its date in `zone`).
fn range_date(zone: Tz, field: &str, raw: &str) -> ApiResult<NaiveDate> {
    if raw.len() == 10 {
        return time::parse_date(raw).map_err(|e| ApiError::field(field, e.to_string()));
    }
    let bad = || ApiError::field(field, "must be a date as YYYY-MM-DD or an ISO 8601 instant");
    let local = match chrono::DateTime::parse_from_rfc3339(raw) {
        Ok(t) => t.with_timezone(&zone).date_naive(),
        Err(_) => chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
            .map_err(|_| bad())?
            .date(),
    };
    time::parse_date(&local.format("%Y-%m-%d").to_string()).map_err(|_| bad())
}

fn range_of(q: &DateRange, zone: Tz, default_days: i64, max_days: i64) -> ApiResult<(NaiveDate, NaiveDate)> {
    let today = Utc::now().with_timezone(&zone).date_naive();
    let from = q
        .start_date
        .as_deref()
        .map(|s| range_date(zone, "startDate", s))
        .transpose()?
        .unwrap_or(today);
    let to = q
        .end_date
        .as_deref()
        .map(|s| range_date(zone, "endDate", s))
        .transpose()?
        .unwrap_or(from + Duration::days(default_days - 1));
    if to < from {
        return Err(ApiError::field("endDate", "must not be before startDate"));
    }
    if (to - from).num_days() >= max_days {
        return Err(ApiError::field(
            "endDate",
            format!("the range spans at most {max_days} days"),
        ));
    }
    Ok((from, to))
}

/// The therapist's time blocks over a range (bare JSON list), with the weekly schedule as
/// read-only recurring `availability` blocks (`source: "schedule"`), each with its
/// `occurrences` in the range.
#[utoipa::path(get, path = "/api/availability/therapist/{id}/blocks", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn list_blocks(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DateRange>,
) -> ApiResult<Response> {
    let therapist = resolve_therapist(&me, &id, "id")?;
    let store = AvailabilityStore::new(&state.db);
    let schedule = store.schedule(therapist).await?;
    let zone = zone_of(&schedule)?;
    let (from, to) = range_of(&q, zone, 366, YEAR_RANGE_DAYS)?;
    let (a, b) = (time::day_bounds(zone, from).0, time::day_bounds(zone, to).1);
    let list = store
        .blocks_between(
            therapist,
            DateTime::from_chrono(a),
            DateTime::from_chrono(b),
            Some("block"),
        )
        .await?;
    let mut views = blocks::schedule_views(therapist, &schedule, zone, from, to);
    views.extend(
        list.iter()
            .filter(|b| blocks::occurs_within(b, zone, from, to))
            .map(|b| blocks::view(b, zone, Some((from, to)))),
    );
    views.sort_by(|x, y| {
        (x["startDate"].as_str(), x["startTime"].as_str())
            .cmp(&(y["startDate"].as_str(), y["startTime"].as_str()))
    });
    Ok(Json(views).into_response())
}

/// The caller's absences.
#[utoipa::path(get, path = "/api/availability/exceptions", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn list_absences(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<DateRange>,
) -> ApiResult<Response> {
    let store = AvailabilityStore::new(&state.db);
    let zone = zone_of(&store.schedule(me.0.id).await?)?;
    let (from, to) = range_of(&q, zone, 366, 800)?;
    let (a, b) = (time::day_bounds(zone, from).0, time::day_bounds(zone, to).1);
    let list = store
        .blocks_between(
            me.0.id,
            DateTime::from_chrono(a),
            DateTime::from_chrono(b),
            Some("absence"),
        )
        .await?;
    Ok(envelope::ok(
        list.iter().map(|b| absence_view(b, zone)).collect::<Vec<_>>(),
    ))
}

/// Records an absence (vacation, sick leave...).
#[utoipa::path(post, path = "/api/availability/exceptions", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn create_absence(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(input): ValidatedJson<AbsenceInput>,
) -> ApiResult<Response> {
    let store = AvailabilityStore::new(&state.db);
    let zone = zone_of(&store.schedule(me.0.id).await?)?;
    let (starts_at, ends_at) = absence_interval(zone, &input)?;
    let mut block = blocks::empty(me.0.id, "absence");
    block.absence_type = Some(input.absence_type.unwrap_or(AbsenceKind::Other));
    block.reason = input.reason;
    (block.starts_at, block.ends_at) = (starts_at, ends_at);
    store.insert_block(&block).await?;
    Ok(envelope::created(absence_view(&block, zone)))
}

/// Changes an absence.
#[utoipa::path(put, path = "/api/availability/exceptions/{id}", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn update_absence(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<AbsenceInput>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let store = AvailabilityStore::new(&state.db);
    let zone = zone_of(&store.schedule(me.0.id).await?)?;
    let (starts_at, ends_at) = absence_interval(zone, &input)?;
    let mut set = doc! { "startsAt": starts_at, "endsAt": ends_at, "updatedAt": DateTime::now() };
    if let Some(r) = input.reason {
        set.insert("reason", r);
    }
    if let Some(t) = input.absence_type {
        set.insert("absenceType", mongodb::bson::to_bson(&t)?);
    }
    let b = store
        .update_block(&me.scope(), id, "absence", set)
        .await?
        .ok_or_else(|| ApiError::not_found("Absence"))?;
    Ok(envelope::ok(absence_view(&b, zone)))
}

/// Removes an absence.
#[utoipa::path(delete, path = "/api/availability/exceptions/{id}", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn delete_absence(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    if !AvailabilityStore::new(&state.db)
        .delete_block(&me.scope(), id, "absence")
        .await?
    {
        return Err(ApiError::not_found("Absence"));
    }
    Ok(envelope::message("Absence removed"))
}

/// A therapist id from a request body's `therapistId`.
async fn public_therapist(state: &AppState, raw: &str) -> ApiResult<ObjectId> {
    if raw != "current" {
        parse_id(raw, "therapistId")?;
    }
    public_therapist_as(state, raw, None).await
}

/// Counts a public request against the per-IP limit.
pub async fn public_limit(state: &AppState, ip: std::net::IpAddr) -> ApiResult<()> {
    state
        .limiter
        .hit(state.config.rate_limit.public_ip, &format!("public:ip:{ip}"))
        .await
}

/// A therapist id from a public route; `current` means the signed-in therapist (SPEC 1).
async fn public_therapist_as(
    state: &AppState,
    raw: &str,
    caller: Option<crate::auth::extract::AuthUser>,
) -> ApiResult<ObjectId> {
    let id = match (raw, caller) {
        ("current", Some(me)) if me.role == Role::Therapist => me.id,
        ("current", _) => return Err(ApiError::not_found("Therapist")),
        _ => parse_id(raw, "id")?,
    };
    let user = crate::auth::store::AuthStore::new(&state.db)
        .user_by_id(id)
        .await?;
    match user {
        Some(u) if u.role == Role::Therapist => Ok(id),
        _ => Err(ApiError::not_found("Therapist")),
    }
}

/// A therapist's time around some local dates, as sorted Unix-second intervals.
struct TimeUse {
    /// Bookings holding time.
    bookings: Vec<(i64, i64)>,
    /// Absences and `unavailable` block windows.
    closed: Vec<(i64, i64)>,
    /// `availability` block windows.
    opened: Vec<(i64, i64)>,
    /// Each block's windows (for calendar events), with its rule.
    windows: Vec<(Block, BlockRule, Vec<recurrence::Occurrence>)>,
    /// Absences.
    absences: Vec<Block>,
}

/// Loads bookings, absences and blocks (expanded in `zone`) over the local dates `[from, to]`,
/// and `pad` more on each side.
async fn time_use(
    state: &AppState,
    therapist: ObjectId,
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
    pad: Duration,
) -> ApiResult<TimeUse> {
    let a = DateTime::from_chrono(time::day_bounds(zone, from).0 - pad);
    let b = DateTime::from_chrono(time::day_bounds(zone, to).1 + pad);
    let bookings = BookingStore::new(&state.db)
        .overlapping(therapist, a, b, 0, None)
        .await?;
    let stored = AvailabilityStore::new(&state.db)
        .blocks_between(therapist, a, b, None)
        .await?;
    let secs = |d: DateTime| d.timestamp_millis() / 1000;
    let mut used = TimeUse {
        bookings: bookings
            .iter()
            .map(|x| (secs(x.starts_at), secs(x.ends_at)))
            .collect(),
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
    used.bookings.sort_unstable();
    used.closed = slots::merge(std::mem::take(&mut used.closed));
    used.opened = slots::merge(std::mem::take(&mut used.opened));
    Ok(used)
}

async fn compute_slots(
    state: &AppState,
    therapist: ObjectId,
    from: NaiveDate,
    to: NaiveDate,
    duration: u32,
) -> ApiResult<(Tz, Vec<slots::Slot>)> {
    if !(5..=720).contains(&duration) || duration % 5 != 0 {
        return Err(ApiError::field(
            "sessionDuration",
            "must be 5 to 720 minutes, a multiple of 5",
        ));
    }
    let schedule = AvailabilityStore::new(&state.db).schedule(therapist).await?;
    let zone = zone_of(&schedule)?;
    let pad = Duration::minutes(i64::from(schedule.buffer_minutes) + i64::from(duration));
    let used = time_use(state, therapist, zone, from, to, pad).await?;
    let req = slots::SlotRequest {
        zone,
        from,
        to,
        duration_minutes: duration,
        now: Utc::now(),
        bookings: &used.bookings,
        blocked: &used.closed,
    };
    Ok((zone, slots::free_slots_with(&schedule, &req, &used.opened)))
}

fn slot_view(zone: Tz, s: &slots::Slot) -> Value {
    let start = Utc.timestamp_opt(s.start, 0).single().unwrap_or_default();
    let end = Utc.timestamp_opt(s.end, 0).single().unwrap_or_default();
    let (date, st) = time::to_local(zone, start);
    let (_, et) = time::to_local(zone, end);
    json!({ "date": date, "startTime": st, "endTime": et, "startsAt": start.to_rfc3339(), "endsAt": end.to_rfc3339() })
}

/// Public: free slots of a therapist over a date range (at most 62 days).
#[utoipa::path(get, path = "/api/availability/therapist/{id}", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn slots_range(
    State(state): State<AppState>,
    crate::http::client_ip::ClientIp(ip): crate::http::client_ip::ClientIp,
    caller: Option<crate::auth::extract::AuthUser>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DateRange>,
) -> ApiResult<Response> {
    public_limit(&state, ip).await?;
    let therapist = public_therapist_as(&state, &id, caller).await?;
    let zone = zone_of(&AvailabilityStore::new(&state.db).schedule(therapist).await?)?;
    let (from, to) = range_of(&q, zone, 14, 62)?;
    let (zone, list) = compute_slots(&state, therapist, from, to, q.session_duration.unwrap_or(60)).await?;
    let views: Vec<Value> = list.iter().map(|s| slot_view(zone, s)).collect();
    Ok(envelope::ok(
        json!({ "therapistId": therapist.to_hex(), "timezone": zone.name(), "slots": views }),
    ))
}

/// `?sessionDuration=60`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationQuery {
    pub session_duration: Option<u32>,
}

/// Public: free slots of a therapist on one local date.
#[utoipa::path(get, path = "/api/availability/therapist/{id}/date/{date}", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn slots_for_date(
    State(state): State<AppState>,
    crate::http::client_ip::ClientIp(ip): crate::http::client_ip::ClientIp,
    caller: Option<crate::auth::extract::AuthUser>,
    Path((id, date)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DurationQuery>,
) -> ApiResult<Response> {
    public_limit(&state, ip).await?;
    let therapist = public_therapist_as(&state, &id, caller).await?;
    let day = time::parse_date(&date).map_err(|e| ApiError::field("date", e.to_string()))?;
    let (zone, list) = compute_slots(&state, therapist, day, day, q.session_duration.unwrap_or(60)).await?;
    let views: Vec<Value> = list.iter().map(|s| slot_view(zone, s)).collect();
    Ok(envelope::ok(
        json!({ "date": date, "timezone": zone.name(), "slots": views }),
    ))
}

/// `POST /api/availability/check-slot`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct CheckSlot {
    pub therapist_id: String,
    pub date: String,
    pub start_time: String,
    pub end_time: String,
}

/// Public: whether a client could book this time now.
#[utoipa::path(post, path = "/api/availability/check-slot", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn check_slot(
    State(state): State<AppState>,
    crate::http::client_ip::ClientIp(ip): crate::http::client_ip::ClientIp,
    ValidatedJson(req): ValidatedJson<CheckSlot>,
) -> ApiResult<Response> {
    public_limit(&state, ip).await?;
    let therapist = public_therapist(&state, &req.therapist_id).await?;
    let schedule = AvailabilityStore::new(&state.db).schedule(therapist).await?;
    let zone = zone_of(&schedule)?;
    let p = place(zone, &req.date, &req.start_time, &req.end_time)?;
    let day = time::parse_date(&req.date).map_err(|e| ApiError::field("date", e.to_string()))?;
    let used = time_use(&state, therapist, zone, day, day, Duration::days(1)).await?;
    let (s, e) = (p.starts_at.timestamp(), p.ends_at.timestamp());
    let buf = i64::from(schedule.buffer_minutes) * 60;
    let reason = match slots::within_rules(&schedule, zone, day, s, e, Utc::now(), &used.closed, &used.opened)
    {
        Err(r) => Some(r),
        Ok(()) if used.bookings.iter().any(|&(bs, be)| s < be + buf && bs < e + buf) => {
            Some("is already booked")
        }
        Ok(()) => None,
    };
    Ok(envelope::ok(
        json!({ "available": reason.is_none(), "reason": reason.map(|r| format!("This time {r}")) }),
    ))
}

/// Booked share of open time (working hours and `availability` blocks, less absences and
/// `unavailable` blocks) over a range; `totalAvailableHours` is what the dashboard reads.
#[utoipa::path(get, path = "/api/availability/analysis/occupancy", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn occupancy(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<DateRange>,
) -> ApiResult<Response> {
    let therapist = match q.therapist_id.as_deref() {
        Some(raw) => resolve_therapist(&me, raw, "therapistId")?,
        None => me.0.id,
    };
    let schedule = AvailabilityStore::new(&state.db).schedule(therapist).await?;
    let (from, to) = range_of(&q, zone_of(&schedule)?, 30, YEAR_RANGE_DAYS)?;
    let o = occupancy_of(&state, therapist, &schedule, from, to).await?;
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

/// Computes a therapist's occupancy over a range of local dates.
pub async fn occupancy_of(
    state: &AppState,
    therapist: ObjectId,
    schedule: &Schedule,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<Occupancy> {
    let zone = zone_of(schedule)?;
    let used = time_use(state, therapist, zone, from, to, Duration::zero()).await?;
    let open = slots::open_intervals(schedule, zone, from, to, &used.opened);
    let (lo, hi) = (
        time::day_bounds(zone, from).0.timestamp(),
        time::day_bounds(zone, to).1.timestamp(),
    );
    Ok(Occupancy {
        working_secs: open.iter().map(|(s, e)| e - s).sum(),
        blocked_secs: overlap_secs(&open, &used.closed),
        booked_secs: overlap_secs(&open, &used.bookings),
        bookings: used.bookings.iter().filter(|&&(s, e)| s < hi && lo < e).count(),
    })
}

fn event_at(start: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>, zone: Tz) -> Value {
    let (date, st) = time::to_local(zone, start);
    let (_, et) = time::to_local(zone, end);
    let rfc = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({ "start": rfc(start), "end": rfc(end), "date": date, "startTime": st, "endTime": et })
}

/// Bookings, absences, block windows and working hours (`source: "schedule"`) as calendar
/// events.
#[utoipa::path(get, path = "/api/availability/calendar/events", tag = "availability", responses((status = 200), (status = 400), (status = 404)))]
pub async fn calendar_events(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<DateRange>,
) -> ApiResult<Response> {
    let therapist = match q.therapist_id.as_deref() {
        Some(raw) => resolve_therapist(&me, raw, "therapistId")?,
        None => me.0.id,
    };
    let schedule = AvailabilityStore::new(&state.db).schedule(therapist).await?;
    let zone = zone_of(&schedule)?;
    let (from, to) = range_of(&q, zone, 31, YEAR_RANGE_DAYS)?;
    let (a, b) = (time::day_bounds(zone, from).0, time::day_bounds(zone, to).1);
    let store = BookingStore::new(&state.db);
    let bookings = store
        .overlapping(
            therapist,
            DateTime::from_chrono(a),
            DateTime::from_chrono(b),
            0,
            None,
        )
        .await?;
    let views = store.views(&bookings).await?;
    let mut events: Vec<Value> = bookings
        .iter()
        .zip(views)
        .map(|(bk, v)| {
            let title = v["client"]["name"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| "Session".into());
            json!({ "id": bk.id.to_hex(), "type": "booking", "title": title,
                "start": crate::time::rfc3339(bk.starts_at), "end": crate::time::rfc3339(bk.ends_at),
                "status": bk.status, "booking": v })
        })
        .collect();
    let used = time_use(&state, therapist, zone, from, to, Duration::zero()).await?;
    for bl in &used.absences {
        events.push(
            json!({ "id": bl.id.to_hex(), "type": "absence", "absenceType": bl.absence_type,
            "title": bl.reason.clone().unwrap_or_else(|| "Unavailable".into()),
            "start": crate::time::rfc3339(bl.starts_at), "end": crate::time::rfc3339(bl.ends_at) }),
        );
    }
    for (block, rule, occurrences) in &used.windows {
        for o in occurrences.iter().filter(|o| (from..=to).contains(&o.date)) {
            let mut e = event_at(o.start, o.end, zone);
            let extra = json!({ "id": block.id.to_hex(), "blockId": block.id.to_hex(), "type": rule.block_type,
                "source": "block", "title": block.title.clone().or_else(|| block.reason.clone()),
                "color": block.color, "location": block.location, "repeat": rule.repeat });
            e.as_object_mut()
                .into_iter()
                .for_each(|m| m.extend(extra.as_object().cloned().unwrap_or_default()));
            events.push(e);
        }
    }
    let mut day = from;
    while day <= to {
        for (s, e) in slots::working_intervals(&schedule, zone, day) {
            let (Some(s), Some(e)) = (Utc.timestamp_opt(s, 0).single(), Utc.timestamp_opt(e, 0).single())
            else {
                continue;
            };
            let mut ev = event_at(s, e, zone);
            let weekday = recurrence::weekday_name(chrono::Datelike::weekday(&day));
            ev["id"] = json!(format!(
                "{}{weekday}-{}",
                blocks::SCHEDULE_ID_PREFIX,
                ev["startTime"].as_str().unwrap_or_default()
            ));
            ev["type"] = json!("availability");
            ev["source"] = json!("schedule");
            ev["title"] = json!("Horario laboral");
            events.push(ev);
        }
        day = day.succ_opt().unwrap_or(to + Duration::days(1));
    }
    events.sort_by(|x, y| x["start"].as_str().cmp(&y["start"].as_str()));
    Ok(envelope::ok(events))
}

/// The session price of the therapist's profile (0 EUR when none is set).
async fn session_price(
    state: &AppState,
    therapist: ObjectId,
) -> ApiResult<(crate::money::Cents, crate::money::Currency)> {
    let profile = state
        .db
        .collection::<mongodb::bson::Document>("profiles")
        .find_one(doc! { "userId": therapist })
        .await?;
    let rates = profile
        .and_then(|p| p.get_document("rates").ok().cloned())
        .unwrap_or_default();
    let cents = rates
        .get("sessionPriceCents")
        .and_then(crate::db::as_i64)
        .unwrap_or(0)
        .max(0);
    let currency = rates
        .get_str("currency")
        .ok()
        .and_then(|c| serde_json::from_value(json!(c)).ok())
        .unwrap_or_default();
    Ok((crate::money::Cents(cents), currency))
}

/// Books a slot as a signed-in client: rules checked, client record found or created, time
/// claimed atomically like any booking.
pub async fn book_as_client(
    state: &AppState,
    me: &ClientUser,
    req: ClientBook,
    id: ObjectId,
) -> ApiResult<Booking> {
    let therapist = public_therapist(state, &req.therapist_id)
        .await
        .map_err(|_| ApiError::field("therapistId", "is not a therapist"))?;
    let schedule = AvailabilityStore::new(&state.db).schedule(therapist).await?;
    let zone = zone_of(&schedule)?;
    let p = place(zone, &req.date, &req.start_time, &req.end_time)?;
    let day = time::parse_date(&req.date).map_err(|e| ApiError::field("date", e.to_string()))?;
    let used = time_use(state, therapist, zone, day, day, Duration::days(1)).await?;
    slots::within_rules(
        &schedule,
        zone,
        day,
        p.starts_at.timestamp(),
        p.ends_at.timestamp(),
        Utc::now(),
        &used.closed,
        &used.opened,
    )
    .map_err(|r| ApiError::field("startTime", format!("this time {r}")))?;
    let client_id = crate::clients::service::client_record_for(state, therapist, me.0.id).await?;
    let (amount, currency) = session_price(state, therapist).await?;
    let now = DateTime::now();
    let booking = Booking {
        id,
        therapist_id: therapist,
        client_id,
        date: p.date.clone(),
        start_time: p.start_time.clone(),
        end_time: p.end_time.clone(),
        starts_at: DateTime::from_chrono(p.starts_at),
        ends_at: DateTime::from_chrono(p.ends_at),
        timezone: schedule.timezone.clone(),
        status: BookingStatus::Pending,
        therapy_type: req.therapy_type,
        therapy_duration: p.minutes(),
        amount_cents: amount,
        currency,
        location: None,
        notes: None,
        client_notes: req.notes,
        meeting_link: None,
        payment_status: PaymentStatus::Pending,
        buffer_minutes: schedule.buffer_minutes,
        series_id: None,
        cancellation: None,
        claim_tokens: Vec::new(),
        payment_method: None,
        version: 1,
        created_by: "client".into(),
        created_at: now,
        updated_at: now,
    };
    let mut created = crate::bookings::service::create_all(state, vec![booking], None).await?;
    created
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("booking vanished")))
}
