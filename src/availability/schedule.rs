//! The weekly schedule and booking rules: reading them, and replacing them after checking every
//! interval (known day, `HH:mm` bounds, no overlaps within a day).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;

use super::model::{Schedule, ScheduleInput, WEEKDAYS};
use super::service;
use super::store::AvailabilityStore;
use crate::app::AppState;
use crate::auth::extract::Therapist;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ValidatedJson;
use crate::time::{self, parse_zone};

impl ScheduleInput {
    /// The schedule this input describes, every day present; a 400 naming the first bad field.
    pub fn into_schedule(self) -> ApiResult<Schedule> {
        parse_zone(&self.timezone)
            .map_err(|_| ApiError::field("timezone", "is not a known IANA time zone"))?;
        let mut weekly = BTreeMap::new();
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
#[utoipa::path(get, path = "/api/availability/schedule", tag = "availability",
    security(("therapist" = [])),
    responses((status = 200, body = crate::http::docs::Data<crate::availability::model::Schedule>)))]
pub async fn get_schedule(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    Ok(envelope::ok(
        AvailabilityStore::new(&state.db).schedule(me.0.id).await?,
    ))
}

/// Replaces the caller's booking rules.
#[utoipa::path(put, path = "/api/availability/schedule", tag = "availability",
    security(("therapist" = [])),
    request_body = super::model::ScheduleInput,
    responses((status = 200, body = crate::http::docs::Data<crate::availability::model::Schedule>)))]
pub async fn put_schedule(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(req): ValidatedJson<ScheduleInput>,
) -> ApiResult<Response> {
    let schedule = req.into_schedule()?;
    service::put_schedule(&state, me.0.id, &schedule).await?;
    Ok(envelope::ok(schedule))
}
