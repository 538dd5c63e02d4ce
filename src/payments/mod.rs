//! Payments (SPEC section 3). A payment for a booking and the booking's `paymentStatus`
//! change in one MongoDB transaction; refunds decrement a `refundableCents` guard atomically, so
//! they never exceed what was paid, however many run at once. Handlers here parse and answer;
//! `service` decides and tells (`Event::Payment`), `store` holds every query.

mod charge;
pub mod docs;
pub mod fees;
pub mod model;
pub mod service;
pub mod stats;
pub mod store;

pub use stats::{last_twelve_months, month_end, revenue, statistics, Totals};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, Document};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::availability::store::AvailabilityStore;
use crate::clients::store::ClientStore;
use crate::db::Page;
use crate::error::ApiResult;
use crate::http::envelope;
use crate::http::extract::{parse_body, ApiQuery, RawBody};
use crate::http::pagination::nested;
use crate::idempotency::Idempotent;
use crate::money::Cents;
use model::{CreatePayment, Method, PaymentQuery, RefundRequest, StatusUpdate};
use store::PaymentStore;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/payments", get(list).post(create))
        .route("/api/payments/statistics", get(statistics))
        .route("/api/payments/providers", get(providers))
        .route("/api/payments/{id}", get(get_one))
        .route("/api/payments/{id}/status", put(update_status))
        .route("/api/payments/{id}/refund", post(refund))
}

/// Records a payment; with `bookingId`, the booking's payment status changes in the same
/// transaction. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/payments", tag = "payments",
    security(("therapist" = [])),
    params(crate::http::docs::IdempotencyKey),
    request_body = CreatePayment,
    responses((status = 201, body = crate::http::docs::Data<crate::payments::docs::PaymentView>), (status = 404, description = "No such client or booking"), (status = 409, description = "`TRANSACTION_EXISTS`, `PAYMENT_EXCEEDS_PRICE` (with `remaining`), `IDEMPOTENCY_KEY_REUSED`, `IDEMPOTENCY_IN_PROGRESS`, `CONCURRENT_UPDATE`")))]
pub async fn create(
    State(state): State<AppState>,
    me: Therapist,
    idem: Idempotent<CreatePayment>,
) -> ApiResult<Response> {
    let (st, scope) = (state.clone(), me.scope());
    idem.once(&state, me.0.id, |req, ids| async move {
        let payment = service::create(&st, &scope, req, ids).await?;
        Ok(envelope::created(payment.view()))
    })
    .await
}

/// The caller's payments, newest first, in the nested list shape.
#[utoipa::path(get, path = "/api/payments", tag = "payments",
    security(("therapist" = [])),
    params(ApiQuery<model::PaymentQuery>),
    responses((status = 200, body = crate::http::docs::Data<crate::payments::docs::PaymentPage>)))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<PaymentQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
    let filter = list_filter(&state, me.0.id, &q).await?;
    let descending = q.sort_order.unwrap_or_default() == crate::db::SortOrder::Desc;
    let (payments, total, next) = PaymentStore::new(&state.db)
        .page(me.scope().filter(filter), descending, &page)
        .await?;
    let ids: Vec<ObjectId> = payments.iter().map(|p| p.client_id).collect();
    let clients = ClientStore::new(&state.db).summaries(&ids).await?;
    let list: Vec<Value> = payments
        .iter()
        .map(|p| {
            let mut v = p.view();
            v["client"] = json!(clients.get(&p.client_id));
            v
        })
        .collect();
    let has_more = next.is_some();
    Ok(envelope::ok(json!({
        "payments": list, "total": total, "hasMore": has_more,
        "pagination": nested(&page, total, next),
    })))
}

