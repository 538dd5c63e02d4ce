//! Booking emails through the outbox, against a real SMTP server on loopback: a booking moved
//! back and forth, a weekly series, completed and no-show bookings, and the two ends of one
//! send (a move that lands between the check and SMTP, a lease lost during SMTP).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use dhara::emails::model::EmailJob;
use dhara::emails::send::{self, Prepared};
use dhara::emails::store::EmailStore;
use mongodb::bson::{doc, DateTime, Document};
use serde_json::json;

use crate::emails::{
    client_with, emails_of, ics_time, madrid_date, of_kind, received, until_emails, until_received,
};
use crate::helpers::*;
use crate::smtp_server::SmtpServer;

fn millis(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn a_booking_moved_back_and_forth_gets_a_notice_per_move_and_the_last_names_its_final_time() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url())]).await;
    let t = therapist(&app).await;
    let client = client_with(&app, &t, "moves@example.com", json!([]), "en").await;
    let id = new_booking(&app, &t, &client, &madrid_date(3)).await;
    let a = json!({ "date": madrid_date(3), "startTime": "10:00", "endTime": "11:00" });
    let b = json!({ "date": madrid_date(4), "startTime": "12:00", "endTime": "13:00" });
    let path = format!("/api/bookings/{id}/reschedule");
    let mut final_start = String::new();
    // A -> B -> A -> B, the worker sending each notice before the next move.
    for (n, to) in [&b, &a, &b].into_iter().enumerate() {
        let r = app.put_as(&path, &t, to).await;
        assert_eq!(r.status(), 200, "move {}", n + 1);
        final_start = json_body(r).await["data"]["startsAt"]
            .as_str()
            .unwrap()
            .to_owned();
        let got = until_received(&smtp, "reschedule", n + 1, Duration::from_secs(20)).await;
        assert_eq!(got.len(), n + 1, "a notice for move {}", n + 1);
    }
    let notices = received(&smtp, "reschedule");
    let last = notices.last().unwrap();
    assert!(
        last.data.contains(&format!("DTSTART:{}", ics_time(&final_start)))
            && last.data.contains("SEQUENCE:4"),
        "the last notice names the final time: {}",
        last.data
    );
    assert!(last.data.contains(&madrid_date(4)), "and its date");
    let ids: HashSet<_> = notices.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids.len(), 3, "three notices, none twice");
    let emails = emails_of(&app, &t, &id).await;
    let notices = of_kind(&emails, "reschedule");
    assert_eq!(notices.len(), 3, "{emails:#?}");
    assert!(notices.iter().all(|e| e["state"] == "sent"), "{emails:#?}");
}

