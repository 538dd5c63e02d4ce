//! A keyed creation whose first attempt stalls between claiming its time and writing its
//! booking, retried once its lease ran out, and then woken up. The first attempt runs in a real
//! `dhara serve` process reaching MongoDB through a relay that holds the insert of its booking
//! (the claims are written by then); the test stops that process with SIGSTOP right there, so
//! it renews nothing, and lets it go again (SIGCONT, the insert passed on) when it chooses.
//! Whichever attempt writes the booking, it exists once, and the time stays held by claims of
//! it: the stalled attempt can neither book a second time nor free what the retry took over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::{derived_booking_id, slot_booking};
use crate::helpers::*;
use crate::procs::{temp_dir, Instance};

/// The start of a command inserting into `bookings` (OP_MSG body: `insert: "bookings"`).
const BOOKING_INSERT: &[u8] = b"\x02insert\x00\x09\x00\x00\x00bookings\x00";

/// A TCP relay in front of MongoDB that holds the first message carrying a pattern (by default
/// an insert into `bookings`), and what follows it on that connection, until released. Plain
/// connections only: the relayed URI drops `compressors`, so the command is readable on the
/// wire.
pub(crate) struct HoldingRelay {
    port: u16,
    hold: Arc<Hold>,
    task: JoinHandle<()>,
}

struct Hold {
    pattern: &'static [u8],
    tripped: AtomicBool,
    hit: Notify,
    go: watch::Sender<bool>,
}

impl Drop for HoldingRelay {
    fn drop(&mut self) {
        let _ = self.hold.go.send(true);
        self.task.abort();
    }
}

impl HoldingRelay {
    async fn start(upstream: String) -> HoldingRelay {
        Self::holding(upstream, BOOKING_INSERT).await
    }

    /// A relay holding the first message that carries `pattern`.
    pub(crate) async fn holding(upstream: String, pattern: &'static [u8]) -> HoldingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = Arc::new(Hold {
            pattern,
            tripped: AtomicBool::new(false),
            hit: Notify::new(),
            go: watch::channel(false).0,
        });
        let h = hold.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), h.clone()));
            }
        });
        HoldingRelay { port, hold, task }
    }

    /// The MongoDB URI of the tests, through this relay.
    pub(crate) fn uri(&self) -> String {
        relayed_uri(&mongodb_uri(), &format!("127.0.0.1:{}", self.port))
    }

    /// Waits until the message is held, failing with `answered`'s answer if the request that
    /// was to send it answered first.
    pub(crate) async fn held(&self, answered: &mut JoinHandle<(u16, Value)>) {
        tokio::select! {
            _ = self.hold.hit.notified() => {}
            r = answered => panic!("answered before sending the held message: {:?}", r.unwrap()),
            _ = tokio::time::sleep(Duration::from_secs(60)) => panic!("the message not sent within 60 s"),
        }
    }

    /// Passes the held message on.
    pub(crate) fn release(&self) {
        let _ = self.hold.go.send(true);
    }
}

async fn relay(client: TcpStream, upstream: String, hold: Arc<Hold>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
    let mut buf = vec![0u8; 64 * 1024];
    // The end of what was passed on, so a pattern split across two reads is still seen.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from_client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        tail.extend_from_slice(&buf[..n]);
        let pattern = hold.pattern;
        let seen = tail.windows(pattern.len()).any(|w| w == pattern);
        if seen && !hold.tripped.swap(true, Ordering::SeqCst) {
            hold.hit.notify_one();
            let _ = hold.go.subscribe().wait_for(|go| *go).await;
        }
        if to_server.write_all(&buf[..n]).await.is_err() {
            return;
        }
        let keep = tail.len().saturating_sub(pattern.len());
        tail.drain(..keep);
    }
}

