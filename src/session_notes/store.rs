//! Every MongoDB query of session notes. Each one goes through the therapist's `OwnerScope`.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;

use super::model::{NotePatch, SessionNote};
use crate::bookings::store::BookingStore;
use crate::clients::store::ClientStore;
use crate::db::{Db, OwnerScope, Page};
use crate::error::ApiResult;

/// The collection name.
pub const SESSION_NOTES: &str = "session_notes";

/// A booking of the caller, as far as a note needs it.
pub struct OwnBooking {
    pub client_id: ObjectId,
    pub starts_at: DateTime,
}

/// Queries of session notes (and the ownership checks of the ids a note refers to, through
/// the stores of those resources).
pub struct NoteStore {
    notes: Collection<SessionNote>,
    clients: ClientStore,
    bookings: BookingStore,
}

impl NoteStore {
    pub fn new(db: &Db) -> Self {
        Self {
            notes: db.collection(SESSION_NOTES),
            clients: ClientStore::new(db),
            bookings: BookingStore::new(db),
        }
    }

    pub async fn insert(&self, note: &SessionNote) -> mongodb::error::Result<()> {
        self.notes.insert_one(note).await.map(|_| ())
    }

    pub async fn get(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<Option<SessionNote>> {
        self.notes.find_one(scope.by_id(id)).await
    }

    /// Applies `patch` to a scoped note and returns it after the change.
    pub async fn update(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        patch: &NotePatch,
    ) -> ApiResult<Option<SessionNote>> {
        let set = mongodb::bson::to_document(patch)?;
        Ok(self
            .notes
            .find_one_and_update(scope.by_id(id), doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await?)
    }

    /// Removes a scoped note for good; whether there was one.
    pub async fn delete(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<bool> {
        Ok(self.notes.delete_one(scope.by_id(id)).await?.deleted_count == 1)
    }

    /// One page of the notes matching `filter` (already scoped), its total and next cursor. A
    /// note that does not decode is an error, never skipped.
    pub async fn list(
        &self,
        filter: Document,
        sort_field: &str,
        descending: bool,
        page: &Page,
    ) -> ApiResult<(Vec<SessionNote>, u64, Option<String>)> {
        let raw = self.notes.clone_with_type::<Document>();
        let (docs, total, next) = crate::db::page_of(&raw, filter, sort_field, descending, page).await?;
        let notes = docs
            .into_iter()
            .map(mongodb::bson::from_document::<SessionNote>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((notes, total, next))
    }

    /// Whether the caller keeps a client record with this id.
    pub async fn owns_client(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<bool> {
        Ok(self.clients.get(scope, id).await?.is_some())
    }

    /// The caller's booking with this id, if it is theirs.
    pub async fn own_booking(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
    ) -> mongodb::error::Result<Option<OwnBooking>> {
        Ok(self.bookings.get(scope, id).await?.map(|b| OwnBooking {
            client_id: b.client_id,
            starts_at: b.starts_at,
        }))
    }
}
