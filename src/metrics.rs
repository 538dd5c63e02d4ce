//! Prometheus metrics with the capacity plan's names, labels and buckets.
//!
//! One registry per `App` (not the global default), so several apps in one test process do not
//! share counters.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The plan's latency buckets (seconds).
pub const HTTP_BUCKETS: &[f64] = &[0.1, 0.3, 0.5, 0.7, 1.0, 3.0, 5.0, 7.0, 10.0];

/// All metrics of one instance.
pub struct Metrics {
    registry: Registry,
    /// `http_request_duration_seconds{method,route,status_code}`.
    pub http_duration: HistogramVec,
    /// Requests being processed now.
    pub http_in_flight: IntGauge,
    /// Requests waiting for an in-flight slot.
    pub http_queued: IntGauge,
    /// Requests refused by admission control or timed out, by reason.
    pub http_rejected: IntCounterVec,
    /// `mongodb_queries_total{collection,operation,status}`.
    pub mongo_queries: IntCounterVec,
    /// `mongodb_connections_active`: connections checked out of the pool.
    pub mongo_connections_active: IntGauge,
    /// Connections open in the pool.
    pub mongo_connections_open: IntGauge,
    /// `cache_hits_total{layer,family}` (`memory`, `redis`).
    pub cache_hits: IntCounterVec,
    /// `cache_misses_total{layer,family}`.
    pub cache_misses: IntCounterVec,
    /// `cache_fills_total{family}`: responses computed from MongoDB for the cache.
    pub cache_fills: IntCounterVec,
    /// `cache_evictions_total{layer,family,cause}` (`size`, `expired`).
    pub cache_evictions: IntCounterVec,
    /// `cache_invalidations_total{family}`: (family, owner) pairs made stale by writes.
    pub cache_invalidations: IntCounterVec,
    /// `cache_redis_breaker_state`: 0 closed, 1 open, 2 half-open.
    pub cache_breaker_state: IntGauge,
    /// `cache_generation_reads_total`: Redis round trips reading generations (each answers
    /// every read that asked while the one before it was in flight).
    pub cache_generation_reads: IntCounter,
    /// `cache_pending_invalidations`: invalidations not yet in Redis (set at each scrape).
    pub cache_pending_invalidations: IntGauge,
    /// `cache_entries{family}`: entries held in process (set at each scrape).
    pub cache_entries: IntGaugeVec,
    /// `cache_bytes{family}`: weighed bytes held in process (set at each scrape).
    pub cache_bytes: IntGaugeVec,
    /// `email_reminder_lag_seconds`: from a reminder's due time to the SMTP server's acceptance.
    pub reminder_lag: Histogram,
    /// `emails_sent_total{kind}`: accepted by the SMTP server.
    pub emails_sent: IntCounterVec,
    /// `emails_failed_total{kind}`: attempts that failed (retried later or dead).
    pub emails_failed: IntCounterVec,
    /// `emails_dead_total{kind}`: jobs given up after their last attempt.
    pub emails_dead: IntCounterVec,
    /// `emails_cancelled_total{kind}`: jobs found unwarranted when their time came.
    pub emails_cancelled: IntCounterVec,
    /// `email_queue_depth`: jobs due and not claimed (set by the workers).
    pub email_queue_depth: IntGauge,
}

