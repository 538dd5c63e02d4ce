//! The therapist's work locations as the availability page reads them (from the profile, where
//! the dashboard edits them), and the external-calendar status of that page: no calendar
//! integration exists, so it always reports none connected.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, Document};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ApiQuery;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/work-locations/therapist", get(list))
        .route(
            "/api/availability/{therapist_id}/external-calendar-status",
            get(external_calendar_status),
        )
}

/// Which locations to list.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    #[default]
    All,
    Active,
    Inactive,
}

crate::http::docs::text_schema!(
    /// `therapistId` of the locations: `current`, `me` or the caller's id (another's: 404);
    /// empty: the caller.
    LocationOwner = "LocationOwner",
    crate::http::docs::string().pattern(Some("^([0-9a-fA-F]{24}|current|me)?$"))
);

/// `GET /api/work-locations/therapist` query; other parameters are ignored.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocationsQuery {
    #[serde(rename = "therapistId", alias = "therapist_id")]
    #[param(value_type = Option<LocationOwner>)]
    pub therapist_id: Option<String>,
    #[param(schema_with = crate::http::docs::accepts::<StatusFilter>)]
    pub status: Option<StatusFilter>,
    #[serde(alias = "includeSchedule")]
    pub include_schedule: Option<bool>,
    /// No per-location statistics exist; accepted and ignored.
    #[serde(alias = "includeStatistics")]
    #[allow(dead_code)]
    pub include_statistics: Option<bool>,
}

/// `current` or the caller's own id; any other therapist's id is a 404 (ids are not probed).
fn own_id(me: &Therapist, raw: Option<&str>, field: &str) -> ApiResult<ObjectId> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None | Some("current") | Some("me") => Ok(me.0.id),
        Some(raw) if parse_id(raw, field)? == me.0.id => Ok(me.0.id),
        Some(_) => Err(ApiError::not_found("Therapist")),
    }
}

/// The caller's work locations (from their profile), each with an `id` and `status`.
#[utoipa::path(get, path = "/api/work-locations/therapist", tag = "profile",
    security(("therapist" = [])),
    params(ApiQuery<LocationsQuery>),
    responses((status = 200, body = crate::http::docs::Data<Locations>), (status = 404, description = "`therapistId` is another therapist")))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<LocationsQuery>,
) -> ApiResult<Response> {
    let id = own_id(&me, q.therapist_id.as_deref(), "therapistId")?;
    let profile = crate::profile::load_or_create(&state, id).await?;
    let filter = q.status.unwrap_or_default();
    let with_schedule = q.include_schedule.unwrap_or(true);
    let locations: Vec<Value> = profile
        .work_locations
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, l)| location_view(i, l, with_schedule))
        .filter(|l| match filter {
            StatusFilter::All => true,
            StatusFilter::Active => l["isActive"] == true,
            StatusFilter::Inactive => l["isActive"] == false,
        })
        .collect();
    let total = locations.len();
    Ok(envelope::ok(json!({ "locations": locations, "total": total })))
}

/// A stored location as the dashboard reads it: as the profile keeps it, plus `id`/`_id`
/// (its position for locations saved without one), `isActive` and `status`.
fn location_view(index: usize, stored: &Document, with_schedule: bool) -> Value {
    let mut v = Bson::Document(stored.clone()).into_relaxed_extjson();
    let id = match stored.get("id") {
        Some(Bson::String(s)) if !s.is_empty() => s.clone(),
        _ => index.to_string(),
    };
    let active = stored.get_bool("isActive").unwrap_or(true);
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(id));
        o.insert("_id".into(), json!(id));
        o.insert("isActive".into(), json!(active));
        o.insert("status".into(), json!(if active { "active" } else { "inactive" }));
        if !with_schedule {
            o.remove("schedule");
        }
    }
    v
}

/// No external calendar is connected (no integration exists yet).
#[utoipa::path(get, path = "/api/availability/{therapist_id}/external-calendar-status", tag = "availability",
    security(("therapist" = [])),
    params(("therapist_id" = crate::http::docs::TherapistRef, Path, description = "The caller's id, `current` or `me`")),
    responses((status = 200, body = crate::http::docs::Data<CalendarStatus>)))]
pub async fn external_calendar_status(
    me: Therapist,
    Path(therapist_id): Path<String>,
) -> ApiResult<Response> {
    own_id(&me, Some(&therapist_id), "therapistId")?;
    Ok(envelope::ok(json!({
        "connected": false, "isConnected": false, "provider": null, "providers": [], "connectedProviders": {},
        "calendars": [], "lastSync": null, "lastSyncAt": null, "syncEnabled": false, "status": "disconnected",
    })))
}

/// `GET /api/work-locations/therapist` data.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // a schema description
struct Locations {
    locations: Vec<LocationView>,
    total: u64,
}

/// A work location as the profile keeps it (`name`, `address`, `schedule`...), plus these.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct LocationView {
    /// Its id, or its position for locations saved without one.
    id: String,
    #[serde(rename = "_id")]
    underscore_id: String,
    is_active: bool,
    #[schema(pattern = "^(active|inactive)$")]
    status: String,
}

/// No external calendar is connected.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct CalendarStatus {
    connected: bool,
    is_connected: bool,
    status: String,
}
