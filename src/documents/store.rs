//! Every MongoDB query of documents (`documents`) and of each therapist's storage use
//! (`document_usage`). A document's file lives in GridFS (`files::FileStore`); this store keeps
//! the record that owns it, and changes the record and the usage in one transaction.

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Deserialize;

use super::model::StoredDocument;
use crate::clients::store::ClientStore;
use crate::db::{transaction, Db, OwnerScope, Page, TxError};
use crate::error::{ApiError, ApiResult};

/// The collection names.
pub const DOCUMENTS: &str = "documents";
pub const USAGE: &str = "document_usage";

/// Bytes and files one therapist keeps.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub bytes: i64,
    #[serde(default)]
    pub files: i64,
}

/// Count and bytes of one group of documents (statistics).
#[derive(Debug, Deserialize)]
pub struct Group {
    #[serde(rename = "_id")]
    pub key: Option<String>,
    pub count: i64,
    pub bytes: i64,
}

/// Queries of documents.
#[derive(Clone)]
pub struct DocumentStore {
    pub(super) db: Db,
    pub(super) docs: Collection<StoredDocument>,
    pub(super) raw: Collection<Document>,
    pub(super) usage: Collection<Document>,
}

impl DocumentStore {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            docs: db.collection(DOCUMENTS),
            raw: db.collection(DOCUMENTS),
            usage: db.collection(USAGE),
        }
    }

    /// Records an upload that has begun (status `uploading`, due for removal at `purgeAfter`).
    pub async fn insert_pending(&self, d: &StoredDocument) -> mongodb::error::Result<()> {
        self.docs.insert_one(d).await.map(|_| ())
    }

    /// What `therapist` keeps (bytes and files of live documents).
    pub async fn usage(&self, therapist: ObjectId) -> mongodb::error::Result<Usage> {
        let found = self
            .usage
            .clone_with_type::<Usage>()
            .find_one(doc! { "_id": therapist })
            .await?;
        Ok(found.unwrap_or_default())
    }

    /// A scoped document that is not a pending upload.
    pub async fn get(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
    ) -> mongodb::error::Result<Option<StoredDocument>> {
        self.docs
            .find_one(scope.filter(doc! { "_id": id, "status": { "$ne": "uploading" } }))
            .await
    }

    /// A scoped live document, or 404.
    pub async fn live_or_404(&self, scope: &OwnerScope, id: ObjectId) -> ApiResult<StoredDocument> {
        self.docs
            .find_one(scope.filter(doc! { "_id": id, "status": "active" }))
            .await?
            .ok_or_else(|| ApiError::not_found("Document"))
    }

    /// Applies `update` to a scoped live document; the document after it.
    pub async fn update(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        update: Document,
    ) -> ApiResult<StoredDocument> {
        self.update_where(scope, id, Document::new(), update)
            .await?
            .ok_or_else(|| ApiError::not_found("Document"))
    }

    /// Applies `update` to a scoped live document that also matches `guard`; the document
    /// after it, or `None` when none matched.
    pub async fn update_where(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        mut guard: Document,
        update: Document,
    ) -> mongodb::error::Result<Option<StoredDocument>> {
        guard.insert("_id", id);
        guard.insert("status", "active");
        self.docs
            .find_one_and_update(scope.filter(guard), update)
            .return_document(ReturnDocument::After)
            .await
    }

    /// Marks a scoped live document deleted (its file due at `purge_after`) and takes its bytes
    /// off the usage, in one transaction; 404 if it is not live.
    pub async fn soft_delete(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        purge_after: DateTime,
    ) -> ApiResult<StoredDocument> {
        let filter = scope.filter(doc! { "_id": id, "status": "active" });
        transaction(&self.db, |s| {
            let (docs, usage, filter) = (self.docs.clone(), self.usage.clone(), filter.clone());
            Box::pin(async move {
                let now = DateTime::now();
                let set = doc! { "$set": {
                    "status": "deleted", "deletedAt": now, "updatedAt": now,
                    "purgeAfter": purge_after, "sharedWith": [],
                } };
                let deleted = docs
                    .find_one_and_update(filter, set)
                    .return_document(ReturnDocument::After)
                    .session(&mut *s)
                    .await?
                    .ok_or_else(|| TxError::Other(ApiError::not_found("Document")))?;
                usage
                    .update_one(
                        doc! { "_id": deleted.therapist_id },
                        doc! { "$inc": { "bytes": -deleted.size, "files": -1 } },
                    )
                    .session(&mut *s)
                    .await?;
                Ok(deleted)
            })
        })
        .await
    }

    /// One page of the documents matching `filter` (already scoped), its total and next cursor.
    pub async fn list(
        &self,
        filter: Document,
        sort_field: &str,
        descending: bool,
        page: &Page,
    ) -> ApiResult<(Vec<StoredDocument>, u64, Option<String>)> {
        let (docs, total, next) = crate::db::page_of(&self.raw, filter, sort_field, descending, page).await?;
        let docs = docs
            .into_iter()
            .map(mongodb::bson::from_document::<StoredDocument>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((docs, total, next))
    }

    /// Count and bytes of `therapist`'s live documents per value of `field`.
    pub async fn groups(&self, therapist: ObjectId, field: &str) -> mongodb::error::Result<Vec<Group>> {
        let pipeline = vec![
            doc! { "$match": { "therapistId": therapist, "status": "active" } },
            doc! { "$group": { "_id": format!("${field}"), "count": { "$sum": 1 }, "bytes": { "$sum": "$size" } } },
            doc! { "$sort": { "bytes": -1, "_id": 1 } },
        ];
        // Statistics are analytics: `secondaryPreferred`, as the SPEC reads them.
        self.db
            .analytics()
            .collection::<Document>(DOCUMENTS)
            .aggregate(pipeline)
            .with_type::<Group>()
            .await?
            .try_collect()
            .await
    }

    /// A live, not confidential document shared with one of `records` (a client's view).
    pub async fn shared_get(
        &self,
        records: &[ObjectId],
        id: ObjectId,
    ) -> mongodb::error::Result<Option<StoredDocument>> {
        if records.is_empty() {
            return Ok(None);
        }
        self.docs.find_one(shared_filter(records, Some(id))).await
    }

    /// The filter of what a client with `records` may see.
    pub fn shared_filter(records: &[ObjectId]) -> Document {
        shared_filter(records, None)
    }

    /// 404 unless the caller keeps a client record with this id.
    pub async fn client_or_404(&self, scope: &OwnerScope, id: ObjectId) -> crate::error::ApiResult<()> {
        ClientStore::new(&self.db).get_or_404(scope, id).await.map(|_| ())
    }

    /// The names of the clients `ids` (one query).
    pub async fn client_names(
        &self,
        ids: &[ObjectId],
    ) -> mongodb::error::Result<std::collections::HashMap<ObjectId, String>> {
        let summaries = ClientStore::new(&self.db).summaries(ids).await?;
        Ok(summaries.into_iter().map(|(id, s)| (id, s.name)).collect())
    }
}

fn shared_filter(records: &[ObjectId], id: Option<ObjectId>) -> Document {
    let mut f = doc! {
        "sharedWith": { "$in": records.to_vec() },
        "status": "active",
        "isConfidential": false,
    };
    if let Some(id) = id {
        f.insert("_id", id);
    }
    f
}

/// The 413 of a full storage.
pub fn quota_exceeded(quota: u64) -> ApiError {
    ApiError::TooLarge {
        code: "STORAGE_QUOTA_EXCEEDED",
        message: format!(
            "This upload would exceed your storage of {} MB; delete documents to make room",
            quota / (1024 * 1024)
        ),
    }
}
