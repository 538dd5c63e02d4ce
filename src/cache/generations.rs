//! Generations: one counter per (family, owner) in Redis, folded into every cache key.
//!
//! - An invalidation bumps the counters of what an event made stale, in one script call per
//!   owner. A bump that cannot reach Redis is kept pending and retried (every 250 ms) until it
//!   lands; meanwhile this instance reads those pairs straight from MongoDB.
//! - A counter that is missing (Redis restarted or flushed, the key evicted or expired) starts
//!   again at a random value below 2^62, not at 0, so counting on from there does not reach a
//!   value whose process entries are still alive (the chance is about k / 2^62 for k values in
//!   use) and no entry written under an old generation becomes reachable again.
//! - Without a configured Redis, this instance's own counters are the only ones.
//! - Every cached read asks for its generation, so the reads are batched (`crate::batch`): the
//!   asks queued while a read is in flight are answered together by the next one, a pipeline of
//!   `GET`s (one round trip, each key its own command, so keys of different owners may live on
//!   different cluster slots). An ask is answered only by a read issued after it, so a read
//!   still sees every invalidation that landed before it began; it waits for its answer no
//!   longer than one Redis call may take (a round trip gets half of that, the one in flight
//!   the other half), then reads as in an outage.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::bson::oid::ObjectId;

use super::family::{generation_key, Family};
use super::link::RedisLink;
use crate::batch::Batcher;
use crate::metrics::Metrics;

/// Generations live a day in Redis: far longer than any entry.
const GENERATION_TTL_SECS: u64 = 86_400;

/// Bumps every key: `INCR` when it exists, else starts it at `ARGV[1]` (a random start).
const BUMP: &str = r"
local out = {}
for i, k in ipairs(KEYS) do
  local v
  if redis.call('EXISTS', k) == 1 then
    v = redis.call('INCR', k)
  else
    redis.call('SET', k, ARGV[1])
    v = tonumber(ARGV[1])
  end
  redis.call('EXPIRE', k, ARGV[2])
  out[i] = v
end
return out
";

/// Most generations one Redis round trip reads.
const MAX_BATCH: usize = 512;

/// A generation as Redis answered: `Some(None)` when the counter is missing, `None` when the
/// call failed (or was not made: breaker open).
type Read = Option<Option<u64>>;

/// How a read may use the cache for one (family, owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    /// Redis answered: the generation is everyone's; both layers may be used.
    Shared(u64),
    /// No Redis configured: this instance's generation is the only one.
    Alone(u64),
    /// Redis unreachable: the last generation seen; process entries trusted only briefly.
    Outage(u64),
    /// This instance's invalidation of the pair has not reached Redis yet: read through.
    Pending,
}

/// This instance's view of the generations.
pub(super) struct Generations {
    /// Last known (from Redis, or this instance's own without Redis).
    known: moka::sync::Cache<(Family, ObjectId), u64>,
    /// Invalidations that have not reached Redis yet, each with the number of its latest
    /// attempt (only that attempt's success clears it).
    pending: Mutex<HashMap<(Family, ObjectId), u64>>,
    attempts: AtomicU64,
    bump: redis::Script,
    /// The batched generation reads (absent without Redis or outside a runtime: each read asks
    /// alone).
    reads: Option<Batcher<String, Read>>,
}

/// Where a lost counter starts again: random, below 2^62 (room to count on), above 2^40.
fn fresh_start() -> u64 {
    use rand::Rng;
    rand::thread_rng().gen_range(1u64 << 40..1u64 << 62)
}

impl Generations {
    pub(super) fn new(link: &Arc<RedisLink>, metrics: Arc<Metrics>) -> Self {
        let reads = (link.configured() && tokio::runtime::Handle::try_current().is_ok()).then(|| {
            let link = link.clone();
            Batcher::start(MAX_BATCH, move |keys| {
                read_batch(link.clone(), metrics.clone(), keys)
            })
        });
        Self {
            reads,
            known: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3_600))
                .build(),
            pending: Mutex::new(HashMap::new()),
            attempts: AtomicU64::new(0),
            bump: redis::Script::new(BUMP),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<(Family, ObjectId), u64>> {
        // Every update is one insert or remove: a poisoned set is still consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How a read of `owner`'s `family` may use the cache now (one Redis `GET`).
    pub(super) async fn standing(&self, link: &RedisLink, family: Family, owner: ObjectId) -> Standing {
        let pair = (family, owner);
        if !link.configured() {
            return Standing::Alone(self.known.get(&pair).unwrap_or(0));
        }
        if self.pending().contains_key(&pair) {
            return Standing::Pending;
        }
        let key = generation_key(link.prefix(), family, owner);
        let read = match &self.reads {
            // Never waited on beyond one call's bound: a batch's round trip gets half of it
            // (`read_batch`), so the one in flight plus this ask's own fit; the outer bound
            // only catches a stalled scheduler or a reader gone at shutdown.
            Some(reads) => tokio::time::timeout(link.timeout(), async {
                match reads.ask(key.clone()).await {
                    Some(read) => read,
                    None => read_one(link, &key).await,
                }
            })
            .await
            .unwrap_or(None),
            None => read_one(link, &key).await,
        };
        let found = match read {
            Some(Some(g)) => Some(g),
            Some(None) => self.start(link, &key).await,
            None => None,
        };
        match found {
            Some(g) => {
                // Kept for outages; written only when it moved (reads are the hot path).
                if self.known.get(&pair) != Some(g) {
                    self.known.insert(pair, g);
                }
                Standing::Shared(g)
            }
            None => Standing::Outage(self.known.get(&pair).unwrap_or(0)),
        }
    }

    /// A missing counter starts at a random value (first writer wins).
    async fn start(&self, link: &RedisLink, key: &str) -> Option<u64> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(key)
            .arg(fresh_start())
            .arg("NX")
            .arg("EX")
            .arg(GENERATION_TTL_SECS)
            .ignore();
        pipe.cmd("GET").arg(key);
        link.call(|mut c| async move { pipe.query_async::<(Option<u64>,)>(&mut c).await })
            .await
            .and_then(|(g,)| g)
    }

