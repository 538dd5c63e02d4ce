//! Integrity under races and faults on every write path (issue 8): reschedules racing each
//! other over two instances, crashes between the steps of a move, writes cut off by their
//! timeout and retried with their key, and claims of time long past.

use std::collections::{BTreeSet, HashMap};

use dhara::bookings::claims::buckets_of;
use dhara::bookings::model::Booking;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use serde_json::{json, Value};

use crate::helpers::*;

fn booking(client: &str, date: &str, start: &str, end: &str) -> Value {
    json!({ "clientId": client, "date": date, "startTime": start, "endTime": end })
}

async fn two_instances() -> (TestApp, TestApp) {
    let a = spawn_app().await;
    let shared = [
        ("MONGODB_DATABASE", a.config.mongodb.database.as_str()),
        ("DHARA_REDIS__PREFIX", a.config.redis.prefix.as_str()),
    ];
    let b = spawn_app_with(&shared).await;
    (a, b)
}

async fn stored_bookings(app: &TestApp) -> Vec<Booking> {
    app.db
        .collection::<Booking>("bookings")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// Every booking that holds time holds exactly its own buckets, no claim exists without such a
/// booking, and no two such bookings overlap.
async fn assert_claims_match_bookings(app: &TestApp) {
    let bookings = stored_bookings(app).await;
    let claims: Vec<Document> = app
        .db
        .collection::<Document>("slot_claims")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut held: HashMap<ObjectId, BTreeSet<i64>> = HashMap::new();
    for c in &claims {
        let bucket = c.get_i64("bucket").unwrap();
        held.entry(c.get_object_id("bookingId").unwrap())
            .or_default()
            .insert(bucket);
    }
    let mut owner: HashMap<i64, ObjectId> = HashMap::new();
    for b in bookings.iter().filter(|b| b.status.holds_time()) {
        let own = buckets_of(b);
        assert_eq!(
            held.remove(&b.id).unwrap_or_default(),
            own,
            "booking {} ({} {}-{}) must hold exactly its own time",
            b.id,
            b.date,
            b.start_time,
            b.end_time
        );
        for bucket in own {
            if let Some(other) = owner.insert(bucket, b.id) {
                panic!("bookings {other} and {} overlap", b.id);
            }
        }
    }
    assert!(held.is_empty(), "claims without a booking using them: {held:?}");
}

#[tokio::test]
async fn racing_duplicate_and_crossing_reschedules_never_free_or_share_time() {
    let (a, b) = two_instances().await;
    let me = therapist(&a).await;
    let client = new_client(&a, &me, "Elena Soto").await;
    let other = new_client(&a, &me, "Marta Gil").await;
    for round in 0..50 {
        let day = format!("2031-07-{:02}", 1 + round % 28);
        let (from, dup, cross) = if round < 28 {
            (("08:00", "09:00"), ("11:00", "12:00"), ("11:30", "12:30"))
        } else {
            (("14:00", "15:00"), ("17:00", "18:00"), ("16:30", "17:30"))
        };
        let r = a
            .post_as("/api/bookings", &me, &booking(&client, &day, from.0, from.1))
            .await;
        assert_eq!(r.status(), 201, "round {round}");
        let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
        let path = format!("/api/bookings/{id}/reschedule");
        let move_to = |(s, e): (&str, &str)| json!({ "date": day, "startTime": s, "endTime": e });
        // Two identical moves (one per instance) and a crossing move to an overlapping time.
        let (to_dup, to_cross) = (move_to(dup), move_to(cross));
        let (r1, r2, r3) = tokio::join!(
            a.put_as(&path, &me, &to_dup),
            b.put_as(&path, &me, &to_dup),
            b.put_as(&path, &me, &to_cross),
        );
        let statuses = [r1.status().as_u16(), r2.status().as_u16(), r3.status().as_u16()];
        assert!(
            statuses.iter().all(|s| [200, 409, 412].contains(s)),
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.contains(&200),
            "round {round}: one move wins: {statuses:?}"
        );
        // Whatever won, the booking's time is held: nobody else can take it.
        let now: Value = json_body(a.get_as(&format!("/api/bookings/{id}"), &me).await).await["data"].clone();
        let (s, e) = (
            now["startTime"].as_str().unwrap(),
            now["endTime"].as_str().unwrap(),
        );
        let r = b
            .post_as("/api/bookings", &me, &booking(&other, &day, s, e))
            .await;
        assert_eq!(
            r.status(),
            409,
            "round {round}: the moved booking's time {s}-{e} stays held"
        );
    }
    assert_claims_match_bookings(&a).await;
}

async fn state_of(app: &TestApp) -> dhara::AppState {
    dhara::AppState::build(app.config.clone(), tokio_util::sync::CancellationToken::new())
        .await
        .unwrap()
}

/// Claims as a crash would have left them `age_minutes` ago for `booking`.
async fn leave_claims(
    app: &TestApp,
    therapist: &str,
    booking: ObjectId,
    utc_start: &str,
    minutes: i64,
    age_minutes: i64,
) {
    let first = chrono::DateTime::parse_from_rfc3339(utc_start)
        .unwrap()
        .timestamp()
        / 300;
    let created = DateTime::from_millis(DateTime::now().timestamp_millis() - age_minutes * 60_000);
    let token = ObjectId::new();
    let docs: Vec<Document> = (first..first + minutes / 5)
        .map(|bucket| {
            doc! {
                "_id": format!("{therapist}:{bucket}"), "therapistId": ObjectId::parse_str(therapist).unwrap(),
                "bookingId": booking, "bucket": bucket, "token": token, "createdAt": created,
                "expiresAt": DateTime::from_millis(DateTime::now().timestamp_millis() + 86_400_000 * 400),
            }
        })
        .collect();
    app.db
        .collection::<Document>("slot_claims")
        .insert_many(docs)
        .await
        .unwrap();
}

#[tokio::test]
async fn time_left_held_by_a_crash_mid_move_is_freed_whatever_its_age() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Elena Soto").await;
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &booking(&client, "2031-07-07", "09:00", "10:00"),
        )
        .await;
    let live = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let live = ObjectId::parse_str(&live).unwrap();
    // A move of the live booking claimed 14:00-15:00 (12:00 UTC) three hours ago and crashed
    // before writing it; another move left 16:00-17:00 behind after writing elsewhere. Both
    // are older than any "recent" window, and their booking exists and holds time.
    leave_claims(&app, &me.id, live, "2031-07-07T12:00:00Z", 60, 180).await;
    leave_claims(&app, &me.id, live, "2031-07-07T14:00:00Z", 60, 60 * 24 * 3).await;

    // The availability check and creation agree that 14:00 is free.
    let q = "/api/bookings/check-availability?date=2031-07-07&startTime=14:00&endTime=15:00";
    assert_eq!(
        json_body(app.get_as(q, &me).await).await["data"]["available"],
        true
    );
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &booking(&client, "2031-07-07", "14:00", "15:00"),
        )
        .await;
    assert_eq!(
        r.status(),
        201,
        "a stale claim of a live booking does not block creation"
    );

    // The worker's sweep frees the other one, and leaves every claim in use alone.
    let claims = dhara::bookings::service::claims(&state_of(&app).await);
    let reaped = claims.reap_all().await.unwrap();
    assert_eq!(reaped.orphans, 12, "{reaped:?}");
    assert_claims_match_bookings(&app).await;
    assert_eq!(claims.reap_all().await.unwrap().orphans, 0, "live claims stay");
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &booking(&client, "2031-07-07", "16:00", "17:00"),
        )
        .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn young_claims_of_a_write_in_progress_are_left_alone() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Elena Soto").await;
    // A create that is claiming right now: no booking yet, claims a second old.
    leave_claims(&app, &me.id, ObjectId::new(), "2031-07-08T08:00:00Z", 60, 0).await;
    let claims = dhara::bookings::service::claims(&state_of(&app).await);
    assert_eq!(claims.reap_all().await.unwrap().orphans, 0);
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &booking(&client, "2031-07-08", "10:00", "11:00"),
        )
        .await;
    assert_error(r, 409, "SLOT_TAKEN").await;
    assert_eq!(app.count("slot_claims").await, 12);
}

