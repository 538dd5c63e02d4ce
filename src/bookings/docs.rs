//! Schemas of the bookings' answers (built as JSON values by `Booking::view` and the handlers):
//! what the OpenAPI document promises about them. Fields not listed may also appear.
#![allow(dead_code)] // schema descriptions, never built

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{BookingStatus, PaymentStatus};
use crate::clients::model::ClientSummary;
use crate::http::docs::{DateText, InstantText, ObjectIdText, TimeText};
use crate::money::Currency;

/// A booking as the dashboard reads it (a client's view omits `notes`, `client`, `clientName`
/// and adds `therapist`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingView {
    #[schema(value_type = ObjectIdText)]
    id: String,
    #[serde(rename = "_id")]
    #[schema(value_type = ObjectIdText)]
    underscore_id: String,
    version: i64,
    status: BookingStatus,
    #[schema(value_type = DateText)]
    date: String,
    #[schema(value_type = TimeText)]
    start_time: String,
    /// `HH:mm`, or `24:00` for a session ending at midnight.
    end_time: String,
    #[schema(value_type = InstantText)]
    starts_at: String,
    #[schema(value_type = InstantText)]
    ends_at: String,
    timezone: String,
    #[schema(value_type = ObjectIdText)]
    therapist_id: String,
    #[schema(value_type = ObjectIdText)]
    client_id: String,
    client: Option<ClientSummary>,
    client_name: Option<String>,
    therapist: Option<TherapistName>,
    therapy_type: Option<String>,
    therapy_duration: u32,
    amount: f64,
    currency: Currency,
    location: Option<String>,
    notes: Option<String>,
    client_notes: Option<String>,
    meeting_link: Option<String>,
    payment_status: PaymentStatus,
    payment_method: Option<String>,
    series_id: Option<String>,
    cancellation: Option<CancellationView>,
    #[schema(value_type = InstantText)]
    created_at: String,
    #[schema(value_type = InstantText)]
    updated_at: String,
}

/// The therapist of a client's booking.
#[derive(Serialize, ToSchema)]
pub struct TherapistName {
    id: String,
    name: Option<String>,
}

/// Why and when a booking was cancelled.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancellationView {
    reason: Option<String>,
    cancelled_by: String,
    cancelled_at: String,
}

/// One booking, or (with `recurrence`) the whole series.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // never built
pub enum Booked {
    One(BookingView),
    Series(Vec<BookingView>),
}

/// `GET /api/bookings/upcoming`.
#[derive(Serialize, ToSchema)]
pub struct Upcoming {
    success: bool,
    count: u64,
    data: Vec<BookingView>,
}

/// Bookings per status.
#[derive(Serialize, ToSchema)]
pub struct StatusCounts {
    pending: i64,
    upcoming: i64,
    completed: i64,
    cancelled: i64,
    no_show: i64,
}

/// `GET /api/bookings/statistics`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingStatistics {
    total_bookings: i64,
    completed_bookings: i64,
    upcoming_bookings: i64,
    cancelled_bookings: i64,
    no_show_bookings: i64,
    total_revenue: f64,
    active_unique_clients: i64,
    completion_rate: f64,
    avg_session_duration: f64,
    status_counts: StatusCounts,
    period: Period,
}

/// A range of local days (`endDate` null: open).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    #[schema(value_type = DateText)]
    start_date: String,
    #[schema(value_type = Option<DateText>)]
    end_date: Option<String>,
}

/// A booking in the way of a requested time.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    id: String,
    date: String,
    start_time: String,
    end_time: String,
}

/// `GET /api/bookings/check-availability`.
#[derive(Serialize, ToSchema)]
pub struct TimeCheck {
    available: bool,
    requested: Interval,
    conflicts: Vec<Conflict>,
}

/// A local interval: a day of the therapist's calendar and its times.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Interval {
    #[schema(value_type = DateText)]
    date: String,
    #[schema(value_type = TimeText)]
    start_time: String,
    /// `HH:mm`, or `24:00`.
    end_time: String,
}

/// A bookable slot.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotView {
    #[schema(value_type = DateText)]
    date: String,
    start_time: String,
    end_time: String,
    #[schema(value_type = InstantText)]
    starts_at: String,
    #[schema(value_type = InstantText)]
    ends_at: String,
}

/// Free slots of a therapist (`therapistId` over a range, `date` for one day).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Slots {
    therapist_id: Option<String>,
    date: Option<String>,
    timezone: String,
    slots: Vec<SlotView>,
}

/// `POST /api/availability/check-slot`.
#[derive(Serialize, ToSchema)]
pub struct SlotCheck {
    available: bool,
    reason: Option<String>,
}

/// `GET /api/availability/analysis/occupancy` (hours over the range).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Occupancy {
    start_date: String,
    end_date: String,
    period: Period,
    working_hours: f64,
    available_hours: f64,
    booked_hours: f64,
    occupancy_rate: f64,
    bookings: i64,
}

/// A calendar event: a booking, an absence, a block window or working hours.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarEvent {
    id: String,
    /// `booking`, `absence`, `availability` or `unavailable`.
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    start: String,
    end: String,
    source: Option<String>,
}

/// One email of a booking.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailView {
    id: String,
    kind: String,
    hours: Option<u32>,
    due_at: String,
    refers_to: Option<String>,
    /// `scheduled`, `sending`, `sent`, `failed`, `dead` or `cancelled`.
    state: String,
    attempts: u32,
    last_error: Option<String>,
    sent_at: Option<String>,
    unconfirmed: Option<bool>,
}

/// `GET /api/bookings/{id}/emails`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingEmails {
    booking_id: String,
    emails: Vec<EmailView>,
}
