//! Documents (issue 13): uploads streamed into GridFS, typed by content, owned, shared with
//! clients, downloaded whole or by ranges, deleted softly and swept by the worker.

use mongodb::bson::{doc, Document};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

/// `len` bytes of a PDF: the signature, then deterministic noise (every chunk different).
pub fn pdf_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A tiny valid PNG.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Uploads `bytes` as `name` with the form `fields`; the raw response.
pub async fn upload(
    app: &TestApp,
    who: &Caller,
    name: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    app.client
        .post(app.url("/api/documents/upload"))
        .header("Authorization", &who.auth)
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

/// Uploads and returns the stored document (201 expected).
pub async fn stored(
    app: &TestApp,
    who: &Caller,
    name: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> Value {
    let r = upload(app, who, name, bytes, fields).await;
    assert_eq!(r.status(), 201, "upload of {name}");
    let body = json_body(r).await;
    assert_eq!(
        body["data"]["documentId"], body["data"]["id"],
        "the dashboard reads data.documentId"
    );
    assert_eq!(body["documentId"], body["data"]["id"]);
    body["data"].clone()
}

/// What the database holds of documents and files: (documents, files, chunks).
pub async fn stored_counts(app: &TestApp) -> (u64, u64, u64) {
    (
        app.count("documents").await,
        app.count("files.files").await,
        app.count("files.chunks").await,
    )
}

/// Waits (polling) until the database holds exactly `want`.
pub async fn wait_counts(app: &TestApp, want: (u64, u64, u64)) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = stored_counts(app).await;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stored {got:?}, expected {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn get_range(app: &TestApp, who: &Caller, path: &str, range: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("Authorization", &who.auth)
        .header("Range", range)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_30_mb_file_round_trips_byte_identical_whole_and_by_ranges() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let bytes = pdf_bytes(30 * 1024 * 1024, 7);
    let digest = sha256_hex(&bytes);
    let name = "Informe de evolución \"final\".pdf";
    let d = stored(
        &app,
        &me,
        name,
        bytes.clone(),
        &[("title", "Informe"), ("category", "clinical")],
    )
    .await;
    assert_eq!(d["size"], bytes.len() as u64);
    assert_eq!(d["checksum"], digest.as_str(), "SHA-256 computed while streaming");
    assert_eq!(d["mimeType"], "application/pdf");
    assert_eq!(d["type"], "pdf");
    assert_eq!(d["filename"], name);
    let chunks = app.count("files.chunks").await;
    assert_eq!(
        chunks,
        (bytes.len() as u64).div_ceil(255 * 1024),
        "stored in GridFS chunks"
    );

    let path = format!("/api/documents/{}/download", d["id"].as_str().unwrap());
    let r = app.get_as(&path, &me).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-length"], bytes.len().to_string().as_str());
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{digest}\""));
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.contains("filename*=UTF-8''Informe%20de%20evoluci%C3%B3n%20%22final%22.pdf"),
        "{disposition}"
    );
    let body = r.bytes().await.unwrap();
    assert_eq!(sha256_hex(&body), digest, "byte-identical");

    let size = bytes.len();
    let boundary = 255 * 1024;
    for (range, from, to) in [
        ("bytes=0-99".to_owned(), 0, 99),
        (
            format!("bytes={}-{}", boundary - 10, boundary + 10),
            boundary - 10,
            boundary + 10,
        ),
        ("bytes=-500".to_owned(), size - 500, size - 1),
        (format!("bytes={}-", size - 1000), size - 1000, size - 1),
        (format!("bytes=1000-{}", size + 99), 1000, size - 1),
    ] {
        let r = get_range(&app, &me, &path, &range).await;
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {from}-{to}/{size}").as_str(),
            "{range}"
        );
        assert_eq!(&r.bytes().await.unwrap()[..], &bytes[from..=to], "{range}");
    }
    let r = get_range(&app, &me, &path, &format!("bytes={size}-")).await;
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], format!("bytes */{size}").as_str());
    // A stale If-Range gets the whole file, a matching one the range.
    let r = app
        .client
        .get(app.url(&path))
        .header("Authorization", &me.auth)
        .header("Range", "bytes=0-9")
        .header("If-Range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(r);
    let r = app
        .client
        .get(app.url(&path))
        .header("Authorization", &me.auth)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
}

