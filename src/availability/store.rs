//! Every MongoDB query of schedules, blocks and absences.

use chrono_tz::Tz;
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime};
use mongodb::options::ReturnDocument;
use mongodb::Collection;

use super::model::{AbsencePatch, Block, Schedule, ScheduleDoc};
use crate::db::Db;
use crate::db::OwnerScope;
use crate::error::{ApiError, ApiResult};

/// Queries of availability.
pub struct AvailabilityStore {
    schedules: Collection<ScheduleDoc>,
    blocks: Collection<Block>,
}

impl AvailabilityStore {
    pub fn new(db: &Db) -> Self {
        Self {
            schedules: db.collection("availability"),
            blocks: db.collection("availability_blocks"),
        }
    }

    /// The therapist's rules, or the defaults when never set.
    pub async fn schedule(&self, therapist: ObjectId) -> mongodb::error::Result<Schedule> {
        Ok(self
            .schedules
            .find_one(doc! { "therapistId": therapist })
            .await?
            .map(|d| d.schedule)
            .unwrap_or_default())
    }

    /// The therapist's time zone, parsed once here for every caller. The zone is validated when
    /// stored, so one that does not parse is corrupt data: an error (logged), never a silent
    /// fallback to another zone.
    pub async fn zone(&self, therapist: ObjectId) -> ApiResult<Tz> {
        Ok(self.schedule_in_zone(therapist).await?.1)
    }

    /// The therapist's rules and their parsed zone (see [`AvailabilityStore::zone`]).
    pub async fn schedule_in_zone(&self, therapist: ObjectId) -> ApiResult<(Schedule, Tz)> {
        let schedule = self.schedule(therapist).await?;
        let zone = crate::time::parse_zone(&schedule.timezone).map_err(|_| {
            ApiError::Internal(anyhow::anyhow!(
                "therapist {therapist} has an invalid stored time zone `{}`",
                schedule.timezone
            ))
        })?;
        Ok((schedule, zone))
    }

    /// Replaces the therapist's rules.
    pub async fn put_schedule(&self, therapist: ObjectId, schedule: &Schedule) -> mongodb::error::Result<()> {
        let mut set = mongodb::bson::to_document(schedule)?;
        set.insert("updatedAt", DateTime::now());
        self.schedules
            .update_one(
                doc! { "therapistId": therapist },
                doc! { "$set": set, "$setOnInsert": { "_id": ObjectId::new(), "therapistId": therapist } },
            )
            .upsert(true)
            .await
            .map(|_| ())
    }

    pub async fn insert_block(&self, block: &Block) -> mongodb::error::Result<()> {
        self.blocks.insert_one(block).await.map(|_| ())
    }

    /// Blocks and absences of `therapist` overlapping `[from, to)`, of `kind` when given.
    pub async fn blocks_between(
        &self,
        therapist: ObjectId,
        from: DateTime,
        to: DateTime,
        kind: Option<&str>,
    ) -> mongodb::error::Result<Vec<Block>> {
        let mut filter =
            doc! { "therapistId": therapist, "startsAt": { "$lt": to }, "endsAt": { "$gt": from } };
        if let Some(k) = kind {
            filter.insert("kind", k);
        }
        self.blocks
            .find(filter)
            .sort(doc! { "startsAt": 1 })
            .await?
            .try_collect()
            .await
    }

    pub async fn get_block(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        kind: &str,
    ) -> mongodb::error::Result<Option<Block>> {
        let mut f = scope.by_id(id);
        f.insert("kind", kind);
        self.blocks.find_one(f).await
    }

    /// Applies `patch` to one of the owner's absences; the absence as it is now.
    pub async fn update_absence(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        patch: &AbsencePatch,
    ) -> mongodb::error::Result<Option<Block>> {
        let mut f = scope.by_id(id);
        f.insert("kind", "absence");
        let set = mongodb::bson::to_document(patch)?;
        self.blocks
            .find_one_and_update(f, doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
    }

    /// Replaces a block of kind `block` within the owner's scope; false when there is none.
    pub async fn replace_block(&self, scope: &OwnerScope, block: &Block) -> mongodb::error::Result<bool> {
        let mut f = scope.by_id(block.id);
        f.insert("kind", "block");
        Ok(self.blocks.replace_one(f, block).await?.matched_count == 1)
    }

    pub async fn delete_block(
        &self,
        scope: &OwnerScope,
        id: ObjectId,
        kind: &str,
    ) -> mongodb::error::Result<bool> {
        let mut f = scope.by_id(id);
        f.insert("kind", kind);
        Ok(self.blocks.delete_one(f).await?.deleted_count == 1)
    }
}
