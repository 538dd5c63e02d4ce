//! Availability: rules, blocks (bare JSON), absences, public free slots, check-slot, client
//! booking and cancellation window, occupancy, calendar events, and index use of hot queries.

use chrono::{Datelike, Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::*;

/// A schedule open every day 09:00-13:00, no notice, a year ahead.
fn open_schedule(buffer: u32) -> Value {
    let day = json!([{ "start": "09:00", "end": "13:00" }]);
    json!({
        "timezone": "Europe/Madrid",
        "weekly": { "monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day, "saturday": day, "sunday": day },
        "bufferMinutes": buffer, "minNoticeHours": 0, "maxAdvanceDays": 365,
    })
}

/// A local date `days` from today.
fn in_days(days: i64) -> String {
    (Utc::now().date_naive() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

async fn slots(app: &TestApp, therapist: &str, date: &str) -> Vec<String> {
    let r = app
        .get(&format!(
            "/api/availability/therapist/{therapist}/date/{date}?sessionDuration=60"
        ))
        .await;
    assert_eq!(r.status(), 200);
    json_body(r).await["data"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["startTime"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn schedule_defaults_validation_and_update() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let d = json_body(app.get_as("/api/availability/schedule", &me).await).await["data"].clone();
    assert_eq!(d["timezone"], "Europe/Madrid");
    assert!(d["weekly"]["monday"].as_array().unwrap().len() == 2);
    let r = app
        .put_as("/api/availability/schedule", &me, &open_schedule(10))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_body(app.get_as("/api/availability/schedule", &me).await).await["data"]["bufferMinutes"],
        10
    );
    let bad = [
        (json!({ "timezone": "Mars/Base", "weekly": {} }), "timezone"),
        (
            json!({ "timezone": "Europe/Madrid", "weekly": { "funday": [] } }),
            "weekly.funday",
        ),
        (
            json!({ "timezone": "Europe/Madrid", "weekly": { "monday": [{ "start": "10:00", "end": "09:00" }] } }),
            "weekly.monday[0].end",
        ),
        (
            json!({ "timezone": "Europe/Madrid", "weekly": { "monday": [{ "start": "09:00", "end": "12:00" }, { "start": "11:00", "end": "13:00" }] } }),
            "weekly.monday[1]",
        ),
        (
            json!({ "timezone": "Europe/Madrid", "weekly": {}, "bufferMinutes": 999 }),
            "bufferMinutes",
        ),
    ];
    for (body, field) in bad {
        let err = assert_error(
            app.put_as("/api/availability/schedule", &me, &body).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(err["errors"][0]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn free_slots_subtract_bookings_blocks_and_absences() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    app.put_as("/api/availability/schedule", &me, &open_schedule(0))
        .await;
    let day = in_days(10);
    assert_eq!(
        slots(&app, &me.id, &day).await,
        vec!["09:00", "10:00", "11:00", "12:00"]
    );
    // `current` means the signed-in therapist (and nobody when no one is signed in).
    let r = app
        .get_as(&format!("/api/availability/therapist/current/date/{day}"), &me)
        .await;
    let body = json_body(r).await;
    assert_eq!(
        body["data"]["slots"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .len(),
        4
    );
    assert_error(
        app.get(&format!("/api/availability/therapist/current/date/{day}"))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;

    let client = new_client(&app, &me, "Slot Client").await;
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &json!({ "clientId": client, "date": day, "startTime": "10:00", "endTime": "11:00" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(slots(&app, &me.id, &day).await, vec!["09:00", "11:00", "12:00"]);

    // Blocks answer bare JSON, without the envelope.
    let r = app
        .post_as(
            "/api/availability/blocks",
            &me,
            &json!({ "date": day, "startTime": "12:00", "endTime": "13:00", "reason": "lunch" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let block = json_body(r).await;
    assert!(block.get("success").is_none(), "bare JSON: {block}");
    assert_eq!(block["startTime"], "12:00");
    assert_eq!(slots(&app, &me.id, &day).await, vec!["09:00", "11:00"]);
    let listed = json_body(
        app.get_as("/api/availability/therapist/current/blocks", &me)
            .await,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let id = block["id"].as_str().unwrap();
    let r = app
        .put_as(
            &format!("/api/availability/blocks/{id}"),
            &me,
            &json!({ "date": day, "startTime": "11:00", "endTime": "12:00" }),
        )
        .await;
    assert_eq!(json_body(r).await["startTime"], "11:00");
    assert_eq!(slots(&app, &me.id, &day).await, vec!["09:00", "12:00"]);
    let r = app
        .delete_as(&format!("/api/availability/blocks/{id}"), &me)
        .await;
    assert_eq!(json_body(r).await["deleted"], true);

    let r = app
        .post_as(
            "/api/availability/exceptions",
            &me,
            &json!({ "startDate": day, "endDate": in_days(12), "type": "vacation" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert!(slots(&app, &me.id, &day).await.is_empty());
    assert!(slots(&app, &me.id, &in_days(12)).await.is_empty());
    assert_eq!(slots(&app, &me.id, &in_days(13)).await.len(), 4);
    let absences = json_body(app.get_as("/api/availability/exceptions", &me).await).await["data"].clone();
    assert_eq!(absences[0]["type"], "vacation");

    let range = json_body(
        app.get(&format!(
            "/api/availability/therapist/{}?startDate={}&endDate={}",
            me.id,
            in_days(13),
            in_days(14)
        ))
        .await,
    )
    .await;
    assert_eq!(range["data"]["slots"].as_array().unwrap().len(), 8);

    let occupancy = json_body(
        app.get_as(
            &format!(
                "/api/availability/analysis/occupancy?startDate={}&endDate={}",
                in_days(9),
                in_days(9)
            ),
            &me,
        )
        .await,
    )
    .await;
    assert_eq!(occupancy["data"]["workingHours"], json!(4.0));
    let events = json_body(
        app.get_as(
            &format!(
                "/api/availability/calendar/events?startDate={}&endDate={}",
                in_days(9),
                in_days(12)
            ),
            &me,
        )
        .await,
    )
    .await["data"]
        .clone();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"booking") && kinds.contains(&"absence"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn notice_and_horizon_limit_what_the_booking_site_offers() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let mut s = open_schedule(0);
    s["maxAdvanceDays"] = json!(7);
    s["minNoticeHours"] = json!(48);
    app.put_as("/api/availability/schedule", &me, &s).await;
    assert!(
        slots(&app, &me.id, &in_days(1)).await.is_empty(),
        "inside the notice period"
    );
    assert_eq!(slots(&app, &me.id, &in_days(4)).await.len(), 4);
    assert!(
        slots(&app, &me.id, &in_days(9)).await.is_empty(),
        "beyond the horizon"
    );
    let not_a_therapist = client_user(&app).await;
    let r = app
        .get(&format!(
            "/api/availability/therapist/{}/date/{}",
            not_a_therapist.id,
            in_days(4)
        ))
        .await;
    assert_error(r, 404, "NOT_FOUND").await;
    let r = app
        .get(&format!("/api/availability/therapist/{}/date/2031-02-30", me.id))
        .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
}

#[tokio::test]
async fn clients_book_check_and_cancel_within_the_rules() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    app.put_as("/api/availability/schedule", &me, &open_schedule(0))
        .await;
    let c = client_user(&app).await;
    let day = in_days(5);
    let check = json!({ "therapistId": me.id, "date": day, "startTime": "10:00", "endTime": "11:00" });
    let r = app.post_json("/api/availability/check-slot", &check).await;
    assert_eq!(json_body(r).await["data"]["available"], true);

    app.put_as(
        "/api/profile",
        &me,
        &json!({ "rates": { "sessionPrice": 55, "currency": "EUR" } }),
    )
    .await;
    let r = app.post_as("/api/bookings/client/book", &c, &check).await;
    assert_eq!(r.status(), 201);
    let booked = json_body(r).await["data"].clone();
    assert_eq!(booked["status"], "pending");
    assert_eq!(booked["amount"], json!(55.0), "the therapist's session price");
    let r = app.post_json("/api/availability/check-slot", &check).await;
    assert_eq!(json_body(r).await["data"]["available"], false);

    // The therapist sees the client (a record was made for them) and the booking.
    let clients = json_body(app.get_as("/api/clients", &me).await).await;
    assert_eq!(clients["data"][0]["email"], c.email.as_str());
    assert_eq!(
        json_body(app.get_as("/api/bookings", &me).await).await["total"],
        1
    );

    let other = client_user(&app).await;
    assert_error(
        app.post_as("/api/bookings/client/book", &other, &check).await,
        409,
        "SLOT_TAKEN",
    )
    .await;
    let outside = json!({ "therapistId": me.id, "date": day, "startTime": "15:00", "endTime": "16:00" });
    let err = assert_error(
        app.post_as("/api/bookings/client/book", &other, &outside).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(err["errors"][0]["field"], "startTime");

    let mine = json_body(app.get_as("/api/bookings/client?limit=1", &c).await).await;
    assert_eq!(
        (mine["count"].as_u64(), mine["total"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(mine["data"][0]["therapist"]["name"].is_string(), "{mine}");
    assert!(mine["pagination"]["nextCursor"].is_string());
    assert_eq!(
        json_body(app.get_as("/api/bookings/client", &other).await).await["count"],
        0
    );

    let id = booked["id"].as_str().unwrap();
    assert_error(
        app.patch_as(&format!("/api/bookings/client/{id}/cancel"), &other, &json!({}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let r = app
        .patch_as(
            &format!("/api/bookings/client/{id}/cancel"),
            &c,
            &json!({ "reason": "cannot come" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["data"]["status"], "cancelled");
    let notes = json_body(app.get_as("/api/notifications", &me).await).await["data"]["notifications"].clone();
    let kinds: Vec<&str> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["booking_cancelled", "booking_requested"],
        "the therapist hears of both"
    );

    // Less than 24 hours ahead, cancelling online is refused.
    let soon = Utc::now().with_timezone(&chrono_tz::Europe::Madrid) + Duration::hours(3);
    let mut s = open_schedule(0);
    let all_day = json!([{ "start": "00:00", "end": "24:00" }]);
    for d in [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ] {
        s["weekly"][d] = all_day.clone();
    }
    app.put_as("/api/availability/schedule", &me, &s).await;
    let start = format!("{:02}:00", soon.format("%H").to_string().parse::<u32>().unwrap());
    let end_hour = soon.format("%H").to_string().parse::<u32>().unwrap() + 1;
    if end_hour <= 23 {
        let date = format!("{}-{:02}-{:02}", soon.year(), soon.month(), soon.day());
        let body = json!({ "therapistId": me.id, "date": date, "startTime": start, "endTime": format!("{end_hour:02}:00") });
        let r = app.post_as("/api/bookings/client/book", &c, &body).await;
        assert_eq!(r.status(), 201);
        let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
        assert_error(
            app.patch_as(&format!("/api/bookings/client/{id}/cancel"), &c, &json!({}))
                .await,
            409,
            "CANCELLATION_WINDOW_PASSED",
        )
        .await;
    }
}

#[tokio::test]
async fn other_therapists_blocks_and_absences_are_404() {
    let app = spawn_app().await;
    let owner = therapist(&app).await;
    let intruder = therapist(&app).await;
    let block = json_body(
        app.post_as(
            "/api/availability/blocks",
            &owner,
            &json!({ "date": in_days(3), "startTime": "09:00", "endTime": "10:00" }),
        )
        .await,
    )
    .await;
    let id = block["id"].as_str().unwrap();
    let body = json!({ "date": in_days(3), "startTime": "11:00", "endTime": "12:00" });
    assert_error(
        app.put_as(&format!("/api/availability/blocks/{id}"), &intruder, &body)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.delete_as(&format!("/api/availability/blocks/{id}"), &intruder)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get_as(
            &format!("/api/availability/therapist/{}/blocks", owner.id),
            &intruder,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let absence = json_body(
        app.post_as(
            "/api/availability/exceptions",
            &owner,
            &json!({ "startDate": in_days(20) }),
        )
        .await,
    )
    .await["data"]
        .clone();
    let aid = absence["id"].as_str().unwrap();
    assert_error(
        app.delete_as(&format!("/api/availability/exceptions/{aid}"), &intruder)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(app.count("availability_blocks").await, 2);
}

/// The plan of a query: a genuine server names its index in `winningPlan`; the dev server
/// (mongoeco) reports only the indexes it knows, so there the test checks that a declared index
/// serves the query's shape (its equality fields, then the range/sort field, as a key prefix).
async fn assert_indexed(
    db: &mongodb::Database,
    collection: &str,
    filter: mongodb::bson::Document,
    sort: mongodb::bson::Document,
) {
    use mongodb::bson::{doc, Bson};
    let explain = db
        .run_command(doc! { "explain": { "find": collection, "filter": filter.clone(), "sort": sort.clone() }, "verbosity": "queryPlanner" })
        .await
        .unwrap();
    if let Ok(planner) = explain.get_document("queryPlanner") {
        let plan = planner.get_document("winningPlan").unwrap().to_string();
        assert!(
            plan.contains("IXSCAN") && !plan.contains("COLLSCAN"),
            "{collection} {filter}: {plan}"
        );
        return;
    }
    let indexes = dhara::db::indexes::list_indexes(db, collection).await.unwrap();
    let eq: Vec<&str> = filter
        .iter()
        .filter(|(_, v)| !matches!(v, Bson::Document(_)))
        .map(|(k, _)| k.as_str())
        .collect();
    let rest: Vec<&str> = filter
        .iter()
        .filter(|(_, v)| matches!(v, Bson::Document(_)))
        .map(|(k, _)| k.as_str())
        .chain(sort.keys().map(String::as_str))
        .collect();
    let served = indexes.iter().any(|ix| {
        let keys: Vec<&str> = ix
            .get_document("key")
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.len() >= eq.len()
            && eq.iter().all(|f| keys[..eq.len()].contains(f))
            && rest.first().is_none_or(|r| keys.get(eq.len()) == Some(r))
    });
    assert!(served, "no index serves {collection} {filter} sort {sort}");
}

#[tokio::test]
async fn hot_queries_use_an_index() {
    use mongodb::bson::{doc, oid::ObjectId, DateTime};
    let app = spawn_app().await;
    let t = ObjectId::new();
    let now = DateTime::now();
    assert_indexed(
        &app.db,
        "bookings",
        doc! { "therapistId": t, "date": { "$gte": "2031-01-01", "$lte": "2031-01-31" } },
        doc! {},
    )
    .await;
    assert_indexed(
        &app.db,
        "bookings",
        doc! { "therapistId": t, "startsAt": { "$lt": now } },
        doc! { "startsAt": 1 },
    )
    .await;
    assert_indexed(
        &app.db,
        "bookings",
        doc! { "clientId": t },
        doc! { "startsAt": -1 },
    )
    .await;
    assert_indexed(
        &app.db,
        "bookings",
        doc! { "therapistId": t, "status": "completed" },
        doc! {},
    )
    .await;
    assert_indexed(
        &app.db,
        "clients",
        doc! { "therapistId": t, "status": "active" },
        doc! { "createdAt": -1 },
    )
    .await;
    assert_indexed(
        &app.db,
        "clients",
        doc! { "therapistId": t },
        doc! { "createdAt": -1 },
    )
    .await;
    assert_indexed(&app.db, "users", doc! { "email": "a@b.co" }, doc! {}).await;
    assert_indexed(
        &app.db,
        "availability_blocks",
        doc! { "therapistId": t, "startsAt": { "$lt": now } },
        doc! { "startsAt": 1 },
    )
    .await;
    // The reaper: expired claims, claims of one attempt, a booking's claims in some buckets.
    assert_indexed(
        &app.db,
        "slot_claims",
        doc! { "expiresAt": { "$lt": now } },
        doc! {},
    )
    .await;
    assert_indexed(
        &app.db,
        "slot_claims",
        doc! { "token": mongodb::bson::oid::ObjectId::new() },
        doc! {},
    )
    .await;
    assert_indexed(
        &app.db,
        "slot_claims",
        doc! { "bookingId": mongodb::bson::oid::ObjectId::new(), "bucket": { "$in": [1, 2] } },
        doc! {},
    )
    .await;
    assert_indexed(
        &app.db,
        "bookings",
        doc! { "status": "cancelled", "updatedAt": { "$gte": now } },
        doc! {},
    )
    .await;
    assert_indexed(
        &app.db,
        "payments",
        doc! { "therapistId": t },
        doc! { "paymentDate": -1 },
    )
    .await;
    assert_indexed(
        &app.db,
        "notifications",
        doc! { "userId": t },
        doc! { "createdAt": -1 },
    )
    .await;
    assert_indexed(
        &app.db,
        "reviews",
        doc! { "therapistId": t },
        doc! { "createdAt": -1 },
    )
    .await;
}

#[tokio::test]
async fn public_routes_are_limited_per_address() {
    let app = spawn_app_with(&[("DHARA_RATE_LIMIT__PUBLIC_IP__MAX", "3")]).await;
    let me = therapist(&app).await;
    let path = format!("/api/availability/therapist/{}/date/{}", me.id, in_days(3));
    let get = |ip: &'static str| {
        app.client
            .get(app.url(&path))
            .header("X-Forwarded-For", ip)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(get("198.51.100.7").await.unwrap().status(), 200);
    }
    let r = get("198.51.100.7").await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, "RATE_LIMITED").await;
    assert_eq!(
        get("198.51.100.8").await.unwrap().status(),
        200,
        "other visitors are not affected"
    );
}
