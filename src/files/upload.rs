//! Receiving one file from a `multipart/form-data` request: its first bytes decide its kind
//! (nothing is written for a refused type), the rest streams into GridFS while hashed
//! (SHA-256) and counted, and crossing the size limit stops the upload at once. Text fields,
//! before or after the file, are collected with bounds.
//!
//! Whatever interrupts an upload (a refusal, a client that goes away, a failed write, the
//! caller's own validation) removes what was written: the `Pending` guard cleans up when it is
//! dropped without being kept, and a record with a due date (`purgeAfter`) covers a process that
//! dies before any guard can run.

use std::collections::HashMap;

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::Multipart;
use axum::http::StatusCode;
use futures_util::future::BoxFuture;
use futures_util::io::AsyncWriteExt;
use mongodb::bson::{doc, oid::ObjectId};
use mongodb::gridfs::GridFsUploadStream;
use sha2::{Digest, Sha256};

use super::sniff::{Kind, Refusal, SNIFF_BYTES};
use super::store::FileStore;
use crate::error::{ApiError, ApiResult};

/// Text fields and their sizes: enough for any form, bounded against abuse.
const MAX_FIELDS: usize = 40;
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// What an upload route accepts.
pub struct Rules {
    /// Names the file may come under (the first is the documented one).
    pub file_fields: &'static [&'static str],
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// The content check (documents: the allow-list; avatars: images).
    pub sniff: fn(&[u8], &str) -> Result<Kind, Refusal>,
}

/// Cleans up an upload that was not kept: removes its file and its pending record.
pub type Cleanup = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// Where a file goes once its kind is known: the caller records it as pending (with a due
/// date) and answers the file's id and how to undo that record.
pub trait Destination {
    fn begin<'a>(
        &'a mut self,
        kind: &'a Kind,
        filename: &'a str,
    ) -> BoxFuture<'a, ApiResult<(ObjectId, Cleanup)>>;
}

/// A received file: written to GridFS but not yet closed, so not yet a file anyone can read.
pub struct Received {
    pub file_id: ObjectId,
    pub kind: Kind,
    pub filename: String,
    pub bytes: u64,
    pub sha256: String,
    stream: GridFsUploadStream,
    pending: Pending,
}

/// The file plus the text fields of the form.
pub struct Form {
    pub file: Received,
    pub fields: HashMap<String, String>,
}

impl Received {
    /// Closes the GridFS file (it now exists) and hands back the guard that still removes it
    /// unless the caller keeps it after recording it.
    pub async fn close(mut self) -> ApiResult<Pending> {
        self.stream
            .close()
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("closing upload: {e}")))?;
        Ok(self.pending)
    }
}

/// Removes an upload's file and pending record when dropped, unless `keep` was called.
pub struct Pending(Option<Cleanup>);

impl Pending {
    /// The upload is recorded for good: nothing to clean.
    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(cleanup) = self.0.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(cleanup());
            }
        }
    }
}

/// The multipart body, or 415 when the request is not a form upload.
pub fn multipart(m: Result<Multipart, MultipartRejection>) -> ApiResult<Multipart> {
    m.map_err(|_| ApiError::UnsupportedMediaType("Uploads must be sent as multipart/form-data".into()))
}

/// 413 before reading anything when the declared length already exceeds `limit`.
pub fn check_length(headers: &axum::http::HeaderMap, limit: u64) -> ApiResult<()> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(ApiError::PayloadTooLarge),
        _ => Ok(()),
    }
}

/// Reads the whole form: the one file (streamed into GridFS through `dest`) and its text fields.
pub async fn receive(
    mut form: Multipart,
    rules: &Rules,
    store: &FileStore,
    dest: &mut impl Destination,
) -> ApiResult<Form> {
    let mut fields = HashMap::new();
    let mut file = None;
    while let Some(mut field) = form.next_field().await.map_err(read_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if rules.file_fields.contains(&name.as_str()) {
            if file.is_some() {
                return Err(ApiError::field(name, "only one file per upload"));
            }
            file = Some(receive_file(&mut field, rules, store, dest).await?);
        } else if field.file_name().is_some() {
            return Err(ApiError::field(name, "is not a file field of this upload"));
        } else {
            if fields.len() >= MAX_FIELDS {
                return Err(ApiError::field(name, "too many form fields"));
            }
            let value = read_text(&mut field, &name).await?;
            fields.insert(name, value);
        }
    }
    let file = file.ok_or_else(|| ApiError::field(rules.file_fields[0], "is required"))?;
    Ok(Form { file, fields })
}

