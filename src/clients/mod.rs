//! Clients (SPEC section 3): a therapist's client records, their invitations and their links
//! to client logins. The list and the single read embed bookings, so they are served by
//! `dashboard::clients` (as are the update and the soft delete: deactivating is refused while
//! bookings are upcoming).

pub mod account;
pub mod docs;
pub mod invitations;
pub mod linking;
pub mod model;
pub mod patch;
pub mod query;
pub mod service;
pub mod store;
pub mod validate;

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::Datelike;
use mongodb::bson::DateTime;

use crate::app::AppState;
use crate::auth::extract::Therapist;
use crate::error::ApiResult;
use crate::http::envelope;
use crate::http::extract::ValidatedJson;
use model::{ClientView, CreateClient};
use query::ClientStats;
use store::ClientStore;

pub use model::normalize_tags;
pub use query::regex_escape;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/clients", post(create))
        .route("/api/clients/stats", axum::routing::get(stats))
        .route("/api/clients/tags", axum::routing::get(tags))
        .route("/api/clients/activate", post(account::client_activate))
        .route("/api/clients/verify-email", post(account::verify_email))
        .route("/api/auth/verify-email", post(account::verify_email))
}

/// Creates a client; with an email, invites them to the booking site.
#[utoipa::path(post, path = "/api/clients", tag = "clients",
    security(("therapist" = [])),
    request_body = CreateClient,
    responses((status = 201, body = crate::http::docs::Data<ClientView>), (status = 409, description = "`CLIENT_EXISTS`: another of the caller's clients has this email")))]
pub async fn create(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(req): ValidatedJson<CreateClient>,
) -> ApiResult<Response> {
    let client = service::create(&state, &me.scope(), req).await?;
    Ok(envelope::created(ClientView::from(&client)))
}

/// Counts of the caller's clients.
#[utoipa::path(get, path = "/api/clients/stats", tag = "clients",
    security(("therapist" = [])),
    responses((status = 200, body = crate::http::docs::Data<crate::clients::query::ClientStats>)))]
pub async fn stats(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    // "This month" is the therapist's month, not UTC's.
    let zone = crate::availability::store::AvailabilityStore::new(&state.db)
        .zone(me.0.id)
        .await?;
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let month_start = DateTime::from_chrono(crate::time::day_bounds(zone, first).0);
    let counts = ClientStore::new(&state.db)
        .stats(&me.scope(), month_start)
        .await?;
    Ok(envelope::ok(ClientStats::from(counts)))
}

/// The caller's tags with their use counts.
#[utoipa::path(get, path = "/api/clients/tags", tag = "clients",
    security(("therapist" = [])),
    responses((status = 200, body = crate::http::docs::Data<Vec<crate::clients::query::TagCount>>)))]
pub async fn tags(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    Ok(envelope::ok(ClientStore::new(&state.db).tags(&me.scope()).await?))
}