#[tokio::test]
async fn a_refused_type_or_a_lying_extension_is_415_and_stores_nothing() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0\x01\0\0\0\0\0\0\0".repeat(100);
    let zip = b"PK\x03\x04\x14\0\0\0\x08\0\0\0!\0abc".repeat(50);
    for (name, bytes) in [
        ("informe.pdf", elf.clone()),
        ("notas.txt", elf),
        ("informe.pdf", PNG.to_vec()),
        ("archivo.zip", zip),
        ("script.sh", b"#!/bin/sh\nrm -rf /\n".to_vec()),
        ("page.html", b"<html><script>alert(1)</script></html>".to_vec()),
    ] {
        let r = upload(&app, &me, name, bytes, &[("title", "x")]).await;
        let body = assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE").await;
        assert!(body["message"].as_str().unwrap().len() > 10, "{body}");
    }
    // Content decides the type; the declared type is not trusted either way.
    let d = stored(&app, &me, "diagrama.png", PNG.to_vec(), &[]).await;
    assert_eq!(d["mimeType"], "image/png");
    assert_eq!(d["title"], "diagrama.png", "the file name when no title is given");
    let r = upload(&app, &me, "empty.txt", Vec::new(), &[]).await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    wait_counts(&app, (1, 1, 1)).await;
}

#[tokio::test]
async fn bad_metadata_is_400_a_strangers_client_is_404_and_nothing_stays() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let other = therapist(&app).await;
    let theirs = new_client(&app, &other, "Otra").await;
    let bytes = pdf_bytes(600 * 1024, 1);
    for (fields, status, field) in [
        (vec![("category", "secret")], 400, "category"),
        (vec![("clientId", "123")], 400, "clientId"),
        (vec![("isConfidential", "perhaps")], 400, "isConfidential"),
        (vec![("visibility", "everyone")], 400, "visibility"),
        (vec![("clientId", theirs.as_str())], 404, ""),
    ] {
        let r = upload(&app, &me, "a.pdf", bytes.clone(), &fields).await;
        assert_eq!(r.status(), status, "{fields:?}");
        let body = json_body(r).await;
        assert_eq!(body["success"], false);
        if !field.is_empty() {
            assert_eq!(body["errors"][0]["field"], field, "{body}");
        }
    }
    let r = app
        .client
        .post(app.url("/api/documents/upload"))
        .header("Authorization", &me.auth)
        .json(&json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let form = reqwest::multipart::Form::new().text("title", "no file");
    let r = app
        .client
        .post(app.url("/api/documents/upload"))
        .header("Authorization", &me.auth)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "VALIDATION_ERROR").await;
    wait_counts(&app, (0, 0, 0)).await;
}

#[tokio::test]
async fn ten_concurrent_uploads_are_each_stored_once_and_counted() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    // Small enough to stream in a moment: what races is the final writes (one usage document).
    let files: Vec<Vec<u8>> = (0..10)
        .map(|i| pdf_bytes(60 * 1024 + i * 7919, i as u64))
        .collect();
    let sends = files.iter().enumerate().map(|(i, f)| {
        let (app, me) = (&app, &me);
        async move { stored(app, me, &format!("doc-{i}.pdf"), f.clone(), &[("tags", "lote")]).await }
    });
    let docs = futures_util::future::join_all(sends).await;
    let total: u64 = files.iter().map(|f| f.len() as u64).sum();
    assert_eq!(app.count("documents").await, 10);
    assert_eq!(app.count("files.files").await, 10);
    let usage = json_body(app.get_as("/api/documents/usage", &me).await).await;
    assert_eq!(usage["data"]["used"], total);
    assert_eq!(usage["data"]["fileCount"], 10);
    for (d, f) in docs.iter().zip(&files) {
        let path = format!("/api/documents/{}/download", d["id"].as_str().unwrap());
        let body = app.get_as(&path, &me).await.bytes().await.unwrap();
        assert_eq!(sha256_hex(&body), sha256_hex(f));
    }
    let list = json_body(app.get_as("/api/documents?tags=lote&limit=100", &me).await).await;
    assert_eq!(list["data"]["pagination"]["total"], 10);
}

