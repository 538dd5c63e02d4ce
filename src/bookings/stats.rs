//! Questions about the therapist's calendar: counts, revenue and rates over a range (local
//! dates of the therapist's zone), and whether a time is free of their bookings.

use axum::extract::State;
use axum::response::Response;
use chrono::Datelike;
use mongodb::bson::{DateTime, Document};
use serde_json::{json, Value};

use super::model::status_counts;
use super::place::place;
use super::query::{day, CheckQuery, RangeQuery};
use super::store::BookingStore;
use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::availability::store::AvailabilityStore;
use crate::db::{as_i64, facet_counts, facet_first};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ApiQuery;
use crate::http::query::date_bound;

/// The end of an open range, as stored dates compare.
const OPEN_END: &str = "9999-12-31";

/// Counts, revenue and rates over a date range.
#[utoipa::path(get, path = "/api/bookings/statistics", tag = "bookings",
    security(("therapist" = [])),
    params(ApiQuery<super::query::RangeQuery>),
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::BookingStatistics>), (status = 404, description = "`therapistId` is another therapist")))]
pub async fn statistics(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    crate::http::query::own_therapist(q.therapist_id.as_deref(), me.0.id)?;
    let zone = AvailabilityStore::new(&state.db).zone(me.0.id).await?;
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let month_start = today.with_day(1).unwrap_or(today);
    let from = date_bound(&[("startDate", &q.start_date)])?
        .map(|b| b.local_day(zone))
        .unwrap_or(month_start);
    let to = date_bound(&[("endDate", &q.end_date)])?.map(|b| b.local_day(zone));
    if to.is_some_and(|t| t < from) {
        return Err(ApiError::field("endDate", "must not be before startDate"));
    }
    let (from, to) = (day(from), to.map(day).unwrap_or_else(|| OPEN_END.to_owned()));
    let facets = BookingStore::new(&state.db)
        .statistics(&me.scope(), &from, &to)
        .await?;
    Ok(envelope::ok(statistics_view(&facets, from, to)))
}

/// The statistics answer from the aggregation's facets.
fn statistics_view(d: &Document, from: String, to: String) -> Value {
    let by_status = facet_counts(d, "byStatus");
    let n = |k: &str| by_status.get(k).copied().unwrap_or(0);
    let first = |facet: &str, field: &str| facet_first(d, facet).get(field).cloned();
    let revenue = first("revenue", "cents").as_ref().and_then(as_i64).unwrap_or(0);
    let clients = first("clients", "n").as_ref().and_then(as_i64).unwrap_or(0);
    let avg = first("duration", "avg").and_then(|b| b.as_f64().or_else(|| as_i64(&b).map(|i| i as f64)));
    let total: i64 = by_status.values().sum();
    let finished = n("completed") + n("no_show");
    json!({
        "totalBookings": total,
        "completedBookings": n("completed"),
        "upcomingBookings": n("upcoming") + n("pending"),
        "cancelledBookings": n("cancelled"),
        "noShowBookings": n("no_show"),
        "totalRevenue": crate::money::Cents(revenue).to_major(),
        "activeUniqueClients": clients,
        "completionRate": if finished > 0 { (n("completed") as f64 * 1000.0 / finished as f64).round() / 10.0 } else { 0.0 },
        "avgSessionDuration": avg.map(|a| (a * 10.0).round() / 10.0).unwrap_or(0.0),
        "statusCounts": status_counts(&by_status),
        "period": { "startDate": from, "endDate": if to == OPEN_END { None } else { Some(to) } },
    })
}

/// Whether a time is free of the caller's bookings (advisory: creation decides).
#[utoipa::path(get, path = "/api/bookings/check-availability", tag = "bookings",
    security(("therapist" = [])),
    params(ApiQuery<super::query::CheckQuery>),
    responses((status = 200, body = crate::http::docs::Data<crate::bookings::docs::TimeCheck>)))]
pub async fn check_availability(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<CheckQuery>,
) -> ApiResult<Response> {
    let (schedule, zone) = AvailabilityStore::new(&state.db)
        .schedule_in_zone(me.0.id)
        .await?;
    let p = place(zone, &q.date, &q.start_time, &q.end_time)?;
    let exclude = q
        .exclude_booking_id
        .as_deref()
        .map(|e| parse_id(e, "excludeBookingId"))
        .transpose()?;
    let (start, end) = (
        DateTime::from_chrono(p.starts_at),
        DateTime::from_chrono(p.ends_at),
    );
    let found = BookingStore::new(&state.db)
        .in_the_way(me.0.id, start, end, schedule.buffer_minutes, exclude)
        .await?;
    let conflicts: Vec<_> = found
        .iter()
        .map(|b| json!({ "id": b.id.to_hex(), "date": b.date, "startTime": b.start_time, "endTime": b.end_time }))
        .collect();
    Ok(envelope::ok(
        json!({ "available": conflicts.is_empty(), "requested": p.interval(), "conflicts": conflicts }),
    ))
}
