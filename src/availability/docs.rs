//! Schemas of the availability answers built as JSON values: what the document promises.
#![allow(dead_code)] // schema descriptions, never built

use serde::Serialize;
use utoipa::ToSchema;

use crate::http::docs::{DateText, InstantText, ObjectIdText};

/// An absence (vacation, sick leave...), in the therapist's local days and times.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbsenceView {
    #[schema(value_type = ObjectIdText)]
    id: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    reason: Option<String>,
    #[schema(value_type = DateText)]
    start_date: String,
    #[schema(value_type = DateText)]
    end_date: String,
    start_time: String,
    end_time: String,
    #[schema(value_type = InstantText)]
    starts_at: String,
    #[schema(value_type = InstantText)]
    ends_at: String,
}

/// A time block as the dashboard reads it (bare JSON, no envelope); the weekly schedule's
/// blocks are read-only (`source: "schedule"`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockView {
    id: String,
    #[serde(rename = "_id")]
    underscore_id: String,
    #[schema(value_type = ObjectIdText)]
    therapist_id: String,
    /// `availability` or `unavailable`.
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    /// `none`, `daily`, `weekly` or `monthly`.
    repeat: Option<String>,
    source: Option<String>,
}

/// `DELETE /api/availability/blocks/{id}` (bare JSON).
#[derive(Serialize, ToSchema)]
pub struct BlockDeleted {
    deleted: bool,
    id: String,
}

/// A block field read trimmed, blank meaning absent: `pattern` (unanchored) or blank.
fn blank_or(pattern: &str, description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::String,
            utoipa::openapi::schema::Type::Null,
        ]))
        .pattern(Some(crate::http::docs::blank_or(pattern)))
        .description(Some(description))
        .into()
}

/// A block's `type`.
pub fn block_type() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    blank_or(
        "availability|unavailable",
        "`availability` (open) or `unavailable` (default)",
    )
}

/// A block's dates.
pub fn block_date() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    blank_or(crate::http::docs::DAY, "`YYYY-MM-DD`")
}

/// A block's start time (default `00:00`).
pub fn block_start() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    blank_or(
        "([01][0-9]|2[0-3]):[0-5][05]",
        "`HH:mm` on the 5-minute grid (default 00:00)",
    )
}

/// A block's end time (default `24:00`, after the start).
pub fn block_end() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    blank_or(
        "([01][0-9]|2[0-3]):[0-5][05]|24:00",
        "`HH:mm` on the 5-minute grid or `24:00` (default), after the start",
    )
}

/// How a block repeats.
pub fn block_repeat() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    blank_or(
        "none|never|daily|weekly|weekly_custom|monthly|monthly_weekday",
        "How the block repeats (default `none`)",
    )
}

/// How a monthly block repeats.
pub fn block_monthly_by() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    blank_or(
        "dayOfMonth|weekday",
        "`dayOfMonth` (default) or `weekday` (its nth weekday)",
    )
}
