//! The OpenAPI document (issue 15): it validates as OpenAPI 3.1, `/api/docs` serves its
//! reference, and a schema-driven fuzzer (schemathesis, pinned and installed by
//! `scripts/test.sh`) finds the real app answering as the document says, signed in as a
//! therapist and as a client.

use std::time::Instant;

use crate::helpers::{client_user, spawn_app, spawn_app_with, therapist, TestApp};

/// The schemathesis venv's `bin/` (exported by `scripts/test.sh`): `st` and
/// `openapi-spec-validator`. Without it the tests fail under CI and are skipped otherwise.
fn tools() -> Option<std::path::PathBuf> {
    match std::env::var_os("DHARA_SCHEMATHESIS_BIN") {
        Some(dir) => Some(dir.into()),
        None if std::env::var_os("CI").is_some() => {
            panic!("DHARA_SCHEMATHESIS_BIN is not set: run the suite through scripts/test.sh")
        }
        None => {
            eprintln!("skipped: DHARA_SCHEMATHESIS_BIN is not set (scripts/test.sh installs schemathesis and sets it)");
            None
        }
    }
}

async fn document(app: &TestApp) -> std::path::PathBuf {
    let body = app.get("/api/openapi.json").await.text().await.unwrap();
    let path = std::env::temp_dir().join(format!("dhara-openapi-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, body).unwrap();
    path
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let Some(bin) = tools() else { return };
    let app = spawn_app().await;
    let path = document(&app).await;
    let out = tokio::process::Command::new(bin.join("openapi-spec-validator"))
        .arg(&path)
        .output()
        .await
        .expect("openapi-spec-validator runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", &text[..text.len().min(2000)]);
}

#[tokio::test]
async fn the_reference_is_served_where_configured() {
    let app = spawn_app().await;
    let r = app.get("/api/docs/").await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    assert!(!page.contains("https://"), "no outside assets: {page}");
    let config = app
        .get("/api/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(config.contains("/api/openapi.json"), "{config}");
    let off = spawn_app_with(&[("DHARA_HTTP__API_DOCS", "false")]).await;
    assert_eq!(off.get("/api/docs/").await.status(), 404);
}

#[tokio::test]
async fn a_schema_driven_fuzzer_finds_the_app_as_documented() {
    let Some(bin) = tools() else { return };
    let app = spawn_app().await;
    let therapist = therapist(&app).await;
    let client = client_user(&app).await;
    let dir = std::env::temp_dir().join(format!("dhara-st-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = |auth: &str| auth.trim_start_matches("Bearer ").to_owned();
    let config = format!(
        "[auth.openapi.therapist]\nbearer = \"{}\"\n\n[auth.openapi.client]\nbearer = \"{}\"\n",
        token(&therapist.auth),
        token(&client.auth)
    );
    std::fs::write(dir.join("schemathesis.toml"), config).unwrap();
    let started = Instant::now();
    let out = tokio::process::Command::new(bin.join("st"))
        .current_dir(&dir)
        .args(["--config-file", "schemathesis.toml", "run"])
        .arg(app.url("/api/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            // Fixed and bounded: the same cases each run, within the CI budget.
            "--seed",
            "15",
            "--max-examples",
            "4",
            "--phases",
            "examples,fuzzing",
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
    let summary: String = report
        .lines()
        .rev()
        .take(25)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("{summary}");
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
