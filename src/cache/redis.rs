//! Redis connection that never blocks start-up: it connects in the background and the
//! connection manager reconnects by itself. Callers treat "not connected" as "Redis down" and
//! fall back to in-process state.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::config::RedisConfig;

/// A possibly-absent, possibly-not-yet-connected Redis.
#[derive(Clone)]
pub struct RedisHandle {
    prefix: String,
    configured: bool,
    conn: Arc<OnceCell<ConnectionManager>>,
    response_timeout: Duration,
}

/// What `/ready` reports for Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStatus {
    Disabled,
    Up,
    Down,
}

impl RedisStatus {
    /// The word shown in `/ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

impl RedisHandle {
    /// Starts connecting in the background (until `shutdown`); returns at once.
    pub fn start(cfg: &RedisConfig, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let url = cfg.url.expose_secret();
        let handle = Self {
            prefix: cfg.prefix.clone(),
            configured: !url.is_empty(),
            conn: Arc::new(OnceCell::new()),
            response_timeout: Duration::from_millis(cfg.response_timeout_ms),
        };
        if !handle.configured {
            return Ok(handle);
        }
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis.url is invalid: {:?}", e.kind()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(cfg.connect_timeout_ms)))
            .set_response_timeout(Some(handle.response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let cell = handle.conn.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                let attempt = client.get_connection_manager_with_config(config.clone());
                let result = tokio::select! {
                    r = attempt => r,
                    _ = shutdown.cancelled() => return,
                };
                match result {
                    Ok(manager) => {
                        let _ = cell.set(manager);
                        tracing::info!("connected to Redis");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Redis not reachable")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        });
        Ok(handle)
    }

    /// The key prefix of this instance's keys (`dhara:` by default; per test in tests).
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
    }

    /// Whether a Redis URL is configured (connected or not).
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// A connection when Redis is configured and connected.
    pub fn conn(&self) -> Option<ConnectionManager> {
        self.conn.get().cloned()
    }

    /// The longest any Redis call should be waited for.
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// Pings Redis.
    pub async fn status(&self) -> RedisStatus {
        if !self.configured {
            return RedisStatus::Disabled;
        }
        let Some(mut conn) = self.conn() else {
            return RedisStatus::Down;
        };
        let ping = redis::cmd("PING");
        match tokio::time::timeout(self.response_timeout, ping.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => RedisStatus::Up,
            _ => RedisStatus::Down,
        }
    }
}
