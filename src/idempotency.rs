//! `Idempotency-Key` for creating and cancelling: the same key and body replay the first
//! response (from any instance: it is stored in MongoDB); the same key with another body is a
//! 409. A key being processed elsewhere answers 409 with `Retry-After`; a crashed attempt's lease
//! expires so the client's retry can proceed. Keys expire after 24 h (TTL index).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Binary, DateTime, Document};
use sha2::{Digest, Sha256};

use serde::de::DeserializeOwned;
use validator::Validate;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{parse_body, RawBody};

const KEYS: &str = "idempotency_keys";
const TTL_MS: i64 = 24 * 3600 * 1000;
const MAX_STORED_BODY: usize = 1 << 20;

/// The key of a request, if it carries one (validated).
pub fn key_from(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::field("Idempotency-Key", "must be 1 to 255 visible ASCII characters"))?;
    Ok(Some(key.to_owned()))
}

/// An idempotent request, extracted: its validated `Idempotency-Key`, the route it is keyed
/// under (method and path), its raw body (the fingerprint a reuse is checked against) and the
/// parsed, validated request. Handlers call [`Idempotent::once`] with the work to run.
pub struct Idempotent<T> {
    key: Option<String>,
    route: String,
    body: Bytes,
    pub req: T,
}

impl<S: Send + Sync, T: DeserializeOwned + Validate> FromRequest<S> for Idempotent<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let key = key_from(req.headers())?;
        let route = format!("{} {}", req.method(), req.uri().path());
        let headers = req.headers().clone();
        let RawBody(body) = RawBody::from_request(req, state).await?;
        let parsed = parse_body(&headers, &body)?;
        Ok(Self {
            key,
            route,
            body,
            req: parsed,
        })
    }
}

impl<T> Idempotent<T> {
    /// Runs `work` (given the request and the ids it may create) at most once per
    /// (caller, route, key), replaying its stored answer afterwards; see [`once`].
    pub async fn once<F, Fut>(self, state: &AppState, caller: ObjectId, work: F) -> ApiResult<Response>
    where
        F: FnOnce(T, Ids) -> Fut,
        Fut: std::future::Future<Output = ApiResult<Response>> + Send + 'static,
    {
        let ids = Ids::new(caller, &self.route, self.key.as_deref(), &self.body);
        let fut = work(self.req, ids);
        once(state, caller, &self.route, self.key, &self.body, fut).await
    }
}

/// Ids of what a keyed request creates: derived from (caller, route, key, body), so a rerun of
/// the same request (its first attempt's outcome unknown, e.g. a 5xx after the write) names the
/// same documents and recognises its own earlier effect, and a key reused with another body
/// once its record is gone (expired, or removed after a 5xx) never names the first request's
/// documents; random without a key.
#[derive(Debug, Clone)]
pub struct Ids(Option<[u8; 32]>);

impl Ids {
    /// The id source of a request.
    pub fn new(caller: ObjectId, route: &str, key: Option<&str>, body: &[u8]) -> Self {
        Ids(key.map(|k| {
            let mut h = Sha256::new();
            h.update(format!("ids:{caller}:{route}:{k}:").as_bytes());
            h.update(Sha256::digest(body));
            h.finalize().into()
        }))
    }

    /// The `n`-th id this request creates.
    pub fn nth(&self, n: u32) -> ObjectId {
        match &self.0 {
            None => ObjectId::new(),
            Some(seed) => {
                let mut h = Sha256::new();
                h.update(seed);
                h.update(n.to_be_bytes());
                let digest = h.finalize();
                let mut bytes = [0u8; 12];
                bytes.copy_from_slice(&digest[..12]);
                ObjectId::from_bytes(bytes)
            }
        }
    }

    /// Whether the ids are derived (the request carries a key).
    pub fn derived(&self) -> bool {
        self.0.is_some()
    }
}

/// Runs `work` to completion, even when the request that started it is dropped (its class
/// timeout fired, or the client hung up): a write that has begun is never cut in half, and
/// its real outcome is what a retry sees.
pub async fn detached<T, Fut>(work: Fut) -> ApiResult<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = ApiResult<T>> + Send + 'static,
{
    tokio::spawn(work)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("write task failed: {e}")))?
}

