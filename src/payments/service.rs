//! The writes of payments, one function per action: each checks the request against what is
//! stored, performs the write through the store (a transaction with the booking), and then
//! tells the rest of the service what changed (`Event::Payment`).

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;

use super::fees;
use super::model::{CreatePayment, Payment, PaymentState, Refund, RefundRequest};
use super::store::{PaymentStore, StatusChange};
use crate::app::AppState;
use crate::auth::extract::parse_id;
use crate::availability::store::AvailabilityStore;
use crate::bookings::model::Booking;
use crate::bookings::store::BookingStore;
use crate::clients::store::ClientStore;
use crate::db::OwnerScope;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, PaymentChange, PaymentChanged};
use crate::idempotency::Ids;
use crate::money::Cents;

/// Records a payment of one of the therapist's clients (and, with `bookingId`, of one of
/// their bookings); the payment as stored (a rerun of a keyed request answers with what its
/// first attempt wrote).
pub async fn create(
    state: &AppState,
    scope: &OwnerScope,
    req: CreatePayment,
    ids: Ids,
) -> ApiResult<Payment> {
    if req.amount.0 == 0 {
        return Err(ApiError::field("amount", "must be more than 0"));
    }
    let (client, booking) = paid_for(state, scope, &req).await?;
    let currency = match (&booking, req.currency) {
        (Some(b), Some(c)) if c != b.currency => {
            return Err(ApiError::field(
                "currency",
                format!("must be the booking's currency ({:?})", b.currency),
            ))
        }
        (Some(b), None) => b.currency,
        (_, c) => c.unwrap_or_default(),
    };
    let status = req.status.unwrap_or(PaymentState::Completed);
    if !matches!(status, PaymentState::Pending | PaymentState::Completed) {
        return Err(ApiError::field("status", "a new payment is pending or completed"));
    }
    let zone = AvailabilityStore::new(&state.db).zone(scope.therapist_id).await?;
    let now = DateTime::now();
    let fee = fees::fee(fees::rule(&state.config.payments.fees, req.method), req.amount.0);
    let payment = Payment {
        id: ids.nth(0),
        therapist_id: scope.therapist_id,
        client_id: client,
        booking_id: booking.as_ref().map(|b| b.id),
        amount_cents: req.amount,
        currency,
        method: req.method,
        status,
        fee_cents: Cents(fee),
        net_cents: Cents(req.amount.0 - fee),
        refunded_cents: Cents(0),
        refundable_cents: if status == PaymentState::Completed {
            req.amount
        } else {
            Cents(0)
        },
        refunds: Vec::new(),
        transaction_id: req
            .transaction_id
            .unwrap_or_else(|| format!("TXN-{}", uuid::Uuid::new_v4().simple().to_string().to_uppercase())),
        description: req.description,
        payment_date: now,
        // The month its revenue counts in: the therapist's, not UTC's.
        month: now.to_chrono().with_timezone(&zone).format("%Y-%m").to_string(),
        created_at: now,
        updated_at: now,
    };
    let store = PaymentStore::new(&state.db);
    match store.record(&payment, req.allow_overpayment).await {
        Err(ApiError::Conflict {
            code: "DUPLICATE", ..
        }) => {
            return Err(ApiError::conflict(
                "TRANSACTION_EXISTS",
                "A payment with this transactionId already exists",
            ))
        }
        other => other?,
    }
    emit(state, &payment, PaymentChange::Received, payment.amount_cents).await;
    Ok(store.get_by_id(payment.id).await?.unwrap_or(payment))
}