#[tokio::test]
async fn a_weekly_series_arms_each_occurrence_and_completed_or_no_show_ones_lose_their_reminders() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url())]).await;
    let t = therapist(&app).await;
    let client = client_with(&app, &t, "series@example.com", json!([24, 2]), "es").await;
    let body = json!({
        "clientId": client, "date": madrid_date(3), "startTime": "10:00", "endTime": "11:00",
        "recurrence": { "frequency": "weekly", "interval": 1, "count": 2 },
    });
    let r = app.post_as("/api/bookings", &t, &body).await;
    assert_eq!(r.status(), 201);
    let occurrences: Vec<(String, i64)> = json_body(r).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let id = b["id"].as_str().unwrap().to_owned();
            (id, millis(b["startsAt"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(occurrences.len(), 2);
    for (id, at) in &occurrences {
        let emails = until_emails(&app, &t, id, "confirmed", |e| {
            of_kind(e, "confirmation").iter().any(|c| c["state"] == "sent")
        })
        .await;
        let mut ids: Vec<&str> = emails.iter().map(|e| e["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        let mut wanted = vec![
            format!("{id}:confirmation:{at}"),
            format!("{id}:reminder:24h:{at}"),
            format!("{id}:reminder:2h:{at}"),
        ];
        wanted.sort_unstable();
        assert_eq!(ids, wanted, "one confirmation and its reminders, per occurrence");
        assert!(of_kind(&emails, "reminder")
            .iter()
            .all(|r| r["state"] == "scheduled"));
    }
    assert_eq!(received(&smtp, "confirmation").len(), 2);

    let (done, missed) = (&occurrences[0].0, &occurrences[1].0);
    let r = app
        .put_as(&format!("/api/bookings/{done}/complete"), &t, &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .put_as(&format!("/api/bookings/{missed}/no-show"), &t, &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    for id in [done, missed] {
        let emails = until_emails(&app, &t, id, "reminders disarmed", |e| {
            of_kind(e, "reminder").iter().all(|r| r["state"] == "cancelled")
        })
        .await;
        assert_eq!(of_kind(&emails, "reminder").len(), 2, "{emails:#?}");
        assert_eq!(of_kind(&emails, "confirmation").len(), 1, "nothing new armed");
    }
    assert!(received(&smtp, "reminder").is_empty(), "no reminder went out");
    assert_eq!(received(&smtp, "confirmation").len(), 2, "nothing more");
}

/// An app that arms but does not send, and a state of its own (the same database and SMTP
/// server) to drive one send step by step, as a worker's lane does.
async fn app_and_sender(smtp: &SmtpServer) -> (TestApp, dhara::AppState) {
    let config = test_config(&[("SMTP_URL", &smtp.url()), ("DHARA_WORKER__SEND_EMAILS", "false")]);
    let app = spawn_with_config(config.clone()).await;
    app.wait_ready().await;
    let state = dhara::AppState::build(config, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    (app, state)
}

/// A booking three days out whose 24 h reminder is made due (its time came) and claimed by
/// the test, as a worker claims it; the booking's id and the claimed job.
async fn claimed_reminder(app: &TestApp, state: &dhara::AppState, t: &Caller) -> (String, EmailJob) {
    let client = client_with(app, t, "window@example.com", json!([24]), "es").await;
    let id = new_booking(app, t, &client, &madrid_date(3)).await;
    let reminder = until_emails(app, t, &id, "reminder armed", |e| {
        !of_kind(e, "reminder").is_empty()
    })
    .await;
    let job_id = of_kind(&reminder, "reminder")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Due before anything else (the confirmation and invitation are due now too).
    app.db
        .collection::<Document>("email_jobs")
        .update_one(
            doc! { "_id": &job_id },
            doc! { "$set": { "dueAt": DateTime::from_millis(0) } },
        )
        .await
        .unwrap();
    let now = DateTime::now();
    let lease = DateTime::from_millis(now.timestamp_millis() + 60_000);
    let job = EmailStore::new(&state.db)
        .claim_next("test-lane", now, lease)
        .await
        .unwrap()
        .expect("a due job");
    assert_eq!(job.id, job_id, "the reminder is claimed");
    (id, job)
}

async fn stored(app: &TestApp, id: &str) -> Document {
    let jobs = app.db.collection::<Document>("email_jobs");
    jobs.find_one(doc! { "_id": id }).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_move_committed_after_a_reminder_was_checked_and_composed_is_caught_right_before_smtp() {
    let smtp = SmtpServer::start().await;
    let (app, state) = app_and_sender(&smtp).await;
    let t = therapist(&app).await;
    let (id, job) = claimed_reminder(&app, &state, &t).await;
    let Prepared::Ready(ready) = send::prepare(&state, &job).await.unwrap() else {
        panic!("the reminder is warranted when checked");
    };
    // The booking moves now; its disarm skips the reminder, which is being sent.
    let moved = json!({ "date": madrid_date(5), "startTime": "12:00", "endTime": "13:00" });
    let r = app
        .put_as(&format!("/api/bookings/{id}/reschedule"), &t, &moved)
        .await;
    assert_eq!(r.status(), 200);
    send::submit(&state, &job, *ready).await.unwrap();
    let after = stored(&app, &job.id).await;
    assert_eq!(after.get_str("state").unwrap(), "cancelled", "{after}");
    assert_eq!(
        after.get_str("lastError").unwrap(),
        "the booking moved to another time"
    );
    assert!(
        received(&smtp, "reminder").is_empty(),
        "the old time was not emailed"
    );
}

#[tokio::test]
async fn an_email_accepted_after_its_lease_was_taken_over_is_not_counted_as_sent_by_the_late_worker() {
    let smtp = SmtpServer::start().await;
    let (app, state) = app_and_sender(&smtp).await;
    let t = therapist(&app).await;
    let (_, job) = claimed_reminder(&app, &state, &t).await;
    let Prepared::Ready(ready) = send::prepare(&state, &job).await.unwrap() else {
        panic!("the reminder is warranted");
    };
    // A relay that takes the message and answers late: meanwhile the lease runs out and the
    // reconciler settles the job (handed to SMTP: sent, unconfirmed).
    smtp.set_reply_delay(Duration::from_secs(3));
    let (lane_state, lane_job) = (state.clone(), job.clone());
    let lane = tokio::spawn(async move { send::submit(&lane_state, &lane_job, *ready).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    while received(&smtp, "reminder").is_empty() {
        assert!(Instant::now() < deadline, "the message reached the relay");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let jobs = app.db.collection::<Document>("email_jobs");
    jobs.update_one(
        doc! { "_id": &job.id },
        doc! { "$set": { "leaseUntil": DateTime::from_millis(0) } },
    )
    .await
    .unwrap();
    let (_, unconfirmed) = EmailStore::new(&state.db)
        .recover_expired(DateTime::now())
        .await
        .unwrap();
    assert_eq!(unconfirmed, 1, "taken over while the relay held it");
    lane.await.unwrap().unwrap();
    let after = stored(&app, &job.id).await;
    assert_eq!(after.get_str("state").unwrap(), "sent");
    assert!(
        after.get_bool("unconfirmed").unwrap(),
        "the taker's record stands"
    );
    let counted = state.metrics.emails_sent.with_label_values(&["reminder"]).get();
    assert_eq!(
        counted, 0,
        "the late worker recorded nothing, so it counts nothing"
    );
}