#[tokio::test]
async fn claims_of_time_long_past_are_removed_and_that_time_cannot_be_booked() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Elena Soto").await;
    let day = |d: i64| {
        (chrono::Utc::now().date_naive() + chrono::Duration::days(d))
            .format("%Y-%m-%d")
            .to_string()
    };
    // Within the retention (30 days by default): recorded, and guarded like any booking.
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &booking(&client, &day(-3), "10:00", "11:00"),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &booking(&client, &day(-3), "10:30", "11:30"),
        )
        .await;
    assert_error(r, 409, "SLOT_TAKEN").await;
    // Beyond it: refused, since its claims would already be gone.
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &booking(&client, &day(-45), "10:00", "11:00"),
        )
        .await;
    let body = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["errors"][0]["field"], "date");

    // Each claim expires with its time plus the retention (TTL index; the reaper does the same).
    let claim = app
        .db
        .collection::<Document>("slot_claims")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    let expires = claim.get_datetime("expiresAt").unwrap().timestamp_millis();
    let bucket_end = (claim.get_i64("bucket").unwrap() + 1) * 300_000;
    assert_eq!(expires - bucket_end, 30 * 86_400_000);
    let indexes: Vec<Document> = app
        .db
        .collection::<Document>("slot_claims")
        .list_indexes()
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .map(|i| mongodb::bson::to_document(&i).unwrap())
        .collect();
    assert!(
        indexes.iter().any(|i| i
            .get_document("key")
            .map(|k| k.contains_key("expiresAt"))
            .unwrap_or(false)
            && (i.contains_key("expireAfterSeconds")
                || i.get_document("options")
                    .map(|o| o.contains_key("expireAfterSeconds"))
                    .unwrap_or(false))),
        "a TTL index on expiresAt: {indexes:?}"
    );
    // Claims whose retention has run out go (the server's TTL monitor or the reaper, whichever
    // comes first; the reaper covers servers where TTL monitoring is off).
    app.db
        .collection::<Document>("slot_claims")
        .update_many(
            doc! {},
            doc! { "$set": { "expiresAt": DateTime::from_millis(1_000) } },
        )
        .await
        .unwrap();
    let claims = dhara::bookings::service::claims(&state_of(&app).await);
    let reaped = claims.reap_all().await.unwrap();
    assert!(reaped.expired <= 12, "{reaped:?}");
    assert_eq!(app.count("slot_claims").await, 0);
}

