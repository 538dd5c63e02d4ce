//! The GridFS bucket every stored file lives in (`files.files`, `files.chunks`): opening an
//! upload, reading byte ranges chunk by chunk, removing a file, and sweeping the files whose
//! record says they are due for removal.

use axum::body::Bytes;
use futures_util::{Stream, TryStreamExt};
use mongodb::bson::{doc, oid::ObjectId, Binary, Bson, DateTime, Document};
use mongodb::gridfs::{GridFsBucket, GridFsUploadStream};
use mongodb::options::GridFsBucketOptions;
use mongodb::Collection;
use serde::Deserialize;

use crate::db::Db;

/// The bucket's name: collections `files.files` and `files.chunks`.
pub const BUCKET: &str = "files";
/// Bytes per chunk (GridFS's default, stated so range reads can rely on it).
pub const CHUNK_SIZE: u32 = 255 * 1024;

/// The file bucket.
#[derive(Clone)]
pub struct FileStore {
    bucket: GridFsBucket,
    files: Collection<Document>,
    chunks: Collection<Chunk>,
}

/// A chunk as read back (its number and bytes).
#[derive(Debug, Deserialize)]
struct Chunk {
    n: i64,
    data: Binary,
}

impl FileStore {
    pub fn new(db: &Db) -> Self {
        let options = GridFsBucketOptions::builder()
            .bucket_name(BUCKET.to_owned())
            .chunk_size_bytes(CHUNK_SIZE)
            .build();
        Self {
            bucket: db.primary().gridfs_bucket(options),
            files: db.collection(&format!("{BUCKET}.files")),
            chunks: db.collection(&format!("{BUCKET}.chunks")),
        }
    }

    /// A stream the content of file `id` is written to. Chunks are inserted as they fill;
    /// the file exists once the stream is closed. Dropped unclosed, it removes its chunks.
    pub async fn open_upload(
        &self,
        id: ObjectId,
        filename: &str,
        metadata: Document,
    ) -> mongodb::error::Result<GridFsUploadStream> {
        self.bucket
            .open_upload_stream(filename)
            .id(Bson::ObjectId(id))
            .metadata(metadata)
            .await
    }

    /// Bytes `start..=end` of file `id`, read one chunk per round trip, so a download holds
    /// about one chunk in memory whatever the file's size. A missing chunk ends the stream with
    /// an error (the client sees a cut transfer, never wrong bytes).
    pub fn read(
        &self,
        id: ObjectId,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let size = u64::from(CHUNK_SIZE);
        let (first, last) = (start / size, end / size);
        let chunks = self.chunks.clone();
        let state = ReadState {
            chunks,
            cursor: None,
            id,
            next_n: first,
            last_n: last,
            start,
            end,
        };
        futures_util::stream::try_unfold(state, move |mut st| async move {
            if st.next_n > st.last_n {
                return Ok(None);
            }
            let chunk = st.next_chunk().await.map_err(std::io::Error::other)?;
            let Some(chunk) = chunk else {
                return Err(std::io::Error::other(format!(
                    "file {} lacks chunk {}",
                    st.id, st.next_n
                )));
            };
            if chunk.n < 0 || chunk.n as u64 != st.next_n {
                return Err(std::io::Error::other(format!(
                    "file {} chunk {} out of order",
                    st.id, chunk.n
                )));
            }
            let offset = st.next_n * size;
            let bytes = Bytes::from(chunk.data.bytes);
            let from = st.start.saturating_sub(offset) as usize;
            let to = ((st.end + 1).saturating_sub(offset) as usize).min(bytes.len());
            if from > to {
                return Err(std::io::Error::other(format!(
                    "file {} is shorter than recorded",
                    st.id
                )));
            }
            st.next_n += 1;
            Ok(Some((bytes.slice(from..to), st)))
        })
    }

    /// Removes file `id`: its chunks, then its entry (either may already be gone).
    pub async fn remove(&self, id: ObjectId) -> mongodb::error::Result<()> {
        self.chunks.delete_many(doc! { "files_id": id }).await?;
        self.files.delete_one(doc! { "_id": id }).await?;
        Ok(())
    }

    /// Removes up to `batch` files whose record in `records` is due (`purgeAfter` passed), then
    /// the records; a record is removed only after its file, so a crash in between leaves it for
    /// the next sweep. `file_field` names the record's file field. Returns how many were removed.
    pub async fn sweep(
        &self,
        records: &Collection<Document>,
        file_field: &str,
        batch: i64,
    ) -> mongodb::error::Result<usize> {
        let due: Vec<Document> = records
            .find(doc! { "purgeAfter": { "$lte": DateTime::now() } })
            .sort(doc! { "purgeAfter": 1 })
            .limit(batch)
            .projection(doc! { "_id": 1, file_field: 1, "purgeAfter": 1 })
            .await?
            .try_collect()
            .await?;
        let mut removed = 0;
        for record in due {
            let (Ok(id), Ok(file), Ok(when)) = (
                record.get_object_id("_id"),
                record.get_object_id(file_field),
                record.get_datetime("purgeAfter"),
            ) else {
                continue;
            };
            self.remove(file).await?;
            // Only while still due. Whoever keeps a pending record does so only before its
            // due date (`purgeAfter > now` in the same write), so a kept record never loses
            // its file to a sweep that started earlier.
            let gone = records
                .delete_one(doc! { "_id": id, "purgeAfter": *when })
                .await?;
            removed += gone.deleted_count as usize;
        }
        Ok(removed)
    }
}

struct ReadState {
    chunks: Collection<Chunk>,
    cursor: Option<mongodb::Cursor<Chunk>>,
    id: ObjectId,
    next_n: u64,
    last_n: u64,
    start: u64,
    end: u64,
}

impl ReadState {
    async fn next_chunk(&mut self) -> mongodb::error::Result<Option<Chunk>> {
        let cursor = match &mut self.cursor {
            Some(c) => c,
            None => {
                let found = self
                    .chunks
                    .find(doc! {
                        "files_id": self.id,
                        "n": { "$gte": self.next_n as i64, "$lte": self.last_n as i64 },
                    })
                    .sort(doc! { "n": 1 })
                    .batch_size(1)
                    .await?;
                self.cursor.insert(found)
            }
        };
        cursor.try_next().await
    }
}
