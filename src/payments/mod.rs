//! Payments (SPEC section 3). A payment for a booking and the booking's `paymentStatus`
//! change in one MongoDB transaction; refunds decrement a `refundableCents` guard atomically, so
//! they never exceed what was paid, however many run at once.

pub mod fees;
pub mod model;
pub mod stats;
mod store;

use store::{charge_booking, set_booking_payment_status, Charge};

pub use stats::{last_twelve_months, month_end, revenue, statistics, Totals};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::extract::{parse_id, Therapist};
use crate::availability::store::AvailabilityStore;
use crate::bookings::store::BookingStore;
use crate::clients::store::ClientStore;
use crate::db::OwnerScope;
use crate::db::{page_of, Page};
use crate::db::{transaction, TxError};
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::{parse_body, ApiQuery, RawBody};
use crate::http::pagination::nested;
use crate::idempotency;
use crate::money::Cents;
use model::{CreatePayment, Method, Payment, PaymentState, Refund, RefundRequest, StatusUpdate};

const PAYMENTS: &str = "payments";

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

fn payments(state: &AppState) -> Collection<Payment> {
    state.db.collection(PAYMENTS)
}

fn fee_rule(state: &AppState, method: Method) -> crate::config::FeeRule {
    fees::rule(&state.config.payments.fees, method)
}

async fn load(state: &AppState, scope: &OwnerScope, id: &str) -> ApiResult<Payment> {
    let id = parse_id(id, "id")?;
    payments(state)
        .find_one(scope.by_id(id))
        .await?
        .ok_or_else(|| ApiError::not_found("Payment"))
}

/// Records a payment; with `bookingId`, the booking's payment status changes in the same
/// transaction. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/payments", tag = "payments", request_body = CreatePayment,
    responses((status = 201), (status = 400), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    me: Therapist,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let key = idempotency::key_from(&headers)?;
    let req: CreatePayment = parse_body(&headers, &body)?;
    let st = state.clone();
    let ids = idempotency::Ids::new(me.0.id, "POST /api/payments", key.as_deref());
    idempotency::once(&state, me.0.id, "POST /api/payments", key, &body, async move {
        create_inner(&st, me, req, ids).await
    })
    .await
}

