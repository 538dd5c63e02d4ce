//! A client's change of reminder hours whose process is killed after writing the change and
//! before arming the reminders it asks for: the request written with the change stays on the
//! client record, and a worker's reconciler arms exactly what the new hours want.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::stalled::{primary, HoldingRelay};
use crate::emails::{client_with, emails_of, madrid_date, of_kind, reconcile_now, until_emails};
use crate::helpers::*;
use crate::procs::{temp_dir, Instance};

/// The start of a command reading `bookings` (OP_MSG body: `find: "bookings"`): the first thing
/// arming a client's change does is read their upcoming bookings.
const BOOKINGS_FIND: &[u8] = b"\x02find\x00\x09\x00\x00\x00bookings\x00";

/// The reminder hours armed (scheduled) for `booking`, sorted.
fn armed_hours(emails: &[Value]) -> Vec<i64> {
    let mut hours: Vec<i64> = of_kind(emails, "reminder")
        .into_iter()
        .filter(|r| r["state"] == "scheduled")
        .filter_map(|r| r["hours"].as_i64())
        .collect();
    hours.sort();
    hours
}

/// Another instance, reaching MongoDB through a relay that holds its first read of bookings,
/// changes `client`'s reminder hours to `hours`: returned once that change is written and its
/// arming held, with the relay and the request's pending answer.
async fn change_held_at_arming(
    app: &TestApp,
    t: &Caller,
    client: &str,
    hours: Value,
) -> (Instance, HoldingRelay, JoinHandle<(u16, Value)>) {
    let relay = HoldingRelay::holding(primary(&app.db).await, BOOKINGS_FIND).await;
    let uri = relay.uri();
    let env = [
        ("MONGODB_URI", uri.as_str()),
        ("DHARA_REDIS__PREFIX", app.config.redis.prefix.as_str()),
    ];
    let mut a = Instance::start(&app.config.mongodb.database, &env, &temp_dir("rearm")).await;
    a.wait_ready().await;
    let request = app
        .client
        .put(a.url(&format!("/api/clients/{client}")))
        .header("Authorization", &t.auth)
        .json(&json!({ "preferences": { "reminderHours": hours } }));
    let mut answer = tokio::spawn(async move {
        let r = request.send().await.expect("an answer");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    });
    relay.held(&mut answer).await;
    (a, relay, answer)
}