#[tokio::test]
async fn a_write_cut_off_by_its_timeout_completes_and_its_key_replays_it() {
    // Instance A abandons CRUD requests after 50 ms; B is normal. A 52-week series takes far
    // longer than that to claim and write, so A's answer comes while the write is under way.
    let a = spawn_app_with(&[("DHARA_HTTP__TIMEOUTS__CRUD_SECONDS", "0.05")]).await;
    let shared = [
        ("MONGODB_DATABASE", a.config.mongodb.database.as_str()),
        ("DHARA_REDIS__PREFIX", a.config.redis.prefix.as_str()),
    ];
    let b = spawn_app_with(&shared).await;
    let me = therapist(&b).await;
    let client = new_client(&b, &me, "Elena Soto").await;
    let mut series = booking(&client, "2031-01-06", "10:00", "11:00");
    series["recurrence"] = json!({ "frequency": "weekly", "count": 52 });
    let mut started = false;
    for attempt in 0..5 {
        let key = format!("series-{attempt}");
        let send = |app: &TestApp| {
            app.client
                .post(app.url("/api/bookings"))
                .header("Authorization", &me.auth)
                .header("Idempotency-Key", &key)
                .json(&series)
                .send()
        };
        let r = send(&a).await.unwrap();
        if r.status() != 503 {
            // The whole series fit in 50 ms (or was refused): nothing to prove with this key.
            assert!(r.status() == 201 || r.status() == 409, "{}", r.status());
            continue;
        }
        assert_eq!(json_body(r).await["code"], "TIMEOUT");
        if a.count("idempotency_keys").await == 0 {
            // Cut off before the write began; try again with a new key.
            continue;
        }
        started = true;
        // The retry (on the other instance) waits for the real outcome and replays it.
        let mut replay = send(&b).await.unwrap();
        for _ in 0..100 {
            if replay.status() != 409 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            replay = send(&b).await.unwrap();
        }
        assert_eq!(
            replay.status(),
            201,
            "the retry returns what the cut-off request created"
        );
        let data = json_body(replay).await["data"].clone();
        assert_eq!(data.as_array().unwrap().len(), 52);
        assert_eq!(b.count("bookings").await, 52, "stored once");
        assert_claims_match_bookings(&b).await;
        break;
    }
    assert!(started, "no attempt was cut off mid-write");
}

