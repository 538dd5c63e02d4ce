//! Faults under load (issue 14, item 3): NGINX with the repo's rules in front of three real
//! `dhara serve --no-worker` processes, one killed with SIGKILL while clients read and write,
//! then started again. What NGINX may send again when an instance fails, and a keyed write
//! whose answer is lost after it was written: `nginx.rs`. A worker killed holding jobs:
//! `worker.rs` (and `emails::a_worker_killed_mid_batch_…`). A keyed creation stalled between
//! claiming and writing, retried, then woken up: `stalled.rs`. A client's change killed before
//! its reminders were armed: `reminders.rs`.

mod nginx;
mod reminders;
pub(crate) mod stalled;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhara::idempotency::Ids;
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::procs::{start_nginx, temp_dir, Instance};

/// A booking request of `client` in slot `k` (one 50-minute slot per hour, eight a day),
/// marked with `key` in its notes.
fn slot_booking(client: &str, k: usize, key: &str) -> Value {
    let day = chrono::NaiveDate::from_ymd_opt(2031, 3, 3).unwrap() + chrono::Days::new((k / 8) as u64);
    let hour = 9 + k % 8;
    json!({
        "clientId": client, "date": day.format("%Y-%m-%d").to_string(),
        "startTime": format!("{hour:02}:00"), "endTime": format!("{hour:02}:50"), "notes": key,
    })
}

/// What one keyed write saw, attempt by attempt, and its final answer.
#[derive(Debug, Default, Clone)]
struct Write {
    key: String,
    answers: Vec<String>,
    status: u16,
    code: String,
    id: Option<String>,
    replayed: bool,
}

