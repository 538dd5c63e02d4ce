//! Start-up validation of what the types alone cannot check: ranges, URL schemes, the
//! production rules. Each failure names its key; secrets are never echoed.

use secrecy::ExposeSecret;

use super::layers::default_jwt_secret;
use super::{Config, ConfigError};

impl Config {
    /// Checks the ranges, schemes and production rules; the first failure names its key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let h = &self.http;
        ensure(h.max_in_flight >= 1, "http.max_in_flight", "must be at least 1")?;
        ensure(
            h.json_body_limit_bytes >= 1024,
            "http.json_body_limit_bytes",
            "must be at least 1024",
        )?;
        ensure(
            (3..=3600).contains(&h.idempotency_lease_seconds),
            "http.idempotency_lease_seconds",
            "must be between 3 and 3600",
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
        let c = &self.cache;
        for (name, f) in c.families() {
            ensure(
                (1..=86_400).contains(&f.ttl_seconds),
                &format!("cache.{name}.ttl_seconds"),
                "must be between 1 and 86400",
            )?;
            ensure(
                f.max_entries >= 1,
                &format!("cache.{name}.max_entries"),
                "must be at least 1",
            )?;
            ensure(
                f.max_bytes >= 1 << 16 && f.max_bytes >= f.max_entries,
                &format!("cache.{name}.max_bytes"),
                "must be at least 65536 and at least max_entries",
            )?;
        }
        ensure(
            c.breaker_failures >= 1,
            "cache.breaker_failures",
            "must be at least 1",
        )?;
        ensure(
            c.breaker_open_ms >= 100,
            "cache.breaker_open_ms",
            "must be at least 100",
        )?;
        let e = &self.emails;
        ensure(e.batch_size >= 1, "emails.batch_size", "must be at least 1")?;
        ensure(
            (1..=256).contains(&e.concurrency),
            "emails.concurrency",
            "must be between 1 and 256",
        )?;
        ensure(e.max_attempts >= 1, "emails.max_attempts", "must be at least 1")?;
        ensure(
            e.poll_interval_ms >= 10,
            "emails.poll_interval_ms",
            "must be at least 10",
        )?;
        ensure(
            e.smtp_timeout_seconds >= 1 && e.lease_seconds >= 2 * e.smtp_timeout_seconds + 5,
            "emails.lease_seconds",
            "must be at least twice emails.smtp_timeout_seconds plus 5 (a send must end inside its lease)",
        )?;
        ensure(
            e.backoff_base_ms >= 1 && e.backoff_base_ms <= e.backoff_max_ms,
            "emails.backoff_base_ms",
            "must be at least 1 and at most emails.backoff_max_ms",
        )?;
        let d = &self.documents;
        ensure(
            (1024..=1 << 34).contains(&d.max_file_bytes),
            "documents.max_file_bytes",
            "must be between 1024 and 17179869184",
        )?;
        ensure(
            d.quota_bytes >= d.max_file_bytes,
            "documents.quota_bytes",
            "must be at least documents.max_file_bytes",
        )?;
        ensure(
            (1024..=1 << 27).contains(&d.max_image_bytes),
            "documents.max_image_bytes",
            "must be between 1024 and 134217728",
        )?;
        ensure(
            d.media_base_url.is_empty()
                || d.media_base_url.starts_with("https://")
                || d.media_base_url.starts_with("http://"),
            "documents.media_base_url",
            "must be empty or an http(s):// URL",
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

fn ensure(ok: bool, key: &str, message: impl Into<String>) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(key, message))
    }
}