/// `uri` with its hosts replaced by `addr`, connecting to that one server directly.
pub(crate) fn relayed_uri(uri: &str, addr: &str) -> String {
    let rest = uri
        .strip_prefix("mongodb://")
        .expect("MONGODB_URI must be mongodb:// (not +srv) to be relayed");
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let userinfo = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut options: Vec<&str> = query
        .split('&')
        .filter(|o| {
            !o.is_empty()
                && !["replicaSet=", "directConnection=", "compressors="]
                    .iter()
                    .any(|p| o.starts_with(p))
        })
        .collect();
    options.push("directConnection=true");
    format!("mongodb://{userinfo}{addr}/{path}?{}", options.join("&"))
}

/// Where writes go: the primary of a replica set, or the one server of the URI.
pub(crate) async fn primary(db: &mongodb::Database) -> String {
    let hello = db.run_command(doc! { "hello": 1 }).await.unwrap();
    if let Ok(p) = hello.get_str("primary") {
        return p.to_owned();
    }
    let rest = mongodb_uri();
    let rest = rest.trim_start_matches("mongodb://");
    let authority = rest.split('/').next().unwrap_or(rest);
    let hosts = authority.rsplit('@').next().unwrap_or(authority);
    hosts.split(',').next().unwrap().to_owned()
}

/// The stalled attempt's instance, on `app`'s database and Redis prefix, reaching MongoDB
/// through `relay`; its keys' leases last 3 s.
async fn stalling_instance(app: &TestApp, relay: &HoldingRelay) -> Instance {
    let logs = temp_dir("stalled");
    let uri = relay.uri();
    let env = [
        ("MONGODB_URI", uri.as_str()),
        ("DHARA_REDIS__PREFIX", app.config.redis.prefix.as_str()),
        ("DHARA_HTTP__IDEMPOTENCY_LEASE_SECONDS", "3"),
    ];
    let mut a = Instance::start(&app.config.mongodb.database, &env, &logs).await;
    a.wait_ready().await;
    a
}

/// POSTs a keyed booking creation to `url` in its own task: (status, body).
fn post_keyed(url: String, auth: &str, key: &str, body: &Value) -> JoinHandle<(u16, Value)> {
    let request = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .post(url)
        .header("Authorization", auth)
        .header("Idempotency-Key", key)
        .json(body);
    tokio::spawn(async move {
        let r = request.send().await.expect("an answer");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    })
}

