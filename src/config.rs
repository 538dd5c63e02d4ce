//! Layered configuration: embedded defaults, then `config/<DHARA_ENV>.toml`, then environment.
//!
//! Every key can be set by environment as `DHARA_<SECTION>__<KEY>` (nested sections joined by
//! `__`); the fixed names of SPEC section 6 (`PORT`, `MONGODB_URI`, ...) map to their keys.
//! The merged document is validated once at start-up; errors name the offending key and never
//! print a secret's value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use toml::{Table, Value};

const DEFAULTS: &str = include_str!("../config/default.toml");
const DEFAULT_ENV: &str = "development";

/// Fixed environment names from SPEC section 6 and the key each sets.
const FIXED_ENV: &[(&str, &str)] = &[
    ("PORT", "http.port"),
    ("MONGODB_URI", "mongodb.uri"),
    ("MONGODB_DATABASE", "mongodb.database"),
    ("REDIS_URL", "redis.url"),
    ("JWT_SECRET", "auth.jwt_secret"),
    ("SMTP_URL", "mail.smtp_url"),
    ("RUST_LOG", "log.level"),
];

/// Keys whose values are secrets: never echoed in errors or logs.
const SECRET_KEYS: &[&str] = &["mongodb.uri", "redis.url", "auth.jwt_secret", "mail.smtp_url"];

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// The whole service configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The environment name (`development`, `test`, `production`, ...), from `DHARA_ENV`.
    #[serde(default)]
    pub env: String,
    pub http: HttpConfig,
    pub cors: CorsConfig,
    pub mongodb: MongoConfig,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub bookings: BookingsConfig,
    pub payments: PaymentsConfig,
    pub mail: MailConfig,
    pub worker: WorkerConfig,
    pub log: LogConfig,
}

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
    pub trusted_proxies: Vec<std::net::IpAddr>,
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

impl Config {
    /// Loads from the process environment and `./config` (or `DHARA_CONFIG_DIR`).
    pub fn load() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let dir = env
            .get("DHARA_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Self::load_from(&env, &dir)
    }