/// The filter of a list query (the owner is added by the caller's scope); dates are days in
/// the therapist's zone, or exact instants.
async fn list_filter(state: &AppState, therapist: ObjectId, q: &PaymentQuery) -> ApiResult<Document> {
    let mut filter = Document::new();
    if let Some(s) = q.status {
        filter.insert("status", s.as_str());
    }
    if let Some(m) = q.method {
        filter.insert("method", mongodb::bson::to_bson(&m)?);
    }
    if let Some(c) = &q.client_id {
        filter.insert("clientId", parse_id(c, "clientId")?);
    }
    let from = crate::http::query::date_bound(&[("startDate", &q.start_date)])?;
    let to = crate::http::query::date_bound(&[("endDate", &q.end_date)])?;
    if from.is_some() || to.is_some() {
        let zone = AvailabilityStore::new(&state.db).zone(therapist).await?;
        crate::http::query::in_order(from, to, zone, ("startDate", "endDate"))?;
        let mut range = Document::new();
        if let Some(b) = from {
            range.insert("$gte", DateTime::from_chrono(b.start(zone)));
        }
        if let Some(b) = to {
            // A day includes all of it; an instant is the exact end.
            range.insert("$lt", DateTime::from_chrono(b.end(zone)));
        }
        filter.insert("paymentDate", range);
    }
    Ok(filter)
}

/// The payment methods this deployment records and the fee rule of each (configuration).
#[utoipa::path(get, path = "/api/payments/providers", tag = "payments",
    security(("therapist" = [])),
    responses((status = 200, body = crate::http::docs::Data<crate::payments::docs::Providers>)))]
pub async fn providers(State(state): State<AppState>, _me: Therapist) -> ApiResult<Response> {
    let methods = [
        Method::Card,
        Method::Transfer,
        Method::Cash,
        Method::Paypal,
        Method::Stripe,
        Method::Other,
    ];
    let list: Vec<Value> = methods
        .iter()
        .map(|m| {
            let rule = fees::rule(&state.config.payments.fees, *m);
            json!({
                "name": m, "method": m, "enabled": true,
                "supportedMethods": [m], "supportedCurrencies": ["EUR", "USD", "GBP"],
                "feePercent": rule.percent_bps as f64 / 100.0,
                "feeRate": rule.percent_bps as f64 / 10_000.0,
                "fixedFee": Cents(rule.fixed_cents as i64).to_major(),
            })
        })
        .collect();
    Ok(envelope::ok(json!({ "providers": list })))
}

/// One payment.
#[utoipa::path(get, path = "/api/payments/{id}", tag = "payments",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    responses((status = 200, body = crate::http::docs::Data<crate::payments::docs::PaymentView>)))]
pub async fn get_one(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let payment = PaymentStore::new(&state.db).get_or_404(&me.scope(), id).await?;
    Ok(envelope::ok(payment.view()))
}

/// Moves a payment between pending, completed, failed and cancelled (with its booking).
#[utoipa::path(put, path = "/api/payments/{id}/status", tag = "payments",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath),
    request_body = StatusUpdate,
    responses((status = 200, body = crate::http::docs::Data<crate::payments::docs::PaymentView>), crate::http::docs::Concurrent))]
pub async fn update_status(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let req: StatusUpdate = parse_body(&headers, &body)?;
    let id = parse_id(&id, "id")?;
    let payment = service::change_status(&state, &me.scope(), id, req.status).await?;
    Ok(envelope::ok(payment.view()))
}

/// Refunds part or all of a completed payment; never more than what remains refundable.
/// Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/payments/{id}/refund", tag = "payments",
    security(("therapist" = [])),
    params(crate::http::docs::IdPath, crate::http::docs::IdempotencyKey),
    request_body = RefundRequest,
    responses((status = 200, body = crate::http::docs::Data<crate::payments::docs::PaymentView>), (status = 409, description = "`IDEMPOTENCY_KEY_REUSED`, `IDEMPOTENCY_IN_PROGRESS`, `CONCURRENT_UPDATE`")))]
pub async fn refund(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    idem: Idempotent<RefundRequest>,
) -> ApiResult<Response> {
    let (st, scope) = (state.clone(), me.scope());
    idem.once(&state, me.0.id, |req, ids| async move {
        let id = parse_id(&id, "id")?;
        let payment = service::refund(&st, &scope, id, req, ids).await?;
        Ok(envelope::ok(payment.view()))
    })
    .await
}
