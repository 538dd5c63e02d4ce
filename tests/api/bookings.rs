//! Bookings: shapes, DST, the no-double-booking guarantee under concurrency across instances,
//! series, idempotency, versions, transitions, isolation between therapists and bad input.

use serde_json::{json, Value};

use crate::helpers::*;

fn booking(client: &str, date: &str, start: &str, end: &str) -> Value {
    json!({ "clientId": client, "date": date, "startTime": start, "endTime": end, "therapyType": "CBT", "amount": 80.5 })
}

async fn setup(app: &TestApp) -> (Caller, String) {
    let me = therapist(app).await;
    let client = new_client(app, &me, "Elena Soto").await;
    (me, client)
}

async fn create(app: &TestApp, me: &Caller, body: &Value) -> reqwest::Response {
    app.post_as("/api/bookings", me, body).await
}

#[tokio::test]
async fn created_bookings_have_the_dashboard_shape_and_utc_instants() {
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    let r = create(&app, &me, &booking(&client, "2031-01-15", "09:00", "10:00")).await;
    assert_eq!(r.status(), 201);
    let b = json_body(r).await["data"].clone();
    assert_eq!(b["id"], b["_id"]);
    assert_eq!(b["version"], 1);
    assert_eq!(b["status"], "upcoming");
    assert_eq!(
        b["startsAt"], "2031-01-15T08:00:00.000Z",
        "Madrid is UTC+1 in winter"
    );
    assert_eq!(b["endsAt"], "2031-01-15T09:00:00.000Z");
    assert_eq!(b["amount"], json!(80.5));
    assert_eq!(b["therapyDuration"], 60);
    assert_eq!(b["client"]["name"], "Elena Soto");
    assert_eq!(b["client"]["id"], client.as_str());
    let stored = app
        .db
        .collection::<mongodb::bson::Document>("bookings")
        .find_one(mongodb::bson::doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.get_i64("amountCents").unwrap(),
        8050,
        "integer cents, never a float"
    );

    let r = app
        .get_as(&format!("/api/bookings/{}", b["id"].as_str().unwrap()), &me)
        .await;
    assert_eq!(json_body(r).await["data"]["client"]["phone"], "+34 600 111 222");
}

#[tokio::test]
async fn dst_days_map_local_times_to_the_right_instants() {
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    // Spring forward in Madrid (2031-03-30, 02:00 → 03:00): 02:30 does not exist.
    let r = create(&app, &me, &booking(&client, "2031-03-30", "02:30", "03:30")).await;
    let err = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(err["errors"][0]["field"], "startTime");
    let r = create(&app, &me, &booking(&client, "2031-03-30", "09:00", "10:00")).await;
    assert_eq!(
        json_body(r).await["data"]["startsAt"],
        "2031-03-30T07:00:00.000Z",
        "CEST, UTC+2"
    );
    // Fall back (2031-10-26, 03:00 → 02:00): 02:30 happens twice; the first is taken.
    let r = create(&app, &me, &booking(&client, "2031-10-26", "02:15", "02:45")).await;
    assert_eq!(json_body(r).await["data"]["startsAt"], "2031-10-26T00:15:00.000Z");

    let mut schedule = json_body(app.get_as("/api/availability/schedule", &me).await).await["data"].clone();
    schedule["timezone"] = json!("America/New_York");
    assert_eq!(
        app.put_as("/api/availability/schedule", &me, &schedule)
            .await
            .status(),
        200
    );
    let r = create(&app, &me, &booking(&client, "2031-03-09", "02:30", "03:00")).await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    let r = create(&app, &me, &booking(&client, "2031-07-01", "09:00", "10:00")).await;
    let b = json_body(r).await["data"].clone();
    assert_eq!(b["startsAt"], "2031-07-01T13:00:00.000Z");
    assert_eq!(b["timezone"], "America/New_York");
}

