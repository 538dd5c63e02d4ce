//! The shared shape of every resource (issue 10): typed lists that know whether a next page
//! exists, read-state filters, and stored documents that fail to decode reported as errors
//! instead of being shown as defaults.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use serde_json::Value;

use crate::helpers::*;

async fn seed_notifications(app: &TestApp, user: &str, n: usize) -> Vec<ObjectId> {
    let user = ObjectId::parse_str(user).unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = ObjectId::new();
        let created = DateTime::from_millis(1_700_000_000_000 + i as i64 * 1_000);
        app.db
            .collection::<Document>("notifications")
            .insert_one(doc! {
                "_id": id, "userId": user, "type": "client_linked", "title": "t", "message": "m",
                "data": { "clientId": ObjectId::new().to_hex(), "clientName": format!("C{i}"), "email": "c@example.com" },
                "isRead": false, "status": "unread", "createdAt": created, "readAt": null,
            })
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

async fn list(app: &TestApp, me: &Caller, query: &str) -> Value {
    let r = app.get_as(&format!("/api/notifications{query}"), me).await;
    assert_eq!(r.status(), 200, "{query}");
    json_body(r).await["data"].clone()
}

#[tokio::test]
async fn notification_lists_filter_by_read_state_and_know_when_a_next_page_exists() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let ids = seed_notifications(&app, &me.id, 3).await;
    let r = app
        .post_as(
            &format!("/api/notifications/{}/read", ids[0].to_hex()),
            &me,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);

    for (q, total) in [
        ("?status=unread", 2),
        ("?status=read", 1),
        ("?status=all", 3),
        ("?isRead=false", 2),
        ("?isRead=true", 1),
        ("?unreadOnly=true", 2),
    ] {
        let data = list(&app, &me, q).await;
        assert_eq!(data["total"], total, "{q}: {data}");
        assert_eq!(data["notifications"].as_array().unwrap().len(), total, "{q}");
        assert_eq!(data["unreadCount"], 2, "{q}");
    }
    let bad = app.get_as("/api/notifications?status=maybe", &me).await;
    let body = assert_error(bad, 400, "VALIDATION_ERROR").await;
    assert!(body.to_string().contains("status"), "{body}");

    // Exactly `limit` items: no next page, no cursor to a page that would be empty.
    let all = list(&app, &me, "?limit=3").await;
    assert_eq!(all["notifications"].as_array().unwrap().len(), 3);
    assert_eq!(all["hasMore"], false, "{all}");
    assert!(all["pagination"]["nextCursor"].is_null(), "{all}");

    // One more than a page: a cursor that continues exactly after the last item shown.
    let first = list(&app, &me, "?limit=2").await;
    assert_eq!(first["hasMore"], true);
    let cursor = first["pagination"]["nextCursor"].as_str().unwrap().to_owned();
    let rest = list(&app, &me, &format!("?limit=2&cursor={cursor}")).await;
    let shown: Vec<String> = first["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["notifications"].as_array().unwrap())
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rest["hasMore"], false);
    let newest_first: Vec<String> = ids.iter().rev().map(|i| i.to_hex()).collect();
    assert_eq!(shown, newest_first);
}

#[tokio::test]
async fn a_stored_notification_that_does_not_decode_is_an_error_not_a_default() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    seed_notifications(&app, &me.id, 1).await;
    app.db
        .collection::<Document>("notifications")
        .update_many(doc! {}, doc! { "$set": { "isRead": "yes" } })
        .await
        .unwrap();
    // Shown as unread before; now the broken record is reported, not guessed at.
    let r = app.get_as("/api/notifications", &me).await;
    assert_error(r, 500, "INTERNAL_ERROR").await;
    // Someone else's list does not read it.
    let other = therapist(&app).await;
    let data = list(&app, &other, "").await;
    assert_eq!(data["total"], 0);
}
