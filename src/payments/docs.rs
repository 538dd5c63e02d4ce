//! Schemas of the payments' answers built as JSON values: what the document promises about them.
#![allow(dead_code)] // schema descriptions, never built

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{Method, PaymentState};
use crate::clients::model::ClientSummary;
use crate::http::docs::{InstantText, ObjectIdText};
use crate::http::pagination::Nested;
use crate::money::Currency;

/// A payment (amounts in major units).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    #[schema(value_type = ObjectIdText)]
    id: String,
    #[serde(rename = "_id")]
    #[schema(value_type = ObjectIdText)]
    underscore_id: String,
    #[schema(value_type = ObjectIdText)]
    client_id: String,
    booking_id: Option<String>,
    /// In lists only.
    client: Option<ClientSummary>,
    amount: f64,
    currency: Currency,
    method: Method,
    status: PaymentState,
    fees: f64,
    net_amount: f64,
    refunded_amount: f64,
    refunds: Vec<RefundView>,
    transaction_id: Option<String>,
    description: Option<String>,
    #[schema(value_type = InstantText)]
    payment_date: String,
    #[schema(value_type = InstantText)]
    created_at: String,
}

/// One refund of a payment.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    id: String,
    amount: f64,
    reason: Option<String>,
    refunded_at: String,
}

/// `GET /api/payments` data.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPage {
    payments: Vec<PaymentView>,
    total: u64,
    has_more: bool,
    pagination: Nested,
}

/// A way of paying and its fees.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    name: Method,
    method: Method,
    enabled: bool,
    supported_methods: Vec<Method>,
    supported_currencies: Vec<Currency>,
    fee_percent: f64,
    fee_rate: f64,
    fixed_fee: f64,
}

/// `GET /api/payments/providers` data.
#[derive(Serialize, ToSchema)]
pub struct Providers {
    providers: Vec<Provider>,
}

/// Totals of a period.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeriodTotals {
    total_amount: f64,
    total_net_amount: f64,
    total_fees: f64,
    count: i64,
    avg_amount: f64,
}

/// `GET /api/payments/statistics` data (also `totalRevenue`, `transactions`, `trends`, `series`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStatistics {
    current_period: PeriodTotals,
    monthly_revenue: Vec<MonthRevenue>,
}

/// One month's revenue (completed payments less refunds).
#[derive(Serialize, ToSchema)]
pub struct MonthRevenue {
    /// `YYYY-MM`.
    #[schema(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    month: String,
    revenue: f64,
    count: i64,
}
