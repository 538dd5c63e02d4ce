//! Payments: fees, the booking changing in the same transaction, all-or-nothing when the second
//! write fails, refunds never exceeding the payment (also concurrently), statistics, isolation.

use mongodb::bson::{doc, Document};
use serde_json::{json, Value};

use crate::helpers::*;

async fn booked(app: &TestApp, me: &Caller, client: &str, date: &str) -> String {
    let body =
        json!({ "clientId": client, "date": date, "startTime": "10:00", "endTime": "11:00", "amount": 80 });
    json_body(app.post_as("/api/bookings", me, &body).await).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn booking_doc(app: &TestApp, id: &str) -> Document {
    let oid = mongodb::bson::oid::ObjectId::parse_str(id).unwrap();
    app.db
        .collection::<Document>("bookings")
        .find_one(doc! { "_id": oid })
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_payment_for_a_booking_marks_it_paid_with_fees_and_a_notification() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Pagadora").await;
    let booking = booked(&app, &me, &client, "2031-02-10").await;
    let body = json!({ "amount": 80, "method": "card", "clientId": client, "bookingId": booking, "description": "Session" });
    let r = app.post_as("/api/payments", &me, &body).await;
    assert_eq!(r.status(), 201);
    let p = json_body(r).await["data"].clone();
    assert_eq!(p["amount"], json!(80.0));
    assert_eq!(p["fees"], json!(1.37), "1.4 % + 0.25");
    assert_eq!(p["netAmount"], json!(78.63));
    assert_eq!(p["status"], "completed");
    assert!(p["transactionId"].as_str().unwrap().starts_with("TXN-"));
    let b = booking_doc(&app, &booking).await;
    assert_eq!(b.get_str("paymentStatus").unwrap(), "paid");
    assert_eq!(
        json_body(app.get_as(&format!("/api/bookings/{booking}"), &me).await).await["data"]["paymentStatus"],
        "paid"
    );

    let n = json_body(app.get_as("/api/notifications", &me).await).await["data"].clone();
    let kinds: Vec<&str> = n["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"payment_received") && kinds.contains(&"booking_created"),
        "{kinds:?}"
    );

    let list = json_body(app.get_as("/api/payments?method=card", &me).await).await;
    assert_eq!(list["data"]["payments"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["data"]["pagination"],
        json!({ "current": 1, "pages": 1, "total": 1, "nextCursor": null })
    );
    let stored = app
        .db
        .collection::<Document>("payments")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.get_i64("amountCents").unwrap(), 8000);
}

#[tokio::test]
async fn when_the_second_write_fails_neither_write_remains() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Atómica").await;
    let first = booked(&app, &me, &client, "2031-03-10").await;
    let second = booked(&app, &me, &client, "2031-03-11").await;
    let pay = |booking: &str| json!({ "amount": 50, "method": "cash", "clientId": client, "bookingId": booking, "transactionId": "BANK-0001" });
    assert_eq!(
        app.post_as("/api/payments", &me, &pay(&first)).await.status(),
        201
    );
    let before = booking_doc(&app, &second).await;

    // The booking is updated first, then the payment insert fails (duplicate transactionId):
    // the transaction rolls the booking update back.
    let r = app.post_as("/api/payments", &me, &pay(&second)).await;
    assert_error(r, 409, "TRANSACTION_EXISTS").await;
    let after = booking_doc(&app, &second).await;
    assert_eq!(after.get_str("paymentStatus").unwrap(), "pending");
    assert_eq!(
        after.get_i64("version").unwrap(),
        before.get_i64("version").unwrap()
    );
    assert!(after.get("paymentId").is_none());
    assert_eq!(app.count("payments").await, 1);
}