#[tokio::test]
async fn a_login_with_a_stored_email_sees_nothing_until_it_proves_the_email() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let victim = "paciente@example.com";
    let r = app
        .post_as(
            "/api/clients",
            &me,
            &json!({ "name": "Paciente Real", "email": victim }),
        )
        .await;
    let record = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let mut b = booking(&record, "2031-03-03", "10:00", "11:00");
    b["notes"] = json!("private clinical note");
    assert_eq!(app.post_as("/api/bookings", &me, &b).await.status(), 201);

    // A stranger registers a booking-site login with that email.
    let (_, _, session) = register_as(&app, "/api/clients/register", Some(victim)).await;
    let stranger = Caller {
        auth: bearer(&session),
        id: session["user"]["id"].as_str().unwrap().to_owned(),
        email: victim.to_owned(),
    };
    let mine = json_body(app.get_as("/api/bookings/client", &stranger).await).await;
    assert_eq!(mine["total"], 0, "nothing is linked by registering: {mine}");
    let got = json_body(app.get_as(&format!("/api/clients/{record}"), &me).await).await;
    assert!(got["data"]["userId"].is_null(), "{got}");
    // Nor by booking with that therapist: the record for that email is not theirs yet.
    app.put_as(
        "/api/availability/schedule",
        &me,
        &json!({ "timezone": "Europe/Madrid", "weekly": { "monday": [{ "start": "00:00", "end": "24:00" }], "tuesday": [{ "start": "00:00", "end": "24:00" }], "wednesday": [{ "start": "00:00", "end": "24:00" }], "thursday": [{ "start": "00:00", "end": "24:00" }], "friday": [{ "start": "00:00", "end": "24:00" }], "saturday": [{ "start": "00:00", "end": "24:00" }], "sunday": [{ "start": "00:00", "end": "24:00" }] }, "bufferMinutes": 0, "minNoticeHours": 0, "maxAdvanceDays": 365 }),
    )
    .await;
    let day = (chrono::Utc::now().date_naive() + chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    let ask = json!({ "therapistId": me.id, "date": day, "startTime": "10:00", "endTime": "11:00" });
    assert_error(
        app.post_as("/api/bookings/client/book", &stranger, &ask).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(app.count("bookings").await, 1);

    // The owner of the mailbox proves it: now the records are linked, and the therapist told.
    let token = mailed_token(&app, victim, "verify-email").await;
    let r = app
        .post_json("/api/clients/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["data"]["linkedRecords"], 1);
    let again = app
        .post_json("/api/clients/verify-email", &json!({ "token": token }))
        .await;
    assert_error(again, 400, "VALIDATION_ERROR").await;
    let mine = json_body(app.get_as("/api/bookings/client", &stranger).await).await;
    assert_eq!(mine["total"], 1);
    let seen = &mine["data"][0];
    assert!(
        seen.get("notes").is_none(),
        "the therapist's private notes never reach a client: {seen}"
    );
    let notes = json_body(app.get_as("/api/notifications", &me).await).await;
    assert!(notes.to_string().contains("client_linked"), "{notes}");
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_over_two_instances_gets_exactly_the_allowed_checks() {
    let (a, b) = two_instances().await;
    let (email, password, _) = register_therapist(&a).await;
    let wrong = json!({ "email": email, "password": "not the password" });
    let requests = (0..40).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.post_json("/api/auth/login", &wrong)
    });
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 5, "lockout.max password checks, no more: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    // Locked: even the right password waits for the window.
    let right = json!({ "email": email, "password": password });
    assert_eq!(a.post_json("/api/auth/login", &right).await.status(), 429);
}

#[tokio::test]
async fn a_signed_token_of_a_deleted_account_reaches_nothing() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    assert_eq!(app.get_as("/api/bookings", &me).await.status(), 200);
    app.db
        .collection::<Document>("users")
        .delete_one(doc! { "_id": ObjectId::parse_str(&me.id).unwrap() })
        .await
        .unwrap();
    assert_error(app.get_as("/api/bookings", &me).await, 401, "INVALID_TOKEN").await;
    assert_error(app.get_as("/api/auth/me", &me).await, 401, "INVALID_TOKEN").await;
}

