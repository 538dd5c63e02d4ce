//! Email (SPEC section 4): an outbox in MongoDB that every email goes through. Booking changes
//! and account actions arm jobs with deterministic ids (`arm`), workers claim due jobs under a
//! lease and send them through SMTP after asking again whether they are still warranted
//! (`send`), templates render them (`compose`), and each booking's emails are visible to its
//! therapist (`GET /api/bookings/:id/emails`).

pub mod arm;
pub mod compose;
pub mod model;
pub mod plan;
pub mod send;
pub mod store;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::app::AppState;
use crate::auth::extract::Therapist;
use crate::bookings::list::load;
use crate::error::ApiResult;
use crate::http::envelope;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/bookings/{id}/emails", get(booking_emails))
}

/// Every email of one of the therapist's bookings: kind, due time, state, attempts, last error.
#[utoipa::path(get, path = "/api/bookings/{id}/emails", tag = "bookings",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::BookingEmails>)))]
pub async fn booking_emails(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let booking = load(&state, &me, &id).await?;
    let jobs = store::EmailStore::new(&state.db).of_booking(booking.id).await?;
    let emails: Vec<_> = jobs.iter().map(model::EmailJob::view).collect();
    Ok(envelope::ok(
        json!({ "bookingId": booking.id.to_hex(), "emails": emails }),
    ))
}
