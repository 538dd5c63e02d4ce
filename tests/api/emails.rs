//! The email outbox against a real SMTP server on loopback (issue 12): booking emails armed,
//! sent once with their calendar file, re-checked before sending, retried, dead-lettered,
//! visible per booking; several workers, a killed worker and SIGTERM.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{Duration as Span, Utc};
use dhara::bookings::model::{Booking, BookingStatus, PaymentStatus};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::procs::{free_port, signal, worker_process};
use crate::smtp_server::{Mode, Received, SmtpServer};

/// A client record of `t` with an email, reminder hours and language.
pub(crate) async fn client_with(app: &TestApp, t: &Caller, email: &str, hours: Value, lang: &str) -> String {
    let body = json!({
        "name": "Ana Test", "email": email,
        "preferences": { "reminderHours": hours, "language": lang },
    });
    let r = app.post_as("/api/clients", t, &body).await;
    assert_eq!(r.status(), 201, "create client");
    json_body(r).await["data"]["id"].as_str().unwrap().to_owned()
}

/// One run of the worker's reconciler on `app`'s database, taking every request however recent
/// (as every worker runs it): what it armed.
pub(crate) async fn reconcile_now(app: &TestApp) -> dhara::emails::arm::Reconciled {
    let late = dhara::emails::arm::max_late(&app.config.emails);
    let db = dhara::db::Db::connect(
        &app.config.mongodb,
        std::sync::Arc::new(dhara::metrics::Metrics::new()),
    )
    .await
    .unwrap();
    dhara::emails::arm::reconcile(&db, Duration::ZERO, late)
        .await
        .unwrap()
}

/// The emails of `booking` as the API shows them.
pub(crate) async fn emails_of(app: &TestApp, t: &Caller, booking: &str) -> Vec<Value> {
    let r = app.get_as(&format!("/api/bookings/{booking}/emails"), t).await;
    assert_eq!(r.status(), 200);
    json_body(r).await["data"]["emails"].as_array().unwrap().clone()
}

