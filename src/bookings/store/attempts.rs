//! The bookings of one creation attempt: written together, each naming the attempt's claim
//! token in `claimTokens`; removed only by that attempt, and only while no other attempt of the
//! same keyed request (same derived ids) has adopted them.

use mongodb::bson::doc;
use mongodb::bson::oid::ObjectId;
use mongodb::options::InsertManyOptions;

use super::BookingStore;
use crate::bookings::model::Booking;

impl BookingStore {
    /// Inserts `bookings`, every one of them even when another fails (an id another attempt of
    /// the same request wrote), so that the error names exactly what was not written here.
    pub async fn insert_all(&self, bookings: &[Booking]) -> mongodb::error::Result<()> {
        let options = InsertManyOptions::builder().ordered(false).build();
        self.bookings
            .insert_many(bookings)
            .with_options(options)
            .await
            .map(|_| ())
    }

    /// Removes those of `ids` that the attempt `token` wrote and no other attempt adopted
    /// (undoing a partly written series). Whether none of `ids` names `token` any more, i.e.
    /// the attempt's time holds no booking and may be let go.
    pub async fn delete_written(&self, ids: &[ObjectId], token: ObjectId) -> mongodb::error::Result<bool> {
        let ids = ids.to_vec();
        self.bookings
            .delete_many(doc! { "_id": { "$in": ids.clone() }, "claimTokens": [token] })
            .await?;
        let left = self
            .bookings
            .count_documents(doc! { "_id": { "$in": ids }, "claimTokens": token })
            .await?;
        Ok(left == 0)
    }

    /// Adds `token` to the claim tokens of those of `ids` that are written: another attempt of
    /// the same keyed request wrote them while the attempt `token` held (or took over) their
    /// time. A move of them then releases those claims too, and the attempt that wrote them no
    /// longer removes them when undoing (see [`BookingStore::delete_written`]).
    pub async fn adopt(&self, ids: &[ObjectId], token: ObjectId) -> mongodb::error::Result<()> {
        self.bookings
            .update_many(
                doc! { "_id": { "$in": ids.to_vec() } },
                doc! { "$addToSet": { "claimTokens": token } },
            )
            .await
            .map(|_| ())
    }
}
