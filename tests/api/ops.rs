//! Operations: health, readiness (with dependencies down), metrics, request ids, CORS, OpenAPI,
//! index synchronisation and configuration errors.

use serde_json::{json, Value};

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

/// One sample of the Prometheus text exposition: metric name, labels (sorted), value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses the Prometheus text format (comments skipped, label values unescaped).
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let name = line[..name_end].to_owned();
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices();
            let mut key = String::new();
            loop {
                let (i, c) = chars
                    .next()
                    .unwrap_or_else(|| panic!("unterminated labels {line:?}"));
                match c {
                    '}' => {
                        rest = &inner[i + 1..];
                        break;
                    }
                    ',' | ' ' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line:?}");
                        let mut value = String::new();
                        loop {
                            match chars.next().map(|(_, c)| c) {
                                Some('"') => break,
                                Some('\\') => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(other) => value.push(other),
                                    None => panic!("bad escape {line:?}"),
                                },
                                Some(other) => value.push(other),
                                None => panic!("unterminated value {line:?}"),
                            }
                        }
                        labels.push((std::mem::take(&mut key), value));
                    }
                    other => key.push(other),
                }
            }
        }
        let value = rest
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("no value {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value {value:?} in {line:?}"));
        labels.sort();
        out.push((name, labels, value));
    }
    out
}

/// The value of the series `name` with exactly the label set `labels` (order irrelevant).
pub(crate) fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    want.sort();
    let found: Vec<f64> = parse_prometheus(text)
        .into_iter()
        .filter(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| v)
        .collect();
    assert!(found.len() <= 1, "{name}{labels:?} appears {} times", found.len());
    found.first().copied()
}

/// How much the series moved between two scrapes (absent before = 0; absent after = panic).
pub(crate) fn moved(before: &str, after: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let now = series(after, name, labels)
        .unwrap_or_else(|| panic!("no series {name}{labels:?} after the requests\n{after}"));
    now - series(before, name, labels).unwrap_or(0.0)
}

pub(crate) async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    r.text().await.unwrap()
}

#[test]
fn the_prometheus_parser_reads_labels_exactly() {
    let text = "# HELP x y\n# TYPE a counter\na{k=\"v\",q=\"a\\\"b,c}\"} 3\na{k=\"v\"} 1.5\nb 7\nc{le=\"+Inf\"} 2 1700000000\n";
    assert_eq!(series(text, "a", &[("q", "a\"b,c}"), ("k", "v")]), Some(3.0));
    assert_eq!(series(text, "a", &[("k", "v")]), Some(1.5));
    assert_eq!(series(text, "a", &[("k", "w")]), None);
    assert_eq!(series(text, "b", &[]), Some(7.0));
    assert_eq!(series(text, "a", &[]), None, "a label set is matched exactly");
    assert_eq!(series(text, "c", &[("le", "+Inf")]), Some(2.0));
}