async fn priced_booking(app: &TestApp, me: &Caller, client: &str, date: &str, amount: f64) -> String {
    let mut b = booking(client, date, "10:00", "11:00");
    b["amount"] = json!(amount);
    json_body(app.post_as("/api/bookings", me, &b).await).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_booking_is_never_paid_beyond_its_price_in_another_currency_or_while_cancelled() {
    let (a, b) = two_instances().await;
    let me = therapist(&a).await;
    let client = new_client(&a, &me, "Pagadora").await;
    let booking_id = priced_booking(&a, &me, &client, "2031-02-03", 50.0).await;
    let pay = json!({ "amount": 50, "method": "cash", "clientId": client, "bookingId": booking_id });
    assert_eq!(a.post_as("/api/payments", &me, &pay).await.status(), 201);
    let r = a.post_as("/api/payments", &me, &pay).await;
    assert_error(r, 409, "PAYMENT_EXCEEDS_PRICE").await;
    let mut tip = json!({ "amount": 5, "method": "cash", "clientId": client, "bookingId": booking_id });
    assert_error(
        a.post_as("/api/payments", &me, &tip).await,
        409,
        "PAYMENT_EXCEEDS_PRICE",
    )
    .await;
    tip["allowOverpayment"] = json!(true);
    assert_eq!(
        a.post_as("/api/payments", &me, &tip).await.status(),
        201,
        "said explicitly"
    );
    assert_eq!(a.count("payments").await, 2);

    // Concurrently, over two instances: one payment of the full price wins.
    let other = priced_booking(&a, &me, &client, "2031-02-04", 50.0).await;
    let pay = json!({ "amount": 50, "method": "card", "clientId": client, "bookingId": other });
    let tries = (0..8).map(|i| {
        if i % 2 == 0 {
            a.post_as("/api/payments", &me, &pay)
        } else {
            b.post_as("/api/payments", &me, &pay)
        }
    });
    let statuses: Vec<u16> = futures_util::future::join_all(tries)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    // Under load a request may be answered 503 TIMEOUT while its write runs on; the stored state
    // below decides. Never two winners, never anything but paid, refused or cut off.
    assert!(
        statuses.iter().filter(|s| **s == 201).count() <= 1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [201, 409, 503].contains(s)),
        "{statuses:?}"
    );
    // A write cut off by its timeout finishes on its own: wait (bounded) until one is stored.
    let oid = ObjectId::parse_str(&other).unwrap();
    let payments = a.db.collection::<Document>("payments");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while payments.count_documents(doc! { "bookingId": oid }).await.unwrap() == 0
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let stored =
        a.db.collection::<Document>("bookings")
            .find_one(doc! { "_id": oid })
            .await
            .unwrap()
            .unwrap();
    assert_eq!(stored.get_i64("paidCents").unwrap(), 5000);
    assert_eq!(
        a.db.collection::<Document>("payments")
            .count_documents(doc! { "bookingId": oid })
            .await
            .unwrap(),
        1
    );

    // Another currency, or a cancelled booking: refused, nothing stored.
    let third = priced_booking(&a, &me, &client, "2031-02-05", 50.0).await;
    let usd =
        json!({ "amount": 50, "currency": "USD", "method": "cash", "clientId": client, "bookingId": third });
    let body = assert_error(
        a.post_as("/api/payments", &me, &usd).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "currency");
    a.patch_as(&format!("/api/bookings/{third}/cancel"), &me, &json!({}))
        .await;
    let eur = json!({ "amount": 50, "method": "cash", "clientId": client, "bookingId": third });
    let body = assert_error(
        a.post_as("/api/payments", &me, &eur).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "bookingId");
    assert_eq!(a.count("payments").await, 3);
}

