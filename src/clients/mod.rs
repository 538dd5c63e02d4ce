//! Clients (SPEC section 3): a therapist's client records.

pub mod model;
pub mod store;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Datelike;
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use serde_json::json;

use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::db::Page;
use crate::db::{as_i64, facet_counts, facet_first};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::{ApiQuery, ValidatedJson};
use model::{
    Client, ClientListQuery, ClientSort, ClientStatus, ClientView, CreateClient, SortOrder, UpdateClient,
};
use store::{status_str, ClientStore};

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/clients", get(list).post(create))
        .route("/api/clients/stats", get(stats))
        .route("/api/clients/tags", get(tags))
        .route("/api/clients/{id}", get(get_one).put(update).delete(remove))
}

fn email_taken() -> ApiError {
    ApiError::conflict("CLIENT_EXISTS", "You already have a client with this email")
}

/// Lists the caller's clients (search, status, tags, sort, page or cursor).
#[utoipa::path(get, path = "/api/clients", tag = "clients", responses((status = 200), (status = 400)))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<ClientListQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let mut filter = Document::new();
    if let Some(s) = q.status {
        filter.insert("status", status_str(s));
    }
    if let Some(search) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if search.chars().count() > 100 {
            return Err(ApiError::field("search", "must be at most 100 characters"));
        }
        let pattern = regex_escape(search);
        filter.insert(
            "$or",
            vec![
                doc! { "name": { "$regex": &pattern, "$options": "i" } },
                doc! { "email": { "$regex": &pattern, "$options": "i" } },
                doc! { "phone": { "$regex": &pattern, "$options": "i" } },
            ],
        );
    }
    if let Some(tags) = q.tags.as_deref() {
        let list: Vec<&str> = tags.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
        if !list.is_empty() {
            filter.insert("tags", doc! { "$in": list });
        }
    }
    let (field, default_desc) = match q.sort_by.unwrap_or(ClientSort::CreatedAt) {
        ClientSort::Name => ("name", false),
        ClientSort::CreatedAt => ("createdAt", true),
        ClientSort::UpdatedAt => ("updatedAt", true),
    };
    let descending = q.sort_order.map_or(default_desc, |o| o == SortOrder::Desc);
    let (docs, total, next_cursor) = ClientStore::new(&state.db)
        .list(me.scope().filter(filter), field, descending, &page)
        .await?;
    let clients = docs
        .into_iter()
        .map(mongodb::bson::from_document::<Client>)
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<_> = clients.iter().map(|c| c.id).collect();
    let activity = ClientStore::new(&state.db).activity(&ids).await?;
    let items: Vec<ClientView> = clients
        .iter()
        .map(|c| ClientView::from(c).with_activity(&activity.get(&c.id).cloned().unwrap_or_default()))
        .collect();
    let pages = page.total_pages(total);
    Ok(Json(json!({
        "success": true,
        "data": items,
        "pagination": {
            "currentPage": page.page, "totalPages": pages, "totalItems": total,
            "itemsPerPage": page.limit, "hasNextPage": page.page < pages, "hasPrevPage": page.page > 1,
            "nextCursor": next_cursor,
        },
    }))
    .into_response())
}

/// Escapes user text for use inside a regular expression.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\^$.|?*+()[]{}/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Creates a client; with an email, invites them to the booking site.
#[utoipa::path(post, path = "/api/clients", tag = "clients", request_body = CreateClient,
    responses((status = 201), (status = 400), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(req): ValidatedJson<CreateClient>,
) -> ApiResult<Response> {
    let now = DateTime::now();
    let client = Client {
        id: ObjectId::new(),
        therapist_id: me.0.id,
        user_id: None,
        name: req.name.trim().to_owned(),
        email: req.email,
        phone: req.phone,
        age: req.age,
        address: req.address,
        emergency_contact: req.emergency_contact,
        notes: req.notes,
        tags: normalize_tags(req.tags),
        preferences: req.preferences.unwrap_or_default(),
        status: ClientStatus::Active,
        created_at: now,
        updated_at: now,
    };
    match ClientStore::new(&state.db).insert(&client).await {
        Err(e) if crate::db::is_duplicate_key(&e) => return Err(email_taken()),
        other => other?,
    }
    let client = match &client.email {
        Some(email) => crate::auth::service::invite_client(&state, &client, email).await?,
        None => client,
    };
    Ok(envelope::created(ClientView::from(&client)))
}

/// Tags trimmed, without empties, sorted and unique (clients and session notes alike).
pub fn normalize_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = tags
        .into_iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One client with their most recent bookings.