async fn create_inner(
    state: &AppState,
    me: Therapist,
    req: CreatePayment,
    ids: idempotency::Ids,
) -> ApiResult<Response> {
    if req.amount.0 == 0 {
        return Err(ApiError::field("amount", "must be more than 0"));
    }
    let scope = me.scope();
    let client_id = parse_id(&req.client_id, "clientId")?;
    ClientStore::new(&state.db)
        .get(&scope, client_id)
        .await?
        .ok_or_else(|| ApiError::field("clientId", "is not one of your clients"))?;
    let booking = match &req.booking_id {
        Some(raw) => {
            let b = BookingStore::new(&state.db)
                .get(&scope, parse_id(raw, "bookingId")?)
                .await?
                .ok_or_else(|| ApiError::field("bookingId", "is not one of your bookings"))?;
            if b.client_id != client_id {
                return Err(ApiError::field("bookingId", "belongs to another client"));
            }
            Some(b)
        }
        None => None,
    };
    let booking_id = booking.as_ref().map(|b| b.id);
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
    let zone = zone_of(state, me.0.id).await?;
    let now = DateTime::now();
    let fee = fees::fee(fee_rule(state, req.method), req.amount.0);
    let payment = Payment {
        id: ids.nth(0),
        therapist_id: me.0.id,
        client_id,
        booking_id,
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
        month: now.to_chrono().with_timezone(&zone).format("%Y-%m").to_string(),
        created_at: now,
        updated_at: now,
    };
    let coll = payments(state);
    let bookings = state.db.collection::<Document>("bookings");
    let allow_overpayment = req.allow_overpayment;
    let result = transaction(&state.db, |s| {
        let (p, coll, bookings) = (payment.clone(), coll.clone(), bookings.clone());
        Box::pin(async move {
            // Each write recognises its own earlier effect, so a repeated attempt (after a
            // commit whose outcome was reported wrongly or not at all) applies nothing twice.
            if let Some(bid) = p.booking_id {
                let charge = Charge {
                    method: Some(p.method),
                    booking: bid,
                    therapist: p.therapist_id,
                    payment: p.id,
                    cents: p.amount_cents.0,
                    allow_over: allow_overpayment,
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
    .await;
    match result {
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
    let event = crate::events::PaymentChanged {
        therapist: me.0.id,
        payment: payment.id,
        booking: payment.booking_id,
        client: Some(payment.client_id),
        kind: crate::events::PaymentChange::Received,
        amount_cents: payment.amount_cents.0,
        currency: format!("{:?}", payment.currency),
    };
    state.events.emit(crate::events::Event::Payment(event)).await;
    // What is stored (a rerun of a keyed request answers with what its first attempt wrote).
    let stored = payments(state)
        .find_one(doc! { "_id": payment.id })
        .await?
        .unwrap_or(payment);
    Ok(envelope::created(stored.view()))
}

/// `GET /api/payments` query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentQuery {
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    pub status: Option<PaymentState>,
    #[serde(
        default,
        alias = "payment_method",
        deserialize_with = "crate::http::query::all_or"
    )]
    pub method: Option<Method>,
    /// The client who paid (`payer_id` in the dashboard's words).
    #[serde(
        default,
        alias = "client_id",
        alias = "payer_id",
        alias = "payerId",
        deserialize_with = "crate::http::query::non_empty"
    )]
    pub client_id: Option<String>,
    #[serde(alias = "start_date", alias = "date_from", alias = "dateFrom")]
    pub start_date: Option<String>,
    #[serde(alias = "end_date", alias = "date_to", alias = "dateTo")]
    pub end_date: Option<String>,
    pub page: Option<u64>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    #[serde(alias = "sort_by")]
    pub sort_by: Option<PaymentSort>,
    #[serde(alias = "sort_order")]
    pub sort_order: Option<crate::db::SortOrder>,
}

/// Sort fields of the payment list: all mean "when it was paid".
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PaymentSort {
    #[serde(alias = "date", alias = "createdAt")]
    PaymentDate,
}

/// The therapist's zone.
async fn zone_of(state: &AppState, therapist: ObjectId) -> ApiResult<chrono_tz::Tz> {
    AvailabilityStore::new(&state.db).zone(therapist).await
}

/// The caller's payments, newest first, in the nested list shape.
#[utoipa::path(get, path = "/api/payments", tag = "payments", responses((status = 200), (status = 400)))]
pub async fn list(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<PaymentQuery>,
) -> ApiResult<Response> {
    let page = Page::new(q.page, q.limit, q.cursor.as_deref(), 20)?;
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
    let mut range = Document::new();
    let from = crate::http::query::date_bound(&[("startDate", &q.start_date)])?;
    let to = crate::http::query::date_bound(&[("endDate", &q.end_date)])?;
    if from.is_some() || to.is_some() {
        let zone = zone_of(&state, me.0.id).await?;
        if let Some(b) = from {
            range.insert("$gte", DateTime::from_chrono(b.start(zone)));
        }
        if let Some(b) = to {
            // A day includes all of it; an instant is the exact end.
            range.insert("$lt", DateTime::from_chrono(b.end(zone)));
        }
    }
    if !range.is_empty() {
        filter.insert("paymentDate", range);
    }
    let descending = q.sort_order.unwrap_or_default() == crate::db::SortOrder::Desc;
    let raw = state.db.collection::<Document>(PAYMENTS);
    let (docs, total, next) =
        page_of(&raw, me.scope().filter(filter), "paymentDate", descending, &page).await?;
    let payments: Vec<Payment> = docs
        .into_iter()
        .map(mongodb::bson::from_document::<Payment>)
        .collect::<Result<Vec<_>, _>>()?;
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

/// The payment methods this deployment records and the fee rule of each (configuration).
#[utoipa::path(get, path = "/api/payments/providers", tag = "payments", responses((status = 200)))]
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
            let rule = fee_rule(&state, *m);
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
#[utoipa::path(get, path = "/api/payments/{id}", tag = "payments", responses((status = 200), (status = 404)))]
pub async fn get_one(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(envelope::ok(load(&state, &me.scope(), &id).await?.view()))
}

/// Moves a payment between pending, completed, failed and cancelled (with its booking).
#[utoipa::path(put, path = "/api/payments/{id}/status", tag = "payments", request_body = StatusUpdate,
    responses((status = 200), (status = 400), (status = 404)))]
pub async fn update_status(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let req: StatusUpdate = parse_body(&headers, &body)?;
    let p = load(&state, &me.scope(), &id).await?;
    if !p.status.can_become(req.status) {
        return Err(ApiError::BadRequest {
            code: "INVALID_STATUS_TRANSITION",
            message: format!(
                "A {} payment cannot become {} (use the refund endpoint for refunds)",
                p.status.as_str(),
                req.status.as_str()
            ),
        });
    }
    if req.status == p.status {
        // Nothing changes: never recompute (and lose) what remains refundable.
        return Ok(envelope::ok(p.view()));
    }
    let refundable = if req.status == PaymentState::Completed {
        p.amount_cents.0 - p.refunded_cents.0
    } else {
        0
    };
    // What the booking counts as paid moves with the payment: a payment that failed or was
    // cancelled no longer counts; one that is pending again counts (within the price) again.
    // This transition's own id in the booking's `chargeIds` (the payment's id is already there
    // from its creation), made before the transaction so a retried attempt recognises it.
    let change = ObjectId::new();
    let counted = |st: PaymentState| {
        matches!(
            st,
            PaymentState::Pending | PaymentState::Completed | PaymentState::PartiallyRefunded
        )
    };
    let delta = match (counted(p.status), counted(req.status)) {
        (true, false) => -(p.amount_cents.0 - p.refunded_cents.0),
        (false, true) => p.amount_cents.0 - p.refunded_cents.0,
        _ => 0,
    };
    let (coll, bookings) = (
        state.db.collection::<Document>(PAYMENTS),
        state.db.collection::<Document>("bookings"),
    );
    let updated: Document = transaction(&state.db, |s| {
        let (coll, bookings, p, to) = (coll.clone(), bookings.clone(), p.clone(), req.status);
        Box::pin(async move {
            // Only from the state this request saw: the same change made twice at once (two
            // instances) applies once, and the second finds it done and changes nothing more.
            let guard = doc! { "_id": p.id, "therapistId": p.therapist_id, "status": p.status.as_str() };
            let updated = coll
                .find_one_and_update(guard, doc! { "$set": { "status": to.as_str(), "refundableCents": refundable, "updatedAt": DateTime::now() } })
                .return_document(ReturnDocument::After)
                .session(&mut *s)
                .await?;
            let Some(updated) = updated else {
                let now = coll.find_one(doc! { "_id": p.id }).session(&mut *s).await?;
                return match now {
                    Some(d) if d.get_str("status") == Ok(to.as_str()) => Ok(d),
                    _ => Err(TxError::Other(ApiError::PreconditionFailed(
                        "This payment changed meanwhile; reload and try again".into(),
                    ))),
                };
            };
            match p.booking_id {
                Some(bid) if delta != 0 => {
                    let charge = Charge { method: None, booking: bid, therapist: p.therapist_id, payment: change, cents: delta, allow_over: false };
                    charge_booking(&bookings, s, &charge, Some(to.booking_payment_status())).await?;
                }
                _ => set_booking_payment_status(&bookings, s, p.booking_id, to).await?,
            }
            Ok(updated)
        })
    })
    .await?;
    let p: Payment = mongodb::bson::from_document(updated)?;
    Ok(envelope::ok(p.view()))
}

/// Refunds part or all of a completed payment; never more than what remains refundable.
#[utoipa::path(post, path = "/api/payments/{id}/refund", tag = "payments", request_body = RefundRequest,
    responses((status = 200), (status = 400), (status = 404)))]
