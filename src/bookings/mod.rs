//! Bookings (SPEC section 3): the therapist's calendar, the client booking site's routes, and
//! what needs bookings and availability together (free slots, occupancy, calendar events), so
//! availability never depends on bookings.

pub mod book;
pub mod busy;
pub mod calendar;
pub mod claims;
pub mod create;
pub mod docs;
pub mod list;
pub mod model;
pub mod place;
pub mod query;
pub mod requests;
pub mod service;
pub mod site;
pub mod stats;
pub mod store;
pub mod therapist;

use axum::routing::{get, patch, post, put};
use axum::Router;

use crate::app::AppState;

pub use calendar::*;
pub use list::*;
pub use site::*;
pub use stats::*;
pub use therapist::*;

/// Routes of this module, including the booking site's and the calendar's under
/// `/api/availability/` (their paths predate the split).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/bookings", get(list).post(create))
        .route("/api/bookings/upcoming", get(upcoming))
        .route("/api/bookings/statistics", get(statistics))
        .route("/api/bookings/check-availability", get(check_availability))
        .route("/api/bookings/client", get(client_list))
        .route("/api/bookings/client/book", post(client_book))
        .route("/api/bookings/client/{id}/cancel", patch(client_cancel))
        .route("/api/bookings/{id}", get(get_one).put(update))
        .route("/api/bookings/{id}/cancel", patch(cancel))
        .route("/api/bookings/{id}/reschedule", put(reschedule))
        .route("/api/bookings/{id}/complete", put(complete))
        .route("/api/bookings/{id}/no-show", put(no_show))
        .route("/api/availability/therapist/{id}", get(slots_range))
        .route(
            "/api/availability/therapist/{id}/date/{date}",
            get(slots_for_date),
        )
        .route("/api/availability/check-slot", post(check_slot))
        .route("/api/availability/analysis/occupancy", get(occupancy))
        .route("/api/availability/calendar/events", get(calendar_events))
}