#[tokio::test]
async fn two_hundred_concurrent_overlapping_requests_on_two_instances_book_exactly_once() {
    let a = spawn_app().await;
    let shared = [
        ("MONGODB_DATABASE", a.config.mongodb.database.as_str()),
        ("DHARA_REDIS__PREFIX", a.config.redis.prefix.as_str()),
    ];
    let b = spawn_app_with(&shared).await;
    let (me, client) = setup(&a).await;
    // Every interval contains 10:30-10:35, so any two of them overlap.
    let bodies: Vec<Value> = (0..200)
        .map(|i| {
            let start = 600 + (i % 7) * 5;
            let end = start + 60 + (i % 3) * 5;
            let hm = |m: i32| format!("{:02}:{:02}", m / 60, m % 60);
            booking(&client, "2031-05-05", &hm(start), &hm(end))
        })
        .collect();
    let requests = bodies.iter().enumerate().map(|(i, body)| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.client
            .post(app.url("/api/bookings"))
            .header("Authorization", &me.auth)
            .json(body)
            .send()
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut created = 0;
    let mut taken = 0;
    for r in responses {
        let r = r.unwrap();
        match r.status().as_u16() {
            201 => created += 1,
            409 => {
                let body = json_body(r).await;
                assert_eq!(body["code"], "SLOT_TAKEN");
                assert!(!body["conflicts"].as_array().unwrap().is_empty(), "{body}");
                taken += 1;
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!((created, taken), (1, 199));
    assert_eq!(a.count("bookings").await, 1);
}

#[tokio::test]
async fn cancel_frees_the_slot_adjacent_is_allowed_and_buffers_are_honoured() {
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    let r = create(&app, &me, &booking(&client, "2031-05-06", "10:00", "11:00")).await;
    let first = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let r = create(&app, &me, &booking(&client, "2031-05-06", "10:30", "11:30")).await;
    let body = assert_error(r, 409, "SLOT_TAKEN").await;
    assert_eq!(
        body["conflicts"],
        json!([{ "date": "2031-05-06", "startTime": "10:00", "endTime": "11:00" }])
    );
    assert_eq!(
        create(&app, &me, &booking(&client, "2031-05-06", "11:00", "12:00"))
            .await
            .status(),
        201,
        "adjacent"
    );
    assert_eq!(
        create(&app, &me, &booking(&client, "2031-05-06", "09:00", "10:00"))
            .await
            .status(),
        201,
        "adjacent before"
    );

    assert_eq!(
        app.patch_as(
            &format!("/api/bookings/{first}/cancel"),
            &me,
            &json!({ "reason": "ill" })
        )
        .await
        .status(),
        200
    );
    let r = create(&app, &me, &booking(&client, "2031-05-06", "10:00", "11:00")).await;
    assert_eq!(r.status(), 201, "the cancelled booking's time is free again");

    // With a 15-minute buffer, back-to-back sessions are refused; 15 minutes apart is fine.
    let mut schedule = json_body(app.get_as("/api/availability/schedule", &me).await).await["data"].clone();
    schedule["bufferMinutes"] = json!(15);
    app.put_as("/api/availability/schedule", &me, &schedule).await;
    assert_eq!(
        create(&app, &me, &booking(&client, "2031-05-07", "10:00", "11:00"))
            .await
            .status(),
        201
    );
    let r = create(&app, &me, &booking(&client, "2031-05-07", "11:00", "12:00")).await;
    assert_error(r, 409, "SLOT_TAKEN").await;
    assert_eq!(
        create(&app, &me, &booking(&client, "2031-05-07", "11:15", "12:00"))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn a_series_is_all_or_nothing_and_lists_every_conflicting_occurrence() {
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    // Week three of the series is taken.
    assert_eq!(
        create(&app, &me, &booking(&client, "2031-06-16", "17:00", "18:00"))
            .await
            .status(),
        201
    );
    let mut series = booking(&client, "2031-06-02", "17:00", "18:00");
    series["recurrence"] = json!({ "frequency": "weekly", "interval": 1, "count": 6 });
    let r = create(&app, &me, &series).await;
    let body = assert_error(r, 409, "SLOT_TAKEN").await;
    assert_eq!(
        body["conflictingOccurrences"],
        json!([{ "date": "2031-06-16", "startTime": "17:00", "endTime": "18:00" }])
    );
    assert_eq!(
        body["conflicts"],
        json!([{ "date": "2031-06-16", "startTime": "17:00", "endTime": "18:00" }]),
        "the booking in the way, not the free occurrences"
    );
    assert_eq!(app.count("bookings").await, 1, "nothing of the series was stored");
    assert_eq!(app.count("slot_claims").await, 12, "and none of its time is held");

    let mut fortnightly = booking(&client, "2031-06-09", "17:00", "18:00");
    fortnightly["recurrence"] = json!({ "frequency": "weekly", "interval": 2, "count": 4 });
    let r = create(&app, &me, &fortnightly).await;
    assert_eq!(r.status(), 201);
    let list = json_body(r).await["data"].clone();
    let dates: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        vec!["2031-06-09", "2031-06-23", "2031-07-07", "2031-07-21"]
    );
    let series_id = &list[0]["seriesId"];
    assert!(
        series_id.is_string()
            && list
                .as_array()
                .unwrap()
                .iter()
                .all(|b| &b["seriesId"] == series_id)
    );

    // A series crossing DST keeps the local time (Madrid: 2031-10-26).
    let mut across = booking(&client, "2031-10-20", "09:00", "10:00");
    across["recurrence"] = json!({ "frequency": "weekly", "count": 2 });
    let list = json_body(create(&app, &me, &across).await).await["data"].clone();
    assert_eq!(list[0]["startsAt"], "2031-10-20T07:00:00.000Z");
    assert_eq!(list[1]["startsAt"], "2031-10-27T08:00:00.000Z");

    let bad_recurrences = [
        json!({ "frequency": "weekly", "count": 1 }),
        json!({ "frequency": "weekly", "count": 53 }),
        json!({ "frequency": "daily", "count": 3 }),
        json!({ "frequency": "weekly", "interval": 3, "count": 3 }),
    ];
    for bad in bad_recurrences {
        let mut b = booking(&client, "2032-01-05", "09:00", "10:00");
        b["recurrence"] = bad.clone();
        let err = assert_error(create(&app, &me, &b).await, 400, "VALIDATION_ERROR").await;
        assert!(
            err["errors"][0]["field"]
                .as_str()
                .unwrap()
                .starts_with("recurrence"),
            "{bad}: {err}"
        );
    }
}

#[tokio::test]
async fn idempotency_keys_replay_across_instances_and_refuse_other_bodies() {
    let a = spawn_app().await;
    let shared = [
        ("MONGODB_DATABASE", a.config.mongodb.database.as_str()),
        ("DHARA_REDIS__PREFIX", a.config.redis.prefix.as_str()),
    ];
    let b = spawn_app_with(&shared).await;
    let (me, client) = setup(&a).await;
    let body = booking(&client, "2031-08-01", "12:00", "13:00");
    let send = |app: &TestApp, body: &Value, key: &str| {
        app.client
            .post(app.url("/api/bookings"))
            .header("Authorization", &me.auth)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
    };
    let first = send(&a, &body, "key-1").await.unwrap();
    assert_eq!(first.status(), 201);
    let first = json_body(first).await;
    let again = send(&b, &body, "key-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(again).await, first, "the very same response");
    assert_eq!(a.count("bookings").await, 1);

    let other = booking(&client, "2031-08-02", "12:00", "13:00");
    assert_error(
        send(&b, &other, "key-1").await.unwrap(),
        409,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(a.count("bookings").await, 1);

    let id = first["data"]["id"].as_str().unwrap();
    let cancel = |app: &TestApp| {
        app.client
            .patch(app.url(&format!("/api/bookings/{id}/cancel")))
            .header("Authorization", &me.auth)
            .header("Idempotency-Key", "cancel-1")
            .json(&json!({ "reason": "moved away" }))
            .send()
    };
    assert_eq!(cancel(&a).await.unwrap().status(), 200);
    let replay = cancel(&b).await.unwrap();
    assert_eq!(replay.status(), 200, "a retried cancel is not a transition error");
    assert_eq!(json_body(replay).await["data"]["status"], "cancelled");
    let long_key = "x".repeat(300);
    assert_error(send(&a, &body, &long_key).await.unwrap(), 400, "VALIDATION_ERROR").await;
}

#[tokio::test]
async fn versions_transitions_and_rescheduling() {
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    let b = json_body(create(&app, &me, &booking(&client, "2031-09-01", "10:00", "11:00")).await).await
        ["data"]
        .clone();
    let id = b["id"].as_str().unwrap();
    let path = format!("/api/bookings/{id}");

    let r = app
        .put_as(&path, &me, &json!({ "version": 1, "notes": "first" }))
        .await;
    assert_eq!(json_body(r).await["data"]["version"], 2);
    assert_error(
        app.put_as(&path, &me, &json!({ "version": 1, "notes": "stale" }))
            .await,
        412,
        "VERSION_CONFLICT",
    )
    .await;
    let r = app
        .client
        .put(app.url(&path))
        .header("Authorization", &me.auth)
        .header("If-Match", "\"1\"")
        .json(&json!({ "notes": "stale" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 412, "VERSION_CONFLICT").await;
    let got = json_body(app.get_as(&path, &me).await).await;
    assert_eq!(got["data"]["notes"], "first", "stale writes change nothing");

    // A body `version` wins over `If-Match` (even a malformed one); a malformed header alone is
    // a 400 naming it, but only once the booking is found: a stranger still gets 404.
    let with = |h: &'static str, body: Value| {
        app.client
            .put(app.url(&path))
            .header("Authorization", &me.auth)
            .header("If-Match", h)
            .json(&body)
            .send()
    };
    let r = with("nonsense", json!({ "version": 1, "notes": "stale" }))
        .await
        .unwrap();
    assert_error(r, 412, "VERSION_CONFLICT").await; // the body's (stale) version decided
    let r = with("nonsense", json!({ "notes": "x" })).await.unwrap();
    let err = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(err["errors"][0]["field"], "If-Match");
    let stranger = therapist(&app).await;
    let r = app
        .client
        .put(app.url(&path))
        .header("Authorization", &stranger.auth)
        .header("If-Match", "nonsense")
        .json(&json!({ "notes": "x" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "NOT_FOUND").await;

    // Reschedule onto itself shifted by 30 minutes: allowed; the old half becomes free.
    let to = json!({ "date": "2031-09-01", "startTime": "10:30", "endTime": "11:30", "version": 2 });
    let r = app.put_as(&format!("{path}/reschedule"), &me, &to).await;
    assert_eq!(r.status(), 200);
    let moved = json_body(r).await["data"].clone();
    assert_eq!(
        (moved["startTime"].as_str(), moved["version"].as_i64()),
        (Some("10:30"), Some(3))
    );
    assert_eq!(
        create(&app, &me, &booking(&client, "2031-09-01", "09:30", "10:30"))
            .await
            .status(),
        201
    );
    let to = json!({ "date": "2031-09-01", "startTime": "09:00", "endTime": "10:00" });
    assert_error(
        app.put_as(&format!("{path}/reschedule"), &me, &to).await,
        409,
        "SLOT_TAKEN",
    )
    .await;

    assert_eq!(
        app.put_as(&format!("{path}/complete"), &me, &json!({}))
            .await
            .status(),
        200
    );
    assert_error(
        app.patch_as(&format!("{path}/cancel"), &me, &json!({})).await,
        400,
        "INVALID_STATUS_TRANSITION",
    )
    .await;
    assert_error(
        app.put_as(&format!("{path}/no-show"), &me, &json!({})).await,
        400,
        "INVALID_STATUS_TRANSITION",
    )
    .await;
    let to = json!({ "date": "2031-09-02", "startTime": "10:00", "endTime": "11:00" });
    assert_error(
        app.put_as(&format!("{path}/reschedule"), &me, &to).await,
        400,
        "INVALID_STATUS_TRANSITION",
    )
    .await;
    // The dashboard's older status names are accepted.
    let c = json_body(create(&app, &me, &booking(&client, "2031-09-03", "10:00", "11:00")).await).await
        ["data"]
        .clone();
    let r = app
        .put_as(
            &format!("/api/bookings/{}", c["id"].as_str().unwrap()),
            &me,
            &json!({ "status": "confirmed" }),
        )
        .await;
    assert_eq!(json_body(r).await["data"]["status"], "upcoming");
}

#[tokio::test]
async fn another_therapists_bookings_are_404_everywhere() {
    let app = spawn_app().await;
    let (owner, client) = setup(&app).await;
    let intruder = therapist(&app).await;
    let b = json_body(create(&app, &owner, &booking(&client, "2031-04-01", "10:00", "11:00")).await).await
        ["data"]
        .clone();
    let p = format!("/api/bookings/{}", b["id"].as_str().unwrap());
    let move_to = json!({ "date": "2031-04-02", "startTime": "10:00", "endTime": "11:00" });
    assert_error(app.get_as(&p, &intruder).await, 404, "NOT_FOUND").await;
    assert_error(
        app.put_as(&p, &intruder, &json!({ "notes": "x" })).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.patch_as(&format!("{p}/cancel"), &intruder, &json!({})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.put_as(&format!("{p}/reschedule"), &intruder, &move_to).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.put_as(&format!("{p}/complete"), &intruder, &json!({})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.put_as(&format!("{p}/no-show"), &intruder, &json!({})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let list = json_body(app.get_as("/api/bookings", &intruder).await).await;
    assert_eq!(list["total"], 0);
    // Their client is not the intruder's client either.
    let err = assert_error(
        create(&app, &intruder, &booking(&client, "2031-04-03", "10:00", "11:00")).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(err["errors"][0]["field"], "clientId");
    // And calendars are separate: the same hour is free for the intruder.
    let theirs = new_client(&app, &intruder, "Own").await;
    assert_eq!(
        create(&app, &intruder, &booking(&theirs, "2031-04-01", "10:00", "11:00"))
            .await
            .status(),
        201
    );
    let got = json_body(app.get_as(&p, &owner).await).await;
    assert_eq!(got["data"]["status"], "upcoming");
}

#[tokio::test]
async fn bad_booking_input_is_400_naming_the_field_and_stores_nothing() {
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    let unknown = mongodb::bson::oid::ObjectId::new().to_hex();
    let with = |extra: Value| {
        let mut b =
            json!({ "clientId": client, "date": "2031-02-10", "startTime": "10:00", "endTime": "11:00" });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases = [
        (booking(&client, "2031-02-30", "10:00", "11:00"), "date"),
        (booking(&client, "31-02-2031", "10:00", "11:00"), "date"),
        (booking(&client, "2031-02-10", "11:00", "10:00"), "endTime"),
        (booking(&client, "2031-02-10", "25:00", "26:00"), "startTime"),
        (booking(&client, "2031-02-10", "10:07", "11:00"), "startTime"),
        (booking(&client, "2031-02-10", "10:00", "10:00"), "endTime"),
        (booking(&unknown, "2031-02-10", "10:00", "11:00"), "clientId"),
        (booking("nope", "2031-02-10", "10:00", "11:00"), "clientId"),
        (
            json!({ "clientId": client, "date": "2031-02-10", "startTime": "10:00" }),
            "endTime",
        ),
        (with(json!({ "amount": -5 })), "amount"),
        (with(json!({ "amount": 1.005 })), "amount"),
        (with(json!({ "amount": 1e30 })), "amount"),
        (with(json!({ "currency": "BTC" })), "currency"),
        (with(json!({ "status": "completed" })), "status"),
        (with(json!({ "therapyDuration": 45 })), "therapyDuration"),
        (with(json!({ "clientId": { "$ne": null } })), "clientId"),
    ];
    for (body, field) in cases {
        let err = assert_error(create(&app, &me, &body).await, 400, "VALIDATION_ERROR").await;
        let fields: Vec<&str> = err["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {err}");
    }
    assert_eq!(app.count("bookings").await, 0);
    assert_eq!(app.count("slot_claims").await, 0);
    for q in [
        "status=maybe",
        "startDate=2031-13-01",
        "clientId=zz",
        "limit=abc",
        "page=0",
    ] {
        assert_error(
            app.get_as(&format!("/api/bookings?{q}"), &me).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
    }
}

#[tokio::test]
async fn list_filters_statistics_upcoming_and_availability_check() {
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    let other = new_client(&app, &me, "Félix").await;
    let mut ids = Vec::new();
    for (c, date, amount) in [
        (&client, "2031-02-03", 50),
        (&client, "2031-02-04", 60),
        (&other, "2031-02-05", 70),
        (&other, "2031-03-01", 90),
    ] {
        let mut b = booking(c, date, "10:00", "10:45");
        b["amount"] = json!(amount);
        ids.push(
            json_body(create(&app, &me, &b).await).await["data"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.put_as(&format!("/api/bookings/{}/complete", ids[0]), &me, &json!({}))
        .await;
    app.put_as(&format!("/api/bookings/{}/complete", ids[1]), &me, &json!({}))
        .await;
    app.patch_as(&format!("/api/bookings/{}/cancel", ids[2]), &me, &json!({}))
        .await;

    let feb = "/api/bookings?startDate=2031-02-01&endDate=2031-02-28&sortOrder=asc&limit=2";
    let list = json_body(app.get_as(feb, &me).await).await;
    assert_eq!(
        (list["count"].as_u64(), list["total"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(list["pagination"]["totalPages"], 2);
    assert_eq!(list["data"][0]["date"], "2031-02-03");
    assert!(list["data"][0]["client"]["name"].is_string(), "client embedded");
    let cursor = list["pagination"]["nextCursor"].as_str().unwrap();
    let next = json_body(app.get_as(&format!("{feb}&cursor={cursor}"), &me).await).await;
    assert_eq!(next["data"][0]["date"], "2031-02-05");
    assert_eq!(
        json_body(app.get_as("/api/bookings?status=completed", &me).await).await["total"],
        2
    );
    assert_eq!(
        json_body(app.get_as(&format!("/api/bookings?clientId={other}"), &me).await).await["total"],
        2
    );

    let s = json_body(
        app.get_as(
            "/api/bookings/statistics?startDate=2031-02-01&endDate=2031-02-28",
            &me,
        )
        .await,
    )
    .await["data"]
        .clone();
    assert_eq!(s["totalBookings"], 3);
    assert_eq!(s["completedBookings"], 2);
    assert_eq!(s["cancelledBookings"], 1);
    assert_eq!(s["totalRevenue"], json!(110.0));
    assert_eq!(s["activeUniqueClients"], 1);
    assert_eq!(s["avgSessionDuration"], json!(45.0));
    assert_eq!(s["statusCounts"]["completed"], 2);

    let up = json_body(app.get_as("/api/bookings/upcoming?limit=10", &me).await).await;
    assert_eq!(up["count"], 1);
    assert_eq!(up["data"][0]["date"], "2031-03-01");

    let q = "/api/bookings/check-availability?date=2031-03-01&startTime=10:30&endTime=11:00";
    let check = json_body(app.get_as(q, &me).await).await["data"].clone();
    assert_eq!(check["available"], false);
    assert_eq!(check["conflicts"][0]["startTime"], "10:00");
    let q = "/api/bookings/check-availability?date=2031-03-01&startTime=10:45&endTime=11:45";
    assert_eq!(
        json_body(app.get_as(q, &me).await).await["data"]["available"],
        true
    );
}

#[tokio::test]
async fn orphaned_claims_from_a_crash_are_reaped() {
    use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    let therapist_id = ObjectId::parse_str(&me.id).unwrap();
    // A crash between claiming and writing the booking left this behind ten minutes ago
    // (10:00 Madrid = 09:00 UTC in November).
    let bucket = chrono::DateTime::parse_from_rfc3339("2031-11-03T09:00:00Z")
        .unwrap()
        .timestamp()
        / 300;
    let old = DateTime::from_millis(DateTime::now().timestamp_millis() - 600_000);
    let claim = doc! { "_id": format!("{}:{bucket}", me.id), "therapistId": therapist_id, "bookingId": ObjectId::new(), "bucket": bucket, "token": ObjectId::new(), "createdAt": old };
    app.db
        .collection::<Document>("slot_claims")
        .insert_one(claim)
        .await
        .unwrap();
    let body = booking(&client, "2031-11-03", "10:00", "11:00");
    let state = dhara::AppState::build(app.config.clone(), tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let claims = dhara::bookings::service::claims(&state);
    assert_eq!(claims.reap_all().await.unwrap().orphans, 1);
    assert_eq!(create(&app, &me, &body).await.status(), 201);
    assert_eq!(claims.reap_all().await.unwrap().orphans, 0, "live claims stay");

    // A cancellation whose release failed: the booking says cancelled, its claims remain.
    let kept = json_body(create(&app, &me, &booking(&client, "2031-11-04", "10:00", "11:00")).await).await
        ["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = ObjectId::parse_str(&kept).unwrap();
    app.db
        .collection::<Document>("bookings")
        .update_one(
            doc! { "_id": kept },
            doc! { "$set": { "status": "cancelled", "updatedAt": DateTime::now() } },
        )
        .await
        .unwrap();
    let again = booking(&client, "2031-11-04", "10:30", "11:30");
    assert_eq!(claims.reap_all().await.unwrap().orphans, 12);
    assert_eq!(create(&app, &me, &again).await.status(), 201);
}

#[tokio::test]
async fn a_series_failing_midway_leaves_no_booking_and_no_claim() {
    use mongodb::bson::doc;
    // The server refuses the third occurrence (a validator), after two were written.
    let config = test_config(&[]);
    let client = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    let db = client.database(&config.mongodb.database);
    db.create_collection("bookings")
        .validator(doc! { "date": { "$ne": "2031-06-16" } })
        .await
        .unwrap();
    let app = spawn_with_config(config).await;
    app.wait_ready().await;
    let (me, c) = setup(&app).await;
    let mut series = booking(&c, "2031-06-02", "17:00", "18:00");
    series["recurrence"] = json!({ "frequency": "weekly", "count": 4 });
    let r = create(&app, &me, &series).await;
    assert!(r.status().is_server_error(), "{}", r.status());
    assert_eq!(app.count("bookings").await, 0, "the written part was removed");
    assert_eq!(app.count("slot_claims").await, 0, "and its time released");
    assert_eq!(
        create(&app, &me, &booking(&c, "2031-06-02", "17:00", "18:00"))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn an_edit_that_changes_nothing_keeps_the_version() {
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    let r = create(&app, &me, &booking(&client, "2031-05-12", "10:00", "11:00")).await;
    let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/bookings/{id}");
    for body in [
        json!({}),
        json!({ "version": 1 }),
        json!({ "unknownField": 1 }),
        json!({ "date": "2031-05-12", "startTime": "10:00", "endTime": "11:00" }),
    ] {
        let r = app.put_as(&path, &me, &body).await;
        assert_eq!(r.status(), 200, "{body}");
        assert_eq!(json_body(r).await["data"]["version"], 1, "{body}");
    }
    // Another editor holding version 1 is not turned away.
    let r = app
        .put_as(&path, &me, &json!({ "version": 1, "notes": "still mine" }))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["data"]["version"], 2);
}

#[tokio::test]
async fn a_repeated_cancel_keeps_the_first_cancellation_and_the_version() {
    let app = spawn_app().await;
    let (me, client) = setup(&app).await;
    let r = create(&app, &me, &booking(&client, "2031-05-13", "10:00", "11:00")).await;
    let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/bookings/{id}/cancel");
    let r = app.patch_as(&path, &me, &json!({ "reason": "Illness" })).await;
    assert_eq!(r.status(), 200);
    let first = json_body(r).await["data"].clone();
    let r = app.patch_as(&path, &me, &json!({ "reason": "Other" })).await;
    assert_eq!(r.status(), 200, "a repeated cancel is no error");
    let again = json_body(r).await["data"].clone();
    assert_eq!(again["version"], first["version"], "no write");
    assert_eq!(
        again["cancellation"], first["cancellation"],
        "the first reason and time stand"
    );
}
