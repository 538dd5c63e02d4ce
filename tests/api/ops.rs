//! Operations: health, readiness (with dependencies down), metrics, request ids, CORS, OpenAPI,
//! index synchronisation and configuration errors.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_and_ready_report_every_dependency() {
    let app = spawn_app().await;
    let r = app.get("/health").await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["status"], "ok");

    let r = app.get("/ready").await;
    assert_eq!(r.status(), 200);
    let body = json_body(r).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["mongodb"], "up");
    assert_eq!(body["checks"]["redis"], "up");
    assert_eq!(body["checks"]["indexes"], "synced");
}

#[tokio::test]
async fn mongodb_down_makes_ready_503_while_health_stays_200() {
    let app = spawn_app_unready(&[
        ("MONGODB_URI", "mongodb://127.0.0.1:1/?directConnection=true"),
        ("DHARA_MONGODB__SERVER_SELECTION_TIMEOUT_MS", "200"),
    ])
    .await;
    let r = app.get("/health").await;
    assert_eq!(r.status(), 200);
    let r = app.get("/ready").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body = json_body(r).await;
    assert_eq!(body["checks"]["mongodb"], "down");
    assert_eq!(body["checks"]["indexes"], "pending");
    // The API refuses work rather than writing without its unique indexes.
    let r = app.get("/api/bookings").await;
    assert_error(r, 503, "NOT_READY").await;
}

#[tokio::test]
async fn redis_down_is_reported_but_the_instance_stays_ready() {
    let app = spawn_app_with(&[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let body = json_body(app.get("/ready").await).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["redis"], "down");

    let app = spawn_app_with(&[("REDIS_URL", "")]).await;
    let body = json_body(app.get("/ready").await).await;
    assert_eq!(body["checks"]["redis"], "disabled");
}

#[tokio::test]
async fn metrics_use_the_plan_names_buckets_and_matched_routes() {
    let app = spawn_app().await;
    app.get("/health").await;
    app.get("/api/no/such/thing/42").await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for le in ["0.1", "0.3", "0.5", "0.7", "1", "3", "5", "7", "10"] {
        let line = format!(
            "http_request_duration_seconds_bucket{{method=\"GET\",route=\"/health\",status_code=\"200\",le=\"{le}\"}}"
        );
        assert!(text.contains(&line), "missing {line}\n{text}");
    }
    assert!(text.contains("route=\"unmatched\",status_code=\"404\""), "{text}");
    assert!(
        !text.contains("/api/no/such/thing/42"),
        "raw URLs must never be labels"
    );
    assert!(
        text.contains(
            "mongodb_queries_total{collection=\"bookings\",operation=\"createIndexes\",status=\"success\"}"
        ),
        "{text}"
    );
    assert!(text.contains("mongodb_connections_active"), "{text}");
    assert!(text.contains("cache_hits_total{layer=\"memory\"}"), "{text}");
    assert!(text.contains("cache_misses_total{layer=\"redis\"}"), "{text}");
    assert!(text.contains("reminder_lag_seconds"), "{text}");
    assert!(text.contains("reminder_failures_total"), "{text}");
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/health"))
        .header("X-Request-ID", "dash-42.a:b_c")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "dash-42.a:b_c");

    let r = app.get("/api/nothing").await;
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID is generated: {generated}");

    // An unsafe id is replaced, never reflected.
    let r = app
        .client
        .get(app.url("/health"))
        .header("X-Request-ID", "a".repeat(300))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn cors_allows_the_dashboard_headers_from_configured_origins_only() {
    let app = spawn_app().await;
    let headers =
        "authorization,x-request-id,x-client-version,x-timestamp,x-requested-with,x-client-type,content-type";
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/bookings"))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in headers.split(',') {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }

    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/bookings"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn openapi_document_lists_the_operations_paths() {
    let app = spawn_app().await;
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/api/auth/login",
        "/api/clients/{id}",
        "/api/bookings",
        "/api/availability/therapist/{id}/date/{date}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
}

#[tokio::test]
async fn indexes_are_created_exactly_as_declared() {
    let app = spawn_app().await;
    let declared = dhara::db::indexes::declared().unwrap();
    for coll in &declared {
        let stored = dhara::db::indexes::list_indexes(&app.db, &coll.collection)
            .await
            .unwrap();
        for spec in &coll.indexes {
            let found = stored
                .iter()
                .find(|d| d.get_str("name").ok() == Some(spec.name.as_str()))
                .unwrap_or_else(|| panic!("{}.{} missing", coll.collection, spec.name));
            assert!(
                spec.differences(found).is_empty(),
                "{}.{}: {:?}",
                coll.collection,
                spec.name,
                spec.differences(found)
            );
        }
        let extra: Vec<_> = stored
            .iter()
            .filter_map(|d| d.get_str("name").ok())
            .filter(|n| *n != "_id_" && !coll.indexes.iter().any(|s| s.name == *n))
            .collect();
        assert!(
            extra.is_empty(),
            "undeclared indexes on {}: {extra:?}",
            coll.collection
        );
    }
}

#[tokio::test]
async fn index_sync_is_idempotent_and_reports_changed_definitions() {
    use mongodb::bson::doc;
    let config = test_config(&[]);
    let client = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    let db = client.database(&config.mongodb.database);
    // An older deployment left `users.email_1` without `unique`.
    db.run_command(
        doc! { "createIndexes": "users", "indexes": [ { "name": "email_1", "key": { "email": 1 } } ] },
    )
    .await
    .unwrap();
    let declared = dhara::db::indexes::declared().unwrap();

    let report = dhara::db::indexes::sync(&db, &declared, false).await.unwrap();
    assert!(report.has_drift());
    assert!(
        report
            .changed
            .iter()
            .any(|c| c.starts_with("users.email_1") && c.contains("unique")),
        "{report}"
    );
    assert!(report.to_string().contains("CHANGED"), "the report says so");
    let stored = dhara::db::indexes::list_indexes(&db, "users").await.unwrap();
    let email = stored
        .iter()
        .find(|d| d.get_str("name") == Ok("email_1"))
        .unwrap();
    assert!(
        !email.get_bool("unique").unwrap_or(false),
        "not replaced without being asked"
    );

    let report = dhara::db::indexes::sync(&db, &declared, true).await.unwrap();
    assert!(
        report.replaced.iter().any(|c| c.starts_with("users.email_1")),
        "{report}"
    );
    assert!(!report.has_drift());

    let again = dhara::db::indexes::sync(&db, &declared, false).await.unwrap();
    assert!(
        again.created.is_empty() && again.replaced.is_empty() && !again.has_drift(),
        "{again}"
    );
    let total: usize = declared.iter().map(|c| c.indexes.len()).sum();
    assert_eq!(again.unchanged.len(), total);
}

#[tokio::test]
async fn the_binary_rejects_bad_configuration_naming_the_key_without_secrets() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dhara"))
        .arg("serve")
        .env("PORT", "not-a-port")
        .env("JWT_SECRET", "a-perfectly-long-secret-value-that-must-not-leak")
        .env("DHARA_ENV", "test")
        .env("DHARA_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("http.port") && stderr.contains("PORT"),
        "{stderr}"
    );
    assert!(!stderr.contains("must-not-leak"), "{stderr}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dhara"))
        .arg("serve")
        .env("DHARA_ENV", "production")
        .env("DHARA_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .env_remove("JWT_SECRET")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.jwt_secret"));
}