#[utoipa::path(get, path = "/api/clients/{id}", tag = "clients", responses((status = 200), (status = 404)))]
pub async fn get_one(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let scope = me.scope();
    let client = ClientStore::new(&state.db)
        .get(&scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Client"))?;
    let recent = crate::bookings::store::BookingStore::new(&state.db)
        .recent_for_client(&scope, id, 5)
        .await?;
    let mut view = serde_json::to_value(ClientView::from(&client)).map_err(anyhow::Error::from)?;
    view["recentBookings"] = json!(recent);
    Ok(envelope::ok(view))
}

/// Partial update; an email another of the caller's clients has is a 409.
#[utoipa::path(put, path = "/api/clients/{id}", tag = "clients", request_body = UpdateClient,
    responses((status = 200), (status = 400), (status = 404), (status = 409)))]
pub async fn update(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    ValidatedJson(req): ValidatedJson<UpdateClient>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let mut set = doc! { "updatedAt": DateTime::now() };
    if let Some(v) = req.name {
        set.insert("name", v.trim());
    }
    if let Some(v) = req.email {
        set.insert("email", v);
    }
    if let Some(v) = req.phone {
        set.insert("phone", v);
    }
    if let Some(v) = req.age {
        set.insert("age", v);
    }
    if let Some(v) = req.address {
        set.insert("address", v);
    }
    if let Some(v) = req.emergency_contact {
        set.insert("emergencyContact", mongodb::bson::to_bson(&v)?);
    }
    if let Some(v) = req.notes {
        set.insert("notes", v);
    }
    if let Some(v) = req.tags {
        set.insert("tags", normalize_tags(v));
    }
    if let Some(v) = req.preferences {
        set.insert("preferences", mongodb::bson::to_bson(&v)?);
    }
    if let Some(v) = req.status {
        set.insert("status", status_str(v));
    }
    let updated = match ClientStore::new(&state.db).update(&me.scope(), id, set).await {
        Err(e) if crate::db::is_duplicate_key(&e) => return Err(email_taken()),
        other => other?,
    };
    let client = updated.ok_or_else(|| ApiError::not_found("Client"))?;
    Ok(envelope::ok(ClientView::from(&client)))
}

/// Soft delete (status `inactive`); refused while the client has upcoming bookings.
#[utoipa::path(delete, path = "/api/clients/{id}", tag = "clients", responses((status = 200), (status = 404), (status = 409)))]
pub async fn remove(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let scope = me.scope();
    let store = ClientStore::new(&state.db);
    store
        .get(&scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Client"))?;
    if store.has_upcoming_bookings(&scope, id).await? {
        return Err(ApiError::conflict(
            "CLIENT_HAS_UPCOMING_BOOKINGS",
            "Cancel or complete this client's upcoming bookings first",
        ));
    }
    let set = doc! { "status": "inactive", "updatedAt": DateTime::now() };
    let client = store
        .update(&scope, id, set)
        .await?
        .ok_or_else(|| ApiError::not_found("Client"))?;
    Ok(
        Json(json!({ "success": true, "message": "Client deactivated", "data": ClientView::from(&client) }))
            .into_response(),
    )
}

/// Counts of the caller's clients.
#[utoipa::path(get, path = "/api/clients/stats", tag = "clients", responses((status = 200)))]
pub async fn stats(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    // "This month" is the therapist's month, not UTC's.
    let zone = crate::availability::store::AvailabilityStore::new(&state.db)
        .zone(me.0.id)
        .await?;
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let month_start = DateTime::from_chrono(crate::time::day_bounds(zone, first).0);
    let d = ClientStore::new(&state.db)
        .stats(&me.scope(), month_start)
        .await?;
    let count = |facet: &str| facet_first(&d, facet).get("n").and_then(as_i64).unwrap_or(0);
    let by_status = facet_counts(&d, "byStatus");
    let (active, inactive) = (
        by_status.get("active").copied().unwrap_or(0),
        by_status.get("inactive").copied().unwrap_or(0),
    );
    let total = active + inactive;
    Ok(envelope::ok(json!({
        "total": total,
        "active": active,
        "inactive": inactive,
        "newThisMonth": count("newThisMonth"),
        "withEmail": count("withEmail"),
        "withAccount": count("linked"),
    })))
}

/// The caller's tags with their use counts.
#[utoipa::path(get, path = "/api/clients/tags", tag = "clients", responses((status = 200)))]
pub async fn tags(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    let rows = ClientStore::new(&state.db).tags(&me.scope()).await?;
    let tags: Vec<serde_json::Value> = rows
        .iter()
        .filter_map(|r| {
            Some(json!({ "tag": r.get_str("_id").ok()?, "count": r.get("count").and_then(as_i64)? }))
        })
        .collect();
    Ok(envelope::ok(tags))
}
