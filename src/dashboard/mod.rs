//! Dashboard (SPEC section 3): the therapist's day and month at a glance, computed by MongoDB
//! aggregations (bookings in one `$facet` round trip, payments in another), read from
//! secondaries where the replica set has them. "Today" and the month are the therapist's own
//! (their zone); the independent reads run concurrently.

pub mod clients;
pub mod docs;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, Utc};
use mongodb::bson::{doc, DateTime};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::extract::Therapist;
use crate::availability::store::AvailabilityStore;
use crate::bookings::busy::occupancy_of;
use crate::bookings::model::status_counts;
use crate::bookings::store::BookingStore;
use crate::cache::family::Family;
use crate::clients::store::ClientStore;
use crate::db::Db;
use crate::error::ApiResult;
use crate::http::envelope;
use crate::money::Cents;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/dashboard", get(dashboard))
        .route("/api/dashboard/therapist", get(dashboard))
}

/// Today's bookings (with their clients) and the next appointment, how many are to come, and
/// counts by status.
async fn bookings_today(
    db: &Db,
    me: &Therapist,
    today: &str,
) -> ApiResult<(Vec<Value>, Option<Value>, i64, Value)> {
    let store = BookingStore::new(db);
    let glance = store.glance(&me.scope(), today).await?;
    let mut shown = glance.today;
    let today_count = shown.len();
    let has_next = glance.next.is_some();
    shown.extend(glance.next);
    let mut views = store.views(&shown).await?;
    let next_view = if has_next { views.pop() } else { None };
    views.truncate(today_count);
    Ok((
        views,
        next_view,
        glance.upcoming,
        status_counts(&glance.by_status),
    ))
}

/// Active and all client records of the therapist.
async fn client_counts(db: &Db, me: &Therapist) -> ApiResult<(u64, u64)> {
    Ok(ClientStore::new(db).counts(&me.scope()).await?)
}

/// Today's bookings, next appointment, counts, revenue, clients, occupancy and rating.
#[utoipa::path(get, path = "/api/dashboard", tag = "dashboard",
    security(("therapist" = [])),
    responses((status = 200, body = crate::http::docs::Data<crate::dashboard::docs::Summary>)))]
pub async fn dashboard(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    let fill = || async { Ok(envelope::ok_body(summary(&state, &me).await?)) };
    state.cache.json(Family::Dashboard, me.0.id, "", fill).await
}

/// Today, the month and the practice at a glance, in the therapist's time zone (every read
/// on the primary: the answer is cached).
async fn summary(state: &AppState, me: &Therapist) -> ApiResult<Value> {
    let db = state.db.fresh();
    let (schedule, zone) = AvailabilityStore::new(&state.db)
        .schedule_in_zone(me.0.id)
        .await?;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let today_str = today.format("%Y-%m-%d").to_string();
    let month_start = today.with_day(1).unwrap_or(today);
    let since = DateTime::from_chrono(crate::time::day_bounds(zone, month_start).0);
    let month_end = crate::payments::month_end(today);
    let (bookings, (month, monthly), (active, total_clients), occupancy, (reviews, rating, _)) = tokio::try_join!(
        bookings_today(&db, me, &today_str),
        crate::payments::revenue(&db, me.0.id, since, today),
        client_counts(&db, me),
        occupancy_of(state, me.0.id, &schedule, zone, month_start, month_end),
        crate::reviews::summary(&db, me.0.id),
    )?;
    let (views, next_view, upcoming, status_counts) = bookings;
    Ok(json!({
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
    }))
}