pub async fn refund(
    State(state): State<AppState>,
    me: Therapist,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let key = idempotency::key_from(&headers)?;
    let req: RefundRequest = parse_body(&headers, &body)?;
    let route = format!("POST /api/payments/{id}/refund");
    let st = state.clone();
    let ids = idempotency::Ids::new(me.0.id, &route, key.as_deref());
    idempotency::once(&state, me.0.id, &route, key, &body, async move {
        refund_inner(&st, me, id, req, ids).await
    })
    .await
}

async fn refund_inner(
    state: &AppState,
    me: Therapist,
    id: String,
    req: RefundRequest,
    ids: idempotency::Ids,
) -> ApiResult<Response> {
    let p = load(state, &me.scope(), &id).await?;
    let amount = req.refund_amount.0;
    if amount == 0 {
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
        amount_cents: Cents(amount),
        reason: req.reason,
        refunded_at: DateTime::now(),
    };
    let (coll, bookings) = (
        state.db.collection::<Document>(PAYMENTS),
        state.db.collection::<Document>("bookings"),
    );
    let updated: Document = transaction(&state.db, |s| {
        let (coll, bookings, p, entry) = (coll.clone(), bookings.clone(), p.clone(), entry.clone());
        Box::pin(async move {
            let entry_doc = mongodb::bson::to_document(&entry).map_err(|e| TxError::Other(e.into()))?;
            // The guard and the decrement are one document update: atomic everywhere.
            let applied = coll
                .find_one(doc! { "_id": p.id, "refunds.id": entry.id })
                .session(&mut *s)
                .await?;
            let applied_now = applied.is_none();
            let after = match applied {
                Some(done) => Some(done),
                None => coll
                .find_one_and_update(
                    doc! { "_id": p.id, "therapistId": p.therapist_id, "refundableCents": { "$gte": amount },
                           "status": { "$in": ["completed", "partially_refunded"] } },
                    doc! { "$inc": { "refundableCents": -amount, "refundedCents": amount },
                           "$push": { "refunds": entry_doc }, "$set": { "updatedAt": DateTime::now() } },
                )
                .return_document(ReturnDocument::After)
                .session(&mut *s)
                .await?,
            };
            let after = after.ok_or_else(|| {
                TxError::Other(ApiError::BadRequest {
                    code: "REFUND_EXCEEDS_PAYMENT",
                    message: "The refund is more than what remains refundable on this payment".into(),
                })
            })?;
            let left = after
                .get("refundableCents")
                .and_then(crate::db::as_i64)
                .unwrap_or(0);
            let status = if left == 0 {
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
            if applied_now {
                if let Some(bid) = p.booking_id {
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
            }
            set_booking_payment_status(&bookings, s, p.booking_id, status).await?;
            Ok(after)
        })
    })
    .await?;
    let p: Payment = mongodb::bson::from_document(updated)?;
    Ok(envelope::ok(p.view()))
}
