//! The sources of the merged configuration document and how they stack: the embedded
//! defaults, then `config/<DHARA_ENV>.toml`, then the environment (`DHARA_SECTION__KEY` and
//! the fixed SPEC names), each value parsed as the type of the key it replaces.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::ConfigError;

const DEFAULTS: &str = include_str!("../../config/default.toml");
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

/// Whether `key` (dotted) holds a secret.
pub(super) fn is_secret(key: &str) -> bool {
    SECRET_KEYS.contains(&key)
}

/// The merged document: embedded defaults, the environment's file, then environment overrides,
/// with `env` set to the environment's name.
pub(super) fn merged(env: &HashMap<String, String>, config_dir: &Path) -> Result<Table, ConfigError> {
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
    if let Some(layer) = env_file(config_dir, &env_name)? {
        merge(&mut merged, layer);
    }
    merged.insert("env".into(), Value::String(env_name));
    apply_env(&mut merged, env)?;
    Ok(merged)
}

/// The layer of `config/<env_name>.toml`. The default environment may run on embedded defaults
/// alone; a named one must exist so that a typo in DHARA_ENV cannot silently run production on
/// development settings.
fn env_file(config_dir: &Path, env_name: &str) -> Result<Option<Table>, ConfigError> {
    let file = config_dir.join(format!("{env_name}.toml"));
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let layer: Table = text.parse().map_err(|e: toml::de::Error| ConfigError::File {
                path: file.clone(),
                message: e.message().to_owned(),
            })?;
            Ok(Some(layer))
        }
        Err(_) if env_name == DEFAULT_ENV => Ok(None),
        Err(e) => Err(ConfigError::File {
            path: file,
            message: format!("cannot read it for DHARA_ENV={env_name}: {e}"),
        }),
    }
}

/// The embedded development secret (production refuses to run with it).
pub(super) fn default_jwt_secret() -> String {
    let table: Table = DEFAULTS.parse().unwrap_or_default();
    table
        .get("auth")
        .and_then(|a| a.get("jwt_secret"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
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

/// Sets one dotted `key` (named `name` in the environment) to `raw`, parsed as the type of
/// the value it replaces.
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
