//! Schemas of the reviews' answers built as JSON values: what the document promises about them.
#![allow(dead_code)] // schema descriptions, never built

use serde::Serialize;
use utoipa::ToSchema;

use crate::http::docs::{InstantText, ObjectIdText};
use crate::http::pagination::Nested;

/// A review (`response` absent until the therapist answers).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    #[schema(value_type = ObjectIdText)]
    id: String,
    #[schema(value_type = ObjectIdText)]
    client_id: String,
    #[schema(value_type = ObjectIdText)]
    booking_id: String,
    rating: u8,
    comment: Option<String>,
    /// `published` unless moderated.
    status: String,
    response: Option<ReviewResponse>,
    #[schema(value_type = InstantText)]
    created_at: String,
}

/// The therapist's answer to a review.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    text: String,
    responded_at: String,
}

/// `GET /api/reviews` data.
#[derive(Serialize, ToSchema)]
pub struct ReviewPage {
    reviews: Vec<ReviewView>,
    pagination: Nested,
}

/// `GET /api/reviews/statistics` data.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStatistics {
    total_reviews: i64,
    average_rating: f64,
    /// Reviews per star, `"1"` to `"5"`.
    rating_distribution: std::collections::BTreeMap<String, i64>,
}

/// `GET /api/profile/public/{user_id}` data: the therapist, their public profile and ratings.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicProfile {
    #[schema(value_type = ObjectIdText)]
    id: String,
    name: String,
    avatar: Option<String>,
    is_verified: bool,
    timezone: String,
    profile: crate::profile::docs::ProfileView,
    reviews: RatingTotals,
}

/// Count and average of published ratings.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatingTotals {
    total_reviews: i64,
    average_rating: f64,
}
