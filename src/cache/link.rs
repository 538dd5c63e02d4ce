//! Every Redis call of the response cache goes through one breaker and one timeout (the
//! shorter of `redis.response_timeout_ms` and `cache.breaker_slow_ms`): a failed, timed-out or
//! refused call answers `None` and the caller falls back at once.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use super::breaker::{Breaker, BreakerConfig, BreakerState};
use super::redis::RedisHandle;
use crate::metrics::Metrics;

/// The cache's way to Redis.
pub(super) struct RedisLink {
    redis: RedisHandle,
    /// The deployment's key prefix (computed once: every read uses it).
    prefix: String,
    breaker: Breaker,
    /// A call slower than the breaker's threshold counts as failed: it is not waited beyond.
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl RedisLink {
    pub(super) fn new(redis: RedisHandle, breaker: BreakerConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            timeout: redis.response_timeout().min(breaker.slow),
            prefix: redis.key(""),
            redis,
            breaker: Breaker::new(breaker),
            metrics,
        }
    }

    /// Whether a Redis is configured at all (without one, this instance's generations are the
    /// only ones, and its process entries are trusted for their whole TTL).
    pub(super) fn configured(&self) -> bool {
        self.redis.configured()
    }

    /// The longest one call is waited for.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The key prefix of this deployment.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// One call under the breaker and the timeout; `None` when not attempted or failed.
    pub(super) async fn call<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.call_within(self.timeout, f).await
    }

    /// `call` bounded by `limit` when that is shorter than the usual bound (a call that then
    /// runs out counts as failed).
    pub(super) async fn call_within<T, F, Fut>(&self, limit: Duration, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.redis.conn()?;
        let allowed = self.breaker.allow(Instant::now());
        self.publish_state();
        if !allowed {
            return None;
        }
        self.attempt(limit.min(self.timeout), conn, f).await
    }

    /// One call whatever the breaker says (background retries, which no request waits on);
    /// its outcome still counts, so a success closes the breaker.
    pub(super) async fn call_unguarded<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.redis.conn()?;
        self.attempt(self.timeout, conn, f).await
    }

    /// One call cut at `limit`, its outcome recorded on the breaker.
    async fn attempt<T, F, Fut>(&self, limit: Duration, conn: ConnectionManager, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let outcome = tokio::time::timeout(limit, f(conn)).await;
        let ok = matches!(outcome, Ok(Ok(_)));
        self.breaker.record(ok, started.elapsed(), Instant::now());
        self.publish_state();
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

    /// Where the breaker stands (open while a configured Redis is not connected yet).
    pub(super) fn state(&self) -> BreakerState {
        if self.redis.configured() && self.redis.conn().is_none() {
            return BreakerState::Open;
        }
        self.breaker.state()
    }

    /// Called around calls, which have a connection: the breaker alone says where it stands.
    fn publish_state(&self) {
        let state = self.breaker.state().as_gauge();
        self.metrics.cache_breaker_state.set(state);
    }
}
