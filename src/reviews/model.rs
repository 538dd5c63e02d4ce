//! Reviews: the stored document, the requests that write it, the list query and the views.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use validator::Validate;

use crate::time::rfc3339;

/// A stored review (collection `reviews`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub therapist_id: ObjectId,
    pub client_id: ObjectId,
    /// The client's login that wrote it (absent on seeded reviews).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_user_id: Option<ObjectId>,
    pub booking_id: ObjectId,
    pub rating: i32,
    #[serde(default)]
    pub comment: Option<String>,
    /// `published`, `pending` or `hidden`; reviews from before moderation carry none.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ReviewResponse>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// The therapist's public answer to a review.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    pub text: String,
    pub responded_at: DateTime,
}

impl Review {
    /// The dashboard's view; `client` is the embedded client summary when known.
    pub fn view(&self, client: Option<&Value>) -> Value {
        let id = self.id.to_hex();
        let client_id = self.client_id.to_hex();
        let mut v = json!({
            "id": id, "_id": id,
            "therapistId": self.therapist_id.to_hex(), "clientId": client_id,
            "bookingId": self.booking_id.to_hex(),
            "client": client.cloned().unwrap_or_else(|| json!({ "id": client_id, "name": null, "avatar": null })),
            "clientName": client.and_then(|c| c.get("name")).cloned(),
            "rating": self.rating,
            "comment": self.comment,
            "status": self.status.as_deref().unwrap_or("published"),
            "createdAt": rfc3339(self.created_at),
        });
        // The dashboard's answer form breaks on `response: null`: absent when there is none.
        if let (Some(r), Some(o)) = (&self.response, v.as_object_mut()) {
            o.insert(
                "response".into(),
                json!({ "text": r.text, "respondedAt": rfc3339(r.responded_at) }),
            );
        }
        v
    }
}

/// Count, average (one decimal) and distribution (1 to 5 stars) of a therapist's published
/// ratings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RatingSummary {
    pub total: i64,
    pub average: f64,
    pub distribution: [i64; 5],
}

impl RatingSummary {
    /// The summary of a distribution.
    pub fn of(distribution: [i64; 5]) -> Self {
        let total: i64 = distribution.iter().sum();
        let sum: i64 = distribution
            .iter()
            .enumerate()
            .map(|(i, n)| (i as i64 + 1) * n)
            .sum();
        let average = if total > 0 {
            (sum as f64 * 10.0 / total as f64).round() / 10.0
        } else {
            0.0
        };
        Self {
            total,
            average,
            distribution,
        }
    }
}

/// `POST /api/reviews/create`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateReview {
    #[schema(value_type = crate::http::docs::ObjectIdText)]
    pub booking_id: String,
    #[validate(range(min = 1, max = 5, message = "must be between 1 and 5"))]
    #[schema(minimum = 1, maximum = 5)]
    pub rating: u8,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

/// `POST /api/reviews/:id/response`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Respond {
    #[validate(length(min = 1, max = 2000, message = "must be 1 to 2000 characters"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub response: String,
}

/// `GET /api/reviews` query.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ReviewQuery {
    #[param(minimum = 1, maximum = 5)]
    pub rating: Option<u8>,
    #[param(value_type = Option<crate::http::docs::PageNumber>)]
    pub page: Option<u64>,
    #[param(value_type = Option<crate::http::docs::PageLimit>)]
    pub limit: Option<u64>,
    #[param(value_type = Option<crate::http::docs::Cursor>)]
    pub cursor: Option<String>,
    /// The client who wrote it (`reviewerId` in the dashboard's words).
    #[serde(
        default,
        alias = "reviewerId",
        alias = "client_id",
        alias = "reviewer_id",
        deserialize_with = "crate::http::query::non_empty"
    )]
    #[param(value_type = Option<crate::http::docs::IdFilter>)]
    pub client_id: Option<String>,
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    #[param(schema_with = crate::http::docs::filter::<ReviewStatus>)]
    pub status: Option<ReviewStatus>,
    #[serde(
        default,
        alias = "moderation_status",
        deserialize_with = "crate::http::query::all_or"
    )]
    #[param(schema_with = crate::http::docs::filter::<ReviewStatus>)]
    pub moderation_status: Option<ReviewStatus>,
    #[serde(alias = "date_from", alias = "startDate")]
    #[param(value_type = Option<crate::http::docs::DateOrInstant>)]
    pub date_from: Option<String>,
    #[serde(alias = "date_to", alias = "endDate")]
    #[param(value_type = Option<crate::http::docs::DateOrInstant>)]
    pub date_to: Option<String>,
    #[serde(alias = "therapist_id")]
    #[param(value_type = Option<crate::http::docs::OwnTherapist>)]
    pub therapist_id: Option<String>,
    #[serde(alias = "sort_order")]
    #[param(schema_with = crate::http::docs::accepts::<crate::db::SortOrder>)]
    pub sort_order: Option<crate::db::SortOrder>,
}

/// Review states a list can ask for (`approved` is the dashboard's word for published).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewStatus {
    #[serde(alias = "approved")]
    Published,
    Pending,
    Hidden,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_averages_to_one_decimal_and_is_zero_when_empty() {
        assert_eq!(RatingSummary::of([0; 5]).average, 0.0);
        let s = RatingSummary::of([0, 0, 1, 0, 2]);
        assert_eq!((s.total, s.average), (3, 4.3));
    }
}
