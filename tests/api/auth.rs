//! Accounts and access: registration, sign-in, tokens, rotation, sign-out, passwords, roles and
//! brute-force protection across instances.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

const DEV_SECRET: &str = "dev-only-insecure-secret-do-not-use-in-production";

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/login",
        &json!({ "email": email, "password": password }),
    )
    .await
}

async fn refresh(app: &TestApp, token: &Value) -> reqwest::Response {
    app.post_json("/api/auth/refresh", &json!({ "refreshToken": token }))
        .await
}

async fn me(app: &TestApp, auth: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/auth/me"))
        .header("Authorization", auth)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn register_login_and_me_return_the_dashboard_shapes() {
    let app = spawn_app().await;
    let (email, password, session) = register_therapist(&app).await;
    assert_eq!(session["success"], true);
    assert!(session["refreshToken"].as_str().unwrap().len() >= 40);
    let user = &session["user"];
    assert_eq!(user["role"], "terapeuta");
    assert_eq!(user["id"], user["_id"]);
    assert_eq!(user["id"].as_str().unwrap().len(), 24);
    assert_eq!(user["email"], email.as_str());
    assert!(user.get("passwordHash").is_none(), "never returned");

    let r = login(&app, &email.to_uppercase(), &password).await;
    assert_eq!(r.status(), 200, "email is case-insensitive");
    let session = json_body(r).await;
    for key in [
        "id",
        "name",
        "email",
        "role",
        "avatar",
        "isVerified",
        "verificationStatus",
    ] {
        assert!(session["user"].get(key).is_some(), "user.{key}");
    }

    let r = me(&app, &bearer(&session)).await;
    assert_eq!(r.status(), 200);
    let body = json_body(r).await;
    assert_eq!(body["success"], true);
    assert_eq!(body["user"]["email"], email.as_str());

    let stored = app.db.collection::<mongodb::bson::Document>("users");
    let doc = stored
        .find_one(mongodb::bson::doc! { "email": &email })
        .await
        .unwrap()
        .unwrap();
    assert!(doc.get_str("passwordHash").unwrap().starts_with("$argon2id$"));
}

#[tokio::test]
async fn duplicate_email_is_409_whatever_its_case() {
    let app = spawn_app().await;
    let (email, _, _) = register_therapist(&app).await;
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({ "name": "X", "email": format!("  {}  ", email.to_uppercase()), "password": "abcdefgh", "confirmPassword": "abcdefgh" }),
        )
        .await;
    assert_error(r, 409, "EMAIL_TAKEN").await;
    let n = app
        .db
        .collection::<mongodb::bson::Document>("users")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let (email, _, _) = register_therapist(&app).await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let a = assert_error(login(&app, &email, "not the password").await, 401, "UNAUTHORIZED").await;
        wrong.push(t.elapsed());
        let t = Instant::now();
        let b = assert_error(
            login(&app, "nobody@example.com", "not the password").await,
            401,
            "UNAUTHORIZED",
        )
        .await;
        unknown.push(t.elapsed());
        assert_eq!(a["message"], b["message"]);
    }
    // Both paths verify an argon2id hash: an unknown email is not answered much faster.
    wrong.sort();
    unknown.sort();
    let (w, u) = (wrong[1].as_secs_f64(), unknown[1].as_secs_f64());
    assert!(
        u > w / 4.0,
        "unknown email answered in {u:.4}s vs wrong password {w:.4}s"
    );
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_are_refused() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let app = spawn_app().await;
    let (_, _, session) = register_therapist(&app).await;
    let id = session["user"]["id"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    let sign = |claims: Value, secret: &str| {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };

    let expired = sign(
        json!({ "sub": id, "role": "therapist", "iat": now - 1000, "exp": now - 10 }),
        DEV_SECRET,
    );
    assert_error(me(&app, &format!("Bearer {expired}")).await, 401, "TOKEN_EXPIRED").await;

    let foreign = sign(
        json!({ "sub": id, "role": "therapist", "iat": now, "exp": now + 600 }),
        "another-secret-of-32-bytes-length!!",
    );
    assert_error(me(&app, &format!("Bearer {foreign}")).await, 401, "INVALID_TOKEN").await;

    let good = session["accessToken"].as_str().unwrap();
    let mut tampered: Vec<char> = good.chars().collect();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert_error(
        me(&app, &format!("Bearer {tampered}")).await,
        401,
        "INVALID_TOKEN",
    )
    .await;

    // Promoting oneself by editing the payload breaks the signature.
    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({ "sub": id, "role": "admin", "iat": now, "exp": now + 600 }).to_string());
    let forged = format!("{}.{}.{}", parts[0], payload, parts[2]);
    assert_error(me(&app, &format!("Bearer {forged}")).await, 401, "INVALID_TOKEN").await;

    let unsigned = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        payload
    );
    assert_error(
        me(&app, &format!("Bearer {unsigned}")).await,
        401,
        "INVALID_TOKEN",
    )
    .await;

    assert_error(me(&app, "Basic dXNlcjpwYXNz").await, 401, "UNAUTHORIZED").await;
    let r = app.get("/api/auth/me").await;
    assert_error(r, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let (_, _, first) = register_therapist(&app).await;
    let r1 = &first["refreshToken"];

    let second = json_body(refresh(&app, r1).await).await;
    assert_eq!(second["success"], true);
    let r2 = &second["refreshToken"];
    assert_ne!(r1, r2);
    assert_eq!(me(&app, &bearer(&second)).await.status(), 200);

    // A stolen, already-used token: refused, and the legitimate successor dies with it.
    assert_error(refresh(&app, r1).await, 401, "TOKEN_REUSED").await;
    assert_error(refresh(&app, r2).await, 401, "INVALID_TOKEN").await;

    assert_error(refresh(&app, &json!("x".repeat(43))).await, 401, "INVALID_TOKEN").await;
    let stored = app.db.collection::<mongodb::bson::Document>("refresh_tokens");
    let raw = stored.find_one(mongodb::bson::doc! {}).await.unwrap().unwrap();
    assert_eq!(raw.get_str("tokenHash").unwrap().len(), 64, "stored hashed");
    assert_ne!(raw.get_str("tokenHash").unwrap(), r1.as_str().unwrap());
}

