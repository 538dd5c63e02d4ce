//! Every MongoDB query of bookings (what a client's bookings say about them is in
//! `store/activity.rs`; what a payment's transaction reads and writes, in its session, in
//! `store/charges.rs`; the writes of one creation attempt, in `store/attempts.rs`).

use std::collections::HashMap;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Deserialize;
use serde_json::Value;

use super::model::{Booking, BookingPatch, ClientSummary};
use crate::auth::store::AuthStore;
use crate::db::Db;
use crate::db::OwnerScope;

mod activity;
mod attempts;
mod charges;

pub use activity::Sessions;
pub use charges::{ChargeMark, ChargeView};

/// Collection name.
pub const BOOKINGS: &str = "bookings";

/// The longest a booking lasts in real time: 12 local hours (`service::place` refuses longer
/// ones), plus an hour when the clocks go back during it.
const MAX_SESSION_MS: i64 = 13 * 3_600_000;

/// Queries of bookings.
pub struct BookingStore {
    bookings: Collection<Booking>,
    analytics: Collection<Document>,
    clients: crate::clients::store::ClientStore,
    users: AuthStore,
}

impl BookingStore {
    pub fn new(db: &Db) -> Self {
        Self {
            bookings: db.collection(BOOKINGS),
            analytics: db.analytics().collection(BOOKINGS),
            clients: crate::clients::store::ClientStore::new(db),
            users: AuthStore::new(db),
        }
    }

