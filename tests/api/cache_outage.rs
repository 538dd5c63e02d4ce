//! Issue 11, item 4: redis-server stopped under load. Two instances keep answering every read
//! (from process and MongoDB) with no failure and no long wait; an instance's own write is
//! read back at once, another instance's within the outage bound; once Redis is back, the
//! breakers close, the shared layer answers again and invalidation is cross-instance again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::cache::two_instances_with;
use crate::helpers::*;

/// A redis-server of this test's own on `port` (no persistence).
async fn redis_on(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server is installed (scripts/services.sh)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not start on {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// The breaker gauge of `app` (0 closed, 1 open, 2 half-open).
async fn breaker(app: &TestApp) -> f64 {
    metric(app, "cache_redis_breaker_state ").await
}

/// The sum of every series of `app` whose line starts with `prefix`.
async fn metric(app: &TestApp, prefix: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until `app` has made a Redis call that closed its breaker.
async fn until_closed(app: &TestApp, me: &Caller) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(app.get_as("/api/auth/me", me).await.status(), 200);
        if breaker(app).await == 0.0 {
            return;
        }
        assert!(Instant::now() < deadline, "the breaker never closed again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads that must never fail while Redis comes and goes: (requests, failures, slowest ms).
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    slowest_ms: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn load(apps: [&TestApp; 2], me: &Caller) -> Load {
    let (stop, done, failed, slowest_ms) = Default::default();
    let mut l = Load {
        stop,
        done,
        failed,
        slowest_ms,
        tasks: Vec::new(),
    };
    let paths = [
        "/api/auth/me",
        "/api/bookings?limit=20",
        "/api/clients?limit=20",
        "/api/dashboard",
    ];
    for worker in 0..4 {
        let urls: Vec<String> = paths.iter().map(|p| apps[worker % 2].url(p)).collect();
        let (stop, done, failed, slowest) = (
            l.stop.clone(),
            l.done.clone(),
            l.failed.clone(),
            l.slowest_ms.clone(),
        );
        let auth = me.auth.clone();
        l.tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = http
                    .get(&urls[i % urls.len()])
                    .header("authorization", &auth)
                    .send()
                    .await;
                if !matches!(&r, Ok(r) if r.status() == 200) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                slowest.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    l
}

async fn notes_on(app: &TestApp, me: &Caller) -> Value {
    let page = json_body(app.get_as("/api/bookings?limit=20", me).await).await;
    page["data"][0]["notes"].clone()
}

/// Waits until both breakers are open (1) or probing (2): reads no longer wait on Redis.
async fn until_open(a: &TestApp, b: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while breaker(a).await == 0.0 || breaker(b).await == 0.0 {
        assert!(Instant::now() < deadline, "the breakers did not open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Without Redis: A's own write is read back on A at once; B, which cannot hear of it, shows
/// it once its process entries are past the outage bound (500 ms here).
async fn write_seen_within_the_bound(a: &TestApp, b: &TestApp, me: &Caller, booking: &str, notes: &str) {
    let r = a.put_as(booking, me, &json!({ "notes": notes })).await;
    assert_eq!(r.status(), 200);
    assert_eq!(notes_on(a, me).await, notes, "A's own write at once");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(notes_on(b, me).await, notes, "B is stale at most 500 ms");
}

/// With Redis back: `rounds` writes on A, each read new on B at once (B read it before).
async fn coherent_again(a: &TestApp, b: &TestApp, me: &Caller, booking: &str, rounds: usize) {
    for round in 0..rounds {
        notes_on(b, me).await;
        let notes = format!("after {round}");
        let r = a.put_as(booking, me, &json!({ "notes": notes })).await;
        assert_eq!(r.status(), 200);
        assert_eq!(notes_on(b, me).await, notes.as_str(), "round {round}");
    }
}

/// Two instances on the Redis at `url` (outage bound 500 ms, breaker open 300 ms), a therapist
/// with one booking (its path returned), both breakers closed.
async fn practice_on(url: &str, extra: &[(&str, &str)]) -> (TestApp, TestApp, Caller, String) {
    let mut env = vec![
        ("REDIS_URL", url),
        ("DHARA_CACHE__OUTAGE_TRUST_MS", "500"),
        ("DHARA_CACHE__BREAKER_OPEN_MS", "300"),
        ("DHARA_RATE_LIMIT__ENABLED", "false"),
    ];
    env.extend_from_slice(extra);
    let (a, b) = two_instances_with(&env).await;
    let me = therapist(&a).await;
    let client = new_client(&a, &me, "Elena Soto").await;
    let id = new_booking(&a, &me, &client, "2031-05-05").await;
    until_closed(&a, &me).await;
    until_closed(&b, &me).await;
    (a, b, me, format!("/api/bookings/{id}"))
}

#[tokio::test]
async fn redis_stopped_under_load_fails_no_read_and_coherence_returns_with_it() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = redis_on(port).await;
    let (a, b, me, booking) = practice_on(&url, &[]).await;

    let running = load([&a, &b], &me);
    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.kill().await.unwrap();
    let outage = Instant::now();
    until_open(&a, &b).await;

    write_seen_within_the_bound(&a, &b, &me, &booking, "during").await;
    let slowest_during = running.slowest_ms.load(Ordering::Relaxed);
    assert!(outage.elapsed() < Duration::from_secs(10));

    let _redis = redis_on(port).await;
    until_closed(&a, &me).await;
    until_closed(&b, &me).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop.store(true, Ordering::Relaxed);
    for t in running.tasks {
        t.await.unwrap();
    }
    let (done, failed) = (
        running.done.load(Ordering::Relaxed),
        running.failed.load(Ordering::Relaxed),
    );
    assert!(done > 40, "the load ran ({done} requests)");
    assert_eq!(failed, 0, "{failed} of {done} reads failed across the outage");
    // No read waited on Redis beyond a few response timeouts before the breaker opened.
    assert!(slowest_during < 3_000, "slowest read {slowest_during} ms");

    // Back: the shared layer answers B what A filled, and a write on A is seen on B at once.
    let path = "/api/clients?limit=19";
    let redis_hits = metric(&b, "cache_hits_total{family=\"clients\",layer=\"redis\"}").await;
    assert_eq!(a.get_as(path, &me).await.status(), 200);
    assert_eq!(b.get_as(path, &me).await.status(), 200);
    assert_eq!(
        metric(&b, "cache_hits_total{family=\"clients\",layer=\"redis\"}").await - redis_hits,
        1.0,
        "B found A's page in Redis"
    );
    coherent_again(&a, &b, &me, &booking, 20).await;
}

/// A TCP proxy in front of a server (Redis, MongoDB) that can hang: requests still reach it,
/// replies are held while `hung` is set (connections stay open, answers never come in time).
pub(crate) async fn hanging_proxy(target: String) -> (u16, Arc<AtomicBool>) {
    let hung = Arc::new(AtomicBool::new(false));
    let port = relay(target, hung.clone(), Arc::new(AtomicU64::new(0))).await;
    (port, hung)
}

/// A TCP proxy to `target`: replies are held while `hung` is set, and each waits `delay_ms`.
async fn relay(target: String, hung: Arc<AtomicBool>, delay_ms: Arc<AtomicU64>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (hung, delay_ms) = (hung.clone(), delay_ms.clone());
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(target.as_str()).await else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                    while hung.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let delay = delay_ms.load(Ordering::Relaxed);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    if to_client.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_hung_redis_under_load_costs_reads_no_more_than_the_breakers_timeout() {
    // Every reply held (connections open): each Redis call is cut at 250 ms, the breakers
    // open, and once open no read asks Redis.
    reads_survive_a_misbehaving_redis(true, 0).await;
}

#[tokio::test]
async fn a_redis_slower_than_half_the_bound_opens_the_breaker_and_no_read_waits_past_it() {
    // Each reply 160 ms late: under the 250 ms bound, over half of it. A read asking for its
    // generation while a round trip is in flight waits for that one and then its own; were
    // each allowed the whole bound, reads would wait ~320 ms and the breakers, whose calls all
    // succeed, would never open.
    reads_survive_a_misbehaving_redis(false, 160).await;
}

/// Two instances under read load while the Redis behind a relay holds its replies (`hang`)
/// or delays each (`delay_ms`), then behaves again: the breakers open, no read fails, none
/// waits much past the 250 ms cap, A's write is read on B within the outage bound, and once
/// the breakers close every write on A is read new on B at once.
async fn reads_survive_a_misbehaving_redis(hang: bool, delay_ms: u64) {
    let port = free_port();
    let _redis = redis_on(port).await;
    let (hung, delay) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let proxy = relay(format!("127.0.0.1:{port}"), hung.clone(), delay.clone()).await;
    let url = format!("redis://127.0.0.1:{proxy}");
    // Redis's own response timeout far above the breaker's 250 ms cap: a read that waited for
    // it instead of the cap would take 5 s.
    let (a, b, me, booking) = practice_on(&url, &[("DHARA_REDIS__RESPONSE_TIMEOUT_MS", "5000")]).await;

    let running = load([&a, &b], &me);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = running.slowest_ms.load(Ordering::Relaxed);
    hung.store(hang, Ordering::Relaxed);
    delay.store(delay_ms, Ordering::Relaxed);
    until_open(&a, &b).await;
    write_seen_within_the_bound(&a, &b, &me, &booking, "degraded").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let slowest = running.slowest_ms.load(Ordering::Relaxed);

    hung.store(false, Ordering::Relaxed);
    delay.store(0, Ordering::Relaxed);
    until_closed(&a, &me).await;
    until_closed(&b, &me).await;
    running.stop.store(true, Ordering::Relaxed);
    for t in running.tasks {
        t.await.unwrap();
    }
    let (done, failed) = (
        running.done.load(Ordering::Relaxed),
        running.failed.load(Ordering::Relaxed),
    );
    assert_eq!(
        failed, 0,
        "{failed} of {done} reads failed while Redis misbehaved"
    );
    // The margin above the cap is for the reads that then go to the database uncached, which
    // a busy machine slows down; a read that waited for Redis's timeout would be over it by
    // seconds.
    assert!(
        slowest < before.max(100) + 1_500,
        "slowest read {slowest} ms (before {before} ms)"
    );
    coherent_again(&a, &b, &me, &booking, 10).await;
}
