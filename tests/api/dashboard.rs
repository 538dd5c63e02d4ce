//! The real therapist dashboard as a client (`../shared/DASHBOARD.md`): how it signs in and
//! stays signed in, the query vocabulary it sends and the fields it reads.

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::*;

/// The payload of a JWT, as the dashboard's token manager decodes it (three parts or refused).
fn jwt_payload(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {token}");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

#[tokio::test]
async fn the_dashboard_signs_in_and_stays_signed_in_for_two_hours_of_refreshes() {
    let app = spawn_app().await;
    let (email, password, _) = register_therapist(&app).await;
    let login = json!({ "email": email, "password": password, "rememberMe": true, "userType": "terapeuta" });
    let mut session = json_body(app.post_json("/api/auth/login", &login).await).await;
    assert_eq!(session["success"], true);
    assert_eq!(session["user"]["role"], "terapeuta");
    // Two hours of use: the dashboard refreshes at `exp - 15 min` of each access token.
    let mut used = Vec::new();
    for _ in 0..8 {
        let access = jwt_payload(session["accessToken"].as_str().unwrap());
        let refresh = jwt_payload(session["refreshToken"].as_str().unwrap());
        let lifetime = access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap();
        assert!(
            lifetime > 15 * 60,
            "a refresh is scheduled at exp - 15 min: lifetime {lifetime}s"
        );
        assert!(refresh["exp"].as_i64().unwrap() > access["exp"].as_i64().unwrap());
        assert!(
            refresh.get("role").is_none(),
            "a refresh token is no access token"
        );
        let me = app
            .client
            .get(app.url("/api/auth/me"))
            .header("Authorization", bearer(&session))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        let refresh_token = session["refreshToken"].as_str().unwrap().to_owned();
        // A refresh token never opens a route.
        let r = app
            .client
            .get(app.url("/api/auth/me"))
            .header("Authorization", format!("Bearer {refresh_token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        used.push(refresh_token.clone());
        let r = app
            .post_json("/api/auth/refresh", &json!({ "refreshToken": refresh_token }))
            .await;
        assert_eq!(r.status(), 200);
        session = json_body(r).await;
    }
    // Rotation and reuse detection hold with JWT-shaped tokens: an old one ends the family.
    let r = app
        .post_json("/api/auth/refresh", &json!({ "refreshToken": used[0] }))
        .await;
    assert_error(r, 401, "TOKEN_REUSED").await;
    let r = app
        .post_json(
            "/api/auth/refresh",
            &json!({ "refreshToken": session["refreshToken"] }),
        )
        .await;
    assert_eq!(r.status(), 401, "the whole family was revoked");
}

fn booking(client: &str, date: &str, start: &str, end: &str, amount: f64) -> Value {
    json!({ "clientId": client, "date": date, "startTime": start, "endTime": end, "amount": amount })
}

async fn data_of(app: &TestApp, path: &str, who: &Caller) -> Value {
    let r = app.get_as(path, who).await;
    let status = r.status();
    let body = json_body(r).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn the_dashboard_query_vocabulary_is_understood_and_malformed_values_still_refused() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let ana = new_client(&app, &me, "Ana").await;
    let luis = new_client(&app, &me, "Luis").await;
    for (c, d, s) in [
        (&ana, "2031-03-03", "10:00"),
        (&luis, "2031-03-04", "09:00"),
        (&ana, "2031-03-05", "12:00"),
    ] {
        let end = format!("{}:00", s[..2].parse::<u32>().unwrap() + 1);
        let r = app
            .post_as("/api/bookings", &me, &booking(c, d, s, &end, 60.0))
            .await;
        assert_eq!(r.status(), 201);
    }
    // Bookings: sortBy=dateTime, status=all, the caller's own therapistId, ISO instants.
    let q = format!(
        "/api/bookings?therapistId={}&status=all&sortBy=dateTime&sortOrder=desc&date_from=2031-03-03T23:30:00.000Z&date_to=2031-03-31&page=1&limit=20&include_statistics=false",
        me.id
    );
    let list = data_of(&app, &q, &me).await;
    let dates: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        ["2031-03-05", "2031-03-04"],
        "23:30 UTC on the 3rd is the 4th in Madrid"
    );
    let q = "/api/bookings/statistics?therapistId=current&startDate=2031-03-03T23:30:00.000Z&endDate=2031-03-31&group_by=day";
    assert_eq!(data_of(&app, q, &me).await["data"]["totalBookings"], 2);
    let q = format!("/api/bookings?client_id={ana}&sort_by=dateTime&sort_order=asc");
    let mine = data_of(&app, &q, &me).await;
    assert_eq!(mine["total"], 2);
    let first = &mine["data"][0];
    let pay = json!({ "amount": 60, "method": "card", "clientId": ana, "bookingId": first["id"] });
    assert_eq!(app.post_as("/api/payments", &me, &pay).await.status(), 201);
    let first = data_of(&app, &q, &me).await["data"][0].clone();
    for key in [
        "id",
        "_id",
        "date",
        "startTime",
        "endTime",
        "clientId",
        "client",
        "clientName",
        "type",
        "therapyType",
        "duration",
        "therapyDuration",
        "status",
        "amount",
        "currency",
        "paymentStatus",
        "paymentMethod",
        "locationId",
        "notes",
        "meetingLink",
        "createdAt",
    ] {
        assert!(first.get(key).is_some(), "booking rows carry `{key}`: {first}");
    }
    assert_eq!(first["clientName"], "Ana");
    assert_eq!(first["paymentMethod"], "card");
    assert_eq!(first["paymentStatus"], "paid");
    let other = therapist(&app).await;
    let q = format!("/api/bookings?therapistId={}", other.id);
    assert_eq!(
        app.get_as(&q, &me).await.status(),
        404,
        "another therapist's id is not probed"
    );
    for (q, field) in [
        ("/api/bookings?status=maybe", "status"),
        ("/api/bookings?sortBy=colour", "sortBy"),
        ("/api/bookings?date_from=tomorrow", "startDate"),
        ("/api/clients?status=sometimes", "status"),
        ("/api/payments?payer_id=nope", "clientId"),
        ("/api/notifications?unread_only=perhaps", "unread_only"),
    ] {
        let body = assert_error(app.get_as(q, &me).await, 400, "VALIDATION_ERROR").await;
        assert_eq!(body["errors"][0]["field"], field, "{q}: {body}");
    }
    // Clients: status=all, empty search and tags, snake_case sort, and the history per row.
    let q = "/api/clients?page=1&limit=20&sort_by=createdAt&sort_order=desc&include_statistics=true&search=&status=all&tags=";
    let clients = data_of(&app, q, &me).await;
    let rows = clients["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(
            row.get("lastSession").is_some() && row["sessionsCount"].is_i64() && row.get("rating").is_some(),
            "{row}"
        );
    }
}

#[tokio::test]
async fn payments_as_the_dashboard_reads_them() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let ana = new_client(&app, &me, "Ana").await;
    let luis = new_client(&app, &me, "Luis").await;
    for (c, amount) in [(&ana, 50), (&ana, 30), (&luis, 70)] {
        let p = json!({ "amount": amount, "method": "card", "clientId": c });
        assert_eq!(app.post_as("/api/payments", &me, &p).await.status(), 201);
    }
    let providers = data_of(&app, "/api/payments/providers", &me).await;
    assert!(providers["data"]["providers"].as_array().unwrap().len() >= 5);
    let q = format!(
        "/api/payments?payer_id={ana}&page=1&limit=10&sort_by=date&sort_order=desc&include_statistics=false"
    );
    let page = data_of(&app, &q, &me).await;
    assert_eq!(page["data"]["total"], 2, "only the payer's: {page}");
    for p in page["data"]["payments"].as_array().unwrap() {
        assert_eq!(p["client"]["name"], "Ana");
        assert!(p["client"].get("email").is_some());
    }
    let now = chrono::Utc::now();
    let q = format!(
        "/api/payments?date_from={}&date_to={}",
        (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        (now + chrono::Duration::hours(2)).to_rfc3339()
    );
    assert_eq!(
        data_of(&app, &q, &me).await["data"]["total"],
        0,
        "the date filters are applied"
    );
    let q = format!(
        "/api/payments/statistics?date_from={}&date_to={}&group_by=day&include_projections=true&include_comparisons=true",
        (now - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        (now + chrono::Duration::minutes(1)).to_rfc3339()
    );
    let stats = data_of(&app, &q, &me).await["data"].clone();
    assert_eq!(stats["totalRevenue"], json!(150.0));
    assert_eq!(stats["transactions"], 3);
    assert!(stats["trends"]["revenue"].is_number(), "{stats}");
    assert_eq!(
        stats["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["count"].as_i64().unwrap())
            .sum::<i64>(),
        3
    );
}

#[tokio::test]
async fn reviews_and_notifications_as_the_dashboard_reads_them() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let c = client_user(&app).await;
    let r = app
        .post_as(
            "/api/clients",
            &me,
            &json!({ "name": "Reseñadora", "email": c.email }),
        )
        .await;
    let record = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &booking(&record, "2031-01-20", "10:00", "11:00", 60.0),
        )
        .await;
    let booking_id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    app.put_as(&format!("/api/bookings/{booking_id}/complete"), &me, &json!({}))
        .await;
    let r = app
        .post_as(
            "/api/reviews/create",
            &c,
            &json!({ "bookingId": booking_id, "rating": 5 }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let q = format!("/api/reviews?status=approved&moderationStatus=all&reviewerId={record}&therapistId={}&dateFrom=2020-01-01T00:00:00.000Z&page=1&limit=1000&sortBy=createdAt&sortOrder=desc&includeHidden=false", me.id);
    let reviews = data_of(&app, &q, &me).await;
    let review = reviews["data"]["reviews"][0].clone();
    assert_eq!(reviews["data"]["pagination"]["total"], 1);
    assert!(review.get("response").is_none(), "no `response: null`: {review}");
    assert_eq!(review["client"]["name"], "Reseñadora");
    let other = new_client(&app, &me, "Nadie").await;
    let q = format!("/api/reviews?reviewerId={other}");
    assert_eq!(
        data_of(&app, &q, &me).await["data"]["pagination"]["total"],
        0,
        "filtered by reviewer"
    );
    let id = review["id"].as_str().unwrap();
    let r = app
        .post_as(
            &format!("/api/reviews/{id}/responses"),
            &me,
            &json!({ "response": "¡Gracias!" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let reviews = data_of(&app, "/api/reviews", &me).await;
    assert_eq!(reviews["data"]["reviews"][0]["response"]["text"], "¡Gracias!");

    // Notifications: totals, plain string ids, Spanish by default and English on request.
    let q = "/api/notifications?unread_only=false&page=1&limit=20&sort_by=createdAt&sort_order=desc";
    let list = data_of(&app, q, &me).await["data"].clone();
    assert!(list["total"].as_u64().unwrap() >= 2, "{list}");
    assert_eq!(list["unreadCount"], list["total"]);
    assert_eq!(list["hasMore"], false);
    let first = &list["notifications"][0];
    assert_eq!(first["type"], "review_received");
    assert!(first["data"]["reviewId"].is_string(), "{first}");
    assert_eq!(first["title"], "Nueva reseña");
    let r = app
        .client
        .get(app.url(q))
        .header("Authorization", &me.auth)
        .header("Accept-Language", "en-GB,en;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_body(r).await["data"]["notifications"][0]["title"],
        "New review"
    );
    let unread = data_of(&app, "/api/notifications?isRead=true", &me).await;
    assert_eq!(unread["data"]["total"], 0);
}

/// The JSON type of a value, for the contract table.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value at a `/`-separated path (`data/payments/0/client/name`).
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/')
        .filter(|p| !p.is_empty())
        .try_fold(v, |v, p| match p.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(p),
        })
}

/// Every request of DASHBOARD.md's page table for the pages in scope, replayed against the real
/// app with the demo practice loaded: each answers 200 with the fields the dashboard reads, of
/// the type it reads them as. (Subscriptions are out of scope.)
#[tokio::test]
async fn every_dashboard_page_request_answers_with_what_the_page_reads() {
    let app = spawn_app().await;
    app.wait_ready().await;
    let state = dhara::AppState::build(app.config.clone(), tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let opts = dhara::seed::SeedOptions {
        therapists: 1,
        clients: 6,
        months: 3,
        seed: 11,
        password: "demo-password".into(),
    };
    dhara::seed::seed(&state, &opts).await.unwrap();
    let login = json!({ "email": "demo.therapist1@dhara.local", "password": "demo-password", "rememberMe": true, "userType": "terapeuta" });
    let session = json_body(app.post_json("/api/auth/login", &login).await).await;
    let me = Caller {
        auth: bearer(&session),
        id: session["user"]["id"].as_str().unwrap().to_owned(),
        email: String::new(),
    };
    let clients = json_body(app.get_as("/api/clients?limit=100", &me).await).await;
    let client = clients["data"][0]["id"].as_str().unwrap().to_owned();
    let today = chrono::Utc::now();
    let iso =
        |d: i64| (today + chrono::Duration::days(d)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let day = |d: i64| (today + chrono::Duration::days(d)).format("%Y-%m-%d").to_string();
    let t = &me.id;
    // The documents page's upload, as its form sends it (the answer carries data.documentId).
    let pdf = crate::documents::pdf_bytes(4096, 1);
    crate::documents::stored(
        &app,
        &me,
        "ejercicios.pdf",
        pdf,
        &[
            ("title", "Ejercicios"),
            ("category", "educational"),
            ("clientId", &client),
            ("session", ""),
            ("tags", "[\"ansiedad\"]"),
            ("visibility", "therapist_only"),
            ("isConfidential", "true"),
        ],
    )
    .await;
    let rows: Vec<(String, Vec<(&str, &str)>)> = vec![
        // dashboard
        ("/api/payments/providers".into(), vec![("data/providers", "array")]),
        (format!("/api/payments?date_from={}&date_to={}&page=1&limit=10&sort_by=createdAt&sort_order=desc&include_statistics=false", iso(-90), iso(1)),
            vec![("data/payments", "array"), ("data/total", "number"), ("data/payments/0/client/name", "string"), ("data/payments/0/client/email", "string")]),
        (format!("/api/payments/statistics?date_from={}&date_to={}&group_by=month&include_projections=true&include_comparisons=true", iso(-365), iso(0)),
            vec![("data/totalRevenue", "number"), ("data/trends", "object"), ("data/transactions", "number")]),
        (format!("/api/payments/statistics?date_from={}&date_to={}&group_by=day", iso(-30), iso(0)), vec![("data/totalRevenue", "number")]),
        ("/api/reviews/statistics?groupBy=rating".into(), vec![("data/totalReviews", "number"), ("data/averageRating", "number"), ("data/ratingDistribution", "object")]),
        (format!("/api/reviews?status=approved&dateFrom={}&page=1&limit=10&sortBy=createdAt&sortOrder=desc&includeHidden=false", iso(-365)),
            vec![("data/reviews", "array"), ("data/pagination/total", "number"), ("data/reviews/0/client/name", "string"), ("data/reviews/0/rating", "number"), ("data/reviews/0/createdAt", "string")]),
        // profile
        ("/api/profile".into(), vec![("data", "object")]),
        ("/api/users/profile".into(), vec![("data", "object")]),
        ("/api/bookings/statistics?therapistId=current&group_by=day&include_revenue=true&include_no_shows=true&include_cancellations=true".into(),
            vec![("data/totalBookings", "number"), ("data/statusCounts", "object")]),
        // availability
        (format!("/api/availability/therapist/{t}/blocks?startDate={}&endDate={}", day(-30), day(90)), vec![("", "array"), ("0/type", "string"), ("0/startTime", "string"), ("0/endTime", "string"), ("0/startDate", "string")]),
        (format!("/api/availability/calendar/events?startDate={}&endDate={}&view=week", day(-60), day(63)), vec![("data", "any")]),
        (format!("/api/bookings?therapistId={t}&startDate={}&endDate={}&page=1&limit=100&sortBy=dateTime&sortOrder=asc", day(-30), day(30)),
            vec![("data", "array"), ("data/0/date", "string"), ("data/0/startTime", "string"), ("data/0/endTime", "string"), ("data/0/client/name", "string"), ("data/0/status", "string")]),
        (format!("/api/availability/analysis/occupancy?startDate={}&endDate={}", day(-30), day(30)), vec![("data/totalAvailableHours", "number")]),
        // bookings
        ("/api/bookings?page=1&limit=20&sortBy=dateTime&sortOrder=asc".into(), vec![("data", "array"), ("total", "number"), ("pagination/totalPages", "number")]),
        // clients
        ("/api/clients?page=1&limit=20&sort_by=createdAt&sort_order=desc&include_statistics=true&search=&status=all&tags=".into(),
            vec![("data", "array"), ("data/0/name", "string"), ("data/0/sessionsCount", "number"), ("pagination/totalItems", "number")]),
        // client detail
        (format!("/api/bookings?clientId={client}&page=1&limit=50&sortBy=dateTime&sortOrder=desc"), vec![("data", "array")]),
        (format!("/api/payments?payer_id={client}&page=1&limit=20"), vec![("data/payments", "array"), ("data/total", "number")]),
        (format!("/api/reviews?reviewerId={client}&page=1&limit=20"), vec![("data/reviews", "array")]),
        (
            "/api/session-notes?page=1&limit=20&sort_by=createdAt&sort_order=desc&search=".into(),
            vec![("data/notes", "array"), ("data/notes/0/content", "string"), ("data/notes/0/clientId", "string")],
        ),
        (format!("/api/notes?client_id={client}&limit=20&sort_by=createdAt&sort_order=desc"), vec![("data/notes", "array")]),
        (
            format!("/api/work-locations/therapist?therapistId={t}&status=active&include_schedule=true&include_statistics=true"),
            vec![("data/locations", "array"), ("data/total", "number")],
        ),
        (format!("/api/availability/{t}/external-calendar-status"), vec![("data", "object")]),
        // reviews
        (format!("/api/reviews?limit=1000&therapistId={t}"), vec![("data/reviews", "array")]),
        (format!("/api/reviews?limit=1000&therapistId={t}&moderationStatus=all"), vec![("data/reviews", "array")]),
        // payments
        ("/api/payments?page=1&limit=10&sort_by=date&sort_order=desc".into(), vec![("data/payments", "array"), ("data/payments/0/client/name", "string")]),
        ("/api/clients?page=1&limit=100&status=active".into(), vec![("data", "array")]),
        // documents
        ("/api/documents?page=1&limit=20&sortBy=uploadedAt&sortOrder=desc&includeDeleted=false".into(),
            vec![("data/documents", "array"), ("data/pagination/total", "number"), ("data/documents/0/id", "string"), ("data/documents/0/title", "string"),
                 ("data/documents/0/filename", "string"), ("data/documents/0/type", "string"), ("data/documents/0/size", "number"),
                 ("data/documents/0/tags", "array"), ("data/documents/0/createdAt", "string"), ("data/documents/0/clientName", "string")]),
        ("/api/documents/statistics?groupBy=category".into(), vec![("data/totalDocuments", "number"), ("data/totalSize", "number"), ("data/byCategory", "object")]),
        // notifications
        ("/api/notifications?unread_only=false&page=1&limit=20&sort_by=createdAt&sort_order=desc".into(),
            vec![("data/notifications", "array"), ("data/total", "number"), ("data/unreadCount", "number"), ("data/hasMore", "bool"), ("data/notifications/0/data/bookingId", "string")]),
    ];
    let mut wrong = Vec::new();
    for (path, fields) in &rows {
        let r = app.get_as(path, &me).await;
        let status = r.status();
        let body = json_body(r).await;
        if status != 200 {
            wrong.push(format!("{path}: {status} {body}"));
            continue;
        }
        for (field, want) in fields {
            match at(&body, field) {
                Some(v) if *want == "any" || kind(v) == *want => {}
                got => wrong.push(format!("{path}: `{field}` should be {want}, is {got:?}")),
            }
        }
    }
    // The reviews page answers with `response` absent rather than null.
    let reviews = json_body(app.get_as("/api/reviews?limit=100", &me).await).await;
    for r in reviews["data"]["reviews"].as_array().unwrap() {
        if r.get("response").is_some_and(Value::is_null) {
            wrong.push(format!("a review with `response: null`: {r}"));
        }
    }
    // The seed exercises every state a page shows: a partly refunded payment, blocks of both types.
    let payments = json_body(
        app.get_as("/api/payments?limit=100&status=partially_refunded", &me)
            .await,
    )
    .await;
    if payments["data"]["total"] == 0 {
        wrong.push("no partly refunded payment in the demo practice".into());
    }
    let blocks = json_body(
        app.get_as(
            &format!(
                "/api/availability/therapist/{t}/blocks?startDate={}&endDate={}",
                day(0),
                day(30)
            ),
            &me,
        )
        .await,
    )
    .await;
    for want in ["availability", "unavailable"] {
        if !blocks
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["type"] == want && b["source"] != "schedule"))
        {
            wrong.push(format!("no {want} block in the demo practice"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of the dashboard's reads differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
