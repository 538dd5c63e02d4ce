//! Documents between a therapist and their clients, within a quota, deleted softly; avatars
//! and banners on the same storage.

use serde_json::{json, Value};

use crate::documents::{pdf_bytes, sha256_hex, stored, stored_counts, upload, wait_counts, PNG};
use crate::helpers::*;

/// A client login linked to a record `me` keeps for it; (login, record id).
async fn linked_client(app: &TestApp, me: &Caller, name: &str) -> (Caller, String) {
    let login = client_user(app).await;
    let r = app
        .post_as("/api/clients", me, &json!({ "name": name, "email": login.email }))
        .await;
    assert_eq!(r.status(), 201);
    let record = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    (login, record)
}

fn titles(list: &Value) -> Vec<String> {
    let mut t: Vec<String> = list["data"]["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn a_client_sees_and_downloads_only_what_was_shared_with_them() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let (ana, ana_record) = linked_client(&app, &me, "Ana").await;
    let (luis, _) = linked_client(&app, &me, "Luis").await;
    let exercise = pdf_bytes(400 * 1024, 11);
    let shared = stored(
        &app,
        &me,
        "ejercicios.pdf",
        exercise.clone(),
        &[
            ("title", "Ejercicios"),
            ("clientId", &ana_record),
            ("visibility", "client_shared"),
            ("isConfidential", "false"),
        ],
    )
    .await;
    assert_eq!(shared["isShared"], true);
    let private = stored(
        &app,
        &me,
        "notas.txt",
        b"solo para mi\n".to_vec(),
        &[("title", "Notas"), ("clientId", &ana_record)],
    )
    .await;
    // Confidential wins over a request to share at upload, and sharing it later is refused.
    let r = upload(
        &app,
        &me,
        "informe.pdf",
        pdf_bytes(1000, 12),
        &[
            ("title", "Informe clínico"),
            ("clientId", &ana_record),
            ("visibility", "client_shared"),
            ("isConfidential", "true"),
        ],
    )
    .await;
    assert_eq!(r.status(), 201);
    let secret = json_body(r).await;
    assert!(
        secret["message"].as_str().unwrap().contains("confidential"),
        "{secret}"
    );
    assert_eq!(secret["data"]["isShared"], false);
    let secret_id = secret["data"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post_as(
            &format!("/api/documents/{secret_id}/share"),
            &me,
            &json!({ "clientId": ana_record }),
        )
        .await;
    assert_error(r, 409, "DOCUMENT_CONFIDENTIAL").await;

    let mine = json_body(app.get_as("/api/documents/client", &ana).await).await;
    assert_eq!(titles(&mine), vec!["Ejercicios"]);
    assert!(
        mine["data"]["documents"][0].get("sharedWith").is_none(),
        "no other client is shown"
    );
    let sid = shared["id"].as_str().unwrap();
    let r = app
        .get_as(&format!("/api/documents/client/{sid}/download"), &ana)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(sha256_hex(&r.bytes().await.unwrap()), sha256_hex(&exercise));
    for id in [private["id"].as_str().unwrap(), secret_id.as_str()] {
        assert_error(
            app.get_as(&format!("/api/documents/client/{id}"), &ana).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_error(
            app.get_as(&format!("/api/documents/client/{id}/download"), &ana)
                .await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
    // Another client of the same therapist sees none of it; a client token reaches no therapist route.
    assert_eq!(
        titles(&json_body(app.get_as("/api/documents/client", &luis).await).await),
        Vec::<String>::new()
    );
    assert_error(
        app.get_as(&format!("/api/documents/client/{sid}/download"), &luis)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        app.get_as(&format!("/api/documents/{sid}/download"), &ana)
            .await
            .status(),
        403
    );

    // Shared explicitly, then unshared; made confidential, hidden at once.
    let pid = private["id"].as_str().unwrap();
    let r = app
        .post_as(
            &format!("/api/documents/{pid}/share"),
            &me,
            &json!({ "sharedWith": ana_record }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        titles(&json_body(app.get_as("/api/documents/client", &ana).await).await),
        vec!["Ejercicios", "Notas"]
    );
    let r = app
        .post_as(
            &format!("/api/documents/{pid}/unshare"),
            &me,
            &json!({ "clientId": ana_record }),
        )
        .await;
    assert_eq!(json_body(r).await["data"]["isShared"], false);
    app.put_as(
        &format!("/api/documents/{sid}"),
        &me,
        &json!({ "isConfidential": true }),
    )
    .await;
    assert_eq!(
        titles(&json_body(app.get_as("/api/documents/client", &ana).await).await),
        Vec::<String>::new()
    );
    let r = app
        .post_as(&format!("/api/documents/{sid}/share"), &me, &json!({}))
        .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
}

#[tokio::test]
async fn the_quota_holds_under_racing_uploads_and_a_delete_frees_it() {
    let app = spawn_app_with(&[
        ("DHARA_DOCUMENTS__MAX_FILE_BYTES", "1048576"),
        ("DHARA_DOCUMENTS__QUOTA_BYTES", "1572864"),
    ])
    .await;
    let me = therapist(&app).await;
    let mb = 1024 * 1024;
    // Six uploads of 600 KB at once into 1.5 MB: exactly two fit, whatever the interleaving.
    let part = 600 * 1024;
    let sends = (0..6).map(|i| upload(&app, &me, "a.pdf", pdf_bytes(part, i), &[]));
    let answers = futures_util::future::join_all(sends).await;
    let mut codes: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![201, 201, 413, 413, 413, 413],
        "two uploads fit the quota"
    );
    for r in answers.into_iter().filter(|r| r.status() == 413) {
        assert_error(r, 413, "STORAGE_QUOTA_EXCEEDED").await;
    }
    wait_counts(&app, (2, 2, 6)).await;
    let usage = json_body(app.get_as("/api/documents/usage", &me).await).await["data"].clone();
    assert_eq!(
        (usage["used"].as_u64(), usage["limit"].as_u64()),
        (Some(2 * part as u64), Some(1572864))
    );
    assert_eq!(usage["available"], 1572864 - 2 * part as u64);
    let held: mongodb::bson::Document = app
        .db
        .collection("document_usage")
        .find_one(mongodb::bson::doc! {})
        .await
        .unwrap()
        .unwrap();
    assert!(
        held.get_array("holds").map_or(true, |h| h.is_empty()),
        "no hold left: {held}"
    );

    let list = json_body(app.get_as("/api/documents", &me).await).await;
    let id = list["data"]["documents"][0]["id"].as_str().unwrap().to_owned();
    let r = app.delete_as(&format!("/api/documents/{id}"), &me).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_body(app.get_as("/api/documents/usage", &me).await).await["data"]["used"],
        part,
        "a delete frees its bytes at once"
    );
    stored(&app, &me, "c.pdf", pdf_bytes(900 * 1024, 3), &[]).await;
    let r = upload(&app, &me, "d.pdf", pdf_bytes(mb, 4), &[]).await;
    assert_error(r, 413, "STORAGE_QUOTA_EXCEEDED").await;
}

#[tokio::test]
async fn a_delete_is_soft_and_the_worker_removes_the_file_after_the_grace() {
    let app = spawn_app_with(&[
        ("DHARA_WORKER__ENABLED", "false"),
        ("DHARA_DOCUMENTS__PURGE_AFTER_HOURS", "0"),
    ])
    .await;
    let me = therapist(&app).await;
    let keep = stored(&app, &me, "keep.pdf", pdf_bytes(300 * 1024, 1), &[]).await;
    let gone = stored(&app, &me, "gone.pdf", pdf_bytes(300 * 1024, 2), &[]).await;
    let id = gone["id"].as_str().unwrap();
    let r = app.delete_as(&format!("/api/documents/{id}"), &me).await;
    assert_eq!(json_body(r).await["data"]["status"], "deleted");
    assert_error(
        app.delete_as(&format!("/api/documents/{id}"), &me).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get_as(&format!("/api/documents/{id}/download"), &me).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let live = json_body(app.get_as("/api/documents?includeDeleted=false", &me).await).await;
    assert_eq!(titles(&live), vec!["keep.pdf"]);
    let all = json_body(app.get_as("/api/documents?includeDeleted=true", &me).await).await;
    assert_eq!(titles(&all), vec!["gone.pdf", "keep.pdf"]);
    let (docs, files, chunks) = stored_counts(&app).await;
    assert_eq!((docs, files), (2, 2), "the file stays until the worker's sweep");

    let mut config = app.config.clone();
    config.worker.enabled = true;
    let _worker = spawn_with_config(config).await;
    wait_counts(&app, (1, 1, chunks / 2)).await;
    let r = app
        .get_as(
            &format!("/api/documents/{}/download", keep["id"].as_str().unwrap()),
            &me,
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_dashboards_documents_page_reads_its_list_and_statistics() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let ana = new_client(&app, &me, "Ana García").await;
    // What its upload form sends: file first, then its fields and its own bookkeeping.
    stored(
        &app,
        &me,
        "respiracion.pdf",
        pdf_bytes(2048, 1),
        &[
            ("title", "Ejercicios de respiración"),
            ("category", "educational"),
            ("clientId", &ana),
            ("session", ""),
            ("tags", "[\"ansiedad\",\"ejercicios\"]"),
            ("visibility", "therapist_only"),
            ("isConfidential", "true"),
            ("metadata", "{\"documentId\":\"doc_x\"}"),
            ("options", "{\"encrypt\":false}"),
        ],
    )
    .await;
    stored(
        &app,
        &me,
        "relajacion.txt",
        b"Relajacion muscular\n".to_vec(),
        &[("category", "educational")],
    )
    .await;
    stored(
        &app,
        &me,
        "diagrama.png",
        PNG.to_vec(),
        &[("category", "clinical"), ("clientId", "")],
    )
    .await;
    // Fields before the file are read the same way.
    let form = reqwest::multipart::Form::new()
        .text("title", "Antes del archivo")
        .text("category", "legal")
        .text("clientId", ana.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(pdf_bytes(1024, 9)).file_name("primero.pdf"),
        );
    let r = app
        .client
        .post(app.url("/api/documents/upload"))
        .header("Authorization", &me.auth)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let early = json_body(r).await["data"].clone();
    assert_eq!(
        (
            early["title"].as_str(),
            early["category"].as_str(),
            early["clientId"].as_str()
        ),
        (Some("Antes del archivo"), Some("legal"), Some(ana.as_str()))
    );
    let r = app
        .delete_as(&format!("/api/documents/{}", early["id"].as_str().unwrap()), &me)
        .await;
    assert_eq!(r.status(), 200);
    let q = "/api/documents?page=1&limit=20&sortBy=uploadedAt&sortOrder=desc&includeDeleted=false";
    let list = json_body(app.get_as(q, &me).await).await;
    let docs = list["data"]["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0]["title"], "diagrama.png", "newest first");
    assert_eq!(list["data"]["pagination"]["total"], 3);
    let first = docs.iter().find(|d| d["filename"] == "respiracion.pdf").unwrap();
    for field in [
        "id",
        "_id",
        "title",
        "filename",
        "type",
        "mimeType",
        "createdAt",
        "uploadedAt",
        "clientId",
        "clientName",
        "category",
        "status",
    ] {
        assert!(first[field].is_string(), "`{field}` in {first}");
    }
    assert_eq!(first["clientName"], "Ana García");
    assert_eq!(first["tags"], json!(["ansiedad", "ejercicios"]));
    assert!(first["size"].is_number() && first["isShared"].is_boolean());
    let page2 = json_body(
        app.get_as(
            "/api/documents?page=2&limit=2&sortBy=uploadedAt&sortOrder=desc",
            &me,
        )
        .await,
    )
    .await;
    assert_eq!(page2["data"]["documents"].as_array().unwrap().len(), 1);
    let by_search = json_body(
        app.get_as("/api/documents?search=respiraci%C3%B3n&type=pdf,image", &me)
            .await,
    )
    .await;
    assert_eq!(titles(&by_search), vec!["Ejercicios de respiración"]);
    assert_error(
        app.get_as("/api/documents?type=exe", &me).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        app.get_as("/api/documents?sortBy=owner", &me).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;

    let stats = json_body(
        app.get_as("/api/documents/statistics?groupBy=category", &me)
            .await,
    )
    .await["data"]
        .clone();
    assert_eq!(stats["totalDocuments"], 3);
    assert_eq!(stats["byCategory"]["educational"]["count"], 2);
    assert_eq!(stats["byCategory"]["clinical"]["count"], 1);
    assert_eq!(stats["byCategory"]["clinical"]["totalSize"], PNG.len());
    assert_eq!(stats["storage"]["used"], stats["totalSize"]);
    let by_type =
        json_body(app.get_as("/api/documents/statistics?groupBy=type", &me).await).await["data"].clone();
    assert_eq!(by_type["byType"]["pdf"]["count"], 1);
}

#[tokio::test]
async fn avatars_and_banners_are_images_served_publicly_and_shown_where_the_user_is() {
    let app = spawn_app_with(&[("DHARA_DOCUMENTS__MAX_IMAGE_BYTES", "4096")]).await;
    let me = therapist(&app).await;
    let send = |path: &'static str, name: &'static str, bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name));
        app.client
            .post(app.url(path))
            .header("Authorization", &me.auth)
            .multipart(form)
            .send()
    };
    let r = send("/api/profile/avatar", "me.png", PNG.to_vec()).await.unwrap();
    assert_eq!(r.status(), 200);
    let first = json_body(r).await["data"]["avatar"].as_str().unwrap().to_owned();
    assert!(first.starts_with("/api/media/"), "{first}");
    let me_now = json_body(app.get_as("/api/auth/me", &me).await).await;
    assert_eq!(
        me_now["user"]["avatar"],
        first.as_str(),
        "reflected in /auth/me at once"
    );
    let r = app.get(&first).await;
    assert_eq!(r.status(), 200, "public, no token");
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age=31536000"));
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(&r.bytes().await.unwrap()[..], PNG);
    let r = app
        .client
        .get(app.url(&first))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    let r = send("/api/profile/banner", "banner.png", PNG.to_vec())
        .await
        .unwrap();
    let banner = json_body(r).await["data"]["banner"].as_str().unwrap().to_owned();
    let public = json_body(app.get(&format!("/api/profile/public/{}", me.id)).await).await;
    let text = public.to_string();
    assert!(text.contains(&banner) && text.contains(&first), "{public}");
    // The dashboard saves its profile form with the banner link it read: accepted as is.
    let r = app
        .put_as("/api/profile", &me, &json!({ "banner": banner, "about": "Hola" }))
        .await;
    assert_eq!(r.status(), 200);

    // Replaced: the new one is current, the old link still answers for a while.
    let r = send("/api/profile/avatar", "again.png", PNG.to_vec())
        .await
        .unwrap();
    let second = json_body(r).await["data"]["avatar"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(
        json_body(app.get_as("/api/auth/me", &me).await).await["user"]["avatar"],
        second.as_str()
    );
    assert_eq!(app.get(&first).await.status(), 200);

    // Only images, only so large.
    let r = send("/api/profile/avatar", "me.pdf", pdf_bytes(1000, 1))
        .await
        .unwrap();
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let big = [PNG, &vec![0u8; 5000]].concat();
    let r = send("/api/profile/avatar", "big.png", big).await.unwrap();
    assert_error(r, 413, "FILE_TOO_LARGE").await;
    assert_eq!(
        json_body(app.get_as("/api/auth/me", &me).await).await["user"]["avatar"],
        second.as_str(),
        "unchanged"
    );
    let r = app.delete_as("/api/profile/avatar", &me).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_body(app.get_as("/api/auth/me", &me).await).await["user"]["avatar"],
        Value::Null
    );
    assert_error(
        app.get("/api/media/0123456789abcdef01234567").await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn an_edit_that_sends_back_the_same_visibility_keeps_the_sharing() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let (ana, ana_record) = linked_client(&app, &me, "Ana").await;
    let doc = stored(
        &app,
        &me,
        "pauta.txt",
        b"pauta semanal\n".to_vec(),
        &[("title", "Pauta"), ("clientId", &ana_record)],
    )
    .await;
    let id = doc["id"].as_str().unwrap();
    assert_eq!(doc["visibility"], "therapist_only");
    let r = app
        .post_as(
            &format!("/api/documents/{id}/share"),
            &me,
            &json!({ "clientId": ana_record }),
        )
        .await;
    assert_eq!(r.status(), 200);
    // An edit form sends every field back, the unchanged visibility among them.
    let r = app
        .put_as(
            &format!("/api/documents/{id}"),
            &me,
            &json!({ "title": "Pauta semanal", "visibility": "therapist_only" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body = json_body(r).await;
    assert_eq!(body["data"]["sharedWith"], json!([ana_record]));
    assert_eq!(
        titles(&json_body(app.get_as("/api/documents/client", &ana).await).await),
        vec!["Pauta semanal"]
    );

    // A document that stops being meant for clients stops being shared.
    let shared = stored(
        &app,
        &me,
        "guia.txt",
        b"guia\n".to_vec(),
        &[
            ("title", "Guia"),
            ("clientId", &ana_record),
            ("visibility", "client_shared"),
        ],
    )
    .await;
    assert_eq!(shared["isShared"], true);
    let sid = shared["id"].as_str().unwrap();
    let r = app
        .put_as(
            &format!("/api/documents/{sid}"),
            &me,
            &json!({ "visibility": "therapist_only" }),
        )
        .await;
    assert_eq!(json_body(r).await["data"]["isShared"], false);
    let stored_doc: mongodb::bson::Document = app
        .db
        .collection("documents")
        .find_one(mongodb::bson::doc! { "_id": mongodb::bson::oid::ObjectId::parse_str(sid).unwrap() })
        .await
        .unwrap()
        .unwrap();
    assert!(stored_doc.get_array("sharedWith").unwrap().is_empty());
    assert_eq!(
        titles(&json_body(app.get_as("/api/documents/client", &ana).await).await),
        vec!["Pauta semanal"]
    );
}
