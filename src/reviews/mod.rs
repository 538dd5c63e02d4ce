//! Reviews (SPEC section 3): clients review a completed session once; therapists read, see
//! statistics and respond.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use serde::Deserialize;
use serde_json::{json, Value};
use validator::Validate;

use crate::app::AppState;
use crate::auth::extract::{parse_id, ClientUser, Therapist};
use crate::bookings::model::BookingStatus;
use crate::bookings::store::BookingStore;
use crate::db::as_i64;
use crate::db::{page_of, Page};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::{parse_body, ApiQuery, RawBody};
use crate::http::pagination::nested;
use crate::time::rfc3339;

const REVIEWS: &str = "reviews";

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/reviews", get(list))
        .route("/api/reviews/statistics", get(statistics))
        .route("/api/reviews/create", post(create))
        .route("/api/reviews/{id}/response", post(respond))
        .route("/api/reviews/{id}/responses", post(respond))
}

/// `POST /api/reviews/create`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateReview {
    pub booking_id: String,
    #[validate(range(min = 1, max = 5, message = "must be between 1 and 5"))]
    pub rating: u8,
    #[validate(length(max = 2000))]
    pub comment: Option<String>,
}

/// `POST /api/reviews/:id/response`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Respond {
    #[validate(length(min = 1, max = 2000, message = "must be 1 to 2000 characters"))]
    pub response: String,
}

fn view(d: &Document, client: Option<&Value>) -> Value {
    let id = d.get_object_id("_id").map(|i| i.to_hex()).unwrap_or_default();
    let oid = |k: &str| d.get_object_id(k).ok().map(|i| i.to_hex());
    let response = d.get_document("response").ok().map(|r| {
        json!({ "text": r.get_str("text").unwrap_or_default(),
                "respondedAt": r.get_datetime("respondedAt").map(|t| rfc3339(*t)).unwrap_or_default() })
    });
    let mut v = json!({
        "id": id, "_id": id,
        "therapistId": oid("therapistId"), "clientId": oid("clientId"), "bookingId": oid("bookingId"),
        "client": client.cloned().unwrap_or_else(|| json!({ "id": oid("clientId"), "name": null, "avatar": null })),
        "clientName": client.and_then(|c| c.get("name")).cloned(),
        "rating": d.get("rating").and_then(as_i64).unwrap_or(0),
        "comment": d.get_str("comment").ok(),
        "status": d.get_str("status").unwrap_or("published"),
        "createdAt": d.get_datetime("createdAt").map(|t| rfc3339(*t)).unwrap_or_default(),
    });
    // The dashboard's answer form breaks on `response: null`: absent when there is none.
    if let (Some(r), Some(o)) = (response, v.as_object_mut()) {
        o.insert("response".into(), r);
    }
    v
}

/// A client reviews one of their completed sessions, once.
#[utoipa::path(post, path = "/api/reviews/create", tag = "reviews", request_body = CreateReview,
    responses((status = 201), (status = 400), (status = 404), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    me: ClientUser,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let req: CreateReview = parse_body(&headers, &body)?;
    let booking_id = parse_id(&req.booking_id, "bookingId")?;
    let booking = BookingStore::new(&state.db)
        .get_unscoped(booking_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Booking"))?;
    let record = state
        .db
        .collection::<Document>("clients")
        .find_one(doc! { "_id": booking.client_id, "userId": me.0.id })
        .await?;
    let Some(record) = record else {
        return Err(ApiError::not_found("Booking"));
    };
    if booking.status != BookingStatus::Completed {
        return Err(ApiError::BadRequest {
            code: "BOOKING_NOT_COMPLETED",
            message: "Only a completed session can be reviewed".into(),
        });
    }
    let now = DateTime::now();
    let review = doc! {
        "_id": ObjectId::new(), "therapistId": booking.therapist_id, "clientId": booking.client_id,
        "clientUserId": me.0.id, "bookingId": booking.id, "rating": i32::from(req.rating),
        "comment": req.comment, "status": "published", "createdAt": now, "updatedAt": now,
    };
    match state.db.collection::<Document>(REVIEWS).insert_one(&review).await {
        Err(e) if crate::db::is_duplicate_key(&e) => {
            return Err(ApiError::conflict(
                "REVIEW_EXISTS",
                "This session has already been reviewed",
            ))
        }
        other => other?,
    };
    if let Ok(review_id) = review.get_object_id("_id") {
        let event = crate::events::ReviewChanged {
            therapist: booking.therapist_id,
            review: review_id,
            kind: crate::events::ReviewChange::Received,
            client_name: record.get_str("name").unwrap_or("Cliente").to_owned(),
            rating: i64::from(req.rating),
        };
        state.events.emit(crate::events::Event::Review(event)).await;
    }
    let client = json!({ "id": booking.client_id.to_hex(), "name": record.get_str("name").ok(), "avatar": record.get_str("avatar").ok() });
    Ok(envelope::created(view(&review, Some(&client))))
}

/// `GET /api/reviews` query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewQuery {
    pub rating: Option<u8>,
    pub page: Option<u64>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    /// The client who wrote it (`reviewerId` in the dashboard's words).
    #[serde(
        default,
        alias = "reviewerId",
        alias = "client_id",
        alias = "reviewer_id",
        deserialize_with = "crate::http::query::non_empty"
    )]
    pub client_id: Option<String>,
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    pub status: Option<ReviewStatus>,
    #[serde(
        default,
        alias = "moderation_status",
        deserialize_with = "crate::http::query::all_or"
    )]
    pub moderation_status: Option<ReviewStatus>,
    #[serde(alias = "date_from", alias = "startDate")]
    pub date_from: Option<String>,
    #[serde(alias = "date_to", alias = "endDate")]
    pub date_to: Option<String>,
    #[serde(alias = "therapist_id")]
    pub therapist_id: Option<String>,
    #[serde(alias = "sort_order")]
    pub sort_order: Option<crate::db::SortOrder>,
}

