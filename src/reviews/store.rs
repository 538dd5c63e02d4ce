//! Every MongoDB query of reviews, on a typed collection: the client's review, the therapist's
//! answer, the scoped list, the rating summary (an aggregation, read from secondaries where
//! a replica set has them) and the average rating each client gave (the client list).

use std::collections::HashMap;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Deserialize;

use super::model::{RatingSummary, Review};
use crate::db::{Db, OwnerScope, Page};
use crate::error::{ApiError, ApiResult};

/// The collection name.
pub const REVIEWS: &str = "reviews";

/// Queries of reviews.
pub struct ReviewStore {
    reviews: Collection<Review>,
    analytics: Collection<RatingCount>,
}

/// One row of the rating aggregation: how many published reviews gave `rating` stars.
#[derive(Debug, Deserialize)]
struct RatingCount {
    #[serde(rename = "_id")]
    rating: Option<i64>,
    n: i64,
}

/// One row of the per-client average (`avg` is null when no review of theirs has a rating).
#[derive(Debug, Deserialize)]
struct ClientAverage {
    #[serde(rename = "_id")]
    client: ObjectId,
    #[serde(default)]
    avg: Option<Bson>,
}

impl ReviewStore {
    pub fn new(db: &Db) -> Self {
        Self {
            reviews: db.collection(REVIEWS),
            analytics: db.analytics().collection(REVIEWS),
        }
    }

    /// Stores a new review; a second review of the same booking is a duplicate key.
    pub async fn insert(&self, review: &Review) -> mongodb::error::Result<()> {
        self.reviews.insert_one(review).await.map(|_| ())
    }

    /// Sets the therapist's answer on a scoped review; the review after the change.
    pub async fn respond(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        text: &str,
    ) -> mongodb::error::Result<Option<Review>> {
        let now = DateTime::now();
        self.reviews
            .find_one_and_update(
                scope.by_id(id),
                doc! { "$set": { "response": { "text": text, "respondedAt": now }, "updatedAt": now } },
            )
            .return_document(ReturnDocument::After)
            .await
    }

    /// One page of the reviews matching `filter` (already scoped) by `createdAt`, the total and
    /// the next cursor. A review that does not decode is an error, never skipped.
    pub async fn page(
        &self,
        filter: Document,
        descending: bool,
        page: &Page,
    ) -> ApiResult<(Vec<Review>, u64, Option<String>)> {
        let raw = self.reviews.clone_with_type::<Document>();
        let (docs, total, next) = crate::db::page_of(&raw, filter, "createdAt", descending, page).await?;
        let reviews = docs
            .into_iter()
            .map(mongodb::bson::from_document::<Review>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((reviews, total, next))
    }

    /// Count, average and distribution of the therapist's published ratings.
    pub async fn rating_summary(&self, therapist: ObjectId) -> ApiResult<RatingSummary> {
        let pipeline = vec![
            doc! { "$match": { "therapistId": therapist, "status": "published" } },
            doc! { "$group": { "_id": "$rating", "n": { "$sum": 1 } } },
        ];
        let rows: Vec<RatingCount> = self
            .analytics
            .aggregate(pipeline)
            .with_type::<RatingCount>()
            .await?
            .try_collect()
            .await?;
        let mut distribution = [0i64; 5];
        for row in rows {
            match row.rating {
                Some(r @ 1..=5) => distribution[(r - 1) as usize] = row.n,
                // Not a rating the API writes: counted nowhere, as before, but said.
                other => {
                    tracing::warn!(%therapist, rating = ?other, n = row.n, "reviews with a rating outside 1 to 5")
                }
            }
        }
        Ok(RatingSummary::of(distribution))
    }

    /// The average rating each of `clients` gave, for those with rated reviews (one
    /// aggregation for the whole list, on the primary). An average that is not a number is an
    /// error, never skipped.
    pub async fn average_by_client(&self, clients: &[ObjectId]) -> ApiResult<HashMap<ObjectId, f64>> {
        if clients.is_empty() {
            return Ok(HashMap::new());
        }
        let pipeline = vec![
            doc! { "$match": { "clientId": { "$in": clients.to_vec() } } },
            doc! { "$group": { "_id": "$clientId", "avg": { "$avg": "$rating" } } },
        ];
        let rows: Vec<ClientAverage> = self
            .reviews
            .aggregate(pipeline)
            .with_type::<ClientAverage>()
            .await?
            .try_collect()
            .await?;
        let mut out = HashMap::new();
        for row in rows {
            let avg = match row.avg {
                // No rating to average (`$avg` of nothing is null).
                None | Some(Bson::Null) => continue,
                Some(Bson::Double(avg)) => avg,
                Some(Bson::Int32(avg)) => f64::from(avg),
                Some(Bson::Int64(avg)) => avg as f64,
                Some(other) => {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "average rating of client {} is not a number: {other}",
                        row.client
                    )))
                }
            };
            out.insert(row.client, avg);
        }
        Ok(out)
    }
}