    /// Loads from an explicit environment map and config folder (used by tests).
    pub fn load_from(env: &HashMap<String, String>, config_dir: &Path) -> Result<Self, ConfigError> {
        let mut merged: Table = DEFAULTS.parse().map_err(|e: toml::de::Error| ConfigError::File {
            path: PathBuf::from("<embedded defaults>"),
            message: e.message().to_owned(),
        })?;
        let env_name = env
            .get("DHARA_ENV")
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| DEFAULT_ENV.to_owned());
        if !env_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::invalid("env", "DHARA_ENV must be a plain name"));
        }
        let file = config_dir.join(format!("{env_name}.toml"));
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let layer: Table = text.parse().map_err(|e: toml::de::Error| ConfigError::File {
                    path: file.clone(),
                    message: e.message().to_owned(),
                })?;
                merge(&mut merged, layer);
            }
            // The default environment may run on embedded defaults alone; a named one must exist
            // so that a typo in DHARA_ENV cannot silently run production on development settings.
            Err(_) if env_name == DEFAULT_ENV => {}
            Err(e) => {
                return Err(ConfigError::File {
                    path: file,
                    message: format!("cannot read it for DHARA_ENV={env_name}: {e}"),
                })
            }
        }
        merged.insert("env".into(), Value::String(env_name));
        apply_env(&mut merged, env)?;
        let config: Config = serde_path_to_error::deserialize(Value::Table(merged)).map_err(|e| {
            let key = e.path().to_string();
            let message = if SECRET_KEYS.contains(&key.as_str()) {
                "invalid value".to_owned()
            } else {
                e.inner().to_string()
            };
            ConfigError::Invalid { key, message }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Whether this is the production environment (stricter validation).
    pub fn is_production(&self) -> bool {
        self.env == "production"
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let h = &self.http;
        ensure(h.max_in_flight >= 1, "http.max_in_flight", "must be at least 1")?;
        ensure(
            h.json_body_limit_bytes >= 1024,
            "http.json_body_limit_bytes",
            "must be at least 1024",
        )?;
        let t = &h.timeouts;
        for (key, v) in [
            ("http.timeouts.auth_seconds", t.auth_seconds),
            ("http.timeouts.crud_seconds", t.crud_seconds),
            ("http.timeouts.search_seconds", t.search_seconds),
            ("http.timeouts.upload_seconds", t.upload_seconds),
            ("http.timeouts.analytics_seconds", t.analytics_seconds),
        ] {
            ensure(
                (0.01..=600.0).contains(&v),
                key,
                "must be between 0.01 and 600 seconds",
            )?;
        }
        for origin in &self.cors.allowed_origins {
            let ok = origin == "*" || origin.starts_with("http://") || origin.starts_with("https://");
            ensure(
                ok,
                "cors.allowed_origins",
                format!("`{origin}` is not an http(s) origin or *"),
            )?;
            ensure(
                !(origin == "*" && self.is_production()),
                "cors.allowed_origins",
                "* is not allowed in production",
            )?;
        }
        let m = &self.mongodb;
        let uri = m.uri.expose_secret();
        ensure(
            uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://"),
            "mongodb.uri",
            "must start with mongodb:// or mongodb+srv://",
        )?;
        ensure(
            !m.database.is_empty()
                && m.database.len() <= 63
                && !m.database.contains(['/', '\\', '.', ' ', '"', '$', '\0']),
            "mongodb.database",
            "must be a valid MongoDB database name",
        )?;
        ensure(
            m.max_pool_size >= 1,
            "mongodb.max_pool_size",
            "must be at least 1",
        )?;
        ensure(
            m.min_pool_size <= m.max_pool_size,
            "mongodb.min_pool_size",
            "must not exceed mongodb.max_pool_size",
        )?;
        ensure(
            (1..=86_400).contains(&m.index_check_seconds),
            "mongodb.index_check_seconds",
            "must be between 1 and 86400",
        )?;
        ensure(
            m.server_selection_timeout_ms >= 100,
            "mongodb.server_selection_timeout_ms",
            "must be at least 100",
        )?;
        let redis = self.redis.url.expose_secret();
        ensure(
            redis.is_empty()
                || ["redis://", "rediss://", "unix://"]
                    .iter()
                    .any(|p| redis.starts_with(p)),
            "redis.url",
            "must be empty or start with redis://, rediss:// or unix://",
        )?;
        let secret = self.auth.jwt_secret.expose_secret();
        ensure(
            secret.len() >= 32,
            "auth.jwt_secret",
            "must be at least 32 bytes long",
        )?;
        ensure(
            !(self.is_production() && secret == default_jwt_secret()),
            "auth.jwt_secret",
            "the development default cannot be used in production: set JWT_SECRET",
        )?;
        ensure(
            (60..=86_400).contains(&self.auth.access_ttl_seconds),
            "auth.access_ttl_seconds",
            "must be between 60 and 86400",
        )?;
        ensure(
            (1..=365).contains(&self.auth.refresh_ttl_days),
            "auth.refresh_ttl_days",
            "must be between 1 and 365",
        )?;
        ensure(
            self.auth.hash_concurrency <= 1024,
            "auth.hash_concurrency",
            "must be between 0 (one per core) and 1024",
        )?;
        ensure(
            self.auth.hash_queue <= 100_000,
            "auth.hash_queue",
            "must be between 0 and 100000",
        )?;
        let r = &self.rate_limit;
        for (key, l) in [
            ("rate_limit.login_ip", r.login_ip),
            ("rate_limit.login_account", r.login_account),
            ("rate_limit.lockout", r.lockout),
            ("rate_limit.refresh_ip", r.refresh_ip),
            ("rate_limit.refresh_account", r.refresh_account),
            ("rate_limit.forgot_ip", r.forgot_ip),
            ("rate_limit.forgot_account", r.forgot_account),
            ("rate_limit.register_ip", r.register_ip),
            ("rate_limit.public_ip", r.public_ip),
        ] {
            ensure(
                l.max >= 1 && (1..=86_400).contains(&l.window_seconds),
                key,
                "needs max >= 1 and 1..86400 seconds",
            )?;
        }
        let f = &self.payments.fees;
        for (key, rule) in [
            ("payments.fees.card", f.card),
            ("payments.fees.stripe", f.stripe),
            ("payments.fees.paypal", f.paypal),
            ("payments.fees.transfer", f.transfer),
            ("payments.fees.cash", f.cash),
            ("payments.fees.other", f.other),
        ] {
            ensure(
                rule.percent_bps <= 5_000,
                key,
                "percent_bps must be at most 5000 (50 %)",
            )?;
        }
        let smtp = self.mail.smtp_url.expose_secret();
        ensure(
            smtp.is_empty() || smtp.starts_with("smtp://") || smtp.starts_with("smtps://"),
            "mail.smtp_url",
            "must be empty or start with smtp:// or smtps://",
        )?;
        ensure(
            tracing_subscriber::EnvFilter::try_new(&self.log.level).is_ok(),
            "log.level",
            "is not a valid log filter",
        )?;
        Ok(())
    }
}

fn default_jwt_secret() -> String {
    let table: Table = DEFAULTS.parse().unwrap_or_default();
    table
        .get("auth")
        .and_then(|a| a.get("jwt_secret"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn ensure(ok: bool, key: &str, message: impl Into<String>) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(key, message))
    }
}

/// Deep-merges `layer` into `base`: tables merge, anything else replaces.
fn merge(base: &mut Table, layer: Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(l)) => merge(b, l),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Applies environment overrides; each value is parsed as the type of the key's default.
fn apply_env(merged: &mut Table, env: &HashMap<String, String>) -> Result<(), ConfigError> {
    let mut overrides: Vec<(String, String, String)> = Vec::new();
    for (name, key) in FIXED_ENV {
        if let Some(v) = env.get(*name) {
            overrides.push((name.to_string(), key.to_string(), v.clone()));
        }
    }
    let mut generic: Vec<_> = env
        .iter()
        .filter_map(|(name, v)| {
            let rest = name.strip_prefix("DHARA_")?;
            if rest == "ENV" || rest == "CONFIG_DIR" || !rest.contains("__") {
                return None;
            }
            let key = rest
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            Some((name.clone(), key, v.clone()))
        })
        .collect();
    generic.sort();
    overrides.extend(generic);
    for (name, key, raw) in overrides {
        set_key(merged, &name, &key, &raw)?;
    }
    Ok(())
}

fn set_key(root: &mut Table, name: &str, key: &str, raw: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, sections) = parts
        .split_last()
        .ok_or_else(|| ConfigError::invalid(key, "empty key"))?;
    let mut table = root;
    for section in sections {
        table = match table.get_mut(*section) {
            Some(Value::Table(t)) => t,
            _ => {
                return Err(ConfigError::invalid(
                    key,
                    format!("{name} names no configuration section"),
                ))
            }
        };
    }
    let current = table
        .get(*last)
        .ok_or_else(|| ConfigError::invalid(key, format!("{name} names no configuration key")))?;
    let secret = SECRET_KEYS.contains(&key);
    let bad = |what: &str| {
        let shown = if secret {
            String::new()
        } else {
            format!(" (got `{raw}`)")
        };
        ConfigError::invalid(key, format!("{name} must be {what}{shown}"))
    };
    let value = match current {
        Value::String(_) => Value::String(raw.to_owned()),
        Value::Integer(_) => Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?),
        Value::Float(_) => Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?),
        Value::Boolean(_) => Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(bad("true or false")),
        }),
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => {
            return Err(ConfigError::invalid(
                key,
                format!("{name} cannot set a whole section"),
            ))
        }
    };
    table.insert((*last).to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_from(&env, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config")))
    }

    #[test]
    fn embedded_defaults_are_valid() {
        let c = load(&[]).expect("defaults load");
        assert_eq!(c.env, "development");
        assert_eq!(c.http.max_in_flight, 500);
        assert_eq!(c.mongodb.max_pool_size, 20);
        assert_eq!(c.mongodb.min_pool_size, 5);
    }

    #[test]
    fn environment_overrides_file_and_defaults() {
        let c = load(&[
            ("PORT", "6001"),
            ("DHARA_HTTP__MAX_QUEUED", "7"),
            ("DHARA_ENV", "test"),
        ])
        .unwrap();
        assert_eq!(c.http.port, 6001);
        assert_eq!(c.http.max_queued, 7);
        assert_eq!(c.log.level, "warn", "test.toml applies");
        assert!(!c.worker.enabled);
    }

    #[test]
    fn errors_name_the_key_and_hide_secrets() {
        let e = load(&[("PORT", "eighty")]).unwrap_err().to_string();
        assert!(e.contains("http.port") && e.contains("PORT"), "{e}");
        let e = load(&[("JWT_SECRET", "short-secret-value")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.jwt_secret"), "{e}");
        assert!(!e.contains("short-secret-value"), "{e}");
        let e = load(&[("MONGODB_URI", "postgres://user:hunter2@x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mongodb.uri") && !e.contains("hunter2"), "{e}");
        let e = load(&[("DHARA_HTTP__NO_SUCH_KEY", "1")]).unwrap_err().to_string();
        assert!(e.contains("http.no_such_key"), "{e}");
        let e = load(&[("DHARA_MONGODB__MIN_POOL_SIZE", "50")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mongodb.min_pool_size"), "{e}");
    }

    #[test]
    fn production_rejects_development_secret_and_unknown_env_file() {
        let e = load(&[("DHARA_ENV", "production")]).unwrap_err().to_string();
        assert!(e.contains("auth.jwt_secret"), "{e}");
        let e = load(&[("DHARA_ENV", "prodution")]).unwrap_err().to_string();
        assert!(e.contains("prodution.toml"), "{e}");
        let ok = load(&[("DHARA_ENV", "production"), ("JWT_SECRET", &"x".repeat(40))]).unwrap();
        assert!(ok.is_production());
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let c = load(&[("JWT_SECRET", "a-very-long-secret-that-must-never-print-0001")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("a-very-long-secret"), "{shown}");
    }
}
