//! Every MongoDB query of client records. Each one goes through the therapist's `OwnerScope`,
//! except the linking of a client login, which spans therapists by design, and the worker's
//! scan for reminder requests left unarmed.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Deserialize;

use super::model::{Client, ClientPatch, ClientSummary};
use super::query::{ClientListQuery, CountFacets, TagCount};
use crate::db::{Db, OwnerScope, Page};
use crate::error::{ApiError, ApiResult};

/// The collection name.
pub const CLIENTS: &str = "clients";

/// Queries of client records.
pub struct ClientStore {
    clients: Collection<Client>,
    raw: Collection<Document>,
    analytics: Collection<Document>,
}

/// The `_id` and owner of a record (projections).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Owned {
    #[serde(rename = "_id")]
    id: ObjectId,
    therapist_id: ObjectId,
    #[serde(default)]
    user_id: Option<ObjectId>,
}

/// The fields a summary shows (a projection).
#[derive(Debug, Deserialize)]
struct SummaryRow {
    #[serde(rename = "_id")]
    id: ObjectId,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    avatar: Option<String>,
}

impl ClientStore {
    pub fn new(db: &Db) -> Self {
        Self {
            clients: db.collection(CLIENTS),
            raw: db.collection(CLIENTS),
            analytics: db.analytics().collection(CLIENTS),
        }
    }

    pub async fn insert(&self, client: &Client) -> mongodb::error::Result<()> {
        self.clients.insert_one(client).await.map(|_| ())
    }

    pub async fn get(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<Option<Client>> {
        self.clients.find_one(scope.by_id(id)).await
    }

    /// One of the scope's clients; 404 when it is not theirs.
    pub async fn get_or_404(&self, scope: &OwnerScope, id: ObjectId) -> crate::error::ApiResult<Client> {
        self.get(scope, id)
            .await?
            .ok_or_else(|| crate::error::ApiError::not_found("Client"))
    }

    /// One page of the scoped list `q` asks for, its total and next cursor.
    pub async fn list(
        &self,
        scope: &OwnerScope,
        q: &ClientListQuery,
        page: &Page,
    ) -> ApiResult<(Vec<Client>, u64, Option<String>)> {
        let (field, descending) = q.sort();
        let filter = scope.filter(q.filter()?);
        let (docs, total, next) = crate::db::page_of(&self.raw, filter, field, descending, page).await?;
        let clients = docs
            .into_iter()
            .map(mongodb::bson::from_document::<Client>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((clients, total, next))
    }

    /// Applies `patch` to a scoped client and returns it after the change.
    pub async fn update(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        patch: &ClientPatch,
    ) -> mongodb::error::Result<Option<Client>> {
        let set = mongodb::bson::to_document(patch)?;
        self.clients
            .find_one_and_update(scope.by_id(id), doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
    }

    /// The token of the client's pending request to re-arm its reminders, if any
    /// (`ClientPatch::reminders_requested`).
    pub async fn reminders_request(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
    ) -> mongodb::error::Result<Option<ObjectId>> {
        let found = self
            .raw
            .find_one(scope.by_id(id))
            .projection(doc! { "remindersRequested.token": 1 })
            .await?;
        Ok(found.and_then(|d| {
            d.get_document("remindersRequested")
                .ok()
                .and_then(|r| r.get_object_id("token").ok())
        }))
    }

    /// Clears the request `token` once its reminders are armed (a later change's request,
    /// with another token, stays for its own arming).
    pub async fn clear_reminders_request(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        token: ObjectId,
    ) -> mongodb::error::Result<()> {
        let mut filter = scope.by_id(id);
        filter.insert("remindersRequested.token", token);
        self.raw
            .update_one(filter, doc! { "$unset": { "remindersRequested": "" } })
            .await?;
        Ok(())
    }

    /// Clients whose request to re-arm reminders was not armed by `cutoff` (its writer stopped
    /// in between), oldest first: (client, therapist).
    pub async fn awaiting_reminders(
        &self,
        cutoff: DateTime,
        limit: i64,
    ) -> mongodb::error::Result<Vec<(ObjectId, ObjectId)>> {
        let rows: Vec<Owned> = self
            .raw
            .clone_with_type::<Owned>()
            .find(doc! { "remindersRequested.at": { "$lt": cutoff } })
            .sort(doc! { "remindersRequested.at": 1 })
            .projection(doc! { "_id": 1, "therapistId": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.therapist_id)).collect())
    }

    /// Counts by status and new clients since `month_start`.
    /// How many of the scope's records are active, and how many there are (analytics reads).
    pub async fn counts(&self, scope: &OwnerScope) -> mongodb::error::Result<(u64, u64)> {
        let active = scope.filter(doc! { "status": "active" });
        let all = scope.filter(doc! {});
        tokio::try_join!(async { self.analytics.count_documents(active).await }, async {
            self.analytics.count_documents(all).await
        },)
    }

    pub async fn stats(&self, scope: &OwnerScope, month_start: DateTime) -> ApiResult<CountFacets> {
        let pipeline = vec![
            doc! { "$match": scope.filter(doc! {}) },
            doc! { "$facet": {
                "byStatus": [ { "$group": { "_id": "$status", "n": { "$sum": 1 } } } ],
                "newThisMonth": [ { "$match": { "createdAt": { "$gte": month_start } } }, { "$count": "n" } ],
                "withEmail": [ { "$match": { "email": { "$type": "string" } } }, { "$count": "n" } ],
                "linked": [ { "$match": { "userId": { "$type": "objectId" } } }, { "$count": "n" } ],
            } },
        ];
        let mut cursor = self
            .analytics
            .aggregate(pipeline)
            .with_type::<CountFacets>()
            .await?;
        cursor
            .try_next()
            .await?
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the $facet stage answered nothing")))
    }

    /// Every tag in use with how many clients carry it.
    pub async fn tags(&self, scope: &OwnerScope) -> mongodb::error::Result<Vec<TagCount>> {
        let pipeline = vec![
            doc! { "$match": scope.filter(doc! { "tags.0": { "$exists": true } }) },
            doc! { "$unwind": "$tags" },
            doc! { "$group": { "_id": "$tags", "count": { "$sum": 1 } } },
            doc! { "$sort": { "count": -1, "_id": 1 } },
        ];
        self.analytics
            .aggregate(pipeline)
            .with_type::<TagCount>()
            .await?
            .try_collect()
            .await
    }

    /// The summary of each of `ids`, in one query (lists embed them, never one query a row).
    pub async fn summaries(
        &self,
        ids: &[ObjectId],
    ) -> mongodb::error::Result<HashMap<ObjectId, ClientSummary>> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let rows: Vec<SummaryRow> = self
            .raw
            .clone_with_type::<SummaryRow>()
            .find(doc! { "_id": { "$in": ids } })
            .projection(doc! { "name": 1, "email": 1, "phone": 1, "avatar": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let summary = ClientSummary {
                    id: r.id.to_hex(),
                    name: r.name,
                    email: r.email,
                    phone: r.phone,
                    avatar: r.avatar,
                };
                (r.id, summary)
            })
            .collect())
    }

