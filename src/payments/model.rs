//! Payments: stored document, methods, statuses, requests.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use validator::Validate;

use crate::bookings::model::PaymentStatus;
use crate::money::{major, Cents, Currency};
use crate::time::rfc3339;

/// How a payment was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Card,
    Transfer,
    Cash,
    Paypal,
    Stripe,
    Other,
}

impl Method {
    /// Stored name (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Transfer => "transfer",
            Self::Cash => "cash",
            Self::Paypal => "paypal",
            Self::Stripe => "stripe",
            Self::Other => "other",
        }
    }
}

/// Payment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    Pending,
    #[serde(alias = "paid")]
    Completed,
    Failed,
    Cancelled,
    PartiallyRefunded,
    Refunded,
}

impl PaymentState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
        }
    }

    /// Transitions `PUT /:id/status` may make (refunds have their own endpoint).
    pub fn can_become(self, to: PaymentState) -> bool {
        use PaymentState::*;
        matches!(
            (self, to),
            (Pending, Completed) | (Pending, Failed) | (Pending, Cancelled) | (Failed, Pending)
        ) || self == to
    }

    /// The booking's `paymentStatus` while a payment is in this state.
    pub fn booking_payment_status(self) -> PaymentStatus {
        match self {
            Self::Completed => PaymentStatus::Paid,
            Self::PartiallyRefunded => PaymentStatus::PartiallyRefunded,
            Self::Refunded => PaymentStatus::Refunded,
            _ => PaymentStatus::Pending,
        }
    }
}

/// One refund of a payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub id: ObjectId,
    pub amount_cents: Cents,
    pub reason: Option<String>,
    pub refunded_at: DateTime,
}

/// A stored payment (collection `payments`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub therapist_id: ObjectId,
    pub client_id: ObjectId,
    #[serde(default)]
    pub booking_id: Option<ObjectId>,
    pub amount_cents: Cents,
    pub currency: Currency,
    pub method: Method,
    pub status: PaymentState,
    pub fee_cents: Cents,
    pub net_cents: Cents,
    pub refunded_cents: Cents,
    /// What may still be refunded; decremented atomically so refunds never exceed payment.
    pub refundable_cents: Cents,
    #[serde(default)]
    pub refunds: Vec<Refund>,
    pub transaction_id: String,
    #[serde(default)]
    pub description: Option<String>,
    pub payment_date: DateTime,
    /// `YYYY-MM` of `payment_date` in the therapist's zone (monthly revenue).
    pub month: String,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

impl Payment {
    /// The dashboard's view.
    pub fn view(&self) -> Value {
        let id = self.id.to_hex();
        json!({
            "id": id, "_id": id,
            "therapistId": self.therapist_id.to_hex(),
            "clientId": self.client_id.to_hex(),
            "bookingId": self.booking_id.map(|b| b.to_hex()),
            "amount": self.amount_cents.to_major(),
            "currency": self.currency,
            "method": self.method,
            "status": self.status,
            "fees": self.fee_cents.to_major(),
            "netAmount": self.net_cents.to_major(),
            "refundedAmount": self.refunded_cents.to_major(),
            "refunds": self.refunds.iter().map(|r| json!({
                "id": r.id.to_hex(), "amount": r.amount_cents.to_major(), "reason": r.reason, "refundedAt": rfc3339(r.refunded_at),
            })).collect::<Vec<_>>(),
            "transactionId": self.transaction_id,
            "description": self.description,
            "paymentDate": rfc3339(self.payment_date),
            "createdAt": rfc3339(self.created_at),
            "updatedAt": rfc3339(self.updated_at),
        })
    }
}

