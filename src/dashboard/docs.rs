//! The schema of the dashboard's answer (built as a JSON value): what the document promises.
#![allow(dead_code)] // a schema description, never built

use serde::Serialize;
use utoipa::ToSchema;

use crate::bookings::docs::{BookingView, StatusCounts};
use crate::clients::model::ClientView;
use crate::payments::docs::MonthRevenue;

/// `GET /api/clients/{id}`: the client with their latest bookings.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientDetail {
    #[serde(flatten)]
    client: ClientView,
    /// The latest bookings, newest first.
    recent_bookings: Vec<BookingView>,
}

/// Today, the month and the practice at a glance, in the therapist's zone.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    date: String,
    timezone: String,
    today_bookings: Vec<BookingView>,
    next_appointment: Option<BookingView>,
    upcoming_count: i64,
    revenue_this_month: f64,
    /// Revenue per month, 12 months.
    monthly_revenue: Vec<MonthRevenue>,
    active_clients: i64,
    total_clients: i64,
    occupancy_rate: f64,
    status_counts: StatusCounts,
    rating_average: Option<f64>,
    total_reviews: i64,
}
