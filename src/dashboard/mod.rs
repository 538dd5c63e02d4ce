//! Dashboard (SPEC section 3): the therapist's day and month at a glance, computed by MongoDB
//! aggregations (bookings in one `$facet` round trip, payments in another), read from
//! secondaries where the replica set has them.

pub mod clients;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};
use serde_json::json;

use crate::app::AppState;
use crate::auth::extract::Therapist;
use crate::availability::store::AvailabilityStore;
use crate::bookings::model::Booking;
use crate::bookings::store::BookingStore;
use crate::db::as_i64;
use crate::error::ApiResult;
use crate::http::envelope;
use crate::money::Cents;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/dashboard", get(dashboard))
        .route("/api/dashboard/therapist", get(dashboard))
}

/// Today's bookings, next appointment, counts, revenue, clients, occupancy and rating.
#[utoipa::path(get, path = "/api/dashboard", tag = "dashboard", responses((status = 200)))]
pub async fn dashboard(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    let scope = me.scope();
    let schedule = AvailabilityStore::new(&state.db).schedule(me.0.id).await?;
    let zone = crate::time::parse_zone(&schedule.timezone).map_err(|_| {
        crate::error::ApiError::Internal(anyhow::anyhow!(
            "invalid stored time zone `{}`",
            schedule.timezone
        ))
    })?;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let today_str = today.format("%Y-%m-%d").to_string();
    let now = DateTime::now();
    let coming = doc! { "status": { "$in": ["pending", "upcoming"] }, "startsAt": { "$gte": now } };
    let pipeline = vec![
        doc! { "$match": scope.filter(doc! {}) },
        doc! { "$facet": {
            "today": [ { "$match": { "date": &today_str } }, { "$sort": { "startsAt": 1 } }, { "$limit": 100 } ],
            "next": [ { "$match": coming.clone() }, { "$sort": { "startsAt": 1 } }, { "$limit": 1 } ],
            "upcoming": [ { "$match": coming }, { "$count": "n" } ],
            "byStatus": [ { "$group": { "_id": "$status", "n": { "$sum": 1 } } } ],
        } },
    ];
    let facets = state
        .db
        .analytics()
        .collection::<Document>("bookings")
        .aggregate(pipeline)
        .await?
        .try_next()
        .await?
        .unwrap_or_default();
    let bookings_of = |key: &str| -> Result<Vec<Booking>, mongodb::bson::de::Error> {
        facets
            .get_array(key)
            .into_iter()
            .flatten()
            .filter_map(|b| b.as_document().cloned())
            .map(mongodb::bson::from_document::<Booking>)
            .collect()
    };
    let mut shown = bookings_of("today")?;
    let next = bookings_of("next")?;
    let today_count = shown.len();
    shown.extend(next.iter().cloned());
    let mut views = BookingStore::new(&state.db).views(&shown).await?;
    let next_view = if next.is_empty() { None } else { views.pop() };
    views.truncate(today_count);
    let upcoming = crate::db::facet_first(&facets, "upcoming")
        .get("n")
        .and_then(as_i64)
        .unwrap_or(0);
    let status_counts = crate::bookings::model::status_counts(&crate::db::facet_counts(&facets, "byStatus"));

    let month_start = today.with_day(1).unwrap_or(today);
    let since = DateTime::from_chrono(crate::time::day_bounds(zone, month_start).0);
    let (month, monthly) = crate::payments::revenue(&state, me.0.id, since, today).await?;
    let clients = state.db.analytics().collection::<Document>("clients");
    let active = clients
        .count_documents(scope.filter(doc! { "status": "active" }))
        .await?;
    let total_clients = clients.count_documents(scope.filter(doc! {})).await?;
    let month_end = crate::payments::month_end(today);
    let occupancy =
        crate::availability::occupancy_of(&state, me.0.id, &schedule, month_start, month_end).await?;
    let (reviews, rating, _) = crate::reviews::summary(&state, me.0.id).await?;

    Ok(envelope::ok(json!({
        "date": today_str,
        "timezone": zone.name(),
        "todayBookings": views,
        "nextAppointment": next_view,
        "upcomingCount": upcoming,
        "revenueThisMonth": Cents(month.amount - month.refunded).to_major(),
        "monthlyRevenue": monthly,
        "activeClients": active,
        "totalClients": total_clients,
        "occupancyRate": occupancy.rate(),
        "statusCounts": status_counts,
        "ratingAverage": rating,
        "totalReviews": reviews,
    })))
}
