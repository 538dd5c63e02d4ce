//! The no-double-booking guarantee, enforced by the database.
//!
//! A booking holds its time as one claim document per 5-minute UTC bucket of
//! `[startsAt, endsAt + buffer)`, whose `_id` is `<therapist>:<bucket>`: MongoDB's unique `_id`
//! lets exactly one booking hold a bucket, on a replica set as on a single server, whatever
//! the number of instances or retries. Two bookings conflict exactly when their claimed ranges
//! share a bucket, i.e. `a.start < b.end + buffer && b.start < a.end + buffer`.
//!
//! Claims are written before the booking (so no booking is ever visible without them), in
//! ascending bucket order — one global lock order, so among requests that all overlap one
//! instant exactly one wins. A loser removes what it wrote. Claims whose booking never appeared
//! (a crash between the two writes) or was cancelled are removed by `reap_orphans`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};
use mongodb::options::InsertManyOptions;
use mongodb::Collection;

use crate::db::Db;

/// Claim granularity. Booking times are whole multiples of it.
pub const BUCKET_MINUTES: i64 = 5;
/// A claim younger than this may belong to a booking still being written.
pub const ORPHAN_AFTER_SECS: i64 = 300;
/// How far back the reaper looks (it runs every minute).
pub const REAP_WINDOW_SECS: i64 = 3600;

/// Collection name.
pub const CLAIMS: &str = "slot_claims";

/// The buckets of `[start, end + buffer)`.
pub fn buckets(start: DateTime<Utc>, end: DateTime<Utc>, buffer_minutes: u32) -> Vec<i64> {
    let first = start.timestamp().div_euclid(60 * BUCKET_MINUTES);
    let stop_secs = end.timestamp() + i64::from(buffer_minutes) * 60;
    let last = (stop_secs + 60 * BUCKET_MINUTES - 1).div_euclid(60 * BUCKET_MINUTES);
    (first..last).collect()
}

fn claim_id(therapist: ObjectId, bucket: i64) -> String {
    format!("{}:{bucket}", therapist.to_hex())
}

/// Outcome of claiming.
#[derive(Debug, PartialEq, Eq)]
pub enum Claimed {
    Ok,
    /// Some bucket is held by another booking; nothing was kept.
    Conflict,
}

/// Claim operations.
pub struct Claims {
    coll: Collection<Document>,
}

impl Claims {
    pub fn new(db: &Db) -> Self {
        Self {
            coll: db.collection(CLAIMS),
        }
    }

    /// Claims `buckets` (any order) for `booking`; all or nothing.
    pub async fn claim(
        &self,
        therapist: ObjectId,
        booking: ObjectId,
        buckets: &BTreeSet<i64>,
    ) -> mongodb::error::Result<Claimed> {
        if buckets.is_empty() {
            return Ok(Claimed::Ok);
        }
        let now = mongodb::bson::DateTime::now();
        let docs: Vec<Document> = buckets
            .iter()
            .map(|b| {
                doc! {
                    "_id": claim_id(therapist, *b), "therapistId": therapist, "bookingId": booking,
                    "bucket": *b, "createdAt": now,
                }
            })
            .collect();
        let options = InsertManyOptions::builder().ordered(true).build();
        match self.coll.insert_many(docs).with_options(options).await {
            Ok(_) => Ok(Claimed::Ok),
            Err(e) if crate::db::is_duplicate_key(&e) => {
                self.release_buckets(booking, buckets).await?;
                Ok(Claimed::Conflict)
            }
            Err(e) => {
                // Unknown outcome (network): do not leave a partial claim behind.
                let _ = self.release_buckets(booking, buckets).await;
                Err(e)
            }
        }
    }