/// Runs `work` at most once per (caller, route, key); replays its stored response afterwards.
/// The work runs detached from the request (see [`detached`]) and its key's lease is renewed
/// while it runs, so a retry waits for the real outcome instead of running it a second time.
pub async fn once<Fut>(
    state: &AppState,
    caller: ObjectId,
    route: &str,
    key: Option<String>,
    body: &Bytes,
    work: Fut,
) -> ApiResult<Response>
where
    Fut: std::future::Future<Output = ApiResult<Response>> + Send + 'static,
{
    let Some(key) = key else {
        return detached(work).await;
    };
    let coll = state.db.collection::<Document>(KEYS);
    let id = hex::encode(Sha256::digest(format!("{caller}:{route}:{key}").as_bytes()));
    let fingerprint = hex::encode(Sha256::digest(body));
    let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
    // This attempt's mark on the key: renewals, the outcome and a release apply only while the
    // key is still this attempt's (a takeover after a lost lease makes it another's).
    let owner = ObjectId::new();
    let lease_ms = state.config.http.idempotency_lease_seconds as i64 * 1000;
    loop {
        match begin(&coll, &id, &fingerprint, owner, lease_ms).await? {
            Begun::Replay(record) => return replay(&record),
            Begun::Mine => break,
            Begun::Busy if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL_OTHER).await;
            }
            Begun::Busy => {
                return Err(ApiError::Conflict {
                    code: "IDEMPOTENCY_IN_PROGRESS",
                    message: "A request with this Idempotency-Key is still being processed; retry shortly"
                        .into(),
                    extra: Default::default(),
                })
            }
        }
    }
    detached(run_and_record(coll, id, owner, lease_ms, work)).await
}

/// How long a retry waits for another attempt of its key to finish before answering 409.
const WAIT_FOR_OTHER: std::time::Duration = std::time::Duration::from_secs(3);
const POLL_OTHER: std::time::Duration = std::time::Duration::from_millis(100);

enum Begun {
    /// This request owns the key now.
    Mine,
    /// Another attempt is running (its lease is alive).
    Busy,
    /// Done before: replay this record.
    Replay(Document),
}

async fn begin(
    coll: &mongodb::Collection<Document>,
    id: &str,
    fingerprint: &str,
    owner: ObjectId,
    lease_ms: i64,
) -> ApiResult<Begun> {
    let now = DateTime::now().timestamp_millis();
    let record = doc! {
        "_id": id, "fingerprint": fingerprint, "state": "processing", "owner": owner,
        "leaseUntil": DateTime::from_millis(now + lease_ms),
        "createdAt": DateTime::from_millis(now), "expiresAt": DateTime::from_millis(now + TTL_MS),
    };
    match coll.insert_one(record).await {
        Ok(_) => return Ok(Begun::Mine),
        Err(e) if crate::db::is_duplicate_key(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(existing) = coll.find_one(doc! { "_id": id }).await? else {
        // Removed meanwhile (a 5xx outcome): the next round inserts it again.
        return Ok(Begun::Busy);
    };
    if existing.get_str("fingerprint").unwrap_or_default() != fingerprint {
        return Err(ApiError::conflict(
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was used with a different request body",
        ));
    }
    if existing.get_str("state") == Ok("done") {
        return Ok(Begun::Replay(existing));
    }
    // Processing: take over only if the other attempt's lease ran out (its process died).
    let taken = coll
        .update_one(
            doc! { "_id": id, "state": "processing", "leaseUntil": { "$lt": DateTime::from_millis(now) } },
            doc! { "$set": { "leaseUntil": DateTime::from_millis(now + lease_ms), "owner": owner } },
        )
        .await?;
    Ok(if taken.modified_count == 0 {
        Begun::Busy
    } else {
        Begun::Mine
    })
}

/// Runs the work while renewing the key's lease, then stores its outcome.
async fn run_and_record<Fut>(
    coll: mongodb::Collection<Document>,
    id: String,
    owner: ObjectId,
    lease_ms: i64,
    work: Fut,
) -> ApiResult<Response>
where
    Fut: std::future::Future<Output = ApiResult<Response>> + Send + 'static,
{
    let mut task = tokio::spawn(work);
    let outcome = loop {
        tokio::select! {
            done = &mut task => break done,
            _ = tokio::time::sleep(std::time::Duration::from_millis(lease_ms as u64 / 3)) => {
                let until = DateTime::from_millis(DateTime::now().timestamp_millis() + lease_ms);
                let renew = coll.update_one(
                    doc! { "_id": &id, "state": "processing", "owner": owner },
                    doc! { "$set": { "leaseUntil": until } },
                );
                if let Err(e) = renew.await {
                    tracing::warn!(error = %e, "could not renew an idempotency lease");
                }
            }
        }
    };
    let response = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::Internal(anyhow::anyhow!("write task failed: {e}")).into_response(),
    };
    let status = response.status();
    if status.is_server_error() {
        // Nothing definite happened: let a retry run it again.
        let _ = coll.delete_one(doc! { "_id": &id, "owner": owner }).await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_STORED_BODY)
        .await
        .map_err(|e| anyhow::anyhow!("reading response for idempotency: {e}"))?;
    coll.update_one(
        doc! { "_id": &id, "owner": owner, "state": "processing" },
        doc! { "$set": {
            "state": "done", "status": i32::from(status.as_u16()),
            "body": Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: bytes.to_vec() },
        } },
    )
    .await?;
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}

fn replay(record: &Document) -> ApiResult<Response> {
    let status = record
        .get_i32("status")
        .ok()
        .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
        .unwrap_or(StatusCode::OK);
    let body = record.get_binary_generic("body").cloned().unwrap_or_default();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}
