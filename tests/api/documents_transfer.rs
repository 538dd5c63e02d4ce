//! Uploads that go wrong on the wire: over the size limit (413 at the crossing byte, nothing
//! read beyond), a declared length over it (413 before reading), a form cut short, a client
//! that hangs up midway. Each leaves no document and no GridFS file behind.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::documents::{pdf_bytes, stored_counts, wait_counts};
use crate::helpers::*;

const BOUNDARY: &str = "dharaBoundary7MA4YWxkTrZu0gW";

fn form_head(name: &str) -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nInforme\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes()
}

fn form_tail() -> Vec<u8> {
    format!("\r\n--{BOUNDARY}--\r\n").into_bytes()
}

/// Request headers of an upload; `length` None: chunked.
fn request_head(app: &TestApp, who: &Caller, length: Option<usize>) -> Vec<u8> {
    let framing = match length {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    format!(
        "POST /api/documents/upload HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{framing}\r\n",
        app.socket_addr(),
        who.auth
    )
    .into_bytes()
}

/// Reads what the server answered so far (waits up to `wait` for a status line).
async fn status_line(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while !got.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).to_string();
    text.lines()
        .next()
        .map(str::to_owned)
        .filter(|l| l.starts_with("HTTP/1.1"))
}

#[tokio::test]
async fn over_the_limit_is_413_at_the_crossing_byte_and_nothing_is_kept() {
    let limit = 1024 * 1024;
    let app = spawn_app_with(&[("DHARA_DOCUMENTS__MAX_FILE_BYTES", "1048576")]).await;
    let me = therapist(&app).await;

    // Chunked (no declared length): the server must stop reading at the limit.
    let mut s = TcpStream::connect(app.socket_addr()).await.unwrap();
    s.write_all(&request_head(&app, &me, None)).await.unwrap();
    let head = form_head("grande.pdf");
    let data = pdf_bytes(8 * limit, 9);
    let mut sent = 0usize;
    let mut answer = None;
    let pieces = std::iter::once(head.as_slice()).chain(data.chunks(16 * 1024));
    for piece in pieces {
        let frame = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
        if s.write_all(&frame).await.is_err() {
            break;
        }
        sent += piece.len();
        // Is there an answer already?
        if let Ok(Some(line)) = tokio::time::timeout(
            Duration::from_millis(1),
            status_line(&mut s, Duration::from_millis(1)),
        )
        .await
        {
            answer = Some(line);
            break;
        }
    }
    let answer = match answer {
        Some(a) => a,
        None => status_line(&mut s, Duration::from_secs(10))
            .await
            .expect("an answer"),
    };
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        sent < 3 * limit,
        "answered after {sent} bytes: at the limit, not at the end"
    );
    drop(s);

    // A declared length over the limit is refused before anything is read.
    let mut s = TcpStream::connect(app.socket_addr()).await.unwrap();
    s.write_all(&request_head(&app, &me, Some(5 * limit)))
        .await
        .unwrap();
    let answer = status_line(&mut s, Duration::from_secs(10))
        .await
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // The same through an ordinary client, with the error body.
    let r = crate::documents::upload(&app, &me, "grande.pdf", pdf_bytes(limit + 1, 2), &[]).await;
    let body = assert_error(r, 413, "FILE_TOO_LARGE").await;
    assert!(body["message"].as_str().unwrap().contains("1 MB"), "{body}");
    wait_counts(&app, (0, 0, 0)).await;
    // Exactly at the limit is fine.
    crate::documents::stored(&app, &me, "justo.pdf", pdf_bytes(limit, 3), &[]).await;
    assert_eq!(stored_counts(&app).await.0, 1);
}