#[tokio::test]
async fn refunds_never_exceed_the_payment_even_concurrently() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Reembolso").await;
    let booking = booked(&app, &me, &client, "2031-04-10").await;
    let r = app
        .post_as(
            "/api/payments",
            &me,
            &json!({ "amount": 80, "method": "transfer", "clientId": client, "bookingId": booking }),
        )
        .await;
    let created = json_body(r).await;
    let id = created["data"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let path = format!("/api/payments/{id}/refund");

    let refund30 = json!({ "refundAmount": 30, "reason": "partial" });
    let attempts = (0..10).map(|_| app.post_as(&path, &me, &refund30));
    for r in futures_util::future::join_all(attempts).await {
        let status = r.status().as_u16();
        let body = json_body(r).await;
        match (status, body["code"].as_str()) {
            (200, _) | (400, Some("REFUND_EXCEEDS_PAYMENT")) => {}
            // Gave up under contention (nothing applied), or cut off by its timeout while the
            // refund ran on to completion: either way, the stored state below decides.
            (409, Some("CONCURRENT_UPDATE")) | (503, Some("TIMEOUT")) => {}
            other => panic!("unexpected {other:?}: {body}"),
        }
    }
    // A client retries until refused; then exactly two refunds of 30 fit in 80.
    loop {
        let r = app.post_as(&path, &me, &refund30).await;
        match r.status().as_u16() {
            200 | 409 | 503 => {}
            400 => break,
            other => panic!("unexpected {other}"),
        }
    }
    let ok = 2usize;
    let left = 80 - ok as i64 * 30;
    let r = app
        .post_as(&path, &me, &json!({ "refundAmount": left + 1 }))
        .await;
    assert_error(r, 400, "REFUND_EXCEEDS_PAYMENT").await;
    let r = app.post_as(&path, &me, &json!({ "refundAmount": left })).await;
    assert_eq!(json_body(r).await["data"]["status"], "refunded");
    assert_eq!(
        booking_doc(&app, &booking)
            .await
            .get_str("paymentStatus")
            .unwrap(),
        "refunded"
    );
    assert_error(
        app.post_as(&path, &me, &json!({ "refundAmount": 1 })).await,
        400,
        "NOT_REFUNDABLE",
    )
    .await;
}

