//! Every MongoDB query of client records. Each one goes through the therapist's `OwnerScope`.

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;

use super::model::{Client, ClientStatus};
use crate::db::Db;
use crate::db::OwnerScope;
use crate::db::Page;

/// The collection name.
pub const CLIENTS: &str = "clients";

/// Queries of client records.
pub struct ClientStore {
    clients: Collection<Client>,
    raw: Collection<Document>,
    analytics: Collection<Document>,
    bookings: Collection<Document>,
    reviews: Collection<Document>,
}

impl ClientStore {
    pub fn new(db: &Db) -> Self {
        Self {
            clients: db.collection(CLIENTS),
            raw: db.collection(CLIENTS),
            analytics: db.analytics().collection(CLIENTS),
            bookings: db.collection("bookings"),
            reviews: db.collection("reviews"),
        }
    }

    pub async fn insert(&self, client: &Client) -> mongodb::error::Result<()> {
        self.clients.insert_one(client).await.map(|_| ())
    }

    pub async fn get(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<Option<Client>> {
        self.clients.find_one(scope.by_id(id)).await
    }

    /// One page of the list matching `filter` (already scoped), its total and next cursor.
    pub async fn list(
        &self,
        filter: Document,
        sort_field: &str,
        descending: bool,
        page: &Page,
    ) -> Result<(Vec<Document>, u64, Option<String>), crate::error::ApiError> {
        crate::db::page_of(&self.raw, filter, sort_field, descending, page).await
    }

    /// Applies `$set` to a scoped client and returns it after the change.
    pub async fn update(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        set: Document,
    ) -> mongodb::error::Result<Option<Client>> {
        self.clients
            .find_one_and_update(scope.by_id(id), doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
    }

    /// Whether the client has a booking still to come that is not cancelled.
    pub async fn has_upcoming_bookings(
        &self,
        scope: &OwnerScope,
        client_id: ObjectId,
    ) -> mongodb::error::Result<bool> {
        let filter = scope.filter(doc! {
            "clientId": client_id,
            "status": { "$in": ["pending", "upcoming"] },
            "endsAt": { "$gt": DateTime::now() },
        });
        Ok(self.bookings.find_one(filter).await?.is_some())
    }

    /// Counts by status and new clients since `month_start`.
    pub async fn stats(&self, scope: &OwnerScope, month_start: DateTime) -> mongodb::error::Result<Document> {
        let pipeline = vec![
            doc! { "$match": scope.filter(doc! {}) },
            doc! { "$facet": {
                "byStatus": [ { "$group": { "_id": "$status", "n": { "$sum": 1 } } } ],
                "newThisMonth": [ { "$match": { "createdAt": { "$gte": month_start } } }, { "$count": "n" } ],
                "withEmail": [ { "$match": { "email": { "$type": "string" } } }, { "$count": "n" } ],
                "linked": [ { "$match": { "userId": { "$type": "objectId" } } }, { "$count": "n" } ],
            } },
        ];
        let mut cursor = self.analytics.aggregate(pipeline).await?;
        Ok(cursor.try_next().await?.unwrap_or_default())
    }

    /// Every tag in use with how many clients carry it.
    pub async fn tags(&self, scope: &OwnerScope) -> mongodb::error::Result<Vec<Document>> {
        let pipeline = vec![
            doc! { "$match": scope.filter(doc! { "tags.0": { "$exists": true } }) },
            doc! { "$unwind": "$tags" },
            doc! { "$group": { "_id": "$tags", "count": { "$sum": 1 } } },
            doc! { "$sort": { "count": -1, "_id": 1 } },
        ];
        self.analytics.aggregate(pipeline).await?.try_collect().await
    }

    /// Links the unlinked records for `email` to a client login whose owner proved the email,
    /// across therapists; returns `(record, therapist)` of each record linked.
    pub async fn link_user(
        &self,
        email: &str,
        user_id: ObjectId,
    ) -> mongodb::error::Result<Vec<(ObjectId, ObjectId)>> {
        let found: Vec<Document> = self
            .raw
            .find(doc! { "email": email, "userId": null })
            .projection(doc! { "_id": 1, "therapistId": 1 })
            .await?
            .try_collect()
            .await?;
        let mut linked = Vec::new();
        for d in found {
            let (Ok(id), Ok(therapist)) = (d.get_object_id("_id"), d.get_object_id("therapistId")) else {
                continue;
            };
            let r = self
                .raw
                .update_one(
                    doc! { "_id": id, "email": email, "userId": null },
                    doc! { "$set": { "userId": user_id, "updatedAt": DateTime::now() } },
                )
                .await?;
            if r.modified_count == 1 {
                linked.push((id, therapist));
            }
        }
        Ok(linked)
    }

    /// The summary of each of `ids`, in one query (lists embed them, never one query a row).
    pub async fn summaries(
        &self,
        ids: &[ObjectId],
    ) -> mongodb::error::Result<std::collections::HashMap<ObjectId, super::model::ClientSummary>> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let docs: Vec<Document> = self
            .raw
            .find(doc! { "_id": { "$in": ids } })
            .projection(doc! { "name": 1, "email": 1, "phone": 1, "avatar": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(docs
            .into_iter()
            .filter_map(|d| {
                let id = d.get_object_id("_id").ok()?;
                let text = |k: &str| d.get_str(k).ok().map(str::to_owned);
                let summary = super::model::ClientSummary {
                    id: id.to_hex(),
                    name: text("name").unwrap_or_default(),
                    email: text("email"),
                    phone: text("phone"),
                    avatar: text("avatar"),
                };
                Some((id, summary))
            })
            .collect())
    }

    /// Completed sessions, the last one, and the average rating of each of `ids`: two
    /// aggregations per page, never one query per client.
    pub async fn activity(
        &self,
        ids: &[ObjectId],
    ) -> mongodb::error::Result<std::collections::HashMap<ObjectId, super::model::ClientActivity>> {
        let mut out: std::collections::HashMap<ObjectId, super::model::ClientActivity> = Default::default();
        if ids.is_empty() {
            return Ok(out);
        }
        let sessions = vec![
            doc! { "$match": { "clientId": { "$in": ids.to_vec() }, "status": "completed" } },
            doc! { "$group": { "_id": "$clientId", "last": { "$max": "$startsAt" }, "n": { "$sum": 1 } } },
        ];
        let mut cursor = self.bookings.aggregate(sessions).await?;
        while let Some(d) = cursor.try_next().await? {
            if let Ok(id) = d.get_object_id("_id") {
                let a = out.entry(id).or_default();
                a.last_session = d.get_datetime("last").ok().copied();
                a.sessions_count = d.get("n").and_then(crate::db::as_i64).unwrap_or(0);
            }
        }
        let ratings = vec![
            doc! { "$match": { "clientId": { "$in": ids.to_vec() } } },
            doc! { "$group": { "_id": "$clientId", "avg": { "$avg": "$rating" } } },
        ];
        let mut cursor = self.reviews.aggregate(ratings).await?;
        while let Some(d) = cursor.try_next().await? {
            if let (Ok(id), Ok(avg)) = (d.get_object_id("_id"), d.get_f64("avg")) {
                out.entry(id).or_default().rating = Some(avg);
            }
        }
        Ok(out)
    }

    /// Links one record (an invitation's) to a client login, if still unlinked.
    pub async fn link_record(&self, id: ObjectId, user_id: ObjectId) -> mongodb::error::Result<bool> {
        let r = self
            .raw
            .update_one(
                doc! { "_id": id, "userId": null },
                doc! { "$set": { "userId": user_id, "updatedAt": DateTime::now() } },
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    /// The ids of the records linked to a client login (one per therapist they see).
    pub async fn record_ids_of_user(&self, user_id: ObjectId) -> mongodb::error::Result<Vec<ObjectId>> {
        #[derive(serde::Deserialize)]
        struct Id {
            #[serde(rename = "_id")]
            id: ObjectId,
        }
        let ids: Vec<Id> = self
            .raw
            .clone_with_type::<Id>()
            .find(doc! { "userId": user_id })
            .projection(doc! { "_id": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(ids.into_iter().map(|i| i.id).collect())
    }
}

/// The `status` stored for a list filter value.
pub fn status_str(s: ClientStatus) -> &'static str {
    match s {
        ClientStatus::Active => "active",
        ClientStatus::Inactive => "inactive",
    }
}
