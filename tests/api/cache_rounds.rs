//! Issue 11, item 2: over every cached family, a write through instance A is read through
//! instance B at once, 1,000 times, and never old. Each round's expectation is what the write
//! stored; B's page has been read (and so cached) before every write.

use chrono::{Duration, Utc};
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use serde_json::{json, Value};

use crate::cache::two_instances_with;
use crate::helpers::*;
use crate::ops::{moved, scrape};

const ROUNDS: usize = 1_000;

/// What one family's round writes through A and reads through B.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bookings,
    Clients,
    Dashboard,
    Availability,
    Notifications,
    Reviews,
    Profile,
    PublicProfile,
}

const KINDS: [Kind; 8] = [
    Kind::Bookings,
    Kind::Clients,
    Kind::Dashboard,
    Kind::Availability,
    Kind::Notifications,
    Kind::Reviews,
    Kind::Profile,
    Kind::PublicProfile,
];

impl Kind {
    fn family(self) -> &'static str {
        match self {
            Kind::Bookings => "bookings",
            Kind::Clients => "clients",
            Kind::Dashboard => "dashboard",
            Kind::Availability => "availability",
            Kind::Notifications => "notifications",
            Kind::Reviews => "reviews",
            Kind::Profile | Kind::PublicProfile => "profile",
        }
    }
}

struct Practice {
    me: Caller,
    /// The client whose booking and name change.
    client: String,
    booking: String,
    /// The client every new booking is for.
    other: String,
    review: String,
    day: String,
    block: Option<String>,
    bookings_made: i64,
}

impl Practice {
    fn read_path(&self, kind: Kind) -> String {
        match kind {
            Kind::Bookings => format!("/api/bookings?clientId={}&limit=20", self.client),
            Kind::Clients => "/api/clients?limit=20&sortBy=createdAt&sortOrder=asc".into(),
            Kind::Dashboard => "/api/dashboard".into(),
            Kind::Availability => format!(
                "/api/availability/therapist/{}/date/{}?sessionDuration=60",
                self.me.id, self.day
            ),
            Kind::Notifications => "/api/notifications/counts".into(),
            Kind::Reviews => "/api/reviews?limit=20".into(),
            Kind::Profile => "/api/profile".into(),
            Kind::PublicProfile => format!("/api/profile/public/{}", self.me.id),
        }
    }

    /// Writes through `a`; returns what the page must now show (a JSON pointer and value).
    async fn write(&mut self, a: &TestApp, kind: Kind, round: usize) -> (&'static str, Value) {
        let text = format!("round {round}");
        match kind {
            Kind::Bookings => {
                let path = format!("/api/bookings/{}", self.booking);
                // Every other time with the status it already has (still a change).
                let body = if round % 16 < 8 {
                    json!({ "notes": text })
                } else {
                    json!({ "notes": text, "status": "upcoming" })
                };
                ok(a.put_as(&path, &self.me, &body).await).await;
                ("/data/0/notes", json!(text))
            }
            Kind::Clients => {
                let path = format!("/api/clients/{}", self.client);
                ok(a.put_as(&path, &self.me, &json!({ "name": text })).await).await;
                ("/data/0/name", json!(text))
            }
            Kind::Dashboard | Kind::Notifications => {
                self.book(a, round).await;
                if let Kind::Dashboard = kind {
                    ("/data/upcomingCount", json!(self.bookings_made))
                } else {
                    // One notice per booking created.
                    ("/data/total", json!(self.bookings_made))
                }
            }
            Kind::Availability => {
                if let Some(id) = self.block.take() {
                    let path = format!("/api/availability/blocks/{id}");
                    ok(a.delete_as(&path, &self.me).await).await;
                    ("/data/slots/3/startTime", json!("12:00"))
                } else {
                    let block = json!({ "date": self.day, "startTime": "12:00", "endTime": "13:00" });
                    let r = a.post_as("/api/availability/blocks", &self.me, &block).await;
                    self.block = Some(ok(r).await["id"].as_str().unwrap().to_owned());
                    ("/data/slots/3", Value::Null)
                }
            }
            Kind::Reviews => {
                let path = format!("/api/reviews/{}/response", self.review);
                ok(a.post_as(&path, &self.me, &json!({ "response": text })).await).await;
                ("/data/reviews/0/response/text", json!(text))
            }
            Kind::Profile | Kind::PublicProfile => {
                ok(a.put_as("/api/profile", &self.me, &json!({ "about": text }))
                    .await)
                .await;
                let at = if let Kind::Profile = kind {
                    "/data/about"
                } else {
                    "/data/profile/about"
                };
                (at, json!(text))
            }
        }
    }

    async fn book(&mut self, a: &TestApp, round: usize) {
        let date = (Utc::now().date_naive() + Duration::days(400 + round as i64))
            .format("%Y-%m-%d")
            .to_string();
        let body = json!({ "clientId": self.other, "date": date, "startTime": "10:00", "endTime": "11:00" });
        ok(a.post_as("/api/bookings", &self.me, &body).await).await;
        self.bookings_made += 1;
    }
}

async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// A therapist with a schedule, a client with one booking, another client, a review.
async fn practice(a: &TestApp) -> Practice {
    let me = therapist(a).await;
    ok(a.put_as("/api/availability/schedule", &me, &open_schedule())
        .await)
    .await;
    let client = new_client(a, &me, "Elena Soto").await;
    let other = new_client(a, &me, "Ana Ruiz").await;
    let booking = new_booking(a, &me, &client, "2031-05-05").await;
    let review = ObjectId::new();
    let now = DateTime::now();
    a.db.collection::<Document>("reviews")
        .insert_one(doc! {
            "_id": review, "therapistId": ObjectId::parse_str(&me.id).unwrap(),
            "clientId": ObjectId::parse_str(&client).unwrap(), "bookingId": ObjectId::new(),
            "rating": 4, "comment": "Bien", "status": "published", "createdAt": now, "updatedAt": now,
        })
        .await
        .unwrap();
    let day = (Utc::now().date_naive() + Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    Practice {
        me,
        client,
        booking,
        other,
        review: review.to_hex(),
        day,
        block: None,
        bookings_made: 1,
    }
}

#[tokio::test]
async fn a_thousand_writes_on_one_instance_over_every_family_are_never_read_old_on_another() {
    // Public pages are limited per address; every request here comes from one.
    let (a, b) = two_instances_with(&[("DHARA_RATE_LIMIT__ENABLED", "false")]).await;
    let mut p = practice(&a).await;
    for round in 0..ROUNDS {
        let kind = KINDS[round % KINDS.len()];
        let path = p.read_path(kind);
        // B holds the page before the write.
        ok(b.get_as(&path, &p.me).await).await;
        if round < KINDS.len() {
            // It is a page B answers from its process cache (so it could be read old).
            let hits = [("family", kind.family()), ("layer", "memory")];
            let before = scrape(&b).await;
            ok(b.get_as(&path, &p.me).await).await;
            let after = scrape(&b).await;
            assert_eq!(moved(&before, &after, "cache_hits_total", &hits), 1.0, "{kind:?}");
        }
        let (at, want) = p.write(&a, kind, round).await;
        let seen = ok(b.get_as(&path, &p.me).await).await;
        assert_eq!(
            seen.pointer(at).cloned().unwrap_or(Value::Null),
            want,
            "round {round} ({kind:?}): {path} read old on B: {seen}"
        );
    }
}
