//! A therapist's booking rules, time blocks and absences.

use std::collections::BTreeMap;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// Days of the week as the schedule names them.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// One working interval, local `HH:mm` (end may be `24:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkingHours {
    #[schema(pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub start: String,
    #[schema(pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub end: String,
    /// Work location (clinic, online...), when hours differ per place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Booking rules (collection `availability`, one per therapist).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub timezone: String,
    /// `monday` .. `sunday` → intervals.
    pub weekly: BTreeMap<String, Vec<WorkingHours>>,
    pub buffer_minutes: u32,
    pub min_notice_hours: u32,
    pub max_advance_days: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        let mut weekly = BTreeMap::new();
        for day in WEEKDAYS {
            let hours = if matches!(day, "saturday" | "sunday") {
                vec![]
            } else {
                vec![
                    WorkingHours {
                        start: "09:00".into(),
                        end: "14:00".into(),
                        location: None,
                    },
                    WorkingHours {
                        start: "16:00".into(),
                        end: "20:00".into(),
                        location: None,
                    },
                ]
            };
            weekly.insert(day.to_owned(), hours);
        }
        Self {
            timezone: "Europe/Madrid".into(),
            weekly,
            buffer_minutes: 0,
            min_notice_hours: 24,
            max_advance_days: 90,
        }
    }
}

/// A stored schedule document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub therapist_id: ObjectId,
    #[serde(flatten)]
    pub schedule: Schedule,
    pub updated_at: DateTime,
}

/// Kinds of absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AbsenceKind {
    Vacation,
    SickLeave,
    Training,
    Personal,
    Holiday,
    Other,
}

/// What a time block says about the therapist's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockType {
    /// Open for bookings (added to the weekly schedule's hours).
    Availability,
    /// Closed for bookings (taken from any open hours).
    Unavailable,
}

/// How a time block repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Repeat {
    None,
    Daily,
    /// On the selected weekdays (by default the start date's).
    Weekly,
    /// On the start date's day of the month, or its nth weekday (`monthlyBy: "weekday"`).
    Monthly,
}

/// A time block or an absence (collection `availability_blocks`).
///
/// Absences are one UTC interval (`startsAt`..`endsAt`). Blocks are local rules in the
/// therapist's zone (`startDate`.., `startTime`-`endTime` on each day, `repeat`), with
/// `startsAt`/`endsAt` bounding every occurrence so one indexed overlap query finds both.
/// Blocks stored before the rules existed carry only `startsAt`/`endsAt`: read as a one-off
/// `unavailable` block (see `recurrence::BlockRule::of`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub therapist_id: ObjectId,
    /// `block` (the therapist's time rules) or `absence` (whole days).
    pub kind: String,
    #[serde(default)]
    pub absence_type: Option<AbsenceKind>,
    pub starts_at: DateTime,
    pub ends_at: DateTime,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_type: Option<BlockType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Repeat>,
    /// Weekly repeats: `monday`..`sunday`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selected_weekdays: Vec<String>,
    /// Monthly repeats: `dayOfMonth` (default) or `weekday` (e.g. every 2nd Tuesday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_by: Option<String>,
    /// How long a repeat lasts, as the dashboard asks it (`1_month`..`indefinite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_end_date: Option<String>,
    /// The last date an occurrence may start (none: indefinitely).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// `PUT /api/availability/schedule` body (checked by `schedule::into_schedule`).
/// The longest buffer a schedule may have (what `ScheduleInput` accepts).
pub const MAX_BUFFER_MINUTES: u32 = 240;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleInput {
    #[schema(schema_with = crate::http::docs::time_zone)]
    pub timezone: String,
    #[schema(schema_with = weekly_schema)]
    pub weekly: BTreeMap<String, Vec<WorkingHours>>,
    #[validate(range(max = MAX_BUFFER_MINUTES, message = "must be 0 to 240 minutes"))]
    #[serde(default)]
    #[schema(maximum = 240)]
    pub buffer_minutes: u32,
    #[validate(range(max = 720, message = "must be 0 to 720 hours"))]
    #[serde(default)]
    #[schema(maximum = 720)]
    pub min_notice_hours: u32,
    #[validate(range(min = 1, max = 730, message = "must be 1 to 730 days"))]
    #[serde(default = "ninety")]
    #[schema(minimum = 1, maximum = 730)]
    pub max_advance_days: u32,
}

/// `weekly`: days of the week (any case) to their working intervals.
fn weekly_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder};
    let days: Vec<String> = WEEKDAYS.iter().map(|d| crate::http::docs::any_case(d)).collect();
    let hours = ArrayBuilder::new().items(<WorkingHours as utoipa::PartialSchema>::schema());
    ObjectBuilder::new()
        .property_names(Some(
            crate::http::docs::string().pattern(Some(format!("^({})$", days.join("|")))),
        ))
        .additional_properties(Some(hours))
        .description(Some(
            "`monday` .. `sunday` (any case) → intervals that end after they start and do not overlap",
        ))
        .into()
}

fn ninety() -> u32 {
    90
}

/// An absence (`startDate`..`endDate`, whole days).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbsenceInput {
    #[schema(value_type = crate::http::docs::DateText, required = true)]
    pub start_date: Option<String>,
    #[schema(value_type = Option<crate::http::docs::DateText>)]
    pub end_date: Option<String>,
    #[serde(rename = "type")]
    #[schema(schema_with = crate::http::docs::accepts_or_null::<AbsenceKind>)]
    pub absence_type: Option<AbsenceKind>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// The fields an absence edit sets (what the edit leaves out keeps its value).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AbsencePatch {
    pub starts_at: DateTime,
    pub ends_at: DateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absence_type: Option<AbsenceKind>,
    pub updated_at: DateTime,
}

/// `?startDate&endDate` (local dates `YYYY-MM-DD`, or ISO instants read in the therapist's
/// zone), `therapistId` (`current` or the caller's id). Other parameters the dashboard sends
/// (`view`, `sessionDuration`...) are ignored.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DateRange {
    #[param(value_type = Option<crate::http::docs::RangeDate>)]
    pub start_date: Option<String>,
    #[param(value_type = Option<crate::http::docs::RangeDate>)]
    pub end_date: Option<String>,
    #[param(value_type = Option<crate::http::docs::TherapistRef>)]
    pub therapist_id: Option<String>,
}

/// The free slots' `?startDate&endDate` (as in [`DateRange`]) and `sessionDuration`; the
/// therapist is the path's.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SlotRange {
    #[param(value_type = Option<crate::http::docs::RangeDate>)]
    pub start_date: Option<String>,
    #[param(value_type = Option<crate::http::docs::RangeDate>)]
    pub end_date: Option<String>,
    #[param(value_type = Option<crate::http::docs::SessionMinutes>)]
    pub session_duration: Option<u32>,
}

impl SlotRange {
    /// The dates of this range.
    pub fn dates(&self) -> DateRange {
        DateRange {
            start_date: self.start_date.clone(),
            end_date: self.end_date.clone(),
            therapist_id: None,
        }
    }
}
