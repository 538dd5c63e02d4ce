//! A request fuzz over the practice endpoints: malformed JSON, wrong types, huge numbers and
//! operator injection. No answer may be a 5xx, and a refused request must change nothing. A
//! table of refused requests over bookings, clients, availability, auth and headers pins each
//! answer: its exact status, `code` and the `errors[].field` it names.

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

/// Who sends a request of the table.
#[derive(Clone, Copy, Debug)]
enum Who {
    Therapist,
    Client,
    Nobody,
}

/// The body of a request of the table.
#[derive(Clone, Debug)]
enum Body {
    None,
    Json(Value),
    /// Raw bytes with this `Content-Type` (none when `None`).
    Raw(Option<&'static str>, Vec<u8>),
}

/// One refused request and the answer the SPEC requires for it.
struct Refused {
    method: reqwest::Method,
    path: String,
    who: Who,
    body: Body,
    headers: Vec<(&'static str, Vec<u8>)>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

impl Refused {
    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A row of the table: (method, path, who, body, expected status, expected code, expected
/// field of `errors[]`; `None`: no `errors`).
fn refused(
    method: reqwest::Method,
    path: impl Into<String>,
    who: Who,
    body: Body,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Refused {
    Refused {
        method,
        path: path.into(),
        who,
        body,
        headers: Vec::new(),
        status,
        code,
        field,
    }
}

/// `template` with `field` set to `value`.
fn with(template: &Value, field: &str, value: Value) -> Body {
    let mut body = template.clone();
    body[field] = value;
    Body::Json(body)
}

/// `template` without `field`.
fn without(template: &Value, field: &str) -> Body {
    let mut body = template.clone();
    body.as_object_mut().unwrap().remove(field);
    Body::Json(body)
}

/// A JSON body over the 1 MiB limit.
fn oversized(template: &Value) -> Body {
    let mut body = template.clone();
    body["notes"] = json!("x".repeat(1_100_000));
    Body::Raw(Some("application/json"), body.to_string().into_bytes())
}

/// What the table refers to: the callers and the records the refused requests aim at.
struct Fixture {
    therapist: Caller,
    client_user: Caller,
    client: String,
    booking: String,
    block: String,
}

const V: &str = "VALIDATION_ERROR";
/// A well-formed id that names nothing.
const ABSENT: &str = "ffffffffffffffffffffffff";

/// Templates of valid bodies; each row breaks one thing.
fn booking_body(f: &Fixture) -> Value {
    json!({ "clientId": f.client, "date": "2031-06-02", "startTime": "10:00", "endTime": "11:00", "amount": 50 })
}

fn block_body() -> Value {
    json!({ "date": "2031-06-03", "startTime": "09:00", "endTime": "10:00" })
}

#[rustfmt::skip]
fn refused_requests(f: &Fixture) -> Vec<Refused> {
    use reqwest::Method as M;
    use Body::{Json as J, None as Nil};
    use Who::{Client as C, Nobody as N, Therapist as T};
    let (booking, client, block) = (&f.booking, &f.client, &f.block);
    let b = &booking_body(f);
    let reschedule = &json!({ "date": "2031-06-09", "startTime": "10:00", "endTime": "11:00" });
    let new_client = &json!({ "name": "Ana", "email": "ana@example.com", "phone": "+34 600 111 222" });
    let schedule = &json!({ "timezone": "Europe/Madrid", "weekly": { "monday": [{ "start": "09:00", "end": "13:00" }] } });
    let blk = &block_body();
    let check = &json!({ "therapistId": f.therapist.id, "date": "2031-06-02", "startTime": "10:00", "endTime": "11:00" });
    let register = &json!({ "name": "Eva", "email": "eva@example.com", "password": "correct horse battery", "confirmPassword": "correct horse battery" });
    let login = &json!({ "email": f.therapist.email, "password": "correct horse battery" });
    let reset = &json!({ "token": "a".repeat(32), "password": "new horse battery", "confirmPassword": "new horse battery" });
    let slots = format!("/api/availability/therapist/{}/date/2031-06-02", f.therapist.id);
    let raw = |ct: &'static str, v: &Value| Body::Raw(Some(ct), v.to_string().into_bytes());
    vec![
        // Bookings: create.
        refused(M::POST, "/api/bookings", T, with(b, "clientId", json!("nope")), 400, V, Some("clientId")),
        refused(M::POST, "/api/bookings", T, with(b, "clientId", json!({ "$gt": "" })), 400, V, Some("clientId")),
        refused(M::POST, "/api/bookings", T, with(b, "clientId", json!(ABSENT)), 400, V, Some("clientId")),
        refused(M::POST, "/api/bookings", T, without(b, "date"), 400, V, Some("date")),
        refused(M::POST, "/api/bookings", T, with(b, "date", json!("2031-02-30")), 400, V, Some("date")),
        refused(M::POST, "/api/bookings", T, with(b, "date", json!(20310602)), 400, V, Some("date")),
        refused(M::POST, "/api/bookings", T, with(b, "startTime", json!("25:00")), 400, V, Some("startTime")),
        refused(M::POST, "/api/bookings", T, with(b, "startTime", json!("10:07")), 400, V, Some("startTime")),
        refused(M::POST, "/api/bookings", T, with(b, "endTime", json!("09:00")), 400, V, Some("endTime")),
        refused(M::POST, "/api/bookings", T, with(b, "amount", json!(-1)), 400, V, Some("amount")),
        refused(M::POST, "/api/bookings", T, with(b, "amount", json!("abc")), 400, V, Some("amount")),
        refused(M::POST, "/api/bookings", T, with(b, "amount", json!(1e308)), 400, V, Some("amount")),
        refused(M::POST, "/api/bookings", T, with(b, "currency", json!("XYZ")), 400, V, Some("currency")),
        refused(M::POST, "/api/bookings", T, with(b, "status", json!("bogus")), 400, V, Some("status")),
        refused(M::POST, "/api/bookings", T, with(b, "therapyDuration", json!(1)), 400, V, Some("therapyDuration")),
        refused(M::POST, "/api/bookings", T, with(b, "meetingLink", json!("javascript:alert(1)")), 400, V, Some("meetingLink")),
        refused(M::POST, "/api/bookings", T, with(b, "notes", json!("x".repeat(5001))), 400, V, Some("notes")),
        refused(M::POST, "/api/bookings", T, with(b, "recurrence", json!({ "frequency": "daily", "count": 3 })), 400, V, Some("recurrence.frequency")),
        refused(M::POST, "/api/bookings", T, with(b, "recurrence", json!({ "frequency": "weekly", "count": 1 })), 400, V, Some("recurrence.count")),
        refused(M::POST, "/api/bookings", T, with(b, "recurrence", json!({ "frequency": "weekly", "count": 3, "interval": 3 })), 400, V, Some("recurrence.interval")),
        // 02:30 on 2031-03-30 does not exist in Madrid (clocks jump forward).
        refused(M::POST, "/api/bookings", T, J(json!({ "clientId": client, "date": "2031-03-30", "startTime": "02:30", "endTime": "03:30" })), 400, V, Some("startTime")),
        refused(M::POST, "/api/bookings", C, J(b.clone()), 403, "FORBIDDEN", None),
        refused(M::POST, "/api/bookings", N, J(b.clone()), 401, "UNAUTHORIZED", None),
        // Bookings: update, reschedule, cancel, complete, no-show, the client's routes.
        refused(M::PUT, format!("/api/bookings/{booking}"), T, J(json!({ "version": "x" })), 400, V, Some("version")),
        refused(M::PUT, format!("/api/bookings/{booking}"), T, J(json!({ "startTime": "9am" })), 400, V, Some("startTime")),
        refused(M::PUT, format!("/api/bookings/{booking}"), T, J(json!({ "status": "bogus" })), 400, V, Some("status")),
        refused(M::PUT, format!("/api/bookings/{booking}"), T, J(json!({ "amount": -5 })), 400, V, Some("amount")),
        refused(M::PUT, format!("/api/bookings/{booking}"), T, J(json!({ "notes": "n", "version": 999 })), 412, "VERSION_CONFLICT", None),
        refused(M::PUT, "/api/bookings/nope", T, J(json!({ "notes": "n" })), 400, V, Some("id")),
        refused(M::PUT, format!("/api/bookings/{ABSENT}"), T, J(json!({ "notes": "n" })), 404, "NOT_FOUND", None),
        refused(M::PUT, format!("/api/bookings/{booking}/reschedule"), T, J(json!({})), 400, V, Some("date")),
        refused(M::PUT, format!("/api/bookings/{booking}/reschedule"), T, with(reschedule, "date", json!("2031-13-01")), 400, V, Some("date")),
        refused(M::PUT, format!("/api/bookings/{booking}/reschedule"), T, with(reschedule, "endTime", json!("09:00")), 400, V, Some("endTime")),
        refused(M::PUT, format!("/api/bookings/{booking}/reschedule"), T, with(reschedule, "reason", json!("x".repeat(1001))), 400, V, Some("reason")),
        refused(M::PATCH, format!("/api/bookings/{booking}/cancel"), T, J(json!({ "reason": 5 })), 400, V, Some("reason")),
        refused(M::PATCH, format!("/api/bookings/{booking}/cancel"), T, J(json!({ "reason": "x".repeat(1001) })), 400, V, Some("reason")),
        refused(M::PATCH, format!("/api/bookings/{booking}/cancel"), T, J(json!({ "version": 999 })), 412, "VERSION_CONFLICT", None),
        refused(M::PUT, format!("/api/bookings/{booking}/complete"), T, J(json!({ "version": "x" })), 400, V, Some("version")),
        refused(M::PUT, format!("/api/bookings/{booking}/no-show"), T, J(json!({ "version": 999 })), 412, "VERSION_CONFLICT", None),
        refused(M::PATCH, format!("/api/bookings/client/{booking}/cancel"), C, J(json!({ "reason": 5 })), 400, V, Some("reason")),
        refused(M::POST, "/api/bookings/client/book", C, with(check, "therapistId", json!("nope")), 400, V, Some("therapistId")),
        refused(M::POST, "/api/bookings/client/book", C, with(check, "date", json!("2031-02-30")), 400, V, Some("date")),
        refused(M::POST, "/api/bookings/client/book", T, J(check.clone()), 403, "FORBIDDEN", None),
        // Bookings: list parameters.
        refused(M::GET, "/api/bookings?status=bogus", T, Nil, 400, V, Some("status")),
        refused(M::GET, "/api/bookings?limit=abc", T, Nil, 400, V, Some("limit")),
        refused(M::GET, "/api/bookings?limit=0", T, Nil, 400, V, Some("limit")),
        refused(M::GET, "/api/bookings?limit=-1", T, Nil, 400, V, Some("limit")),
        refused(M::GET, "/api/bookings?page=0", T, Nil, 400, V, Some("page")),
        refused(M::GET, "/api/bookings?startDate=2031-02-30", T, Nil, 400, V, Some("startDate")),
        refused(M::GET, "/api/bookings?startDate=2031-06-02&endDate=2031-06-01", T, Nil, 400, V, Some("endDate")),
        refused(M::GET, "/api/bookings?clientId=nope", T, Nil, 400, V, Some("clientId")),
        refused(M::GET, "/api/bookings?sortBy=price", T, Nil, 400, V, Some("sortBy")),
        refused(M::GET, "/api/bookings?sortOrder=up", T, Nil, 400, V, Some("sortOrder")),
        refused(M::GET, "/api/bookings?cursor=garbage", T, Nil, 400, V, Some("cursor")),
        // A cursor smuggling an operator: {"v":{"$gt":""},"id":"aaa"}.
        refused(M::GET, "/api/bookings?cursor=eyJ2Ijp7IiRndCI6IiJ9LCJpZCI6ImFhYSJ9", T, Nil, 400, V, Some("cursor")),
        refused(M::GET, "/api/bookings/client?limit=0", C, Nil, 400, V, Some("limit")),
        // Clients.
        refused(M::POST, "/api/clients", T, without(new_client, "name"), 400, V, Some("name")),
        refused(M::POST, "/api/clients", T, with(new_client, "name", json!("   ")), 400, V, Some("name")),
        refused(M::POST, "/api/clients", T, with(new_client, "name", json!("x".repeat(121))), 400, V, Some("name")),
        refused(M::POST, "/api/clients", T, with(new_client, "name", json!(["Ana"])), 400, V, Some("name")),
        refused(M::POST, "/api/clients", T, with(new_client, "email", json!("not-an-email")), 400, V, Some("email")),
        refused(M::POST, "/api/clients", T, with(new_client, "email", json!({ "$ne": null })), 400, V, Some("email")),
        refused(M::POST, "/api/clients", T, with(new_client, "phone", json!("call me")), 400, V, Some("phone")),
        refused(M::POST, "/api/clients", T, with(new_client, "age", json!(131)), 400, V, Some("age")),
        refused(M::POST, "/api/clients", T, with(new_client, "age", json!(-1)), 400, V, Some("age")),
        refused(M::POST, "/api/clients", T, with(new_client, "tags", json!(["x".repeat(41)])), 400, V, Some("tags")),
        refused(M::POST, "/api/clients", T, with(new_client, "tags", json!("a,b")), 400, V, Some("tags")),
        refused(M::POST, "/api/clients", T, with(new_client, "emergencyContact", json!({ "phone": "nope" })), 400, V, Some("emergencyContact.phone")),
        refused(M::POST, "/api/clients", T, with(new_client, "preferences", json!({ "language": "x".repeat(11) })), 400, V, Some("preferences.language")),
        refused(M::POST, "/api/clients", T, with(new_client, "email", json!(f.client_user.email)), 409, "CLIENT_EXISTS", None),
        refused(M::PUT, format!("/api/clients/{client}"), T, J(json!({ "status": "archived" })), 400, V, Some("status")),
        refused(M::PUT, format!("/api/clients/{client}"), T, J(json!({ "email": "bad" })), 400, V, Some("email")),
        refused(M::PUT, format!("/api/clients/{client}"), T, J(json!({ "age": "old" })), 400, V, Some("age")),
        refused(M::PUT, "/api/clients/nope", T, J(json!({ "name": "A" })), 400, V, Some("id")),
        refused(M::PUT, format!("/api/clients/{ABSENT}"), T, J(json!({ "name": "A" })), 404, "NOT_FOUND", None),
        refused(M::GET, "/api/clients?status=archived", T, Nil, 400, V, Some("status")),
        refused(M::GET, "/api/clients?sortBy=age", T, Nil, 400, V, Some("sortBy")),
        refused(M::GET, "/api/clients?sortOrder=sideways", T, Nil, 400, V, Some("sortOrder")),
        refused(M::GET, "/api/clients?limit=0", T, Nil, 400, V, Some("limit")),
        refused(M::GET, "/api/clients?limit=x", T, Nil, 400, V, Some("limit")),
        refused(M::GET, "/api/clients?page=0", T, Nil, 400, V, Some("page")),
        refused(M::GET, format!("/api/clients?search={}", "a".repeat(101)), T, Nil, 400, V, Some("search")),
        refused(M::GET, "/api/clients?cursor=%7B%7D", T, Nil, 400, V, Some("cursor")),
        refused(M::GET, "/api/clients", C, Nil, 403, "FORBIDDEN", None),
        // Availability.
        refused(M::PUT, "/api/availability/schedule", T, with(schedule, "timezone", json!("Mars/Base")), 400, V, Some("timezone")),
        refused(M::PUT, "/api/availability/schedule", T, with(schedule, "timezone", json!(5)), 400, V, Some("timezone")),
        refused(M::PUT, "/api/availability/schedule", T, without(schedule, "weekly"), 400, V, Some("weekly")),
        refused(M::PUT, "/api/availability/schedule", T, with(schedule, "weekly", json!({ "funday": [] })), 400, V, Some("weekly.funday")),
        refused(M::PUT, "/api/availability/schedule", T, with(schedule, "weekly", json!({ "monday": [{ "start": "9", "end": "10:00" }] })), 400, V, Some("weekly.monday[0].start")),
        refused(M::PUT, "/api/availability/schedule", T, with(schedule, "bufferMinutes", json!(241)), 400, V, Some("bufferMinutes")),
        refused(M::PUT, "/api/availability/schedule", T, with(schedule, "minNoticeHours", json!(-1)), 400, V, Some("minNoticeHours")),
        refused(M::PUT, "/api/availability/schedule", T, with(schedule, "maxAdvanceDays", json!(0)), 400, V, Some("maxAdvanceDays")),
        refused(M::PUT, "/api/availability/schedule", T, with(schedule, "holidays", json!([])), 400, V, Some("holidays")),
        refused(M::POST, "/api/availability/blocks", T, J(json!({})), 400, V, Some("date")),
        refused(M::POST, "/api/availability/blocks", T, with(blk, "date", json!("2031-02-30")), 400, V, Some("date")),
        refused(M::POST, "/api/availability/blocks", T, with(blk, "startTime", json!("9")), 400, V, Some("startTime")),
        refused(M::POST, "/api/availability/blocks", T, with(blk, "endTime", json!("08:00")), 400, V, Some("endTime")),
        refused(M::POST, "/api/availability/blocks", T, with(blk, "reason", json!("x".repeat(501))), 400, V, Some("reason")),
        refused(M::PUT, format!("/api/availability/blocks/{block}"), T, with(blk, "endTime", json!("08:00")), 400, V, Some("endTime")),
        refused(M::PUT, "/api/availability/blocks/nope", T, J(blk.clone()), 400, V, Some("id")),
        refused(M::DELETE, "/api/availability/blocks/nope", T, Nil, 400, V, Some("id")),
        refused(M::POST, "/api/availability/exceptions", T, J(json!({ "startDate": "soon" })), 400, V, Some("startDate")),
        refused(M::POST, "/api/availability/exceptions", T, J(json!({ "startDate": "2031-06-02", "type": "party" })), 400, V, Some("type")),
        refused(M::POST, "/api/availability/check-slot", N, without(check, "therapistId"), 400, V, Some("therapistId")),
        refused(M::POST, "/api/availability/check-slot", N, with(check, "date", json!("2031-02-30")), 400, V, Some("date")),
        refused(M::POST, "/api/availability/check-slot", N, with(check, "startTime", json!("10:61")), 400, V, Some("startTime")),
        refused(M::GET, format!("{slots}?sessionDuration=abc"), N, Nil, 400, V, Some("sessionDuration")),
        refused(M::GET, format!("{slots}?sessionDuration=0"), N, Nil, 400, V, Some("sessionDuration")),
        refused(M::GET, format!("/api/availability/therapist/{}/date/2031-02-30", f.therapist.id), N, Nil, 400, V, Some("date")),
        refused(M::GET, "/api/availability/therapist/nope/date/2031-06-02", N, Nil, 400, V, Some("id")),
        refused(M::GET, format!("/api/availability/therapist/{}?startDate=2031-06-09&endDate=2031-06-02", f.therapist.id), N, Nil, 400, V, Some("endDate")),
        refused(M::GET, format!("/api/availability/therapist/{}?startDate=x", f.therapist.id), N, Nil, 400, V, Some("startDate")),
        // Auth.
        refused(M::POST, "/api/auth/register", N, without(register, "name"), 400, V, Some("name")),
        refused(M::POST, "/api/auth/register", N, with(register, "email", json!("eva")), 400, V, Some("email")),
        refused(M::POST, "/api/auth/register", N, J(json!({ "name": "Eva", "email": "eva@example.com", "password": "short", "confirmPassword": "short" })), 400, V, Some("password")),
        refused(M::POST, "/api/auth/register", N, with(register, "confirmPassword", json!("something else")), 400, V, Some("confirmPassword")),
        refused(M::POST, "/api/auth/register", N, with(register, "userType", json!("alien")), 400, V, Some("userType")),
        refused(M::POST, "/api/auth/register", N, with(register, "email", json!(f.therapist.email)), 409, "EMAIL_TAKEN", None),
        refused(M::POST, "/api/auth/login", N, without(login, "email"), 400, V, Some("email")),
        refused(M::POST, "/api/auth/login", N, with(login, "email", json!(5)), 400, V, Some("email")),
        refused(M::POST, "/api/auth/login", N, with(login, "password", json!("")), 400, V, Some("password")),
        refused(M::POST, "/api/auth/login", N, with(login, "userType", json!("alien")), 400, V, Some("userType")),
        refused(M::POST, "/api/auth/login", N, with(login, "rememberMe", json!("yes")), 400, V, Some("rememberMe")),
        refused(M::POST, "/api/clients/login", N, without(login, "password"), 400, V, Some("password")),
        refused(M::POST, "/api/clients/register", N, with(register, "email", json!("eva")), 400, V, Some("email")),
        refused(M::POST, "/api/auth/refresh", N, J(json!({})), 400, V, Some("refreshToken")),
        refused(M::POST, "/api/auth/refresh", N, J(json!({ "refreshToken": "short" })), 400, V, Some("refreshToken")),
        refused(M::POST, "/api/auth/refresh", N, J(json!({ "refreshToken": 42 })), 400, V, Some("refreshToken")),
        refused(M::POST, "/api/auth/forgot-password", N, J(json!({ "email": "nobody" })), 400, V, Some("email")),
        refused(M::POST, "/api/auth/reset-password", N, without(reset, "token"), 400, V, Some("token")),
        refused(M::POST, "/api/auth/reset-password", N, with(reset, "token", json!("short")), 400, V, Some("token")),
        refused(M::POST, "/api/auth/reset-password", N, J(json!({ "token": "a".repeat(32), "password": "short", "confirmPassword": "short" })), 400, V, Some("password")),
        refused(M::POST, "/api/auth/reset-password", N, with(reset, "confirmPassword", json!("other horse battery")), 400, V, Some("confirmPassword")),
        // Headers: Idempotency-Key, If-Match, Content-Type, size, Authorization.
        refused(M::POST, "/api/bookings", T, J(b.clone()), 400, V, Some("Idempotency-Key")).header("Idempotency-Key", "a".repeat(256)),
        refused(M::POST, "/api/bookings", T, J(b.clone()), 400, V, Some("Idempotency-Key")).header("Idempotency-Key", "two words"),
        refused(M::POST, "/api/bookings", T, J(b.clone()), 400, V, Some("Idempotency-Key")).header("Idempotency-Key", b"caf\xe9".to_vec()),
        refused(M::PATCH, format!("/api/bookings/{booking}/cancel"), T, J(json!({})), 400, V, Some("Idempotency-Key")).header("Idempotency-Key", "a".repeat(256)),
        refused(M::PATCH, format!("/api/bookings/client/{booking}/cancel"), C, J(json!({})), 400, V, Some("Idempotency-Key")).header("Idempotency-Key", "two words"),
        refused(M::PUT, format!("/api/bookings/{booking}"), T, J(json!({ "notes": "n" })), 400, V, Some("If-Match")).header("If-Match", "abc"),
        refused(M::PUT, format!("/api/bookings/{booking}"), T, J(json!({ "notes": "n" })), 412, "VERSION_CONFLICT", None).header("If-Match", "\"999\""),
        refused(M::PATCH, format!("/api/bookings/{booking}/cancel"), T, J(json!({})), 400, V, Some("If-Match")).header("If-Match", "W/\"x\""),
        refused(M::PUT, format!("/api/bookings/{booking}/complete"), T, J(json!({})), 400, V, Some("If-Match")).header("If-Match", "*"),
        refused(M::POST, "/api/bookings", T, raw("text/plain", b), 415, "UNSUPPORTED_MEDIA_TYPE", None),
        refused(M::POST, "/api/clients", T, Body::Raw(None, new_client.to_string().into_bytes()), 415, "UNSUPPORTED_MEDIA_TYPE", None),
        refused(M::PUT, "/api/availability/schedule", T, Body::Raw(Some("application/x-www-form-urlencoded"), b"timezone=UTC".to_vec()), 415, "UNSUPPORTED_MEDIA_TYPE", None),
        refused(M::POST, "/api/auth/login", N, raw("text/json", login), 415, "UNSUPPORTED_MEDIA_TYPE", None),
        refused(M::POST, "/api/clients", T, oversized(new_client), 413, "PAYLOAD_TOO_LARGE", None),
        refused(M::PUT, "/api/availability/schedule", T, oversized(schedule), 413, "PAYLOAD_TOO_LARGE", None),
        refused(M::POST, "/api/bookings", T, Body::Raw(Some("application/json"), b"{\"clientId\": ".to_vec()), 400, "INVALID_JSON", None),
        refused(M::POST, "/api/clients", T, Body::Raw(Some("application/json"), b"{\"name\": \"a\"} trailing".to_vec()), 400, "INVALID_JSON", None),
        refused(M::GET, "/api/bookings", N, Nil, 401, "INVALID_TOKEN", None).header("Authorization", "Bearer not.a.token"),
    ]
}

async fn snapshot_all(app: &TestApp) -> Vec<(&'static str, Vec<mongodb::bson::Document>)> {
    let mut out = Vec::new();
    for c in [
        "users",
        "refresh_tokens",
        "password_resets",
        "email_verifications",
        "client_invitations",
        "clients",
        "bookings",
        "slot_claims",
        "idempotency_keys",
        "availability",
        "availability_blocks",
        "notifications",
        "payments",
        "reviews",
        "profiles",
    ] {
        let docs: Vec<mongodb::bson::Document> = futures_util::TryStreamExt::try_collect(
            app.db
                .collection::<mongodb::bson::Document>(c)
                .find(mongodb::bson::doc! {})
                .sort(mongodb::bson::doc! { "_id": 1 })
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        out.push((c, docs));
    }
    out
}

/// Each refused request of the table answers exactly its status, `code` and `errors[].field`
/// in the SPEC's envelope, and no stored document changes. Every mismatch is listed at once.
#[tokio::test]
async fn refused_requests_answer_the_exact_status_code_and_field_and_change_nothing() {
    let limits = [
        "REGISTER_IP",
        "LOGIN_IP",
        "LOGIN_ACCOUNT",
        "REFRESH_IP",
        "FORGOT_IP",
        "PUBLIC_IP",
    ]
    .map(|l| (format!("DHARA_RATE_LIMIT__{l}__MAX"), "1000"));
    let overrides: Vec<(&str, &str)> = limits.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let app = spawn_app_with(&overrides).await;
    let me = therapist(&app).await;
    let c = client_user(&app).await;
    let r = app
        .post_as("/api/clients", &me, &json!({ "name": "Fuzz", "email": c.email }))
        .await;
    assert_eq!(r.status(), 201);
    let client = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let mut f = Fixture {
        therapist: me,
        client_user: c,
        client,
        booking: String::new(),
        block: String::new(),
    };
    let r = app
        .post_as("/api/bookings", &f.therapist, &booking_body(&f))
        .await;
    assert_eq!(r.status(), 201);
    f.booking = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post_as("/api/availability/blocks", &f.therapist, &block_body())
        .await;
    assert_eq!(r.status(), 201);
    f.block = json_body(r).await["id"].as_str().unwrap().to_owned();

    let cases = refused_requests(&f);
    let before = snapshot_all(&app).await;
    let mut wrong = Vec::new();
    for case in &cases {
        let mut r = app.client.request(case.method.clone(), app.url(&case.path));
        match case.who {
            Who::Therapist => r = r.header("Authorization", &f.therapist.auth),
            Who::Client => r = r.header("Authorization", &f.client_user.auth),
            Who::Nobody => {}
        }
        for (name, value) in &case.headers {
            r = r.header(*name, reqwest::header::HeaderValue::from_bytes(value).unwrap());
        }
        let shown_body = match &case.body {
            Body::None => "-".to_owned(),
            Body::Json(v) => v.to_string().chars().take(160).collect(),
            Body::Raw(ct, bytes) => format!("{ct:?} {} bytes", bytes.len()),
        };
        r = match &case.body {
            Body::None => r,
            Body::Json(v) => r.json(v),
            Body::Raw(Some(ct), bytes) => r.header("Content-Type", *ct).body(bytes.clone()),
            Body::Raw(None, bytes) => r.body(bytes.clone()),
        };
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|x| x["field"].as_str()).collect())
            .unwrap_or_default();
        let field_ok = match case.field {
            Some(f) => !fields.is_empty() && fields.iter().all(|x| *x == f),
            None => body.get("errors").is_none(),
        };
        let envelope_ok = body["success"] == false && body["message"].as_str().is_some_and(|m| !m.is_empty());
        if status != case.status || body["code"] != case.code || !field_ok || !envelope_ok {
            wrong.push(format!(
                "{} {} ({:?}) {shown_body} {:?}: expected {} {} {:?}, got {status} {}",
                case.method,
                case.path.chars().take(120).collect::<String>(),
                case.who,
                case.headers.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
                case.status,
                case.code,
                case.field,
                text.chars().take(300).collect::<String>(),
            ));
        }
    }
    let after = snapshot_all(&app).await;
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "refused requests changed {name}");
    }
    assert!(
        wrong.is_empty(),
        "{} of {} answers differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