    /// The record `therapist` keeps for a client login, found by the login.
    pub async fn id_by_login(
        &self,
        therapist: ObjectId,
        user_id: ObjectId,
    ) -> mongodb::error::Result<Option<ObjectId>> {
        let found = self
            .owned()
            .find_one(doc! { "therapistId": therapist, "userId": user_id })
            .projection(doc! { "_id": 1, "therapistId": 1, "userId": 1 })
            .await?;
        Ok(found.map(|o| o.id))
    }

    /// The record `therapist` keeps for `email`: its id and the login it is linked to.
    pub async fn by_email(
        &self,
        therapist: ObjectId,
        email: &str,
    ) -> mongodb::error::Result<Option<(ObjectId, Option<ObjectId>)>> {
        let found = self
            .owned()
            .find_one(doc! { "therapistId": therapist, "email": email })
            .projection(doc! { "_id": 1, "therapistId": 1, "userId": 1 })
            .await?;
        Ok(found.map(|o| (o.id, o.user_id)))
    }

    /// Links the unlinked records for `email` to a client login whose owner proved the email,
    /// across therapists; returns `(record, therapist)` of each record linked.
    pub async fn link_user(
        &self,
        email: &str,
        user_id: ObjectId,
    ) -> mongodb::error::Result<Vec<(ObjectId, ObjectId)>> {
        let found: Vec<Owned> = self
            .owned()
            .find(doc! { "email": email, "userId": null })
            .projection(doc! { "_id": 1, "therapistId": 1 })
            .await?
            .try_collect()
            .await?;
        let mut linked = Vec::new();
        for o in found {
            let r = self
                .raw
                .update_one(
                    doc! { "_id": o.id, "email": email, "userId": null },
                    doc! { "$set": { "userId": user_id, "updatedAt": DateTime::now() } },
                )
                .await?;
            if r.modified_count == 1 {
                linked.push((o.id, o.therapist_id));
            }
        }
        Ok(linked)
    }

    /// Links an unlinked record to a login that proved `email`, while the record still carries
    /// that email (a record whose address changed meanwhile is not linked). Whether it was.
    pub async fn link_record(
        &self,
        id: ObjectId,
        email: &str,
        user_id: ObjectId,
    ) -> mongodb::error::Result<bool> {
        let r = self
            .raw
            .update_one(
                doc! { "_id": id, "userId": null, "email": email },
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

    fn owned(&self) -> Collection<Owned> {
        self.raw.clone_with_type()
    }
}

pub use super::query::status_str;
