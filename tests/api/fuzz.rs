//! A request fuzz over the practice endpoints: malformed JSON, wrong types, huge numbers and
//! operator injection. No answer may be a 5xx, and a refused request must change nothing.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::helpers::*;

const COLLECTIONS: &[&str] = &[
    "payments",
    "bookings",
    "reviews",
    "profiles",
    "notifications",
    "clients",
    "slot_claims",
];

async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for c in COLLECTIONS {
        let docs: Vec<mongodb::bson::Document> = futures_util::TryStreamExt::try_collect(
            app.db
                .collection::<mongodb::bson::Document>(c)
                .find(mongodb::bson::doc! {})
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        out.push(format!("{c}:{docs:?}"));
    }
    out
}

fn nasty_values(rng: &mut StdRng) -> Vec<Value> {
    let mut v = vec![
        json!(null),
        json!(true),
        json!(-1),
        json!(0),
        json!(1e308),
        json!(-1e308),
        json!(9007199254740993_u64),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(""),
        json!("x".repeat(20_000)),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({ "$gt": "" }),
        json!({ "$ne": null }),
        json!({ "$where": "sleep(1000)" }),
        json!("{\"$gt\": \"\"}"),
        json!("2031-02-30"),
        json!("ffffffffffffffffffffffff"),
        json!("../../etc/passwd"),
        json!("\u{0000}\u{202e}"),
    ];
    v.push(json!(rng.gen::<f64>() * 1e12));
    v.push(json!(rng.gen::<i64>()));
    v
}

const RAW_BODIES: &[&str] = &[
    "",
    "{",
    "[1,2",
    "null",
    "\"str\"",
    "{\"a\":}",
    "{\"amount\": 1e400}",
    "{\"amount\": -1e400}",
    "{\"amount\": 18446744073709551616}",
    "{\"rating\": 5, \"rating\": 1}",
    "\u{feff}{}",
    "{\"a\": \"\\ud800\"}",
];

#[tokio::test]
async fn malformed_requests_never_5xx_and_change_nothing() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let c = client_user(&app).await;
    let r = app
        .post_as("/api/clients", &me, &json!({ "name": "Fuzz", "email": c.email }))
        .await;
    let client = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let b = json!({ "clientId": client, "date": "2031-06-02", "startTime": "10:00", "endTime": "11:00", "amount": 50 });
    let booking = json_body(app.post_as("/api/bookings", &me, &b).await).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.put_as(&format!("/api/bookings/{booking}/complete"), &me, &json!({}))
        .await;
    let p = json!({ "amount": 50, "method": "cash", "clientId": client });
    let payment = json_body(app.post_as("/api/payments", &me, &p).await).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let review = json_body(
        app.post_as(
            "/api/reviews/create",
            &c,
            &json!({ "bookingId": booking, "rating": 4 }),
        )
        .await,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let targets: Vec<(reqwest::Method, String, &Caller, Value)> = vec![
        (
            reqwest::Method::POST,
            "/api/payments".into(),
            &me,
            json!({ "amount": 10, "method": "card", "clientId": client, "bookingId": booking, "description": "d" }),
        ),
        (
            reqwest::Method::PUT,
            format!("/api/payments/{payment}/status"),
            &me,
            json!({ "status": "failed" }),
        ),
        (
            reqwest::Method::POST,
            format!("/api/payments/{payment}/refund"),
            &me,
            json!({ "refundAmount": 1, "reason": "r" }),
        ),
        (
            reqwest::Method::POST,
            "/api/reviews/create".into(),
            &c,
            json!({ "bookingId": booking, "rating": 3, "comment": "c" }),
        ),
        (
            reqwest::Method::POST,
            format!("/api/reviews/{review}/response"),
            &me,
            json!({ "response": "thanks" }),
        ),
        (
            reqwest::Method::PUT,
            "/api/profile".into(),
            &me,
            json!({ "about": "a", "specialties": ["x"], "rates": { "sessionPrice": 60 }, "externalLinks": [{ "label": "w", "url": "https://a.example" }] }),
        ),
    ];
    let mut rng = StdRng::seed_from_u64(0xD4A2A);
    let mut sent = 0;
    for (method, path, who, template) in &targets {
        // Raw malformed bodies.
        for raw in RAW_BODIES {
            let before = snapshot(&app).await;
            let r = app
                .client
                .request(method.clone(), app.url(path))
                .header("Authorization", &who.auth)
                .header("Content-Type", "application/json")
                .body(raw.to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert!(
                status < 500,
                "{method} {path} {raw:?} → {status}: {}",
                r.text().await.unwrap()
            );
            if status >= 400 {
                assert_eq!(
                    snapshot(&app).await,
                    before,
                    "{method} {path} {raw:?} changed data"
                );
            }
            sent += 1;
        }
        // Each field replaced by each nasty value.
        for field in template.as_object().unwrap().keys() {
            for value in nasty_values(&mut rng) {
                let mut body = template.clone();
                body[field] = value.clone();
                let before = snapshot(&app).await;
                let r = app.send(method.clone(), path, who, Some(&body)).await;
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                assert!(status < 500, "{method} {path} {field}={value} → {status}: {text}");
                if status >= 400 {
                    assert_eq!(
                        snapshot(&app).await,
                        before,
                        "{method} {path} {field}={value} changed data: {text}"
                    );
                    let err: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(err["success"], false);
                }
                sent += 1;
            }
        }
    }
    // Hostile ids and query strings.
    let gets = [
        "/api/payments/ffffffffffffffffffffffff",
        "/api/payments/..%2F..%2Fetc",
        "/api/payments/%00",
        "/api/payments?status[$ne]=x",
        "/api/payments?limit=-1",
        "/api/payments?page=99999999999999999999999",
        "/api/payments?startDate=0000-00-00",
        "/api/payments?clientId[$gt]=",
        "/api/payments/statistics?period[$ne]=week",
        "/api/reviews?rating=99",
        "/api/reviews?cursor=eyJ2Ijp7IiRndCI6IiJ9LCJpZCI6ImFhYSJ9",
        "/api/notifications?limit=1e9",
        "/api/dashboard?x=%FF%FE",
        "/api/profile/public/%7B%22%24gt%22%3A%22%22%7D",
    ];
    for path in gets {
        let r = app.get_as(path, &me).await;
        let status = r.status().as_u16();
        assert!(status < 500, "GET {path} → {status}: {}", r.text().await.unwrap());
        sent += 1;
    }
    let r = app
        .post_as(
            "/api/notifications/%7B%22%24ne%22%3Anull%7D/read",
            &me,
            &json!({}),
        )
        .await;
    assert!(r.status().is_client_error());
    assert!(sent > 400, "{sent} requests");
}
