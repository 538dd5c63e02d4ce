//! The two-layer response cache (issue 11; built and tested here, not yet serving routes):
//! serialized response bodies in process (moka, bounded by bytes) in front of Redis (shared),
//! filled from MongoDB by the caller's closure.
//!
//! Never stale across instances: every read asks Redis for the owner's generation of the family
//! (one `GET`), and the generation is part of the key, so an invalidation (`INCR`) on any
//! instance makes every older entry unreachable everywhere at once. Concurrent misses of one
//! key run the fill once (moka's single flight).
//!
//! Redis down or slow: the breaker opens and reads go process -> fill with no Redis wait; this
//! instance then cannot learn other instances' invalidations, so process entries are served
//! only while younger than `outage_trust` (and the local generation, bumped by this instance's
//! own invalidations, still keeps its own writes visible).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use mongodb::bson::oid::ObjectId;

use super::breaker::{Breaker, BreakerConfig};
use super::family::{entry_key, generation_key, Family};
use super::redis::RedisHandle;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, Subscriber};
use crate::metrics::Metrics;

/// How the cache is sized and how it behaves without Redis.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub enabled: bool,
    /// Bytes of response bodies kept in process.
    pub max_bytes: u64,
    /// How long a process entry is trusted while Redis cannot be reached.
    pub outage_trust: Duration,
    pub breaker: BreakerConfig,
}

/// A cached body and when this process stored it.
#[derive(Clone)]
struct Entry {
    body: Bytes,
    stored: Instant,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, value: &Entry, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Generations kept a day in Redis: far longer than any entry lives.
const GENERATION_TTL_SECS: i64 = 86_400;

/// Where a body came from (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Process,
    Redis,
    Fill,
}

/// The response cache of one instance.
pub struct ResponseCache {
    settings: CacheSettings,
    metrics: Arc<Metrics>,
    redis: RedisHandle,
    local: moka::future::Cache<String, Entry>,
    /// This instance's last known generations (used while Redis is unreachable).
    gens: moka::sync::Cache<(Family, ObjectId), u64>,
    breaker: Breaker,
}

impl CacheSettings {
    /// The settings of `[cache]`.
    pub fn from_config(c: &crate::config::CacheConfig) -> Self {
        Self {
            enabled: c.enabled,
            max_bytes: c.max_bytes,
            outage_trust: Duration::from_millis(c.outage_trust_ms),
            breaker: BreakerConfig {
                failures: c.breaker_failures,
                slow: Duration::from_millis(c.breaker_slow_ms),
                open_for: Duration::from_millis(c.breaker_open_ms),
            },
        }
    }
}

