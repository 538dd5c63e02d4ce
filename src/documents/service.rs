//! Every change to documents: an upload (streamed into GridFS, then recorded with its bytes
//! counted against the quota), a metadata edit, a delete (soft; the file follows after the
//! grace period) and sharing with a client.

use std::time::Duration;

use axum::extract::Multipart;
use futures_util::future::BoxFuture;
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};

use super::form::{tags, text, UploadMeta};
use super::model::{DocStatus, StoredDocument, UpdateDocument, Visibility};
use super::store::{quota_exceeded, DocumentStore};
use crate::app::AppState;
use crate::db::OwnerScope;
use crate::error::{ApiError, ApiResult};
use crate::files::sniff::{self, Kind};
use crate::files::upload::{self, Cleanup, Destination, Received, Rules};
use crate::files::FileStore;

/// The outcome of an upload: the document, and why it was not shared when it was meant to be.
pub struct Uploaded {
    pub document: StoredDocument,
    pub not_shared: bool,
}

/// Records the pending document when the file's kind is known.
struct PendingDocument {
    store: DocumentStore,
    files: FileStore,
    therapist: ObjectId,
    /// How long a pending record may wait before the sweep removes it.
    margin: Duration,
    record: Option<StoredDocument>,
}

impl Destination for PendingDocument {
    fn begin<'a>(
        &'a mut self,
        kind: &'a Kind,
        filename: &'a str,
    ) -> BoxFuture<'a, ApiResult<(ObjectId, Cleanup)>> {
        Box::pin(async move {
            let now = DateTime::now();
            let due = DateTime::from_millis(now.timestamp_millis() + self.margin.as_millis() as i64);
            let record = StoredDocument {
                id: ObjectId::new(),
                therapist_id: self.therapist,
                file_id: ObjectId::new(),
                status: DocStatus::Uploading,
                title: String::new(),
                description: None,
                filename: filename.to_owned(),
                mime_type: kind.mime.to_owned(),
                kind: kind.family.as_str().to_owned(),
                size: 0,
                sha256: String::new(),
                category: Default::default(),
                client_id: None,
                tags: Vec::new(),
                visibility: Default::default(),
                is_confidential: false,
                shared_with: Vec::new(),
                created_at: now,
                updated_at: now,
                deleted_at: None,
                purge_after: Some(due),
            };
            self.store.insert_pending(&record).await?;
            let (store, files, id, file) =
                (self.store.clone(), self.files.clone(), record.id, record.file_id);
            let therapist = self.therapist;
            let cleanup: Cleanup =
                Box::new(move || Box::pin(async move { store.abandon(&files, therapist, id, file).await }));
            let file_id = record.file_id;
            self.record = Some(record);
            Ok((file_id, cleanup))
        })
    }
}

/// Receives an upload for `therapist` and records it. Once the form is read, the rest runs in
/// its own task: a client that hangs up after sending can no longer stop it half-way.
pub async fn upload(state: &AppState, therapist: ObjectId, form: Multipart) -> ApiResult<Uploaded> {
    let cfg = &state.config.documents;
    let store = DocumentStore::new(&state.db);
    let used = store.usage(therapist).await?;
    if used.bytes.max(0) as u64 >= cfg.quota_bytes {
        return Err(quota_exceeded(cfg.quota_bytes));
    }
    let files = FileStore::new(&state.db);
    let rules = Rules {
        file_fields: &["file", "document"],
        max_bytes: cfg.max_file_bytes,
        sniff: sniff::sniff,
    };
    let upload_timeout = Duration::from_secs_f64(state.config.http.timeouts.upload_seconds);
    let mut dest = PendingDocument {
        store: store.clone(),
        files: files.clone(),
        therapist,
        margin: upload_timeout + Duration::from_secs(600),
        record: None,
    };
    let received = upload::receive(form, &rules, &files, &mut dest).await?;
    let meta = UploadMeta::parse(&received.fields)?;
    if let Some(client) = meta.client {
        store.client_or_404(&OwnerScope::of(therapist), client).await?;
    }
    let record = dest
        .record
        .take()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("upload received without a record")))?;
    let quota = cfg.quota_bytes;
    let finish = tokio::spawn(finish(store, received.file, record, meta, quota));
    finish
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("upload task failed: {e}")))?
}

/// Closes the file and makes the record a document, or removes both.
async fn finish(
    store: DocumentStore,
    file: Received,
    mut record: StoredDocument,
    meta: UploadMeta,
    quota: u64,
) -> ApiResult<Uploaded> {
    record.size = file.bytes as i64;
    let sha256 = file.sha256.clone();
    let filename = file.filename.clone();
    let pending = file.close().await?;
    let share = meta.visibility == Visibility::ClientShared && !meta.confidential;
    let shared_with: Vec<ObjectId> = meta.client.filter(|_| share).into_iter().collect();
    let set = doc! {
        "status": "active",
        "title": meta.title.clone().unwrap_or_else(|| filename.clone()),
        "description": meta.description.clone(),
        "category": meta.category.as_str(),
        "clientId": meta.client,
        "tags": meta.tags.clone(),
        "visibility": mongodb::bson::to_bson(&meta.visibility)?,
        "isConfidential": meta.confidential,
        "sharedWith": shared_with,
        "size": record.size,
        "sha256": sha256,
        "updatedAt": DateTime::now(),
    };
    match store.commit(&record, set, quota).await {
        Ok(document) => {
            pending.keep();
            let not_shared = meta.visibility == Visibility::ClientShared && meta.client.is_some() && !share;
            Ok(Uploaded { document, not_shared })
        }
        Err(e) => {
            // Undone in the background (the answer does not wait for it).
            drop(pending);
            Err(e)
        }
    }
}

