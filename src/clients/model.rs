//! A therapist's client record and its request/response types.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

pub use super::validate::valid_phone;
use super::validate::{email_opt, trimmed_opt, valid_reminder_hours, valid_tags};

use crate::time::rfc3339;

pub use super::patch::{ClientPatch, RemindersRequest};

/// Client record status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientStatus {
    Active,
    Inactive,
}

/// Who to call in an emergency.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmergencyContact {
    #[validate(length(max = 120))]
    #[schema(max_length = 120)]
    pub name: Option<String>,
    #[validate(custom(function = "valid_phone"))]
    #[schema(pattern = r"^\+?[ .()-]*([0-9][ .()-]*){7,15}$")]
    pub phone: Option<String>,
    #[validate(length(max = 60))]
    #[schema(max_length = 60)]
    pub relationship: Option<String>,
}

/// How the client likes to be reminded and contacted.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preferences {
    /// Hours before each session to send reminders (empty: none).
    #[serde(default = "default_reminders")]
    #[validate(length(max = 4), custom(function = "valid_reminder_hours"))]
    #[schema(max_items = 4, inline, value_type = Vec<crate::clients::model::ReminderHour>)]
    pub reminder_hours: Vec<u32>,
    #[serde(default = "yes")]
    pub email_notifications: bool,
    #[serde(default)]
    #[validate(length(max = 10))]
    #[schema(max_length = 10)]
    pub language: Option<String>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            reminder_hours: default_reminders(),
            email_notifications: true,
            language: None,
        }
    }
}

fn default_reminders() -> Vec<u32> {
    vec![24, 2]
}

fn yes() -> bool {
    true
}

/// A stored client (collection `clients`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub therapist_id: ObjectId,
    #[serde(default)]
    pub user_id: Option<ObjectId>,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub age: Option<u32>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub emergency_contact: Option<EmergencyContact>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub preferences: Preferences,
    pub status: ClientStatus,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A client as the dashboard reads it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    #[schema(value_type = crate::http::docs::ObjectIdText)]
    pub id: String,
    #[serde(rename = "_id")]
    #[schema(value_type = crate::http::docs::ObjectIdText)]
    pub underscore_id: String,
    pub therapist_id: String,
    pub user_id: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub age: Option<u32>,
    pub address: Option<String>,
    pub emergency_contact: Option<EmergencyContact>,
    pub notes: Option<String>,
    pub tags: Vec<String>,
    pub preferences: Preferences,
    pub status: ClientStatus,
    pub created_at: String,
    pub updated_at: String,
    /// When the last completed session took place (lists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_session: Option<Option<String>>,
    /// How many sessions were completed (lists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_count: Option<i64>,
    /// The average rating the client gave (lists only; null without reviews).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<Option<f64>>,
}

/// A client as embedded in other resources' lists (bookings, payments, reviews).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientSummary {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub avatar: Option<String>,
}

/// A client's history as a list shows it.
#[derive(Debug, Clone, Default)]
pub struct ClientActivity {
    pub last_session: Option<mongodb::bson::DateTime>,
    pub sessions_count: i64,
    pub rating: Option<f64>,
}

impl ClientView {
    /// The view with its history (`lastSession`, `sessionsCount`, `rating`).
    pub fn with_activity(mut self, a: &ClientActivity) -> Self {
        self.last_session = Some(a.last_session.map(crate::time::rfc3339));
        self.sessions_count = Some(a.sessions_count);
        self.rating = Some(a.rating.map(|r| (r * 10.0).round() / 10.0));
        self
    }
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        let id = c.id.to_hex();
        Self {
            underscore_id: id.clone(),
            id,
            therapist_id: c.therapist_id.to_hex(),
            user_id: c.user_id.map(|u| u.to_hex()),
            name: c.name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            age: c.age,
            address: c.address.clone(),
            emergency_contact: c.emergency_contact.clone(),
            notes: c.notes.clone(),
            tags: c.tags.clone(),
            preferences: c.preferences.clone(),
            status: c.status,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            last_session: None,
            sessions_count: None,
            rating: None,
        }
    }
}

