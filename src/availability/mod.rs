//! Availability (SPEC section 3): a therapist's booking rules (weekly schedule), time blocks and
//! absences. What needs bookings too (free slots for the booking site, occupancy, calendar
//! events, booking as a client) lives in the bookings module, which builds on this one.

pub mod absences;
pub mod block_routes;
pub mod block_views;
pub mod blocks;
pub mod docs;
pub mod model;
pub mod open_time;
pub mod query;
pub mod recurrence;
pub mod schedule;
pub mod service;
pub mod slots;
pub mod store;

use axum::routing::{get, post, put};
use axum::Router;

use crate::app::AppState;

pub use absences::*;
pub use block_routes::*;
pub use query::public_limit;
pub use schedule::*;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/availability/schedule", get(get_schedule).put(put_schedule))
        .route("/api/availability/blocks", post(create_block))
        .route(
            "/api/availability/blocks/{id}",
            put(update_block).delete(delete_block),
        )
        .route(
            "/api/availability/exceptions",
            get(list_absences).post(create_absence),
        )
        .route(
            "/api/availability/exceptions/{id}",
            put(update_absence).delete(delete_absence),
        )
        .route("/api/availability/therapist/{id}/blocks", get(list_blocks))
}
