//! The reaper: frees claims no booking's current time uses (a crash between claiming and
//! writing, a lost release), and expired ones. It converges: every claim is looked at in
//! bounded batches by `_id`, and each is removed only by `_id` and token.

use std::collections::{BTreeSet, HashMap};

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};

use super::{buckets_of, Claims, Reaped, ORPHAN_AFTER_SECS, REAP_BATCH};

impl Claims {
    /// One reaper pass: removes claims whose time passed the retention (the TTL index does the
    /// same on a genuine server), then examines the next batch of the sweep after `cursor`
    /// and removes every claim that does not belong to its booking's current time (booking
    /// missing, cancelled, or moved elsewhere), whatever its age (see `remove_unowned`). The
    /// sweep walks the whole collection by `_id` in batches, so repeated passes converge.
    pub async fn reap(&self, cursor: &mut Option<String>) -> mongodb::error::Result<Reaped> {
        let mut out = Reaped {
            expired: self.reap_expired().await?,
            ..Reaped::default()
        };
        let mut filter = Document::new();
        if let Some(after) = cursor.as_ref() {
            filter.insert("_id", doc! { "$gt": after.clone() });
        }
        let batch: Vec<Document> = self
            .coll
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(REAP_BATCH)
            .await?
            .try_collect()
            .await?;
        out.examined = batch.len() as u64;
        out.wrapped = (batch.len() as i64) < REAP_BATCH;
        *cursor = if out.wrapped {
            None
        } else {
            batch
                .last()
                .and_then(|d| d.get_str("_id").ok())
                .map(str::to_owned)
        };
        out.orphans = self.remove_unowned(batch).await?;
        Ok(out)
    }

    /// Runs reaper passes until the sweep has covered the whole collection once.
    pub async fn reap_all(&self) -> mongodb::error::Result<Reaped> {
        let mut cursor = None;
        let mut total = Reaped::default();
        loop {
            let r = self.reap(&mut cursor).await?;
            total.examined += r.examined;
            total.orphans += r.orphans;
            total.expired += r.expired;
            if r.wrapped {
                total.wrapped = true;
                return Ok(total);
            }
        }
    }

    async fn reap_expired(&self) -> mongodb::error::Result<u64> {
        let now = mongodb::bson::DateTime::now();
        let ids: Vec<Document> = self
            .coll
            .find(doc! { "expiresAt": { "$lt": now } })
            .projection(doc! { "_id": 1 })
            .limit(REAP_BATCH)
            .await?
            .try_collect()
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = ids.iter().filter_map(|d| d.get_str("_id").ok()).collect();
        let r = self
            .coll
            .delete_many(doc! { "_id": { "$in": ids }, "expiresAt": { "$lt": now } })
            .await?;
        Ok(r.deleted_count)
    }

    /// Frees the claims matching `filter` that the reaper would free.
    pub(super) async fn reap_filter(&self, filter: Document) -> mongodb::error::Result<u64> {
        let found: Vec<Document> = self.coll.find(filter).await?.try_collect().await?;
        self.remove_unowned(found).await
    }

    /// Removes, of `claims` (read before their bookings, so a booking read can only be newer),
    /// those their booking's current time does not cover: at any age when the booking no
    /// longer holds time (a cancelled booking never will again), and past the grace otherwise
    /// (a young claim may belong to a write still in progress). Each is removed by `_id` and
    /// token: a bucket claimed again meanwhile is never touched.
    async fn remove_unowned(&self, claims: Vec<Document>) -> mongodb::error::Result<u64> {
        let young = mongodb::bson::DateTime::now().timestamp_millis() - ORPHAN_AFTER_SECS * 1000;
        let ids: BTreeSet<ObjectId> = claims
            .iter()
            .filter_map(|c| c.get_object_id("bookingId").ok())
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let list: Vec<ObjectId> = ids.into_iter().collect();
        let found: Vec<crate::bookings::model::Booking> = self
            .bookings
            .clone_with_type::<crate::bookings::model::Booking>()
            .find(doc! { "_id": { "$in": list } })
            .await?
            .try_collect()
            .await?;
        // Some(time) for a booking that holds time, None for one that never will again.
        let held: HashMap<ObjectId, Option<BTreeSet<i64>>> = found
            .iter()
            .map(|b| (b.id, b.status.holds_time().then(|| buckets_of(b))))
            .collect();
        let mut removed = 0;
        for c in &claims {
            let (Ok(id), Ok(booking), Some(bucket)) = (
                c.get_str("_id"),
                c.get_object_id("bookingId"),
                c.get("bucket").and_then(crate::db::as_i64),
            ) else {
                continue;
            };
            let old = c
                .get_datetime("createdAt")
                .map(|t| t.timestamp_millis() < young)
                .unwrap_or(true);
            let stale = match held.get(&booking) {
                Some(None) => true,
                Some(Some(time)) => old && !time.contains(&bucket),
                None => old,
            };
            if !stale {
                continue;
            }
            let token = c.get("token").cloned().unwrap_or(mongodb::bson::Bson::Null);
            let r = self
                .coll
                .delete_one(doc! { "_id": id, "bookingId": booking, "token": token })
                .await?;
            removed += r.deleted_count;
        }
        Ok(removed)
    }
}
