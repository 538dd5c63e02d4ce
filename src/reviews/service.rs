//! The writes of reviews, one function per action: each performs the write and then tells the
//! rest of the service what changed (`Event::Review`).

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde_json::{json, Value};

use super::model::{CreateReview, Review};
use super::store::ReviewStore;
use crate::app::AppState;
use crate::auth::extract::parse_id;
use crate::bookings::model::BookingStatus;
use crate::bookings::store::BookingStore;
use crate::clients::store::ClientStore;
use crate::db::OwnerScope;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, ReviewChange, ReviewChanged};

/// A client (`user`) reviews one of their completed sessions, once. The review and the client
/// summary it is shown with.
pub async fn create(state: &AppState, user: ObjectId, req: CreateReview) -> ApiResult<(Review, Value)> {
    let booking_id = parse_id(&req.booking_id, "bookingId")?;
    let booking = BookingStore::new(&state.db)
        .get_unscoped(booking_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Booking"))?;
    let clients = ClientStore::new(&state.db);
    // Someone else's booking is as unknown as a missing one.
    let record = clients
        .get(&OwnerScope::of(booking.therapist_id), booking.client_id)
        .await?
        .filter(|c| c.user_id == Some(user))
        .ok_or_else(|| ApiError::not_found("Booking"))?;
    if booking.status != BookingStatus::Completed {
        return Err(ApiError::BadRequest {
            code: "BOOKING_NOT_COMPLETED",
            message: "Only a completed session can be reviewed".into(),
        });
    }
    let now = DateTime::now();
    let review = Review {
        id: ObjectId::new(),
        therapist_id: booking.therapist_id,
        client_id: booking.client_id,
        client_user_id: Some(user),
        booking_id: booking.id,
        rating: i32::from(req.rating),
        comment: req.comment,
        status: Some("published".into()),
        response: None,
        created_at: now,
        updated_at: now,
    };
    // Read before writing: once the review is stored, nothing may fail its answer (a retry
    // would only find REVIEW_EXISTS).
    let avatar = clients
        .summaries(&[record.id])
        .await?
        .remove(&record.id)
        .and_then(|s| s.avatar);
    match ReviewStore::new(&state.db).insert(&review).await {
        Err(e) if crate::db::is_duplicate_key(&e) => {
            return Err(ApiError::conflict(
                "REVIEW_EXISTS",
                "This session has already been reviewed",
            ))
        }
        other => other?,
    };
    emit(state, &review, ReviewChange::Received, record.name.clone()).await;
    let client = json!({ "id": record.id.to_hex(), "name": record.name, "avatar": avatar });
    Ok((review, client))
}

/// The therapist answers one of their reviews (a new answer replaces the previous one).
pub async fn respond(state: &AppState, scope: &OwnerScope, id: ObjectId, text: &str) -> ApiResult<Review> {
    let review = ReviewStore::new(&state.db)
        .respond(scope, id, text.trim())
        .await?
        .ok_or_else(|| ApiError::not_found("Review"))?;
    // The answer is stored: the client's name (for the event) must not fail the request.
    let name = match ClientStore::new(&state.db).summaries(&[review.client_id]).await {
        Ok(mut found) => found
            .remove(&review.client_id)
            .map(|c| c.name)
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, review = %review.id, "client name unavailable for the review event");
            String::new()
        }
    };
    emit(state, &review, ReviewChange::Responded, name).await;
    Ok(review)
}

async fn emit(state: &AppState, review: &Review, kind: ReviewChange, client_name: String) {
    let event = ReviewChanged {
        therapist: review.therapist_id,
        review: review.id,
        kind,
        client_name,
        rating: i64::from(review.rating),
    };
    state.events.emit(Event::Review(event)).await;
}
