//! Every MongoDB access of payments, on a typed `Collection<Payment>`: reads, the scoped list,
//! the three transactions that change a payment together with its booking (record, status
//! change, refund; the booking's side through `BookingStore`'s session-taking methods), and
//! the statistics queries (read from secondaries where a replica set has them).

use std::sync::Arc;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Deserialize;

use super::charge::{charge_booking, set_booking_payment_status, Charge};
use super::model::{Payment, PaymentState, Refund};
use crate::bookings::store::BookingStore;
use crate::db::{transaction, Db, OwnerScope, Page, TxError};
use crate::error::{ApiError, ApiResult};

/// The collection name.
pub const PAYMENTS: &str = "payments";

/// Statuses whose payments count as earned (statistics).
const EARNED: [&str; 3] = ["completed", "partially_refunded", "refunded"];

/// Queries of payments.
pub struct PaymentStore {
    db: Db,
    payments: Collection<Payment>,
    /// The bookings a transaction charges (shared into each attempt's future).
    bookings: Arc<BookingStore>,
}

/// A status change as decided from the payment its request saw.
pub struct StatusChange {
    pub to: PaymentState,
    /// What remains refundable after it.
    pub refundable: i64,
    /// What the booking counts as paid moves by this much (0: unchanged).
    pub delta: i64,
}

/// The figures of one earned payment (statistics windows).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Earned {
    pub payment_date: DateTime,
    pub amount_cents: i64,
    pub refunded_cents: i64,
    pub fee_cents: i64,
}

/// Sums of earned payments (an aggregation's `$group`).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Totals {
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub refunded: i64,
    #[serde(default)]
    pub fees: i64,
    #[serde(default)]
    pub count: i64,
}

/// Sums of one local month (`YYYY-MM`).
#[derive(Debug, Deserialize)]
pub struct MonthSums {
    #[serde(rename = "_id")]
    pub month: String,
    #[serde(flatten)]
    pub sums: Totals,
}

/// What the revenue aggregation answers: the sums since an instant, and per month.
#[derive(Debug, Default, Deserialize)]
pub struct Revenue {
    #[serde(default)]
    pub current: Vec<Totals>,
    #[serde(default)]
    pub monthly: Vec<MonthSums>,
}