    pub async fn get(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<Option<Booking>> {
        self.bookings.find_one(scope.by_id(id)).await
    }

    /// The caller's bookings among `ids`, in the order of `ids`.
    pub async fn get_ids(
        &self,
        scope: &OwnerScope,
        ids: &[ObjectId],
    ) -> mongodb::error::Result<Vec<Booking>> {
        let found: Vec<Booking> = self
            .bookings
            .find(scope.filter(doc! { "_id": { "$in": ids.to_vec() } }))
            .await?
            .try_collect()
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.iter().find(|b| b.id == *id).cloned())
            .collect())
    }

    pub async fn get_unscoped(&self, id: ObjectId) -> mongodb::error::Result<Option<Booking>> {
        self.bookings.find_one(doc! { "_id": id }).await
    }

    /// Bookings of `therapist` that hold time overlapping `[start - buffer, end + buffer)`.
    pub async fn overlapping(
        &self,
        therapist: ObjectId,
        start: DateTime,
        end: DateTime,
        buffer_minutes: u32,
        exclude: Option<ObjectId>,
    ) -> mongodb::error::Result<Vec<Booking>> {
        let pad = i64::from(buffer_minutes) * 60_000;
        let mut filter = doc! {
            "therapistId": therapist,
            // Sessions last at most 12 hours, so the scan is bounded on both sides.
            "startsAt": {
                "$lt": DateTime::from_millis(end.timestamp_millis() + pad),
                "$gt": DateTime::from_millis(start.timestamp_millis() - pad - MAX_SESSION_MS),
            },
            "endsAt": { "$gt": DateTime::from_millis(start.timestamp_millis() - pad) },
            "status": { "$ne": "cancelled" },
        };
        if let Some(id) = exclude {
            filter.insert("_id", doc! { "$ne": id });
        }
        self.bookings
            .find(filter)
            .sort(doc! { "startsAt": 1 })
            .await?
            .try_collect()
            .await
    }

    /// The bookings in the way of a new booking `[start, end)` with `buffer_minutes` after it,
    /// as the time claims decide it: each holds its own time plus the buffer it was made with,
    /// the new one its time plus `buffer_minutes` (the schedule's now).
    pub async fn in_the_way(
        &self,
        therapist: ObjectId,
        start: DateTime,
        end: DateTime,
        buffer_minutes: u32,
        exclude: Option<ObjectId>,
    ) -> mongodb::error::Result<Vec<Booking>> {
        // Fetched with the widest pad a booking's own buffer may need (a schedule's most).
        let pad = buffer_minutes.max(crate::availability::model::MAX_BUFFER_MINUTES);
        let found = self.overlapping(therapist, start, end, pad, exclude).await?;
        let new_end = DateTime::from_millis(end.timestamp_millis() + i64::from(buffer_minutes) * 60_000);
        Ok(found
            .into_iter()
            .filter(|b| b.starts_at < new_end && start < b.holds_until())
            .collect())
    }

    /// A page of bookings matching `filter` (scoped), sorted, and the total.
    pub async fn page(
        &self,
        filter: Document,
        after: Option<Document>,
        sort: Document,
        skip: u64,
        limit: i64,
    ) -> mongodb::error::Result<(Vec<Booking>, u64)> {
        let total = self.bookings.count_documents(filter.clone()).await?;
        let query = match after {
            Some(a) => doc! { "$and": [filter, a] },
            None => filter,
        };
        let items = self
            .bookings
            .find(query)
            .sort(sort)
            .skip(skip)
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        Ok((items, total))
    }

    /// The clients of `bookings` in one query (never one per booking).
    pub async fn client_summaries(
        &self,
        bookings: &[Booking],
    ) -> mongodb::error::Result<HashMap<ObjectId, ClientSummary>> {
        let ids: Vec<ObjectId> = bookings.iter().map(|b| b.client_id).collect();
        self.clients.summaries(&ids).await
    }

    /// Views of `bookings` with their clients embedded.
    pub async fn views(&self, bookings: &[Booking]) -> mongodb::error::Result<Vec<Value>> {
        let clients = self.client_summaries(bookings).await?;
        Ok(bookings
            .iter()
            .map(|b| b.view(clients.get(&b.client_id)))
            .collect())
    }

    /// The latest bookings of one client.
    pub async fn recent_for_client(
        &self,
        scope: &OwnerScope,
        client: ObjectId,
        n: i64,
    ) -> mongodb::error::Result<Vec<Value>> {
        let list: Vec<Booking> = self
            .bookings
            .find(scope.filter(doc! { "clientId": client }))
            .sort(doc! { "startsAt": -1 })
            .limit(n)
            .await?
            .try_collect()
            .await?;
        Ok(list.iter().map(|b| b.view(None)).collect())
    }

    /// Applies `patch` (with `updatedAt` and a version bump) when the booking is still at the
    /// version `current` was read at; the booking as it is now, or `None` when it changed.
    pub async fn update_versioned(
        &self,
        current: &Booking,
        mut patch: BookingPatch,
    ) -> mongodb::error::Result<Option<Booking>> {
        patch.updated_at = Some(DateTime::now());
        let guard =
            doc! { "_id": current.id, "therapistId": current.therapist_id, "version": current.version };
        // An email request joins those not yet armed (never replaces one), named with the
        // version this change writes, so two moves to the same time are two requests.
        let email = patch
            .pending_email
            .take()
            .map(|kind| format!("{kind}@{}", current.version + 1));
        let set = mongodb::bson::to_document(&patch)?;
        let mut update = doc! { "$set": set, "$inc": { "version": 1 } };
        if let Some(email) = email {
            update.insert("$addToSet", doc! { "pendingEmails": email });
        }
        self.bookings
            .find_one_and_update(guard, update)
            .return_document(ReturnDocument::After)
            .await
    }

    /// Clears the email requests of `booking` as of `version` (all were armed); a later change
    /// keeps them for its own arming.
    pub async fn clear_pending_email(&self, booking: ObjectId, version: i64) -> mongodb::error::Result<()> {
        self.bookings
            .update_one(
                doc! { "_id": booking, "version": version, "pendingEmails": { "$exists": true } },
                doc! { "$unset": { "pendingEmails": "" } },
            )
            .await
            .map(|_| ())
    }

    /// Upcoming bookings of one client record that have not started (its reminders follow its
    /// preferences), soonest first.
    pub async fn upcoming_of_client(
        &self,
        scope: &OwnerScope,
        client: ObjectId,
        after: Option<DateTime>,
        limit: i64,
    ) -> mongodb::error::Result<Vec<Booking>> {
        // A page after `after` (the last start of the page before; a client has one booking of
        // a therapist at a time, so starts do not repeat).
        let from = after.map_or_else(DateTime::now, |a| a.max(DateTime::now()));
        let filter = doc! { "clientId": client, "startsAt": { "$gt": from }, "status": "upcoming" };
        self.bookings
            .find(scope.filter(filter))
            .sort(doc! { "clientId": 1, "startsAt": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await
    }

    /// Bookings whose change asked for emails that were not armed by `cutoff` (its writer
    /// stopped in between), oldest first.
    pub async fn awaiting_emails(
        &self,
        cutoff: DateTime,
        limit: i64,
    ) -> mongodb::error::Result<Vec<Booking>> {
        self.bookings
            .find(doc! { "pendingEmails": { "$exists": true }, "updatedAt": { "$lt": cutoff } })
            .sort(doc! { "updatedAt": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await
    }

    /// The names of the therapists of `bookings`, in one query.
    pub async fn therapist_names(
        &self,
        bookings: &[Booking],
    ) -> mongodb::error::Result<HashMap<ObjectId, String>> {
        let mut ids: Vec<ObjectId> = bookings.iter().map(|b| b.therapist_id).collect();
        ids.sort();
        ids.dedup();
        self.users.names(&ids).await
    }

    /// Statistics of a therapist's bookings whose local date is in `[from, to]`.
    pub async fn statistics(
        &self,
        scope: &OwnerScope,
        from: &str,
        to: &str,
    ) -> mongodb::error::Result<Document> {
        let pipeline = vec![
            doc! { "$match": scope.filter(doc! { "date": { "$gte": from, "$lte": to } }) },
            doc! { "$facet": {
                "byStatus": [ { "$group": { "_id": "$status", "n": { "$sum": 1 } } } ],
                "revenue": [
                    { "$match": { "status": "completed" } },
                    { "$group": { "_id": null, "cents": { "$sum": "$amountCents" } } },
                ],
                "clients": [
                    { "$match": { "status": { "$ne": "cancelled" } } },
                    { "$group": { "_id": "$clientId" } },
                    { "$count": "n" },
                ],
                "duration": [
                    { "$match": { "status": { "$ne": "cancelled" } } },
                    { "$group": { "_id": null, "avg": { "$avg": "$therapyDuration" } } },
                ],
            } },
        ];
        let mut cursor = self.analytics.aggregate(pipeline).await?;
        Ok(cursor.try_next().await?.unwrap_or_default())
    }

    /// The therapist's day at a glance in one `$facet` round trip (read from secondaries where
    /// there are some): the bookings of local date `today`, the next one to happen, how many
    /// are still to happen, and counts by status.
    pub async fn glance(&self, scope: &OwnerScope, today: &str) -> mongodb::error::Result<Glance> {
        let coming =
            doc! { "status": { "$in": ["pending", "upcoming"] }, "startsAt": { "$gte": DateTime::now() } };
        let pipeline = vec![
            doc! { "$match": scope.filter(doc! {}) },
            doc! { "$facet": {
                "today": [ { "$match": { "date": today } }, { "$sort": { "startsAt": 1 } }, { "$limit": 100 } ],
                "next": [ { "$match": coming.clone() }, { "$sort": { "startsAt": 1 } }, { "$limit": 1 } ],
                "upcoming": [ { "$match": coming }, { "$count": "n" } ],
                "byStatus": [ { "$group": { "_id": "$status", "n": { "$sum": 1 } } } ],
            } },
        ];
        let facets: Option<GlanceFacets> = self
            .analytics
            .aggregate(pipeline)
            .with_type::<GlanceFacets>()
            .await?
            .try_next()
            .await?;
        let f = facets.unwrap_or_default();
        Ok(Glance {
            today: f.today,
            next: f.next.into_iter().next(),
            upcoming: f.upcoming.first().map_or(0, |c| c.n),
            by_status: f.by_status.into_iter().map(|c| (c.id, c.n)).collect(),
        })
    }
}

/// A count of a `$facet` (`{ n }`, or `{ _id, n }` grouped).
#[derive(Debug, Deserialize)]
struct FacetCount {
    #[serde(rename = "_id", default)]
    id: String,
    n: i64,
}

/// The raw facets of [`BookingStore::glance`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlanceFacets {
    today: Vec<Booking>,
    next: Vec<Booking>,
    upcoming: Vec<FacetCount>,
    by_status: Vec<FacetCount>,
}

/// A therapist's bookings at a glance (see [`BookingStore::glance`]).
pub struct Glance {
    /// Today's bookings (local date), in time order.
    pub today: Vec<Booking>,
    /// The next booking still to happen.
    pub next: Option<Booking>,
    /// How many are still to happen.
    pub upcoming: i64,
    /// Count of each status.
    pub by_status: HashMap<String, i64>,
}