#[tokio::test]
async fn a_truncated_form_and_a_client_that_hangs_up_leave_nothing_behind() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let data = pdf_bytes(2 * 1024 * 1024, 4);
    let body = [form_head("a.pdf"), data.clone(), form_tail()].concat();

    // Truncated: the declared length arrives but the form never ends (no closing boundary).
    let cut = [form_head("a.pdf"), data.clone()].concat();
    let mut s = TcpStream::connect(app.socket_addr()).await.unwrap();
    s.write_all(&request_head(&app, &me, Some(cut.len())))
        .await
        .unwrap();
    s.write_all(&cut).await.unwrap();
    let answer = status_line(&mut s, Duration::from_secs(20))
        .await
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    drop(s);
    wait_counts(&app, (0, 0, 0)).await;

    // Hang-up: half the body (past the first GridFS chunks), then the connection closes.
    let mut s = TcpStream::connect(app.socket_addr()).await.unwrap();
    s.write_all(&request_head(&app, &me, Some(body.len())))
        .await
        .unwrap();
    s.write_all(&body[..body.len() / 2]).await.unwrap();
    // Give the server time to store some chunks before the hang-up.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.count("files.chunks").await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started storing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.count("documents").await,
        1,
        "a pending record while it arrives"
    );
    drop(s);
    wait_counts(&app, (0, 0, 0)).await;

    // The same upload, whole, is stored.
    let mut s = TcpStream::connect(app.socket_addr()).await.unwrap();
    s.write_all(&request_head(&app, &me, Some(body.len())))
        .await
        .unwrap();
    s.write_all(&body).await.unwrap();
    let answer = status_line(&mut s, Duration::from_secs(20))
        .await
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(stored_counts(&app).await.0, 1);
}

#[tokio::test]
async fn an_upload_a_process_left_half_way_is_swept_by_the_worker() {
    // What a process killed mid-upload leaves: a pending record past its due date, and chunks.
    let app = spawn_app_with(&[("DHARA_WORKER__ENABLED", "false")]).await;
    let me = therapist(&app).await;
    let kept = crate::documents::stored(&app, &me, "kept.pdf", pdf_bytes(300 * 1024, 5), &[]).await;
    let (file, id) = (
        mongodb::bson::oid::ObjectId::new(),
        mongodb::bson::oid::ObjectId::new(),
    );
    let past = mongodb::bson::DateTime::from_millis(mongodb::bson::DateTime::now().timestamp_millis() - 1000);
    let therapist_id = mongodb::bson::oid::ObjectId::parse_str(&me.id).unwrap();
    app.db
        .collection::<mongodb::bson::Document>("documents")
        .insert_one(mongodb::bson::doc! {
            "_id": id, "therapistId": therapist_id, "fileId": file, "status": "uploading",
            "createdAt": past, "updatedAt": past, "purgeAfter": past,
        })
        .await
        .unwrap();
    for n in 0..3 {
        app.db
            .collection::<mongodb::bson::Document>("files.chunks")
            .insert_one(mongodb::bson::doc! { "files_id": file, "n": n, "data": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![1; 16] } })
            .await
            .unwrap();
    }
    // It died after holding its bytes on the usage, before becoming a document.
    app.db
        .collection::<mongodb::bson::Document>("document_usage")
        .update_one(
            mongodb::bson::doc! { "_id": therapist_id },
            mongodb::bson::doc! { "$inc": { "bytes": 12345_i64, "files": 1_i64 }, "$push": { "holds": { "id": id, "size": 12345_i64 } } },
        )
        .await
        .unwrap();
    let before = stored_counts(&app).await;
    assert_eq!(before.0, 2);
    // Never listed meanwhile.
    let list = json_body(app.get_as("/api/documents", &me).await).await;
    assert_eq!(list["data"]["pagination"]["total"], 1);
    // A worker starting now sweeps at once.
    let _worker = spawn_with_config({
        let mut c = app.config.clone();
        c.worker.enabled = true;
        c
    })
    .await;
    wait_counts(&app, (1, 1, before.2 - 3)).await;
    let r = app
        .get_as(
            &format!("/api/documents/{}/download", kept["id"].as_str().unwrap()),
            &me,
        )
        .await;
    assert_eq!(r.status(), 200, "the completed upload is untouched");
    let usage = json_body(app.get_as("/api/documents/usage", &me).await).await["data"].clone();
    assert_eq!(
        usage["used"], kept["size"],
        "the abandoned upload's hold was given back"
    );
    assert_eq!(usage["fileCount"], 1);
}