impl PaymentStore {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            payments: db.collection(PAYMENTS),
            bookings: Arc::new(BookingStore::new(db)),
        }
    }

    /// A scoped payment.
    pub async fn get(&self, scope: &OwnerScope, id: ObjectId) -> mongodb::error::Result<Option<Payment>> {
        self.payments.find_one(scope.by_id(id)).await
    }

    /// One of the scope's payments; 404 when it is not theirs.
    pub async fn get_or_404(&self, scope: &OwnerScope, id: ObjectId) -> ApiResult<Payment> {
        self.get(scope, id)
            .await?
            .ok_or_else(|| ApiError::not_found("Payment"))
    }

    /// A payment by id alone (after a write by its owner).
    pub async fn get_by_id(&self, id: ObjectId) -> mongodb::error::Result<Option<Payment>> {
        self.payments.find_one(doc! { "_id": id }).await
    }

    /// One page of the payments matching `filter` (already scoped) by `paymentDate`, the
    /// total and the next cursor. A payment that does not decode is an error, never skipped.
    pub async fn page(
        &self,
        filter: Document,
        descending: bool,
        page: &Page,
    ) -> ApiResult<(Vec<Payment>, u64, Option<String>)> {
        let raw = self.payments.clone_with_type::<Document>();
        let (docs, total, next) = crate::db::page_of(&raw, filter, "paymentDate", descending, page).await?;
        let payments = docs
            .into_iter()
            .map(mongodb::bson::from_document::<Payment>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((payments, total, next))
    }

    /// Stores `payment` and, with a booking, adds it to what the booking counts as paid, in one
    /// transaction. Each write recognises its own earlier effect, so a repeated attempt (after a
    /// commit whose outcome was reported wrongly or not at all) applies nothing twice.
    pub async fn record(&self, payment: &Payment, allow_over: bool) -> ApiResult<()> {
        transaction(&self.db, |s| {
            let (p, coll, bookings) = (payment.clone(), self.payments.clone(), self.bookings.clone());
            Box::pin(async move {
                if let Some(bid) = p.booking_id {
                    let charge = Charge {
                        method: Some(p.method),
                        booking: bid,
                        therapist: p.therapist_id,
                        payment: p.id,
                        cents: p.amount_cents.0,
                        allow_over,
                    };
                    charge_booking(&bookings, s, &charge, Some(p.status.booking_payment_status())).await?;
                }
                if let Err(e) = coll.insert_one(&p).session(&mut *s).await {
                    let mine = crate::db::is_duplicate_key(&e)
                        && coll
                            .find_one(doc! { "_id": p.id })
                            .session(&mut *s)
                            .await?
                            .is_some();
                    if !mine {
                        return Err(e.into());
                    }
                }
                Ok(())
            })
        })
        .await
    }

    /// Moves `p` to `change.to`, only from the state it was read in, with its booking, in one
    /// transaction: the same change made twice at once (two instances) applies once, and the
    /// second finds it done and changes nothing more. `mark` is this change's own id in the
    /// booking's `chargeIds` (made before, so a retried attempt recognises it).
    pub async fn change_status(
        &self,
        p: &Payment,
        change: &StatusChange,
        mark: ObjectId,
    ) -> ApiResult<Payment> {
        transaction(&self.db, |s| {
            let (coll, bookings, p) = (self.payments.clone(), self.bookings.clone(), p.clone());
            let (to, refundable, delta) = (change.to, change.refundable, change.delta);
            Box::pin(async move {
                let guard = doc! { "_id": p.id, "therapistId": p.therapist_id, "status": p.status.as_str() };
                let set = doc! { "$set": { "status": to.as_str(), "refundableCents": refundable, "updatedAt": DateTime::now() } };
                let updated = coll
                    .find_one_and_update(guard, set)
                    .return_document(ReturnDocument::After)
                    .session(&mut *s)
                    .await?;
                let Some(updated) = updated else {
                    let now = coll.find_one(doc! { "_id": p.id }).session(&mut *s).await?;
                    return match now {
                        Some(done) if done.status == to => Ok(done),
                        _ => Err(TxError::Other(ApiError::PreconditionFailed(
                            "This payment changed meanwhile; reload and try again".into(),
                        ))),
                    };
                };
                match p.booking_id {
                    Some(bid) if delta != 0 => {
                        let charge = Charge {
                            method: None,
                            booking: bid,
                            therapist: p.therapist_id,
                            payment: mark,
                            cents: delta,
                            allow_over: false,
                        };
                        charge_booking(&bookings, s, &charge, Some(to.booking_payment_status())).await?;
                    }
                    _ => set_booking_payment_status(&bookings, s, p.booking_id, to).await?,
                }
                Ok(updated)
            })
        })
        .await
    }

    /// Refunds `entry` of `p` and takes it off what its booking counts as paid, in one
    /// transaction. The guard (`refundableCents` covers it) and the decrement are one document
    /// update, so refunds never exceed the payment, however many run at once; a retried
    /// attempt finds its refund already pushed and applies nothing twice.
    pub async fn refund(&self, p: &Payment, entry: &Refund) -> ApiResult<Payment> {
        let entry_doc = mongodb::bson::to_document(entry)?;
        transaction(&self.db, |s| {
            let (coll, bookings, p, entry, entry_doc) = (
                self.payments.clone(),
                self.bookings.clone(),
                p.clone(),
                entry.clone(),
                entry_doc.clone(),
            );
            Box::pin(async move {
                let amount = entry.amount_cents.0;
                let applied = coll
                    .find_one(doc! { "_id": p.id, "refunds.id": entry.id })
                    .session(&mut *s)
                    .await?;
                let applied_now = applied.is_none();
                let after = match applied {
                    Some(done) => Some(done),
                    None => {
                        coll.find_one_and_update(
                            doc! { "_id": p.id, "therapistId": p.therapist_id, "refundableCents": { "$gte": amount },
                                   "status": { "$in": ["completed", "partially_refunded"] } },
                            doc! { "$inc": { "refundableCents": -amount, "refundedCents": amount },
                                   "$push": { "refunds": entry_doc }, "$set": { "updatedAt": DateTime::now() } },
                        )
                        .return_document(ReturnDocument::After)
                        .session(&mut *s)
                        .await?
                    }
                };
                let after = after.ok_or_else(|| {
                    TxError::Other(ApiError::BadRequest {
                        code: "REFUND_EXCEEDS_PAYMENT",
                        message: "The refund is more than what remains refundable on this payment".into(),
                    })
                })?;
                let status = if after.refundable_cents.0 == 0 {
                    PaymentState::Refunded
                } else {
                    PaymentState::PartiallyRefunded
                };
                let after = coll
                    .find_one_and_update(
                        doc! { "_id": p.id },
                        doc! { "$set": { "status": status.as_str() } },
                    )
                    .return_document(ReturnDocument::After)
                    .session(&mut *s)
                    .await?
                    .unwrap_or(after);
                if let (true, Some(bid)) = (applied_now, p.booking_id) {
                    let charge = Charge {
                        method: None,
                        booking: bid,
                        therapist: p.therapist_id,
                        payment: entry.id,
                        cents: -amount,
                        allow_over: false,
                    };
                    charge_booking(&bookings, s, &charge, None).await?;
                }
                set_booking_payment_status(&bookings, s, p.booking_id, status).await?;
                Ok(after)
            })
        })
        .await
    }

    /// The figures of the therapist's earned payments made in `[from, to)`.
    pub async fn earned_between(
        &self,
        therapist: ObjectId,
        from: DateTime,
        to: DateTime,
    ) -> mongodb::error::Result<Vec<Earned>> {
        let filter = doc! {
            "therapistId": therapist, "status": { "$in": EARNED.as_slice() },
            "paymentDate": { "$gte": from, "$lt": to },
        };
        self.db
            .analytics()
            .collection::<Earned>(PAYMENTS)
            .find(filter)
            .projection(doc! { "paymentDate": 1, "amountCents": 1, "refundedCents": 1, "feeCents": 1 })
            .await?
            .try_collect()
            .await
    }

    /// Sums of the therapist's earned payments since `since`, and per local month from
    /// `first_month` on: one aggregation round trip.
    pub async fn revenue(
        &self,
        therapist: ObjectId,
        since: DateTime,
        first_month: &str,
    ) -> mongodb::error::Result<Revenue> {
        let pipeline = vec![
            doc! { "$match": { "therapistId": therapist, "status": { "$in": EARNED.as_slice() } } },
            doc! { "$facet": {
                "current": [
                    { "$match": { "paymentDate": { "$gte": since } } },
                    { "$group": { "_id": null, "amount": { "$sum": "$amountCents" }, "refunded": { "$sum": "$refundedCents" },
                                  "fees": { "$sum": "$feeCents" }, "count": { "$sum": 1 } } },
                ],
                "monthly": [
                    { "$match": { "month": { "$gte": first_month } } },
                    { "$group": { "_id": "$month", "amount": { "$sum": "$amountCents" }, "refunded": { "$sum": "$refundedCents" }, "count": { "$sum": 1 } } },
                ],
            } },
        ];
        Ok(self
            .db
            .analytics()
            .collection::<Document>(PAYMENTS)
            .aggregate(pipeline)
            .with_type::<Revenue>()
            .await?
            .try_next()
            .await?
            .unwrap_or_default())
    }
}
