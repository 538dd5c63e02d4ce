//! What a client's bookings say about them, for the client lists and the soft delete: the
//! sessions completed and the last one, and whether a booking is still to come. Each is one
//! query for a whole page of clients, never one a row. (The average rating of a client's
//! reviews is `ReviewStore::average_by_client`: reviews sit above bookings.)

use std::collections::HashMap;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime};
use serde::Deserialize;

use super::BookingStore;
use crate::db::OwnerScope;

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
    #[serde(deserialize_with = "crate::db::count")]
    n: i64,
}

/// A booking's id alone (a projection).
#[derive(Debug, Deserialize)]
struct IdOnly {
    #[serde(rename = "_id")]
    _id: ObjectId,
}

impl BookingStore {
    /// The completed sessions of each of `clients` that has any.
    pub async fn completed_sessions(
        &self,
        clients: &[ObjectId],
    ) -> mongodb::error::Result<HashMap<ObjectId, Sessions>> {
        if clients.is_empty() {
            return Ok(HashMap::new());
        }
        let pipeline = vec![
            doc! { "$match": { "clientId": { "$in": clients.to_vec() }, "status": "completed" } },
            doc! { "$group": { "_id": "$clientId", "last": { "$max": "$startsAt" }, "n": { "$sum": 1 } } },
        ];
        let rows: Vec<SessionsRow> = self
            .bookings
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

    /// Whether the client has a booking still to come that is not cancelled.
    pub async fn has_upcoming(&self, scope: &OwnerScope, client: ObjectId) -> mongodb::error::Result<bool> {
        let filter = scope.filter(doc! {
            "clientId": client,
            "status": { "$in": ["pending", "upcoming"] },
            "endsAt": { "$gt": DateTime::now() },
        });
        let found = self
            .bookings
            .clone_with_type::<IdOnly>()
            .find_one(filter)
            .projection(doc! { "_id": 1 })
            .await?;
        Ok(found.is_some())
    }
}
