//! Structured logging: JSON lines in production, readable lines in development. Every line of a
//! request carries its `request_id` through the request span.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber (once per process; later calls are ignored).
pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let result = match log.format {
        LogFormat::Json => fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .try_init(),
        LogFormat::Pretty => fmt().with_env_filter(filter).try_init(),
    };
    // Already installed (tests start several apps in one process): keep the first.
    let _ = result;
}
