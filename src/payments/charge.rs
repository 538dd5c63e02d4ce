//! The booking side of a payment's transaction: what the booking counts as paid, and its
//! `paymentStatus`, changed inside the caller's session. (The bookings collection is written
//! here rather than through `BookingStore` because these writes must join the payment's
//! transaction; `BookingStore` has no session-taking methods yet.)

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::Collection;
use serde::Deserialize;

use super::model::{Method, PaymentState};
use crate::db::TxError;
use crate::error::ApiError;

/// A change of what a booking counts as paid, made once per `payment` (a payment, or a refund).
pub(super) struct Charge {
    /// How it was paid (recorded on the booking with a payment).
    pub method: Option<Method>,
    pub booking: ObjectId,
    pub therapist: ObjectId,
    pub payment: ObjectId,
    pub cents: i64,
    pub allow_over: bool,
}

/// What a booking counts as paid, and what decides whether it may take more.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Charged {
    /// The payments, refunds and status changes already applied (each once).
    #[serde(default)]
    charge_ids: Vec<ObjectId>,
    #[serde(default)]
    paid_cents: i64,
    amount_cents: i64,
    status: String,
    #[serde(default)]
    version: i64,
}

/// Inside a transaction: adds `charge.cents` to the booking's `paidCents` (refusing a booking
/// that is cancelled, or a total beyond its price unless allowed), once per `charge.payment`.
/// The read and the version-guarded write are in the same transaction, so two concurrent
/// payments of one booking conflict and the retry sees the first.
pub(super) async fn charge_booking(
    bookings: &Collection<Document>,
    s: &mut mongodb::ClientSession,
    charge: &Charge,
    payment_status: Option<&'static str>,
) -> Result<(), TxError<ApiError>> {
    let b = bookings
        .clone_with_type::<Charged>()
        .find_one(doc! { "_id": charge.booking, "therapistId": charge.therapist })
        .projection(doc! { "chargeIds": 1, "paidCents": 1, "amountCents": 1, "status": 1, "version": 1 })
        .session(&mut *s)
        .await?
        .ok_or_else(|| TxError::Other(ApiError::field("bookingId", "is not one of your bookings")))?;
    if b.charge_ids.contains(&charge.payment) {
        return Ok(());
    }
    if charge.cents > 0 {
        if b.status == "cancelled" {
            return Err(TxError::Other(ApiError::field(
                "bookingId",
                "is cancelled: nothing to pay",
            )));
        }
        if !charge.allow_over && b.paid_cents + charge.cents > b.amount_cents {
            let left = crate::money::Cents((b.amount_cents - b.paid_cents).max(0)).to_major();
            return Err(TxError::Other(ApiError::Conflict {
                code: "PAYMENT_EXCEEDS_PRICE",
                message: format!(
                    "This booking's payments would exceed its price ({left} left to pay); send allowOverpayment: true to record it anyway"
                ),
                extra: [("remaining".to_owned(), left)].into_iter().collect(),
            }));
        }
    }
    let version = b.version;
    let mut set = doc! { "updatedAt": DateTime::now() };
    if let Some(st) = payment_status {
        set.insert("paymentStatus", st);
        if charge.cents > 0 {
            set.insert("paymentId", charge.payment);
            if let Some(m) = charge.method {
                set.insert(
                    "paymentMethod",
                    mongodb::bson::to_bson(&m).map_err(|e| TxError::Other(ApiError::Internal(e.into())))?,
                );
            }
        }
    }
    let r = bookings
        .update_one(
            doc! { "_id": charge.booking, "version": version },
            doc! { "$set": set, "$inc": { "paidCents": charge.cents, "version": 1 }, "$push": { "chargeIds": charge.payment } },
        )
        .session(&mut *s)
        .await?;
    if r.matched_count != 1 {
        return Err(TxError::Other(ApiError::conflict(
            "CONCURRENT_UPDATE",
            "The booking changed meanwhile; retry",
        )));
    }
    Ok(())
}

/// Inside a transaction: the paid booking (if any) follows its payment's state.
pub(super) async fn set_booking_payment_status(
    bookings: &Collection<Document>,
    s: &mut mongodb::ClientSession,
    booking: Option<ObjectId>,
    state: PaymentState,
) -> mongodb::error::Result<()> {
    if let Some(bid) = booking {
        let set =
            doc! { "$set": { "paymentStatus": state.booking_payment_status() }, "$inc": { "version": 1 } };
        bookings.update_one(doc! { "_id": bid }, set).session(s).await?;
    }
    Ok(())
}
