//! Bookings: the stored document, statuses and their transitions, and views (requests:
//! `requests`).

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::money::{Cents, Currency};

/// Booking status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Pending,
    #[serde(alias = "confirmed", alias = "scheduled")]
    Upcoming,
    Completed,
    Cancelled,
    #[serde(alias = "no-show", alias = "noShow")]
    NoShow,
}

impl BookingStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Upcoming => "upcoming",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::NoShow => "no_show",
        }
    }

    /// Whether `self → to` is allowed.
    pub fn can_become(self, to: BookingStatus) -> bool {
        use BookingStatus::*;
        matches!(
            (self, to),
            (Pending, Upcoming)
                | (Pending, Cancelled)
                | (Upcoming, Completed)
                | (Upcoming, Cancelled)
                | (Upcoming, NoShow)
        ) || self == to
    }

    /// Whether the booking still occupies its time (everything but cancelled).
    pub fn holds_time(self) -> bool {
        self != Self::Cancelled
    }
}

/// `{pending, upcoming, completed, cancelled, no_show}` counts, zero where absent.
pub fn status_counts(counts: &std::collections::HashMap<String, i64>) -> Value {
    let all = [
        BookingStatus::Pending,
        BookingStatus::Upcoming,
        BookingStatus::Completed,
        BookingStatus::Cancelled,
        BookingStatus::NoShow,
    ];
    let count = |s: &BookingStatus| json!(counts.get(s.as_str()).copied().unwrap_or(0));
    let map: serde_json::Map<String, Value> = all.iter().map(|s| (s.as_str().to_owned(), count(s))).collect();
    Value::Object(map)
}

/// Payment state of a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[default]
    Pending,
    Paid,
    PartiallyRefunded,
    Refunded,
}

/// Why and when a booking was cancelled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    pub reason: Option<String>,
    pub cancelled_at: DateTime,
    pub cancelled_by: String,
}

/// A stored booking (collection `bookings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub therapist_id: ObjectId,
    pub client_id: ObjectId,
    pub date: String,
    pub start_time: String,
    pub end_time: String,
    pub starts_at: DateTime,
    pub ends_at: DateTime,
    pub timezone: String,
    pub status: BookingStatus,
    #[serde(default)]
    pub therapy_type: Option<String>,
    pub therapy_duration: u32,
    pub amount_cents: Cents,
    pub currency: Currency,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    /// What the client wrote when booking from the booking site (shown to both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_notes: Option<String>,
    #[serde(default)]
    pub meeting_link: Option<String>,
    #[serde(default)]
    pub payment_status: PaymentStatus,
    /// How the last payment of this booking was made (set with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// The buffer (minutes) its time claim was made with.
    pub buffer_minutes: u32,
    #[serde(default)]
    pub series_id: Option<ObjectId>,
    #[serde(default)]
    pub cancellation: Option<Cancellation>,
    /// Tokens of the claim attempts under which this booking holds its current time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claim_tokens: Vec<ObjectId>,
    /// Emails its changes asked for (`confirmation`, `reschedule`, `cancellation`, `sync`, each
    /// `@` the version its change wrote; a new booking's `confirmation` has none), added with
    /// each change, removed once the outbox holds their jobs (`emails::arm`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_emails: Vec<String>,
    pub version: i64,
    pub created_by: String,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

pub use super::requests::*;
pub use crate::clients::model::ClientSummary;

impl Booking {
    /// The dashboard's view, with the client embedded when known.
    pub fn view(&self, client: Option<&ClientSummary>) -> Value {
        let id = self.id.to_hex();
        // `clientName`, `type`, `duration`, `locationId` and `paymentMethod` are the names some
        // dashboard pages read for the same facts.
        json!({
            "clientName": client.map(|c| c.name.as_str()),
            "type": self.therapy_type,
            "duration": self.therapy_duration,
            "locationId": self.location,
            "paymentMethod": self.payment_method,
            "id": id, "_id": id,
            "therapistId": self.therapist_id.to_hex(),
            "clientId": self.client_id.to_hex(),
            "client": client,
            "date": self.date, "startTime": self.start_time, "endTime": self.end_time,
            "startsAt": crate::time::rfc3339(self.starts_at),
            "endsAt": crate::time::rfc3339(self.ends_at),
            "timezone": self.timezone,
            "status": self.status,
            "therapyType": self.therapy_type,
            "therapyDuration": self.therapy_duration,
            "amount": self.amount_cents.to_major(),
            "currency": self.currency,
            "location": self.location,
            "notes": self.notes,
            "clientNotes": self.client_notes,
            "meetingLink": self.meeting_link,
            "paymentStatus": self.payment_status,
            "seriesId": self.series_id.map(|s| s.to_hex()),
            "cancellation": self.cancellation.as_ref().map(|c| json!({
                "reason": c.reason, "cancelledBy": c.cancelled_by,
                "cancelledAt": crate::time::rfc3339(c.cancelled_at),
            })),
            "version": self.version,
            "createdAt": crate::time::rfc3339(self.created_at),
            "updatedAt": crate::time::rfc3339(self.updated_at),
        })
    }
}

impl Booking {
    /// Until when it holds time: its end plus the buffer it was made with (what its claims
    /// hold, whatever the schedule's buffer is now).
    pub fn holds_until(&self) -> DateTime {
        DateTime::from_millis(self.ends_at.timestamp_millis() + i64::from(self.buffer_minutes) * 60_000)
    }

    /// The client's view: never the therapist's private notes.
    pub fn client_view(&self) -> Value {
        let mut v = self.view(None);
        if let Some(o) = v.as_object_mut() {
            o.remove("notes");
            o.remove("client");
            o.remove("clientName");
        }
        v
    }
}

/// The fields one versioned change of a booking sets (`$set`); what is `None` keeps its value.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BookingStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub therapy_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<Cents>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reschedule_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub therapy_duration: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_tokens: Option<Vec<ObjectId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_email: Option<String>,
    /// Set by the store on every change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime>,
}

impl BookingPatch {
    /// Whether it sets nothing (a change made of it would write no field).
    pub fn is_empty(&self) -> mongodb::bson::ser::Result<bool> {
        Ok(mongodb::bson::to_document(self)?.is_empty())
    }
}
