//! The two-layer response cache: serialized response bodies in process (`local`, bounded per
//! family) in front of Redis (shared), filled from MongoDB by the caller's closure.
//!
//! Never stale across instances: every read asks Redis for the owner's generation of the family
//! (one `GET`), and the generation is part of the key, so an invalidation (`INCR`) on any
//! instance makes every older entry unreachable everywhere at once. Concurrent misses of one
//! key run the fill once (moka's single flight).
//!
//! Redis down or slow: the breaker opens and reads go process -> fill with no Redis wait; this
//! instance then cannot learn other instances' invalidations, so process entries are served
//! only while younger than `outage_trust`; what this instance itself invalidated meanwhile is
//! read through until the invalidation reaches Redis (`generations`).

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::response::Response;
use mongodb::bson::oid::ObjectId;
use serde::Serialize;

use super::breaker::{BreakerConfig, BreakerState};
use super::family::{entry_key, Family};
use super::generations::{Generations, Standing};
use super::link::RedisLink;
use super::local::{Entry, FamilyLimits, LocalLayer};
use super::redis::RedisHandle;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, Subscriber};
use crate::metrics::Metrics;

/// How the cache is sized and how it behaves without Redis.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub enabled: bool,
    /// How long a process entry is trusted while Redis cannot be reached.
    pub outage_trust: Duration,
    pub breaker: BreakerConfig,
    /// TTL and process bounds per family, in `Family::ALL` order.
    pub families: [FamilyLimits; 8],
}

/// How often invalidations that could not reach Redis are retried.
const RETRY_EVERY: Duration = Duration::from_millis(250);

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
    link: Arc<RedisLink>,
    local: LocalLayer,
    gens: Generations,
}

impl CacheSettings {
    /// The settings of `[cache]`.
    pub fn from_config(c: &crate::config::CacheConfig) -> Self {
        let mut families = [FamilyLimits::new(Duration::from_secs(60), 1, 1); 8];
        for (family, (name, f)) in Family::ALL.iter().zip(c.families()) {
            debug_assert_eq!(family.name(), name);
            families[family.index()] =
                FamilyLimits::new(Duration::from_secs(f.ttl_seconds), f.max_entries, f.max_bytes);
        }
        Self {
            enabled: c.enabled,
            outage_trust: Duration::from_millis(c.outage_trust_ms),
            breaker: BreakerConfig {
                failures: c.breaker_failures,
                slow: Duration::from_millis(c.breaker_slow_ms),
                open_for: Duration::from_millis(c.breaker_open_ms),
            },
            families,
        }
    }
}