/// Review states a list can ask for (`approved` is the dashboard's word for published).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReviewStatus {
    #[serde(alias = "approved")]
    Published,
    Pending,
    Hidden,
}

/// The caller's reviews, newest first, with each client's name (one extra query per page).
#[utoipa::path(get, path = "/api/reviews", tag = "reviews", responses((status = 200), (status = 400)))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let mut filter = Document::new();
    if let Some(r) = q.rating {
        if !(1..=5).contains(&r) {
            return Err(ApiError::field("rating", "must be between 1 and 5"));
        }
        filter.insert("rating", i32::from(r));
    }
    crate::http::query::own_therapist(q.therapist_id.as_deref(), me.0.id)?;
    if let Some(c) = &q.client_id {
        filter.insert("clientId", parse_id(c, "reviewerId")?);
    }
    match q.status.or(q.moderation_status) {
        // Reviews written before moderation existed carry no status: they are published.
        Some(ReviewStatus::Published) => {
            filter.insert("status", doc! { "$in": ["published", null] });
        }
        Some(ReviewStatus::Pending) => {
            filter.insert("status", "pending");
        }
        Some(ReviewStatus::Hidden) => {
            filter.insert("status", "hidden");
        }
        None => {}
    }
    let from = crate::http::query::date_bound(&[("dateFrom", &q.date_from)])?;
    let to = crate::http::query::date_bound(&[("dateTo", &q.date_to)])?;
    if from.is_some() || to.is_some() {
        let zone = crate::availability::store::AvailabilityStore::new(&state.db)
            .zone(me.0.id)
            .await?;
        let mut range = Document::new();
        if let Some(b) = from {
            range.insert("$gte", mongodb::bson::DateTime::from_chrono(b.start(zone)));
        }
        if let Some(b) = to {
            range.insert("$lt", mongodb::bson::DateTime::from_chrono(b.end(zone)));
        }
        filter.insert("createdAt", range);
    }
    let descending = q.sort_order.unwrap_or_default() == crate::db::SortOrder::Desc;
    let coll = state.db.collection::<Document>(REVIEWS);
    let (docs, total, next) =
        page_of(&coll, me.scope().filter(filter), "createdAt", descending, &page).await?;
    let ids: Vec<ObjectId> = docs
        .iter()
        .filter_map(|d| d.get_object_id("clientId").ok())
        .collect();
    let clients = crate::clients::store::ClientStore::new(&state.db)
        .summaries(&ids)
        .await?;
    let list: Vec<Value> = docs
        .iter()
        .map(|d| {
            let client = d
                .get_object_id("clientId")
                .ok()
                .and_then(|c| clients.get(&c))
                .map(|c| json!(c));
            view(d, client.as_ref())
        })
        .collect();
    Ok(envelope::ok(
        json!({ "reviews": list, "pagination": nested(&page, total, next) }),
    ))
}

/// Count, average and distribution of the caller's ratings.
pub async fn summary(state: &AppState, therapist: ObjectId) -> ApiResult<(i64, f64, [i64; 5])> {
    let pipeline = vec![
        doc! { "$match": { "therapistId": therapist, "status": "published" } },
        doc! { "$group": { "_id": "$rating", "n": { "$sum": 1 } } },
    ];
    let rows: Vec<Document> = state
        .db
        .analytics()
        .collection::<Document>(REVIEWS)
        .aggregate(pipeline)
        .await?
        .try_collect()
        .await?;
    let mut dist = [0i64; 5];
    for r in rows {
        if let (Some(rating), Some(n)) = (r.get("_id").and_then(as_i64), r.get("n").and_then(as_i64)) {
            if (1..=5).contains(&rating) {
                dist[(rating - 1) as usize] = n;
            }
        }
    }
    let total: i64 = dist.iter().sum();
    let sum: i64 = dist.iter().enumerate().map(|(i, n)| (i as i64 + 1) * n).sum();
    let avg = if total > 0 {
        (sum as f64 * 10.0 / total as f64).round() / 10.0
    } else {
        0.0
    };
    Ok((total, avg, dist))
}

/// `totalReviews`, `averageRating`, `ratingDistribution`.
#[utoipa::path(get, path = "/api/reviews/statistics", tag = "reviews", responses((status = 200)))]
pub async fn statistics(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    let (total, avg, d) = summary(&state, me.0.id).await?;
    Ok(envelope::ok(json!({
        "totalReviews": total,
        "averageRating": avg,
        "ratingDistribution": { "1": d[0], "2": d[1], "3": d[2], "4": d[3], "5": d[4] },
    })))
}

/// The therapist's public answer to a review.
#[utoipa::path(post, path = "/api/reviews/{id}/response", tag = "reviews", request_body = Respond,
    responses((status = 200), (status = 400), (status = 404)))]
pub async fn respond(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let req: Respond = parse_body(&headers, &body)?;
    let id = parse_id(&id, "id")?;
    let updated = state
        .db
        .collection::<Document>(REVIEWS)
        .find_one_and_update(
            me.scope().by_id(id),
            doc! { "$set": { "response": { "text": req.response.trim(), "respondedAt": DateTime::now() }, "updatedAt": DateTime::now() } },
        )
        .return_document(mongodb::options::ReturnDocument::After)
        .await?
        .ok_or_else(|| ApiError::not_found("Review"))?;
    Ok(envelope::ok(view(&updated, None)))
}
