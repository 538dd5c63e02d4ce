//! Loading end to end: defaults, file and environment layers, errors and redaction.

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
    assert!(
        c.worker.enabled && !c.worker.reap_claims,
        "test.toml sends emails, reaps nothing"
    );
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

#[test]
fn environment_values_take_the_type_of_the_key_they_replace() {
    let c = load(&[
        ("DHARA_WORKER__ENABLED", "off"),
        ("DHARA_HTTP__TIMEOUTS__CRUD_SECONDS", "2.5"),
        (
            "DHARA_CORS__ALLOWED_ORIGINS",
            "https://a.example, https://b.example,",
        ),
    ])
    .unwrap();
    assert!(!c.worker.enabled);
    assert_eq!(c.http.timeouts.crud_seconds, 2.5);
    assert_eq!(c.cors.allowed_origins, ["https://a.example", "https://b.example"]);
    let e = load(&[("DHARA_WORKER__ENABLED", "maybe")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("worker.enabled") && e.contains("true or false"), "{e}");
    let e = load(&[("DHARA_HTTP__TIMEOUTS", "3")]).unwrap_err().to_string();
    assert!(e.contains("cannot set a whole section"), "{e}");
    let e = load(&[("DHARA_NOPE__KEY", "1")]).unwrap_err().to_string();
    assert!(
        e.contains("nope.key") && e.contains("names no configuration section"),
        "{e}"
    );
    let e = load(&[("DHARA_ENV", "../etc")]).unwrap_err().to_string();
    assert!(e.contains("`env`"), "{e}");
}
