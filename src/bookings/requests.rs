//! What a request asks of bookings: the bodies of creating, editing, moving, cancelling and
//! finishing them, and of checking a slot, with the constraints the document states.

use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use super::model::{BookingPatch, BookingStatus};
use crate::money::{major_opt, Cents, Currency};

/// Repeat a booking weekly or every other week.
#[derive(Debug, Clone, Copy, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recurrence {
    pub frequency: Frequency,
    #[serde(default = "one")]
    #[validate(range(min = 1, max = 2, message = "must be 1 (weekly) or 2 (every other week)"))]
    #[schema(minimum = 1, maximum = 2)]
    pub interval: u32,
    #[validate(range(min = 2, max = 52, message = "must be between 2 and 52"))]
    #[schema(minimum = 2, maximum = 52)]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// Recurrence frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Weekly,
}

/// `POST /api/bookings`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBooking {
    #[schema(value_type = crate::http::docs::ObjectIdText)]
    pub client_id: String,
    #[schema(value_type = crate::http::docs::DateText)]
    pub date: String,
    #[schema(value_type = crate::http::docs::GridStart)]
    pub start_time: String,
    #[schema(value_type = crate::http::docs::GridEnd)]
    pub end_time: String,
    #[validate(length(max = 120))]
    #[schema(max_length = 120)]
    pub therapy_type: Option<String>,
    #[validate(range(min = 5, max = 720, message = "must be between 5 and 720 minutes"))]
    #[schema(minimum = 5, maximum = 720)]
    pub therapy_duration: Option<u32>,
    #[serde(default, deserialize_with = "major_opt")]
    #[schema(value_type = crate::http::docs::Amount)]
    pub amount: Option<Cents>,
    #[serde(default)]
    #[schema(schema_with = crate::http::docs::accepts_or_null::<Currency>)]
    pub currency: Option<Currency>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub location: Option<String>,
    #[validate(length(max = 5000))]
    #[schema(max_length = 5000)]
    pub notes: Option<String>,
    #[validate(
        url(message = "must be a URL"),
        custom(function = "crate::http::extract::web_link"),
        length(max = 500)
    )]
    #[schema(value_type = Option<crate::http::docs::WebLink>)]
    pub meeting_link: Option<String>,
    #[schema(schema_with = new_booking_status)]
    pub status: Option<BookingStatus>,
    #[validate(nested)]
    pub recurrence: Option<Recurrence>,
}

/// What a new booking's `status` may be: `pending` or `upcoming` (and their aliases).
fn new_booking_status() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let names = crate::http::docs::names_where::<BookingStatus>(|s| {
        matches!(s, BookingStatus::Pending | BookingStatus::Upcoming)
    });
    crate::http::docs::names_of(names, true)
}

/// `PUT /api/bookings/:id` (partial; `version` optional, checked when given).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBooking {
    pub version: Option<i64>,
    #[schema(value_type = Option<crate::http::docs::DateText>)]
    pub date: Option<String>,
    #[schema(value_type = Option<crate::http::docs::GridStart>)]
    pub start_time: Option<String>,
    #[schema(value_type = Option<crate::http::docs::GridEnd>)]
    pub end_time: Option<String>,
    #[validate(length(max = 120))]
    #[schema(max_length = 120)]
    pub therapy_type: Option<String>,
    #[serde(default, deserialize_with = "major_opt")]
    #[schema(value_type = crate::http::docs::Amount)]
    pub amount: Option<Cents>,
    #[schema(schema_with = crate::http::docs::accepts_or_null::<Currency>)]
    pub currency: Option<Currency>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub location: Option<String>,
    #[validate(length(max = 5000))]
    #[schema(max_length = 5000)]
    pub notes: Option<String>,
    #[validate(
        url(message = "must be a URL"),
        custom(function = "crate::http::extract::web_link"),
        length(max = 500)
    )]
    #[schema(value_type = Option<crate::http::docs::WebLink>)]
    pub meeting_link: Option<String>,
    #[schema(schema_with = crate::http::docs::accepts_or_null::<BookingStatus>)]
    pub status: Option<BookingStatus>,
}

/// `PATCH /api/bookings/:id/cancel`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelBooking {
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
    pub version: Option<i64>,
}

/// `PUT /api/bookings/:id/reschedule`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RescheduleBooking {
    #[schema(value_type = crate::http::docs::DateText)]
    pub date: String,
    #[schema(value_type = crate::http::docs::GridStart)]
    pub start_time: String,
    #[schema(value_type = crate::http::docs::GridEnd)]
    pub end_time: String,
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
    pub version: Option<i64>,
}

/// `POST /api/bookings/client/book`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientBook {
    #[schema(value_type = crate::http::docs::TherapistRef)]
    pub therapist_id: String,
    #[schema(value_type = crate::http::docs::DateText)]
    pub date: String,
    #[schema(value_type = crate::http::docs::GridStart)]
    pub start_time: String,
    #[schema(value_type = crate::http::docs::GridEnd)]
    pub end_time: String,
    #[validate(length(max = 120))]
    #[schema(max_length = 120)]
    pub therapy_type: Option<String>,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

impl UpdateBooking {
    /// The details (not time, not status) this edit sets.
    pub fn details(&self) -> BookingPatch {
        BookingPatch {
            therapy_type: self.therapy_type.clone(),
            amount_cents: self.amount,
            currency: self.currency,
            location: self.location.clone(),
            notes: self.notes.clone(),
            meeting_link: self.meeting_link.clone(),
            ..BookingPatch::default()
        }
    }

    /// Whether the edit moves the booking (a new date or time).
    pub fn moves(&self) -> bool {
        self.date.is_some() || self.start_time.is_some() || self.end_time.is_some()
    }
}

/// Optional body of complete / no-show.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub version: Option<i64>,
    #[validate(length(max = 5000))]
    #[schema(max_length = 5000)]
    pub notes: Option<String>,
}

/// `POST /api/availability/check-slot`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckSlot {
    #[schema(value_type = crate::http::docs::TherapistRef)]
    pub therapist_id: String,
    #[schema(value_type = crate::http::docs::DateText)]
    pub date: String,
    #[schema(value_type = crate::http::docs::GridStart)]
    pub start_time: String,
    #[schema(value_type = crate::http::docs::GridEnd)]
    pub end_time: String,
}