/// `POST /api/payments`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatePayment {
    #[serde(deserialize_with = "major")]
    #[schema(value_type = crate::http::docs::PositiveAmount)]
    pub amount: Cents,
    #[serde(default)]
    #[schema(schema_with = crate::http::docs::accepts_or_null::<Currency>)]
    pub currency: Option<Currency>,
    #[schema(schema_with = crate::http::docs::accepts::<Method>)]
    pub method: Method,
    #[schema(value_type = crate::http::docs::ObjectIdText)]
    pub client_id: String,
    #[schema(value_type = Option<crate::http::docs::ObjectIdText>)]
    pub booking_id: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[schema(schema_with = new_payment_status)]
    pub status: Option<PaymentState>,
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub transaction_id: Option<String>,
    /// Lets a booking's payments add up to more than its price (a tip, a deliberate extra).
    #[serde(default)]
    pub allow_overpayment: bool,
}

/// What a new payment's `status` may be: `pending` or `completed` (and their aliases), or null.
fn new_payment_status() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let names = crate::http::docs::names_where::<PaymentState>(|s| {
        matches!(s, PaymentState::Pending | PaymentState::Completed)
    });
    crate::http::docs::names_of(names, true)
}

/// `PUT /api/payments/:id/status`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpdate {
    #[schema(schema_with = crate::http::docs::accepts::<PaymentState>)]
    pub status: PaymentState,
}

/// `POST /api/payments/:id/refund`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    #[serde(deserialize_with = "major")]
    #[schema(value_type = crate::http::docs::PositiveAmount)]
    pub refund_amount: Cents,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// `GET /api/payments` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PaymentQuery {
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    #[param(schema_with = crate::http::docs::filter::<PaymentState>)]
    pub status: Option<PaymentState>,
    #[serde(
        default,
        alias = "payment_method",
        deserialize_with = "crate::http::query::all_or"
    )]
    #[param(schema_with = crate::http::docs::filter::<Method>)]
    pub method: Option<Method>,
    /// The client who paid (`payer_id` in the dashboard's words).
    #[serde(
        default,
        alias = "client_id",
        alias = "payer_id",
        alias = "payerId",
        deserialize_with = "crate::http::query::non_empty"
    )]
    #[param(value_type = Option<crate::http::docs::IdFilter>)]
    pub client_id: Option<String>,
    #[serde(alias = "start_date", alias = "date_from", alias = "dateFrom")]
    #[param(value_type = Option<crate::http::docs::DateOrInstant>)]
    pub start_date: Option<String>,
    #[serde(alias = "end_date", alias = "date_to", alias = "dateTo")]
    #[param(value_type = Option<crate::http::docs::DateOrInstant>)]
    pub end_date: Option<String>,
    #[param(value_type = Option<crate::http::docs::PageNumber>)]
    pub page: Option<u64>,
    #[param(value_type = Option<crate::http::docs::PageLimit>)]
    pub limit: Option<u64>,
    #[param(value_type = Option<crate::http::docs::Cursor>)]
    pub cursor: Option<String>,
    #[serde(alias = "sort_by")]
    #[param(schema_with = crate::http::docs::accepts::<PaymentSort>)]
    pub sort_by: Option<PaymentSort>,
    #[serde(alias = "sort_order")]
    #[param(schema_with = crate::http::docs::accepts::<crate::db::SortOrder>)]
    pub sort_order: Option<crate::db::SortOrder>,
}

/// Sort fields of the payment list: all mean "when it was paid".
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PaymentSort {
    #[serde(alias = "date", alias = "createdAt")]
    PaymentDate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_is_stored_by_its_serialized_name() {
        use Method::*;
        for m in [Card, Transfer, Cash, Paypal, Stripe, Other] {
            assert_eq!(
                mongodb::bson::to_bson(&m).unwrap(),
                mongodb::bson::Bson::from(m.as_str())
            );
        }
    }

    #[test]
    fn a_booking_is_paid_while_its_payment_is_completed() {
        assert_eq!(
            PaymentState::Completed.booking_payment_status(),
            PaymentStatus::Paid
        );
        assert_eq!(
            PaymentState::Failed.booking_payment_status(),
            PaymentStatus::Pending
        );
        assert_eq!(
            PaymentState::PartiallyRefunded.booking_payment_status(),
            PaymentStatus::PartiallyRefunded
        );
    }
}