impl ResponseCache {
    /// The cache, with a task retrying invalidations that could not reach Redis (it ends with
    /// the cache).
    pub fn new(settings: CacheSettings, redis: RedisHandle, metrics: Arc<Metrics>) -> Arc<Self> {
        let link = Arc::new(RedisLink::new(redis, settings.breaker, metrics.clone()));
        let cache = Arc::new(Self {
            gens: Generations::new(&link, metrics.clone()),
            link,
            local: LocalLayer::new(settings.families, &metrics),
            settings,
            metrics,
        });
        let weak: Weak<Self> = Arc::downgrade(&cache);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(RETRY_EVERY).await;
                    let Some(cache) = weak.upgrade() else { return };
                    cache.gens.flush(&cache.link).await;
                }
            });
        }
        cache
    }

    /// A 200 with the JSON of `owner`'s `family` response for `query`: cached bytes, or
    /// `fill`'s value serialized once and cached.
    pub async fn json<T, F, Fut>(
        &self,
        family: Family,
        owner: ObjectId,
        query: &str,
        fill: F,
    ) -> ApiResult<Response>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let ttl = self.local.limits(family).ttl;
        self.json_for(family, owner, query, ttl, fill).await
    }

    /// `json` for a response only worth keeping `ttl` (at most the family's TTL): one whose
    /// key carries the current minute, for instance.
    pub async fn json_for<T, F, Fut>(
        &self,
        family: Family,
        owner: ObjectId,
        query: &str,
        ttl: Duration,
        fill: F,
    ) -> ApiResult<Response>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let fill = || async {
            let value = fill().await?;
            Ok(serde_json::to_vec(&value).map_err(anyhow::Error::from)?.into())
        };
        let ttl = ttl.min(self.local.limits(family).ttl);
        let (body, _) = self.fetch(family, owner, query, ttl, fill).await?;
        Ok(crate::http::envelope::json_bytes(body))
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
        let ttl = self.local.limits(family).ttl;
        self.fetch(family, owner, query, ttl, fill).await
    }

    async fn fetch<F, Fut>(
        &self,
        family: Family,
        owner: ObjectId,
        query: &str,
        ttl: Duration,
        fill: F,
    ) -> ApiResult<(Bytes, Source)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<Bytes>>,
    {
        if !self.settings.enabled {
            return Ok((fill().await?, Source::Fill));
        }
        let (generation, shared, trusted) = match self.gens.standing(&self.link, family, owner).await {
            Standing::Shared(g) => (g, true, true),
            Standing::Alone(g) => (g, false, true),
            Standing::Outage(g) => (g, false, false),
            Standing::Pending => {
                self.count(false, "memory", family);
                self.metrics.cache_fills.with_label_values(&[family.name()]).inc();
                return Ok((fill().await?, Source::Fill));
            }
        };
        let key = entry_key(self.link.prefix(), family, owner, generation, query);
        let local = self.local.of(family);
        if let Some(e) = local.get(&key).await {
            if (trusted && !e.provisional) || e.stored.elapsed() < self.settings.outage_trust {
                self.count(true, "memory", family);
                return Ok((e.body, Source::Process));
            }
            local.invalidate(&key).await;
        }
        self.count(false, "memory", family);
        // The fill runs at most once per key at a time; its error (a 404, a 400...) is the
        // caller's answer, and is never cached.
        let fill_slot = std::sync::Mutex::new(Some(fill));
        let failure: std::sync::Mutex<Option<ApiError>> = std::sync::Mutex::new(None);
        let mut source = Source::Fill;
        let entry = |body: Bytes| Entry {
            body,
            stored: Instant::now(),
            ttl,
            provisional: !trusted,
        };
        let filled = local
            .try_get_with(key.clone(), async {
                if shared {
                    let found = self.redis_get(&key).await;
                    self.count(found.is_some(), "redis", family);
                    if let Some(body) = found {
                        source = Source::Redis;
                        return Ok(entry(body));
                    }
                }
                let Some(fill) = fill_slot.lock().ok().and_then(|mut f| f.take()) else {
                    return Err(());
                };
                self.metrics.cache_fills.with_label_values(&[family.name()]).inc();
                match fill().await {
                    Ok(body) => {
                        if shared {
                            self.redis_set(&key, &body, ttl).await;
                        }
                        Ok(entry(body))
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
    /// script call per owner whatever the number of families. Until it reaches Redis, this
    /// instance reads those pairs through and retries it.
    pub async fn invalidate(&self, stale: &[(Family, ObjectId)]) {
        if stale.is_empty() {
            return;
        }
        for (family, _) in stale {
            self.metrics
                .cache_invalidations
                .with_label_values(&[family.name()])
                .inc();
        }
        self.gens.bump(&self.link, stale).await;
    }

    async fn redis_get(&self, key: &str) -> Option<Bytes> {
        let get = redis::cmd("GET").arg(key).to_owned();
        self.link
            .call(|mut c| async move { get.query_async::<Option<Vec<u8>>>(&mut c).await })
            .await
            .flatten()
            .map(Bytes::from)
    }

    /// Stores a filled body in Redis (awaited: a read on another instance right after this
    /// one's answer finds it).
    async fn redis_set(&self, key: &str, body: &Bytes, ttl: Duration) {
        let set = redis::cmd("SET")
            .arg(key)
            .arg(body.as_ref())
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .to_owned();
        let _ = self
            .link
            .call(|mut c| async move { set.query_async::<()>(&mut c).await })
            .await;
    }

    fn count(&self, hit: bool, layer: &str, family: Family) {
        let counter = if hit {
            &self.metrics.cache_hits
        } else {
            &self.metrics.cache_misses
        };
        counter.with_label_values(&[layer, family.name()]).inc();
    }

    /// Where the Redis breaker stands.
    pub fn breaker_state(&self) -> BreakerState {
        self.link.state()
    }

    /// Invalidations that have not reached Redis yet.
    pub fn pending_invalidations(&self) -> usize {
        self.gens.pending_count()
    }

    /// Tries, for up to `within`, to land the invalidations that have not reached Redis yet
    /// (before the process exits); returns how many are left.
    pub async fn drain(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            self.gens.flush(&self.link).await;
            let left = self.gens.pending_count();
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Entries and weighed bytes held in process per family, pending evictions applied.
    pub async fn usage(&self) -> Vec<(Family, u64, u64)> {
        self.local.settle().await;
        self.local.usage()
    }

    /// Sets the per-family size gauges and the breaker gauge (before a scrape).
    pub async fn publish_usage(&self) {
        for (family, entries, bytes) in self.usage().await {
            let name = [family.name()];
            self.metrics
                .cache_entries
                .with_label_values(&name)
                .set(entries as i64);
            self.metrics
                .cache_bytes
                .with_label_values(&name)
                .set(bytes as i64);
        }
        self.metrics.cache_breaker_state.set(self.link.state().as_gauge());
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