impl ResponseCache {
    pub fn new(settings: CacheSettings, redis: RedisHandle, metrics: Arc<Metrics>) -> Self {
        let local = moka::future::Cache::builder()
            .weigher(|k: &String, v: &Entry| (k.len() + v.body.len()).try_into().unwrap_or(u32::MAX))
            .max_capacity(settings.max_bytes)
            .expire_after(PerEntryTtl)
            .build();
        Self {
            settings,
            metrics,
            redis,
            local,
            gens: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3_600))
                .build(),
            breaker: Breaker::new(settings.breaker),
        }
    }

    /// The body of `owner`'s `family` response for `query`: from process, else Redis, else
    /// `fill` (whose result is stored in both).
    pub async fn get_or_fill<F, Fut>(
        &self,
        family: Family,
        owner: ObjectId,
        query: &str,
        fill: F,
    ) -> ApiResult<(Bytes, Source)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<Bytes>>,
    {
        if !self.settings.enabled {
            return Ok((fill().await?, Source::Fill));
        }
        let (generation, shared) = self.generation(family, owner).await;
        let key = entry_key(&self.redis.key(""), family, owner, generation, query);
        if let Some(e) = self.local.get(&key).await {
            if shared || e.stored.elapsed() < self.settings.outage_trust {
                self.count(true, "memory");
                return Ok((e.body, Source::Process));
            }
            self.local.invalidate(&key).await;
        }
        self.count(false, "memory");
        let ttl = family.default_ttl();
        // The fill runs at most once per key at a time; its error (a 404, a 400...) is the
        // caller's answer, and is never cached.
        let fill_slot = std::sync::Mutex::new(Some(fill));
        let failure: std::sync::Mutex<Option<ApiError>> = std::sync::Mutex::new(None);
        let mut source = Source::Fill;
        let filled = self
            .local
            .try_get_with(key.clone(), async {
                if shared {
                    if let Some(body) = self.redis_get(&key).await {
                        source = Source::Redis;
                        return Ok(Entry {
                            body,
                            stored: Instant::now(),
                            ttl,
                        });
                    }
                }
                let Some(fill) = fill_slot.lock().ok().and_then(|mut f| f.take()) else {
                    return Err(());
                };
                match fill().await {
                    Ok(body) => {
                        if shared {
                            self.redis_set(&key, &body, ttl).await;
                        }
                        Ok(Entry {
                            body,
                            stored: Instant::now(),
                            ttl,
                        })
                    }
                    Err(e) => {
                        if let Ok(mut f) = failure.lock() {
                            *f = Some(e);
                        }
                        Err(())
                    }
                }
            })
            .await;
        if shared {
            self.count(source == Source::Redis, "redis");
        }
        match filled {
            Ok(entry) => Ok((entry.body, source)),
            Err(_) => {
                if let Some(e) = failure.lock().ok().and_then(|mut f| f.take()) {
                    return Err(e);
                }
                // Another request's fill of this key failed: answer from our own.
                let fill = fill_slot
                    .lock()
                    .ok()
                    .and_then(|mut f| f.take())
                    .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("cache fill vanished")))?;
                Ok((fill().await?, Source::Fill))
            }
        }
    }

    /// Makes every cached response of each (family, owner) stale, on every instance: one Redis
    /// round trip (a pipeline of `INCR` + `EXPIRE`) whatever the number of pairs.
    pub async fn invalidate(&self, stale: &[(Family, ObjectId)]) {
        if stale.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut local = Vec::with_capacity(stale.len());
        for &(family, owner) in stale {
            let next = self.gens.get(&(family, owner)).unwrap_or(0) + 1;
            self.gens.insert((family, owner), next);
            local.push(next);
            let key = generation_key(&self.redis.key(""), family, owner);
            pipe.cmd("INCR").arg(&key);
            pipe.cmd("EXPIRE").arg(&key).arg(GENERATION_TTL_SECS).ignore();
        }
        let shared = self
            .call(|mut c| async move { pipe.query_async::<Vec<u64>>(&mut c).await })
            .await;
        for ((pair, next), g) in stale.iter().zip(local).zip(shared.into_iter().flatten()) {
            // Never step back: keep whichever is newer.
            self.gens.insert(*pair, g.max(next));
        }
    }

    /// The owner's generation of `family`, and whether it came from Redis.
    async fn generation(&self, family: Family, owner: ObjectId) -> (u64, bool) {
        let key = generation_key(&self.redis.key(""), family, owner);
        let get = redis::cmd("GET").arg(&key).to_owned();
        match self
            .call(|mut c| async move { get.query_async::<Option<u64>>(&mut c).await })
            .await
        {
            Some(g) => {
                let g = g.unwrap_or(0);
                // Kept for outages; written only when it moved (reads are the hot path).
                if self.gens.get(&(family, owner)) != Some(g) {
                    self.gens.insert((family, owner), g);
                }
                (g, true)
            }
            None => (self.gens.get(&(family, owner)).unwrap_or(0), false),
        }
    }

    async fn redis_get(&self, key: &str) -> Option<Bytes> {
        let get = redis::cmd("GET").arg(key).to_owned();
        self.call(|mut c| async move { get.query_async::<Option<Vec<u8>>>(&mut c).await })
            .await
            .flatten()
            .map(Bytes::from)
    }

    async fn redis_set(&self, key: &str, body: &Bytes, ttl: Duration) {
        let set = redis::cmd("SET")
            .arg(key)
            .arg(body.as_ref())
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .to_owned();
        let _ = self
            .call(|mut c| async move { set.query_async::<()>(&mut c).await })
            .await;
    }

    /// One Redis call under the breaker and the response timeout; `None` when not attempted or
    /// failed (the caller falls back).
    async fn call<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(::redis::aio::ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>>,
    {
        let conn = self.redis.conn()?;
        let started = Instant::now();
        if !self.breaker.allow(started) {
            return None;
        }
        let outcome = tokio::time::timeout(self.redis.response_timeout(), f(conn)).await;
        let ok = matches!(outcome, Ok(Ok(_)));
        self.breaker.record(ok, started.elapsed(), Instant::now());
        match outcome {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cache: Redis call failed");
                None
            }
            Err(_) => {
                tracing::warn!("cache: Redis call timed out");
                None
            }
        }
    }

    fn count(&self, hit: bool, layer: &str) {
        let counter = if hit {
            &self.metrics.cache_hits
        } else {
            &self.metrics.cache_misses
        };
        counter.with_label_values(&[layer]).inc();
    }

    /// Where the Redis breaker stands.
    pub fn breaker_state(&self) -> super::breaker::BreakerState {
        self.breaker.state()
    }
}

/// Invalidates, on every domain event, what it makes stale (`family::stale_after`), in both
/// layers and on every instance, before the request that caused it answers.
pub struct Invalidator(pub Arc<ResponseCache>);

impl Subscriber for Invalidator {
    fn handle<'a>(&'a self, event: &'a Event) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0.invalidate(&super::family::stale_after(event)).await;
        })
    }
}