#[tokio::test]
async fn logout_revokes_the_session_or_all_sessions() {
    let app = spawn_app().await;
    let (email, password, a) = register_therapist(&app).await;
    let b = json_body(login(&app, &email, &password).await).await;

    let r = app
        .post_json("/api/auth/logout", &json!({ "refreshToken": a["refreshToken"] }))
        .await;
    assert_eq!(r.status(), 200);
    assert_error(refresh(&app, &a["refreshToken"]).await, 401, "INVALID_TOKEN").await;
    assert_eq!(
        refresh(&app, &b["refreshToken"]).await.status(),
        200,
        "other sessions live on"
    );

    let c = json_body(login(&app, &email, &password).await).await;
    let r = app
        .client
        .post(app.url("/api/auth/logout"))
        .header("Authorization", bearer(&c))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_error(refresh(&app, &c["refreshToken"]).await, 401, "INVALID_TOKEN").await;

    assert_error(
        app.client.post(app.url("/api/auth/logout")).send().await.unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn clients_sign_in_through_both_doors_and_therapists_cannot_use_the_client_one() {
    let app = spawn_app().await;
    let (email, password, session) = register_client(&app).await;
    assert_eq!(session["user"]["role"], "cliente");
    let r = app
        .post_json(
            "/api/clients/login",
            &json!({ "email": email, "password": password }),
        )
        .await;
    assert_eq!(json_body(r).await["user"]["role"], "cliente");
    let r = app
        .post_json(
            "/api/auth/login",
            &json!({ "email": email, "password": password, "userType": "cliente" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post_json(
            "/api/auth/login",
            &json!({ "email": email, "password": password, "userType": "terapeuta" }),
        )
        .await;
    let wrong_door = assert_error(r, 401, "UNAUTHORIZED").await;

    let (t_email, t_password, _) = register_therapist(&app).await;
    let r = app
        .post_json(
            "/api/clients/login",
            &json!({ "email": t_email, "password": t_password }),
        )
        .await;
    let b = assert_error(r, 401, "UNAUTHORIZED").await;
    assert_eq!(
        wrong_door["message"], b["message"],
        "no hint about which accounts exist"
    );

    let r = app
        .post_json(
            "/api/auth/login",
            &json!({ "email": email, "password": password, "userType": "jefe" }),
        )
        .await;
    let body = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["errors"][0]["field"], "userType");
}

#[tokio::test]
async fn legacy_bcrypt_hashes_sign_in_and_are_upgraded() {
    let app = spawn_app().await;
    let email = "legacy@example.com";
    let hash = bcrypt::hash("old-node-password", 4).unwrap();
    let now = mongodb::bson::DateTime::now();
    app.db
        .collection::<mongodb::bson::Document>("users")
        .insert_one(mongodb::bson::doc! {
            "name": "Legacy", "email": email, "passwordHash": &hash, "role": "terapeuta",
            "createdAt": now, "updatedAt": now,
        })
        .await
        .unwrap();
    let r = login(&app, email, "old-node-password").await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["user"]["role"], "terapeuta");
    let doc = app
        .db
        .collection::<mongodb::bson::Document>("users")
        .find_one(mongodb::bson::doc! { "email": email })
        .await
        .unwrap()
        .unwrap();
    assert!(
        doc.get_str("passwordHash").unwrap().starts_with("$argon2id$"),
        "rehashed"
    );
    assert_eq!(
        login(&app, email, "old-node-password").await.status(),
        200,
        "still the same password"
    );
}

#[tokio::test]
async fn change_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let (email, password, session) = register_therapist(&app).await;
    let change = |current: &str, new: &str| {
        app.client
            .post(app.url("/api/auth/change-password"))
            .header("Authorization", bearer(&session))
            .json(&json!({ "currentPassword": current, "newPassword": new, "confirmPassword": new }))
            .send()
    };
    let body = assert_error(
        change("wrong-one", "new password 1").await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "currentPassword");
    let r = change(&password, "short").await.unwrap();
    let body = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["errors"][0]["field"], "newPassword");

    let r = change(&password, "new password 1").await.unwrap();
    assert_eq!(r.status(), 200);
    let fresh = json_body(r).await;
    assert!(fresh["accessToken"].is_string());
    assert_error(
        refresh(&app, &session["refreshToken"]).await,
        401,
        "INVALID_TOKEN",
    )
    .await;
    assert_eq!(login(&app, &email, &password).await.status(), 401);
    assert_eq!(login(&app, &email, "new password 1").await.status(), 200);
}

async fn wait_for_mail(dir: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "eml") {
                    return std::fs::read_to_string(e.path()).unwrap();
                }
            }
        }
        assert!(Instant::now() < deadline, "no email written to {}", dir.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn reset_token_from(mail: &str) -> String {
    // Quoted-printable may fold long lines with "=\r\n": undo that first.
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = unfolded.find("token=").expect("reset link in the email") + "token=".len();
    unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test]
async fn password_reset_works_end_to_end_once() {
    let app = spawn_app().await;
    let (email, old_password, session) = register_therapist(&app).await;
    let r = app
        .post_json(
            "/api/auth/forgot-password",
            &json!({ "email": "nobody@example.com" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let unknown_message = json_body(r).await["message"].clone();
    let r = app
        .post_json("/api/auth/forgot-password", &json!({ "email": email }))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_body(r).await["message"],
        unknown_message,
        "same answer either way"
    );

    let mail = wait_for_mail(&app.config.mail.file_dir).await;
    assert!(mail.contains(&email), "sent to the account holder");
    let token = reset_token_from(&mail);
    assert!(token.len() >= 40, "token {token:?}");
    let stored = app.db.collection::<mongodb::bson::Document>("password_resets");
    let doc = stored.find_one(mongodb::bson::doc! {}).await.unwrap().unwrap();
    assert_ne!(doc.get_str("tokenHash").unwrap(), token, "stored hashed");
    let files = std::fs::read_dir(&app.config.mail.file_dir).unwrap().count();
    assert_eq!(files, 1, "one email, for the known address only");
    // A second link asked for before the reset is spent by it.
    let r = app
        .post_json("/api/auth/forgot-password", &json!({ "email": email }))
        .await;
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let second = loop {
        let others: Vec<String> = std::fs::read_dir(&app.config.mail.file_dir)
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|m| reset_token_from(&m))
            .filter(|t| *t != token)
            .collect();
        if let Some(t) = others.into_iter().next() {
            break t;
        }
        assert!(Instant::now() < deadline, "no second reset email");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let new_password = "brand new password";
    let reset = json!({ "token": token, "password": new_password, "confirmPassword": new_password });
    assert_eq!(
        app.post_json("/api/auth/reset-password", &reset).await.status(),
        200
    );
    let body = assert_error(
        app.post_json("/api/auth/reset-password", &reset).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "token", "single use");
    let again =
        json!({ "token": second, "password": "yet another one", "confirmPassword": "yet another one" });
    assert_error(
        app.post_json("/api/auth/reset-password", &again).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;

    assert_eq!(login(&app, &email, &old_password).await.status(), 401);
    assert_eq!(login(&app, &email, new_password).await.status(), 200);
    assert_error(
        refresh(&app, &session["refreshToken"]).await,
        401,
        "INVALID_TOKEN",
    )
    .await;
}

#[tokio::test]
async fn bad_input_on_every_auth_endpoint_is_a_400_naming_the_field() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/api/auth/register",
            json!({ "name": "A", "password": "abcdefgh", "confirmPassword": "abcdefgh" }),
            "email",
        ),
        (
            "/api/auth/register",
            json!({ "name": "A", "email": "not-an-email", "password": "abcdefgh", "confirmPassword": "abcdefgh" }),
            "email",
        ),
        (
            "/api/auth/register",
            json!({ "name": "A", "email": "a@b.co", "password": "short", "confirmPassword": "short" }),
            "password",
        ),
        (
            "/api/auth/register",
            json!({ "name": "A", "email": "a@b.co", "password": "abcdefgh", "confirmPassword": "abcdefgX" }),
            "confirmPassword",
        ),
        (
            "/api/auth/register",
            json!({ "name": 42, "email": "a@b.co", "password": "abcdefgh", "confirmPassword": "abcdefgh" }),
            "name",
        ),
        (
            "/api/auth/register",
            json!({ "name": "A", "email": { "$gt": "" }, "password": "abcdefgh", "confirmPassword": "abcdefgh" }),
            "email",
        ),
        ("/api/auth/login", json!({ "email": "a@b.co" }), "password"),
        (
            "/api/auth/login",
            json!({ "email": ["a@b.co"], "password": "x" }),
            "email",
        ),
        (
            "/api/auth/login",
            json!({ "email": "a@b.co", "password": "x", "rememberMe": "yes" }),
            "rememberMe",
        ),
        ("/api/auth/refresh", json!({}), "refreshToken"),
        ("/api/auth/refresh", json!({ "refreshToken": 12 }), "refreshToken"),
        ("/api/auth/forgot-password", json!({ "email": "nope" }), "email"),
        (
            "/api/auth/reset-password",
            json!({ "token": "x".repeat(43), "password": "abcdefgh" }),
            "confirmPassword",
        ),
        (
            "/api/auth/reset-password",
            json!({ "password": "abcdefgh", "confirmPassword": "abcdefgh" }),
            "token",
        ),
        (
            "/api/clients/register",
            json!({ "name": "", "email": "a@b.co", "password": "abcdefgh", "confirmPassword": "abcdefgh" }),
            "name",
        ),
        ("/api/clients/login", json!({ "password": "abcdefgh" }), "email"),
    ];
    for (path, body, field) in cases {
        let r = app.post_json(path, &body).await;
        let err = assert_error(r, 400, "VALIDATION_ERROR").await;
        let fields: Vec<&str> = err["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&field),
            "{path} {body}: expected {field} in {err}"
        );
    }
    let users = app
        .db
        .collection::<mongodb::bson::Document>("users")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert_eq!(users, 0, "nothing stored");

    let r = app
        .client
        .post(app.url("/api/auth/change-password"))
        .json(&json!({ "currentPassword": "x", "newPassword": "abcdefgh", "confirmPassword": "abcdefgh" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn lockout_and_ip_limits_hold_across_two_instances_sharing_redis() {
    let limits = [("DHARA_RATE_LIMIT__LOGIN_IP__MAX", "8")];
    let a = spawn_app_with(&limits).await;
    let shared = [
        ("MONGODB_DATABASE", a.config.mongodb.database.as_str()),
        ("DHARA_REDIS__PREFIX", a.config.redis.prefix.as_str()),
        ("DHARA_RATE_LIMIT__LOGIN_IP__MAX", "8"),
    ];
    let b = spawn_app_with(&shared).await;
    let (email, password, _) = register_therapist(&a).await;

    let attempt = |app: &TestApp, ip: &str, pw: &str| {
        app.client
            .post(app.url("/api/auth/login"))
            .header("X-Forwarded-For", ip)
            .json(&json!({ "email": email, "password": pw }))
            .send()
    };
    // Five failures, spread over both instances and several addresses, lock the account.
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = attempt(app, &format!("198.51.100.{i}"), "wrong").await.unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = attempt(&b, "198.51.100.77", &password).await.unwrap();
    assert_eq!(
        r.status(),
        429,
        "locked even with the right password, on the other instance"
    );
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    assert_error(r, 429, "RATE_LIMITED").await;

    // Per-IP: eight attempts from one address (any accounts), the ninth is refused everywhere.
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = app
            .client
            .post(app.url("/api/auth/login"))
            .header("X-Forwarded-For", "203.0.113.50")
            .json(&json!({ "email": format!("nobody{i}@example.com"), "password": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = b
        .client
        .post(b.url("/api/auth/login"))
        .header("X-Forwarded-For", "203.0.113.50")
        .json(&json!({ "email": "other@example.com", "password": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn limits_still_hold_in_process_when_redis_is_down() {
    let app = spawn_app_with(&[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let (email, password, _) = register_therapist(&app).await;
    for _ in 0..5 {
        assert_eq!(login(&app, &email, "wrong").await.status(), 401);
    }
    assert_eq!(login(&app, &email, &password).await.status(), 429);
}

#[tokio::test]
async fn a_successful_sign_in_clears_earlier_failures() {
    let app = spawn_app().await;
    let (email, password, _) = register_therapist(&app).await;
    for _ in 0..4 {
        assert_eq!(login(&app, &email, "wrong").await.status(), 401);
    }
    assert_eq!(login(&app, &email, &password).await.status(), 200);
    for _ in 0..4 {
        assert_eq!(login(&app, &email, "wrong").await.status(), 401);
    }
    assert_eq!(login(&app, &email, &password).await.status(), 200);
}

#[tokio::test]
async fn a_refused_refresh_does_not_spend_the_token() {
    let app = spawn_app_with(&[
        ("DHARA_RATE_LIMIT__REFRESH_ACCOUNT__MAX", "2"),
        ("DHARA_RATE_LIMIT__REFRESH_ACCOUNT__WINDOW_SECONDS", "1"),
    ])
    .await;
    let (_, _, session) = register_therapist(&app).await;
    let mut token = session["refreshToken"].clone();
    for _ in 0..2 {
        token = json_body(refresh(&app, &token).await).await["refreshToken"].clone();
    }
    let r = refresh(&app, &token).await;
    assert_eq!(r.status(), 429, "third refresh within the window");
    // Once the one-second window has passed, the very same token still works.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = refresh(&app, &token).await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 429, "only the limit may refuse it");
        assert!(Instant::now() < deadline, "the window never passed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_reset_link_made_before_the_password_changed_is_spent_even_if_stored_after() {
    let app = spawn_app().await;
    let (email, password, session) = register_therapist(&app).await;
    let r = app
        .client
        .post(app.url("/api/auth/change-password"))
        .header("Authorization", bearer(&session))
        .json(&json!({ "currentPassword": password, "newPassword": "changed password", "confirmPassword": "changed password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let user = app
        .db
        .collection::<mongodb::bson::Document>("users")
        .find_one(mongodb::bson::doc! { "email": &email })
        .await
        .unwrap()
        .unwrap();
    let user_id = user.get_object_id("_id").unwrap();
    let now = mongodb::bson::DateTime::now().timestamp_millis();
    // Links as forgot-password stores them (after answering): one asked for a minute before
    // the change and stored only now, one asked for after it.
    let resets = app.db.collection::<mongodb::bson::Document>("password_resets");
    for (token, made) in [
        ("made-before-the-change", now - 60_000),
        ("made-after-the-change", now + 1_000),
    ] {
        resets
            .insert_one(mongodb::bson::doc! {
                "tokenHash": dhara::auth::tokens::token_hash(token), "userId": user_id,
                "createdAt": mongodb::bson::DateTime::from_millis(made),
                "expiresAt": mongodb::bson::DateTime::from_millis(now + 600_000), "usedAt": null,
            })
            .await
            .unwrap();
    }
    let reset = |token: &str| json!({ "token": token, "password": "via the link", "confirmPassword": "via the link" });
    assert_error(
        app.post_json("/api/auth/reset-password", &reset("made-before-the-change"))
            .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(
        login(&app, &email, "changed password").await.status(),
        200,
        "unchanged"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let r = app
        .post_json("/api/auth/reset-password", &reset("made-after-the-change"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(login(&app, &email, "via the link").await.status(), 200);
}
