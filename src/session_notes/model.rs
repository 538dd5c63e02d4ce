//! A therapist's private clinical note and its request/response types.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::time::rfc3339;

/// What a note is about (the dashboard's two note forms, merged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum NoteType {
    #[default]
    General,
    Progress,
    Assessment,
    Intervention,
    Homework,
    Crisis,
    Termination,
    Concern,
    Achievement,
    Reminder,
    Reflection,
    Goal,
    Question,
    Feedback,
}

/// Topic of a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteCategory {
    Therapy,
    Personal,
    Medication,
    Lifestyle,
    Relationships,
    Work,
    Family,
    Emotions,
    Symptoms,
    Goals,
    Other,
}

/// How urgent a note is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

/// Where a note stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum NoteStatus {
    #[default]
    Active,
    Completed,
    Archived,
    Draft,
}

/// The visibility values the dashboard's form offers. Accepted for compatibility, never
/// stored: a session note is always private to its therapist (SPEC: never shown to clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Private,
    TherapistOnly,
    ClientOnly,
    Shared,
    Restricted,
}

/// A stored note (collection `session_notes`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionNote {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub therapist_id: ObjectId,
    pub client_id: ObjectId,
    #[serde(default)]
    pub booking_id: Option<ObjectId>,
    #[serde(default)]
    pub title: String,
    pub content: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// When the session the note is about took place (the booking's start, else creation).
    pub date: DateTime,
    #[serde(default)]
    pub note_type: NoteType,
    #[serde(default)]
    pub category: Option<NoteCategory>,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub status: NoteStatus,
    #[serde(default)]
    pub is_emergency: bool,
    #[serde(default)]
    pub requires_response: bool,
    #[serde(default)]
    pub mood: Option<u8>,
    #[serde(default)]
    pub wellness_score: Option<u8>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A note as the dashboard reads it (both its forms: `content` and `notes`, `bookingId` and
/// `sessionId` carry the same values).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoteView {
    pub id: String,
    #[serde(rename = "_id")]
    pub underscore_id: String,
    pub therapist_id: String,
    pub author_id: String,
    pub author_type: &'static str,
    pub client_id: String,
    pub booking_id: Option<String>,
    pub session_id: Option<String>,
    pub title: String,
    pub content: String,
    pub notes: String,
    pub tags: Vec<String>,
    pub date: String,
    pub note_type: NoteType,
    pub category: Option<NoteCategory>,
    pub priority: Priority,
    pub status: NoteStatus,
    pub visibility: &'static str,
    pub is_emergency: bool,
    pub requires_response: bool,
    pub mood: Option<u8>,
    pub wellness_score: Option<u8>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&SessionNote> for NoteView {
    fn from(n: &SessionNote) -> Self {
        let id = n.id.to_hex();
        let booking = n.booking_id.map(|b| b.to_hex());
        Self {
            underscore_id: id.clone(),
            id,
            therapist_id: n.therapist_id.to_hex(),
            author_id: n.therapist_id.to_hex(),
            author_type: "therapist",
            client_id: n.client_id.to_hex(),
            session_id: booking.clone(),
            booking_id: booking,
            title: n.title.clone(),
            content: n.content.clone(),
            notes: n.content.clone(),
            tags: n.tags.clone(),
            date: rfc3339(n.date),
            note_type: n.note_type,
            category: n.category,
            priority: n.priority,
            status: n.status,
            visibility: "private",
            is_emergency: n.is_emergency,
            requires_response: n.requires_response,
            mood: n.mood,
            wellness_score: n.wellness_score,
            created_at: rfc3339(n.created_at),
            updated_at: rfc3339(n.updated_at),
        }
    }
}

fn trimmed_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| s.trim().to_owned()))
}

crate::http::docs::text_schema!(
    /// A new note: [`NoteInput`] with `content` (the client comes from `clientId`, else from
    /// the booking `bookingId` names: one of them is required).
    NewNote = "NewNote",
    utoipa::openapi::schema::AllOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name("NoteInput"))
        .item(
            utoipa::openapi::schema::ObjectBuilder::new()
                .property("content", crate::http::docs::string().pattern(Some(r"\S")))
                .required("content")
        )
        .item(
            utoipa::openapi::schema::AnyOfBuilder::new()
                .item(one_id("clientId"))
                .item(one_id("bookingId"))
        )
);

/// An object whose `field` is an id (not blank).
fn one_id(field: &str) -> utoipa::openapi::schema::ObjectBuilder {
    let id = crate::http::docs::string().pattern(Some(r"^\s*[0-9a-fA-F]{24}\s*$"));
    utoipa::openapi::schema::ObjectBuilder::new()
        .property(field, id)
        .required(field)
}

crate::http::docs::text_schema!(
    /// A note's tag: at most 40 characters (surrounding spaces aside).
    NoteTag = "NoteTag",
    crate::http::docs::string().max_length(Some(40))
);

fn valid_tags(tags: &[String]) -> Result<(), ValidationError> {
    if tags.len() <= 30 && tags.iter().all(|t| t.trim().chars().count() <= 40) {
        Ok(())
    } else {
        Err(ValidationError::new("tags").with_message("at most 30 tags of up to 40 characters".into()))
    }
}