/// `POST /api/clients`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateClient {
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 120, message = "must be 1 to 120 characters"))]
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub name: String,
    #[serde(default, deserialize_with = "email_opt")]
    #[validate(email(message = "must be a valid email address"), length(max = 254))]
    #[schema(value_type = Option<crate::http::docs::OptionalEmail>)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(custom(function = "valid_phone"))]
    #[schema(pattern = r"^\s*(\+?[ .()-]*([0-9][ .()-]*){7,15})?\s*$")]
    pub phone: Option<String>,
    #[validate(range(max = 130, message = "must be between 0 and 130"))]
    #[schema(maximum = 130)]
    pub age: Option<u32>,
    #[validate(length(max = 300))]
    #[schema(max_length = 300)]
    pub address: Option<String>,
    #[validate(nested)]
    pub emergency_contact: Option<EmergencyContact>,
    #[validate(length(max = 5000))]
    #[schema(max_length = 5000)]
    pub notes: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "valid_tags"))]
    #[schema(max_items = 30, inline, value_type = Vec<crate::clients::model::Tag>)]
    pub tags: Vec<String>,
    #[validate(nested)]
    pub preferences: Option<Preferences>,
}

/// `PUT /api/clients/:id` (every field optional).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClient {
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(min = 1, max = 120, message = "must be 1 to 120 characters"))]
    #[schema(max_length = 120)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "email_opt")]
    #[validate(email(message = "must be a valid email address"), length(max = 254))]
    #[schema(value_type = Option<crate::http::docs::OptionalEmail>)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(custom(function = "valid_phone"))]
    #[schema(pattern = r"^\s*(\+?[ .()-]*([0-9][ .()-]*){7,15})?\s*$")]
    pub phone: Option<String>,
    #[validate(range(max = 130, message = "must be between 0 and 130"))]
    #[schema(maximum = 130)]
    pub age: Option<u32>,
    #[validate(length(max = 300))]
    #[schema(max_length = 300)]
    pub address: Option<String>,
    #[validate(nested)]
    pub emergency_contact: Option<EmergencyContact>,
    #[validate(length(max = 5000))]
    #[schema(max_length = 5000)]
    pub notes: Option<String>,
    #[validate(custom(function = "valid_tags"))]
    #[schema(max_items = 30, inline, value_type = Option<Vec<crate::clients::model::Tag>>)]
    pub tags: Option<Vec<String>>,
    #[validate(nested)]
    pub preferences: Option<Preferences>,
    pub status: Option<ClientStatus>,
}

impl Client {
    /// A new active record of `therapist` from a create request.
    pub fn new(therapist: ObjectId, req: CreateClient) -> Self {
        let now = DateTime::now();
        Self {
            id: ObjectId::new(),
            therapist_id: therapist,
            user_id: None,
            name: req.name.trim().to_owned(),
            email: req.email,
            phone: req.phone,
            age: req.age,
            address: req.address,
            emergency_contact: req.emergency_contact,
            notes: req.notes,
            tags: normalize_tags(req.tags),
            preferences: req.preferences.unwrap_or_default(),
            status: ClientStatus::Active,
            created_at: now,
            updated_at: now,
        }
    }

    /// The record a client login gets with a therapist it books with for the first time.
    pub fn for_login(therapist: ObjectId, user_id: ObjectId, name: &str, email: &str) -> Self {
        let now = DateTime::now();
        Self {
            id: ObjectId::new(),
            therapist_id: therapist,
            user_id: Some(user_id),
            name: name.to_owned(),
            email: Some(email.to_owned()),
            phone: None,
            age: None,
            address: None,
            emergency_contact: None,
            notes: None,
            tags: Vec::new(),
            preferences: Default::default(),
            status: ClientStatus::Active,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Tags trimmed, without empties, sorted and unique (clients and session notes alike).
pub fn normalize_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = tags
        .into_iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

crate::http::docs::text_schema!(
    /// A tag of a client record: 1 to 40 characters, not blank.
    Tag = "Tag",
    crate::http::docs::string().min_length(Some(1)).max_length(Some(40)).pattern(Some(r"\S"))
);

crate::http::docs::text_schema!(
    /// Hours before a session to send a reminder.
    ReminderHour = "ReminderHour",
    crate::http::docs::integer().minimum(Some(1)).maximum(Some(168))
);
