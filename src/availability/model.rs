//! A therapist's booking rules, time blocks and absences.

use std::collections::BTreeMap;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    pub start: String,
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

/// A time block or an absence (collection `availability_blocks`), stored in UTC.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub therapist_id: ObjectId,
    /// `block` (hours within a day) or `absence` (whole days).
    pub kind: String,
    #[serde(default)]
    pub absence_type: Option<AbsenceKind>,
    pub starts_at: DateTime,
    pub ends_at: DateTime,
    #[serde(default)]
    pub reason: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}
