//! The no-double-booking guarantee, enforced by the database.
//!
//! A booking holds its time as one claim document per 5-minute UTC bucket of
//! `[startsAt, endsAt + buffer)`, whose `_id` is `<therapist>:<bucket>`: MongoDB's unique `_id`
//! lets exactly one booking hold a bucket, on a replica set as on a single server, whatever
//! the number of instances or retries. Two bookings conflict exactly when their claimed ranges
//! share a bucket, i.e. `a.start < b.end + buffer && b.start < a.end + buffer`.
//!
//! Claims are written before the booking (so no booking is ever visible without them), in
//! ascending bucket order: one global lock order, so among requests that all overlap one
//! instant exactly one wins.
//!
//! Every claim attempt carries its own `token`, and every removal names the tokens it may
//! remove: a loser removes only what *it* wrote (never what a concurrent attempt on the same
//! booking just took), a reschedule releases only buckets held under the tokens the booking
//! recorded (`claimTokens`), and the reaper removes a claim only by `_id` and token after
//! seeing that it does not belong to its booking's current time.
//!
//! A keyed creation's retry takes over the claims its own earlier attempt left (`takeover.rs`):
//! a claim naming the very booking id the retry writes (derived from the key and body) is re-tokened to
//! the retry and marked `takenOver`. A claim taken over is never removed by an attempt's own
//! release, since it may hold the time of the booking the attempt it was taken from still
//! writes; only the reaper (once no booking of its id covers it), a cancel or a move of that
//! booking free it.
//!
//! Claims of time that has passed are not needed for long: each carries `expiresAt` (its
//! bucket's end plus the retention) and a TTL index removes it. Bookings whose time ends
//! before `now - retention + margin` are refused, so no booking is ever written over time
//! whose claims may already be gone.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};
use mongodb::options::InsertManyOptions;
use mongodb::Collection;

use crate::db::Db;

mod reap;
mod takeover;

/// Claim granularity. Booking times are whole multiples of it.
pub const BUCKET_MINUTES: i64 = 5;
/// A claim younger than this may belong to a booking write still in progress; the reaper
/// leaves it alone. Writers give up (and release) well before: see `WRITE_DEADLINE_SECS`.
pub const ORPHAN_AFTER_SECS: i64 = 300;
/// A write path that has held its new claims this long without writing the booking releases
/// them and fails instead (so a claim the reaper may take is never relied upon).
pub const WRITE_DEADLINE_SECS: i64 = 60;
/// Claims looked at per reaper batch.
pub const REAP_BATCH: i64 = 500;

/// Collection name.
pub const CLAIMS: &str = "slot_claims";

/// The buckets of `[start, end + buffer)`.
pub fn buckets(start: DateTime<Utc>, end: DateTime<Utc>, buffer_minutes: u32) -> Vec<i64> {
    let first = start.timestamp().div_euclid(60 * BUCKET_MINUTES);
    let stop_secs = end.timestamp() + i64::from(buffer_minutes) * 60;
    let last = (stop_secs + 60 * BUCKET_MINUTES - 1).div_euclid(60 * BUCKET_MINUTES);
    (first..last).collect()
}

/// The buckets a booking holds while it holds time.
pub fn buckets_of(b: &super::model::Booking) -> BTreeSet<i64> {
    buckets(b.starts_at.to_chrono(), b.ends_at.to_chrono(), b.buffer_minutes)
        .into_iter()
        .collect()
}

/// Of the claims matching a filter, those an attempt's own release may remove: all but the
/// ones taken over (see the module's notes).
fn releasable(mut filter: Document) -> Document {
    filter.insert("takenOver", doc! { "$ne": true });
    filter
}

fn claim_id(therapist: ObjectId, bucket: i64) -> String {
    format!("{}:{bucket}", therapist.to_hex())
}

/// The claim ids of `buckets`.
fn claim_ids(therapist: ObjectId, buckets: &BTreeSet<i64>) -> Vec<String> {
    buckets.iter().map(|b| claim_id(therapist, *b)).collect()
}