#[tokio::test]
async fn statistics_match_what_was_recorded() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Stats").await;
    let mut ids = Vec::new();
    for (amount, method) in [(100, "cash"), (50, "card"), (20, "transfer")] {
        let r = app
            .post_as(
                "/api/payments",
                &me,
                &json!({ "amount": amount, "method": method, "clientId": client }),
            )
            .await;
        let created = json_body(r).await;
        ids.push(
            created["data"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{created}"))
                .to_owned(),
        );
    }
    app.post_as(
        "/api/payments",
        &me,
        &json!({ "amount": 999, "method": "cash", "clientId": client, "status": "pending" }),
    )
    .await;
    app.post_as(
        &format!("/api/payments/{}/refund", ids[2]),
        &me,
        &json!({ "refundAmount": 5 }),
    )
    .await;
    let s = json_body(app.get_as("/api/payments/statistics?period=month", &me).await).await["data"].clone();
    let cur = &s["currentPeriod"];
    assert_eq!(
        cur["totalAmount"],
        json!(165.0),
        "100 + 50 + 20 - 5 refunded; pending excluded"
    );
    assert_eq!(cur["totalFees"], json!(0.95), "card 50: 0.70 + 0.25");
    assert_eq!(cur["totalNetAmount"], json!(164.05));
    assert_eq!(cur["count"], 3);
    assert_eq!(cur["avgAmount"], json!(55.0));
    let monthly = s["monthlyRevenue"].as_array().unwrap();
    assert_eq!(monthly.len(), 12);
    assert_eq!(monthly[11]["revenue"], json!(165.0));
    assert_eq!(monthly[0]["revenue"], json!(0.0));

    let r = app
        .put_as(
            &format!("/api/payments/{}/status", ids[0]),
            &me,
            &json!({ "status": "pending" }),
        )
        .await;
    assert_error(r, 400, "INVALID_STATUS_TRANSITION").await;
    assert_error(
        app.get_as("/api/payments/statistics?period=decade", &me).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test]
async fn payments_are_isolated_and_validated() {
    let app = spawn_app().await;
    let owner = therapist(&app).await;
    let intruder = therapist(&app).await;
    let client = new_client(&app, &owner, "Privada").await;
    let booking = booked(&app, &owner, &client, "2031-05-10").await;
    let r = app
        .post_as(
            "/api/payments",
            &owner,
            &json!({ "amount": 40, "method": "cash", "clientId": client }),
        )
        .await;
    let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    assert_error(
        app.get_as(&format!("/api/payments/{id}"), &intruder).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.put_as(
            &format!("/api/payments/{id}/status"),
            &intruder,
            &json!({ "status": "failed" }),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.post_as(
            &format!("/api/payments/{id}/refund"),
            &intruder,
            &json!({ "refundAmount": 1 }),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        json_body(app.get_as("/api/payments", &intruder).await).await["data"]["pagination"]["total"],
        0
    );
    let theirs = new_client(&app, &intruder, "Mine").await;
    let r = app
        .post_as(
            "/api/payments",
            &intruder,
            &json!({ "amount": 1, "method": "cash", "clientId": theirs, "bookingId": booking }),
        )
        .await;
    assert_eq!(
        assert_error(r, 400, "VALIDATION_ERROR").await["errors"][0]["field"],
        "bookingId"
    );

    let cases: Vec<(Value, &str)> = vec![
        (json!({ "method": "cash", "clientId": client }), "amount"),
        (
            json!({ "amount": 0, "method": "cash", "clientId": client }),
            "amount",
        ),
        (
            json!({ "amount": "lots", "method": "cash", "clientId": client }),
            "amount",
        ),
        (
            json!({ "amount": 10.001, "method": "cash", "clientId": client }),
            "amount",
        ),
        (
            json!({ "amount": 10, "method": "bitcoin", "clientId": client }),
            "method",
        ),
        (
            json!({ "amount": 10, "method": "cash", "clientId": "x" }),
            "clientId",
        ),
        (
            json!({ "amount": 10, "method": "cash", "clientId": client, "status": "refunded" }),
            "status",
        ),
        (
            json!({ "amount": 10, "method": "cash", "clientId": { "$gt": "" } }),
            "clientId",
        ),
    ];
    for (body, field) in cases {
        let err = assert_error(
            app.post_as("/api/payments", &owner, &body).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(err["errors"][0]["field"], field, "{body}");
    }
    assert_eq!(app.count("payments").await, 1);
}

#[tokio::test]
async fn a_retried_payment_with_the_same_key_is_recorded_once() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Retry").await;
    let booking = booked(&app, &me, &client, "2031-06-10").await;
    let body = json!({ "amount": 70, "method": "card", "clientId": client, "bookingId": booking });
    let send = |body: &Value| {
        app.client
            .post(app.url("/api/payments"))
            .header("Authorization", &me.auth)
            .header("Idempotency-Key", "pay-once-1")
            .json(body)
            .send()
    };
    let first = json_body(send(&body).await.unwrap()).await;
    let again = send(&body).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(json_body(again).await, first);
    assert_eq!(app.count("payments").await, 1);
    let mut other = body.clone();
    other["amount"] = json!(71);
    assert_error(send(&other).await.unwrap(), 409, "IDEMPOTENCY_KEY_REUSED").await;
    assert_eq!(
        booking_doc(&app, &booking)
            .await
            .get("version")
            .and_then(dhara::db::as_i64)
            .unwrap(),
        2,
        "booking changed once"
    );
}

/// A stored payment that no longer decodes is an error the therapist sees (500, cause logged),
/// never a page that silently leaves it out.
#[tokio::test]
async fn a_payment_that_does_not_decode_fails_the_list_instead_of_vanishing() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Rota").await;
    let body = json!({ "amount": 30, "method": "cash", "clientId": client });
    assert_eq!(app.post_as("/api/payments", &me, &body).await.status(), 201);
    let listed = json_body(app.get_as("/api/payments", &me).await).await;
    assert_eq!(listed["data"]["total"], 1);

    let therapist_id = mongodb::bson::oid::ObjectId::parse_str(&me.id).unwrap();
    app.db
        .collection::<Document>("payments")
        .update_one(
            doc! { "therapistId": therapist_id },
            doc! { "$set": { "amountCents": "thirty" } },
        )
        .await
        .unwrap();
    let r = app.get_as("/api/payments", &me).await;
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(!text.contains("thirty"), "the cause stays in the log: {text}");
}

#[tokio::test]
async fn a_paid_booking_keeps_a_price_and_currency_its_payments_fit() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Pagó").await;
    let booking = booked(&app, &me, &client, "2031-02-12").await;
    let body = json!({ "amount": 60, "method": "card", "clientId": client, "bookingId": booking, "description": "Session" });
    assert_eq!(app.post_as("/api/payments", &me, &body).await.status(), 201);
    let path = format!("/api/bookings/{booking}");
    let before = booking_doc(&app, &booking).await;
    for (change, code) in [
        (json!({ "amount": 10 }), "PRICE_BELOW_PAID"),
        (
            json!({ "amount": 10, "date": "2031-02-13", "startTime": "10:00", "endTime": "11:00" }),
            "PRICE_BELOW_PAID",
        ),
        (json!({ "currency": "USD" }), "CURRENCY_HAS_PAYMENTS"),
    ] {
        assert_error(app.put_as(&path, &me, &change).await, 409, code).await;
    }
    let after = booking_doc(&app, &booking).await;
    assert_eq!(after, before, "nothing changed");
    // Down to what is paid, or up, is fine.
    let r = app.put_as(&path, &me, &json!({ "amount": 60 })).await;
    assert_eq!(r.status(), 200);
    let r = app
        .put_as(&path, &me, &json!({ "amount": 90, "currency": "EUR" }))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["data"]["amount"], json!(90.0));
}