#[tokio::test]
async fn another_therapists_document_is_not_found_everywhere() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let other = therapist(&app).await;
    let mine = new_client(&app, &me, "Ana").await;
    let d = stored(
        &app,
        &me,
        "consent.pdf",
        pdf_bytes(2048, 3),
        &[("clientId", &mine)],
    )
    .await;
    let id = d["id"].as_str().unwrap();
    let theirs = new_client(&app, &other, "Luis").await;
    for r in [
        app.get_as(&format!("/api/documents/{id}"), &other).await,
        app.get_as(&format!("/api/documents/{id}/download"), &other).await,
        app.put_as(
            &format!("/api/documents/{id}"),
            &other,
            &json!({ "title": "mine now" }),
        )
        .await,
        app.post_as(
            &format!("/api/documents/{id}/share"),
            &other,
            &json!({ "clientId": theirs }),
        )
        .await,
        app.delete_as(&format!("/api/documents/{id}"), &other).await,
    ] {
        assert_error(r, 404, "NOT_FOUND").await;
    }
    // And my document cannot be pointed at their client, nor listed by it.
    let r = app
        .put_as(
            &format!("/api/documents/{id}"),
            &me,
            &json!({ "clientId": theirs }),
        )
        .await;
    assert_error(r, 404, "NOT_FOUND").await;
    let r = app
        .get_as(&format!("/api/documents?clientId={theirs}"), &me)
        .await;
    assert_error(r, 404, "NOT_FOUND").await;
    let list = json_body(app.get_as("/api/documents", &other).await).await;
    assert_eq!(list["data"]["documents"], json!([]));
    let stored: Document = app
        .db
        .collection("documents")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.get_str("title").unwrap(), "consent.pdf", "unchanged");
    assert_eq!(stored.get_str("status").unwrap(), "active");
    // A malformed id is a 400 naming it.
    let r = app.get_as("/api/documents/nope", &me).await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
}

#[tokio::test]
async fn metadata_edits_apply_and_bad_ones_name_the_field() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let ana = new_client(&app, &me, "Ana").await;
    let d = stored(
        &app,
        &me,
        "plan.txt",
        "Plan de tratamiento\n".as_bytes().to_vec(),
        &[],
    )
    .await;
    assert_eq!(d["mimeType"], "text/plain");
    let id = d["id"].as_str().unwrap();
    let path = format!("/api/documents/{id}");
    let edit = json!({ "title": "Plan", "description": "Semana 1", "category": "clinical", "tags": ["plan", " plan "],
        "clientId": ana, "visibility": "private", "updatedAt": "2026-01-01T00:00:00Z", "updatedBy": "x" });
    let r = app.put_as(&path, &me, &edit).await;
    assert_eq!(r.status(), 200);
    let v = json_body(r).await["data"].clone();
    assert_eq!(
        (
            v["title"].as_str(),
            v["category"].as_str(),
            v["clientId"].as_str()
        ),
        (Some("Plan"), Some("clinical"), Some(ana.as_str()))
    );
    assert_eq!(v["clientName"], "Ana");
    assert_eq!(v["tags"], json!(["plan"]));
    for (body, field) in [
        (json!({ "category": "nope" }), "category"),
        (json!({ "title": "" }), "title"),
        (json!({ "title": "x".repeat(201) }), "title"),
        (json!({ "tags": "plan" }), "tags"),
        (json!({ "clientId": "zz" }), "clientId"),
    ] {
        let r = app.put_as(&path, &me, &body).await;
        let err = assert_error(r, 400, "VALIDATION_ERROR").await;
        assert_eq!(err["errors"][0]["field"], field, "{err}");
    }
    let v = json_body(
        app.put_as(&path, &me, &json!({ "clientId": null, "description": null }))
            .await,
    )
    .await["data"]
        .clone();
    assert_eq!(
        (v["clientId"].clone(), v["description"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(v["title"], "Plan", "what was not sent is kept");
}
