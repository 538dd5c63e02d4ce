//! A change to a client record: the fields it writes, and the request to re-arm reminders a
//! change of address or preferences leaves on the record.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::Serialize;

use super::model::{normalize_tags, ClientStatus, EmergencyContact, Preferences, UpdateClient};

/// The fields a change writes (`$set`); absent ones are left as they are.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emergency_contact: Option<EmergencyContact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferences: Option<Preferences>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ClientStatus>,
    pub updated_at: DateTime,
    /// Set when the change touches what the client's emails depend on (address, preferences):
    /// the request to re-arm their upcoming bookings' reminders, written with the change and
    /// cleared once they are armed (`emails::arm`), so a process that stops in between leaves
    /// it for the reconciler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reminders_requested: Option<RemindersRequest>,
}

/// A pending request to re-arm a client's reminders: `token` names this change (only its own
/// arming clears it), `at` when it was made (the reconciler takes requests older than its
/// delay).
#[derive(Debug, Clone, Serialize)]
pub struct RemindersRequest {
    pub token: ObjectId,
    pub at: DateTime,
}

impl ClientPatch {
    /// A patch that changes only the status.
    pub fn status(status: ClientStatus) -> Self {
        Self::from(UpdateClient {
            name: None,
            email: None,
            phone: None,
            age: None,
            address: None,
            emergency_contact: None,
            notes: None,
            tags: None,
            preferences: None,
            status: Some(status),
        })
    }
}

impl From<UpdateClient> for ClientPatch {
    fn from(req: UpdateClient) -> Self {
        let now = DateTime::now();
        let rearm = req.email.is_some() || req.preferences.is_some();
        Self {
            name: req.name.map(|n| n.trim().to_owned()),
            email: req.email,
            phone: req.phone,
            age: req.age,
            address: req.address,
            emergency_contact: req.emergency_contact,
            notes: req.notes,
            tags: req.tags.map(normalize_tags),
            reminders_requested: rearm.then(|| RemindersRequest {
                token: ObjectId::new(),
                at: now,
            }),
            preferences: req.preferences,
            status: req.status,
            updated_at: now,
        }
    }
}
