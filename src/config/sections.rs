//! The typed sections of the configuration, one struct per `[section]` of
//! `config/default.toml`. Unknown keys are refused (`deny_unknown_fields`) so a misspelt
//! setting is an error, not a silent default; secrets are `SecretString` (redacted `Debug`).

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// HTTP listener, admission control and timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub host: String,
    pub port: u16,
    pub max_in_flight: usize,
    pub max_queued: usize,
    pub json_body_limit_bytes: usize,
    pub shutdown_grace_seconds: u64,
    /// How long a keyed write's claim on its `Idempotency-Key` outlives its last renewal
    /// (renewed every third of it while the write runs): how long a retry of a write whose
    /// instance died waits before running it again.
    pub idempotency_lease_seconds: u64,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve the API reference (Swagger UI) at `/api/docs`; off in production.
    pub api_docs: bool,
    pub timeouts: TimeoutConfig,
}

/// Per-class request timeouts (capacity plan, section 2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConfig {
    pub auth_seconds: f64,
    pub crud_seconds: f64,
    pub search_seconds: f64,
    pub upload_seconds: f64,
    pub analytics_seconds: f64,
}

/// Cross-origin policy for the dashboard and booking site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    pub allowed_origins: Vec<String>,
    pub max_age_seconds: u64,
}

/// MongoDB connection and pool settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    pub uri: SecretString,
    pub database: String,
    pub max_pool_size: u32,
    pub min_pool_size: u32,
    pub max_idle_seconds: u64,
    pub server_selection_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub replace_changed_indexes: bool,
    /// Seconds between checks that the declared indexes still exist (re-created if missing).
    pub index_check_seconds: u64,
}

/// The two-layer response cache (README, "Caches").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: bool,
    /// While Redis cannot be reached, process entries older than this are read again.
    pub outage_trust_ms: u64,
    /// Consecutive failed (or slower than `breaker_slow_ms`) Redis calls that open the breaker.
    pub breaker_failures: u32,
    pub breaker_slow_ms: u64,
    /// How long the breaker stays open before one probe.
    pub breaker_open_ms: u64,
    pub user: CacheFamilyConfig,
    pub bookings: CacheFamilyConfig,
    pub clients: CacheFamilyConfig,
    pub dashboard: CacheFamilyConfig,
    pub availability: CacheFamilyConfig,
    pub notifications: CacheFamilyConfig,
    pub reviews: CacheFamilyConfig,
    pub profile: CacheFamilyConfig,
}

/// One key family of the response cache.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFamilyConfig {
    /// How long an entry lives, in both layers.
    pub ttl_seconds: u64,
    /// Bounds of the process layer: entries and bytes (key plus body) each instance keeps.
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl CacheConfig {
    /// Every family's settings, by name, in `cache::family::Family::ALL` order.
    pub fn families(&self) -> [(&'static str, CacheFamilyConfig); 8] {
        [
            ("user", self.user),
            ("bookings", self.bookings),
            ("clients", self.clients),
            ("dashboard", self.dashboard),
            ("availability", self.availability),
            ("notifications", self.notifications),
            ("reviews", self.reviews),
            ("profile", self.profile),
        ]
    }
}

/// Redis connection; an empty URL disables the Redis layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: SecretString,
    pub prefix: String,
    pub connect_timeout_ms: u64,
    pub response_timeout_ms: u64,
}

/// Token lifetimes and signing secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_secret: SecretString,
    pub access_ttl_seconds: u64,
    pub refresh_ttl_days: u64,
    pub reset_token_ttl_minutes: u64,
    /// Password hashes run at once (0: one per core).
    pub hash_concurrency: usize,
    /// Password hashes waiting for a turn; beyond that 503.
    pub hash_queue: usize,
}

/// Booking rules that are operator settings rather than per-therapist ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingsConfig {
    pub client_cancel_hours: u64,
    /// Days a time claim outlives its time; bookings ending earlier than that are refused.
    pub claim_retention_days: u32,
}

/// Payment processing settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    pub fees: FeeTable,
}

/// The fee rule of each payment method.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeTable {
    pub card: FeeRule,
    pub stripe: FeeRule,
    pub paypal: FeeRule,
    pub transfer: FeeRule,
    pub cash: FeeRule,
    pub other: FeeRule,
}

/// `amount * percent_bps / 10000 + fixed_cents`, never more than the amount.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeRule {
    pub percent_bps: u32,
    pub fixed_cents: u32,
}

/// Brute-force limits (see `config/default.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub login_ip: Limit,
    pub login_account: Limit,
    pub lockout: Limit,
    pub refresh_ip: Limit,
    pub refresh_account: Limit,
    pub forgot_ip: Limit,
    pub forgot_account: Limit,
    pub register_ip: Limit,
    pub public_ip: Limit,
}

/// At most `max` events per `window_seconds`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub max: u32,
    pub window_seconds: u64,
}

/// Outgoing email; an empty SMTP URL writes messages as files under `file_dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub smtp_url: SecretString,
    pub file_dir: PathBuf,
    pub from: String,
    pub public_base_url: String,
}

/// Background worker toggle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub enabled: bool,
    /// Frees time claims no booking uses.
    pub reap_claims: bool,
    /// Sends the email outbox and re-arms bookings whose emails were not armed.
    pub send_emails: bool,
    /// Removes the files of deleted documents after their grace period, and of uploads that
    /// never finished.
    pub purge_files: bool,
    /// `dhara worker` serves `/health`, `/ready` and `/metrics` on this port (on `http.host`);
    /// 0: none. (`dhara serve` exports the worker's metrics on its own port.)
    pub metrics_port: u16,
}

/// The email outbox: how workers claim and send, retry, and when reminders are too late.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailsConfig {
    /// Jobs one worker claims and sends per pass before looking at the clock again.
    pub batch_size: u32,
    /// Sends in flight at once per worker.
    pub concurrency: u32,
    /// Pause between passes when nothing was due.
    pub poll_interval_ms: u64,
    /// How long a claim is the claimer's alone; past it, another worker takes the job over.
    pub lease_seconds: u64,
    /// Longest a single SMTP exchange may take (must stay well inside the lease).
    pub smtp_timeout_seconds: u64,
    /// Attempts before a job is `dead`.
    pub max_attempts: u32,
    /// Backoff after the first failure, doubled per attempt (with jitter) up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// A reminder later than this past its time is not sent (the session may be over).
    pub reminder_max_late_minutes: u64,
    /// A booking whose emails were not armed this long after its write is re-armed by the
    /// reconciler (the writer crashed between the two).
    pub reconcile_after_seconds: u64,
}

/// Log level filter and output format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Documents, avatars and banners (files in GridFS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentsConfig {
    /// Largest document file, in bytes (413 at the byte that crosses it).
    pub max_file_bytes: u64,
    /// Bytes of live documents one therapist may keep (413 `STORAGE_QUOTA_EXCEEDED` beyond).
    pub quota_bytes: u64,
    /// A deleted document's file is removed this many hours after the delete.
    pub purge_after_hours: u64,
    /// Largest avatar or banner image, in bytes.
    pub max_image_bytes: u64,
    /// Prefix of the public links to avatars and banners (empty: the path `/api/media/<id>`).
    pub media_base_url: String,
}
