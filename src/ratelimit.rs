//! Fixed-window counters shared by every instance through Redis, with an in-process fallback
//! while Redis is unreachable (limits then hold per instance instead of globally).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::redis::RedisHandle;
use crate::config::Limit;
use crate::error::ApiError;

/// Increments a counter, starting its window on first use; returns (count, ms left).
const HIT: &str = r"
local c = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {c, ttl}
";

/// Reads a counter without changing it; returns (count, ms left).
const PEEK: &str = r"
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
return {c, ttl}
";

/// Decrements a counter that exists and is above zero.
const GIVE_BACK: &str = r"
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c > 0 then return redis.call('DECR', KEYS[1]) end
return 0
";

struct Window {
    count: u32,
    ends: Instant,
}

/// The shared limiter.
pub struct RateLimiter {
    enabled: bool,
    redis: RedisHandle,
    local: moka::sync::Cache<String, Arc<Mutex<Window>>>,
    hit: redis::Script,
    peek: redis::Script,
    give_back: redis::Script,
}

impl RateLimiter {
    /// A limiter keyed under the Redis prefix.
    pub fn new(redis: RedisHandle, enabled: bool) -> Self {
        Self {
            enabled,
            redis,
            local: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(Duration::from_secs(86_400))
                .build(),
            hit: redis::Script::new(HIT),
            peek: redis::Script::new(PEEK),
            give_back: redis::Script::new(GIVE_BACK),
        }
    }

    /// Counts one event for `subject`; 429 when it goes over the limit.
    pub async fn hit(&self, limit: Limit, subject: &str) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let (count, left) = self.count(limit, subject, true).await;
        over_limit(limit, count, left)
    }

    /// 429 when `subject` is already at its limit (for lockouts: failures counted elsewhere).
    pub async fn check(&self, limit: Limit, subject: &str) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let (count, left) = self.count(limit, subject, false).await;
        if count >= limit.max {
            return Err(limited(left));
        }
        Ok(())
    }

    /// Counts one event without refusing anything (failures that feed a lockout).
    pub async fn record(&self, limit: Limit, subject: &str) {
        if self.enabled {
            self.count(limit, subject, true).await;
        }
    }

    /// Returns one counted event of `subject` (a reserved attempt that never took place).
    pub async fn give_back(&self, subject: &str) {
        if !self.enabled {
            return;
        }
        let key = self.redis.key(&format!("rl:{subject}"));
        if let Some(entry) = self.local.get(&key) {
            if let Ok(mut w) = entry.lock() {
                w.count = w.count.saturating_sub(1);
            }
        }
        if let Some(mut conn) = self.redis.conn() {
            let invocation = self.give_back.key(&key);
            let call = invocation.invoke_async::<i64>(&mut conn);
            let _ = tokio::time::timeout(self.redis.response_timeout(), call).await;
        }
    }

    /// Forgets `subject`'s counter (a successful sign-in clears its failures).
    pub async fn reset(&self, subject: &str) {
        let key = self.redis.key(&format!("rl:{subject}"));
        self.local.invalidate(&key);
        if let Some(mut conn) = self.redis.conn() {
            let del = redis::cmd("DEL").arg(&key).to_owned();
            let _ =
                tokio::time::timeout(self.redis.response_timeout(), del.query_async::<()>(&mut conn)).await;
        }
    }

    async fn count(&self, limit: Limit, subject: &str, increment: bool) -> (u32, Duration) {
        let key = self.redis.key(&format!("rl:{subject}"));
        let window = Duration::from_secs(limit.window_seconds);
        if let Some(mut conn) = self.redis.conn() {
            let script = if increment { &self.hit } else { &self.peek };
            let mut invocation = script.key(&key);
            invocation.arg(window.as_millis() as u64);
            let call = invocation.invoke_async::<(i64, i64)>(&mut conn);
            match tokio::time::timeout(self.redis.response_timeout(), call).await {
                Ok(Ok((count, ttl_ms))) => {
                    let left = Duration::from_millis(ttl_ms.max(0) as u64);
                    return (count.clamp(0, i64::from(u32::MAX)) as u32, left);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "rate limit: Redis failed, counting in process"),
                Err(_) => tracing::warn!("rate limit: Redis timed out, counting in process"),
            }
        }
        self.count_locally(key, window, increment)
    }

    fn count_locally(&self, key: String, window: Duration, increment: bool) -> (u32, Duration) {
        let now = Instant::now();
        let entry = self.local.get_with(key, || {
            Arc::new(Mutex::new(Window {
                count: 0,
                ends: now + window,
            }))
        });
        let Ok(mut w) = entry.lock() else {
            return (0, window);
        };
        if w.ends <= now {
            w.count = 0;
            w.ends = now + window;
        }
        if increment {
            w.count = w.count.saturating_add(1);
        }
        (w.count, w.ends.saturating_duration_since(now))
    }
}

fn over_limit(limit: Limit, count: u32, left: Duration) -> Result<(), ApiError> {
    if count > limit.max {
        Err(limited(left))
    } else {
        Ok(())
    }
}

fn limited(left: Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: left.as_secs_f64().ceil().max(1.0) as u64,
    }
}
