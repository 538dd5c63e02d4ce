//! What a client's bookings say about them, for the client lists and the soft delete: the
//! sessions completed and the last one, the average rating of their reviews, and whether a
//! booking is still to come. Each is one query for a whole page of clients, never one a row.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, DateTime};
use serde::Deserialize;

use super::store::BOOKINGS;
use crate::db::{Db, OwnerScope};
use crate::error::{ApiError, ApiResult};

/// The reviews collection (read here for the per-client average until reviews has a store).
const REVIEWS: &str = "reviews";

/// A client's completed sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sessions {
    /// When the last completed session started.
    pub last: Option<DateTime>,
    pub count: i64,
}

/// One row of the sessions aggregation.
#[derive(Debug, Deserialize)]
struct SessionsRow {
    #[serde(rename = "_id")]
    client: ObjectId,
    #[serde(default)]
    last: Option<DateTime>,
    #[serde(deserialize_with = "crate::clients::query::count")]
    n: i64,
}

/// One row of the ratings aggregation (`avg` is null when no review has a rating).
#[derive(Debug, Deserialize)]
struct RatingRow {
    #[serde(rename = "_id")]
    client: ObjectId,
    #[serde(default)]
    avg: Option<Bson>,
}

/// The completed sessions of each of `clients` that has any.
pub async fn completed_sessions(
    db: &Db,
    clients: &[ObjectId],
) -> mongodb::error::Result<HashMap<ObjectId, Sessions>> {
    if clients.is_empty() {
        return Ok(HashMap::new());
    }
    let pipeline = vec![
        doc! { "$match": { "clientId": { "$in": clients.to_vec() }, "status": "completed" } },
        doc! { "$group": { "_id": "$clientId", "last": { "$max": "$startsAt" }, "n": { "$sum": 1 } } },
    ];
    let rows: Vec<SessionsRow> = db
        .collection::<mongodb::bson::Document>(BOOKINGS)
        .aggregate(pipeline)
        .with_type::<SessionsRow>()
        .await?
        .try_collect()
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let sessions = Sessions {
                last: r.last,
                count: r.n,
            };
            (r.client, sessions)
        })
        .collect())
}

/// The average rating each of `clients` gave, for those with rated reviews.
pub async fn average_ratings(db: &Db, clients: &[ObjectId]) -> ApiResult<HashMap<ObjectId, f64>> {
    if clients.is_empty() {
        return Ok(HashMap::new());
    }
    let pipeline = vec![
        doc! { "$match": { "clientId": { "$in": clients.to_vec() } } },
        doc! { "$group": { "_id": "$clientId", "avg": { "$avg": "$rating" } } },
    ];
    let rows: Vec<RatingRow> = db
        .collection::<mongodb::bson::Document>(REVIEWS)
        .aggregate(pipeline)
        .with_type::<RatingRow>()
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

/// Whether the client has a booking still to come that is not cancelled.
pub async fn has_upcoming(db: &Db, scope: &OwnerScope, client: ObjectId) -> mongodb::error::Result<bool> {
    let filter = scope.filter(doc! {
        "clientId": client,
        "status": { "$in": ["pending", "upcoming"] },
        "endsAt": { "$gt": DateTime::now() },
    });
    let found = db
        .collection::<mongodb::bson::Document>(BOOKINGS)
        .find_one(filter)
        .projection(doc! { "_id": 1 })
        .await?;
    Ok(found.is_some())
}
