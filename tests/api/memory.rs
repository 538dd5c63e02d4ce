//! Password hashing is bounded (issue 8, item 11): each argon2id hash takes a 19 MiB block, so
//! a burst of sign-ins beyond `auth.hash_concurrency` running plus `auth.hash_queue` waiting is
//! refused at once with 503 `OVERLOADED` and `Retry-After` instead of taking gigabytes.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_burst_beyond_the_hashing_bound_is_refused_with_retry_after() {
    let app = spawn_app_with(&[
        ("DHARA_AUTH__HASH_CONCURRENCY", "1"),
        ("DHARA_AUTH__HASH_QUEUE", "1"),
        ("DHARA_RATE_LIMIT__LOGIN_IP__MAX", "1000"),
        ("DHARA_RATE_LIMIT__LOGIN_ACCOUNT__MAX", "1000"),
        ("DHARA_RATE_LIMIT__LOCKOUT__MAX", "1000"),
    ])
    .await;
    let (email, password, _) = register_therapist(&app).await;
    let body = json!({ "email": email, "password": password });

    // One hash runs, one waits: of 12 sign-ins arriving together, most find no room.
    let answers = futures_util::future::join_all(
        (0..12).map(|_| app.client.post(app.url("/api/auth/login")).json(&body).send()),
    )
    .await;
    let (mut ok, mut busy) = (0, 0);
    for answer in answers {
        let r = answer.expect("request");
        match r.status().as_u16() {
            200 => {
                ok += 1;
                let session = json_body(r).await;
                assert!(session["accessToken"].is_string(), "{session}");
            }
            503 => {
                busy += 1;
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .expect("503 carries Retry-After in seconds");
                assert!(retry_after >= 1);
                assert_error(r, 503, "OVERLOADED").await;
            }
            other => panic!("login answered {other}: {}", r.text().await.unwrap_or_default()),
        }
    }
    assert!(ok >= 1, "no login succeeded ({busy} refused)");
    assert!(busy >= 1, "all {ok} logins were hashed: the bound did not apply");

    // Once the burst is over the pool is free again.
    let r = app.post_json("/api/auth/login", &body).await;
    assert_eq!(r.status(), 200);
}
