//! Clients: CRUD, search and filters, uniqueness, soft delete, stats, tags, invitations.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn create_get_update_and_list_clients() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let body = json!({
        "name": "Lucía Fernández", "email": "Lucia@Example.com", "phone": "+34 600 123 456", "age": 34,
        "address": "Calle Mayor 1, Madrid", "emergencyContact": { "name": "Pedro", "phone": "600999888", "relationship": "brother" },
        "notes": "Prefers mornings", "tags": ["anxiety", "online", "anxiety"], "preferences": { "reminderHours": [48, 2] },
    });
    let r = app.post_as("/api/clients", &me, &body).await;
    assert_eq!(r.status(), 201);
    let c = json_body(r).await["data"].clone();
    assert_eq!(c["id"], c["_id"]);
    assert_eq!(c["email"], "lucia@example.com");
    assert_eq!(c["tags"], json!(["anxiety", "online"]));
    assert_eq!(c["status"], "active");
    assert_eq!(c["preferences"]["reminderHours"], json!([48, 2]));
    let id = c["id"].as_str().unwrap();

    let got = json_body(app.get_as(&format!("/api/clients/{id}"), &me).await).await;
    assert_eq!(got["data"]["name"], "Lucía Fernández");
    assert_eq!(got["data"]["recentBookings"], json!([]));

    let r = app
        .put_as(
            &format!("/api/clients/{id}"),
            &me,
            &json!({ "notes": "Evenings now", "tags": ["trauma"] }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let u = json_body(r).await["data"].clone();
    assert_eq!(u["notes"], "Evenings now");
    assert_eq!(u["phone"], "+34 600 123 456", "untouched fields stay");

    new_client(&app, &me, "Bruno Díaz").await;
    new_client(&app, &me, "Carmen Ruiz").await;
    let r = app.get_as("/api/clients?search=luc&limit=10", &me).await;
    let list = json_body(r).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let p = &list["pagination"];
    for k in [
        "currentPage",
        "totalPages",
        "totalItems",
        "itemsPerPage",
        "hasNextPage",
        "hasPrevPage",
    ] {
        assert!(p.get(k).is_some(), "pagination.{k}");
    }
    let list = json_body(app.get_as("/api/clients?tags=trauma", &me).await).await;
    assert_eq!(list["pagination"]["totalItems"], 1);
    let list = json_body(
        app.get_as("/api/clients?sortBy=name&sortOrder=asc&limit=2", &me)
            .await,
    )
    .await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Bruno Díaz", "Carmen Ruiz"]);
    assert_eq!(list["pagination"]["hasNextPage"], true);
    let cursor = list["pagination"]["nextCursor"].as_str().unwrap();
    let next = json_body(
        app.get_as(
            &format!("/api/clients?sortBy=name&sortOrder=asc&limit=2&cursor={cursor}"),
            &me,
        )
        .await,
    )
    .await;
    assert_eq!(next["data"][0]["name"], "Lucía Fernández");
    // Regex characters in a search are text, not operators.
    let r = app.get_as("/api/clients?search=.*", &me).await;
    assert_eq!(json_body(r).await["pagination"]["totalItems"], 0);
}

#[tokio::test]
async fn email_is_unique_per_therapist_only() {
    let app = spawn_app().await;
    let a = therapist(&app).await;
    let b = therapist(&app).await;
    let body = json!({ "name": "Ana", "email": "ana@example.com" });
    assert_eq!(app.post_as("/api/clients", &a, &body).await.status(), 201);
    assert_error(
        app.post_as(
            "/api/clients",
            &a,
            &json!({ "name": "Ana 2", "email": "ANA@example.com" }),
        )
        .await,
        409,
        "CLIENT_EXISTS",
    )
    .await;
    assert_eq!(
        app.post_as("/api/clients", &b, &body).await.status(),
        201,
        "another therapist may have her too"
    );
    let other = new_client(&app, &a, "Otra").await;
    let r = app
        .put_as(
            &format!("/api/clients/{other}"),
            &a,
            &json!({ "email": "ana@example.com" }),
        )
        .await;
    assert_error(r, 409, "CLIENT_EXISTS").await;
}

#[tokio::test]
async fn bad_client_input_is_400_naming_the_field_and_stores_nothing() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let cases = [
        (json!({ "email": "a@b.co" }), "name"),
        (json!({ "name": "A", "email": "nope" }), "email"),
        (json!({ "name": "A", "phone": "call me" }), "phone"),
        (json!({ "name": "A", "phone": "12" }), "phone"),
        (json!({ "name": "A", "age": 400 }), "age"),
        (json!({ "name": "A", "age": -1 }), "age"),
        (json!({ "name": "A", "tags": "x" }), "tags"),
        (json!({ "name": { "$gt": "" } }), "name"),
        (
            json!({ "name": "A", "emergencyContact": { "phone": "x" } }),
            "emergencyContact.phone",
        ),
        (
            json!({ "name": "A", "preferences": { "reminderHours": [0] } }),
            "preferences.reminderHours",
        ),
    ];
    for (body, field) in cases {
        let err = assert_error(
            app.post_as("/api/clients", &me, &body).await,
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
        assert!(fields.contains(&field), "{body}: {err}");
    }
    assert_eq!(app.count("clients").await, 0);
    let err = assert_error(
        app.get_as("/api/clients?status=gone", &me).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(err["errors"][0]["field"], "status");
    assert_error(
        app.get_as("/api/clients?cursor=garbage", &me).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        app.get_as("/api/clients/not-an-id", &me).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test]
async fn soft_delete_is_refused_while_bookings_are_upcoming() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let id = new_client(&app, &me, "Dora").await;
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &json!({ "clientId": id, "date": "2031-03-03", "startTime": "10:00", "endTime": "11:00" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let booking = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    assert_error(
        app.delete_as(&format!("/api/clients/{id}"), &me).await,
        409,
        "CLIENT_HAS_UPCOMING_BOOKINGS",
    )
    .await;
    // Nor by an update setting the status (which then changes nothing, its other fields
    // included).
    let deactivate = json!({ "status": "inactive", "name": "Dora Renamed" });
    assert_error(
        app.put_as(&format!("/api/clients/{id}"), &me, &deactivate).await,
        409,
        "CLIENT_HAS_UPCOMING_BOOKINGS",
    )
    .await;
    let got = json_body(app.get_as(&format!("/api/clients/{id}"), &me).await).await;
    assert_eq!(
        (got["data"]["status"].as_str(), got["data"]["name"].as_str()),
        (Some("active"), Some("Dora"))
    );
    assert_eq!(
        app.patch_as(&format!("/api/bookings/{booking}/cancel"), &me, &json!({}))
            .await
            .status(),
        200
    );
    let r = app.delete_as(&format!("/api/clients/{id}"), &me).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["data"]["status"], "inactive");
    assert_eq!(app.count("clients").await, 1, "soft: still stored");
    let list = json_body(app.get_as("/api/clients?status=inactive", &me).await).await;
    assert_eq!(list["pagination"]["totalItems"], 1);
    // A deactivated client cannot be booked (nothing stored) until reactivated.
    let booking = json!({ "clientId": id, "date": "2031-03-04", "startTime": "10:00", "endTime": "11:00" });
    let r = app.post_as("/api/bookings", &me, &booking).await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(app.count("bookings").await, 1, "only the cancelled one");
    let r = app
        .put_as(&format!("/api/clients/{id}"), &me, &json!({ "status": "active" }))
        .await;
    assert_eq!(r.status(), 200);
    let r = app.post_as("/api/bookings", &me, &booking).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn stats_and_tags_count_only_the_callers_clients() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let other = therapist(&app).await;
    for (n, tags) in [("A", json!(["x", "y"])), ("B", json!(["x"])), ("C", json!([]))] {
        app.post_as("/api/clients", &me, &json!({ "name": n, "tags": tags }))
            .await;
    }
    app.post_as("/api/clients", &other, &json!({ "name": "Z", "tags": ["x"] }))
        .await;
    let s = json_body(app.get_as("/api/clients/stats", &me).await).await["data"].clone();
    assert_eq!(s["total"], 3);
    assert_eq!(s["active"], 3);
    assert_eq!(s["newThisMonth"], 3);
    let t = json_body(app.get_as("/api/clients/tags", &me).await).await["data"].clone();
    assert_eq!(t, json!([{ "tag": "x", "count": 2 }, { "tag": "y", "count": 1 }]));
}

#[tokio::test]
async fn another_therapists_client_is_404_everywhere() {
    let app = spawn_app().await;
    let owner = therapist(&app).await;
    let intruder = therapist(&app).await;
    let id = new_client(&app, &owner, "Private").await;
    let path = format!("/api/clients/{id}");
    assert_error(app.get_as(&path, &intruder).await, 404, "NOT_FOUND").await;
    assert_error(
        app.put_as(&path, &intruder, &json!({ "name": "Hacked" })).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(app.delete_as(&path, &intruder).await, 404, "NOT_FOUND").await;
    let list = json_body(app.get_as("/api/clients", &intruder).await).await;
    assert_eq!(list["data"], json!([]));
    let got = json_body(app.get_as(&path, &owner).await).await;
    assert_eq!(got["data"]["name"], "Private", "unchanged");
}

#[tokio::test]
async fn roles_cannot_cross_between_therapist_and_client_routes() {
    let app = spawn_app().await;
    let t = therapist(&app).await;
    let c = client_user(&app).await;
    assert_error(app.get_as("/api/clients", &c).await, 403, "FORBIDDEN").await;
    assert_error(
        app.post_as("/api/bookings", &c, &json!({})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.get_as("/api/availability/schedule", &c).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(app.get_as("/api/bookings/client", &t).await, 403, "FORBIDDEN").await;
    assert_eq!(app.get_as("/api/bookings/client", &c).await.status(), 200);
}

#[tokio::test]
async fn a_client_created_with_an_email_is_invited_and_can_activate() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let r = app
        .post_as(
            "/api/clients",
            &me,
            &json!({ "name": "Invitada", "email": "invitee@example.com" }),
        )
        .await;
    let client_id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mail = loop {
        let found = std::fs::read_dir(&app.config.mail.file_dir)
            .ok()
            .and_then(|mut d| {
                d.find_map(|e| {
                    e.ok()
                        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                })
            });
        if let Some(e) = found {
            break std::fs::read_to_string(e.path()).unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no invitation email");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = unfolded.find("token=").unwrap() + 6;
    let token: String = unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let body = json!({ "token": token, "password": "my new secret", "confirmPassword": "my new secret" });
    let r = app.post_json("/api/clients/activate", &body).await;
    assert_eq!(r.status(), 201);
    let session = json_body(r).await;
    assert_eq!(session["user"]["role"], "cliente");
    let again = app.post_json("/api/clients/activate", &body).await;
    assert_error(again, 400, "VALIDATION_ERROR").await;
    let got = json_body(app.get_as(&format!("/api/clients/{client_id}"), &me).await).await;
    assert_eq!(
        got["data"]["userId"], session["user"]["id"],
        "record linked to the new login"
    );
}

#[tokio::test]
async fn a_stored_client_that_does_not_decode_is_a_500_not_skipped() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    new_client(&app, &me, "Fine").await;
    let therapist_id = mongodb::bson::oid::ObjectId::parse_str(&me.id).unwrap();
    app.db
        .collection::<mongodb::bson::Document>("clients")
        .insert_one(mongodb::bson::doc! {
            "therapistId": therapist_id, "name": 42, "status": "active",
            "createdAt": mongodb::bson::DateTime::now(), "updatedAt": mongodb::bson::DateTime::now(),
        })
        .await
        .unwrap();
    assert_error(app.get_as("/api/clients", &me).await, 500, "INTERNAL_ERROR").await;
}

#[tokio::test]
async fn updates_change_only_the_fields_sent_and_normalize_them() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let id = new_client(&app, &me, "Ana").await;
    let path = format!("/api/clients/{id}");
    let body = json!({
        "name": "  Ana Belén ", "email": " ANA@Example.com ", "tags": [" b", "a", "b "],
        "emergencyContact": { "name": "Luis", "phone": "600111222" }, "status": "inactive",
    });
    let u = json_body(app.put_as(&path, &me, &body).await).await["data"].clone();
    assert_eq!(u["name"], "Ana Belén");
    assert_eq!(u["email"], "ana@example.com");
    assert_eq!(u["tags"], json!(["a", "b"]));
    assert_eq!(u["emergencyContact"]["name"], "Luis");
    assert_eq!(u["status"], "inactive");
    let u = json_body(app.put_as(&path, &me, &json!({ "age": 40 })).await).await["data"].clone();
    assert_eq!(u["age"], 40);
    assert_eq!(u["name"], "Ana Belén", "absent fields stay");
    assert_eq!(u["tags"], json!(["a", "b"]));
    assert_eq!(u["preferences"]["reminderHours"], json!([24, 2]));
}

#[tokio::test]
async fn an_invitation_sent_to_a_corrected_address_takes_over_nothing() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let body = json!({ "name": "Tecleada", "email": "typo@example.com" });
    let r = app.post_as("/api/clients", &me, &body).await;
    assert_eq!(r.status(), 201);
    let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let stale = mailed_token(&app, "typo@example.com", "activate").await;
    let activate = |token: &str| json!({ "token": token, "password": "typo owner pw", "confirmPassword": "typo owner pw" });

    // The therapist corrects the address: the invitation to the old one is withdrawn.
    let path = format!("/api/clients/{id}");
    let r = app
        .put_as(&path, &me, &json!({ "email": "right@example.com" }))
        .await;
    assert_eq!(r.status(), 200);
    let invitations = app.db.collection::<mongodb::bson::Document>("client_invitations");
    let left = invitations
        .count_documents(mongodb::bson::doc! { "email": "typo@example.com" })
        .await
        .unwrap();
    assert_eq!(left, 0, "the old address's invitation withdrawn");
    let r = app.post_json("/api/clients/activate", &activate(&stale)).await;
    assert_error(r, 400, "VALIDATION_ERROR").await;

    // Redeemed in the window before it is withdrawn (the change written, the withdrawal not
    // yet): the record no longer carries its address, so it links nothing and makes no login.
    let r = app
        .post_as(
            "/api/clients",
            &me,
            &json!({ "name": "Otra", "email": "typo3@example.com" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let other = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let token = mailed_token(&app, "typo3@example.com", "activate").await;
    let records = app.db.collection::<mongodb::bson::Document>("clients");
    records
        .update_one(
            mongodb::bson::doc! { "_id": mongodb::bson::oid::ObjectId::parse_str(&other).unwrap() },
            mongodb::bson::doc! { "$set": { "email": "fixed3@example.com" } },
        )
        .await
        .unwrap();
    let r = app.post_json("/api/clients/activate", &activate(&token)).await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    let users = app.db.collection::<mongodb::bson::Document>("users");
    for email in ["typo@example.com", "typo3@example.com"] {
        let n = users
            .count_documents(mongodb::bson::doc! { "email": email })
            .await
            .unwrap();
        assert_eq!(n, 0, "no login made for {email}");
    }
    for record in [&id, &other] {
        let got = json_body(app.get_as(&format!("/api/clients/{record}"), &me).await).await;
        assert!(got["data"]["userId"].is_null(), "{got}");
    }
}