    /// Releases the given buckets if (and only if) `booking` holds them.
    pub async fn release_buckets(
        &self,
        booking: ObjectId,
        buckets: &BTreeSet<i64>,
    ) -> mongodb::error::Result<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        let list: Vec<i64> = buckets.iter().copied().collect();
        self.coll
            .delete_many(doc! { "bookingId": booking, "bucket": { "$in": list } })
            .await
            .map(|_| ())
    }

    /// Releases everything `booking` holds.
    pub async fn release_all(&self, booking: ObjectId) -> mongodb::error::Result<()> {
        self.coll
            .delete_many(doc! { "bookingId": booking })
            .await
            .map(|_| ())
    }

    /// Releases everything held by any of `bookings`.
    pub async fn release_many(&self, bookings: &[ObjectId]) -> mongodb::error::Result<()> {
        if bookings.is_empty() {
            return Ok(());
        }
        self.coll
            .delete_many(doc! { "bookingId": { "$in": bookings.to_vec() } })
            .await
            .map(|_| ())
    }

    /// Frees time held without reason: claims 5 to 60 minutes old whose booking never
    /// appeared (a crash between the two writes), and claims of bookings cancelled in the last
    /// hour whose release failed. The windows keep each run small; the job runs every minute.
    /// Returns how many claims were removed.
    pub async fn reap_orphans(&self, db: &Db) -> mongodb::error::Result<u64> {
        let now = mongodb::bson::DateTime::now().timestamp_millis();
        let ms = mongodb::bson::DateTime::from_millis;
        let (young, old) = (
            ms(now - ORPHAN_AFTER_SECS * 1000),
            ms(now - REAP_WINDOW_SECS * 1000),
        );
        let recent: Vec<Document> = self
            .coll
            .find(doc! { "createdAt": { "$lt": young, "$gte": old } })
            .projection(doc! { "bookingId": 1 })
            .await?
            .try_collect()
            .await?;
        let ids: BTreeSet<ObjectId> = recent
            .iter()
            .filter_map(|d| d.get_object_id("bookingId").ok())
            .collect();
        let bookings = db.collection::<Document>("bookings");
        let mut dead: Vec<ObjectId> = Vec::new();
        if !ids.is_empty() {
            let list: Vec<ObjectId> = ids.iter().copied().collect();
            let live: Vec<Document> = bookings
                .find(doc! { "_id": { "$in": &list }, "status": { "$ne": "cancelled" } })
                .projection(doc! { "_id": 1 })
                .await?
                .try_collect()
                .await?;
            let live: BTreeSet<ObjectId> = live.iter().filter_map(|d| d.get_object_id("_id").ok()).collect();
            dead.extend(ids.difference(&live));
        }
        let cancelled: Vec<Document> = bookings
            .find(doc! { "status": "cancelled", "updatedAt": { "$gte": old } })
            .projection(doc! { "_id": 1 })
            .await?
            .try_collect()
            .await?;
        dead.extend(cancelled.iter().filter_map(|d| d.get_object_id("_id").ok()));
        if dead.is_empty() {
            return Ok(0);
        }
        let r = self
            .coll
            .delete_many(doc! { "bookingId": { "$in": dead } })
            .await?;
        Ok(r.deleted_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 5, 6, h, m, 0).unwrap()
    }

    fn overlap(a: &[i64], b: &[i64]) -> bool {
        a.iter().any(|x| b.contains(x))
    }

    #[test]
    fn adjacent_bookings_do_not_collide_but_buffers_do() {
        let a = buckets(at(10, 0), at(11, 0), 0);
        assert_eq!(a.len(), 12);
        let b = buckets(at(11, 0), at(12, 0), 0);
        assert!(!overlap(&a, &b));
        let a_buf = buckets(at(10, 0), at(11, 0), 15);
        assert!(overlap(&a_buf, &b), "a 15-minute buffer keeps 11:00-11:15 free");
        let c = buckets(at(11, 15), at(12, 0), 15);
        assert!(!overlap(&a_buf, &c));
    }

    /// For every pair of 5-minute-aligned intervals, claims overlap exactly when the
    /// intervals (with the first one's buffer after it, and the second's after it) overlap.
    #[test]
    fn property_claims_overlap_iff_intervals_conflict() {
        let slots: Vec<(u32, u32)> = (0..24).flat_map(|s| (s + 1..=24).map(move |e| (s, e))).collect();
        for buffer in [0u32, 5, 10, 15] {
            for &(s1, e1) in &slots {
                for &(s2, e2) in slots.iter().step_by(7) {
                    let (a0, a1) = (
                        at(8, 0) + chrono::Duration::minutes(5 * s1 as i64),
                        at(8, 0) + chrono::Duration::minutes(5 * e1 as i64),
                    );
                    let (b0, b1) = (
                        at(8, 0) + chrono::Duration::minutes(5 * s2 as i64),
                        at(8, 0) + chrono::Duration::minutes(5 * e2 as i64),
                    );
                    let buf = chrono::Duration::minutes(buffer as i64);
                    let conflict = a0 < b1 + buf && b0 < a1 + buf;
                    assert_eq!(
                        overlap(&buckets(a0, a1, buffer), &buckets(b0, b1, buffer)),
                        conflict
                    );
                }
            }
        }
    }
}
