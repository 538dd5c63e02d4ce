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
