//! A schema-driven fuzzer (schemathesis, pinned, installed by `scripts/test.sh`) against the real
//! app, signed in as a therapist and as a client, over records of every kind seeded first so that
//! routes taking an id answer with the resource (and its typed schema is checked) instead of a
//! 404. Fixed seed, a few examples per operation: the same cases each run, within the CI budget.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{json, Value};

use crate::documents::{pdf_bytes, stored, PNG};
use crate::helpers::*;

/// Examples per operation (positive and negative together) of the fuzzing phase.
const EXAMPLES: &str = "8";

/// What is checked of every answer.
const CHECKS: &[&str] = &[
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    // A request the document calls valid is accepted (2xx, or 401/403/404/409/429)...
    "positive_data_acceptance",
    // ...and one it calls invalid is refused (4xx).
    "negative_data_rejection",
];

/// Operations whose schema-valid requests may still be refused (400) by a rule between fields
/// or against stored state, which a JSON Schema cannot state; the other checks still run on them.
const NOT_ALWAYS_ACCEPTED: &[(&str, &str)] = &[
    (
        "POST /api/auth/register",
        "`confirmPassword` must equal `password`",
    ),
    (
        "POST /api/clients/register",
        "`confirmPassword` must equal `password`",
    ),
    (
        "POST /api/auth/change-password",
        "`currentPassword` must be the current one",
    ),
    ("POST /api/auth/reset-password", "`token` must be one we mailed"),
    ("POST /api/clients/activate", "`token` must be one we mailed"),
    ("POST /api/clients/verify-email", "`token` must be one we mailed"),
    ("POST /api/auth/verify-email", "`token` must be one we mailed"),
    ("POST /api/auth/refresh", "`refreshToken` must be one we issued"),
    (
        "POST /api/bookings",
        "`endTime` after `startTime`, `therapyDuration` their difference, the date within the claim horizon",
    ),
    (
        "PUT /api/bookings/{id}",
        "`endTime` after `startTime`, the date within the claim horizon",
    ),
    (
        "PUT /api/bookings/{id}/reschedule",
        "`endTime` after `startTime`, the date within the claim horizon",
    ),
    (
        "POST /api/bookings/client/book",
        "`endTime` after `startTime`, within working hours, notice and horizon",
    ),
    (
        "GET /api/bookings/check-availability",
        "`endTime` after `startTime`",
    ),
    ("POST /api/availability/check-slot", "`endTime` after `startTime`"),
    (
        "POST /api/documents/upload",
        "the file's bytes must be of an allowed type",
    ),
    (
        "PUT /api/profile",
        "a pricing package has `price` or `discountedPrice`",
    ),
    (
        "POST /api/payments",
        "`clientId` and `bookingId` must name the caller's records",
    ),
    (
        "POST /api/session-notes",
        "`clientId` and `bookingId` must name the caller's records",
    ),
    (
        "POST /api/notes",
        "`clientId` and `bookingId` must name the caller's records",
    ),
    (
        "PATCH /api/bookings/{id}/cancel",
        "the booking's current status must allow it",
    ),
    (
        "PATCH /api/bookings/client/{id}/cancel",
        "the booking's current status must allow it",
    ),
    (
        "PUT /api/bookings/{id}/complete",
        "the booking's current status must allow it",
    ),
    (
        "PUT /api/bookings/{id}/no-show",
        "the booking's current status must allow it",
    ),
    (
        "PUT /api/payments/{id}/status",
        "the payment's current status must allow it",
    ),
    (
        "POST /api/payments/{id}/refund",
        "at most what remains refundable of the payment",
    ),
    (
        "PUT /api/availability/schedule",
        "a day's intervals end after they start and do not overlap",
    ),
    (
        "POST /api/availability/blocks",
        "`date` or `startDate`; the end after the start; spans by `repeat`",
    ),
    (
        "PUT /api/availability/blocks/{id}",
        "the end after the start; spans by `repeat`",
    ),
    (
        "POST /api/availability/exceptions",
        "`endDate` not before `startDate`, at most a year later",
    ),
    (
        "PUT /api/availability/exceptions/{id}",
        "`endDate` not before `startDate`, at most a year later",
    ),
    ("POST /api/profile/avatar", "the file's bytes must be an image"),
    ("POST /api/profile/banner", "the file's bytes must be an image"),
];

