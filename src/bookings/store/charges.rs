//! The bookings side of a payment's transaction: what a booking counts as paid and its
//! `paymentStatus`, read and written inside the caller's session (`&mut ClientSession`), so
//! the payment and its booking change together or not at all. What a charge may do (a
//! cancelled booking, a total beyond the price) is the payments' decision; these only read and
//! write.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime};
use mongodb::ClientSession;
use serde::{Deserialize, Serialize};

use super::BookingStore;
use crate::bookings::model::PaymentStatus;

/// What a booking counts as paid, and what decides whether it may take more (a projection).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeView {
    /// The payments, refunds and status changes already applied (each once).
    #[serde(default)]
    pub charge_ids: Vec<ObjectId>,
    #[serde(default)]
    pub paid_cents: i64,
    pub amount_cents: i64,
    pub status: String,
    #[serde(default)]
    pub version: i64,
}

/// What a charge sets on its booking besides `paidCents` (`$set`; what is `None` is kept).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeMark {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<PaymentStatus>,
    /// The payment that paid it (set with a payment, not with a refund).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<ObjectId>,
    /// How that payment was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
}

/// The fields of a [`ChargeView`].
fn charge_view_fields() -> mongodb::bson::Document {
    doc! { "chargeIds": 1, "paidCents": 1, "amountCents": 1, "status": 1, "version": 1 }
}

impl BookingStore {
    /// What the booking counts as paid, as of `version` (`None`: it changed since, or is gone).
    pub async fn paid_cents_at(
        &self,
        booking: ObjectId,
        version: i64,
    ) -> mongodb::error::Result<Option<i64>> {
        let found = self
            .bookings
            .clone_with_type::<ChargeView>()
            .find_one(doc! { "_id": booking, "version": version })
            .projection(charge_view_fields())
            .await?;
        Ok(found.map(|v| v.paid_cents))
    }

    /// In `session`: what the therapist's booking counts as paid (`None`: not theirs).
    pub async fn charge_view_in(
        &self,
        session: &mut ClientSession,
        booking: ObjectId,
        therapist: ObjectId,
    ) -> mongodb::error::Result<Option<ChargeView>> {
        self.bookings
            .clone_with_type::<ChargeView>()
            .find_one(doc! { "_id": booking, "therapistId": therapist })
            .projection(charge_view_fields())
            .session(session)
            .await
    }

    /// In `session`: adds `cents` (negative for a refund) to the booking's `paidCents`,
    /// records `charge` in its `chargeIds`, sets `mark` and `updatedAt` and bumps its version,
    /// only while it is still at `version` (as [`Self::charge_view_in`] read it). `false`: the
    /// booking changed meanwhile and nothing was written.
    pub async fn charge_in(
        &self,
        session: &mut ClientSession,
        booking: ObjectId,
        version: i64,
        charge: ObjectId,
        cents: i64,
        mark: &ChargeMark,
    ) -> mongodb::error::Result<bool> {
        let mut set = doc! { "updatedAt": DateTime::now() };
        set.extend(mongodb::bson::to_document(mark)?);
        let r = self
            .bookings
            .update_one(
                doc! { "_id": booking, "version": version },
                doc! { "$set": set, "$inc": { "paidCents": cents, "version": 1 }, "$push": { "chargeIds": charge } },
            )
            .session(session)
            .await?;
        Ok(r.matched_count == 1)
    }

    /// In `session`: the booking's `paymentStatus` follows its payment (and its version moves).
    pub async fn set_payment_status_in(
        &self,
        session: &mut ClientSession,
        booking: ObjectId,
        status: PaymentStatus,
    ) -> mongodb::error::Result<()> {
        let set =
            doc! { "$set": { "paymentStatus": mongodb::bson::to_bson(&status)? }, "$inc": { "version": 1 } };
        self.bookings
            .update_one(doc! { "_id": booking }, set)
            .session(session)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_sets_only_what_it_has() {
        assert!(mongodb::bson::to_document(&ChargeMark::default())
            .unwrap()
            .is_empty());
        let id = ObjectId::new();
        let mark = ChargeMark {
            payment_status: Some(PaymentStatus::PartiallyRefunded),
            payment_id: Some(id),
            payment_method: Some("card".into()),
        };
        assert_eq!(
            mongodb::bson::to_document(&mark).unwrap(),
            doc! { "paymentStatus": "partially_refunded", "paymentId": id, "paymentMethod": "card" }
        );
    }
}
