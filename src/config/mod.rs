//! Layered configuration: embedded defaults, then `config/<DHARA_ENV>.toml`, then environment.
//!
//! Every key can be set by environment as `DHARA_<SECTION>__<KEY>` (nested sections joined by
//! `__`); the fixed names of SPEC section 6 (`PORT`, `MONGODB_URI`, ...) map to their keys.
//! The merged document is validated once at start-up; errors name the offending key and never
//! print a secret's value.
//!
//! `sections` holds the typed settings, `layers` builds the merged document from its sources,
//! `validate` checks what types alone cannot.

mod layers;
mod sections;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Value;

pub use sections::*;

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
    pub cache: CacheConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub bookings: BookingsConfig,
    pub payments: PaymentsConfig,
    pub mail: MailConfig,
    pub worker: WorkerConfig,
    pub emails: EmailsConfig,
    pub documents: DocumentsConfig,
    pub log: LogConfig,
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
        let merged = layers::merged(env, config_dir)?;
        let config: Config = serde_path_to_error::deserialize(Value::Table(merged)).map_err(|e| {
            let key = e.path().to_string();
            let message = if layers::is_secret(&key) {
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
}
