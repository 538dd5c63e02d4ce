//! Reviews (SPEC section 3): clients review a completed session once; therapists read, see
//! statistics and respond. The booking site's public profile lives here too (`public`): it
//! shows the profile with the therapist's rating, and reviews is the lower of the two that
//! knows both.

pub mod docs;
pub mod model;
pub mod public;
pub mod service;
pub mod store;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::extract::{parse_id, ClientUser, Therapist};
use crate::cache::family::{query_key, Family};
use crate::db::Page;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::{ApiQuery, JsonBody};
use crate::http::pagination::nested;
pub use model::{CreateReview, RatingSummary, Respond, Review, ReviewQuery, ReviewStatus};
pub use public::{__path_public_profile, public_profile};
use store::ReviewStore;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/reviews", get(list))
        .route("/api/reviews/statistics", get(statistics))
        .route("/api/reviews/create", post(create))
        .route("/api/reviews/{id}/response", post(respond))
        .route("/api/reviews/{id}/responses", post(respond))
        .route("/api/profile/public/{user_id}", get(public_profile))
}

/// A client reviews one of their completed sessions, once.
#[utoipa::path(post, path = "/api/reviews/create", tag = "reviews",
    security(("client" = [])),
    request_body = CreateReview,
    responses((status = 201, body = crate::http::docs::Data<crate::reviews::docs::ReviewView>), (status = 404, description = "No such completed booking of the caller"), (status = 409, description = "`REVIEW_EXISTS`")))]
pub async fn create(
    State(state): State<AppState>,
    me: ClientUser,
    JsonBody(req): JsonBody<CreateReview>,
) -> ApiResult<Response> {
    let (review, client) = service::create(&state, me.0.id, req).await?;
    Ok(envelope::created(review.view(Some(&client))))
}

/// The caller's reviews, newest first, with each client's name (one extra query per page).
#[utoipa::path(get, path = "/api/reviews", tag = "reviews",
    security(("therapist" = [])),
    params(ApiQuery<model::ReviewQuery>),
    responses((status = 200, body = crate::http::docs::Data<crate::reviews::docs::ReviewPage>), (status = 404, description = "`therapistId` is another therapist")))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> ApiResult<Response> {
    crate::http::query::own_therapist(q.therapist_id.as_deref(), me.0.id)?;
    let key = query_key("list", &q);
    let fill = || list_page(&state, &me, q);
    state.cache.json(Family::Reviews, me.0.id, &key, fill).await
}

/// The list page `q` asks for, each review with its client.
async fn list_page(state: &AppState, me: &Therapist, q: ReviewQuery) -> ApiResult<Value> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let filter = list_filter(state, me.0.id, &q).await?;
    let descending = q.sort_order.unwrap_or_default() == crate::db::SortOrder::Desc;
    let (reviews, total, next) = ReviewStore::new(&state.db)
        .page(me.scope().filter(filter), descending, &page)
        .await?;
    let ids: Vec<ObjectId> = reviews.iter().map(|r| r.client_id).collect();
    let clients = crate::clients::store::ClientStore::new(&state.db)
        .summaries(&ids)
        .await?;
    let list: Vec<Value> = reviews
        .iter()
        .map(|r| r.view(clients.get(&r.client_id).map(|c| json!(c)).as_ref()))
        .collect();
    Ok(envelope::ok_body(
        json!({ "reviews": list, "pagination": nested(&page, total, next) }),
    ))
}

/// The filter of a list query (the owner is added by the caller's scope); dates are days in
/// the therapist's zone.
async fn list_filter(state: &AppState, therapist: ObjectId, q: &ReviewQuery) -> ApiResult<Document> {
    let mut filter = Document::new();
    if let Some(r) = q.rating {
        if !(1..=5).contains(&r) {
            return Err(ApiError::field("rating", "must be between 1 and 5"));
        }
        filter.insert("rating", i32::from(r));
    }
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
            .zone(therapist)
            .await?;
        crate::http::query::in_order(from, to, zone, ("dateFrom", "dateTo"))?;
        let mut range = Document::new();
        if let Some(b) = from {
            range.insert("$gte", mongodb::bson::DateTime::from_chrono(b.start(zone)));
        }
        if let Some(b) = to {
            range.insert("$lt", mongodb::bson::DateTime::from_chrono(b.end(zone)));
        }
        filter.insert("createdAt", range);
    }
    Ok(filter)
}

/// Count, average and distribution of the therapist's published ratings.
pub async fn summary(db: &crate::db::Db, therapist: ObjectId) -> ApiResult<(i64, f64, [i64; 5])> {
    let s = ReviewStore::new(db).rating_summary(therapist).await?;
    Ok((s.total, s.average, s.distribution))
}

/// `totalReviews`, `averageRating`, `ratingDistribution`.
#[utoipa::path(get, path = "/api/reviews/statistics", tag = "reviews",
    security(("therapist" = [])),
    responses((status = 200, body = crate::http::docs::Data<crate::reviews::docs::ReviewStatistics>)))]
pub async fn statistics(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    let fill = || async {
        let s = ReviewStore::new(&state.db.fresh())
            .rating_summary(me.0.id)
            .await?;
        let d = s.distribution;
        Ok(envelope::ok_body(json!({
            "totalReviews": s.total,
            "averageRating": s.average,
            "ratingDistribution": { "1": d[0], "2": d[1], "3": d[2], "4": d[3], "5": d[4] },
        })))
    };
    state
        .cache
        .json(Family::Reviews, me.0.id, "statistics", fill)
        .await
}

/// The therapist's public answer to a review.
#[utoipa::path(post, path = "/api/reviews/{id}/response", tag = "reviews",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    request_body = Respond,
    responses((status = 200, body = crate::http::docs::Data<crate::reviews::docs::ReviewView>)))]
pub async fn respond(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Respond>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let review = service::respond(&state, &me.scope(), id, &req.response).await?;
    Ok(envelope::ok(review.view(None)))
}
