//! The outbox (collection `email_jobs`): arming and disarming jobs, claiming due ones under a
//! lease, and recording what each attempt did. Every state change of a claimed job is guarded
//! by its lease owner, so a worker whose lease was taken over cannot overwrite the new owner.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, to_document, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;

use super::model::{EmailJob, JobKind, JobState};
use crate::db::Db;
use crate::error::is_duplicate_key;

/// The collection name.
pub const EMAIL_JOBS: &str = "email_jobs";

/// Queries of the outbox.
pub struct EmailStore {
    jobs: Collection<EmailJob>,
}

/// A state as stored.
pub fn state_name(s: JobState) -> mongodb::bson::Bson {
    mongodb::bson::to_bson(&s).unwrap_or_default()
}

impl EmailStore {
    pub fn new(db: &Db) -> Self {
        Self {
            jobs: db.collection(EMAIL_JOBS),
        }
    }

    /// Creates `job` unless a job of its id exists; a booking job that was disarmed (its
    /// booking moved away and back) is armed again. Whether a job was created or re-armed.
    pub async fn arm(&self, job: &EmailJob) -> mongodb::error::Result<bool> {
        let fields = to_document(job)?;
        let upsert = self
            .jobs
            .update_one(doc! { "_id": &job.id }, doc! { "$setOnInsert": fields })
            .upsert(true)
            .await;
        match upsert {
            Ok(r) if r.upserted_id.is_some() => return Ok(true),
            Ok(_) => {}
            // Two writers armed it at once: the other one created it.
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e),
        }
        let revived = self
            .jobs
            .update_one(
                doc! { "_id": &job.id, "state": state_name(JobState::Cancelled) },
                doc! { "$set": {
                    "state": state_name(JobState::Scheduled), "dueAt": job.due_at, "attempts": 0,
                    "updatedAt": DateTime::now(),
                }, "$unset": { "lastError": "" } },
            )
            .await?;
        Ok(revived.modified_count > 0)
    }

    /// Cancels the not-yet-sent jobs of `kinds` of `booking` other than `keep`: what a move,
    /// a cancellation or a changed preference made unwarranted. How many.
    pub async fn disarm(
        &self,
        booking: ObjectId,
        kinds: &[JobKind],
        keep: &[String],
        reason: &str,
    ) -> mongodb::error::Result<u64> {
        let kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_owned()).collect();
        let r = self
            .jobs
            .update_many(
                doc! {
                    "bookingId": booking,
                    "kind": { "$in": kinds },
                    "state": { "$in": [state_name(JobState::Scheduled), state_name(JobState::Failed)] },
                    "_id": { "$nin": keep.to_vec() },
                },
                doc! { "$set": {
                    "state": state_name(JobState::Cancelled), "lastError": reason, "updatedAt": DateTime::now(),
                } },
            )
            .await?;
        Ok(r.modified_count)
    }

    /// Claims the job due longest ago for `owner` (a token of this one claim) until
    /// `lease_until` (one atomic `findOneAndUpdate` on the `state, dueAt` index), counting the
    /// attempt.
    pub async fn claim_next(
        &self,
        owner: &str,
        now: DateTime,
        lease_until: DateTime,
    ) -> mongodb::error::Result<Option<EmailJob>> {
        self.jobs
            .find_one_and_update(
                doc! {
                    "state": { "$in": [state_name(JobState::Scheduled), state_name(JobState::Failed)] },
                    "dueAt": { "$lte": now },
                },
                doc! {
                    "$set": {
                        "state": state_name(JobState::Sending), "phase": "claimed",
                        "leaseOwner": owner, "leaseUntil": lease_until, "updatedAt": now,
                    },
                    "$inc": { "attempts": 1 },
                },
            )
            .sort(doc! { "dueAt": 1 })
            .return_document(ReturnDocument::After)
            .await
    }

    /// Whether a job is due now and unclaimed (a read: an idle worker writes nothing).
    pub async fn any_due(&self, now: DateTime) -> mongodb::error::Result<bool> {
        let filter = doc! {
            "state": { "$in": [state_name(JobState::Scheduled), state_name(JobState::Failed)] },
            "dueAt": { "$lte": now },
        };
        let ids = self.jobs.clone_with_type::<Document>();
        Ok(ids
            .find_one(filter)
            .projection(doc! { "_id": 1 })
            .await?
            .is_some())
    }

    /// Whether a claimed job's lease ran out (a read, before `recover_expired` writes).
    pub async fn any_expired(&self, now: DateTime) -> mongodb::error::Result<bool> {
        let filter = doc! { "state": state_name(JobState::Sending), "leaseUntil": { "$lt": now } };
        let ids = self.jobs.clone_with_type::<Document>();
        Ok(ids
            .find_one(filter)
            .projection(doc! { "_id": 1 })
            .await?
            .is_some())
    }

    /// Settles jobs whose lease ran out: never handed to SMTP, they are due again; handed to
    /// SMTP, they may have arrived, and are recorded sent but unconfirmed rather than sent
    /// twice. (requeued, unconfirmed)
    pub async fn recover_expired(&self, now: DateTime) -> mongodb::error::Result<(u64, u64)> {
        let expired = |phase: &str| {
            doc! { "state": state_name(JobState::Sending), "leaseUntil": { "$lt": now }, "phase": phase }
        };
        let unlease = doc! { "phase": "", "leaseOwner": "", "leaseUntil": "" };
        let requeued = self
            .jobs
            .update_many(
                expired("claimed"),
                doc! { "$set": {
                    "state": state_name(JobState::Scheduled), "dueAt": now, "updatedAt": now,
                    "lastError": "the worker holding it stopped before sending it",
                }, "$unset": unlease.clone() },
            )
            .await?;
        let unconfirmed = self
            .jobs
            .update_many(
                expired("submitting"),
                doc! { "$set": {
                    "state": state_name(JobState::Sent), "unconfirmed": true, "sentAt": now, "updatedAt": now,
                    "lastError": "the worker stopped while handing it to SMTP; not sent again",
                }, "$unset": { "phase": "", "leaseOwner": "", "leaseUntil": "", "vars": "" } },
            )
            .await?;
        Ok((requeued.modified_count, unconfirmed.modified_count))
    }

    /// Records that `owner` is handing the job to SMTP now, if its lease still holds, and renews
    /// the lease for the exchange (which is bounded well inside it).
    pub async fn mark_submitting(
        &self,
        id: &str,
        owner: &str,
        lease_until: DateTime,
    ) -> mongodb::error::Result<bool> {
        let now = DateTime::now();
        let r = self
            .jobs
            .update_one(
                doc! { "_id": id, "state": state_name(JobState::Sending), "leaseOwner": owner, "leaseUntil": { "$gt": now } },
                doc! { "$set": { "phase": "submitting", "leaseUntil": lease_until, "updatedAt": now } },
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    /// Ends `owner`'s claim: `set` applied, the lease dropped, and when the job is final
    /// (`sent`, `dead`, `cancelled`) the template data too (account links carry single-use
    /// tokens). Whether the claim was still `owner`'s.
    pub async fn finish(
        &self,
        id: &str,
        owner: &str,
        state: JobState,
        mut set: Document,
    ) -> mongodb::error::Result<bool> {
        set.insert("state", state_name(state));
        set.insert("updatedAt", DateTime::now());
        let mut unset = doc! { "phase": "", "leaseOwner": "", "leaseUntil": "" };
        if state != JobState::Failed {
            unset.insert("vars", "");
        }
        let r = self
            .jobs
            .update_one(
                doc! { "_id": id, "state": state_name(JobState::Sending), "leaseOwner": owner },
                doc! { "$set": set, "$unset": unset },
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    /// Every email of `booking`, by due time.
    pub async fn of_booking(&self, booking: ObjectId) -> mongodb::error::Result<Vec<EmailJob>> {
        use futures_util::TryStreamExt;
        self.jobs
            .find(doc! { "bookingId": booking })
            .sort(doc! { "bookingId": 1, "dueAt": 1 })
            .await?
            .try_collect()
            .await
    }

    /// Jobs due now and not claimed.
    pub async fn queue_depth(&self, now: DateTime) -> mongodb::error::Result<u64> {
        self.jobs
            .count_documents(doc! {
                "state": { "$in": [state_name(JobState::Scheduled), state_name(JobState::Failed)] },
                "dueAt": { "$lte": now },
            })
            .await
    }

    /// Whether an account email of `kind` about `about` was ever stored (in any state).
    pub async fn ever_queued(&self, kind: JobKind, about: ObjectId) -> mongodb::error::Result<bool> {
        let found = self
            .jobs
            .clone_with_type::<Document>()
            .find_one(doc! { "about": about, "kind": kind.as_str() })
            .projection(doc! { "_id": 1 })
            .await?;
        Ok(found.is_some())
    }

    pub async fn get(&self, id: &str) -> mongodb::error::Result<Option<EmailJob>> {
        self.jobs.find_one(doc! { "_id": id }).await
    }
}