async fn read_text(field: &mut Field<'_>, name: &str) -> ApiResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(read_error)? {
        if buf.len() + chunk.len() > MAX_FIELD_BYTES {
            return Err(ApiError::field(name, "is too long"));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| ApiError::field(name, "must be UTF-8 text"))
}

async fn receive_file(
    field: &mut Field<'_>,
    rules: &Rules,
    store: &FileStore,
    dest: &mut impl Destination,
) -> ApiResult<Received> {
    let filename = clean_name(field.file_name().unwrap_or_default());
    let field_name = field.name().unwrap_or_default().to_owned();
    // The first bytes decide the kind before anything is stored.
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut rest = None;
    while head.len() < SNIFF_BYTES {
        match field.chunk().await.map_err(read_error)? {
            Some(chunk) => {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                if take < chunk.len() {
                    rest = Some(chunk.slice(take..));
                }
            }
            None => break,
        }
    }
    if head.is_empty() {
        return Err(ApiError::field(field_name, "the file is empty"));
    }
    let kind = (rules.sniff)(&head, &filename).map_err(refused)?;
    let (file_id, cleanup) = dest.begin(&kind, &filename).await?;
    let pending = Pending(Some(cleanup));
    let stream = store
        .open_upload(file_id, &filename, doc! { "contentType": kind.mime })
        .await?;
    let mut sink = Sink {
        stream,
        hasher: Sha256::new(),
        bytes: 0,
        limit: rules.max_bytes,
    };
    sink.write(&head).await?;
    if let Some(rest) = rest {
        sink.write(&rest).await?;
    }
    while let Some(chunk) = field.chunk().await.map_err(read_error)? {
        sink.write(&chunk).await?;
    }
    Ok(Received {
        file_id,
        kind,
        filename,
        bytes: sink.bytes,
        sha256: hex::encode(sink.hasher.finalize()),
        stream: sink.stream,
        pending,
    })
}

/// Hashes, counts and forwards; refuses the byte that crosses the limit.
struct Sink {
    stream: GridFsUploadStream,
    hasher: Sha256,
    bytes: u64,
    limit: u64,
}

impl Sink {
    async fn write(&mut self, data: &[u8]) -> ApiResult<()> {
        if self.bytes + data.len() as u64 > self.limit {
            return Err(ApiError::TooLarge {
                code: "FILE_TOO_LARGE",
                message: format!("The file is larger than {} MB", self.limit.div_ceil(1024 * 1024)),
            });
        }
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.stream
            .write_all(data)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("writing upload: {e}")))
    }
}

fn refused(r: Refusal) -> ApiError {
    ApiError::UnsupportedMediaType(match r {
        Refusal::NotAllowed => {
            "This type of file is not accepted (pdf, images, office documents, text, audio and video are)"
                .into()
        }
        Refusal::ExtensionMismatch { extension, detected } => {
            format!("The file is named .{extension} but its content is {detected}")
        }
    })
}

/// A failure to read the form: too large (413), malformed (400), or cut off by the client.
fn read_error(e: MultipartError) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::BAD_REQUEST => ApiError::BadRequest {
            code: "INVALID_MULTIPART",
            message: format!("The form could not be read: {}", e.body_text()),
        },
        _ => ApiError::BadRequest {
            code: "UPLOAD_INTERRUPTED",
            message: "The upload was interrupted before it ended".into(),
        },
    }
}

/// A file name safe to store and show: the base name only, without control characters,
/// at most 255 characters; `file` when nothing is left.
pub fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    // Trailing dots and spaces would hide the extension from the type check.
    let trimmed = cleaned.trim().trim_end_matches(['.', ' ']).trim();
    if trimmed.is_empty() {
        return "file".to_owned();
    }
    if trimmed.chars().count() <= 255 {
        return trimmed.to_owned();
    }
    // Too long: shorten the stem, keep the extension (the type check reads it).
    let (stem, ext) = trimmed
        .rsplit_once('.')
        .filter(|(_, e)| e.chars().count() <= 16)
        .unwrap_or((trimmed, ""));
    let keep = 254 - ext.chars().count();
    let stem: String = stem.chars().take(keep).collect();
    if ext.is_empty() {
        stem
    } else {
        format!("{stem}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_their_base() {
        assert_eq!(clean_name("C:\\Users\\ana\\informe.pdf"), "informe.pdf");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("a\r\nb.txt"), "ab.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name("report.pdf. . "), "report.pdf");
        let long = format!("{}.pdf", "a".repeat(400));
        let short = clean_name(&long);
        assert!(short.ends_with(".pdf") && short.chars().count() == 255, "{short}");
    }
}