#[tokio::test]
async fn a_price_cut_racing_a_payment_on_another_instance_never_leaves_more_paid_than_the_price() {
    let a = spawn_app().await;
    let mut config = test_config(&[]);
    config.mongodb.database = a.config.mongodb.database.clone();
    config.redis.prefix = a.config.redis.prefix.clone();
    let b = spawn_with_config(config).await;
    b.wait_ready().await;
    let me = therapist(&a).await;
    let client = new_client(&a, &me, "Carrera").await;
    // The edit starts 0-3 s after the payment (a payment's transaction may take a second or
    // more on the dev emulator), so both orders and overlaps occur.
    for (day, lag_ms) in [
        (10, 0u64),
        (11, 100),
        (12, 400),
        (13, 1_000),
        (14, 2_000),
        (15, 3_000),
    ] {
        let booking = booked(&a, &me, &client, &format!("2031-03-{day}")).await;
        let pay = json!({ "amount": 60, "method": "card", "clientId": client, "bookingId": booking, "description": "Session" });
        let cut = json!({ "amount": 10 });
        let path = format!("/api/bookings/{booking}");
        let (paid, edited) = tokio::join!(a.post_as("/api/payments", &me, &pay), async {
            tokio::time::sleep(std::time::Duration::from_millis(lag_ms)).await;
            b.put_as(&path, &me, &cut).await
        });
        let (paid, edited) = (paid.status().as_u16(), edited.status().as_u16());
        assert!([201, 409].contains(&paid), "payment {paid}");
        assert!([200, 409, 412].contains(&edited), "edit {edited}");
        let stored = booking_doc(&a, &booking).await;
        let price = stored.get_i64("amountCents").unwrap();
        let counted = stored.get_i64("paidCents").unwrap_or(0);
        assert!(
            counted <= price,
            "paid {counted} over a price of {price}: {stored}"
        );
        assert!(
            paid == 201 || edited == 200,
            "one of them went through ({paid}, {edited})"
        );
    }
}
