//! Routes the therapist dashboard calls beyond the SPEC's core: session notes (also at
//! `/api/notes`), its client log shipping, work locations and the external-calendar status.

use serde_json::{json, Value};

use crate::helpers::*;

async fn note(app: &TestApp, who: &Caller, body: &Value) -> Value {
    let r = app.post_as("/api/session-notes", who, body).await;
    assert_eq!(r.status(), 201, "create note");
    json_body(r).await["data"].clone()
}

fn fields(err: &Value) -> Vec<String> {
    err["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn session_notes_are_the_therapists_own_listed_filtered_and_paged() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let ana = new_client(&app, &me, "Ana").await;
    let luis = new_client(&app, &me, "Luis").await;
    // What the dashboard's note form sends (therapistId is a placeholder it always sends).
    let form = json!({
        "title": "Primera sesión", "content": "Ansiedad ante exámenes", "clientId": ana,
        "therapistId": "68ce20c17931a40b74af366a", "noteType": "progress", "category": "therapy",
        "visibility": "shared", "priority": "normal", "status": "active", "isEmergency": false,
        "requiresResponse": false, "tags": ["ansiedad", " estudio "],
    });
    let first = note(&app, &me, &form).await;
    assert_eq!(first["clientId"], ana.as_str());
    assert_eq!(first["id"], first["_id"]);
    assert_eq!(first["content"], "Ansiedad ante exámenes");
    assert_eq!(
        first["notes"], first["content"],
        "the session-notes tab reads `notes`"
    );
    assert_eq!(first["visibility"], "private", "never shared with clients");
    assert_eq!(first["tags"], json!(["ansiedad", "estudio"]));
    assert!(first["createdAt"].as_str().is_some() && first["date"].as_str().is_some());
    for i in 0..3 {
        note(&app, &me, &json!({ "notes": format!("Seguimiento {i}"), "clientId": luis, "date": format!("2031-02-0{}", i + 1), "mood": 4 })).await;
    }

    // The client detail page: GET /api/notes?client_id&limit&sort_by&sort_order.
    let path = format!(
        "/api/notes?client_id={ana}&limit=50&sort_by=createdAt&sort_order=desc&author_type=therapist"
    );
    let body = json_body(app.get_as(&path, &me).await).await;
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["notes"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"]["notes"][0]["title"], "Primera sesión");
    assert_eq!(body["data"]["pagination"]["total"], 1);

    // GET /api/session-notes?page&limit&sort_by&sort_order&search= (empty search is no filter).
    let body = json_body(
        app.get_as(
            "/api/session-notes?page=1&limit=2&sort_by=createdAt&sort_order=desc&search=",
            &me,
        )
        .await,
    )
    .await;
    let p = &body["data"]["pagination"];
    assert_eq!(
        (p["current"].clone(), p["pages"].clone(), p["total"].clone()),
        (json!(1), json!(2), json!(4))
    );
    assert_eq!(body["data"]["hasMore"], true);
    let cursor = p["nextCursor"].as_str().expect("nextCursor").to_owned();
    let rest = json_body(
        app.get_as(&format!("/api/session-notes?limit=2&cursor={cursor}"), &me)
            .await,
    )
    .await;
    let mut seen: Vec<String> = body["data"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["data"]["notes"].as_array().unwrap())
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "keyset pages cover every note once");
    let found = json_body(
        app.get_as(
            &format!("/api/session-notes?search=SEGUIMIENTO%202&clientId={luis}"),
            &me,
        )
        .await,
    )
    .await;
    assert_eq!(found["data"]["notes"].as_array().unwrap().len(), 1);
    let by_date = json_body(
        app.get_as(
            &format!("/api/session-notes?clientId={luis}&sortBy=date&sortOrder=asc"),
            &me,
        )
        .await,
    )
    .await;
    assert!(
        by_date["data"]["notes"][0]["date"]
            .as_str()
            .unwrap()
            .starts_with("2031-02-01"),
        "{by_date}"
    );

    // Update and read back; delete removes for good.
    let id = first["id"].as_str().unwrap();
    let r = app
        .put_as(
            &format!("/api/session-notes/{id}"),
            &me,
            &json!({ "content": "Mejora clara", "priority": "high" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let got = json_body(app.get_as(&format!("/api/notes/{id}"), &me).await).await["data"].clone();
    assert_eq!(
        (
            got["content"].clone(),
            got["priority"].clone(),
            got["title"].clone()
        ),
        (json!("Mejora clara"), json!("high"), json!("Primera sesión"))
    );
    assert_eq!(
        app.delete_as(&format!("/api/session-notes/{id}"), &me)
            .await
            .status(),
        200
    );
    assert_error(
        app.get_as(&format!("/api/session-notes/{id}"), &me).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(app.count("session_notes").await, 3, "hard delete");
}

#[tokio::test]
async fn notes_of_bookings_name_their_client_and_date() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let ana = new_client(&app, &me, "Ana").await;
    let luis = new_client(&app, &me, "Luis").await;
    let booking = json!({ "clientId": ana, "date": "2031-03-04", "startTime": "10:00", "endTime": "11:00" });
    let r = app.post_as("/api/bookings", &me, &booking).await;
    assert_eq!(r.status(), 201);
    let booking = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let n = note(&app, &me, &json!({ "content": "Sesión", "sessionId": booking })).await;
    assert_eq!(
        (n["clientId"].clone(), n["bookingId"].clone()),
        (json!(ana), json!(booking))
    );
    assert!(n["date"].as_str().unwrap().starts_with("2031-03-04"), "{n}");
    let err = assert_error(
        app.post_as(
            "/api/session-notes",
            &me,
            &json!({ "content": "x", "clientId": luis, "bookingId": booking }),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(fields(&err), ["bookingId"]);
    let list = json_body(
        app.get_as(&format!("/api/session-notes?booking_id={booking}"), &me)
            .await,
    )
    .await;
    assert_eq!(list["data"]["total"], 1);
}

#[tokio::test]
async fn another_therapists_notes_and_clients_are_not_found_and_clients_are_refused() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let other = therapist(&app).await;
    let mine = new_client(&app, &me, "Ana").await;
    let theirs = new_client(&app, &other, "Eva").await;
    let n = note(&app, &me, &json!({ "content": "Privada", "clientId": mine })).await;
    let id = n["id"].as_str().unwrap();
    for path in [format!("/api/session-notes/{id}"), format!("/api/notes/{id}")] {
        assert_error(app.get_as(&path, &other).await, 404, "NOT_FOUND").await;
        assert_error(
            app.put_as(&path, &other, &json!({ "content": "x" })).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_error(app.delete_as(&path, &other).await, 404, "NOT_FOUND").await;
    }
    assert_error(
        app.get_as(&format!("/api/notes?client_id={mine}"), &other).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let theirs_list = json_body(app.get_as("/api/session-notes", &other).await).await;
    assert_eq!(theirs_list["data"]["total"], 0);
    let err = assert_error(
        app.post_as(
            "/api/session-notes",
            &me,
            &json!({ "content": "x", "clientId": theirs }),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(fields(&err), ["clientId"]);

    let c = client_user(&app).await;
    for path in [
        "/api/session-notes",
        "/api/notes",
        "/api/work-locations/therapist",
    ] {
        assert_error(app.get_as(path, &c).await, 403, "FORBIDDEN").await;
    }
    assert_error(
        app.get_as(&format!("/api/session-notes/{id}"), &c).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.get_as(
            &format!("/api/availability/{}/external-calendar-status", c.id),
            &c,
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/notes?client_id={mine}")).await.status(),
        401
    );
    assert_eq!(app.count("session_notes").await, 1);
}

#[tokio::test]
async fn bad_note_input_names_the_field_and_stores_nothing() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let ana = new_client(&app, &me, "Ana").await;
    for (bad, field) in [
        (json!({ "clientId": ana }), "content"),
        (json!({ "content": "   ", "clientId": ana }), "content"),
        (json!({ "content": "x" }), "clientId"),
        (json!({ "content": "x", "clientId": "CL001" }), "clientId"),
        (
            json!({ "content": "x", "clientId": ana, "bookingId": "nope" }),
            "bookingId",
        ),
        (
            json!({ "content": "x", "clientId": ana, "bookingId": "0123456789abcdef01234567" }),
            "bookingId",
        ),
        (
            json!({ "content": "x", "clientId": ana, "priority": "whenever" }),
            "priority",
        ),
        (
            json!({ "content": "x", "clientId": ana, "title": "t".repeat(201) }),
            "title",
        ),
        (json!({ "content": "x", "clientId": ana, "mood": 9 }), "mood"),
        (
            json!({ "content": "x", "clientId": ana, "date": "yesterday" }),
            "date",
        ),
        (
            json!({ "content": "x", "clientId": ana, "encrypted": true }),
            "encrypted",
        ),
    ] {
        let err = assert_error(
            app.post_as("/api/session-notes", &me, &bad).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert!(fields(&err).iter().any(|f| f.contains(field)), "{bad}: {err}");
    }
    for (query, param) in [
        ("client_id=nope", "client_id"),
        ("page=0", "page"),
        ("limit=abc", "limit"),
        ("sort_by=size", "sort_by"),
        ("sortOrder=sideways", "sortOrder"),
        ("cursor=garbage", "cursor"),
    ] {
        let err = assert_error(
            app.get_as(&format!("/api/session-notes?{query}"), &me).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert!(fields(&err).iter().any(|f| f.contains(param)), "{query}: {err}");
    }
    assert_eq!(app.count("session_notes").await, 0);
}

#[tokio::test]
async fn client_logs_are_accepted_bounded_and_rate_limited() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    // What the dashboard's logger posts: one entry.
    let entry = json!({
        "timestamp": "2031-01-01T10:00:00Z", "level": "ERROR", "message": "API Response",
        "type": "api_response", "status": 404, "sessionId": "session_1", "userAgent": "Chromium",
        "url": "http://localhost:5173/app/clientes",
    });
    let r = app.post_as("/api/logs", &me, &entry).await;
    assert_eq!(r.status(), 202);
    assert_eq!(json_body(r).await["success"], true);
    let r = app
        .post_as("/api/logs", &me, &json!({ "logs": [entry, entry] }))
        .await;
    assert_eq!(json_body(r).await["data"]["accepted"], 2);

    let too_many: Vec<Value> = (0..51).map(|_| entry.clone()).collect();
    let err = assert_error(
        app.post_as("/api/logs", &me, &json!(too_many)).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(fields(&err), ["body"]);
    let big = json!({ "level": "ERROR", "message": "x".repeat(70 * 1024) });
    assert_error(
        app.post_as("/api/logs", &me, &big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    let r = app
        .client
        .post(app.url("/api/logs"))
        .json(&entry)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "signed-in users only");

    let c = client_user(&app).await;
    assert_eq!(
        app.post_as("/api/logs", &c, &entry).await.status(),
        202,
        "any signed-in user"
    );
    let mut limited = None;
    for _ in 0..70 {
        let r = app.post_as("/api/logs", &me, &entry).await;
        if r.status() != 202 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a burst is cut off");
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, "RATE_LIMITED").await;
    assert_eq!(
        app.post_as("/api/logs", &c, &entry).await.status(),
        202,
        "limits are per user"
    );
    let names = app.db.list_collection_names().await.unwrap();
    assert!(
        !names.iter().any(|n| n.contains("log")),
        "logs are never stored: {names:?}"
    );
}

#[tokio::test]
async fn work_locations_come_from_the_profile_and_no_calendar_is_connected() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let profile = json!({ "workLocations": [
        { "name": "Consulta Centro", "address": "Calle Mayor 1", "city": "Madrid" },
        { "name": "Online", "online": true },
    ]});
    assert_eq!(app.put_as("/api/profile", &me, &profile).await.status(), 200);
    for path in [
        format!("/api/work-locations/therapist?therapistId={}&status=active&include_schedule=true&include_statistics=true&x=1", me.id),
        "/api/work-locations/therapist?therapistId=current".to_owned(),
    ] {
        let body = json_body(app.get_as(&path, &me).await).await;
        assert_eq!(body["data"]["total"], 2, "{body}");
        let first = &body["data"]["locations"][0];
        assert_eq!((first["name"].clone(), first["city"].clone(), first["address"].clone()), (json!("Consulta Centro"), json!("Madrid"), json!("Calle Mayor 1")));
        assert!(first["id"].as_str().is_some_and(|i| !i.is_empty()));
        assert_eq!(first["status"], "active");
    }
    let none = json_body(
        app.get_as("/api/work-locations/therapist?status=inactive", &me)
            .await,
    )
    .await;
    assert_eq!(none["data"]["total"], 0);
    let other = therapist(&app).await;
    let path = format!("/api/work-locations/therapist?therapistId={}", other.id);
    assert_error(app.get_as(&path, &me).await, 404, "NOT_FOUND").await;
    let err = assert_error(
        app.get_as("/api/work-locations/therapist?status=sometimes", &me)
            .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(fields(&err), ["status"]);

    for who in ["current".to_owned(), me.id.clone()] {
        let body = json_body(
            app.get_as(&format!("/api/availability/{who}/external-calendar-status"), &me)
                .await,
        )
        .await;
        assert_eq!(body["data"]["connected"], false);
        assert_eq!(body["data"]["provider"], Value::Null);
    }
    let path = format!("/api/availability/{}/external-calendar-status", other.id);
    assert_error(app.get_as(&path, &me).await, 404, "NOT_FOUND").await;
}

/// What the dashboard's profile page sends on save (`useProfessionalProfile.saveProfile`).
fn dashboard_profile() -> Value {
    json!({
        "about": "Psicóloga sanitaria", "specialties": ["Ansiedad", "Duelo"],
        "videoPresentation": { "url": "https://cdn.example.com/v.mp4", "title": "Presentación Personal", "description": "Mi enfoque" },
        "externalLinks": [{ "id": 1712345678901_u64, "type": "linkedin", "label": "LinkedIn", "url": "https://linkedin.com/in/ana" }],
        "featuredTestimonials": [{ "id": "r1", "clientName": "Eva", "rating": 5, "comment": "Gracias", "date": "2031-01-01", "verified": true, "status": "published", "client": { "name": "Eva" } }],
        "experience": [{ "id": 1712345678902_u64, "position": "Psicóloga clínica", "company": "Hospital La Fe", "location": "Valencia",
            "startDate": "2019-09", "endDate": null, "isCurrent": true, "description": "Adultos", "achievements": ["Protocolo nuevo"] }],
        "workLocations": [{ "id": 1712345678903_u64, "name": "Centro Valencia", "address": "Calle Mayor 1", "city": "Valencia",
            "postalCode": "46001", "phone": "", "email": "", "isPrimary": true,
            "schedule": { "monday": { "enabled": true, "start": "09:00", "end": "17:00" }, "sunday": { "enabled": false, "start": "09:00", "end": "14:00" } } }],
        "pricingPackages": { "packages": [{ "id": 1712345678904_u64, "name": "Bono 4", "description": "4 sesiones", "sessions": 4,
            "originalPrice": 240, "discountedPrice": 200, "validityDays": 90, "isActive": true, "features": ["Online"] }], "coupons": [] },
        "rates": { "sessionPrice": "60", "followUpPrice": "", "packagePrice": "200", "coupleSessionPrice": "80.5", "currency": "EUR",
            "customRates": { "currency": "EUR", "sessions": [{ "id": "session_1", "type": "individual", "name": "Sesión Individual", "duration": 50, "price": 60, "description": "Individual" }],
                "packages": [{ "id": "package_1", "name": "Pack 4", "sessions": 4, "sessionType": "individual", "price": 200, "description": "Pack" }] } },
        "isAvailable": false,
        "legalInfo": { "licenses": [{ "id": 1712345678905_u64, "type": "Colegio Oficial de Psicólogos", "number": "M-12345", "issuingBody": "COP Madrid", "expiryDate": "", "status": "active" }],
            "professionalRegistration": "M-12345", "ethicsCode": "Código Deontológico del COP", "insuranceCoverage": "Mapfre 123", "dataProtectionCompliance": true },
        "credentials": [{ "id": "edu_1", "title": "Máster PGS", "institution": "UCM", "year": "2015", "description": "" }],
        "banner": "https://cdn.example.com/banner.jpg",
    })
}

#[tokio::test]
async fn profile_edits_the_dashboard_sends_are_stored_and_shown() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let r = app.put_as("/api/profile", &me, &dashboard_profile()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let p = json_body(app.get_as("/api/profile", &me).await).await["data"].clone();
    assert_eq!(p["videoPresentation"]["url"], "https://cdn.example.com/v.mp4");
    assert_eq!(p["featuredTestimonials"][0]["clientName"], "Eva");
    assert!(
        p["featuredTestimonials"][0].get("status").is_none(),
        "only what a testimonial shows"
    );
    assert_eq!(p["experience"][0]["position"], "Psicóloga clínica");
    assert_eq!(p["experience"][0]["id"], "1712345678902");
    assert_eq!(p["isAvailable"], false);
    assert_eq!(p["legalInfo"]["licenses"][0]["number"], "M-12345");
    assert_eq!(p["legalInfo"]["dataProtectionCompliance"], true);
    assert_eq!(p["credentials"][0]["year"], 2015);
    assert_eq!(p["banner"], "https://cdn.example.com/banner.jpg");
    assert_eq!(p["workLocations"][0]["schedule"]["monday"]["start"], "09:00");
    assert_eq!(p["workLocations"][0]["isPrimary"], true);
    assert_eq!(p["externalLinks"][0]["type"], "linkedin");
    assert_eq!(p["pricingPackages"][0]["price"], json!(200.0));
    assert_eq!(p["pricingPackages"][0]["originalPrice"], json!(240.0));
    assert_eq!(p["rates"]["sessionPrice"], json!(60.0));
    assert_eq!(p["rates"]["followUpPrice"], Value::Null);
    assert_eq!(p["rates"]["coupleSessionPrice"], json!(80.5));
    assert_eq!(p["rates"]["customRates"]["sessions"][0]["price"], json!(60.0));
    let public =
        json_body(app.get(&format!("/api/profile/public/{}", me.id)).await).await["data"]["profile"].clone();
    for key in [
        "videoPresentation",
        "featuredTestimonials",
        "experience",
        "legalInfo",
        "credentials",
        "banner",
    ] {
        assert_eq!(public[key], p[key], "{key} is public");
    }
    let locations = json_body(app.get_as("/api/work-locations/therapist", &me).await).await;
    assert_eq!(locations["data"]["locations"][0]["id"], "1712345678903");
    // Saving what was read back (the dashboard's round trip) is accepted too.
    let mut again = dashboard_profile();
    again["pricingPackages"] = p["pricingPackages"].clone();
    again["banner"] = Value::Null;
    assert_eq!(app.put_as("/api/profile", &me, &again).await.status(), 200);
    let p = json_body(app.get_as("/api/profile", &me).await).await["data"].clone();
    assert_eq!(p["banner"], Value::Null, "null removes the banner");
}

#[tokio::test]
async fn bad_profile_edits_name_the_field_and_change_nothing() {
    let app = spawn_app_with(&[
        ("DHARA_ENV", "production"),
        (
            "JWT_SECRET",
            "a-production-secret-of-enough-length-for-the-check-0123456789",
        ),
    ])
    .await;
    let me = therapist(&app).await;
    assert_eq!(
        app.put_as("/api/profile", &me, &dashboard_profile())
            .await
            .status(),
        200
    );
    let before = json_body(app.get_as("/api/profile", &me).await).await["data"].clone();
    for (bad, field) in [
        (json!({ "banner": "javascript:alert(1)" }), "banner"),
        (json!({ "banner": "http://cdn.example.com/b.jpg" }), "banner"),
        (
            json!({ "videoPresentation": { "url": "http://cdn.example.com/v.mp4" } }),
            "videoPresentation.url",
        ),
        (
            json!({ "videoPresentation": { "url": "ftp://x" } }),
            "videoPresentation.url",
        ),
        (
            json!({ "videoPresentation": { "autoplay": true } }),
            "videoPresentation.autoplay",
        ),
        (
            json!({ "featuredTestimonials": [{ "id": "1" }, { "id": "2" }, { "id": "3" }, { "id": "4" }] }),
            "featuredTestimonials",
        ),
        (
            json!({ "featuredTestimonials": [{ "id": "1", "rating": 9 }] }),
            "featuredTestimonials[0].rating",
        ),
        (
            json!({ "experience": [{ "position": "", "startDate": "2019-09" }] }),
            "experience[0].position",
        ),
        (
            json!({ "experience": [{ "position": "x", "startDate": "last year" }] }),
            "experience[0].startDate",
        ),
        (json!({ "isAvailable": "yes" }), "isAvailable"),
        (
            json!({ "legalInfo": { "licenses": [{ "type": "COP", "number": "1", "status": "revoked" }] } }),
            "legalInfo.licenses[0].status",
        ),
        (
            json!({ "credentials": [{ "title": "Máster", "year": "1800" }] }),
            "credentials[0].year",
        ),
        (
            json!({ "workLocations": [{ "name": "C", "schedule": { "monday": { "enabled": true, "start": "9", "end": "17:00" } } }] }),
            "workLocations[0].schedule.monday.start",
        ),
        (
            json!({ "workLocations": [{ "name": "C", "email": "not-an-email" }] }),
            "workLocations[0].email",
        ),
        (
            json!({ "pricingPackages": { "packages": [{ "name": "B", "sessions": 4 }] } }),
            "pricingPackages[0].price",
        ),
        (json!({ "rates": { "currency": "MXN" } }), "rates.currency"),
        (
            json!({ "externalLinks": [{ "label": "x", "url": "https://x.example", "type": "myspace" }] }),
            "externalLinks[0].type",
        ),
        (json!({ "portfolio": [] }), "portfolio"),
    ] {
        let err = assert_error(
            app.put_as("/api/profile", &me, &bad).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert!(
            fields(&err)
                .iter()
                .any(|f| f.contains(field) || field.contains(f.as_str())),
            "{bad}: {err}"
        );
    }
    let after = json_body(app.get_as("/api/profile", &me).await).await["data"].clone();
    assert_eq!(before, after, "refused edits change nothing");
}

#[tokio::test]
async fn a_note_moved_to_another_client_cannot_keep_the_first_clients_booking() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let ana = new_client(&app, &me, "Ana").await;
    let luis = new_client(&app, &me, "Luis").await;
    let anas = new_booking(&app, &me, &ana, "2031-03-03").await;
    let luiss = new_booking(&app, &me, &luis, "2031-03-04").await;
    let n = note(
        &app,
        &me,
        &json!({ "notes": "Sesión", "clientId": ana, "bookingId": anas }),
    )
    .await;
    let path = format!("/api/session-notes/{}", n["id"].as_str().unwrap());

    let r = app.put_as(&path, &me, &json!({ "clientId": luis })).await;
    assert_eq!(r.status(), 400);
    assert_eq!(fields(&json_body(r).await), ["clientId"]);
    let got = json_body(app.get_as(&path, &me).await).await["data"].clone();
    assert_eq!(
        (got["clientId"].as_str(), got["bookingId"].as_str()),
        (Some(ana.as_str()), Some(anas.as_str())),
        "unchanged"
    );

    // With a booking of the new client, the move is whole.
    let r = app
        .put_as(&path, &me, &json!({ "clientId": luis, "bookingId": luiss }))
        .await;
    assert_eq!(r.status(), 200);
    let got = json_body(app.get_as(&path, &me).await).await["data"].clone();
    assert_eq!(
        (got["clientId"].as_str(), got["bookingId"].as_str()),
        (Some(luis.as_str()), Some(luiss.as_str()))
    );
}