#[tokio::test]
async fn refunded_money_is_never_lost_by_a_status_update_and_renders_signed() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Reembolsada").await;
    let booking_id = priced_booking(&app, &me, &client, "2031-02-10", 100.0).await;
    let pay = json!({ "amount": 100, "method": "cash", "clientId": client, "bookingId": booking_id });
    let id = json_body(app.post_as("/api/payments", &me, &pay).await).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post_as(
            &format!("/api/payments/{id}/refund"),
            &me,
            &json!({ "refundAmount": 40 }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .put_as(
            &format!("/api/payments/{id}/status"),
            &me,
            &json!({ "status": "partially_refunded" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let p = json_body(app.get_as(&format!("/api/payments/{id}"), &me).await).await["data"].clone();
    assert_eq!(p["refundedAmount"], json!(40.0));
    // 60 remain refundable: a refund of 60 goes through, one cent more would not have.
    let r = app
        .post_as(
            &format!("/api/payments/{id}/refund"),
            &me,
            &json!({ "refundAmount": 60 }),
        )
        .await;
    assert_eq!(json_body(r).await["data"]["status"], "refunded");
    // Fully refunded, the booking counts nothing as paid: it can be paid again.
    let again = app.post_as("/api/payments", &me, &pay).await;
    assert_eq!(again.status(), 201);
    assert_eq!(dhara::money::Cents(-1234).to_major(), json!(-12.34));
    assert_eq!(dhara::money::Cents(-5).to_major(), json!(-0.05));
}

#[tokio::test]
async fn transaction_ids_are_unique_per_therapist_only() {
    let app = spawn_app().await;
    let (one, two) = (therapist(&app).await, therapist(&app).await);
    for me in [&one, &two] {
        let client = new_client(&app, me, "Cliente").await;
        let pay =
            json!({ "amount": 10, "method": "transfer", "clientId": client, "transactionId": "BANK-42" });
        assert_eq!(
            app.post_as("/api/payments", me, &pay).await.status(),
            201,
            "another therapist's id is no obstacle"
        );
        assert_error(
            app.post_as("/api/payments", me, &pay).await,
            409,
            "TRANSACTION_EXISTS",
        )
        .await;
    }
}

#[tokio::test]
async fn lost_indexes_are_recreated_and_readiness_follows() {
    let app = spawn_app_with(&[("DHARA_MONGODB__INDEX_CHECK_SECONDS", "1")]).await;
    app.wait_ready().await;
    // The database loses its indexes (a restore, a dropped collection, a restarted server).
    app.db
        .run_command(doc! { "dropIndexes": "users", "index": "*" })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let names: Vec<String> = app
            .db
            .collection::<Document>("users")
            .list_index_names()
            .await
            .unwrap_or_default();
        if names.iter().any(|n| n == "email_1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the unique email index was not re-created: {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // And it guards again: the same email cannot register twice.
    let (email, _, _) = register_therapist(&app).await;
    let again = json!({ "name": "Otra", "email": email, "password": "correct horse battery", "confirmPassword": "correct horse battery" });
    assert_error(
        app.post_json("/api/auth/register", &again).await,
        409,
        "EMAIL_TAKEN",
    )
    .await;
}

#[tokio::test]
async fn links_must_be_web_links_names_are_trimmed_and_personal_data_is_not_cached() {
    let app = spawn_app_with(&[("DHARA_ENV", "test")]).await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Elena").await;
    for link in [
        "javascript:alert(1)",
        "data:text/html,<script>1</script>",
        "http://meet.example.com/x",
    ] {
        let mut b = booking(&client, "2031-09-01", "10:00", "11:00");
        b["meetingLink"] = json!(link);
        let body = assert_error(
            app.post_as("/api/bookings", &me, &b).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "meetingLink", "{link}: {body}");
        let profile = json!({ "externalLinks": [{ "label": "web", "url": link }] });
        let r = app.put_as("/api/profile", &me, &profile).await;
        assert_eq!(r.status(), 400, "{link}");
    }
    let mut b = booking(&client, "2031-09-01", "10:00", "11:00");
    b["meetingLink"] = json!("https://meet.example.com/x");
    assert_eq!(app.post_as("/api/bookings", &me, &b).await.status(), 201);
    assert_eq!(app.count("bookings").await, 1);

    let r = app.post_as("/api/clients", &me, &json!({ "name": "   " })).await;
    let body = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["errors"][0]["field"], "name");
    let r = app
        .post_as("/api/clients", &me, &json!({ "name": "  Ana Ruiz  " }))
        .await;
    assert_eq!(json_body(r).await["data"]["name"], "Ana Ruiz");

    let r = app.get_as("/api/clients", &me).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn an_attempt_refused_before_its_password_was_checked_does_not_count_toward_lockout() {
    let app = spawn_app_with(&[
        ("DHARA_AUTH__HASH_CONCURRENCY", "1"),
        ("DHARA_AUTH__HASH_QUEUE", "0"),
    ])
    .await;
    let (email, password, _) = register_therapist(&app).await;
    let wrong = json!({ "email": email, "password": "not the password" });
    // Five at once (the lockout's allowance): one is checked, the others find hashing busy.
    let tries = (0..5).map(|_| app.post_json("/api/auth/login", &wrong));
    let statuses: Vec<u16> = futures_util::future::join_all(tries)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    assert!(busy >= 1, "hashing was never busy: {statuses:?}");
    // Only the checked ones count: the owner can still sign in.
    let right = json!({ "email": email, "password": password });
    assert_eq!(
        app.post_json("/api/auth/login", &right).await.status(),
        200,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_invitation_takes_over_an_unproven_login_instead_of_handing_it_the_records() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let victim = "victoria@example.com";
    // An attacker makes a login for someone else's email first.
    let (_, _, attacker) = register_as(&app, "/api/clients/register", Some(victim)).await;
    let attacker = Caller {
        auth: bearer(&attacker),
        id: attacker["user"]["id"].as_str().unwrap().to_owned(),
        email: victim.into(),
    };
    let r = app
        .post_as(
            "/api/clients",
            &me,
            &json!({ "name": "Victoria", "email": victim }),
        )
        .await;
    let record = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post_as(
            "/api/bookings",
            &me,
            &booking(&record, "2031-04-07", "10:00", "11:00")
        )
        .await
        .status(),
        201
    );
    // The owner of the mailbox redeems the therapist's invitation with her own password.
    let token = mailed_token(&app, victim, "activate").await;
    let body = json!({ "token": token, "password": "victims own pw", "confirmPassword": "victims own pw" });
    let r = app.post_json("/api/clients/activate", &body).await;
    assert_eq!(r.status(), 201, "she gets the login, signed in");
    let session = json_body(r).await;
    let login = json!({ "email": victim, "password": "victims own pw" });
    assert_eq!(app.post_json("/api/auth/login", &login).await.status(), 200);
    let login = json!({ "email": victim, "password": "correct horse battery" });
    assert_eq!(
        app.post_json("/api/auth/login", &login).await.status(),
        401,
        "the attacker's password is gone"
    );
    // The attacker's session ended with the password change; hers sees the session.
    assert_eq!(app.get_as("/api/bookings/client", &attacker).await.status(), 401);
    let her = Caller {
        auth: bearer(&session),
        id: session["user"]["id"].as_str().unwrap().to_owned(),
        email: victim.into(),
    };
    assert_eq!(
        json_body(app.get_as("/api/bookings/client", &her).await).await["total"],
        1
    );
}

#[tokio::test]
async fn a_failed_pending_payment_no_longer_counts_toward_the_price() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Pendiente").await;
    let booking_id = priced_booking(&app, &me, &client, "2031-02-12", 50.0).await;
    let pending = json!({ "amount": 50, "method": "cash", "clientId": client, "bookingId": booking_id, "status": "pending" });
    let id = json_body(app.post_as("/api/payments", &me, &pending).await).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .put_as(
            &format!("/api/payments/{id}/status"),
            &me,
            &json!({ "status": "failed" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let card = json!({ "amount": 50, "method": "card", "clientId": client, "bookingId": booking_id });
    assert_eq!(
        app.post_as("/api/payments", &me, &card).await.status(),
        201,
        "the failed one gave its share back"
    );
    // Pending again would make 100 of 50: refused, and the failed payment stays failed.
    let r = app
        .put_as(
            &format!("/api/payments/{id}/status"),
            &me,
            &json!({ "status": "pending" }),
        )
        .await;
    assert_error(r, 409, "PAYMENT_EXCEEDS_PRICE").await;
    let oid = ObjectId::parse_str(&booking_id).unwrap();
    let stored = app
        .db
        .collection::<Document>("bookings")
        .find_one(doc! { "_id": oid })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dhara::db::as_i64(stored.get("paidCents").unwrap()), Some(5000));
}

#[tokio::test]
async fn the_availability_check_sees_a_booking_lengthened_by_the_autumn_clock_change() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Madrugadora").await;
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &booking(&client, "2031-10-26", "00:00", "12:00"),
        )
        .await;
    assert_eq!(r.status(), 201);
    let q = "/api/bookings/check-availability?date=2031-10-26&startTime=11:00&endTime=12:00";
    assert_eq!(
        json_body(app.get_as(q, &me).await).await["data"]["available"],
        false
    );
}

#[tokio::test]
async fn a_key_reused_with_another_body_after_its_record_is_gone_creates_its_own_booking() {
    // The key's record expired (or was freed by a 5xx); the client reuses the key for another
    // request: it must get its own booking, never the first request's.
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Clave").await;
    let send = |body: Value| {
        app.client
            .post(app.url("/api/bookings"))
            .header("Authorization", &me.auth)
            .header("Idempotency-Key", "reused-key")
            .json(&body)
            .send()
    };
    let first = send(booking(&client, "2031-05-05", "10:00", "11:00"))
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first = json_body(first).await["data"].clone();
    app.db
        .collection::<Document>("idempotency_keys")
        .delete_many(doc! {})
        .await
        .unwrap();
    let second = send(booking(&client, "2031-05-05", "12:00", "13:00"))
        .await
        .unwrap();
    assert_eq!(second.status(), 201);
    let second = json_body(second).await["data"].clone();
    assert_ne!(second["id"], first["id"]);
    assert_eq!(second["startTime"], "12:00");
    let stored: Vec<Document> = app
        .db
        .collection::<Document>("bookings")
        .find(doc! {})
        .sort(doc! { "startTime": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let times: Vec<&str> = stored.iter().map(|b| b.get_str("startTime").unwrap()).collect();
    assert_eq!(times, vec!["10:00", "12:00"]);
    assert_claims_match_bookings(&app).await;
}

#[tokio::test]
async fn a_keyed_request_run_again_after_a_lost_outcome_recognises_what_it_wrote() {
    // A 5xx after the write (a commit whose result was lost, a failed read of the answer)
    // frees the key so the client can retry; the retry must find the first attempt's writes.
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Reintento").await;
    let send = |path: &'static str, body: Value, key: &'static str| {
        app.client
            .post(app.url(path))
            .header("Authorization", &me.auth)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let forget_keys = || async {
        app.db
            .collection::<Document>("idempotency_keys")
            .delete_many(doc! {})
            .await
            .unwrap();
    };
    let pay = json!({ "amount": 40, "method": "cash", "clientId": client });
    let first = json_body(send("/api/payments", pay.clone(), "pay-1").await.unwrap()).await;
    forget_keys().await;
    let again = send("/api/payments", pay, "pay-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(json_body(again).await["data"]["id"], first["data"]["id"]);
    assert_eq!(app.count("payments").await, 1, "recorded once");

    let mut series = booking(&client, "2031-05-05", "10:00", "11:00");
    series["recurrence"] = json!({ "frequency": "weekly", "count": 3 });
    let first = json_body(send("/api/bookings", series.clone(), "series-1").await.unwrap()).await;
    forget_keys().await;
    let again = send("/api/bookings", series, "series-1").await.unwrap();
    assert_eq!(again.status(), 201, "its own bookings, not a conflict with them");
    assert_eq!(json_body(again).await["data"], first["data"]);
    assert_eq!(app.count("bookings").await, 3);
    assert_claims_match_bookings(&app).await;

    let paid = json_body(app.get_as("/api/payments", &me).await).await["data"]["payments"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path: &'static str = Box::leak(format!("/api/payments/{paid}/refund").into_boxed_str());
    assert_eq!(
        send(path, json!({ "refundAmount": 10 }), "refund-1")
            .await
            .unwrap()
            .status(),
        200
    );
    forget_keys().await;
    let r = send(path, json!({ "refundAmount": 10 }), "refund-1")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_body(r).await["data"]["refundedAmount"],
        json!(10.0),
        "refunded once"
    );
}

#[tokio::test]
async fn a_client_booking_run_again_after_a_lost_outcome_answers_with_its_booking() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let day = json!([{ "start": "09:00", "end": "13:00" }]);
    let schedule = json!({
        "timezone": "Europe/Madrid",
        "weekly": { "monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day, "saturday": day, "sunday": day },
        "bufferMinutes": 0, "minNoticeHours": 0, "maxAdvanceDays": 365,
    });
    assert_eq!(
        app.put_as("/api/availability/schedule", &me, &schedule)
            .await
            .status(),
        200
    );
    let c = client_user(&app).await;
    let date = (chrono::Utc::now().date_naive() + chrono::Duration::days(5))
        .format("%Y-%m-%d")
        .to_string();
    let ask = json!({ "therapistId": me.id, "date": date, "startTime": "10:00", "endTime": "11:00" });
    let send = || {
        app.client
            .post(app.url("/api/bookings/client/book"))
            .header("Authorization", &c.auth)
            .header("Idempotency-Key", "book-1")
            .json(&ask)
            .send()
    };
    let first = json_body(send().await.unwrap()).await;
    app.db
        .collection::<Document>("idempotency_keys")
        .delete_many(doc! {})
        .await
        .unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(json_body(again).await["data"]["id"], first["data"]["id"]);
    assert_eq!(app.count("bookings").await, 1);
}

#[tokio::test]
async fn the_same_payment_status_change_twice_at_once_gives_back_once() {
    let (a, b) = two_instances().await;
    let me = therapist(&a).await;
    let client = new_client(&a, &me, "Doble").await;
    let booking_id = priced_booking(&a, &me, &client, "2031-02-14", 50.0).await;
    let oid = ObjectId::parse_str(&booking_id).unwrap();
    for round in 0..5 {
        let pending = json!({ "amount": 20, "method": "cash", "clientId": client, "bookingId": booking_id, "status": "pending" });
        let r = a.post_as("/api/payments", &me, &pending).await;
        assert_eq!(r.status(), 201, "round {round}");
        let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
        let path = format!("/api/payments/{id}/status");
        let failed = json!({ "status": "failed" });
        let (r1, r2) = tokio::join!(a.put_as(&path, &me, &failed), b.put_as(&path, &me, &failed));
        for r in [r1, r2] {
            assert!(
                [200, 409, 412].contains(&r.status().as_u16()),
                "round {round}: {}",
                r.status()
            );
        }
        let stored =
            a.db.collection::<Document>("bookings")
                .find_one(doc! { "_id": oid })
                .await
                .unwrap()
                .unwrap();
        assert_eq!(
            dhara::db::as_i64(stored.get("paidCents").unwrap()),
            Some(0),
            "round {round}: given back once"
        );
    }
}
