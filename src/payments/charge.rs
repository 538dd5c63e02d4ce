//! The booking side of a payment's transaction: what a booking may be charged (never when
//! cancelled, never beyond its price unless allowed), decided from what `BookingStore` reads
//! and written through it, inside the payment's session.

use mongodb::bson::oid::ObjectId;
use mongodb::ClientSession;

use super::model::{Method, PaymentState};
use crate::bookings::model::PaymentStatus;
use crate::bookings::store::{BookingStore, ChargeMark};
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

/// Inside a transaction: adds `charge.cents` to the booking's `paidCents` (refusing a booking
/// that is cancelled, or a total beyond its price unless allowed), once per `charge.payment`.
/// The read and the version-guarded write are in the same transaction, so two concurrent
/// payments of one booking conflict and the retry sees the first.
pub(super) async fn charge_booking(
    bookings: &BookingStore,
    s: &mut ClientSession,
    charge: &Charge,
    payment_status: Option<PaymentStatus>,
) -> Result<(), TxError<ApiError>> {
    let b = bookings
        .charge_view_in(s, charge.booking, charge.therapist)
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
    let mut mark = ChargeMark {
        payment_status,
        ..ChargeMark::default()
    };
    // A payment (not a refund) that sets the status also names itself and its method.
    if payment_status.is_some() && charge.cents > 0 {
        mark.payment_id = Some(charge.payment);
        mark.payment_method = charge.method.map(|m| m.as_str().to_owned());
    }
    let written = bookings
        .charge_in(s, charge.booking, b.version, charge.payment, charge.cents, &mark)
        .await?;
    if !written {
        return Err(TxError::Other(ApiError::conflict(
            "CONCURRENT_UPDATE",
            "The booking changed meanwhile; retry",
        )));
    }
    Ok(())
}

/// Inside a transaction: the paid booking (if any) follows its payment's state.
pub(super) async fn set_booking_payment_status(
    bookings: &BookingStore,
    s: &mut ClientSession,
    booking: Option<ObjectId>,
    state: PaymentState,
) -> mongodb::error::Result<()> {
    if let Some(bid) = booking {
        bookings
            .set_payment_status_in(s, bid, state.booking_payment_status())
            .await?;
    }
    Ok(())
}