/// The client record as stored.
async fn stored_client(app: &TestApp, client: &str) -> Document {
    let id = ObjectId::parse_str(client).unwrap();
    let clients = app.db.collection::<Document>("clients");
    clients.find_one(doc! { "_id": id }).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_reminder_change_killed_before_arming_is_armed_by_the_reconciler() {
    // The in-process instance arms on its own changes but runs no reconciler.
    let app = spawn_app_with(&[("DHARA_WORKER__SEND_EMAILS", "false")]).await;
    let t = therapist(&app).await;
    let client = client_with(&app, &t, "rearm@example.com", json!([24]), "es").await;
    let booking = new_booking(&app, &t, &client, &madrid_date(3)).await;
    until_emails(&app, &t, &booking, "the 24 h reminder armed", |e| {
        armed_hours(e) == [24]
    })
    .await;

    // Another instance takes the change, reaching MongoDB through a relay that holds its first
    // read of bookings (the arming), and is killed there: the change is written, nothing armed.
    let (mut a, relay, answer) = change_held_at_arming(&app, &t, &client, json!([24, 2])).await;
    a.kill().await;
    relay.release();
    assert!(answer.await.is_err(), "the killed instance gave no answer");

    let id = ObjectId::parse_str(&client).unwrap();
    let clients = app.db.collection::<Document>("clients");
    let stored = clients.find_one(doc! { "_id": id }).await.unwrap().unwrap();
    let hours = stored
        .get_document("preferences")
        .unwrap()
        .get_array("reminderHours")
        .unwrap();
    assert_eq!(hours.len(), 2, "the change was written: {stored}");
    assert!(
        stored.get_document("remindersRequested").is_ok(),
        "its request to arm is left on the record: {stored}"
    );
    let emails = emails_of(&app, &t, &booking).await;
    assert_eq!(armed_hours(&emails), [24], "nothing armed yet: {emails:#?}");

    // A worker's reconciler (run here as every worker runs it) arms what the change asked for.
    let done = reconcile_now(&app).await;
    assert_eq!(done.clients, 1, "{done:?}");
    let emails = emails_of(&app, &t, &booking).await;
    assert_eq!(armed_hours(&emails), [2, 24], "both reminders armed: {emails:#?}");
    let stored = clients.find_one(doc! { "_id": id }).await.unwrap().unwrap();
    assert!(
        stored.get_document("remindersRequested").is_err(),
        "the request is cleared once armed: {stored}"
    );
    let again = reconcile_now(&app).await;
    assert_eq!(again.clients, 0, "nothing left to arm");
}

#[tokio::test]
async fn a_reminder_change_arms_at_once_and_leaves_no_request_behind() {
    let app = spawn_app_with(&[("DHARA_WORKER__SEND_EMAILS", "false")]).await;
    let t = therapist(&app).await;
    let client = client_with(&app, &t, "rearm-now@example.com", json!([24]), "es").await;
    let booking = new_booking(&app, &t, &client, &madrid_date(3)).await;
    let path = format!("/api/clients/{client}");
    let r = app
        .put_as(&path, &t, &json!({ "preferences": { "reminderHours": [48, 3] } }))
        .await;
    assert_eq!(r.status(), 200);
    // Armed before the change answered.
    let emails = emails_of(&app, &t, &booking).await;
    assert_eq!(armed_hours(&emails), [3, 48], "{emails:#?}");
    let clients = app.db.collection::<Document>("clients");
    let id = ObjectId::parse_str(&client).unwrap();
    let stored = clients.find_one(doc! { "_id": id }).await.unwrap().unwrap();
    assert!(stored.get_document("remindersRequested").is_err(), "{stored}");
    // A change that touches nothing emails depend on asks for no arming.
    let r = app
        .put_as(&path, &t, &json!({ "notes": "prefers mornings" }))
        .await;
    assert_eq!(r.status(), 200);
    let stored = clients.find_one(doc! { "_id": id }).await.unwrap().unwrap();
    assert!(stored.get_document("remindersRequested").is_err(), "{stored}");
    let r = app.get_as(&path, &t).await;
    let body = json_body(r).await;
    assert!(
        body["data"].get("remindersRequested").is_none(),
        "not shown: {body}"
    );
}

#[tokio::test]
async fn a_change_landing_while_an_earlier_one_arms_keeps_its_own_request() {
    let app = spawn_app_with(&[("DHARA_WORKER__SEND_EMAILS", "false")]).await;
    let t = therapist(&app).await;
    let client = client_with(&app, &t, "rearm-twice@example.com", json!([24]), "es").await;
    let booking = new_booking(&app, &t, &client, &madrid_date(3)).await;
    until_emails(&app, &t, &booking, "the 24 h reminder armed", |e| {
        armed_hours(e) == [24]
    })
    .await;
    // The first change is written and its arming held; a second one lands meanwhile, its
    // writer stopping before it armed anything (written here as that writer writes it).
    let (_a, relay, answer) = change_held_at_arming(&app, &t, &client, json!([24, 2])).await;
    let second = ObjectId::new();
    app.db
        .collection::<Document>("clients")
        .update_one(
            doc! { "_id": ObjectId::parse_str(&client).unwrap() },
            doc! { "$set": {
                "preferences.reminderHours": [48],
                "remindersRequested": { "token": second, "at": DateTime::now() },
            } },
        )
        .await
        .unwrap();
    relay.release();
    let (status, body) = answer.await.unwrap();
    assert_eq!(status, 200, "{body}");
    // The first arming read the client after the second change: it armed the current hours,
    // and cleared only its own request, not the second's.
    let emails = emails_of(&app, &t, &booking).await;
    assert_eq!(armed_hours(&emails), [48], "{emails:#?}");
    let stored = stored_client(&app, &client).await;
    let left = stored
        .get_document("remindersRequested")
        .unwrap_or_else(|_| panic!("the second request was cleared by the first arming: {stored}"));
    assert_eq!(left.get_object_id("token").unwrap(), second);
    // Its own arming (the reconciler's, its writer being gone) clears it.
    let done = reconcile_now(&app).await;
    assert_eq!(done.clients, 1, "{done:?}");
    let stored = stored_client(&app, &client).await;
    assert!(stored.get_document("remindersRequested").is_err(), "{stored}");
    let emails = emails_of(&app, &t, &booking).await;
    assert_eq!(armed_hours(&emails), [48], "{emails:#?}");
}