/// `POST` and `PUT /api/session-notes[/:id]` (also `/api/notes`): every field the dashboard's
/// note forms send. On create `content` (or `notes`) is required, and `clientId` unless a
/// `bookingId` names the client; on update every field is optional and given ones replace.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoteInput {
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 200, message = "must be at most 200 characters"))]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[serde(default, alias = "notes", deserialize_with = "trimmed_opt")]
    #[validate(length(min = 1, max = 20000, message = "must be 1 to 20000 characters"))]
    #[schema(min_length = 1, max_length = 20000)]
    #[schema(pattern = r"\S")]
    pub content: Option<String>,
    #[schema(value_type = Option<crate::http::docs::IdFilter>)]
    pub client_id: Option<String>,
    #[serde(alias = "sessionId")]
    #[schema(value_type = Option<crate::http::docs::IdFilter>)]
    pub booking_id: Option<String>,
    /// Sent by the dashboard's form; the owner is always the caller, so it is not used.
    #[allow(dead_code)]
    pub therapist_id: Option<String>,
    /// `YYYY-MM-DD` or an RFC 3339 instant.
    #[schema(value_type = Option<crate::http::docs::DateOrInstant>)]
    pub date: Option<String>,
    #[validate(custom(function = "valid_tags"))]
    #[schema(max_items = 30, value_type = Option<Vec<NoteTag>>)]
    pub tags: Option<Vec<String>>,
    #[schema(schema_with = crate::http::docs::accepts_or_null::<NoteType>)]
    pub note_type: Option<NoteType>,
    #[schema(schema_with = crate::http::docs::accepts_or_null::<NoteCategory>)]
    pub category: Option<NoteCategory>,
    #[schema(schema_with = crate::http::docs::accepts_or_null::<Priority>)]
    pub priority: Option<Priority>,
    #[schema(schema_with = crate::http::docs::accepts_or_null::<NoteStatus>)]
    pub status: Option<NoteStatus>,
    /// Accepted, not stored: notes are always private.
    #[allow(dead_code)]
    #[schema(schema_with = crate::http::docs::accepts_or_null::<Visibility>)]
    pub visibility: Option<Visibility>,
    pub is_emergency: Option<bool>,
    pub requires_response: Option<bool>,
    #[validate(range(min = 1, max = 5, message = "must be between 1 and 5"))]
    #[schema(minimum = 1, maximum = 5)]
    pub mood: Option<u8>,
    #[validate(range(max = 100, message = "must be between 0 and 100"))]
    #[schema(maximum = 100)]
    pub wellness_score: Option<u8>,
}

/// Sort fields of the note list.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub enum NoteSort {
    #[serde(rename = "createdAt", alias = "created_at")]
    CreatedAt,
    #[serde(rename = "updatedAt", alias = "updated_at")]
    UpdatedAt,
    #[serde(rename = "date", alias = "sessionDate", alias = "session_date")]
    Date,
    #[serde(rename = "title")]
    Title,
}

impl NoteSort {
    /// The stored field and whether it sorts newest first by default.
    pub fn field(self) -> (&'static str, bool) {
        match self {
            Self::CreatedAt => ("createdAt", true),
            Self::UpdatedAt => ("updatedAt", true),
            Self::Date => ("date", true),
            Self::Title => ("title", false),
        }
    }
}

pub use crate::db::SortOrder;

/// `GET /api/session-notes` and `GET /api/notes` query: snake_case and camelCase both; any
/// other parameter the dashboard sends (`note_type`, `confidentiality_level`...) is ignored.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoteListQuery {
    #[param(value_type = Option<crate::http::docs::PageNumber>)]
    pub page: Option<u64>,
    #[param(value_type = Option<crate::http::docs::PageLimit>)]
    pub limit: Option<u64>,
    #[param(value_type = Option<crate::http::docs::Cursor>)]
    pub cursor: Option<String>,
    #[serde(alias = "clientId")]
    #[param(value_type = Option<crate::http::docs::IdFilter>)]
    pub client_id: Option<String>,
    #[serde(alias = "bookingId", alias = "session_id", alias = "sessionId")]
    #[param(value_type = Option<crate::http::docs::IdFilter>)]
    pub booking_id: Option<String>,
    #[param(value_type = Option<crate::http::docs::SearchText>)]
    pub search: Option<String>,
    #[serde(alias = "sortBy")]
    #[param(schema_with = crate::http::docs::accepts::<NoteSort>)]
    pub sort_by: Option<NoteSort>,
    #[serde(alias = "sortOrder")]
    #[param(schema_with = crate::http::docs::accepts::<SortOrder>)]
    pub sort_order: Option<SortOrder>,
}

/// The `$set` of a note update: only what the request gives (plus `updatedAt`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotePatch {
    pub updated_at: DateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note_type: Option<NoteType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<NoteCategory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<NoteStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_emergency: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_response: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mood: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wellness_score: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ObjectId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<ObjectId>,
}

/// `GET /api/session-notes` data.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // a schema description
pub struct NotePage {
    notes: Vec<NoteView>,
    pagination: crate::http::pagination::Nested,
    total: u64,
    has_more: bool,
}

/// `DELETE /api/session-notes/{id}`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct NoteDeleted {
    success: bool,
    message: String,
    data: NoteGone,
}

/// Which note was deleted.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct NoteGone {
    #[schema(value_type = crate::http::docs::ObjectIdText)]
    id: String,
    deleted: bool,
}
