//! Account emails (password reset, email verification, invitation) through the outbox: the
//! request that asks for one stores its job before answering (and fails when it cannot), and a
//! worker sends it to a real SMTP server on loopback.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use serde_json::json;

use crate::emails::until_received;
use crate::helpers::*;
use crate::smtp_server::{Received, SmtpServer};

/// The `token=` value of the link in a received message (quoted-printable undone).
fn link_token(m: &Received) -> String {
    let text = m.data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = text.find("token=").expect("a link with a token") + "token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The outbox job of `kind`, once a worker recorded it sent.
async fn sent_job(app: &TestApp, kind: &str) -> Document {
    let jobs = app.db.collection::<Document>("email_jobs");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let job = jobs.find_one(doc! { "kind": kind }).await.unwrap();
        if let Some(job) = job.as_ref().filter(|j| j.get_str("state") == Ok("sent")) {
            return job.clone();
        }
        assert!(Instant::now() < deadline, "no {kind} job recorded sent: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The message was this job's: its Message-ID is the job id's (`<{id, : as .}@domain>`).
fn assert_from_job(m: &Received, job: &Document) {
    let id = job.get_str("_id").unwrap();
    let local: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
        .collect();
    let message_id = m.message_id.clone().unwrap_or_default();
    assert_eq!(
        message_id.split('@').next(),
        Some(local.as_str()),
        "sent from its job"
    );
    assert!(
        job.get("vars").is_none(),
        "the single-use link is dropped once sent: {job}"
    );
}

#[tokio::test]
async fn a_password_reset_and_a_verification_are_delivered_over_smtp_from_their_jobs_and_their_links_work_once(
) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url())]).await;

    let (email, old_password, _) = register_therapist(&app).await;
    let r = app
        .post_json("/api/auth/forgot-password", &json!({ "email": email }))
        .await;
    assert_eq!(r.status(), 200);
    // Message-IDs spell the job id with dots (`<password.reset.{digest}@...>`).
    let got = until_received(&smtp, "password.reset", 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "one reset email over SMTP");
    assert_eq!(got[0].to, vec![email.clone()]);
    assert_from_job(&got[0], &sent_job(&app, "password_reset").await);
    let token = link_token(&got[0]);
    let new_password = "brand new password";
    let reset = json!({ "token": token, "password": new_password, "confirmPassword": new_password });
    let r = app.post_json("/api/auth/reset-password", &reset).await;
    assert_eq!(r.status(), 200, "the emailed link works");
    let r = app.post_json("/api/auth/reset-password", &reset).await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    let login = |password: &str| json!({ "email": email, "password": password });
    let r = app.post_json("/api/auth/login", &login(&old_password)).await;
    assert_eq!(r.status(), 401);
    let r = app.post_json("/api/auth/login", &login(new_password)).await;
    assert_eq!(r.status(), 200, "signed in with the new password");

    let (client_email, _, _) = register_client(&app).await;
    let got = until_received(&smtp, "verification", 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "one verification email over SMTP");
    assert_eq!(got[0].to, vec![client_email]);
    assert_from_job(&got[0], &sent_job(&app, "verification").await);
    let proof = json!({ "token": link_token(&got[0]) });
    let r = app.post_json("/api/clients/verify-email", &proof).await;
    assert_eq!(r.status(), 200, "the emailed link proves the email");
    let r = app.post_json("/api/clients/verify-email", &proof).await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
}

