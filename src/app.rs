//! `AppState` (one `Arc<App>` built in one place) and the router with its middleware stack.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::cache::redis::RedisHandle;
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;
use crate::http::{self, limits, observe, request_id};
use crate::metrics::Metrics;

/// Everything a request handler may need.
pub struct App {
    pub config: Config,
    pub db: Db,
    pub redis: RedisHandle,
    pub metrics: Arc<Metrics>,
    pub admission: limits::Admission,
    pub hashing: crate::auth::password::HashPool,
    pub tokens: crate::auth::tokens::TokenKeys,
    /// The account check of every authenticated request (primary reads, batched).
    pub accounts: crate::auth::checks::AccountChecks,
    pub limiter: crate::ratelimit::RateLimiter,
    pub mailer: Arc<crate::mail::Mailer>,
    /// Hot reads (two layers: process and Redis).
    pub cache: Arc<crate::cache::layered::ResponseCache>,
    /// Where every write tells what it changed.
    pub events: crate::events::EventBus,
    /// Where account emails are queued (the outbox); a request fails when it cannot be.
    pub email_queue: Arc<dyn crate::events::EmailQueue>,
    pub readiness: Readiness,
    pub started: Instant,
    pub shutdown: CancellationToken,
}

/// Cheaply clonable handle on the `App`.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Start-up progress that `/ready` reports.
#[derive(Default)]
pub struct Readiness {
    indexes_synced: AtomicBool,
}

impl Readiness {
    /// Marks the declared indexes as present.
    pub fn set_indexes_synced(&self) {
        self.indexes_synced.store(true, Ordering::SeqCst);
    }

    /// Marks the declared indexes as not known to be present (a check failed).
    pub fn clear_indexes_synced(&self) {
        self.indexes_synced.store(false, Ordering::SeqCst);
    }

    /// Whether the declared indexes are present (unique ones guard correctness).
    pub fn indexes_synced(&self) -> bool {
        self.indexes_synced.load(Ordering::SeqCst)
    }
}

impl AppState {
    /// Builds the application: database client, Redis handle, metrics. Performs no blocking I/O,
    /// so it succeeds while MongoDB or Redis are still down.
    pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let db = Db::connect(&config.mongodb, metrics.clone()).await?;
        let redis = RedisHandle::start(&config.redis, shutdown.clone())?;
        let admission = limits::Admission::new(config.http.max_in_flight, config.http.max_queued);
        let hashing =
            crate::auth::password::HashPool::new(config.auth.hash_concurrency, config.auth.hash_queue);
        let tokens = crate::auth::tokens::TokenKeys::new(&config.auth);
        let accounts = crate::auth::checks::AccountChecks::start(crate::auth::store::AuthStore::new(&db));
        let limiter = crate::ratelimit::RateLimiter::new(redis.clone(), config.rate_limit.enabled);
        let smtp_timeout = Duration::from_secs(config.emails.smtp_timeout_seconds);
        let mailer = Arc::new(crate::mail::Mailer::new(&config.mail, smtp_timeout)?);
        let cache = crate::cache::layered::ResponseCache::new(
            crate::cache::layered::CacheSettings::from_config(&config.cache),
            redis.clone(),
            metrics.clone(),
        );
        let outbox = Arc::new(crate::emails::arm::Outbox::new(db.clone(), &config.emails));
        // Invalidation last: what the other subscribers wrote is part of what it makes stale.
        let events = crate::events::EventBus::new(vec![
            Arc::new(crate::notifications::subscriber::Notifier::new(db.clone())),
            outbox.clone(),
            Arc::new(crate::cache::layered::Invalidator(cache.clone())),
        ]);
        Ok(Self(Arc::new(App {
            config,
            db,
            redis,
            metrics,
            admission,
            hashing,
            tokens,
            accounts,
            limiter,
            mailer,
            cache,
            events,
            email_queue: outbox,
            readiness: Readiness::default(),
            started: Instant::now(),
            shutdown,
        })))
    }
}

/// Headers the dashboard sends on every call (SPEC section 1) plus ours.
const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "x-request-id",
    "x-client-version",
    "x-timestamp",
    "x-requested-with",
    "x-client-type",
    "if-match",
    "idempotency-key",
];

fn cors(config: &Config) -> CorsLayer {
    let origins = &config.cors.allowed_origins;
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(
            ALLOWED_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            header::ETAG,
            header::CONTENT_DISPOSITION,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
        ])
        .max_age(Duration::from_secs(config.cors.max_age_seconds));
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        layer
            .allow_origin(AllowOrigin::list(list))
            .allow_credentials(true)
    }
}

/// Refuses API traffic until the declared (unique) indexes exist: a booking written before its
/// guarding index would not be guarded.
async fn readiness_gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") && path != "/api/openapi.json" && !state.readiness.indexes_synced() {
        return ApiError::Unavailable {
            code: "NOT_READY",
            message: "The service is starting, try again shortly".into(),
            retry_after_secs: 2,
        }
        .into_response();
    }
    next.run(req).await
}

/// `X-Content-Type-Options: nosniff` on every answer, and `Cache-Control: no-store` on the API's
/// (they carry personal data: no shared or browser cache may keep them), unless a route set
/// its own caching.
async fn protective_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// The full router: every resource plus the middleware stack (innermost first below).
pub fn router(state: AppState) -> Router {
    let config = &state.config;
    let reference = if config.http.api_docs {
        crate::openapi::reference()
    } else {
        Router::new()
    };
    Router::new()
        .merge(reference)
        .merge(crate::ops::routes())
        .merge(crate::auth::routes())
        .merge(crate::clients::routes())
        .merge(crate::dashboard::clients::routes())
        .merge(crate::bookings::routes())
        .merge(crate::availability::routes())
        .merge(crate::payments::routes())
        .merge(crate::notifications::routes())
        .merge(crate::reviews::routes())
        .merge(crate::profile::routes())
        .merge(crate::dashboard::routes())
        .merge(crate::session_notes::routes())
        .merge(crate::logs::routes())
        .merge(crate::work_locations::routes())
        .merge(crate::emails::routes())
        .merge(crate::documents::routes(&state))
        .merge(crate::profile::media::routes(&state))
        .fallback(http::route_not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(config.http.json_body_limit_bytes))
        .layer(from_fn_with_state(state.clone(), limits::detach_writes))
        .layer(from_fn_with_state(state.clone(), readiness_gate))
        .layer(from_fn_with_state(state.clone(), limits::admit))
        .layer(from_fn_with_state(state.clone(), limits::timeout))
        .layer(from_fn_with_state(state.clone(), observe::observe))
        .layer(cors(config))
        .layer(from_fn(request_id::request_id))
        .layer(from_fn(protective_headers))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}
