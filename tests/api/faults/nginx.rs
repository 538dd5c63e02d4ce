//! What NGINX (nginx/dhara-proxy.conf) sends to another instance when one fails, method by
//! method, against stand-in upstreams; and, with real instances, writes whose answers are lost
//! after they were written: a keyed one is replayed, an unkeyed one is never sent again.

use mongodb::bson::{doc, Document};
use reqwest::Method;
use serde_json::json;

use super::{assert_each_stored_once, keyed_write, slot_booking};
use crate::helpers::*;
use crate::procs::{free_port, start_nginx};
use crate::upstreams::{Fake, LossyRelay};

/// Sends `n` requests of `method` one after another; the statuses NGINX answered.
async fn statuses(front: &str, method: &str, n: usize) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for i in 0..n {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = client.request(m, format!("{front}/api/things/{i}"));
        if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
            r = r.json(&json!({ "n": i }));
        }
        out.push(r.send().await.unwrap().status().as_u16());
    }
    out
}

#[tokio::test]
async fn nginx_passes_reads_to_the_next_instance_and_never_a_write_the_failed_one_received() {
    const N: usize = 8;
    // Instance one takes every request whole and dies before answering; instance two answers.
    let (dying, alive) = (Fake::start(false).await, Fake::start(true).await);
    // max_fails=0: the failing instance stays in the rotation (least_conn alternates on ties).
    let nginx = start_nginx(&[dying.addr(), alive.addr()], "max_fails=0", "").await;
    let front = nginx.url("");
    for method in ["GET", "HEAD", "OPTIONS"] {
        let got = statuses(&front, method, N).await;
        assert!(got.iter().all(|s| *s == 200), "{method}: {got:?}");
        assert!(dying.seen(method) >= 1, "{method} reached the failing instance");
        assert_eq!(alive.seen(method), N, "{method}: each passed on to the live one");
    }
    for method in ["POST", "PATCH", "PUT", "DELETE"] {
        let got = statuses(&front, method, N).await;
        let failed = got.iter().filter(|s| **s == 502).count();
        assert!(dying.seen(method) >= 1, "{method} reached the failing instance");
        assert_eq!(
            failed,
            dying.seen(method),
            "{method}: each one it received failed: {got:?}"
        );
        assert_eq!(
            alive.seen(method) + dying.seen(method),
            N,
            "{method}: none sent twice"
        );
    }

    // An instance that refuses connections never received anything: POST and PATCH are passed
    // on; PUT and DELETE are not (NGINX cannot tell a refusal from a death mid-request there).
    let refused = format!("127.0.0.1:{}", free_port().await);
    let alive = Fake::start(true).await;
    let nginx = start_nginx(&[refused, alive.addr()], "max_fails=0", "").await;
    let front = nginx.url("");
    for method in ["GET", "HEAD", "POST", "PATCH"] {
        let got = statuses(&front, method, N).await;
        assert!(got.iter().all(|s| *s == 200), "{method}: {got:?}");
        assert_eq!(alive.seen(method), N, "{method}");
    }
    for method in ["PUT", "DELETE"] {
        let got = statuses(&front, method, N).await;
        let failed = got.iter().filter(|s| **s == 502).count();
        assert!(failed >= 1, "{method}: {got:?}");
        assert_eq!(alive.seen(method) + failed, N, "{method}: {got:?}");
    }
}

#[tokio::test]
async fn a_keyed_write_whose_answer_is_lost_after_writing_is_replayed_never_written_twice() {
    let a = spawn_app().await;
    let shared = [
        ("MONGODB_DATABASE", a.config.mongodb.database.as_str()),
        ("DHARA_REDIS__PREFIX", a.config.redis.prefix.as_str()),
    ];
    let b = spawn_app_with(&shared).await;
    let me = therapist(&a).await;
    let client_id = new_client(&a, &me, "Perdida").await;
    // Instance A behind a relay that loses the answers of the first four POSTs it passes.
    let relay = LossyRelay::start(a.socket_addr(), 4).await;
    let nginx = start_nginx(&[relay.addr(), b.socket_addr()], "max_fails=0", "").await;
    let front = nginx.url("");
    let http = reqwest::Client::new();
    let mut writes = Vec::new();
    for k in 0..10 {
        let key = format!("lost-{k}");
        writes.push(keyed_write(&http, &front, &me.auth, &key, &slot_booking(&client_id, k, &key)).await);
    }
    let lost = writes.iter().filter(|w| w.answers[0] == "502 ").count();
    assert_eq!(relay.lost().len(), 4, "the relay lost four answers");
    assert_eq!(
        lost, 4,
        "each lost answer reached its client as a 502: {writes:#?}"
    );
    for w in writes.iter().filter(|w| w.answers[0] == "502 ") {
        assert!(
            w.replayed,
            "{}: the retry replays the first outcome: {w:?}",
            w.key
        );
    }
    assert_each_stored_once(&a.db, &writes).await;

    // Without a key, a write whose answer was lost is not sent again by NGINX: its client sees
    // the 502 and it exists once.
    let relay = LossyRelay::start(a.socket_addr(), 3).await;
    let nginx = start_nginx(&[relay.addr(), b.socket_addr()], "max_fails=0", "").await;
    let mut failed = 0;
    for k in 0..8 {
        let r = http
            .post(nginx.url("/api/clients"))
            .header("Authorization", &me.auth)
            .json(&json!({ "name": format!("Sin clave {k}") }))
            .send()
            .await
            .unwrap();
        failed += usize::from(r.status() == 502);
    }
    assert_eq!((relay.lost().len(), failed), (3, 3));
    for k in 0..8 {
        let n =
            a.db.collection::<Document>("clients")
                .count_documents(doc! { "name": format!("Sin clave {k}") })
                .await
                .unwrap();
        assert_eq!(n, 1, "client {k} written once");
    }
}
