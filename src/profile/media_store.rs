//! Avatars and banners (collection `media`; the images in GridFS under the same ids). One is
//! current per user and kind; the one it replaces stays servable for an hour (pages cached
//! with its link), then the file sweep removes it.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::store::ProfileStore;
use crate::auth::store::AuthStore;
use crate::db::{transaction, Db, TxError};
use crate::error::{ApiError, ApiResult};

/// The collection name.
pub const MEDIA: &str = "media";

/// How long a replaced image stays servable.
const REPLACED_KEPT_MS: i64 = 3_600_000;

/// Which picture of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Avatar,
    Banner,
}

/// Where an image stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaState {
    Uploading,
    Current,
    Replaced,
}

/// A stored image (its `_id` is its GridFS file's).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Media {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub owner_id: ObjectId,
    pub kind: MediaKind,
    pub state: MediaState,
    pub mime_type: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub sha256: String,
    pub created_at: DateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_after: Option<DateTime>,
}

/// Queries of media.
#[derive(Clone)]
pub struct MediaStore {
    db: Db,
    media: Collection<Media>,
    raw: Collection<Document>,
}

impl MediaStore {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            media: db.collection(MEDIA),
            raw: db.collection(MEDIA),
        }
    }

    /// The untyped collection (the file sweep reads due records from it).
    pub fn records(&self) -> &Collection<Document> {
        &self.raw
    }

    pub async fn insert_pending(&self, m: &Media) -> mongodb::error::Result<()> {
        self.media.insert_one(m).await.map(|_| ())
    }

    /// Undoes an image upload that did not complete (as `DocumentStore::abandon`): the record
    /// made due at once, the chunks removed, again after late writes could land, then the
    /// record; an image that became current meanwhile keeps its file.
    pub async fn abandon(&self, files: &crate::files::FileStore, id: ObjectId) {
        let steps = async {
            let marked = self
                .raw
                .update_one(
                    doc! { "_id": id, "state": "uploading" },
                    doc! { "$set": { "purgeAfter": DateTime::now() } },
                )
                .await?;
            if marked.matched_count == 0 && self.raw.count_documents(doc! { "_id": id }).await? > 0 {
                return Ok(());
            }
            files.remove(id).await?;
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            files.remove(id).await?;
            self.raw
                .delete_one(doc! { "_id": id, "state": "uploading" })
                .await
                .map(|_| ())
        };
        if let Err(e) = steps.await {
            tracing::warn!(error = %e, image = %id, "an interrupted image upload is left to the file sweep");
        }
    }

    /// An image that may be served (current, or replaced within the hour).
    pub async fn servable(&self, id: ObjectId) -> mongodb::error::Result<Option<Media>> {
        self.media
            .find_one(doc! { "_id": id, "state": { "$in": ["current", "replaced"] } })
            .await
    }

    /// Makes `new` (a pending upload, with its size and hash) the owner's current image of its
    /// kind, retires the previous one and points the account at `link`, in one transaction.
    /// With `new = None`, only retires the current one and clears the link.
    pub async fn make_current(
        &self,
        owner: ObjectId,
        kind: MediaKind,
        new: Option<(ObjectId, i64, String)>,
        link: Option<String>,
    ) -> ApiResult<()> {
        let (auth, profiles) = (AuthStore::new(&self.db), ProfileStore::new(&self.db));
        transaction(&self.db, |s| {
            let (media, auth, profiles, link, new) = (
                self.raw.clone(),
                auth.clone(),
                profiles.clone(),
                link.clone(),
                new.clone(),
            );
            Box::pin(async move {
                let now = DateTime::now();
                let kind_name = match kind {
                    MediaKind::Avatar => "avatar",
                    MediaKind::Banner => "banner",
                };
                let mut old = doc! { "ownerId": owner, "kind": kind_name, "state": "current" };
                if let Some((id, size, sha)) = &new {
                    let kept = media
                        .update_one(
                            doc! { "_id": id, "state": "uploading", "purgeAfter": { "$gt": now } },
                            doc! {
                                "$set": { "state": "current", "size": size, "sha256": sha },
                                "$unset": { "purgeAfter": "" },
                            },
                        )
                        .session(&mut *s)
                        .await?;
                    if kept.matched_count == 0 {
                        return Err(TxError::Other(ApiError::BadRequest {
                            code: "UPLOAD_EXPIRED",
                            message: "The upload took too long and was discarded; send it again".into(),
                        }));
                    }
                    old.insert("_id", doc! { "$ne": id });
                }
                let retire = DateTime::from_millis(now.timestamp_millis() + REPLACED_KEPT_MS);
                media
                    .update_many(
                        old,
                        doc! { "$set": { "state": "replaced", "purgeAfter": retire } },
                    )
                    .session(&mut *s)
                    .await?;
                match kind {
                    MediaKind::Avatar => auth.set_avatar_in(s, owner, link.as_deref()).await?,
                    MediaKind::Banner => profiles.set_banner_in(s, owner, link.as_deref()).await?,
                }
                Ok(())
            })
        })
        .await
    }
}