/// POSTs `body` with `key` through `front` until a definite answer: a 5xx, a lost connection
/// or `IDEMPOTENCY_IN_PROGRESS` is retried with the same key (up to 90 s).
async fn keyed_write(client: &reqwest::Client, front: &str, auth: &str, key: &str, body: &Value) -> Write {
    let mut w = Write {
        key: key.to_owned(),
        ..Write::default()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let sent = client
            .post(format!("{front}/api/bookings"))
            .header("Authorization", auth)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        let again = match sent {
            Err(e) => {
                w.answers.push(format!("error {e}"));
                true
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let replayed = r.headers().contains_key("idempotent-replayed");
                let v: Value = r.json().await.unwrap_or(Value::Null);
                let code = v["code"].as_str().unwrap_or_default().to_owned();
                w.answers.push(format!("{status} {code}"));
                (w.status, w.code, w.replayed) = (status, code.clone(), replayed);
                w.id = v["data"]["id"].as_str().map(str::to_owned);
                status >= 500 || code == "IDEMPOTENCY_IN_PROGRESS"
            }
        };
        if !again {
            return w;
        }
        assert!(
            Instant::now() < deadline,
            "no definite answer for {key}: {:?}",
            w.answers
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every booking in the database, by the key in its notes; panics on two bookings in one slot.
async fn bookings_by_key(db: &mongodb::Database) -> HashMap<String, Vec<String>> {
    let all: Vec<Document> = db
        .collection::<Document>("bookings")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    let mut by_slot: BTreeMap<(String, String), usize> = BTreeMap::new();
    for b in &all {
        let key = b.get_str("notes").unwrap_or_default().to_owned();
        by_key
            .entry(key)
            .or_default()
            .push(b.get_object_id("_id").unwrap().to_hex());
        let slot = (
            b.get_str("date").unwrap().to_owned(),
            b.get_str("startTime").unwrap().to_owned(),
        );
        *by_slot.entry(slot).or_default() += 1;
    }
    let doubled: Vec<_> = by_slot.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "slots holding two bookings: {doubled:?}");
    by_key
}

/// The id a keyed booking creation of `therapist` writes its booking under (derived from the
/// key and the body, as sent: serde_json's bytes of `body`).
fn derived_booking_id(therapist: &str, key: &str, body: &Value) -> ObjectId {
    derived_ids(therapist, key, body).nth(0)
}

fn derived_ids(therapist: &str, key: &str, body: &Value) -> Ids {
    let caller = ObjectId::parse_str(therapist).unwrap();
    let bytes = serde_json::to_vec(body).unwrap();
    Ids::new(caller, "POST /api/bookings", Some(key), &bytes)
}

/// Checks every write against the database: answered 201 and stored exactly once, under the id
/// it was answered with (a write whose instance died between claiming its time and writing its
/// booking too: its retry takes its claims over); no slot holds two bookings.
async fn assert_each_stored_once(db: &mongodb::Database, writes: &[Write]) {
    let stored = bookings_by_key(db).await;
    for w in writes {
        let ids = stored.get(&w.key).cloned().unwrap_or_default();
        assert_eq!(
            w.status, 201,
            "{} ended {} {}: {:?}",
            w.key, w.status, w.code, w.answers
        );
        assert_eq!(ids.len(), 1, "{} stored {} times", w.key, ids.len());
        assert_eq!(
            w.id.as_ref(),
            Some(&ids[0]),
            "{}: answered with its stored id",
            w.key
        );
    }
    let total: usize = stored.values().map(Vec::len).sum();
    assert_eq!(total, writes.len(), "no booking beyond the keyed writes");
}

/// What the readers saw: answers, failures, and which instance answered.
#[derive(Default)]
struct Reads {
    ok: AtomicUsize,
    failed: Mutex<Vec<String>>,
    /// Answers NGINX got from another instance after the first one failed.
    passed_on: AtomicUsize,
    /// Answers by the instance that gave them.
    by_instance: Mutex<HashMap<String, usize>>,
}

impl Reads {
    fn from(&self, addr: &str) -> usize {
        self.by_instance.lock().unwrap().get(addr).copied().unwrap_or(0)
    }
}

/// The read-heavy scenario's requests (artillery/read-heavy.yml), and a HEAD.
const READS: &[(&str, &str)] = &[
    ("GET", "/api/auth/me"),
    ("GET", "/api/bookings?limit=20"),
    ("GET", "/api/clients?limit=20"),
    ("GET", "/api/dashboard"),
    ("HEAD", "/api/auth/me"),
];

async fn reader(
    http: reqwest::Client,
    front: String,
    auth: String,
    reads: Arc<Reads>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        for (method, path) in READS {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let sent = http
                .request(m, format!("{front}{path}"))
                .header("Authorization", &auth)
                .send()
                .await;
            let r = match sent {
                Ok(r) => r,
                Err(e) => {
                    reads.failed.lock().unwrap().push(format!("{method} {path}: {e}"));
                    continue;
                }
            };
            let (status, via) = (r.status(), r.headers().get("x-upstream").cloned());
            let via = via
                .and_then(|v| v.to_str().ok().map(str::to_owned))
                .unwrap_or_default();
            match r.bytes().await {
                Ok(_) if status == 200 => {
                    let last = via.rsplit(", ").next().unwrap_or_default().to_owned();
                    *reads.by_instance.lock().unwrap().entry(last).or_default() += 1;
                    reads
                        .passed_on
                        .fetch_add(usize::from(via.contains(',')), Ordering::SeqCst);
                    reads.ok.fetch_add(1, Ordering::SeqCst);
                }
                other => {
                    let what = other.err().map(|e| e.to_string()).unwrap_or_default();
                    reads
                        .failed
                        .lock()
                        .unwrap()
                        .push(format!("{method} {path}: {status} via {via} {what}"));
                }
            }
        }
    }
}

/// Books slot after slot with a fresh key each, until `stop`; every write ends definite.
async fn writer(
    http: reqwest::Client,
    front: String,
    auth: String,
    client_id: String,
    next: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    writes: Arc<Mutex<Vec<Write>>>,
) {
    while !stop.load(Ordering::SeqCst) {
        let k = next.fetch_add(1, Ordering::SeqCst);
        let key = format!("kill-{k}");
        let w = keyed_write(&http, &front, &auth, &key, &slot_booking(&client_id, k, &key)).await;
        writes.lock().unwrap().push(w);
    }
}

/// Polls `ok` every 50 ms until it holds, failing with `what` after `within`.
async fn until(what: &str, within: Duration, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_instance_killed_under_read_load_fails_no_read_writes_nothing_twice_and_rejoins() {
    let config = test_config(&[]);
    let database = config.mongodb.database.clone();
    let logs = temp_dir("faults");
    let mail = logs.join("mail").display().to_string();
    let env = [
        ("DHARA_REDIS__PREFIX", config.redis.prefix.as_str()),
        ("DHARA_MAIL__FILE_DIR", mail.as_str()),
        // A keyed write cut off by the kill may be retried after 5 s instead of 60.
        ("DHARA_HTTP__IDEMPOTENCY_LEASE_SECONDS", "5"),
    ];
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(Instance::start(&database, &env, &logs).await);
    }
    for i in &mut instances {
        i.wait_ready().await;
    }
    let addrs: Vec<String> = instances.iter().map(Instance::addr).collect();
    // nginx/dhara.conf's max_fails=3; fail_timeout 3 s instead of 30 s, so the restarted
    // instance is tried again within the test's time.
    let upstream = "max_fails=3 fail_timeout=3s";
    let nginx = start_nginx(&addrs, upstream, "add_header X-Upstream $upstream_addr always;").await;
    let front = nginx.url("");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let db = mongodb::Client::with_uri_str(mongodb_uri())
        .await
        .unwrap()
        .database(&database);

    let password = "correct horse battery";
    let session = http
        .post(format!("{front}/api/auth/register"))
        .json(&json!({ "name": "Ana Fallos", "email": "fallos@example.com", "password": password, "confirmPassword": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 201);
    let session: Value = session.json().await.unwrap();
    let auth = bearer(&session);
    let r = http
        .post(format!("{front}/api/clients"))
        .header("Authorization", &auth)
        .json(&json!({ "name": "Luis Fallos", "phone": "+34 600 111 222" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let client_id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();

    let (reads, stop) = (Arc::new(Reads::default()), Arc::new(AtomicBool::new(false)));
    let writes = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let r = reader(
            http.clone(),
            front.clone(),
            auth.clone(),
            reads.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(r));
    }
    for _ in 0..3 {
        let (c, n, w) = (client_id.clone(), next.clone(), writes.clone());
        tasks.push(tokio::spawn(writer(
            http.clone(),
            front.clone(),
            auth.clone(),
            c,
            n,
            stop.clone(),
            w,
        )));
    }
    let done = |w: &Arc<Mutex<Vec<Write>>>| w.lock().unwrap().len();
    let busy = "the load did not get going within 60 s";
    until(busy, Duration::from_secs(60), || {
        reads.ok.load(Ordering::SeqCst) >= 30 && done(&writes) >= 3 && addrs.iter().all(|a| reads.from(a) > 0)
    })
    .await;

    // Kill one instance mid-load; the load goes on through the two others.
    let victim = &mut instances[0];
    victim.kill().await;
    let (reads_at_kill, writes_at_kill) = (reads.ok.load(Ordering::SeqCst), done(&writes));
    let passed_on_at_kill = reads.passed_on.load(Ordering::SeqCst);
    // ...until reads met the dead instance (NGINX tries it again every fail_timeout).
    until("the load stalled after the kill", Duration::from_secs(60), || {
        reads.ok.load(Ordering::SeqCst) >= reads_at_kill + 100
            && done(&writes) >= writes_at_kill + 6
            && reads.passed_on.load(Ordering::SeqCst) > passed_on_at_kill
    })
    .await;

    // Started again on its port, it gets traffic from NGINX again.
    victim.restart();
    victim.wait_ready().await;
    let served_before = reads.from(&victim.addr());
    let deadline = Instant::now() + Duration::from_secs(60);
    while reads.from(&victim.addr()) == served_before || victim.api_requests().await == 0 {
        assert!(
            Instant::now() < deadline,
            "NGINX sent nothing to the restarted instance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }

    let failed = reads.failed.lock().unwrap().clone();
    let writes = writes.lock().unwrap().clone();
    let cut = writes.iter().filter(|w| w.answers.len() > 1).count();
    eprintln!(
        "reads: {} answered ({} passed on), by instance {:?}; writes: {} ({} retried)",
        reads.ok.load(Ordering::SeqCst),
        reads.passed_on.load(Ordering::SeqCst),
        reads.by_instance.lock().unwrap(),
        writes.len(),
        cut,
    );
    for w in writes.iter().filter(|w| w.answers.len() > 1) {
        eprintln!("  {}: {:?}", w.key, w.answers);
    }
    assert!(failed.is_empty(), "failed reads: {failed:#?}");
    assert_each_stored_once(&db, &writes).await;
}

/// The state a keyed creation's instance leaves when it dies after claiming its time and before
/// writing its booking (the first attempt is run whole, then its booking removed and its key put
/// back to `processing` under a lease that ran out): the claims of its derived booking ids, no
/// booking. The id of its (first) booking.
async fn died_between_claiming_and_writing(app: &TestApp, me: &Caller, key: &str, body: &Value) -> ObjectId {
    let r = app
        .client
        .post(app.url("/api/bookings"))
        .header("Authorization", &me.auth)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let own = derived_booking_id(&me.id, key, body);
    app.db
        .collection::<Document>("bookings")
        .delete_many(doc! { "notes": key })
        .await
        .unwrap();
    let past = mongodb::bson::DateTime::from_millis(0);
    app.db
        .collection::<Document>("idempotency_keys")
        .update_many(
            doc! { "state": "done" },
            doc! { "$set": { "state": "processing", "leaseUntil": past }, "$unset": { "status": "", "body": "" } },
        )
        .await
        .unwrap();
    own
}

/// POSTs `body` as a keyed booking creation.
async fn post_keyed(app: &TestApp, me: &Caller, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/bookings"))
        .header("Authorization", &me.auth)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The claims of `booking`: (bucket, token), by bucket.
async fn claims_of(app: &TestApp, booking: ObjectId) -> Vec<(i64, mongodb::bson::Bson)> {
    let found: Vec<Document> = app
        .db
        .collection::<Document>("slot_claims")
        .find(doc! { "bookingId": booking })
        .sort(doc! { "bucket": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    found
        .iter()
        .map(|c| (c.get_i64("bucket").unwrap(), c.get("token").cloned().unwrap()))
        .collect()
}

/// A keyed creation whose instance died after claiming its time and before writing its booking
/// is retried (its lease run out): the retry takes over the claims its own dead attempt left
/// (they name the booking id the key derives) and books, once; the booking records the token
/// its time is held under.
#[tokio::test]
async fn a_keyed_retry_after_its_instance_died_between_claiming_and_writing_books_once() {
    let app = spawn_app_with(&[("DHARA_HTTP__IDEMPOTENCY_LEASE_SECONDS", "3")]).await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Reclamada").await;
    let key = "died-between-claims-and-booking";
    let body = slot_booking(&client, 0, key);
    let own = died_between_claiming_and_writing(&app, &me, key, &body).await;
    let left = claims_of(&app, own).await;
    assert!(!left.is_empty(), "the dead attempt's claims are there");

    let retry = post_keyed(&app, &me, key, &body).await;
    let status = retry.status();
    assert_eq!(status, 201, "{}", retry.text().await.unwrap());
    let bookings = app.db.collection::<Document>("bookings");
    assert_eq!(bookings.count_documents(doc! { "_id": own }).await.unwrap(), 1);
    let b = bookings.find_one(doc! { "_id": own }).await.unwrap().unwrap();
    let tokens = b.get_array("claimTokens").unwrap();
    let now = claims_of(&app, own).await;
    let buckets = |c: &[(i64, mongodb::bson::Bson)]| c.iter().map(|(b, _)| *b).collect::<Vec<_>>();
    assert_eq!(buckets(&now), buckets(&left), "the same time, held once");
    assert!(
        now.iter().all(|(_, t)| tokens.contains(t)),
        "held under the booking's tokens: {now:?} vs {tokens:?}"
    );
    assert_eq!(
        post_keyed(&app, &me, key, &body).await.status(),
        201,
        "and replayed"
    );
}

/// The same for a weekly series: every occurrence's id derives from the key, and the retry takes
/// over the claims of each.
#[tokio::test]
async fn a_keyed_series_retried_after_its_instance_died_between_claiming_and_writing_is_booked_once() {
    let app = spawn_app_with(&[("DHARA_HTTP__IDEMPOTENCY_LEASE_SECONDS", "3")]).await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Semanal").await;
    let key = "series-died-between-claims-and-bookings";
    let mut body = slot_booking(&client, 0, key);
    body["recurrence"] = json!({ "frequency": "weekly", "count": 3 });
    died_between_claiming_and_writing(&app, &me, key, &body).await;
    let held = app.db.collection::<Document>("slot_claims");
    let left = held.count_documents(doc! {}).await.unwrap();

    let retry = post_keyed(&app, &me, key, &body).await;
    assert_eq!(retry.status(), 201);
    let created = json_body(retry).await["data"].as_array().unwrap().clone();
    assert_eq!(created.len(), 3);
    for (i, b) in created.iter().enumerate() {
        let id = derived_ids(&me.id, key, &body).nth(i as u32);
        assert_eq!(b["id"], id.to_hex().as_str());
        let stored = app
            .db
            .collection::<Document>("bookings")
            .find_one(doc! { "_id": id })
            .await
            .unwrap()
            .unwrap();
        let tokens = stored.get_array("claimTokens").unwrap();
        let mine = claims_of(&app, id).await;
        assert_eq!(mine.len(), 10, "{mine:?}");
        assert!(
            mine.iter().all(|(_, t)| tokens.contains(t)),
            "{mine:?} vs {tokens:?}"
        );
    }
    assert_eq!(
        held.count_documents(doc! {}).await.unwrap(),
        left,
        "no claim beyond its time"
    );
}

/// The same state, but the time held (wholly or in part) for another booking: that is a
/// conflict, whatever became of the booking's writer. Another key's creation of a dead
/// attempt's time is refused, and so is a retry one of whose buckets another booking holds;
/// the dead attempt's own retry still books.
#[tokio::test]
async fn a_keyed_retry_is_refused_by_claims_held_for_another_booking() {
    let app = spawn_app_with(&[("DHARA_HTTP__IDEMPOTENCY_LEASE_SECONDS", "3")]).await;
    let me = therapist(&app).await;
    let client = new_client(&app, &me, "Ajena").await;
    let (dead, mixed) = ("dead-attempt", "one-bucket-held-elsewhere");
    let own = died_between_claiming_and_writing(&app, &me, dead, &slot_booking(&client, 0, dead)).await;
    let own_mixed =
        died_between_claiming_and_writing(&app, &me, mixed, &slot_booking(&client, 1, mixed)).await;
    let (left, left_mixed) = (claims_of(&app, own).await, claims_of(&app, own_mixed).await);
    // The last bucket of the second one is held for another booking (one moved there, say).
    let (last, _) = left_mixed.last().cloned().unwrap();
    app.db
        .collection::<Document>("slot_claims")
        .update_one(
            doc! { "bookingId": own_mixed, "bucket": last },
            doc! { "$set": { "bookingId": ObjectId::new(), "token": ObjectId::new() } },
        )
        .await
        .unwrap();

    let other = post_keyed(&app, &me, "another-key", &slot_booking(&client, 0, "another-key")).await;
    assert_error(other, 409, "SLOT_TAKEN").await;
    assert_eq!(
        claims_of(&app, own).await,
        left,
        "another booking's claims are untouched"
    );
    let retry = post_keyed(&app, &me, mixed, &slot_booking(&client, 1, mixed)).await;
    assert_error(retry, 409, "SLOT_TAKEN").await;
    let bookings = app.db.collection::<Document>("bookings");
    assert_eq!(bookings.count_documents(doc! {}).await.unwrap(), 0);
    assert_eq!(
        claims_of(&app, own_mixed).await.len(),
        left_mixed.len() - 1,
        "its own claims stay until the reaper: they may hold its stalled attempt's time"
    );

    let retry = post_keyed(&app, &me, dead, &slot_booking(&client, 0, dead)).await;
    assert_eq!(retry.status(), 201, "{}", retry.text().await.unwrap());
    assert_eq!(bookings.count_documents(doc! {}).await.unwrap(), 1);
}
