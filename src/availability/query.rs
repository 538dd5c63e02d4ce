//! Who and when a read of availability is about: the therapist a route names (`current`, the
//! caller's id, or any therapist on the public booking site) and the local dates of a range.
//! The booking site's per-IP limit lives here too: every public read counts against it.

use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;

use super::model::DateRange;
use crate::app::AppState;
use crate::auth::extract::{parse_id, AuthUser, Therapist};
use crate::auth::model::Role;
use crate::error::{ApiError, ApiResult};
use crate::time;

/// The longest range of the dashboard's calendar, blocks and occupancy: a year (it asks 123
/// days), inclusive.
pub const YEAR_RANGE_DAYS: i64 = 367;

/// `current` or the caller's own id (another therapist's is a 404); `field` names the parameter.
pub fn resolve_therapist(me: &Therapist, raw: &str, field: &str) -> ApiResult<ObjectId> {
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

/// The therapist of a `?therapistId=` (the caller when absent).
pub fn therapist_of(me: &Therapist, q: &DateRange) -> ApiResult<ObjectId> {
    match q.therapist_id.as_deref() {
        Some(raw) => resolve_therapist(me, raw, "therapistId"),
        None => Ok(me.0.id),
    }
}

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

/// The local dates `[from, to]` of a range query in `zone`: from today (in `zone`) for
/// `default_days` when not given, at most `max_days`.
pub fn range_of(
    q: &DateRange,
    zone: Tz,
    default_days: i64,
    max_days: i64,
) -> ApiResult<(NaiveDate, NaiveDate)> {
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

/// Counts a public request against the per-IP limit.
pub async fn public_limit(state: &AppState, ip: std::net::IpAddr) -> ApiResult<()> {
    state
        .limiter
        .hit(state.config.rate_limit.public_ip, &format!("public:ip:{ip}"))
        .await
}

/// A therapist id from a request body's `therapistId`.
pub async fn public_therapist(state: &AppState, raw: &str) -> ApiResult<ObjectId> {
    if raw != "current" {
        parse_id(raw, "therapistId")?;
    }
    public_therapist_as(state, raw, None).await
}

/// A therapist id from a public route; `current` means the signed-in therapist (SPEC 1).
pub async fn public_therapist_as(
    state: &AppState,
    raw: &str,
    caller: Option<AuthUser>,
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
