//! Every MongoDB query of reviews, on a typed collection: the client's review, the therapist's
//! answer, the scoped list and the rating summary (an aggregation, read from secondaries where
//! a replica set has them).

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Deserialize;

use super::model::{RatingSummary, Review};
use crate::db::{Db, OwnerScope, Page};
use crate::error::ApiResult;

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
}