#[tokio::test]
async fn a_request_whose_account_email_cannot_be_queued_fails_instead_of_answering_success() {
    // The outbox takes booking emails but refuses account ones (a collection validator): the
    // requests that ask for them must not answer success with their link lost.
    let config = test_config(&[]);
    let mongo = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    mongo
        .database(&config.mongodb.database)
        .create_collection("email_jobs")
        .validator(doc! { "kind": { "$nin": ["password_reset", "verification", "invitation"] } })
        .await
        .unwrap();
    let app = spawn_with_config(config).await;
    app.wait_ready().await;

    let password = "correct horse battery";
    let register = json!({
        "name": "Ana", "email": "ana.client@example.com", "password": password, "confirmPassword": password,
    });
    let r = app.post_json("/api/clients/register", &register).await;
    assert_error(r, 503, "EMAIL_NOT_QUEUED").await;

    let t = therapist(&app).await;
    let names = |body: serde_json::Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // The clients page is cached before the failed invitation...
    let before = json_body(app.get_as("/api/clients?limit=20", &t).await).await;
    assert!(names(before).is_empty());
    let invited = json!({ "name": "Invitada", "email": "invitee@example.com" });
    let r = app.post_as("/api/clients", &t, &invited).await;
    assert_error(r, 503, "EMAIL_NOT_QUEUED").await;
    // ...and shows the record it stored all the same (its change was told, the cache dropped).
    let after = json_body(app.get_as("/api/clients?limit=20", &t).await).await;
    assert_eq!(names(after), vec!["Invitada"]);

    // Forgot-password answers before it looks the email up: the same answer either way.
    let r = app
        .post_json("/api/auth/forgot-password", &json!({ "email": t.email }))
        .await;
    assert_eq!(r.status(), 200);
    let known = json_body(r).await;
    let r = app
        .post_json(
            "/api/auth/forgot-password",
            &json!({ "email": "nobody@example.com" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await, known, "indistinguishable");

    // The outbox takes account emails again. The retries meet what the failed requests stored
    // (409), and queue the emails those never queued, once: the login can still be proven and
    // the client is invited.
    app.db.collection::<Document>("email_jobs").drop().await.unwrap();
    let jobs = app.db.collection::<Document>("email_jobs");
    // Someone else registering that address (another password) has nothing sent.
    let other = json!({
        "name": "Not Ana", "email": "ana.client@example.com", "password": "someone else's", "confirmPassword": "someone else's",
    });
    let r = app.post_json("/api/clients/register", &other).await;
    assert_error(r, 409, "EMAIL_TAKEN").await;
    let none = jobs
        .count_documents(doc! { "kind": "verification" })
        .await
        .unwrap();
    assert_eq!(none, 0, "nothing queued for another password");
    for _ in 0..2 {
        let r = app.post_json("/api/clients/register", &register).await;
        assert_error(r, 409, "EMAIL_TAKEN").await;
        let r = app.post_as("/api/clients", &t, &invited).await;
        assert_error(r, 409, "CLIENT_EXISTS").await;
    }
    let users = app.db.collection::<Document>("users");
    let ana = users
        .find_one(doc! { "email": "ana.client@example.com" })
        .await
        .unwrap()
        .unwrap();
    let verification = jobs
        .find(doc! { "kind": "verification" })
        .await
        .unwrap()
        .try_collect::<Vec<Document>>()
        .await
        .unwrap();
    assert_eq!(verification.len(), 1, "queued once: {verification:?}");
    assert_eq!(
        verification[0].get_object_id("about").unwrap(),
        ana.get_object_id("_id").unwrap()
    );
    let token = mailed_token(&app, "ana.client@example.com", "verify-email").await;
    let r = app
        .post_json("/api/clients/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(r.status(), 200, "its link proves the email");
    let invitations = jobs.count_documents(doc! { "kind": "invitation" }).await.unwrap();
    assert_eq!(invitations, 1, "invited once");
    // A registration meeting an unproven login whose verification was queued queues nothing
    // more (its link would prove the email for whoever made that login).
    let bob = json!({
        "name": "Bob", "email": "bob.client@example.com", "password": password, "confirmPassword": password,
    });
    let r = app.post_json("/api/clients/register", &bob).await;
    assert_eq!(r.status(), 201);
    let r = app.post_json("/api/clients/register", &bob).await;
    assert_error(r, 409, "EMAIL_TAKEN").await;
    let verification = jobs
        .count_documents(doc! { "kind": "verification" })
        .await
        .unwrap();
    assert_eq!(verification, 2, "Ana's and Bob's first, nothing more");
}
