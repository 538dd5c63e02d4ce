//! Every MongoDB query of session notes. Each one goes through the therapist's `OwnerScope`.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;

use super::model::SessionNote;
use crate::db::Db;
use crate::db::OwnerScope;
use crate::db::Page;
use crate::error::ApiError;

/// The collection name.
pub const SESSION_NOTES: &str = "session_notes";

/// A booking of the caller, as far as a note needs it.
pub struct OwnBooking {
    pub client_id: ObjectId,
    pub starts_at: Option<DateTime>,
}

/// Queries of session notes (and the ownership checks of the ids a note refers to).
pub struct NoteStore {
    notes: Collection<SessionNote>,
    raw: Collection<Document>,
    clients: Collection<Document>,
    bookings: Collection<Document>,
}

impl NoteStore {
    pub fn new(db: &Db) -> Self {
        Self {
            notes: db.collection(SESSION_NOTES),
            raw: db.collection(SESSION_NOTES),
            clients: db.collection(crate::clients::store::CLIENTS),
            bookings: db.collection("bookings"),
        }
    }

    pub async fn insert(&self, note: &SessionNote) -> mongodb::error::Result<()> {
        self.notes.insert_one(note).await.map(|_| ())
    }

    pub async fn get(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<Option<SessionNote>> {
        self.notes.find_one(scope.by_id(id)).await
    }

    /// Applies `$set` to a scoped note and returns it after the change.
    pub async fn update(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        set: Document,
    ) -> mongodb::error::Result<Option<SessionNote>> {
        self.notes
            .find_one_and_update(scope.by_id(id), doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
    }

    /// Removes a scoped note for good; whether there was one.
    pub async fn delete(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<bool> {
        Ok(self.notes.delete_one(scope.by_id(id)).await?.deleted_count == 1)
    }

    /// One page of the list matching `filter` (already scoped), its total and next cursor.
    pub async fn list(
        &self,
        filter: Document,
        sort_field: &str,
        descending: bool,
        page: &Page,
    ) -> Result<(Vec<Document>, u64, Option<String>), ApiError> {
        crate::db::page_of(&self.raw, filter, sort_field, descending, page).await
    }

    /// Whether the caller keeps a client record with this id.
    pub async fn owns_client(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<bool> {
        let found = self
            .clients
            .find_one(scope.by_id(id))
            .projection(doc! { "_id": 1 })
            .await?;
        Ok(found.is_some())
    }

    /// The caller's booking with this id, if it is theirs.
    pub async fn own_booking(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
    ) -> mongodb::error::Result<Option<OwnBooking>> {
        let found = self
            .bookings
            .find_one(scope.by_id(id))
            .projection(doc! { "clientId": 1, "startsAt": 1 })
            .await?;
        Ok(found.and_then(|d| {
            Some(OwnBooking {
                client_id: d.get_object_id("clientId").ok()?,
                starts_at: d.get_datetime("startsAt").ok().copied(),
            })
        }))
    }
}