impl Metrics {
    /// Builds and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Duration of HTTP requests in seconds",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["method", "route", "status_code"],
        )
        .expect("static metric definition");
        let http_in_flight =
            IntGauge::new("http_requests_in_flight", "HTTP requests being processed").expect("static");
        let http_queued =
            IntGauge::new("http_requests_queued", "HTTP requests waiting for a slot").expect("static");
        let http_rejected = IntCounterVec::new(
            Opts::new(
                "http_requests_rejected_total",
                "HTTP requests refused or timed out",
            ),
            &["reason"],
        )
        .expect("static");
        let mongo_queries = IntCounterVec::new(
            Opts::new("mongodb_queries_total", "Total number of MongoDB queries"),
            &["collection", "operation", "status"],
        )
        .expect("static");
        let mongo_connections_active =
            IntGauge::new("mongodb_connections_active", "Active MongoDB connections").expect("static");
        let mongo_connections_open =
            IntGauge::new("mongodb_connections_open", "Open MongoDB connections in the pool")
                .expect("static");
        let cache_hits = IntCounterVec::new(
            Opts::new("cache_hits_total", "Cache hits per layer and family"),
            &["layer", "family"],
        )
        .expect("static");
        let cache_misses = IntCounterVec::new(
            Opts::new("cache_misses_total", "Cache misses per layer and family"),
            &["layer", "family"],
        )
        .expect("static");
        let cache_fills = IntCounterVec::new(
            Opts::new(
                "cache_fills_total",
                "Responses computed from MongoDB for the cache",
            ),
            &["family"],
        )
        .expect("static");
        let cache_evictions = IntCounterVec::new(
            Opts::new("cache_evictions_total", "Cache entries evicted, by cause"),
            &["layer", "family", "cause"],
        )
        .expect("static");
        let cache_invalidations = IntCounterVec::new(
            Opts::new(
                "cache_invalidations_total",
                "Cached families made stale by writes",
            ),
            &["family"],
        )
        .expect("static");
        let cache_pending_invalidations = IntGauge::new(
            "cache_pending_invalidations",
            "Cache invalidations this instance could not write to Redis yet (retried)",
        )
        .expect("static");
        let cache_entries = IntGaugeVec::new(
            Opts::new("cache_entries", "Response cache entries held in process"),
            &["family"],
        )
        .expect("static");
        let cache_bytes = IntGaugeVec::new(
            Opts::new(
                "cache_bytes",
                "Weighed bytes of the response cache held in process",
            ),
            &["family"],
        )
        .expect("static");
        let cache_breaker_state = IntGauge::new(
            "cache_redis_breaker_state",
            "Redis circuit breaker of the cache: 0 closed, 1 open, 2 half-open",
        )
        .expect("static");
        let cache_generation_reads = IntCounter::new(
            "cache_generation_reads_total",
            "Redis round trips reading cache generations (one answers many reads under load)",
        )
        .expect("static");
        let reminder_lag = Histogram::with_opts(
            HistogramOpts::new(
                "email_reminder_lag_seconds",
                "Seconds from a reminder's due time to its acceptance by the SMTP server",
            )
            .buckets(vec![0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0]),
        )
        .expect("static metric definition");
        let by_kind = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["kind"]).expect("static metric definition")
        };
        let emails_sent = by_kind("emails_sent_total", "Emails accepted by the SMTP server");
        let emails_failed = by_kind("emails_failed_total", "Email attempts that failed");
        let emails_dead = by_kind("emails_dead_total", "Emails given up after their last attempt");
        let emails_cancelled = by_kind(
            "emails_cancelled_total",
            "Emails not sent because their booking no longer warranted them",
        );
        let email_queue_depth =
            IntGauge::new("email_queue_depth", "Email jobs due and not claimed").expect("static");
        let metrics = Self {
            registry,
            http_duration,
            http_in_flight,
            http_queued,
            http_rejected,
            mongo_queries,
            mongo_connections_active,
            mongo_connections_open,
            cache_hits,
            cache_misses,
            cache_fills,
            cache_evictions,
            cache_invalidations,
            cache_breaker_state,
            cache_generation_reads,
            cache_pending_invalidations,
            cache_entries,
            cache_bytes,
            reminder_lag,
            emails_sent,
            emails_failed,
            emails_dead,
            emails_cancelled,
            email_queue_depth,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.http_duration.clone()),
            Box::new(self.http_in_flight.clone()),
            Box::new(self.http_queued.clone()),
            Box::new(self.http_rejected.clone()),
            Box::new(self.mongo_queries.clone()),
            Box::new(self.mongo_connections_active.clone()),
            Box::new(self.mongo_connections_open.clone()),
            Box::new(self.cache_hits.clone()),
            Box::new(self.cache_misses.clone()),
            Box::new(self.cache_fills.clone()),
            Box::new(self.cache_evictions.clone()),
            Box::new(self.cache_invalidations.clone()),
            Box::new(self.cache_breaker_state.clone()),
            Box::new(self.cache_generation_reads.clone()),
            Box::new(self.cache_pending_invalidations.clone()),
            Box::new(self.cache_entries.clone()),
            Box::new(self.cache_bytes.clone()),
            Box::new(self.reminder_lag.clone()),
            Box::new(self.emails_sent.clone()),
            Box::new(self.emails_failed.clone()),
            Box::new(self.emails_dead.clone()),
            Box::new(self.emails_cancelled.clone()),
            Box::new(self.email_queue_depth.clone()),
        ];
        for c in collectors {
            // A fresh registry holds no duplicates; failure here is a programming error.
            self.registry.register(c).expect("unique metric names");
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