    /// Bumps each (family, owner) everywhere; what cannot reach Redis now stays pending.
    pub(super) async fn bump(&self, link: &RedisLink, stale: &[(Family, ObjectId)]) {
        self.bump_as(link, stale, false).await;
    }

    /// `bump`; a `retry` runs whatever the breaker says (it is the background flush, and its
    /// success is what closes the breaker soonest after an outage).
    async fn bump_as(&self, link: &RedisLink, stale: &[(Family, ObjectId)], retry: bool) {
        if !link.configured() {
            for &pair in stale {
                let next = self.known.get(&pair).unwrap_or(0) + 1;
                self.known.insert(pair, next);
            }
            return;
        }
        // Pending before the call: a read racing this bump reads through, never old.
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        self.pending().extend(stale.iter().map(|&pair| (pair, attempt)));
        let mut by_owner: BTreeMap<ObjectId, Vec<Family>> = BTreeMap::new();
        for &(family, owner) in stale {
            by_owner.entry(owner).or_default().push(family);
        }
        for (owner, families) in by_owner {
            let keys: Vec<String> = families
                .iter()
                .map(|&f| generation_key(link.prefix(), f, owner))
                .collect();
            let mut call = self.bump.prepare_invoke();
            for k in &keys {
                call.key(k);
            }
            call.arg(fresh_start()).arg(GENERATION_TTL_SECS);
            let invoke = |mut c: redis::aio::ConnectionManager| async move {
                call.invoke_async::<Vec<u64>>(&mut c).await
            };
            let done = if retry {
                link.call_unguarded(invoke).await
            } else {
                link.call(invoke).await
            };
            if let Some(values) = done {
                let mut pending = self.pending();
                for (&family, g) in families.iter().zip(values) {
                    self.known.insert((family, owner), g);
                    if pending.get(&(family, owner)) == Some(&attempt) {
                        pending.remove(&(family, owner));
                    }
                }
            }
        }
    }

    /// Retries the invalidations that have not reached Redis yet.
    pub(super) async fn flush(&self, link: &RedisLink) {
        let waiting: Vec<(Family, ObjectId)> = self.pending().keys().copied().collect();
        if !waiting.is_empty() {
            self.bump_as(link, &waiting, true).await;
        }
    }

    /// How many invalidations wait for Redis.
    pub(super) fn pending_count(&self) -> usize {
        self.pending().len()
    }
}

/// One generation read alone.
async fn read_one(link: &RedisLink, key: &str) -> Read {
    let get = redis::cmd("GET").arg(key).to_owned();
    link.call(|mut c| async move { get.query_async::<Option<u64>>(&mut c).await })
        .await
}

/// One round trip reading every generation asked (each key once), within half a call's bound:
/// an ask may wait for the round trip in flight before its own, and both must fit in the bound
/// a read waits for its generation; a slower round trip counts as slow on the breaker. Each
/// key's value is read on its own, so one unreadable counter fails only its own asks.
async fn read_batch(link: Arc<RedisLink>, metrics: Arc<Metrics>, asked: Vec<String>) -> Vec<Read> {
    let mut keys: Vec<&str> = asked.iter().map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("GET").arg(*key);
    }
    let values = link
        .call_within(link.timeout() / 2, |mut c| {
            metrics.cache_generation_reads.inc();
            async move { pipe.query_async::<Vec<redis::Value>>(&mut c).await }
        })
        .await
        .filter(|values| values.len() == keys.len());
    let values: Option<Vec<Read>> = values.map(|values| {
        values
            .into_iter()
            .map(|v| <Option<u64> as redis::FromRedisValue>::from_redis_value(v).ok())
            .collect()
    });
    asked
        .iter()
        .map(|key| {
            let values = values.as_ref()?;
            let at = keys.binary_search(&key.as_str()).ok()?;
            values.get(at).copied().flatten()
        })
        .collect()
}