fn token(auth: &str) -> String {
    auth.trim_start_matches("Bearer ").to_owned()
}

fn id_of(v: &Value) -> String {
    v["data"]["id"]
        .as_str()
        .or_else(|| v["id"].as_str())
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

async fn created(r: reqwest::Response, what: &str) -> Value {
    let status = r.status();
    let body = json_body(r).await;
    assert!(status.is_success(), "seeding {what}: {status} {body}");
    body
}

fn day(offset: i64) -> String {
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Madrid)
        .date_naive();
    (today + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// Creates what `body` describes at `path` as `who`; its id.
async fn post(app: &TestApp, who: &Caller, path: &str, body: Value) -> String {
    id_of(&created(app.post_as(path, who, &body).await, path).await)
}

/// A booking of `client` on `date` at `start` (an hour), its id.
async fn booking(app: &TestApp, me: &Caller, client: &str, date: &str, start: &str) -> String {
    let end = format!("{:02}:00", start[..2].parse::<u32>().unwrap() + 1);
    let body =
        json!({ "clientId": client, "date": date, "startTime": start, "endTime": end, "amount": 1000 });
    post(app, me, "/api/bookings", body).await
}

/// Seeds a record of every kind and writes the schemathesis configuration around their ids.
async fn seed(app: &TestApp, me: &Caller, login: &Caller, hooks: &str) -> String {
    let r = app
        .put_as("/api/availability/schedule", me, &open_schedule())
        .await;
    created(r, "schedule").await;
    let client = post(
        app,
        me,
        "/api/clients",
        json!({ "name": "Ana", "email": login.email }),
    )
    .await;
    let doomed_client = post(app, me, "/api/clients", json!({ "name": "Bea" })).await;
    let future = booking(app, me, &client, &day(7), "10:00").await;
    let (reviewed, to_review) = (
        booking(app, me, &client, &day(-2), "10:00").await,
        booking(app, me, &client, &day(-3), "10:00").await,
    );
    for b in [&reviewed, &to_review] {
        let r = app
            .put_as(&format!("/api/bookings/{b}/complete"), me, &json!({}))
            .await;
        created(r, "completed booking").await;
    }
    let review = json!({ "bookingId": reviewed, "rating": 5, "comment": "Bien" });
    let review = post(app, login, "/api/reviews/create", review).await;
    let payment = json!({ "amount": 10, "method": "cash", "clientId": client, "bookingId": future });
    let payment = post(app, me, "/api/payments", payment).await;
    let note = |content: &str| json!({ "clientId": client, "bookingId": future, "content": content });
    let note_id = post(app, me, "/api/session-notes", note("Primera")).await;
    let doomed_note = post(app, me, "/api/session-notes", note("Segunda")).await;
    let doomed_alias_note = post(app, me, "/api/notes", note("Tercera")).await;
    let shared = [("visibility", "client_shared"), ("clientId", client.as_str())];
    let document = stored(app, me, "a.pdf", pdf_bytes(2048, 1), &shared).await;
    let document = document["id"].as_str().unwrap().to_owned();
    let doomed_document = stored(app, me, "b.pdf", pdf_bytes(2048, 2), &[]).await;
    let doomed_document = doomed_document["id"].as_str().unwrap().to_owned();
    let block = |title: &str| json!({ "type": "unavailable", "title": title, "date": day(9), "startTime": "09:00", "endTime": "10:00" });
    let block_id = post(app, me, "/api/availability/blocks", block("Formación")).await;
    let doomed_block = post(app, me, "/api/availability/blocks", block("Médico")).await;
    let absence =
        |offset: i64| json!({ "startDate": day(offset), "endDate": day(offset), "type": "vacation" });
    let absence_id = post(app, me, "/api/availability/exceptions", absence(20)).await;
    let doomed_absence = post(app, me, "/api/availability/exceptions", absence(21)).await;
    let media = media_id(app, me).await;
    let notifications = json_body(app.get_as("/api/notifications", me).await).await;
    let notification = notifications["data"]["notifications"][0]["id"]
        .as_str()
        .expect("seeding made a notification")
        .to_owned();

    let mut c = String::new();
    writeln!(c, "hooks = {hooks:?}\n").unwrap();
    writeln!(c, "[auth.openapi.therapist]\nbearer = {:?}\n", token(&me.auth)).unwrap();
    writeln!(c, "[auth.openapi.client]\nbearer = {:?}\n", token(&login.auth)).unwrap();
    writeln!(c, "[checks]\nenabled = false").unwrap();
    for check in CHECKS {
        writeln!(c, "{check}.enabled = true").unwrap();
    }
    // A stale `version` or `If-Match` is a 412 whatever the rest of the request.
    let statuses = "[\"2xx\", \"3xx\", \"401\", \"403\", \"404\", \"409\", \"412\", \"429\", \"5xx\"]";
    writeln!(c, "positive_data_acceptance.expected-statuses = {statuses}").unwrap();
    let refused = "[\"400\", \"401\", \"403\", \"404\", \"405\", \"406\", \"409\", \"412\", \"415\", \"422\", \"428\", \"429\", \"5xx\"]";
    writeln!(c, "negative_data_rejection.expected-statuses = {refused}\n").unwrap();
    writeln!(
        c,
        "[phases.coverage]\ngenerate-duplicate-query-parameters = false\nunexpected-methods = []\n"
    )
    .unwrap();
    // A cursor is opaque: only one a list produced is accepted, so the fuzzer asks for the first page.
    writeln!(c, "[parameters]\n\"query.cursor\" = \"\"").unwrap();
    writeln!(
        c,
        "\"path.therapist_id\" = {:?}\n\"path.user_id\" = {:?}\n",
        me.id, me.id
    )
    .unwrap();
    let mut ids = |names: &[&str], params: &[(&str, &str)]| {
        let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        let params: Vec<String> = params.iter().map(|(k, v)| format!("{k:?} = {v:?}")).collect();
        writeln!(
            c,
            "[[operations]]\ninclude-name = [{}]\nparameters = {{ {} }}\n",
            names.join(", "),
            params.join(", ")
        )
        .unwrap();
    };
    let b = future.as_str();
    ids(
        &[
            "GET /api/bookings/{id}",
            "PUT /api/bookings/{id}",
            "PATCH /api/bookings/{id}/cancel",
            "PUT /api/bookings/{id}/reschedule",
            "PUT /api/bookings/{id}/complete",
            "PUT /api/bookings/{id}/no-show",
            "GET /api/bookings/{id}/emails",
            "PATCH /api/bookings/client/{id}/cancel",
        ],
        &[("path.id", b)],
    );
    ids(
        &["GET /api/clients/{id}", "PUT /api/clients/{id}"],
        &[("path.id", &client)],
    );
    ids(&["DELETE /api/clients/{id}"], &[("path.id", &doomed_client)]);
    ids(
        &[
            "GET /api/payments/{id}",
            "PUT /api/payments/{id}/status",
            "POST /api/payments/{id}/refund",
        ],
        &[("path.id", &payment)],
    );
    ids(
        &["POST /api/payments"],
        &[("body.clientId", &client), ("body.bookingId", b)],
    );
    ids(
        &[
            "GET /api/session-notes/{id}",
            "PUT /api/session-notes/{id}",
            "GET /api/notes/{id}",
            "PUT /api/notes/{id}",
        ],
        &[("path.id", &note_id)],
    );
    ids(&["DELETE /api/session-notes/{id}"], &[("path.id", &doomed_note)]);
    ids(&["DELETE /api/notes/{id}"], &[("path.id", &doomed_alias_note)]);
    ids(
        &["GET /api/session-notes", "GET /api/notes"],
        &[("query.client_id", &client)],
    );
    let password = "correct horse battery";
    ids(
        &["POST /api/auth/login"],
        &[("body.email", &me.email), ("body.password", password)],
    );
    ids(
        &["POST /api/clients/login"],
        &[("body.email", &login.email), ("body.password", password)],
    );
    ids(
        &["POST /api/session-notes", "POST /api/notes"],
        &[("body.clientId", &client), ("body.bookingId", b)],
    );
    ids(
        &[
            "GET /api/documents/{id}",
            "PUT /api/documents/{id}",
            "GET /api/documents/{id}/download",
            "POST /api/documents/{id}/share",
            "POST /api/documents/{id}/unshare",
            "GET /api/documents/client/{id}",
            "GET /api/documents/client/{id}/download",
        ],
        &[("path.id", &document)],
    );
    ids(&["DELETE /api/documents/{id}"], &[("path.id", &doomed_document)]);
    ids(
        &[
            "POST /api/documents/{id}/share",
            "POST /api/documents/{id}/unshare",
        ],
        &[("body.clientId", &client)],
    );
    ids(
        &[
            "POST /api/reviews/{id}/response",
            "POST /api/reviews/{id}/responses",
        ],
        &[("path.id", &review)],
    );
    ids(&["POST /api/reviews/create"], &[("body.bookingId", &to_review)]);
    ids(&["PUT /api/availability/blocks/{id}"], &[("path.id", &block_id)]);
    ids(
        &["DELETE /api/availability/blocks/{id}"],
        &[("path.id", &doomed_block)],
    );
    ids(
        &["PUT /api/availability/exceptions/{id}"],
        &[("path.id", &absence_id)],
    );
    ids(
        &["DELETE /api/availability/exceptions/{id}"],
        &[("path.id", &doomed_absence)],
    );
    ids(
        &["POST /api/notifications/{id}/read"],
        &[("path.id", &notification)],
    );
    ids(&["GET /api/media/{id}"], &[("path.id", &media)]);
    ids(
        &[
            "GET /api/availability/therapist/{id}",
            "GET /api/availability/therapist/{id}/date/{date}",
            "GET /api/availability/therapist/{id}/blocks",
        ],
        &[("path.id", &me.id)],
    );
    ids(
        &[
            "POST /api/bookings/client/book",
            "POST /api/availability/check-slot",
        ],
        &[("body.therapistId", &me.id)],
    );
    ids(&["POST /api/bookings"], &[("body.clientId", &client)]);
    for (name, why) in NOT_ALWAYS_ACCEPTED {
        writeln!(c, "# {why}\n[[operations]]\ninclude-name = {name:?}\nchecks.positive_data_acceptance.enabled = false\n").unwrap();
    }
    c
}

/// An uploaded banner's media id.
async fn media_id(app: &TestApp, me: &Caller) -> String {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(PNG.to_vec()).file_name("b.png"),
    );
    let r = app
        .client
        .post(app.url("/api/profile/banner"))
        .header("Authorization", &me.auth)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body = created(r, "banner").await;
    let url = body["data"]["url"]
        .as_str()
        .or(body["data"]["banner"].as_str())
        .expect("banner url");
    url.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_schema_driven_fuzzer_finds_the_app_as_documented() {
    let Some(bin) = crate::openapi::tools() else {
        return;
    };
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let login = client_user(&app).await;
    let dir = std::env::temp_dir().join(format!("dhara-st-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/openapi_hooks.py");
    let config = seed(&app, &me, &login, hooks).await;
    std::fs::write(dir.join("schemathesis.toml"), &config).unwrap();
    // `DHARA_SCHEMATHESIS_DEEP=1` adds the coverage phase: every constraint's boundaries and
    // violations, about two minutes here, so not in every run.
    let phases = match std::env::var("DHARA_SCHEMATHESIS_DEEP").as_deref() {
        Ok("1") => "examples,coverage,fuzzing",
        _ => "examples,fuzzing",
    };
    let started = Instant::now();
    let out = tokio::process::Command::new(bin.join("st"))
        .current_dir(&dir)
        .args(["--config-file", "schemathesis.toml", "run"])
        .arg(app.url("/api/openapi.json"))
        .args([
            "--seed",
            "15",
            "--max-examples",
            EXAMPLES,
            "--phases",
            phases,
            "--generation-database",
            "none",
            "--no-shrink",
            "--request-timeout",
            "30",
            // Signing out would end the very sessions the run uses.
            "--exclude-path",
            "/api/auth/logout",
            "--no-color",
        ])
        .output()
        .await
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("schemathesis took {:?}", started.elapsed());
    std::fs::write(dir.join("report.txt"), &report).unwrap();
    eprintln!("report: {}", dir.join("report.txt").display());
    let tail: String = report
        .chars()
        .rev()
        .take(12_000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(out.status.success(), "schemathesis failed:\n{tail}");
    assert!(
        !report.contains("Schema Errors") && !report.to_lowercase().contains("schema error"),
        "{tail}"
    );
}
