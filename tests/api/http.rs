//! The HTTP shell: the error envelope on every failure path, per-class timeouts, admission
//! control and graceful shutdown. Slow clients are simulated with a body sent in pieces.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

#[tokio::test]
async fn every_failure_path_answers_the_error_envelope() {
    let app = spawn_app_with(&[("DHARA_HTTP__JSON_BODY_LIMIT_BYTES", "2048")]).await;

    let r = app.get("/api/does-not-exist").await;
    let body = assert_error(r, 404, "NOT_FOUND").await;
    assert_eq!(body["message"], "Route /api/does-not-exist not found");

    let r = app
        .client
        .delete(app.url("/api/auth/login"))
        .send()
        .await
        .unwrap();
    assert_error(r, 405, "METHOD_NOT_ALLOWED").await;

    let post = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/api/auth/login"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        post("{\"email\": ", "application/json").await.unwrap(),
        400,
        "INVALID_JSON",
    )
    .await;
    assert_error(post("", "application/json").await.unwrap(), 400, "INVALID_JSON").await;
    let body = assert_error(
        post("{\"email\": 5, \"password\": \"x\"}", "application/json")
            .await
            .unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "email");
    assert_error(
        post("email=a", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    let r = app
        .client
        .post(app.url("/api/auth/login"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE").await;

    let huge = json!({ "email": "a@b.co", "password": "x".repeat(4096) });
    let r = app.post_json("/api/auth/login", &huge).await;
    assert_error(r, 413, "PAYLOAD_TOO_LARGE").await;

    // Chunked (no Content-Length) bodies are cut off at the limit too.
    let chunks = futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let r = app
        .client
        .post(app.url("/api/auth/login"))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "PAYLOAD_TOO_LARGE").await;
}

/// Opens a login request whose body is still arriving; returns the stream and the rest.
async fn start_slow_login(app: &TestApp) -> (TcpStream, &'static [u8]) {
    start_slow_login_at(&app.socket_addr()).await
}

async fn start_slow_login_at(addr: &str) -> (TcpStream, &'static [u8]) {
    let body: &'static [u8] = br#"{"email":"slow@example.com","password":"not the password"}"#;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    stream.flush().await.unwrap();
    (stream, &body[10..])
}

async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_request_over_its_class_timeout_gets_503() {
    let app = spawn_app_with(&[("DHARA_HTTP__TIMEOUTS__AUTH_SECONDS", "1")]).await;
    let started = Instant::now();
    let (mut stream, _rest) = start_slow_login(&app).await;
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("\"code\":\"TIMEOUT\""), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after:"),
        "{response}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}

#[tokio::test]
async fn beyond_in_flight_and_queue_limits_requests_get_503_at_once() {
    let app = spawn_app_with(&[
        ("DHARA_HTTP__MAX_IN_FLIGHT", "1"),
        ("DHARA_HTTP__MAX_QUEUED", "1"),
    ])
    .await;
    let (mut first, first_rest) = start_slow_login(&app).await;
    // Wait (by polling, exempt from admission) until the first holds the only slot.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&app, "http_requests_in_flight").await < 1.0 {
        assert!(Instant::now() < deadline, "first request never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let queued = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/api/auth/login");
        async move {
            client
                .post(url)
                .json(&json!({ "email": "q@example.com", "password": "x" }))
                .send()
                .await
        }
    });
    while metric(&app, "http_requests_queued").await < 1.0 {
        assert!(Instant::now() < deadline, "second request never queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let r = app
        .post_json(
            "/api/auth/login",
            &json!({ "email": "x@example.com", "password": "x" }),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(2), "refused at once");
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 503, "OVERLOADED").await;

    // Probes still answer while the instance is saturated.
    assert_eq!(app.get("/health").await.status(), 200);

    first.write_all(first_rest).await.unwrap();
    let response = read_response(&mut first).await;
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    let queued = queued.await.unwrap().unwrap();
    assert_eq!(queued.status(), 401, "the queued request ran once a slot freed");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let mut app = spawn_app().await;
    let (mut stream, rest) = start_slow_login(&app).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&app, "http_requests_in_flight").await < 1.0 {
        assert!(Instant::now() < deadline, "request never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.shutdown.cancel();
    // New connections are refused once the listener closes...
    let refused_deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(app.socket_addr()).await.is_ok() {
        assert!(
            Instant::now() < refused_deadline,
            "listener still accepting after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...while the request already in flight completes normally.
    stream.write_all(rest).await.unwrap();
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(
        response.contains("\"success\":false"),
        "a whole response: {response}"
    );
    let server = app.server.take().unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops");
    assert!(result.unwrap().is_ok());
}

#[tokio::test]
async fn sigterm_makes_the_real_process_drain_and_exit_cleanly() {
    let config = test_config(&[]);
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dhara"))
        .arg("serve")
        .env("DHARA_ENV", "test")
        .env("DHARA_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .env("PORT", port.to_string())
        .env("MONGODB_URI", mongodb_uri())
        .env("MONGODB_DATABASE", &config.mongodb.database)
        .env("REDIS_URL", "")
        .env("DHARA_MAIL__FILE_DIR", config.mail.file_dir.display().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("http://{addr}/ready")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "process never became ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (mut stream, rest) = start_slow_login_at(&addr).await;
    loop {
        let text = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().any(|l| l == "http_requests_in_flight 1") {
            break;
        }
        assert!(Instant::now() < deadline, "request never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap()
        .success());
    while TcpStream::connect(&addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stream.write_all(rest).await.unwrap();
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("process exits")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn raw_body_routes_answer_413_and_arrays_are_not_objects() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let big = format!("{{\"notes\": \"{}\"}}", "x".repeat(2 << 20));
    for path in ["/api/bookings", "/api/payments"] {
        let r = app
            .client
            .post(app.url(path))
            .header("Authorization", &me.auth)
            .header("Content-Type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_error(r, 413, "PAYLOAD_TOO_LARGE").await;
    }
    let client = new_client(&app, &me, "Array").await;
    let as_array = serde_json::json!([client, "2031-06-04", "12:00", "13:00"]);
    let body = assert_error(
        app.post_as("/api/bookings", &me, &as_array).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "body");
    assert_eq!(app.count("bookings").await, 0);
    let check = serde_json::json!({ "therapistId": "nope", "date": "2031-06-04", "startTime": "10:00", "endTime": "11:00" });
    let body = assert_error(
        app.post_json("/api/availability/check-slot", &check).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "therapistId");
}
