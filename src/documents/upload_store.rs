//! The life of an upload on the documents' side: holding its bytes on the quota, becoming a
//! document, being undone when interrupted, and the sweep of what is due. Every step is one
//! atomic single-document write that may be repeated.

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use serde::Deserialize;

use super::model::StoredDocument;
use super::store::{quota_exceeded, DocumentStore};
use crate::error::{ApiError, ApiResult};
use crate::files::FileStore;

/// How long a chunk write sent before an upload was dropped may take to land.
const LATE_WRITES: std::time::Duration = std::time::Duration::from_secs(3);

impl DocumentStore {
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
}
