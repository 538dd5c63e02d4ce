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
use crate::files::FileStore;

/// How long a chunk write sent before an upload was dropped may take to land.
const LATE_WRITES: std::time::Duration = std::time::Duration::from_secs(3);

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
    db: Db,
    docs: Collection<StoredDocument>,
    raw: Collection<Document>,
    usage: Collection<Document>,
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

    /// Undoes an upload that did not complete: the record is made due at once (so a sweep
    /// finishes the job if this one fails or the process dies), its quota hold given back,
    /// its chunks removed, then removed again after `LATE_WRITES` (a chunk write already sent
    /// when the upload was dropped may still land), then the record. An upload that did become
    /// a document meanwhile (a reply lost after its write) keeps its file. Failures are logged;
    /// the due record stays for the sweep.
    pub async fn abandon(&self, files: &FileStore, therapist: ObjectId, id: ObjectId, file: ObjectId) {
        let steps = async {
            let now = DateTime::now();
            let marked = self
                .raw
                .update_one(
                    doc! { "_id": id, "status": "uploading" },
                    doc! { "$set": { "purgeAfter": now } },
                )
                .await?;
            if marked.matched_count == 0 && self.raw.count_documents(doc! { "_id": id }).await? > 0 {
                return Ok(());
            }
            self.give_back(therapist, id).await?;
            files.remove(file).await?;
            tokio::time::sleep(LATE_WRITES).await;
            files.remove(file).await?;
            self.raw
                .delete_one(doc! { "_id": id, "status": "uploading" })
                .await
                .map(|_| ())
        };
        if let Err(e) = steps.await {
            tracing::warn!(error = %e, document = %id, "an interrupted upload is left to the file sweep");
        }
    }

    /// Makes a pending upload a document with `set` applied, its bytes counted against the
    /// therapist's `quota`. Single-document atomic writes, each safe to repeat:
    /// 1. a hold on the usage (`bytes` grows, `holds` records `{id, size}`) only while it fits
    ///    (413 otherwise: nothing changed);
    /// 2. the record becomes a document, only while it is pending and not yet due (a sweep that
    ///    saw it due removes it and its file; then the hold is given back and this fails);
    /// 3. the hold entry is dropped (its bytes stay counted).
    ///
    /// A process that dies after 1 leaves a pending record with a hold: the sweep gives the
    /// hold back before removing the record (`purge_due`). One that dies after 2 leaves a
    /// stale entry whose bytes are rightly counted.
    pub async fn commit(
        &self,
        pending: &StoredDocument,
        set: Document,
        quota: u64,
    ) -> ApiResult<StoredDocument> {
        let (therapist, id, size) = (pending.therapist_id, pending.id, pending.size);
        self.ensure_usage(therapist).await?;
        let hold = doc! { "id": id, "size": size };
        let held = self
            .usage
            .update_one(
                doc! { "_id": therapist, "bytes": { "$lte": quota as i64 - size }, "holds.id": { "$ne": id } },
                doc! { "$inc": { "bytes": size, "files": 1 }, "$push": { "holds": hold } },
            )
            .await?;
        if held.matched_count == 0
            && self
                .usage
                .count_documents(doc! { "_id": therapist, "holds.id": id })
                .await?
                == 0
        {
            return Err(quota_exceeded(quota));
        }
        let kept = self
            .docs
            .find_one_and_update(
                doc! { "_id": id, "status": "uploading", "purgeAfter": { "$gt": DateTime::now() } },
                doc! { "$set": set, "$unset": { "purgeAfter": "" } },
            )
            .return_document(ReturnDocument::After)
            .await?;
        let Some(kept) = kept else {
            self.give_back(therapist, id).await?;
            return Err(ApiError::BadRequest {
                code: "UPLOAD_EXPIRED",
                message: "The upload took too long and was discarded; send it again".into(),
            });
        };
        if let Err(e) = self
            .usage
            .update_one(
                doc! { "_id": therapist },
                doc! { "$pull": { "holds": { "id": id } } },
            )
            .await
        {
            tracing::warn!(error = %e, document = %id, "a settled upload's hold entry stays (its bytes are counted)");
        }
        Ok(kept)
    }

    /// Gives back the hold of upload `id` if there is one (its bytes leave the usage once).
    async fn give_back(&self, therapist: ObjectId, id: ObjectId) -> mongodb::error::Result<()> {
        #[derive(Deserialize)]
        struct Held {
            #[serde(default)]
            holds: Vec<Hold>,
        }
        #[derive(Deserialize)]
        struct Hold {
            id: ObjectId,
            size: i64,
        }
        let found = self
            .usage
            .clone_with_type::<Held>()
            .find_one(doc! { "_id": therapist, "holds.id": id })
            .projection(doc! { "holds": 1 })
            .await?;
        let Some(size) = found
            .and_then(|h| h.holds.into_iter().find(|x| x.id == id))
            .map(|h| h.size)
        else {
            return Ok(());
        };
        // Conditional on the entry: given back once, whoever tries.
        self.usage
            .update_one(
                doc! { "_id": therapist, "holds": { "$elemMatch": { "id": id, "size": size } } },
                doc! { "$inc": { "bytes": -size, "files": -1 }, "$pull": { "holds": { "id": id } } },
            )
            .await
            .map(|_| ())
    }

    /// Removes up to `batch` due records and their files: pending uploads (their hold given
    /// back first) and deleted documents past their grace. Record after file after hold, so a
    /// crash in between is finished by the next sweep; a record that fails is logged and
    /// skipped (the others go on). Returns how many were removed.
    pub async fn purge_due(&self, files: &FileStore, batch: i64) -> mongodb::error::Result<usize> {
        let due: Vec<Document> = self
            .raw
            .find(doc! { "purgeAfter": { "$lte": DateTime::now() } })
            .sort(doc! { "purgeAfter": 1 })
            .limit(batch)
            .projection(doc! { "_id": 1, "therapistId": 1, "fileId": 1, "status": 1, "purgeAfter": 1 })
            .await?
            .try_collect()
            .await?;
        let mut removed = 0;
        for d in due {
            let (Ok(id), Ok(therapist), Ok(file), Ok(when)) = (
                d.get_object_id("_id"),
                d.get_object_id("therapistId"),
                d.get_object_id("fileId"),
                d.get_datetime("purgeAfter"),
            ) else {
                tracing::error!(record = ?d.get("_id"), "a due document record lacks its ids; left alone");
                continue;
            };
            let purge = async {
                if d.get_str("status") == Ok("uploading") {
                    self.give_back(therapist, id).await?;
                }
                files.remove(file).await?;
                self.raw.delete_one(doc! { "_id": id, "purgeAfter": *when }).await
            };
            match purge.await {
                Ok(gone) => removed += gone.deleted_count as usize,
                Err(e) => {
                    tracing::warn!(error = %e, document = %id, "a due document was not purged; next sweep")
                }
            }
        }
        Ok(removed)
    }

    async fn ensure_usage(&self, therapist: ObjectId) -> mongodb::error::Result<()> {
        self.usage
            .update_one(
                doc! { "_id": therapist },
                doc! { "$setOnInsert": { "bytes": 0_i64, "files": 0_i64 } },
            )
            .upsert(true)
            .await
            .map(|_| ())
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
        self.raw
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

    /// Whether the caller keeps a client record with this id.
    pub async fn owns_client(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<bool> {
        Ok(ClientStore::new(&self.db).get(scope, id).await?.is_some())
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
