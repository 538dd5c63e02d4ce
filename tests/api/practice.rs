//! Reviews, notifications, profile and the dashboard.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::*;

/// A therapist whose booking site client has one completed session; returns (therapist,
/// client user, booking id).
async fn completed_session(app: &TestApp) -> (Caller, Caller, String) {
    let me = therapist(app).await;
    let c = client_user(app).await;
    let r = app
        .post_as(
            "/api/clients",
            &me,
            &json!({ "name": "Reviewer", "email": c.email }),
        )
        .await;
    let client_id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let body =
        json!({ "clientId": client_id, "date": "2031-01-20", "startTime": "10:00", "endTime": "11:00" });
    let booking = json_body(app.post_as("/api/bookings", &me, &body).await).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (me, c, booking)
}

#[tokio::test]
async fn a_client_reviews_a_completed_session_once_and_the_therapist_answers() {
    let app = spawn_app().await;
    let (me, c, booking) = completed_session(&app).await;
    let review = json!({ "bookingId": booking, "rating": 5, "comment": "Muy útil" });
    let r = app.post_as("/api/reviews/create", &c, &review).await;
    assert_error(r, 400, "BOOKING_NOT_COMPLETED").await;
    app.put_as(&format!("/api/bookings/{booking}/complete"), &me, &json!({}))
        .await;
    let r = app.post_as("/api/reviews/create", &c, &review).await;
    assert_eq!(r.status(), 201);
    let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    assert_error(
        app.post_as("/api/reviews/create", &c, &review).await,
        409,
        "REVIEW_EXISTS",
    )
    .await;
    assert_eq!(app.count("reviews").await, 1);

    let stranger = client_user(&app).await;
    assert_error(
        app.post_as("/api/reviews/create", &stranger, &review).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.post_as("/api/reviews/create", &me, &review).await,
        403,
        "FORBIDDEN",
    )
    .await;
    for (bad, field) in [
        (json!({ "bookingId": booking, "rating": 6 }), "rating"),
        (json!({ "bookingId": booking, "rating": "5" }), "rating"),
        (json!({ "rating": 4 }), "bookingId"),
    ] {
        let err = assert_error(
            app.post_as("/api/reviews/create", &c, &bad).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(err["errors"][0]["field"], field);
    }

    let list = json_body(app.get_as("/api/reviews", &me).await).await["data"].clone();
    assert_eq!(list["reviews"][0]["rating"], 5);
    assert_eq!(list["reviews"][0]["client"]["name"], "Reviewer");
    assert_eq!(
        list["pagination"],
        json!({ "current": 1, "pages": 1, "total": 1, "nextCursor": null })
    );
    let stats = json_body(app.get_as("/api/reviews/statistics", &me).await).await["data"].clone();
    assert_eq!(
        stats,
        json!({ "totalReviews": 1, "averageRating": 5.0, "ratingDistribution": { "1": 0, "2": 0, "3": 0, "4": 0, "5": 1 } })
    );

    let r = app
        .post_as(
            &format!("/api/reviews/{id}/response"),
            &me,
            &json!({ "response": "¡Gracias!" }),
        )
        .await;
    assert_eq!(json_body(r).await["data"]["response"]["text"], "¡Gracias!");
    let other = therapist(&app).await;
    assert_error(
        app.post_as(
            &format!("/api/reviews/{id}/response"),
            &other,
            &json!({ "response": "x" }),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        json_body(app.get_as("/api/reviews", &other).await).await["data"]["pagination"]["total"],
        0
    );
}

#[tokio::test]
async fn notifications_follow_bookings_cancellations_and_can_be_read() {
    let app = spawn_app().await;
    let (me, c, booking) = completed_session(&app).await;
    app.patch_as(&format!("/api/bookings/{booking}/cancel"), &me, &json!({}))
        .await;
    let list = json_body(app.get_as("/api/notifications", &me).await).await["data"].clone();
    let items = list["notifications"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["booking_cancelled", "booking_created"],
        "newest first"
    );
    for n in items {
        assert_eq!(n["isRead"], false);
        assert_eq!(n["status"], "unread");
    }
    assert_eq!(list["pagination"]["total"], 2);
    let counts = json_body(app.get_as("/api/notifications/counts", &me).await).await["data"].clone();
    assert_eq!(
        (counts["total"].as_i64(), counts["unread"].as_i64()),
        (Some(2), Some(2))
    );

    let id = items[0]["id"].as_str().unwrap();
    assert_error(
        app.post_as(&format!("/api/notifications/{id}/read"), &c, &json!({}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let r = app
        .post_as(&format!("/api/notifications/{id}/read"), &me, &json!({}))
        .await;
    let read = json_body(r).await["data"].clone();
    assert_eq!(
        (read["isRead"].as_bool(), read["status"].as_str()),
        (Some(true), Some("read"))
    );
    assert_eq!(
        json_body(app.get_as("/api/notifications/counts", &me).await).await["data"]["unread"],
        1
    );
    let r = app
        .post_as("/api/notifications/mark-all-read", &me, &json!({}))
        .await;
    assert_eq!(json_body(r).await["data"]["updated"], 1);
    assert_eq!(
        json_body(app.get_as("/api/notifications/counts", &me).await).await["data"]["unread"],
        0
    );
}

#[tokio::test]
async fn profile_is_created_empty_updated_and_shown_publicly() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let p = json_body(app.get_as("/api/profile", &me).await).await["data"].clone();
    assert_eq!(p["about"], "");
    assert_eq!(p["specialties"], json!([]));
    assert_eq!(app.count("profiles").await, 1);
    json_body(app.get_as("/api/profile", &me).await).await;
    assert_eq!(app.count("profiles").await, 1, "one per user");

    let update = json!({
        "about": "Psicóloga sanitaria", "specialties": ["ansiedad", "duelo"], "languages": ["es", "en"],
        "education": [{ "title": "Máster PGS", "institution": "UCM", "year": 2015 }],
        "rates": { "sessionPrice": 65.5, "currency": "EUR", "sessionDuration": 50 },
        "pricingPackages": [{ "name": "Bono 5", "sessions": 5, "price": 300, "description": "5 sesiones" }],
        "workLocations": [{ "name": "Consulta Centro", "city": "Madrid" }, { "name": "Online", "online": true }],
        "externalLinks": [{ "label": "Web", "url": "https://example.com" }],
    });
    let r = app.put_as("/api/profile", &me, &update).await;
    assert_eq!(r.status(), 200);
    let p = json_body(r).await["data"].clone();
    assert_eq!(p["rates"]["sessionPrice"], json!(65.5));
    // An over-long specialty is a 400 naming it, and the stored list stays as it was (before,
    // it was dropped silently and the list saved without it).
    let long = json!({ "specialties": ["ansiedad", "x".repeat(81)] });
    let r = app.put_as("/api/profile", &me, &long).await;
    let body = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["errors"][0]["field"], "specialties[1]");
    let now = json_body(app.get_as("/api/profile", &me).await).await["data"].clone();
    assert_eq!(now["specialties"], json!(["ansiedad", "duelo"]));
    assert_eq!(p["pricingPackages"][0]["price"], json!(300.0));
    assert_eq!(p["workLocations"][1]["online"], true);
    let stored = app
        .db
        .collection::<mongodb::bson::Document>("profiles")
        .find_one(mongodb::bson::doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored
            .get_document("rates")
            .unwrap()
            .get_i64("sessionPriceCents")
            .unwrap(),
        6550
    );

    for (bad, field) in [
        (
            json!({ "externalLinks": [{ "label": "x", "url": "not a url" }] }),
            "externalLinks[0].url",
        ),
        (json!({ "rates": { "sessionPrice": -1 } }), "rates.sessionPrice"),
        (json!({ "education": [{ "title": "" }] }), "education[0].title"),
        (json!({ "about": 5 }), "about"),
        (json!({ "unknownField": 1 }), "unknownField"),
    ] {
        let err = assert_error(
            app.put_as("/api/profile", &me, &bad).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        let fields: Vec<&str> = err["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.iter().any(|f| f.contains(field) || field.contains(f)),
            "{bad}: {err}"
        );
    }

    let user = json_body(app.get_as("/api/users/profile", &me).await).await["data"].clone();
    assert_eq!(user["user"]["role"], "terapeuta");
    assert_eq!(user["profile"]["about"], "Psicóloga sanitaria");
    let public = json_body(app.get(&format!("/api/profile/public/{}", me.id)).await).await["data"].clone();
    assert_eq!(public["profile"]["specialties"], json!(["ansiedad", "duelo"]));
    assert!(
        public.get("email").is_none(),
        "no private data on the public page"
    );
    let c = client_user(&app).await;
    assert_error(
        app.get(&format!("/api/profile/public/{}", c.id)).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(app.get_as("/api/profile", &c).await, 403, "FORBIDDEN").await;
}

fn local_today() -> chrono::NaiveDate {
    Utc::now().with_timezone(&chrono_tz::Europe::Madrid).date_naive()
}

#[tokio::test]
async fn dashboard_figures_equal_what_was_recorded() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let all_day = json!([{ "start": "00:00", "end": "24:00" }]);
    let week: serde_json::Map<String, Value> = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .map(|d| (d.to_string(), all_day.clone()))
    .collect();
    app.put_as(
        "/api/availability/schedule",
        &me,
        &json!({ "timezone": "Europe/Madrid", "weekly": week, "minNoticeHours": 0, "maxAdvanceDays": 365 }),
    )
    .await;
    let a = new_client(&app, &me, "Ana").await;
    let b = new_client(&app, &me, "Berta").await;
    let inactive = new_client(&app, &me, "Inés").await;
    app.delete_as(&format!("/api/clients/{inactive}"), &me).await;

    let today = local_today().format("%Y-%m-%d").to_string();
    let future = (local_today() + Duration::days(3)).format("%Y-%m-%d").to_string();
    let mk = |client: &str, date: &str, start: &str, end: &str| json!({ "clientId": client, "date": date, "startTime": start, "endTime": end, "amount": 60 });
    let ids: Vec<String> = {
        let mut v = Vec::new();
        for body in [
            mk(&a, &today, "00:00", "00:30"),
            mk(&b, &today, "00:30", "01:00"),
            mk(&a, &future, "10:00", "11:00"),
            mk(&b, &future, "12:00", "13:00"),
        ] {
            v.push(
                json_body(app.post_as("/api/bookings", &me, &body).await).await["data"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        v
    };
    app.put_as(&format!("/api/bookings/{}/complete", ids[0]), &me, &json!({}))
        .await;
    app.patch_as(&format!("/api/bookings/{}/cancel", ids[1]), &me, &json!({}))
        .await;
    for (amount, booking) in [(60, &ids[0]), (40, &ids[2])] {
        let r = app
            .post_as(
                "/api/payments",
                &me,
                &json!({ "amount": amount, "method": "cash", "clientId": a, "bookingId": booking }),
            )
            .await;
        assert_eq!(r.status(), 201);
    }

    let r = app.get_as("/api/dashboard", &me).await;
    assert_eq!(r.status(), 200);
    let d = json_body(r).await["data"].clone();
    let today_ids: Vec<&str> = d["todayBookings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(today_ids, vec![ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(d["todayBookings"][0]["client"]["name"], "Ana");
    assert_eq!(d["nextAppointment"]["id"], ids[2].as_str());
    assert_eq!(d["upcomingCount"], 2);
    assert_eq!(d["revenueThisMonth"], json!(100.0));
    assert_eq!(d["monthlyRevenue"].as_array().unwrap().len(), 12);
    assert_eq!(d["monthlyRevenue"][11]["revenue"], json!(100.0));
    assert_eq!(d["activeClients"], 2);
    assert_eq!(d["totalClients"], 3);
    assert_eq!(
        d["statusCounts"],
        json!({ "pending": 0, "upcoming": 2, "completed": 1, "cancelled": 1, "no_show": 0 })
    );
    assert_eq!(d["ratingAverage"], json!(0.0));
    // Booked: 30 min today + 2 h in 3 days if still this month, over 24 h × days in month.
    let occupancy = d["occupancyRate"].as_f64().unwrap();
    assert!(occupancy > 0.0 && occupancy < 1.0, "{occupancy}");
    let same = json_body(app.get_as("/api/dashboard/therapist", &me).await).await["data"].clone();
    assert_eq!(same["upcomingCount"], 2);
    let other = therapist(&app).await;
    let empty = json_body(app.get_as("/api/dashboard", &other).await).await["data"].clone();
    assert_eq!(
        (empty["upcomingCount"].as_i64(), empty["totalClients"].as_i64()),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn seed_loads_a_demo_practice_the_dashboard_shows() {
    let config = test_config(&[]);
    let run = |extra: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_dhara"));
        cmd.arg("seed")
            .args(["--clients", "5", "--months", "2", "--seed", "7"])
            .args(extra)
            .env("DHARA_ENV", "test")
            .env("DHARA_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
            .env("MONGODB_URI", mongodb_uri())
            .env("MONGODB_DATABASE", &config.mongodb.database)
            .env("REDIS_URL", "");
        cmd.output()
    };
    let out = run(&[]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("demo.therapist1@dhara.local"), "{stdout}");
    let again = run(&[]).await.unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("skipped"),
        "a second run adds nothing"
    );

    let app = spawn_with_config(config).await;
    app.wait_ready().await;
    let r = app
        .post_json(
            "/api/auth/login",
            &json!({ "email": "demo.therapist1@dhara.local", "password": "demo-password" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let session = json_body(r).await;
    let me = Caller {
        auth: bearer(&session),
        id: session["user"]["id"].as_str().unwrap().to_owned(),
        email: String::new(),
    };
    let d = json_body(app.get_as("/api/dashboard", &me).await).await["data"].clone();
    assert_eq!(d["totalClients"], 5);
    assert!(d["statusCounts"]["completed"].as_i64().unwrap() > 0, "{d}");
    assert!(d["upcomingCount"].as_i64().unwrap() > 0, "{d}");
    let revenue: f64 = d["monthlyRevenue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["revenue"].as_f64().unwrap())
        .sum();
    assert!(revenue > 0.0);
    let bookings = json_body(app.get_as("/api/bookings?limit=100", &me).await).await;
    let total = bookings["total"].as_u64().unwrap();
    assert!(total >= 10, "{total}");
    // Seeded bookings hold their time like any other.
    let upcoming =
        json_body(app.get_as("/api/bookings/upcoming?limit=1", &me).await).await["data"][0].clone();
    let clash = json!({ "clientId": upcoming["clientId"], "date": upcoming["date"], "startTime": upcoming["startTime"], "endTime": upcoming["endTime"] });
    assert_error(app.post_as("/api/bookings", &me, &clash).await, 409, "SLOT_TAKEN").await;
}

#[tokio::test]
async fn cancelling_through_a_status_update_also_notifies() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Estado").await;
    let body = json!({ "clientId": client, "date": "2031-02-20", "startTime": "10:00", "endTime": "11:00" });
    let id = json_body(app.post_as("/api/bookings", &me, &body).await).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .put_as(
            &format!("/api/bookings/{id}"),
            &me,
            &json!({ "status": "cancelled" }),
        )
        .await;
    assert_eq!(json_body(r).await["data"]["status"], "cancelled");
    let list = json_body(app.get_as("/api/notifications", &me).await).await["data"]["notifications"].clone();
    assert_eq!(list[0]["type"], "booking_cancelled");
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "created, then cancelled: one each"
    );
    assert_eq!(
        app.post_as("/api/bookings", &me, &body).await.status(),
        201,
        "the time is free again"
    );
}

/// Answering a review keeps the review as it was and shows the answer in the list; a review of
/// another therapist cannot be answered.
#[tokio::test]
async fn a_review_answer_is_shown_in_the_list_and_only_its_therapist_may_give_it() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let other = therapist(&app).await;
    let therapist_id = mongodb::bson::oid::ObjectId::parse_str(&me.id).unwrap();
    let now = mongodb::bson::DateTime::now();
    let id = mongodb::bson::oid::ObjectId::new();
    app.db
        .collection::<mongodb::bson::Document>("reviews")
        .insert_one(mongodb::bson::doc! {
            "_id": id, "therapistId": therapist_id, "clientId": mongodb::bson::oid::ObjectId::new(),
            "bookingId": mongodb::bson::oid::ObjectId::new(), "rating": 4, "comment": "Bien",
            "status": "published", "createdAt": now, "updatedAt": now,
        })
        .await
        .unwrap();
    let path = format!("/api/reviews/{id}/response");
    let answer = json!({ "response": "  Gracias  " });
    assert_error(app.post_as(&path, &other, &answer).await, 404, "NOT_FOUND").await;
    let r = app.post_as(&path, &me, &answer).await;
    assert_eq!(r.status(), 200);
    let v = json_body(r).await["data"].clone();
    assert_eq!(
        (v["rating"].clone(), v["response"]["text"].clone()),
        (json!(4), json!("Gracias"))
    );
    let list = json_body(app.get_as("/api/reviews", &me).await).await["data"].clone();
    assert_eq!(list["reviews"][0]["response"]["text"], "Gracias");
    assert_eq!(list["reviews"][0]["comment"], "Bien");
    let stats = json_body(app.get_as("/api/reviews/statistics", &me).await).await["data"].clone();
    assert_eq!(
        (stats["totalReviews"].clone(), stats["averageRating"].clone()),
        (json!(1), json!(4.0))
    );
}

#[tokio::test]
async fn a_profile_that_does_not_decode_fails_its_reads_instead_of_showing_empty() {
    // The profile is changed around the service (as a restore or a by-hand edit would), which
    // the response cache cannot hear of: read through.
    let app = spawn_app_with(&[("DHARA_CACHE__ENABLED", "false")]).await;
    let me = therapist(&app).await;
    assert_eq!(app.get_as("/api/profile", &me).await.status(), 200);
    let therapist_id = mongodb::bson::oid::ObjectId::parse_str(&me.id).unwrap();
    let profiles = app.db.collection::<mongodb::bson::Document>("profiles");
    // What the demo seed writes (locations without ids, rates without every price) reads back.
    profiles
        .update_one(
            mongodb::bson::doc! { "userId": therapist_id },
            mongodb::bson::doc! { "$set": {
                "rates": { "sessionPriceCents": 6000_i64, "currency": "EUR", "sessionDuration": 50 },
                "workLocations": [ { "name": "Consulta Chamberí", "city": "Madrid", "online": false } ],
            } },
        )
        .await
        .unwrap();
    let p = json_body(app.get_as("/api/profile", &me).await).await["data"].clone();
    assert_eq!(p["rates"]["sessionPrice"], json!(60.0));
    assert_eq!(
        p["workLocations"],
        json!([{ "name": "Consulta Chamberí", "city": "Madrid", "online": false }])
    );
    let listed = json_body(app.get_as("/api/work-locations/therapist", &me).await).await;
    assert_eq!(listed["data"]["locations"][0]["id"], "0");

    profiles
        .update_one(
            mongodb::bson::doc! { "userId": therapist_id },
            mongodb::bson::doc! { "$set": { "rates.sessionPriceCents": "sixty" } },
        )
        .await
        .unwrap();
    for path in [
        "/api/profile".to_owned(),
        "/api/work-locations/therapist".to_owned(),
        format!("/api/profile/public/{}", me.id),
    ] {
        let r = app.get_as(&path, &me).await;
        assert_eq!(r.status(), 500, "{path}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("sixty"), "the cause stays in the log: {text}");
    }
}