#[tokio::test]
async fn metrics_move_by_route_status_collection_and_outcome() {
    // Every list must reach MongoDB here: the response cache would answer repeats itself.
    let app = spawn_app_with(&[("DHARA_CACHE__ENABLED", "false")]).await;
    let me = therapist(&app).await;
    new_client(&app, &me, "Metrics Client").await;
    let before = scrape(&app).await;

    const N: usize = 3;
    for _ in 0..N {
        assert_eq!(app.get_as("/api/bookings", &me).await.status(), 200);
    }
    assert_eq!(app.get_as("/api/bookings?limit=0", &me).await.status(), 400);
    assert_eq!(app.get("/api/bookings").await.status(), 401);
    assert_eq!(app.get("/api/no/such/thing/42").await.status(), 404);
    // A refused write: the second record with the same email is a 409.
    let dup = json!({ "name": "Dup", "email": "dup@example.com" });
    assert_eq!(app.post_as("/api/clients", &me, &dup).await.status(), 201);
    assert_eq!(app.post_as("/api/clients", &me, &dup).await.status(), 409);
    let after = scrape(&app).await;

    // HTTP: one observation per request, labelled by method, route template and status.
    let ok = [
        ("method", "GET"),
        ("route", "/api/bookings"),
        ("status_code", "200"),
    ];
    let count = "http_request_duration_seconds_count";
    assert_eq!(moved(&before, &after, count, &ok), N as f64);
    assert!(moved(&before, &after, "http_request_duration_seconds_sum", &ok) > 0.0);
    for (status, n) in [("400", 1.0), ("401", 1.0)] {
        let labels = [
            ("method", "GET"),
            ("route", "/api/bookings"),
            ("status_code", status),
        ];
        assert_eq!(moved(&before, &after, count, &labels), n, "{status}");
    }
    let created = [
        ("method", "POST"),
        ("route", "/api/clients"),
        ("status_code", "201"),
    ];
    assert_eq!(moved(&before, &after, count, &created), 1.0);
    let conflict = [
        ("method", "POST"),
        ("route", "/api/clients"),
        ("status_code", "409"),
    ];
    assert_eq!(moved(&before, &after, count, &conflict), 1.0);
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status_code", "404")];
    assert_eq!(moved(&before, &after, count, &unmatched), 1.0);
    assert!(
        !after.contains("/api/no/such/thing/42"),
        "raw URLs must never be labels"
    );
    // The plan's buckets, cumulative, and `+Inf` equal to the count.
    let mut previous = 0.0;
    for le in ["0.1", "0.3", "0.5", "0.7", "1", "3", "5", "7", "10", "+Inf"] {
        let mut labels = ok.to_vec();
        labels.push(("le", le));
        let v = series(&after, "http_request_duration_seconds_bucket", &labels)
            .unwrap_or_else(|| panic!("no bucket le={le}\n{after}"));
        assert!(v >= previous, "buckets are cumulative at le={le}");
        previous = v;
    }
    assert_eq!(Some(previous), series(&after, count, &ok));
    let buckets = parse_prometheus(&after)
        .into_iter()
        .filter(|(n, l, _)| {
            n == "http_request_duration_seconds_bucket"
                && l.iter().any(|(k, v)| k == "route" && v == "/api/bookings")
                && l.iter().any(|(k, v)| k == "status_code" && v == "200")
        })
        .count();
    assert_eq!(buckets, 10, "exactly the plan's 9 buckets and +Inf");

    // MongoDB: every list reads the bookings (a count and a find) and each is counted.
    let find = [
        ("collection", "bookings"),
        ("operation", "find"),
        ("status", "success"),
    ];
    assert!(moved(&before, &after, "mongodb_queries_total", &find) >= N as f64);
    let counted = [
        ("collection", "bookings"),
        ("operation", "aggregate"),
        ("status", "success"),
    ];
    assert!(moved(&before, &after, "mongodb_queries_total", &counted) >= N as f64);
    let index_sync = [
        ("collection", "bookings"),
        ("operation", "createIndexes"),
        ("status", "success"),
    ];
    assert!(series(&after, "mongodb_queries_total", &index_sync).unwrap_or(0.0) >= 1.0);

    // Gauges: connections were opened, and every one checked out was checked in again; no
    // request is in flight or queued between requests.
    let open = series(&after, "mongodb_connections_open", &[]).unwrap();
    let active = series(&after, "mongodb_connections_active", &[]).unwrap();
    assert!(open >= 1.0, "open {open}");
    assert!((0.0..=open).contains(&active), "active {active} of {open} open");
    assert_eq!(series(&after, "http_requests_in_flight", &[]), Some(0.0));
    assert_eq!(series(&after, "http_requests_queued", &[]), Some(0.0));
}

/// Sends the head of a login and 10 bytes of its body: the request holds its in-flight slot
/// until the rest arrives or its class timeout ends it.
async fn start_slow_login(app: &TestApp) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let body = r#"{"email":"slow@example.com","password":"correct horse battery"}"#;
    let mut stream = tokio::net::TcpStream::connect(app.socket_addr()).await.unwrap();
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        app.socket_addr(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

#[tokio::test]
async fn admission_rejections_are_counted_by_reason() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;
    let app = spawn_app_with(&[
        ("DHARA_HTTP__MAX_IN_FLIGHT", "1"),
        ("DHARA_HTTP__MAX_QUEUED", "0"),
        ("DHARA_HTTP__TIMEOUTS__AUTH_SECONDS", "1"),
    ])
    .await;
    let before = scrape(&app).await;
    let overloaded = [("reason", "overloaded")];
    let timeout = [("reason", "timeout")];
    let rejected = "http_requests_rejected_total";

    let mut slow = start_slow_login(&app).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while series(&scrape(&app).await, "http_requests_in_flight", &[]) != Some(1.0) {
        assert!(Instant::now() < deadline, "the slow request was never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_error(app.get("/api/bookings").await, 503, "OVERLOADED").await;
    let during = scrape(&app).await;
    assert_eq!(moved(&before, &during, rejected, &overloaded), 1.0);
    assert_eq!(
        series(&during, rejected, &timeout),
        series(&before, rejected, &timeout)
    );

    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut response))
        .await
        .expect("the slow request ends")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("\"code\":\"TIMEOUT\""), "{response}");
    let after = scrape(&app).await;
    assert_eq!(moved(&before, &after, rejected, &timeout), 1.0);
    assert_eq!(moved(&before, &after, rejected, &overloaded), 1.0);
    // The timed-out request left its slot and its in-flight count behind it.
    assert_eq!(series(&after, "http_requests_in_flight", &[]), Some(0.0));
    assert_eq!(app.get("/api/bookings").await.status(), 401);
}

#[tokio::test]
async fn a_write_refused_by_the_database_counts_as_an_error() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let client = serde_json::json!({ "name": "Dup", "email": "dup@example.com" });
    assert_eq!(app.post_as("/api/clients", &me, &client).await.status(), 201);
    let before = scrape(&app).await;
    assert_error(
        app.post_as("/api/clients", &me, &client).await,
        409,
        "CLIENT_EXISTS",
    )
    .await;
    let after = scrape(&app).await;
    let failed = [
        ("collection", "clients"),
        ("operation", "insert"),
        ("status", "error"),
    ];
    assert_eq!(moved(&before, &after, "mongodb_queries_total", &failed), 1.0);
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