/// The client (and booking) a new payment is for, each checked to be the therapist's, the
/// booking of that client.
async fn paid_for(
    state: &AppState,
    scope: &OwnerScope,
    req: &CreatePayment,
) -> ApiResult<(ObjectId, Option<Booking>)> {
    let client_id = parse_id(&req.client_id, "clientId")?;
    ClientStore::new(&state.db)
        .get(scope, client_id)
        .await?
        .ok_or_else(|| ApiError::field("clientId", "is not one of your clients"))?;
    let Some(raw) = &req.booking_id else {
        return Ok((client_id, None));
    };
    let b = BookingStore::new(&state.db)
        .get(scope, parse_id(raw, "bookingId")?)
        .await?
        .ok_or_else(|| ApiError::field("bookingId", "is not one of your bookings"))?;
    if b.client_id != client_id {
        return Err(ApiError::field("bookingId", "belongs to another client"));
    }
    Ok((client_id, Some(b)))
}

/// Moves a payment between pending, completed, failed and cancelled, with its booking.
pub async fn change_status(
    state: &AppState,
    scope: &OwnerScope,
    id: ObjectId,
    to: PaymentState,
) -> ApiResult<Payment> {
    let store = PaymentStore::new(&state.db);
    let p = store.get_or_404(scope, id).await?;
    if !p.status.can_become(to) {
        return Err(ApiError::BadRequest {
            code: "INVALID_STATUS_TRANSITION",
            message: format!(
                "A {} payment cannot become {} (use the refund endpoint for refunds)",
                p.status.as_str(),
                to.as_str()
            ),
        });
    }
    if to == p.status {
        // Nothing changes: never recompute (and lose) what remains refundable.
        return Ok(p);
    }
    let left = p.amount_cents.0 - p.refunded_cents.0;
    // What the booking counts as paid moves with the payment: a payment that failed or was
    // cancelled no longer counts; one that is pending again counts (within the price) again.
    let counted = |st: PaymentState| {
        matches!(
            st,
            PaymentState::Pending | PaymentState::Completed | PaymentState::PartiallyRefunded
        )
    };
    let change = StatusChange {
        to,
        refundable: if to == PaymentState::Completed { left } else { 0 },
        delta: match (counted(p.status), counted(to)) {
            (true, false) => -left,
            (false, true) => left,
            _ => 0,
        },
    };
    // This transition's own id in the booking's `chargeIds` (the payment's id is already
    // there from its creation), made before the transaction so a retried attempt recognises it.
    let updated = store.change_status(&p, &change, ObjectId::new()).await?;
    emit(
        state,
        &updated,
        PaymentChange::StatusChanged,
        updated.amount_cents,
    )
    .await;
    Ok(updated)
}

/// Refunds part or all of a completed payment; never more than what remains refundable.
pub async fn refund(
    state: &AppState,
    scope: &OwnerScope,
    id: ObjectId,
    req: RefundRequest,
    ids: Ids,
) -> ApiResult<Payment> {
    let store = PaymentStore::new(&state.db);
    let p = store.get_or_404(scope, id).await?;
    if req.refund_amount.0 == 0 {
        return Err(ApiError::field("refundAmount", "must be more than 0"));
    }
    if !matches!(
        p.status,
        PaymentState::Completed | PaymentState::PartiallyRefunded
    ) {
        return Err(ApiError::BadRequest {
            code: "NOT_REFUNDABLE",
            message: format!("A {} payment cannot be refunded", p.status.as_str()),
        });
    }
    let entry = Refund {
        id: ids.nth(0),
        amount_cents: req.refund_amount,
        reason: req.reason,
        refunded_at: DateTime::now(),
    };
    let updated = store.refund(&p, &entry).await?;
    emit(state, &updated, PaymentChange::Refunded, entry.amount_cents).await;
    Ok(updated)
}

/// Tells what happened to `p`; `amount` is the payment's, or a refund's for a refund.
async fn emit(state: &AppState, p: &Payment, kind: PaymentChange, amount: Cents) {
    let event = PaymentChanged {
        therapist: p.therapist_id,
        payment: p.id,
        booking: p.booking_id,
        client: Some(p.client_id),
        kind,
        amount_cents: amount.0,
        currency: format!("{:?}", p.currency),
    };
    state.events.emit(Event::Payment(event)).await;
}
