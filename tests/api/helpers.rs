//! `spawn_app()`: the real service on port 0 with its own database and Redis key prefix, against
//! the dev MongoDB-compatible server and redis-server (or MONGODB_URI / REDIS_URL when set).

#![allow(dead_code)] // shared by every test module; not each uses every helper

use std::collections::HashMap;
use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

use dhara::Config;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const DEV_MONGODB_URI: &str = "mongodb://127.0.0.1:27017/?directConnection=true";
pub const DEV_REDIS_URL: &str = "redis://127.0.0.1:6379";

static TRACING: Once = Once::new();

/// A running app and what a test needs to talk to it and to its stores.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: mongodb::Database,
    pub config: Config,
    pub shutdown: CancellationToken,
    pub server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The MongoDB URI tests use.
pub fn mongodb_uri() -> String {
    std::env::var("MONGODB_URI").unwrap_or_else(|_| DEV_MONGODB_URI.to_owned())
}

/// A test configuration: `DHARA_ENV=test`, fresh database and Redis prefix, then `overrides`.
pub fn test_config(overrides: &[(&str, &str)]) -> Config {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("DHARA_ENV".into(), "test".into());
    env.insert("MONGODB_URI".into(), mongodb_uri());
    env.insert("MONGODB_DATABASE".into(), format!("dhara_test_{}", &id[..16]));
    env.insert(
        "REDIS_URL".into(),
        std::env::var("REDIS_URL").unwrap_or_else(|_| DEV_REDIS_URL.to_owned()),
    );
    env.insert("DHARA_REDIS__PREFIX".into(), format!("test:{}:", &id[..16]));
    let mail_dir = std::env::temp_dir().join(format!("dhara-mail-{}", &id[..16]));
    env.insert("DHARA_MAIL__FILE_DIR".into(), mail_dir.display().to_string());
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    Config::load_from(&env, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))).expect("test config")
}

fn init_tracing(config: &Config) {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let mut log = config.log.clone();
            log.level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
            dhara::telemetry::init(&log);
        }
    });
}

/// Spawns the app with default test settings and waits until it is ready.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Spawns the app with configuration overrides and waits until `/ready` answers 200.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let app = spawn_app_unready(overrides).await;
    app.wait_ready().await;
    app
}

/// Spawns the app without waiting for readiness (dependencies may be down on purpose).
pub async fn spawn_app_unready(overrides: &[(&str, &str)]) -> TestApp {
    spawn_with_config(test_config(overrides)).await
}