/// Outcome of claiming.
#[derive(Debug, PartialEq, Eq)]
pub enum Claimed {
    Ok,
    /// Some bucket is held by another booking (or attempt); nothing this call inserted was kept.
    Conflict,
    /// Every bucket is held for this very booking, but another attempt of it kept taking them
    /// back (a stalled one woke up): nothing this call inserted was kept; try again later.
    Contended,
}

/// What one reaper pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// Claims examined by the sweep.
    pub examined: u64,
    /// Claims removed because they do not belong to their booking's current time.
    pub orphans: u64,
    /// Claims removed because their time has passed the retention.
    pub expired: u64,
    /// Whether this pass reached the end of the collection (the sweep starts over).
    pub wrapped: bool,
}

/// Claim operations.
pub struct Claims {
    coll: Collection<Document>,
    bookings: Collection<Document>,
    retention_ms: i64,
}

impl Claims {
    /// Claims of `db`, kept `retention_days` after their time.
    pub fn new(db: &Db, retention_days: u32) -> Self {
        Self {
            coll: db.collection(CLAIMS),
            bookings: db.collection(super::store::BOOKINGS),
            retention_ms: i64::from(retention_days.max(1)) * 86_400_000,
        }
    }

    /// The earliest end a booking written now may have: its claims then live at least a day.
    pub fn earliest_end(&self) -> DateTime<Utc> {
        let ms = Utc::now().timestamp_millis() - self.retention_ms + 86_400_000;
        DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now)
    }

    fn expires_at(&self, bucket: i64) -> mongodb::bson::DateTime {
        let end_ms = (bucket + 1) * BUCKET_MINUTES * 60_000;
        mongodb::bson::DateTime::from_millis(end_ms.saturating_add(self.retention_ms))
    }

    /// Claims `buckets` for `booking` under the attempt's `token`; all or nothing. A bucket held
    /// by a claim the reaper would free (not its booking's time, older than the grace) is
    /// freed and the claim tried once more, so creation agrees with the free-slot view.
    pub async fn claim(
        &self,
        therapist: ObjectId,
        booking: ObjectId,
        token: ObjectId,
        buckets: &BTreeSet<i64>,
    ) -> mongodb::error::Result<Claimed> {
        self.claim_with(therapist, booking, token, buckets, false).await
    }

    /// [`Claims::claim`] for a keyed creation, whose `booking` id derives from its key: buckets
    /// held by claims naming `booking` itself (an earlier attempt of the same request) are taken
    /// over; any held for another booking is a conflict.
    pub async fn claim_keyed(
        &self,
        therapist: ObjectId,
        booking: ObjectId,
        token: ObjectId,
        buckets: &BTreeSet<i64>,
    ) -> mongodb::error::Result<Claimed> {
        self.claim_with(therapist, booking, token, buckets, true).await
    }

    async fn claim_with(
        &self,
        therapist: ObjectId,
        booking: ObjectId,
        token: ObjectId,
        buckets: &BTreeSet<i64>,
        take_over: bool,
    ) -> mongodb::error::Result<Claimed> {
        if buckets.is_empty() {
            return Ok(Claimed::Ok);
        }
        let first = self
            .attempt(therapist, booking, token, buckets, take_over)
            .await?;
        if first != Claimed::Conflict {
            return Ok(first);
        }
        let ids = claim_ids(therapist, buckets);
        if self.reap_filter(doc! { "_id": { "$in": ids } }).await? == 0 {
            return Ok(Claimed::Conflict);
        }
        self.attempt(therapist, booking, token, buckets, take_over).await
    }

    /// One try: insert every claim, and failing that (`take_over`) take over those held for
    /// `booking` itself. Unless it succeeds, none of the claims this call inserted is kept.
    async fn attempt(
        &self,
        therapist: ObjectId,
        booking: ObjectId,
        token: ObjectId,
        buckets: &BTreeSet<i64>,
        take_over: bool,
    ) -> mongodb::error::Result<Claimed> {
        let claimed = self.try_claim(therapist, booking, token, buckets).await?;
        if claimed == Claimed::Ok || !take_over {
            return Ok(claimed);
        }
        let taken = self.take_over(therapist, booking, token, buckets).await;
        if !matches!(taken, Ok(Claimed::Ok)) {
            let ids = claim_ids(therapist, buckets);
            let undo = self
                .coll
                .delete_many(releasable(doc! { "_id": { "$in": ids }, "token": token }))
                .await;
            if taken.is_ok() {
                undo?;
            }
        }
        taken
    }

    /// The claim of `bucket` for `booking` by the attempt `token`.
    fn claim_doc(
        &self,
        therapist: ObjectId,
        booking: ObjectId,
        token: ObjectId,
        bucket: i64,
        now: mongodb::bson::DateTime,
    ) -> Document {
        doc! {
            "_id": claim_id(therapist, bucket), "therapistId": therapist, "bookingId": booking,
            "bucket": bucket, "token": token, "createdAt": now, "expiresAt": self.expires_at(bucket),
        }
    }

    async fn try_claim(
        &self,
        therapist: ObjectId,
        booking: ObjectId,
        token: ObjectId,
        buckets: &BTreeSet<i64>,
    ) -> mongodb::error::Result<Claimed> {
        let now = mongodb::bson::DateTime::now();
        let docs: Vec<Document> = buckets
            .iter()
            .map(|b| self.claim_doc(therapist, booking, token, *b, now))
            .collect();
        let ids = claim_ids(therapist, buckets);
        // Undoing this call removes its own documents only: earlier occurrences of the same
        // attempt (a series) keep theirs until the caller decides, and claims it took over in
        // an earlier try stay (see the module's notes).
        let undo = releasable(doc! { "_id": { "$in": ids }, "token": token });
        let options = InsertManyOptions::builder().ordered(true).build();
        match self.coll.insert_many(docs).with_options(options).await {
            Ok(_) => Ok(Claimed::Ok),
            Err(e) if crate::db::is_duplicate_key(&e) => {
                self.coll.delete_many(undo).await?;
                Ok(Claimed::Conflict)
            }
            Err(e) => {
                // Unknown outcome (network): do not leave a partial claim behind.
                let _ = self.coll.delete_many(undo).await;
                Err(e)
            }
        }
    }

    /// Removes what one claim attempt wrote, and nothing else (never a claim it took over).
    pub async fn release_attempt(&self, token: ObjectId) -> mongodb::error::Result<()> {
        self.coll
            .delete_many(releasable(doc! { "token": token }))
            .await
            .map(|_| ())
    }

    /// Removes what several claim attempts wrote (never a claim one of them took over).
    pub async fn release_attempts(&self, tokens: &[ObjectId]) -> mongodb::error::Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.coll
            .delete_many(releasable(doc! { "token": { "$in": tokens.to_vec() } }))
            .await
            .map(|_| ())
    }

    /// Releases `buckets` of `booking` held under one of `tokens` (the booking's recorded
    /// claims before a move): a bucket some later attempt claimed again is left alone.
    pub async fn release_buckets(
        &self,
        booking: ObjectId,
        tokens: &[ObjectId],
        buckets: &BTreeSet<i64>,
    ) -> mongodb::error::Result<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        let list: Vec<i64> = buckets.iter().copied().collect();
        // `null` also matches claims written before tokens existed.
        let mut held: Vec<mongodb::bson::Bson> = tokens.iter().map(|t| (*t).into()).collect();
        held.push(mongodb::bson::Bson::Null);
        self.coll
            .delete_many(doc! { "bookingId": booking, "bucket": { "$in": list }, "token": { "$in": held } })
            .await
            .map(|_| ())
    }

    /// Releases everything a booking that no longer holds time (cancelled) still holds. A
    /// cancelled booking never holds time again, so any claim naming it is stale.
    pub async fn release_all(&self, booking: ObjectId) -> mongodb::error::Result<()> {
        self.coll
            .delete_many(doc! { "bookingId": booking })
            .await
            .map(|_| ())
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
