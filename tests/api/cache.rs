//! The two-layer response cache engine (issue 11), against a real Redis: shared generations keep
//! every instance fresh, one fill per key under concurrency, errors never cached, and a Redis
//! outage bounded by the process entries' trust window.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use dhara::cache::breaker::BreakerConfig;
use dhara::cache::family::Family;
use dhara::cache::layered::{CacheSettings, ResponseCache, Source};
use dhara::cache::redis::RedisHandle;
use dhara::error::ApiError;
use dhara::metrics::Metrics;
use mongodb::bson::oid::ObjectId;
use tokio_util::sync::CancellationToken;

use crate::helpers::test_config;

fn settings() -> CacheSettings {
    CacheSettings {
        outage_trust: Duration::from_millis(300),
        breaker: BreakerConfig {
            failures: 3,
            slow: Duration::from_millis(500),
            open_for: Duration::from_secs(1),
        },
        ..CacheSettings::from_config(&test_config(&[]).cache)
    }
}

/// Two instances' caches on one Redis prefix (or a Redis that is not there).
async fn pair(redis_url: Option<&str>) -> (Arc<ResponseCache>, Arc<ResponseCache>, CancellationToken) {
    let mut config = test_config(&[]).redis;
    if let Some(url) = redis_url {
        config.url = url.to_owned().into();
    }
    let token = CancellationToken::new();
    let handle = RedisHandle::start(&config, token.clone()).unwrap();
    if redis_url.is_none() {
        for _ in 0..100 {
            if handle.conn().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(handle.conn().is_some(), "redis connects");
    }
    let a = ResponseCache::new(settings(), handle.clone(), Arc::new(Metrics::new()));
    let b = ResponseCache::new(settings(), handle, Arc::new(Metrics::new()));
    (a, b, token)
}

fn body(v: usize) -> Bytes {
    Bytes::from(format!("{{\"v\":{v}}}"))
}

async fn read(c: &ResponseCache, owner: ObjectId, v: usize) -> (Bytes, Source) {
    c.get_or_fill(Family::Bookings, owner, "limit=20", || async move { Ok(body(v)) })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_write_on_one_instance_is_never_read_old_on_another() {
    let (a, b, _stop) = pair(None).await;
    let owner = ObjectId::new();
    assert_eq!(read(&b, owner, 0).await, (body(0), Source::Fill));
    assert_eq!(read(&b, owner, 0).await.1, Source::Process, "a process hit");
    assert_eq!(
        read(&a, owner, 0).await.1,
        Source::Redis,
        "the other instance finds it in Redis"
    );
    for round in 1..=300 {
        a.invalidate(&[(Family::Bookings, owner)]).await;
        let (seen, _) = read(&b, owner, round).await;
        assert_eq!(seen, body(round), "round {round}: never the old value");
    }
    // Other families and owners are untouched by an invalidation.
    let other = ObjectId::new();
    assert_eq!(read(&b, other, 7).await.0, body(7));
    a.invalidate(&[(Family::Clients, other)]).await;
    assert_eq!(read(&b, other, 8).await, (body(7), Source::Process));
}

#[tokio::test]
async fn a_generation_lost_in_redis_never_makes_an_old_entry_reachable_again() {
    // Redis restarted empty, flushed, or the counter evicted: a counter that started again
    // from 0 would soon count through values whose process entries are still alive.
    let config = test_config(&[]).redis;
    let token = CancellationToken::new();
    let handle = RedisHandle::start(&config, token.clone()).unwrap();
    for _ in 0..100 {
        if handle.conn().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut redis = handle.conn().expect("redis connects");
    let a = ResponseCache::new(settings(), handle, Arc::new(Metrics::new()));
    let owner = ObjectId::new();
    let key = dhara::cache::family::generation_key(&config.prefix, Family::Bookings, owner);
    for round in 0..5 {
        a.invalidate(&[(Family::Bookings, owner)]).await;
        assert_eq!(read(&a, owner, round).await, (body(round), Source::Fill));
        assert_eq!(read(&a, owner, 99).await.0, body(round), "cached");
        let _: () = redis::cmd("DEL").arg(&key).query_async(&mut redis).await.unwrap();
    }
    token.cancel();
}

#[tokio::test]
async fn concurrent_misses_fill_once_and_errors_are_answered_not_cached() {
    let (a, _b, _stop) = pair(None).await;
    let owner = ObjectId::new();
    let fills = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (a, fills) = (a.clone(), fills.clone());
        tasks.push(tokio::spawn(async move {
            a.get_or_fill(Family::Dashboard, owner, "", || async move {
                fills.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(body(1))
            })
            .await
            .unwrap()
            .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), body(1));
    }
    assert_eq!(
        fills.load(Ordering::SeqCst),
        1,
        "one database read for twenty misses"
    );

    let missing = || async { Err::<Bytes, _>(ApiError::not_found("Booking")) };
    let e = a
        .get_or_fill(Family::Bookings, owner, "id=x", missing)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404, "the fill's own error");
    let (again, src) = a
        .get_or_fill(Family::Bookings, owner, "id=x", || async { Ok(body(2)) })
        .await
        .unwrap();
    assert_eq!((again, src), (body(2), Source::Fill), "an error is never cached");
}

#[tokio::test]
async fn without_redis_reads_still_answer_and_trust_process_entries_only_briefly() {
    // Nothing listens on port 9: there is never a connection, every read falls back at once
    // (the breaker itself is exercised in `cache_outage`).
    let (a, _b, _stop) = pair(Some("redis://127.0.0.1:9")).await;
    let owner = ObjectId::new();
    let started = std::time::Instant::now();
    assert_eq!(read(&a, owner, 1).await, (body(1), Source::Fill));
    assert_eq!(
        read(&a, owner, 2).await,
        (body(1), Source::Process),
        "trusted while young"
    );
    // This instance's own writes stay visible at once.
    a.invalidate(&[(Family::Bookings, owner)]).await;
    assert_eq!(read(&a, owner, 3).await, (body(3), Source::Fill));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        read(&a, owner, 4).await,
        (body(4), Source::Fill),
        "past the outage bound, a process entry is read again"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "no Redis waits");
}

#[tokio::test]
async fn a_disabled_cache_always_reads_through() {
    let (_a, _b, _stop) = pair(None).await;
    let mut config = test_config(&[]).redis;
    config.prefix = "unused:".into();
    let off = ResponseCache::new(
        CacheSettings {
            enabled: false,
            ..settings()
        },
        RedisHandle::start(&config, CancellationToken::new()).unwrap(),
        Arc::new(Metrics::new()),
    );
    let owner = ObjectId::new();
    assert_eq!(read(&off, owner, 1).await, (body(1), Source::Fill));
    assert_eq!(read(&off, owner, 2).await, (body(2), Source::Fill));
}

/// Two instances of the app on one database and one Redis prefix.
pub(crate) async fn two_instances() -> (crate::helpers::TestApp, crate::helpers::TestApp) {
    two_instances_with(&[]).await
}

/// Two instances on one database and one Redis prefix, both with `extra` settings.
pub(crate) async fn two_instances_with(
    extra: &[(&str, &str)],
) -> (crate::helpers::TestApp, crate::helpers::TestApp) {
    let a = crate::helpers::spawn_app_with(extra).await;
    let mut shared = vec![
        ("MONGODB_DATABASE", a.config.mongodb.database.as_str()),
        ("DHARA_REDIS__PREFIX", a.config.redis.prefix.as_str()),
    ];
    shared.extend_from_slice(extra);
    let b = crate::helpers::spawn_app_with(&shared).await;
    (a, b)
}

async fn counter(app: &crate::helpers::TestApp, series: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn me_is_answered_from_the_cache_and_the_counters_say_so() {
    use crate::helpers::{json_body, spawn_app, spawn_app_with, therapist};
    const HIT: &str = "cache_hits_total{family=\"user\",layer=\"memory\"}";
    const MISS: &str = "cache_misses_total{family=\"user\",layer=\"memory\"}";
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let (hits, misses) = (counter(&app, HIT).await, counter(&app, MISS).await);
    let first = app.get_as("/api/auth/me", &me).await;
    assert_eq!(first.headers()["content-type"], "application/json");
    let first = json_body(first).await;
    assert_eq!(counter(&app, MISS).await - misses, 1.0, "the first read misses");
    let second = json_body(app.get_as("/api/auth/me", &me).await).await;
    assert_eq!(first, second);
    assert_eq!(first["user"]["email"], me.email.as_str());
    assert_eq!(
        counter(&app, HIT).await - hits,
        1.0,
        "the second is a process hit"
    );

    // Disabled by configuration: reads go through, the counters stay.
    let off = spawn_app_with(&[("DHARA_CACHE__ENABLED", "false")]).await;
    let you = therapist(&off).await;
    let (hits, misses) = (counter(&off, HIT).await, counter(&off, MISS).await);
    for _ in 0..2 {
        assert_eq!(off.get_as("/api/auth/me", &you).await.status(), 200);
    }
    assert_eq!(
        (counter(&off, HIT).await, counter(&off, MISS).await),
        (hits, misses)
    );
}

#[tokio::test]
async fn a_booking_list_read_on_one_instance_right_after_a_write_on_another_is_never_old() {
    use crate::helpers::{json_body, new_client, therapist};
    use serde_json::json;
    let (a, b) = two_instances().await;
    let me = therapist(&a).await;
    let client = new_client(&a, &me, "Elena Soto").await;
    let list = "/api/bookings?limit=20&sortOrder=asc";
    let read = || async { json_body(b.get_as(list, &me).await).await };
    assert_eq!(read().await["total"], 0);
    assert_eq!(read().await["total"], 0, "now cached on B");

    let body = json!({ "clientId": client, "date": "2031-05-05", "startTime": "10:00", "endTime": "11:00" });
    let created = json_body(a.post_as("/api/bookings", &me, &body).await).await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(read().await["total"], 1, "a creation on A is seen on B at once");
    for round in 0..20 {
        let notes = format!("round {round}");
        let r = a
            .put_as(&format!("/api/bookings/{id}"), &me, &json!({ "notes": notes }))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            read().await["data"][0]["notes"],
            notes.as_str(),
            "never the old notes"
        );
    }
    // What the list embeds: the client's name.
    let r = a
        .put_as(
            &format!("/api/clients/{client}"),
            &me,
            &json!({ "name": "Elena Prieto" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let seen = read().await;
    assert!(seen.to_string().contains("Elena Prieto"), "{seen}");
    assert!(!seen.to_string().contains("Elena Soto"), "{seen}");
    let r = a
        .patch_as(&format!("/api/bookings/{id}/cancel"), &me, &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(read().await["data"][0]["status"], "cancelled");
    // Another therapist's list is theirs alone.
    let other = therapist(&b).await;
    assert_eq!(json_body(b.get_as(list, &other).await).await["total"], 0);
}

#[tokio::test]
async fn a_client_page_read_on_one_instance_right_after_a_write_on_another_is_never_old() {
    use crate::helpers::{json_body, new_booking, new_client, therapist};
    use serde_json::json;
    let (a, b) = two_instances().await;
    let me = therapist(&a).await;
    let list = "/api/clients?page=1&limit=10";
    let read = || async { json_body(b.get_as(list, &me).await).await };
    assert_eq!(read().await["pagination"]["totalItems"], 0);
    let client = new_client(&a, &me, "Ana Ruiz").await;
    assert_eq!(
        read().await["pagination"]["totalItems"],
        1,
        "a creation on A is seen on B"
    );
    for round in 0..20 {
        let name = format!("Ana Ruiz {round}");
        let r = a
            .put_as(&format!("/api/clients/{client}"), &me, &json!({ "name": name }))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            read().await["data"][0]["name"],
            name.as_str(),
            "never the old name"
        );
    }
    // A session with the client changes their history on the page.
    let id = new_booking(&a, &me, &client, "2031-05-05").await;
    let before = read().await["data"][0]["sessionsCount"].clone();
    let r = a
        .put_as(&format!("/api/bookings/{id}/complete"), &me, &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let after = read().await["data"][0]["sessionsCount"].clone();
    assert_eq!(
        after.as_i64().unwrap(),
        before.as_i64().unwrap() + 1,
        "{before} -> {after}"
    );
}

#[tokio::test]
async fn racing_updates_on_two_instances_leave_every_cached_page_equal_to_the_stored_booking() {
    use crate::helpers::{json_body, new_booking, new_client, therapist};
    use mongodb::bson::{doc, Document};
    use serde_json::json;
    let (a, b) = two_instances().await;
    let me = therapist(&a).await;
    let client = new_client(&a, &me, "Elena Soto").await;
    let id = new_booking(&a, &me, &client, "2031-05-05").await;
    let list = "/api/bookings?limit=20";
    let path = format!("/api/bookings/{id}");
    for round in 0..10 {
        // Both instances have the page cached, then both update at once.
        for app in [&a, &b] {
            assert_eq!(app.get_as(list, &me).await.status(), 200);
        }
        let (na, nb) = (
            json!({ "notes": format!("A{round}") }),
            json!({ "notes": format!("B{round}") }),
        );
        let (ra, rb) = tokio::join!(a.put_as(&path, &me, &na), b.put_as(&path, &me, &nb));
        // Both apply, or the later one finds the booking changed meanwhile (412): never both lost.
        let codes = [ra.status().as_u16(), rb.status().as_u16()];
        assert!(
            codes.contains(&200) && codes.iter().all(|c| [200, 412].contains(c)),
            "{codes:?}"
        );
        let stored =
            a.db.collection::<Document>("bookings")
                .find_one(doc! { "_id": mongodb::bson::oid::ObjectId::parse_str(&id).unwrap() })
                .await
                .unwrap()
                .unwrap();
        let stored = stored.get_str("notes").unwrap().to_owned();
        for app in [&a, &b] {
            let page = json_body(app.get_as(list, &me).await).await;
            assert_eq!(
                page["data"][0]["notes"],
                stored.as_str(),
                "round {round}: the page is what is stored"
            );
        }
    }
}

#[tokio::test]
async fn cache_metrics_move_per_layer_family_and_cause() {
    use crate::helpers::{spawn_app_with, therapist};
    use crate::ops::{moved, scrape, series};
    // Room for one `/auth/me` body in process: a second user's evicts (or is refused for) it.
    let app = spawn_app_with(&[
        ("DHARA_CACHE__USER__MAX_ENTRIES", "1"),
        ("DHARA_CACHE__USER__MAX_BYTES", "65536"),
    ])
    .await;
    let (ana, eva) = (therapist(&app).await, therapist(&app).await);
    let before = scrape(&app).await;
    let user = [("family", "user")];
    let memory = [("family", "user"), ("layer", "memory")];
    let redis = [("family", "user"), ("layer", "redis")];
    for who in [&ana, &ana, &eva] {
        assert_eq!(app.get_as("/api/auth/me", who).await.status(), 200);
    }
    let after = scrape(&app).await;
    assert_eq!(moved(&before, &after, "cache_misses_total", &memory), 2.0);
    assert_eq!(moved(&before, &after, "cache_hits_total", &memory), 1.0);
    assert_eq!(moved(&before, &after, "cache_misses_total", &redis), 2.0);
    assert_eq!(moved(&before, &after, "cache_fills_total", &user), 2.0);
    let size = [("cause", "size"), ("family", "user"), ("layer", "memory")];
    assert_eq!(moved(&before, &after, "cache_evictions_total", &size), 1.0);
    assert_eq!(series(&after, "cache_entries", &user), Some(1.0));
    assert_eq!(series(&after, "cache_redis_breaker_state", &[]), Some(0.0));

    // A profile edit makes `/auth/me` stale: counted per family.
    let r = app
        .put_as("/api/profile", &ana, &serde_json::json!({ "about": "x" }))
        .await;
    assert_eq!(r.status(), 200);
    let edited = scrape(&app).await;
    assert_eq!(moved(&after, &edited, "cache_invalidations_total", &user), 1.0);
    let profile = [("family", "profile")];
    assert_eq!(moved(&after, &edited, "cache_invalidations_total", &profile), 1.0);
}
