//! Taking over the claims an earlier attempt of the same keyed creation left.
//!
//! A keyed creation derives its booking ids from its key and body (`idempotency::Ids`), and the
//! same key with another body is refused while its record lives (and names other ids once it is
//! gone), so a claim naming one of those ids was taken by an attempt of this very request, for
//! this very booking. An attempt whose
//! instance died between claiming and writing leaves such claims behind; its retry takes them
//! over instead of being refused by them (and storing that refusal under the key).
//!
//! The earlier attempt may only be stalled, and wake up later. What keeps that safe:
//! - only one booking of the id can ever be written (unique `_id`): whichever attempt writes
//!   it, the claims naming it hold its time, and the other attempt's insert fails;
//! - a claim is taken over by a conditional update on the token it was read with, so the
//!   reaper (which removes by `_id` and token) and the earlier attempt's release (by its token)
//!   no longer match it;
//! - a claim taken over is marked `takenOver` and never removed by any attempt's own release,
//!   not even its taker's: the booking of its id may be written by the attempt it was taken
//!   from. Only the reaper (once no booking of its id covers it), a cancel or a move of that
//!   booking remove it.

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::options::InsertManyOptions;

use super::{claim_id, claim_ids, Claimed, Claims};

/// Rounds of reading, taking over and inserting before giving up (only another attempt of the
/// same booking, taking the claims back, makes a round fail).
const ROUNDS: usize = 3;

impl Claims {
    /// Holds every bucket of `buckets` for `booking` under `token`: claims naming `booking` are
    /// taken over, free buckets claimed. `Conflict` as soon as a bucket is held for another
    /// booking. Claims inserted here are the caller's to undo when this does not succeed.
    pub(super) async fn take_over(
        &self,
        therapist: ObjectId,
        booking: ObjectId,
        token: ObjectId,
        buckets: &BTreeSet<i64>,
    ) -> mongodb::error::Result<Claimed> {
        let ids = claim_ids(therapist, buckets);
        for _ in 0..ROUNDS {
            let held: Vec<Document> = self
                .coll
                .find(doc! { "_id": { "$in": ids.clone() } })
                .await?
                .try_collect()
                .await?;
            if held
                .iter()
                .any(|c| c.get_object_id("bookingId").ok() != Some(booking))
            {
                return Ok(Claimed::Conflict);
            }
            let now = DateTime::now();
            for c in &held {
                let old = c.get("token").cloned().unwrap_or(Bson::Null);
                if old == Bson::ObjectId(token) {
                    continue;
                }
                // `createdAt` restarts the reaper's grace: this is a write in progress again.
                let id = c.get("_id").cloned().unwrap_or(Bson::Null);
                self.coll
                    .update_one(
                        doc! { "_id": id, "bookingId": booking, "token": old },
                        doc! { "$set": { "token": token, "createdAt": now, "takenOver": true } },
                    )
                    .await?;
            }
            let held_ids: BTreeSet<&str> = held.iter().filter_map(|c| c.get_str("_id").ok()).collect();
            let free: Vec<Document> = buckets
                .iter()
                .filter(|b| !held_ids.contains(claim_id(therapist, **b).as_str()))
                .map(|b| self.claim_doc(therapist, booking, token, *b, now))
                .collect();
            if !free.is_empty() {
                let options = InsertManyOptions::builder().ordered(true).build();
                match self.coll.insert_many(free).with_options(options).await {
                    Ok(_) => {}
                    // Claimed meanwhile: the next round reads who holds it.
                    Err(e) if crate::db::is_duplicate_key(&e) => continue,
                    Err(e) => return Err(e),
                }
            }
            let mine = self
                .coll
                .count_documents(doc! { "_id": { "$in": ids.clone() }, "token": token })
                .await?;
            if mine == ids.len() as u64 {
                return Ok(Claimed::Ok);
            }
        }
        Ok(Claimed::Contended)
    }
}