/// Spawns the app with a ready-made configuration.
pub async fn spawn_with_config(config: Config) -> TestApp {
    init_tracing(&config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let address = format!("http://{}", listener.local_addr().expect("local addr"));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(dhara::run(config.clone(), listener, shutdown.clone()));
    let mongo = mongodb::Client::with_uri_str(mongodb_uri())
        .await
        .expect("mongodb client");
    let db = mongo.database(&config.mongodb.database);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client");
    TestApp {
        address,
        client,
        db,
        config,
        shutdown,
        server: Some(server),
    }
}

impl TestApp {
    /// Polls `/ready` until it answers 200 (no fixed sleeps).
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.client.get(self.url("/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "app did not become ready within 30 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The `host:port` the app listens on.
    pub fn socket_addr(&self) -> String {
        self.address.trim_start_matches("http://").to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }
}

/// Reads a response as JSON, panicking with the raw body if it is not.
pub async fn json_body(r: reqwest::Response) -> Value {
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Asserts the SPEC's error envelope and returns the body.
pub async fn assert_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let body = json_body(r).await;
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// Registers a therapist and returns (email, password, session body).
pub async fn register_therapist(app: &TestApp) -> (String, String, Value) {
    register_as(app, "/api/auth/register", None).await
}

/// Registers a booking-site client and returns (email, password, session body).
pub async fn register_client(app: &TestApp) -> (String, String, Value) {
    register_as(app, "/api/clients/register", None).await
}

/// Registers through `path`; a fresh email unless one is given.
pub async fn register_as(app: &TestApp, path: &str, email: Option<&str>) -> (String, String, Value) {
    let email = email
        .map(str::to_owned)
        .unwrap_or_else(|| format!("user-{}@example.com", uuid::Uuid::new_v4().simple()));
    let password = "correct horse battery".to_owned();
    let r = app
        .post_json(
            path,
            &serde_json::json!({ "name": "Ana García", "email": email, "password": password, "confirmPassword": password }),
        )
        .await;
    assert_eq!(r.status(), 201, "register");
    (email, password, json_body(r).await)
}

/// `Authorization: Bearer` for a session body.
pub fn bearer(session: &Value) -> String {
    format!("Bearer {}", session["accessToken"].as_str().expect("accessToken"))
}

/// A signed-in user of a test.
pub struct Caller {
    pub auth: String,
    pub id: String,
    pub email: String,
}

/// Registers and signs in a therapist.
pub async fn therapist(app: &TestApp) -> Caller {
    let (email, _, s) = register_therapist(app).await;
    Caller {
        auth: bearer(&s),
        id: s["user"]["id"].as_str().unwrap().to_owned(),
        email,
    }
}

/// Registers and signs in a booking-site client, and proves its email with the link it was
/// sent (so therapists' records for that email link to it).
pub async fn client_user(app: &TestApp) -> Caller {
    let (email, _, s) = register_client(app).await;
    let token = mailed_token(app, &email, "verify-email").await;
    let r = app
        .post_json(
            "/api/clients/verify-email",
            &serde_json::json!({ "token": token }),
        )
        .await;
    assert_eq!(r.status(), 200, "verify email");
    Caller {
        auth: bearer(&s),
        id: s["user"]["id"].as_str().unwrap().to_owned(),
        email,
    }
}

impl TestApp {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        who: &Caller,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut r = self
            .client
            .request(method, self.url(path))
            .header("Authorization", &who.auth);
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.expect("request")
    }

    pub async fn get_as(&self, path: &str, who: &Caller) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, who, None).await
    }

    pub async fn post_as(&self, path: &str, who: &Caller, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, who, Some(body)).await
    }

    pub async fn put_as(&self, path: &str, who: &Caller, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::PUT, path, who, Some(body)).await
    }

    pub async fn patch_as(&self, path: &str, who: &Caller, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, path, who, Some(body)).await
    }

    pub async fn delete_as(&self, path: &str, who: &Caller) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, path, who, None).await
    }

    /// Documents in `collection`.
    pub async fn count(&self, collection: &str) -> u64 {
        self.db
            .collection::<mongodb::bson::Document>(collection)
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap()
    }
}

/// Creates a client record and returns its id.
pub async fn new_client(app: &TestApp, who: &Caller, name: &str) -> String {
    let r = app
        .post_as(
            "/api/clients",
            who,
            &serde_json::json!({ "name": name, "phone": "+34 600 111 222" }),
        )
        .await;
    assert_eq!(r.status(), 201, "create client");
    json_body(r).await["data"]["id"].as_str().unwrap().to_owned()
}

/// Books `client` on `date` 10:00-11:00 as `who` and returns the booking's id.
pub async fn new_booking(app: &TestApp, who: &Caller, client: &str, date: &str) -> String {
    let body =
        serde_json::json!({ "clientId": client, "date": date, "startTime": "10:00", "endTime": "11:00" });
    let r = app.post_as("/api/bookings", who, &body).await;
    assert_eq!(r.status(), 201, "create booking");
    json_body(r).await["data"]["id"].as_str().unwrap().to_owned()
}

/// A schedule open every day 09:00-13:00 in Madrid, no notice, a year ahead.
pub fn open_schedule() -> Value {
    let day = serde_json::json!([{ "start": "09:00", "end": "13:00" }]);
    serde_json::json!({
        "timezone": "Europe/Madrid",
        "weekly": { "monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day, "saturday": day, "sunday": day },
        "bufferMinutes": 0, "minNoticeHours": 0, "maxAdvanceDays": 365,
    })
}

/// Waits for an email to `to` whose text contains `marker`, and returns the value of the
/// `token=` parameter of its link.
pub async fn mailed_token(app: &TestApp, to: &str, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mails: Vec<String> = std::fs::read_dir(&app.config.mail.file_dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .map(|m| m.replace("=\r\n", "").replace("=\n", "").replace("=3D", "="))
                    .filter(|m| m.contains(to) && m.contains(marker))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(m) = mails.first() {
            let start = m.find("token=").expect("a link with a token") + 6;
            return m[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
        }
        assert!(Instant::now() < deadline, "no email to {to} with {marker}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
