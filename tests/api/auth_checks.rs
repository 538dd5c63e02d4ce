//! The account check every authenticated request makes: read from the primary, batched under
//! load (requests queued while a read is in flight share the next one), and never answered
//! from a read that began before the request arrived, so a revocation is never missed.

use serde_json::json;

use crate::helpers::*;
use crate::ops::{moved, scrape};

const USERS_FIND: [(&str, &str); 3] = [
    ("collection", "users"),
    ("operation", "find"),
    ("status", "success"),
];

#[tokio::test]
async fn account_checks_share_reads_under_load_and_never_miss_a_revocation() {
    let app = spawn_app().await;
    let (_, mut password, session) = register_therapist(&app).await;
    let mut token = bearer(&session);
    let me = |auth: &str| {
        app.client
            .get(app.url("/api/auth/me"))
            .header("Authorization", auth.to_owned())
            .send()
    };

    // Many requests at once: far fewer reads than requests.
    let n = 200;
    let before = scrape(&app).await;
    let answers = futures_util::future::join_all((0..n).map(|_| me(&token))).await;
    let after = scrape(&app).await;
    assert!(answers.iter().all(|r| r.as_ref().unwrap().status() == 200));
    let reads = moved(&before, &after, "mongodb_queries_total", &USERS_FIND);
    assert!(
        reads >= 1.0 && reads < n as f64 * 0.75,
        "{reads} account reads for {n} requests"
    );

    // Revocation under load: while a burst with the old token is in flight, the password
    // changes; every request sent after the change answered is refused, in every round.
    for round in 0..5 {
        let old = token.clone();
        // The burst runs on its own tasks, so it is still in flight when the change answers.
        let burst: Vec<_> = (0..40)
            .map(|_| {
                let (client, url, auth) = (app.client.clone(), app.url("/api/auth/me"), old.clone());
                tokio::spawn(async move { client.get(url).header("Authorization", auth).send().await })
            })
            .collect();
        let new_password = format!("new password {round}");
        let changed = app
            .client
            .post(app.url("/api/auth/change-password"))
            .header("Authorization", &old)
            .json(&json!({ "currentPassword": password, "newPassword": new_password, "confirmPassword": new_password }))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 200, "round {round}");
        let fresh = json_body(changed).await;
        // Sent after the change answered, while reads of the first burst may still be in
        // flight: none may be answered by a read that began before it arrived.
        let after_change = futures_util::future::join_all((0..40).map(|_| me(&old))).await;
        for r in burst {
            let status = r.await.unwrap().unwrap().status().as_u16();
            assert!(status == 200 || status == 401, "round {round}: {status}");
        }
        for r in after_change {
            assert_eq!(
                r.unwrap().status(),
                401,
                "round {round}: a request after the change"
            );
        }
        token = format!("Bearer {}", fresh["accessToken"].as_str().unwrap());
        password = new_password;
        assert_eq!(me(&token).await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn a_stuck_account_check_read_fails_its_requests_soon_instead_of_stalling_them() {
    // The app reaches MongoDB through a proxy that can hold every reply; its own timeouts
    // (the request classes, the driver's) are far away, so only the check's bound answers.
    let probe = spawn_app().await;
    let upstream = crate::faults::stalled::primary(&probe.db).await;
    let (port, hung) = crate::cache_outage::hanging_proxy(upstream).await;
    let uri = crate::faults::stalled::relayed_uri(&mongodb_uri(), &format!("127.0.0.1:{port}"));
    let app = spawn_app_with(&[
        ("MONGODB_URI", uri.as_str()),
        ("DHARA_MONGODB__CONNECT_TIMEOUT_MS", "60000"),
        ("DHARA_MONGODB__SERVER_SELECTION_TIMEOUT_MS", "60000"),
        ("DHARA_HTTP__TIMEOUTS__AUTH_SECONDS", "60"),
        ("DHARA_HTTP__TIMEOUTS__CRUD_SECONDS", "60"),
    ])
    .await;
    let (_, _, session) = register_therapist(&app).await;
    let token = bearer(&session);
    let me = || {
        app.client
            .get(app.url("/api/auth/me"))
            .header("Authorization", token.clone())
            .send()
    };
    assert_eq!(me().await.unwrap().status(), 200);

    hung.store(true, std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    let r = me().await.unwrap();
    let waited = started.elapsed();
    assert_error(r, 503, "DATABASE_UNAVAILABLE").await;
    assert!(
        waited < std::time::Duration::from_secs(10),
        "answered after {waited:?}: the read's bound is 3 s"
    );

    hung.store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = me().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "checks did not recover: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