/// Polls until the lease of the (only) idempotency key has run out: the stalled attempt
/// renews nothing, so a retry may take the key over.
async fn until_lease_lapsed(app: &TestApp) {
    let keys = app.db.collection::<Document>("idempotency_keys");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let record = keys.find_one(doc! {}).await.unwrap().expect("the key's record");
        let until = record.get_datetime("leaseUntil").unwrap().timestamp_millis();
        if until < mongodb::bson::DateTime::now().timestamp_millis() {
            return;
        }
        assert!(Instant::now() < deadline, "the lease never ran out: {record}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first attempt of `key` (slot 0) sent to a fresh instance, held at its booking insert
/// with its process stopped, and its lease run out: (instance, relay, its pending answer).
async fn stall_first_attempt(
    app: &TestApp,
    me: &Caller,
    key: &str,
    body: &Value,
) -> (Instance, HoldingRelay, JoinHandle<(u16, Value)>) {
    let relay = HoldingRelay::start(primary(&app.db).await).await;
    let a = stalling_instance(app, &relay).await;
    let mut first = post_keyed(a.url("/api/bookings"), &me.auth, key, body);
    relay.held(&mut first).await;
    a.freeze().await;
    let claims = app.db.collection::<Document>("slot_claims");
    let own = derived_booking_id(&me.id, key, body);
    assert!(
        claims.count_documents(doc! { "bookingId": own }).await.unwrap() > 0,
        "the stalled attempt claimed its time"
    );
    until_lease_lapsed(app).await;
    (a, relay, first)
}

/// Every document of `collection`.
async fn all(app: &TestApp, collection: &str) -> Vec<Document> {
    app.db
        .collection::<Document>(collection)
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// The buckets booking `b` holds.
fn time_of(b: &Document) -> Vec<i64> {
    dhara::bookings::claims::buckets(
        b.get_datetime("startsAt").unwrap().to_chrono(),
        b.get_datetime("endsAt").unwrap().to_chrono(),
        b.get("bufferMinutes")
            .and_then(|m| m.as_i64().or(m.as_i32().map(i64::from)))
            .unwrap_or(0) as u32,
    )
}

/// One booking of `key` and nothing else; every bucket of its time held by a claim of it, under
/// a token it records (so a move or cancel frees it), and the reaper finds nothing to free.
/// Another key's creation of the same time is refused.
async fn assert_booked_once_and_held(app: &TestApp, me: &Caller, client: &str, key: &str) -> Document {
    let own = derived_booking_id(&me.id, key, &slot_booking(client, 0, key));
    let bookings = all(app, "bookings").await;
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    let b = bookings[0].clone();
    assert_eq!(b.get_object_id("_id").unwrap(), own);
    let tokens = b.get_array("claimTokens").unwrap().clone();
    let want = time_of(&b);
    let claims = all(app, "slot_claims").await;
    let mut held: Vec<i64> = claims
        .iter()
        .filter(|c| c.get_object_id("bookingId").ok() == Some(own))
        .filter(|c| c.get("token").is_some_and(|t| tokens.contains(t)))
        .filter_map(|c| c.get_i64("bucket").ok())
        .collect();
    held.sort();
    assert_eq!(held, want, "its time, held under its tokens: {claims:?}");
    let state = dhara::AppState::build(app.config.clone(), tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let reaped = dhara::bookings::service::claims(&state).reap_all().await.unwrap();
    assert_eq!(reaped.orphans, 0, "{reaped:?}");
    let r = app
        .client
        .post(app.url("/api/bookings"))
        .header("Authorization", &me.auth)
        .header("Idempotency-Key", format!("{key}-other"))
        .json(&slot_booking(client, 0, "another booking"))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "SLOT_TAKEN").await;
    b
}

#[tokio::test]
async fn a_stalled_attempt_waking_after_its_retry_booked_books_nothing_more_and_frees_nothing() {
    let app = spawn_app_with(&[("DHARA_HTTP__IDEMPOTENCY_LEASE_SECONDS", "3")]).await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Dormida").await;
    let key = "stalled-then-woken";
    let body = slot_booking(&client, 0, key);
    let (a, relay, first) = stall_first_attempt(&app, &me, key, &body).await;

    // The retry takes the key and the claims over, and books.
    let (status, retry) = post_keyed(app.url("/api/bookings"), &me.auth, key, &body)
        .await
        .unwrap();
    assert_eq!(status, 201, "{retry}");
    let own = derived_booking_id(&me.id, key, &body).to_hex();
    assert_eq!(retry["data"]["id"], own.as_str());

    // The stalled attempt wakes up: its insert meets the retry's booking.
    relay.release();
    a.thaw().await;
    let (status, woken) = first.await.unwrap();
    assert_eq!(
        (status, woken["data"]["id"].as_str()),
        (201, Some(own.as_str())),
        "{woken}"
    );
    assert_booked_once_and_held(&app, &me, &client, key).await;
}

#[tokio::test]
async fn a_stalled_attempt_writing_before_its_retry_keeps_the_time_the_retry_took_over() {
    // The retry's instance holds its own booking insert until the stalled attempt has written.
    let direct = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    let retry_relay = HoldingRelay::start(primary(&direct.database("admin")).await).await;
    let uri = retry_relay.uri();
    let app = spawn_app_with(&[
        ("DHARA_HTTP__IDEMPOTENCY_LEASE_SECONDS", "3"),
        ("MONGODB_URI", uri.as_str()),
    ])
    .await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Adelantada").await;
    let key = "stalled-writes-first";
    let body = slot_booking(&client, 0, key);
    let (a, relay, first) = stall_first_attempt(&app, &me, key, &body).await;

    // The retry takes the key and the claims over; its booking insert waits.
    let mut retry = post_keyed(app.url("/api/bookings"), &me.auth, key, &body);
    retry_relay.held(&mut retry).await;
    // The stalled attempt's insert lands first, then it wakes up.
    relay.release();
    let own = derived_booking_id(&me.id, key, &body);
    let bookings = app.db.collection::<Document>("bookings");
    let deadline = Instant::now() + Duration::from_secs(30);
    while bookings.count_documents(doc! { "_id": own }).await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "the stalled insert never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.thaw().await;
    let (status, woken) = first.await.unwrap();
    assert_eq!(status, 201, "{woken}");
    // The retry's insert fails on the booking's id: it answers that booking, keeping the claims.
    retry_relay.release();
    let (status, answered) = retry.await.unwrap();
    assert_eq!(
        (status, answered["data"]["id"].as_str()),
        (201, Some(own.to_hex().as_str())),
        "{answered}"
    );
    let b = assert_booked_once_and_held(&app, &me, &client, key).await;

    // Both attempts' tokens are the booking's: a move frees all of its old time at once.
    let moved = app
        .put_as(
            &format!("/api/bookings/{}", own.to_hex()),
            &me,
            &serde_json::json!({ "startTime": "14:00", "endTime": "14:50", "version": b.get_i64("version").unwrap_or(1) }),
        )
        .await;
    assert_eq!(moved.status(), 200, "{}", moved.text().await.unwrap());
    let r = app
        .post_as("/api/bookings", &me, &slot_booking(&client, 0, "the old time"))
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// A retry that took over some of its stalled attempt's claims and was then refused frees none
/// of what it took over: the attempt it took them from may still write. Here the therapist's
/// buffer grew meanwhile, so the retry's second occurrence reaches into a booking made since;
/// the stalled attempt then wakes up and writes its series (with the buffer it read), over time
/// that is still held: nothing can be booked over it.
#[tokio::test]
async fn a_refused_retry_frees_none_of_the_claims_it_took_over_from_its_stalled_attempt() {
    let app = spawn_app_with(&[("DHARA_HTTP__IDEMPOTENCY_LEASE_SECONDS", "3")]).await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Serie").await;
    let key = "stalled-series";
    let mut body = slot_booking(&client, 0, key);
    body["recurrence"] = json!({ "frequency": "weekly", "count": 2 });
    let (a, relay, first) = stall_first_attempt(&app, &me, key, &body).await;

    let mut schedule = json_body(app.get_as("/api/availability/schedule", &me).await).await["data"].clone();
    schedule["bufferMinutes"] = json!(15);
    let r = app.put_as("/api/availability/schedule", &me, &schedule).await;
    assert_eq!(r.status(), 200);
    let next = json!({ "clientId": client, "date": "2031-03-10", "startTime": "10:00", "endTime": "10:50" });
    assert_eq!(app.post_as("/api/bookings", &me, &next).await.status(), 201);
    // The retry takes over the first occurrence's claims, then meets that booking.
    let (status, retry) = post_keyed(app.url("/api/bookings"), &me.auth, key, &body)
        .await
        .unwrap();
    assert_eq!(
        (status, retry["code"].as_str()),
        (409, Some("SLOT_TAKEN")),
        "{retry}"
    );

    relay.release();
    a.thaw().await;
    let (status, woken) = first.await.unwrap();
    assert_eq!(status, 201, "{woken}");
    let bookings = all(&app, "bookings").await;
    assert_eq!(bookings.len(), 3, "{bookings:?}");
    let claims = all(&app, "slot_claims").await;
    for b in &bookings {
        let id = b.get_object_id("_id").unwrap();
        for bucket in time_of(b) {
            assert!(
                claims
                    .iter()
                    .any(|c| c.get_object_id("bookingId").ok() == Some(id)
                        && c.get_i64("bucket").ok() == Some(bucket)),
                "bucket {bucket} of {b} not held by it: {claims:?}"
            );
        }
    }
    for date in ["2031-03-03", "2031-03-10"] {
        let over = json!({ "clientId": client, "date": date, "startTime": "09:00", "endTime": "09:50" });
        let r = app.post_as("/api/bookings", &me, &over).await;
        assert_error(r, 409, "SLOT_TAKEN").await;
    }
}