/// Polls the booking's emails until `ok` holds for them.
pub(crate) async fn until_emails(
    app: &TestApp,
    t: &Caller,
    booking: &str,
    what: &str,
    ok: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let emails = emails_of(app, t, booking).await;
        if ok(&emails) {
            return emails;
        }
        assert!(Instant::now() < deadline, "{what}: {emails:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn of_kind<'a>(emails: &'a [Value], kind: &str) -> Vec<&'a Value> {
    emails.iter().filter(|e| e["kind"] == kind).collect()
}

/// Messages received whose Message-ID names `kind` (ids are `<booking.kind...@domain>`).
pub(crate) fn received(smtp: &SmtpServer, kind: &str) -> Vec<Received> {
    let (inner, first) = (format!(".{kind}."), format!("{kind}."));
    smtp.messages()
        .into_iter()
        .filter(|m| {
            m.message_id
                .as_deref()
                .is_some_and(|id| id.contains(&inner) || id.starts_with(&first))
        })
        .collect()
}

pub(crate) async fn until_received(
    smtp: &SmtpServer,
    kind: &str,
    n: usize,
    within: Duration,
) -> Vec<Received> {
    let deadline = Instant::now() + within;
    loop {
        let got = received(smtp, kind);
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Madrid date `days` from today.
pub(crate) fn madrid_date(days: i64) -> String {
    (Utc::now() + Span::days(days))
        .with_timezone(&chrono_tz::Europe::Madrid)
        .format("%Y-%m-%d")
        .to_string()
}

pub(crate) fn ics_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap()
        .with_timezone(&Utc)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

#[tokio::test]
async fn a_booking_is_confirmed_moved_and_cancelled_by_email_once_each_with_its_calendar() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url())]).await;
    let t = therapist(&app).await;
    let client = client_with(&app, &t, "ana@example.com", json!([24, 2]), "en").await;
    let r = app
        .post_as(
            "/api/bookings",
            &t,
            &json!({ "clientId": client, "date": madrid_date(3), "startTime": "10:00", "endTime": "11:00" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let booking = json_body(r).await["data"].clone();
    let id = booking["id"].as_str().unwrap().to_owned();

    let confirmation = until_received(&smtp, "confirmation", 1, Duration::from_secs(20)).await;
    assert_eq!(confirmation.len(), 1, "one confirmation");
    let m = &confirmation[0];
    assert_eq!(m.to, vec!["ana@example.com".to_owned()]);
    assert!(
        m.data.contains("is confirmed"),
        "English, as the client reads: {}",
        m.data
    );
    assert!(m.data.contains("text/calendar") && m.data.contains("METHOD:REQUEST"));
    assert!(
        m.data.contains(&format!("UID:{id}\r\n")) && m.data.contains("SEQUENCE:1"),
        "the calendar event's UID is the booking id"
    );
    let starts = booking["startsAt"].as_str().unwrap();
    assert!(
        m.data.contains(&format!("DTSTART:{}", ics_time(starts))),
        "UTC start in the calendar"
    );
    assert!(m.data.contains("text/html"), "an HTML part too");

    let emails = until_emails(&app, &t, &id, "confirmation sent", |e| {
        of_kind(e, "confirmation").iter().any(|c| c["state"] == "sent")
    })
    .await;
    let reminders = of_kind(&emails, "reminder");
    assert_eq!(reminders.len(), 2, "24 h and 2 h: {emails:#?}");
    let start = chrono::DateTime::parse_from_rfc3339(starts).unwrap();
    for r in &reminders {
        assert_eq!(r["state"], "scheduled");
        let due = chrono::DateTime::parse_from_rfc3339(r["dueAt"].as_str().unwrap()).unwrap();
        let hours = r["hours"].as_i64().unwrap();
        assert_eq!(start - due, Span::hours(hours), "due {hours} h before");
    }
    let stranger = therapist(&app).await;
    let r = app.get_as(&format!("/api/bookings/{id}/emails"), &stranger).await;
    assert_error(r, 404, "NOT_FOUND").await;

    let moved = json!({ "date": madrid_date(4), "startTime": "12:00", "endTime": "13:00" });
    let r = app
        .put_as(&format!("/api/bookings/{id}/reschedule"), &t, &moved)
        .await;
    assert_eq!(r.status(), 200);
    let new_start = json_body(r).await["data"]["startsAt"]
        .as_str()
        .unwrap()
        .to_owned();
    let notice = until_received(&smtp, "reschedule", 1, Duration::from_secs(20)).await;
    assert_eq!(notice.len(), 1);
    assert!(notice[0].data.contains("SEQUENCE:2") && notice[0].data.contains(&ics_time(&new_start)));
    let emails = until_emails(&app, &t, &id, "old reminders disarmed", |e| {
        of_kind(e, "reminder")
            .iter()
            .filter(|r| r["state"] == "cancelled")
            .count()
            == 2
    })
    .await;
    let armed: Vec<_> = of_kind(&emails, "reminder")
        .into_iter()
        .filter(|r| r["state"] == "scheduled")
        .collect();
    assert_eq!(armed.len(), 2, "armed at the new time: {emails:#?}");
    assert!(armed.iter().all(|r| r["refersTo"] == new_start.as_str()));

    let r = app
        .patch_as(
            &format!("/api/bookings/{id}/cancel"),
            &t,
            &json!({ "reason": "Illness" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let cancel = until_received(&smtp, "cancellation", 1, Duration::from_secs(20)).await;
    assert_eq!(cancel.len(), 1);
    assert!(cancel[0].data.contains("METHOD:CANCEL") && cancel[0].data.contains("Illness"));
    until_emails(&app, &t, &id, "every reminder disarmed", |e| {
        of_kind(e, "reminder").iter().all(|r| r["state"] == "cancelled")
            && of_kind(e, "cancellation").iter().any(|c| c["state"] == "sent")
    })
    .await;
    assert!(received(&smtp, "reminder").is_empty(), "no reminder went out");
    assert!(
        smtp.count_by_message_id().values().all(|n| *n == 1),
        "nothing twice"
    );
    // The invitation went through the outbox too, and its link is not kept once sent.
    let invitation = until_received(&smtp, "invitation", 1, Duration::from_secs(10)).await;
    assert_eq!(invitation.len(), 1);
    let jobs = app.db.collection::<Document>("email_jobs");
    let stored = jobs
        .find_one(doc! { "kind": "invitation" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.get_str("state").unwrap(), "sent");
    assert!(
        stored.get("vars").is_none(),
        "the single-use link is dropped: {stored}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("emails_sent_total{kind=\"confirmation\"} 1"),
        "{metrics}"
    );
}

/// `n` upcoming bookings of one client written straight to the database with their email
/// request and no jobs, as a writer that stopped right after its booking write leaves them;
/// each warrants its 2 h reminder, due a few minutes ago.
pub(crate) async fn unarmed_due_reminders(app: &TestApp, t: &Caller, n: usize) -> Vec<ObjectId> {
    let client = client_with(app, t, "due@example.com", json!([2]), "es").await;
    let now = Utc::now();
    let bookings: Vec<Booking> = (0..n)
        .map(|i| {
            let starts = now + Span::hours(2) - Span::minutes(10) + Span::seconds(i as i64);
            fixture_booking(&t.id, &client, starts)
        })
        .collect();
    app.db
        .collection::<Booking>("bookings")
        .insert_many(&bookings)
        .await
        .unwrap();
    bookings.iter().map(|b| b.id).collect()
}

fn fixture_booking(therapist: &str, client: &str, starts: chrono::DateTime<Utc>) -> Booking {
    let local = starts.with_timezone(&chrono_tz::Europe::Madrid);
    let ends = starts + Span::minutes(50);
    let now = DateTime::now();
    Booking {
        id: ObjectId::new(),
        therapist_id: ObjectId::parse_str(therapist).unwrap(),
        client_id: ObjectId::parse_str(client).unwrap(),
        date: local.format("%Y-%m-%d").to_string(),
        start_time: local.format("%H:%M").to_string(),
        end_time: ends
            .with_timezone(&chrono_tz::Europe::Madrid)
            .format("%H:%M")
            .to_string(),
        starts_at: DateTime::from_chrono(starts),
        ends_at: DateTime::from_chrono(ends),
        timezone: "Europe/Madrid".into(),
        status: BookingStatus::Upcoming,
        therapy_type: None,
        therapy_duration: 50,
        amount_cents: Default::default(),
        currency: Default::default(),
        location: None,
        notes: None,
        client_notes: None,
        meeting_link: None,
        payment_status: PaymentStatus::Pending,
        payment_method: None,
        buffer_minutes: 0,
        series_id: None,
        cancellation: None,
        claim_tokens: Vec::new(),
        pending_emails: vec!["sync".into()],
        version: 1,
        created_by: "therapist".into(),
        created_at: now,
        updated_at: now,
    }
}

/// Jobs by state.
async fn states(app: &TestApp, kind: &str) -> HashMap<String, u64> {
    let jobs = app.db.collection::<Document>("email_jobs");
    let mut out = HashMap::new();
    for s in ["scheduled", "sending", "sent", "failed", "dead", "cancelled"] {
        let n = jobs
            .count_documents(doc! { "kind": kind, "state": s })
            .await
            .unwrap();
        if n > 0 {
            out.insert(s.to_owned(), n);
        }
    }
    out
}

pub(crate) async fn until_all_sent(app: &TestApp, kind: &str, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let s = states(app, kind).await;
        if s.get("sent") == Some(&n) {
            return;
        }
        assert!(Instant::now() < deadline, "not all {n} {kind} jobs sent: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn three_workers_deliver_500_due_reminders_exactly_once() {
    let smtp = SmtpServer::start().await;
    let config = test_config(&[("SMTP_URL", &smtp.url())]);
    let mut apps = Vec::new();
    for _ in 0..3 {
        let app = spawn_with_config(config.clone()).await;
        app.wait_ready().await;
        apps.push(app);
    }
    let t = therapist(&apps[0]).await;
    unarmed_due_reminders(&apps[0], &t, 500).await;
    // No job exists yet: the reconcilers arm them, every worker sends.
    until_all_sent(&apps[0], "reminder", 500, Duration::from_secs(240)).await;
    let got = received(&smtp, "reminder");
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for m in &got {
        *per_id.entry(m.message_id.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 500, "every reminder delivered");
    assert!(per_id.values().all(|n| *n == 1), "none twice");
    let mut observed = 0.0;
    for app in &apps {
        let text = app.get("/metrics").await.text().await.unwrap();
        let count = text
            .lines()
            .find(|l| l.starts_with("email_reminder_lag_seconds_count"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        observed += count;
    }
    assert_eq!(
        observed, 500.0,
        "each send's lag observed once, across the workers"
    );
}

pub(crate) const SHORT_LEASE: &[(&str, &str)] = &[
    ("DHARA_EMAILS__LEASE_SECONDS", "7"),
    ("DHARA_EMAILS__SMTP_TIMEOUT_SECONDS", "1"),
];

#[tokio::test]
async fn a_worker_killed_mid_batch_sends_nothing_twice_and_its_jobs_are_taken_over() {
    let smtp = SmtpServer::start().await;
    // A relay that takes each message and answers 300 ms later: a kill lands while the worker
    // holds messages the server already has, and it cannot know.
    smtp.set_reply_delay(Duration::from_millis(300));
    let app = spawn_app_with(&[("DHARA_WORKER__SEND_EMAILS", "false")]).await;
    let t = therapist(&app).await;
    unarmed_due_reminders(&app, &t, 200).await;
    let mut worker = worker_process(&app.config.mongodb.database, &smtp.url(), SHORT_LEASE);
    let first = until_received(&smtp, "reminder", 20, Duration::from_secs(60)).await;
    assert!(first.len() >= 20, "the worker sent ({} so far)", first.len());
    signal(&worker, "-KILL").await;
    worker.wait().await.unwrap();
    smtp.set_reply_delay(Duration::ZERO);
    let before_takeover = received(&smtp, "reminder").len();
    assert!(before_takeover < 200, "killed mid-batch");
    // Another worker takes over once the leases of the dead one expire.
    let mut overrides = vec![("SMTP_URL", smtp.url())];
    overrides.extend(SHORT_LEASE.iter().map(|(k, v)| (*k, v.to_string())));
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut config = test_config(&overrides);
    config.mongodb.database = app.config.mongodb.database.clone();
    let _taker = spawn_with_config(config).await;
    until_all_sent(&app, "reminder", 200, Duration::from_secs(120)).await;
    let counts = smtp.count_by_message_id();
    assert!(counts.values().all(|n| *n == 1), "nothing delivered twice");
    let jobs = app.db.collection::<EmailJobRow>("email_jobs");
    let mut cursor = jobs.find(doc! { "kind": "reminder" }).await.unwrap();
    let (mut unconfirmed, mut unconfirmed_delivered) = (0, 0);
    use futures_util::StreamExt;
    while let Some(job) = cursor.next().await {
        let job = job.unwrap();
        let local = job.id.replace(':', ".");
        let delivered = counts.keys().any(|m| m.split('@').next() == Some(local.as_str()));
        if job.unconfirmed.unwrap_or(false) {
            unconfirmed += 1;
            unconfirmed_delivered += usize::from(delivered);
        } else {
            assert!(delivered, "{} recorded sent and delivered", job.id);
        }
    }
    assert!(
        (1..=4).contains(&unconfirmed),
        "the killed worker's in-flight sends (at most its 4 lanes) are unconfirmed, not resent ({unconfirmed})"
    );
    assert!(
        unconfirmed_delivered >= 1,
        "a message the relay had taken was not sent again"
    );
    assert!(
        received(&smtp, "reminder").len() > before_takeover,
        "the taker sent the rest"
    );
}

#[derive(serde::Deserialize)]
struct EmailJobRow {
    #[serde(rename = "_id")]
    id: String,
    unconfirmed: Option<bool>,
}

#[tokio::test]
async fn sigterm_stops_the_worker_between_jobs_with_nothing_left_sending() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(&[("DHARA_WORKER__SEND_EMAILS", "false")]).await;
    let t = therapist(&app).await;
    unarmed_due_reminders(&app, &t, 150).await;
    smtp.set_reply_delay(Duration::from_millis(200));
    let metrics_port = free_port().await.to_string();
    let extra = [("DHARA_WORKER__METRICS_PORT", metrics_port.as_str())];
    let mut worker = worker_process(&app.config.mongodb.database, &smtp.url(), &extra);
    let first = until_received(&smtp, "reminder", 20, Duration::from_secs(60)).await;
    assert!(
        first.len() >= 20 && first.len() < 150,
        "stopped mid-batch ({} sent)",
        first.len()
    );
    // The worker alone serves its own metrics, and they count what it sent.
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let text = app.client.get(&url).send().await.unwrap().text().await.unwrap();
    let sent = text
        .lines()
        .find(|l| l.starts_with("emails_sent_total{kind=\"reminder\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(sent >= 1.0, "the worker's /metrics counts its sends: {text}");
    signal(&worker, "-TERM").await;
    let status = tokio::time::timeout(Duration::from_secs(30), worker.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{status}");
    let s = states(&app, "reminder").await;
    assert_eq!(s.get("sending"), None, "no job left claimed: {s:?}");
    let sent = s.get("sent").copied().unwrap_or(0) as usize;
    assert_eq!(
        sent,
        received(&smtp, "reminder").len(),
        "recorded exactly what was delivered"
    );
    assert!(sent < 150, "it stopped instead of finishing the queue");
}

#[tokio::test]
async fn smtp_down_for_a_while_is_retried_then_delivered() {
    let port = SmtpServer::start().await;
    let p = port.port();
    port.stop().await;
    let url = format!("smtp://127.0.0.1:{p}");
    let app = spawn_app_with(&[("SMTP_URL", &url)]).await;
    let t = therapist(&app).await;
    let client = client_with(&app, &t, "later@example.com", json!([]), "es").await;
    let id = new_booking(&app, &t, &client, &madrid_date(2)).await;
    let emails = until_emails(&app, &t, &id, "a failed attempt", |e| {
        of_kind(e, "confirmation").iter().any(|c| c["state"] == "failed")
    })
    .await;
    let c = of_kind(&emails, "confirmation")[0];
    assert!(c["lastError"].as_str().is_some_and(|e| !e.is_empty()), "{c}");
    let smtp = SmtpServer::start_on(p).await;
    let emails = until_emails(&app, &t, &id, "delivered after the outage", |e| {
        of_kind(e, "confirmation").iter().any(|c| c["state"] == "sent")
    })
    .await;
    assert!(of_kind(&emails, "confirmation")[0]["attempts"].as_i64().unwrap() >= 2);
    assert_eq!(received(&smtp, "confirmation").len(), 1);
}

#[tokio::test]
async fn smtp_refusing_permanently_ends_dead_after_the_configured_attempts() {
    let smtp = SmtpServer::start().await;
    smtp.set_mode(Mode::RefusePermanently);
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url()), ("DHARA_EMAILS__MAX_ATTEMPTS", "3")]).await;
    let t = therapist(&app).await;
    let client = client_with(&app, &t, "refused@example.com", json!([]), "es").await;
    let id = new_booking(&app, &t, &client, &madrid_date(2)).await;
    let emails = until_emails(&app, &t, &id, "dead", |e| {
        of_kind(e, "confirmation").iter().any(|c| c["state"] == "dead")
    })
    .await;
    let c = of_kind(&emails, "confirmation")[0];
    assert_eq!(c["attempts"], 3);
    assert!(c["lastError"].as_str().unwrap().contains("554"), "{c}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        of_kind(&emails_of(&app, &t, &id).await, "confirmation")[0]["attempts"],
        3,
        "not tried again"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("emails_dead_total{kind=\"confirmation\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("emails_failed_total{kind=\"confirmation\"} 3"),
        "{metrics}"
    );
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn a_booking_moved_after_its_reminder_was_armed_never_gets_the_old_time_emailed() {
    let smtp = SmtpServer::start().await;
    // A: writes, sends nothing. Its reminder is armed and due.
    let a = spawn_app_with(&[("SMTP_URL", &smtp.url()), ("DHARA_WORKER__SEND_EMAILS", "false")]).await;
    let t = therapist(&a).await;
    let client = client_with(&a, &t, "moved@example.com", json!([2]), "es").await;
    let madrid = chrono_tz::Europe::Madrid;
    // Due 5 to 15 minutes ago, on the 5-minute grid, inside one local day.
    let soon = (Utc::now() + Span::hours(2) - Span::minutes(5)).with_timezone(&madrid);
    let minute = soon.format("%M").to_string().parse::<i64>().unwrap();
    let mut starts = soon - Span::minutes(minute % 5) - Span::seconds(soon.timestamp() % 60);
    if starts.format("%H:%M").to_string() == "23:55" {
        starts -= Span::minutes(5);
    }
    let day_end = starts.date_naive().and_hms_opt(23, 55, 0).unwrap();
    let end_time = (starts.naive_local() + Span::minutes(30))
        .min(day_end)
        .format("%H:%M")
        .to_string();
    let body = json!({
        "clientId": client, "date": starts.format("%Y-%m-%d").to_string(),
        "startTime": starts.format("%H:%M").to_string(), "endTime": end_time,
    });
    let r = a.post_as("/api/bookings", &t, &body).await;
    assert_eq!(r.status(), 201, "{body} {}", r.text().await.unwrap_or_default());
    let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
    let armed = emails_of(&a, &t, &id).await;
    let old = of_kind(&armed, "reminder");
    assert_eq!(old.len(), 1, "{armed:#?}");
    let old_id = old[0]["id"].as_str().unwrap().to_owned();
    // The move is written and its writer stops before touching the outbox.
    let later = Utc::now() + Span::days(1);
    let local = later.with_timezone(&madrid);
    a.db.collection::<Document>("bookings")
        .update_one(
            doc! { "_id": ObjectId::parse_str(&id).unwrap() },
            doc! { "$set": {
                "startsAt": DateTime::from_chrono(later), "endsAt": DateTime::from_chrono(later + Span::minutes(30)),
                "date": local.format("%Y-%m-%d").to_string(), "startTime": local.format("%H:%M").to_string(),
                "endTime": (local + Span::minutes(30)).format("%H:%M").to_string(),
                "updatedAt": DateTime::now(),
            }, "$addToSet": { "pendingEmails": "reschedule@2" }, "$inc": { "version": 1 } },
        )
        .await
        .unwrap();
    // B sends: the old reminder is due, but it asks the booking first.
    let mut config = test_config(&[("SMTP_URL", &smtp.url())]);
    config.mongodb.database = a.config.mongodb.database.clone();
    let _b = spawn_with_config(config).await;
    let emails = until_emails(&a, &t, &id, "old reminder cancelled, move announced", |e| {
        e.iter()
            .any(|j| j["id"] == old_id.as_str() && j["state"] == "cancelled")
            && of_kind(e, "reschedule").iter().any(|j| j["state"] == "sent")
    })
    .await;
    let old = emails.iter().find(|j| j["id"] == old_id.as_str()).unwrap();
    assert_eq!(old["lastError"], "the booking moved to another time");
    assert!(
        received(&smtp, "reminder").is_empty(),
        "the old time was never emailed"
    );
    let fresh = of_kind(&emails, "reminder");
    assert!(
        fresh
            .iter()
            .any(|r| r["state"] == "scheduled" && r["id"] != old_id.as_str()),
        "the reconciler armed the new time: {emails:#?}"
    );
    let notice = received(&smtp, "reschedule");
    assert_eq!(notice.len(), 1);
    assert!(
        notice[0].data.contains(&local.format("%Y-%m-%d").to_string()),
        "the new date"
    );
}

#[tokio::test]
async fn racing_moves_and_preference_changes_leave_reminders_for_the_final_state_only() {
    let app = spawn_app_with(&[("DHARA_WORKER__SEND_EMAILS", "false")]).await;
    let t = therapist(&app).await;
    let client = client_with(&app, &t, "race@example.com", json!([24, 2]), "es").await;
    let id = new_booking(&app, &t, &client, &madrid_date(3)).await;
    // Each round: one move and four preference changes at once, over two instances (each
    // change re-syncs the booking's reminders from what it read).
    let b = {
        let mut config = test_config(&[("DHARA_WORKER__SEND_EMAILS", "false")]);
        config.mongodb.database = app.config.mongodb.database.clone();
        config.redis.prefix = app.config.redis.prefix.clone();
        let b = spawn_with_config(config).await;
        b.wait_ready().await;
        b
    };
    let move_path = format!("/api/bookings/{id}/reschedule");
    let client_path = format!("/api/clients/{client}");
    for round in 0..15i64 {
        let moved = json!({ "date": madrid_date(4 + round % 7), "startTime": "10:00", "endTime": "11:00" });
        let sets = [json!([48, 3]), json!([24, 2]), json!([12]), json!([5, 1])];
        let hours = |k: i64| json!({ "preferences": { "reminderHours": sets[((round + k) % 4) as usize] } });
        let (p1, p2, p3, p4) = (hours(0), hours(1), hours(2), hours(3));
        let (m, r1, r2, r3, r4) = tokio::join!(
            app.put_as(&move_path, &t, &moved),
            app.put_as(&client_path, &t, &p1),
            b.put_as(&client_path, &t, &p2),
            app.put_as(&client_path, &t, &p3),
            b.put_as(&client_path, &t, &p4),
        );
        assert!([200, 409].contains(&m.status().as_u16()), "{}", m.status());
        for r in [r1, r2, r3, r4] {
            assert!([200, 412].contains(&r.status().as_u16()), "{}", r.status());
        }
    }
    let booking = json_body(app.get_as(&format!("/api/bookings/{id}"), &t).await).await["data"].clone();
    let hours = json_body(app.get_as(&format!("/api/clients/{client}"), &t).await).await["data"]
        ["preferences"]["reminderHours"]
        .clone();
    let emails = emails_of(&app, &t, &id).await;
    let mut armed: Vec<(i64, String)> = of_kind(&emails, "reminder")
        .into_iter()
        .filter(|r| r["state"] == "scheduled")
        .map(|r| {
            (
                r["hours"].as_i64().unwrap(),
                r["refersTo"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    armed.sort();
    let mut wanted: Vec<(i64, String)> = hours
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h.as_i64().unwrap(),
                booking["startsAt"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    wanted.sort();
    assert_eq!(
        armed, wanted,
        "armed exactly for the final time and hours: {emails:#?}"
    );
    // Every change's request was armed and cleared (the last one by an arming that read it).
    let stored = app
        .db
        .collection::<Document>("clients")
        .find_one(doc! { "_id": ObjectId::parse_str(&client).unwrap() })
        .await
        .unwrap()
        .unwrap();
    assert!(stored.get_document("remindersRequested").is_err(), "{stored}");
}

#[tokio::test]
async fn the_queue_depth_counts_the_jobs_due_and_not_yet_claimed() {
    let app = spawn_app_with(&[("DHARA_WORKER__SEND_EMAILS", "false")]).await;
    let t = therapist(&app).await;
    unarmed_due_reminders(&app, &t, 5).await;
    // A worker whose sender looked once at start (nothing armed yet) and then sleeps: its
    // reconciler arms the five reminders and publishes them as due.
    let port = free_port().await.to_string();
    let extra = [
        ("DHARA_WORKER__METRICS_PORT", port.as_str()),
        ("DHARA_EMAILS__POLL_INTERVAL_MS", "600000"),
    ];
    let _worker = worker_process(&app.config.mongodb.database, "smtp://127.0.0.1:9", &extra);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = match app
            .client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        // The five reminders (and the client's invitation, failed once and due again).
        let depth = text
            .lines()
            .find_map(|l| l.strip_prefix("email_queue_depth "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if depth >= 5.0 {
            break;
        }
        assert!(Instant::now() < deadline, "queue depth never reached 5: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