/// Applies an edit to a live document of the caller.
pub async fn update(
    state: &AppState,
    scope: &OwnerScope,
    id: ObjectId,
    req: UpdateDocument,
) -> ApiResult<StoredDocument> {
    let store = DocumentStore::new(&state.db);
    let current = store.live_or_404(scope, id).await?;
    let mut set = Document::new();
    let mut unset = Document::new();
    // Whom the document stops being shared with: everyone when it stops being meant for
    // clients (a visibility sent back unchanged, as an edit form does, changes nothing), its
    // former client when it moves to another.
    let mut unshare_all = current.visibility == Visibility::ClientShared
        && matches!(req.visibility, Some(v) if v != Visibility::ClientShared);
    let mut unshare_client = None;
    if let Some(t) = req.title {
        let t = text("title", &t, 200)?;
        if t.is_empty() {
            return Err(ApiError::field("title", "must not be empty"));
        }
        set.insert("title", t);
    }
    match req.description {
        Some(Some(d)) => {
            set.insert("description", text("description", &d, 2000)?);
        }
        Some(None) => {
            set.insert("description", mongodb::bson::Bson::Null);
        }
        None => {}
    }
    if let Some(c) = req.category {
        set.insert("category", c.as_str());
    }
    if let Some(t) = req.tags {
        set.insert("tags", tags("tags", t)?);
    }
    if let Some(v) = req.visibility {
        set.insert("visibility", mongodb::bson::to_bson(&v)?);
    }
    match req.client_id.map(|c| c.filter(|s| !s.trim().is_empty())) {
        Some(Some(raw)) => {
            let client = crate::auth::extract::parse_id(raw.trim(), "clientId")?;
            store.client_or_404(scope, client).await?;
            set.insert("clientId", client);
            unshare_client = current.client_id.filter(|old| *old != client);
        }
        Some(None) => {
            unset.insert("clientId", "");
            unshare_client = current.client_id;
        }
        None => {}
    }
    if let Some(c) = req.is_confidential {
        set.insert("isConfidential", c);
        // A confidential document is never shown to a client: sharing ends with it.
        unshare_all |= c;
    }
    if unshare_all {
        set.insert("sharedWith", Vec::<ObjectId>::new());
    }
    set.insert("updatedAt", DateTime::now());
    let mut update = doc! { "$set": set };
    if !unset.is_empty() {
        update.insert("$unset", unset);
    }
    if let (false, Some(old)) = (unshare_all, unshare_client) {
        update.insert("$pull", doc! { "sharedWith": old });
    }
    store.update(scope, id, update).await
}

/// Deletes a live document of the caller (soft): it stops counting against the quota at
/// once, and its file is removed after `documents.purge_after_hours`.
pub async fn delete(state: &AppState, scope: &OwnerScope, id: ObjectId) -> ApiResult<StoredDocument> {
    let hours = state.config.documents.purge_after_hours as i64;
    let due = DateTime::from_millis(DateTime::now().timestamp_millis() + hours * 3_600_000);
    DocumentStore::new(&state.db).soft_delete(scope, id, due).await
}

/// Shares a live document with one of the caller's clients (or stops sharing it): one guarded
/// write (sharing only while the document is not confidential), read again only to tell why it
/// matched nothing.
pub async fn share(
    state: &AppState,
    scope: &OwnerScope,
    id: ObjectId,
    client: ObjectId,
    shared: bool,
) -> ApiResult<StoredDocument> {
    let store = DocumentStore::new(&state.db);
    store.client_or_404(scope, client).await?;
    let now = DateTime::now();
    let (guard, update) = if shared {
        (
            doc! { "isConfidential": false },
            doc! { "$addToSet": { "sharedWith": client }, "$set": { "updatedAt": now } },
        )
    } else {
        (
            Document::new(),
            doc! { "$pull": { "sharedWith": client }, "$set": { "updatedAt": now } },
        )
    };
    match store.update_where(scope, id, guard, update).await? {
        Some(d) => Ok(d),
        // Confidential, or not one of the caller's live documents (deleted meanwhile too).
        None => match store.live_or_404(scope, id).await? {
            d if d.is_confidential => Err(ApiError::conflict(
                "DOCUMENT_CONFIDENTIAL",
                "A confidential document is never shared with clients; mark it as not confidential first",
            )),
            _ => Err(ApiError::not_found("Document")),
        },
    }
}
