//! The OpenAPI document (issue 15): it validates as OpenAPI 3.1 and `/api/docs` serves its
//! reference; `openapi_fuzz` runs a schema-driven fuzzer against the app.

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// The schemathesis venv's `bin/` (exported by `scripts/test.sh`): `st` and
/// `openapi-spec-validator`. Without it the tests fail under CI and are skipped otherwise.
pub fn tools() -> Option<std::path::PathBuf> {
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

/// Every `(METHOD, path)` the routers declare: each `.route("path", get(..).post(..))` of the
/// sources (test modules aside). Routes served under a second path (`openapi::finish::ALIASES`)
/// are declared twice, so they appear under both.
fn served_routes() -> std::collections::BTreeSet<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut routes = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's arguments: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap_or_else(|| panic!("unclosed .route( in {}", file.display()));
            let call = &rest[..end];
            let path = call.split('"').nth(1).expect("a route's path literal");
            for method in ["get", "post", "put", "patch", "delete"] {
                let named = call
                    .match_indices(&format!("{method}("))
                    .any(|(i, _)| i == 0 || !call[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
                if named {
                    routes.insert((method.to_uppercase(), path.to_owned()));
                }
            }
        }
    }
    routes
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_served() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served = served_routes();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(unserved.is_empty(), "documented but not served: {unserved:?}");
    // And the router itself answers each: never its fallback (404 `Route ... not found`) or 405.
    for (method, path) in &documented {
        let url = path
            .replace("{date}", "2026-01-05")
            .replace(['{', '}'], "")
            .split('/')
            .map(|seg| {
                if seg.ends_with("id") && !seg.is_empty() {
                    "000000000000000000000000"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let r = app
            .client
            .request(method.parse().unwrap(), app.url(&url))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {url}: {body}");
        assert!(
            !(status == 404 && body.contains("\"Route ")),
            "{method} {url} is not routed: {body}"
        );
    }
}

/// The last path segment of a type (`super::model::DateRange` -> `DateRange`).
fn last_segment(ty: &str) -> &str {
    ty.rsplit("::").next().unwrap_or(ty).trim()
}

/// Each handler documents its query through the extractor it takes (`params(ApiQuery<Q>)`), so
/// the document lists every name serde reads for it, aliases included (`http::docs::query`).
#[test]
fn every_handler_documents_the_query_it_reads() {
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut checked = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for block in text.split("#[utoipa::path(").skip(1) {
                let Some(fn_at) = block.find("pub async fn ") else {
                    continue;
                };
                let (annotation, handler) = block.split_at(fn_at);
                let args = handler.split(") ->").next().unwrap_or_default();
                for read in args.split("ApiQuery<").skip(1) {
                    let ty = last_segment(read.split('>').next().unwrap());
                    let documented = annotation
                        .split("ApiQuery<")
                        .skip(1)
                        .any(|d| last_segment(d.split('>').next().unwrap()) == ty);
                    assert!(
                        documented,
                        "{}: a handler reads ApiQuery<{ty}> but does not document it",
                        path.display()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} queries found");
}
