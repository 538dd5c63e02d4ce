//! Availability: rules, blocks (bare JSON), absences, public free slots, check-slot, client
//! booking and cancellation window, occupancy, calendar events, and index use of hot queries.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, Utc};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, DateTime, Document};
use serde_json::{json, Value};

use crate::helpers::*;

/// A schedule open every day 09:00-13:00, no notice, a year ahead.
fn open_schedule(buffer: u32) -> Value {
    let day = json!([{ "start": "09:00", "end": "13:00" }]);
    json!({
        "timezone": "Europe/Madrid",
        "weekly": { "monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day, "saturday": day, "sunday": day },
        "bufferMinutes": buffer, "minNoticeHours": 0, "maxAdvanceDays": 365,
    })
}

/// A local date `days` from today.
fn in_days(days: i64) -> String {
    (Utc::now().date_naive() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

async fn slots(app: &TestApp, therapist: &str, date: &str) -> Vec<String> {
    let r = app
        .get(&format!(
            "/api/availability/therapist/{therapist}/date/{date}?sessionDuration=60"
        ))
        .await;
    assert_eq!(r.status(), 200);
    json_body(r).await["data"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["startTime"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn schedule_defaults_validation_and_update() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let d = json_body(app.get_as("/api/availability/schedule", &me).await).await["data"].clone();
    assert_eq!(d["timezone"], "Europe/Madrid");
    assert!(d["weekly"]["monday"].as_array().unwrap().len() == 2);
    let r = app
        .put_as("/api/availability/schedule", &me, &open_schedule(10))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_body(app.get_as("/api/availability/schedule", &me).await).await["data"]["bufferMinutes"],
        10
    );
    let bad = [
        (json!({ "timezone": "Mars/Base", "weekly": {} }), "timezone"),
        (
            json!({ "timezone": "Europe/Madrid", "weekly": { "funday": [] } }),
            "weekly.funday",
        ),
        (
            json!({ "timezone": "Europe/Madrid", "weekly": { "monday": [{ "start": "10:00", "end": "09:00" }] } }),
            "weekly.monday[0].end",
        ),
        (
            json!({ "timezone": "Europe/Madrid", "weekly": { "monday": [{ "start": "09:00", "end": "12:00" }, { "start": "11:00", "end": "13:00" }] } }),
            "weekly.monday[1]",
        ),
        (
            json!({ "timezone": "Europe/Madrid", "weekly": {}, "bufferMinutes": 999 }),
            "bufferMinutes",
        ),
    ];
    for (body, field) in bad {
        let err = assert_error(
            app.put_as("/api/availability/schedule", &me, &body).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(err["errors"][0]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn free_slots_subtract_bookings_blocks_and_absences() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    app.put_as("/api/availability/schedule", &me, &open_schedule(0))
        .await;
    let day = in_days(10);
    assert_eq!(
        slots(&app, &me.id, &day).await,
        vec!["09:00", "10:00", "11:00", "12:00"]
    );
    // `current` means the signed-in therapist (and nobody when no one is signed in).
    let r = app
        .get_as(&format!("/api/availability/therapist/current/date/{day}"), &me)
        .await;
    let body = json_body(r).await;
    assert_eq!(
        body["data"]["slots"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .len(),
        4
    );
    assert_error(
        app.get(&format!("/api/availability/therapist/current/date/{day}"))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;

    let client = new_client(&app, &me, "Slot Client").await;
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &json!({ "clientId": client, "date": day, "startTime": "10:00", "endTime": "11:00" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(slots(&app, &me.id, &day).await, vec!["09:00", "11:00", "12:00"]);

    // Blocks answer bare JSON, without the envelope.
    let r = app
        .post_as(
            "/api/availability/blocks",
            &me,
            &json!({ "date": day, "startTime": "12:00", "endTime": "13:00", "reason": "lunch" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let block = json_body(r).await;
    assert!(block.get("success").is_none(), "bare JSON: {block}");
    assert_eq!(block["startTime"], "12:00");
    assert_eq!(slots(&app, &me.id, &day).await, vec!["09:00", "11:00"]);
    let listed = json_body(
        app.get_as("/api/availability/therapist/current/blocks", &me)
            .await,
    )
    .await;
    // The weekly schedule shows there too, as read-only recurring blocks (issue 9).
    let stored: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["source"] == "block")
        .collect();
    assert_eq!(stored.len(), 1, "{listed}");
    let id = block["id"].as_str().unwrap();
    let r = app
        .put_as(
            &format!("/api/availability/blocks/{id}"),
            &me,
            &json!({ "date": day, "startTime": "11:00", "endTime": "12:00" }),
        )
        .await;
    assert_eq!(json_body(r).await["startTime"], "11:00");
    assert_eq!(slots(&app, &me.id, &day).await, vec!["09:00", "12:00"]);
    let r = app
        .delete_as(&format!("/api/availability/blocks/{id}"), &me)
        .await;
    assert_eq!(json_body(r).await["deleted"], true);

    let r = app
        .post_as(
            "/api/availability/exceptions",
            &me,
            &json!({ "startDate": day, "endDate": in_days(12), "type": "vacation" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert!(slots(&app, &me.id, &day).await.is_empty());
    assert!(slots(&app, &me.id, &in_days(12)).await.is_empty());
    assert_eq!(slots(&app, &me.id, &in_days(13)).await.len(), 4);
    let absences = json_body(app.get_as("/api/availability/exceptions", &me).await).await["data"].clone();
    assert_eq!(absences[0]["type"], "vacation");

    let range = json_body(
        app.get(&format!(
            "/api/availability/therapist/{}?startDate={}&endDate={}",
            me.id,
            in_days(13),
            in_days(14)
        ))
        .await,
    )
    .await;
    assert_eq!(range["data"]["slots"].as_array().unwrap().len(), 8);

    let occupancy = json_body(
        app.get_as(
            &format!(
                "/api/availability/analysis/occupancy?startDate={}&endDate={}",
                in_days(9),
                in_days(9)
            ),
            &me,
        )
        .await,
    )
    .await;
    assert_eq!(occupancy["data"]["workingHours"], json!(4.0));
    let events = json_body(
        app.get_as(
            &format!(
                "/api/availability/calendar/events?startDate={}&endDate={}",
                in_days(9),
                in_days(12)
            ),
            &me,
        )
        .await,
    )
    .await["data"]
        .clone();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"booking") && kinds.contains(&"absence"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn notice_and_horizon_limit_what_the_booking_site_offers() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    let mut s = open_schedule(0);
    s["maxAdvanceDays"] = json!(7);
    s["minNoticeHours"] = json!(48);
    app.put_as("/api/availability/schedule", &me, &s).await;
    assert!(
        slots(&app, &me.id, &in_days(1)).await.is_empty(),
        "inside the notice period"
    );
    assert_eq!(slots(&app, &me.id, &in_days(4)).await.len(), 4);
    assert!(
        slots(&app, &me.id, &in_days(9)).await.is_empty(),
        "beyond the horizon"
    );
    let not_a_therapist = client_user(&app).await;
    let r = app
        .get(&format!(
            "/api/availability/therapist/{}/date/{}",
            not_a_therapist.id,
            in_days(4)
        ))
        .await;
    assert_error(r, 404, "NOT_FOUND").await;
    let r = app
        .get(&format!("/api/availability/therapist/{}/date/2031-02-30", me.id))
        .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
}

#[tokio::test]
async fn clients_book_check_and_cancel_within_the_rules() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    app.put_as("/api/availability/schedule", &me, &open_schedule(0))
        .await;
    let c = client_user(&app).await;
    let day = in_days(5);
    let check = json!({ "therapistId": me.id, "date": day, "startTime": "10:00", "endTime": "11:00" });
    let r = app.post_json("/api/availability/check-slot", &check).await;
    assert_eq!(json_body(r).await["data"]["available"], true);

    app.put_as(
        "/api/profile",
        &me,
        &json!({ "rates": { "sessionPrice": 55, "currency": "EUR" } }),
    )
    .await;
    let r = app.post_as("/api/bookings/client/book", &c, &check).await;
    assert_eq!(r.status(), 201);
    let booked = json_body(r).await["data"].clone();
    assert_eq!(booked["status"], "pending");
    assert_eq!(booked["amount"], json!(55.0), "the therapist's session price");
    let r = app.post_json("/api/availability/check-slot", &check).await;
    assert_eq!(json_body(r).await["data"]["available"], false);

    // The therapist sees the client (a record was made for them) and the booking.
    let clients = json_body(app.get_as("/api/clients", &me).await).await;
    assert_eq!(clients["data"][0]["email"], c.email.as_str());
    assert_eq!(
        json_body(app.get_as("/api/bookings", &me).await).await["total"],
        1
    );

    let other = client_user(&app).await;
    assert_error(
        app.post_as("/api/bookings/client/book", &other, &check).await,
        409,
        "SLOT_TAKEN",
    )
    .await;
    let outside = json!({ "therapistId": me.id, "date": day, "startTime": "15:00", "endTime": "16:00" });
    let err = assert_error(
        app.post_as("/api/bookings/client/book", &other, &outside).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(err["errors"][0]["field"], "startTime");

    let mine = json_body(app.get_as("/api/bookings/client?limit=1", &c).await).await;
    assert_eq!(
        (mine["count"].as_u64(), mine["total"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(mine["data"][0]["therapist"]["name"].is_string(), "{mine}");
    // Exactly one page: no cursor to an empty next one.
    assert!(mine["pagination"]["nextCursor"].is_null(), "{mine}");
    assert_eq!(
        json_body(app.get_as("/api/bookings/client", &other).await).await["count"],
        0
    );

    let id = booked["id"].as_str().unwrap();
    assert_error(
        app.patch_as(&format!("/api/bookings/client/{id}/cancel"), &other, &json!({}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let r = app
        .patch_as(
            &format!("/api/bookings/client/{id}/cancel"),
            &c,
            &json!({ "reason": "cannot come" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["data"]["status"], "cancelled");
    let notes = json_body(app.get_as("/api/notifications", &me).await).await["data"]["notifications"].clone();
    let kinds: Vec<&str> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["booking_cancelled", "booking_requested"],
        "the therapist hears of both"
    );

    // The 24-hour window, at any hour of the day: a schedule open around the clock, one booking
    // starting within the next two hours (refused) and one three days ahead (allowed).
    let mut s = open_schedule(0);
    for d in [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ] {
        s["weekly"][d] = json!([{ "start": "00:00", "end": "24:00" }]);
    }
    assert_eq!(
        app.put_as("/api/availability/schedule", &me, &s).await.status(),
        200
    );
    let now = Utc::now();
    for (ahead, cancellable) in [(Duration::hours(2), false), (Duration::days(3), true)] {
        let (date, start, end) = madrid_half_hour(now + ahead);
        let starts_in = madrid_instant(&date, &start) - now;
        assert!(
            if cancellable {
                starts_in > Duration::hours(48)
            } else {
                starts_in > Duration::zero() && starts_in < Duration::hours(3)
            },
            "{date} {start} starts in {starts_in}"
        );
        let body = json!({ "therapistId": me.id, "date": date, "startTime": start, "endTime": end });
        let r = app.post_as("/api/bookings/client/book", &c, &body).await;
        assert_eq!(r.status(), 201, "{body}");
        let id = json_body(r).await["data"]["id"].as_str().unwrap().to_owned();
        let r = app
            .patch_as(&format!("/api/bookings/client/{id}/cancel"), &c, &json!({}))
            .await;
        if cancellable {
            assert_eq!(r.status(), 200, "{body}");
            assert_eq!(json_body(r).await["data"]["status"], "cancelled");
        } else {
            assert_error(r, 409, "CANCELLATION_WINDOW_PASSED").await;
            let kept = json_body(app.get_as(&format!("/api/bookings/{id}"), &me).await).await;
            assert_eq!(kept["data"]["status"], "pending", "{kept}");
        }
    }
}

/// A 30-minute booking in Madrid starting at the whole hour of `at` (so between one hour before
/// `at` and `at`): its local (date, start, end), never crossing midnight.
fn madrid_half_hour(at: chrono::DateTime<Utc>) -> (String, String, String) {
    use chrono::Timelike;
    let local = at.with_timezone(&chrono_tz::Europe::Madrid);
    (
        local.format("%Y-%m-%d").to_string(),
        format!("{:02}:00", local.hour()),
        format!("{:02}:30", local.hour()),
    )
}

/// The instant of a Madrid local date and time (the first one, on a fall-back day).
fn madrid_instant(date: &str, time: &str) -> chrono::DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M").unwrap();
    naive
        .and_local_timezone(chrono_tz::Europe::Madrid)
        .earliest()
        .expect("a local time that exists")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn other_therapists_blocks_and_absences_are_404() {
    let app = spawn_app().await;
    let owner = therapist(&app).await;
    let intruder = therapist(&app).await;
    let block = json_body(
        app.post_as(
            "/api/availability/blocks",
            &owner,
            &json!({ "date": in_days(3), "startTime": "09:00", "endTime": "10:00" }),
        )
        .await,
    )
    .await;
    let id = block["id"].as_str().unwrap();
    let body = json!({ "date": in_days(3), "startTime": "11:00", "endTime": "12:00" });
    assert_error(
        app.put_as(&format!("/api/availability/blocks/{id}"), &intruder, &body)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.delete_as(&format!("/api/availability/blocks/{id}"), &intruder)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get_as(
            &format!("/api/availability/therapist/{}/blocks", owner.id),
            &intruder,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let absence = json_body(
        app.post_as(
            "/api/availability/exceptions",
            &owner,
            &json!({ "startDate": in_days(20) }),
        )
        .await,
    )
    .await["data"]
        .clone();
    let aid = absence["id"].as_str().unwrap();
    assert_error(
        app.delete_as(&format!("/api/availability/exceptions/{aid}"), &intruder)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(app.count("availability_blocks").await, 2);
}

/// What a query asks of an index: the fields it pins to one value, the fields it bounds to a
/// range (a keyset cursor's `$or` on the sort key counts as a range on that key), and its sort.
/// Anything else (`$ne`, `$regex`, a field only some `$or` branches name) is a residual filter.
#[derive(Debug, Default)]
struct QueryShape {
    eq: BTreeSet<String>,
    range: BTreeSet<String>,
    sort: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    Point,
    Range,
}

fn bound_of(v: &Bson) -> Option<Bound> {
    let Bson::Document(d) = v else {
        return Some(Bound::Point);
    };
    if !d.keys().any(|k| k.starts_with('$')) {
        return Some(Bound::Point);
    }
    if d.contains_key("$eq") {
        return Some(Bound::Point);
    }
    if let Ok(list) = d.get_array("$in") {
        return Some(if list.len() == 1 {
            Bound::Point
        } else {
            Bound::Range
        });
    }
    ["$gt", "$gte", "$lt", "$lte"]
        .iter()
        .any(|op| d.contains_key(op))
        .then_some(Bound::Range)
}

/// Field -> bound of a filter, `$and` flattened, `$or` reduced to the fields every branch bounds.
fn bounds(filter: &Document) -> BTreeMap<String, Bound> {
    let mut out: BTreeMap<String, Bound> = BTreeMap::new();
    let add = |out: &mut BTreeMap<String, Bound>, k: &str, b: Bound| {
        let e = out.entry(k.to_owned()).or_insert(b);
        if b == Bound::Point {
            *e = Bound::Point;
        }
    };
    for (k, v) in filter {
        match (k.as_str(), v) {
            ("$and", Bson::Array(parts)) => {
                for part in parts.iter().filter_map(Bson::as_document) {
                    for (f, b) in bounds(part) {
                        add(&mut out, &f, b);
                    }
                }
            }
            ("$or", Bson::Array(branches)) => {
                let each: Vec<BTreeMap<String, Bound>> = branches
                    .iter()
                    .filter_map(Bson::as_document)
                    .map(bounds)
                    .collect();
                if let Some(first) = each.first() {
                    for f in first.keys().filter(|f| each.iter().all(|b| b.contains_key(*f))) {
                        add(&mut out, f, Bound::Range);
                    }
                }
            }
            (op, _) if op.starts_with('$') => {}
            (field, value) => {
                if let Some(b) = bound_of(value) {
                    add(&mut out, field, b);
                }
            }
        }
    }
    out
}

impl QueryShape {
    fn of(filter: &Document, sort: &Document) -> Self {
        let mut shape = Self::default();
        for (f, b) in bounds(filter) {
            match b {
                Bound::Point => shape.eq.insert(f),
                Bound::Range => shape.range.insert(f),
            };
        }
        shape.sort = sort
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().or(v.as_i32().map(i64::from)).unwrap_or(1)))
            .collect();
        shape
    }

    /// Whether an index with key pattern `key` serves this shape by the ESR rule: its leading
    /// keys are exactly the equality fields (any order), then come the sort keys in order (all in
    /// the index's direction or all reversed), and the scan is bounded by a range field (the
    /// first sort key, or the key right after the sort keys). `tie_breaker`: also require the
    /// trailing `_id` of a keyset sort.
    fn served_by(&self, key: &[(String, i64)], tie_breaker: bool) -> Result<(), String> {
        let mut sort: Vec<&(String, i64)> = self.sort.iter().filter(|(f, _)| !self.eq.contains(f)).collect();
        if !tie_breaker && sort.len() > 1 && sort.last().is_some_and(|(f, _)| f == "_id") {
            sort.pop();
        }
        let lead = key.iter().take_while(|(f, _)| self.eq.contains(f)).count();
        let lead_fields: BTreeSet<String> = key[..lead].iter().map(|(f, _)| f.clone()).collect();
        if lead_fields != self.eq {
            return Err(format!("the equality fields {:?} do not lead it", self.eq));
        }
        let mut direction = None;
        for (j, (field, dir)) in sort.iter().enumerate() {
            match key.get(lead + j) {
                Some((f, d)) if f == field => {
                    let same = (d.signum() == dir.signum()) as i8;
                    if *direction.get_or_insert(same) != same {
                        return Err(format!("sort key {field} runs against the others"));
                    }
                }
                _ => return Err(format!("sort key {field} is not key #{}", lead + j)),
            }
        }
        let bounded_by_sort = sort.first().is_some_and(|(f, _)| self.range.contains(f));
        let next = key.get(lead + sort.len()).map(|(f, _)| f);
        if !self.range.is_empty() && !bounded_by_sort && !next.is_some_and(|f| self.range.contains(f)) {
            return Err(format!(
                "no range field of {:?} follows the equality and sort keys",
                self.range
            ));
        }
        if lead == 0 && sort.is_empty() && self.range.is_empty() {
            return Err("nothing of the query bounds it".into());
        }
        Ok(())
    }
}

fn key_pattern(key: &Document) -> Vec<(String, i64)> {
    key.iter()
        .map(|(k, v)| (k.clone(), v.as_i64().or(v.as_i32().map(i64::from)).unwrap_or(1)))
        .collect()
}

/// Every stage of a plan named `stage`, at any depth (classic and SBE explain layouts alike).
fn stages<'a>(plan: &'a Bson, stage: &str, out: &mut Vec<&'a Document>) {
    match plan {
        Bson::Document(d) => {
            if d.get_str("stage") == Ok(stage) {
                out.push(d);
            }
            for (_, v) in d {
                stages(v, stage, out);
            }
        }
        Bson::Array(items) => items.iter().for_each(|v| stages(v, stage, out)),
        _ => {}
    }
}

/// Asserts that `filter` sorted by `sort` is served by an index (see `QueryShape::served_by`).
/// A genuine server is asked for its plan: no collection scan, every index scan's key pattern
/// serves the shape, and (with `tie_breaker`) no blocking sort. The dev server (mongoeco) has no
/// plans: there the declared indexes as stored on the server are checked against the shape.
async fn assert_served(
    db: &mongodb::Database,
    what: &str,
    collection: &str,
    filter: &Document,
    sort: &Document,
    tie_breaker: bool,
) {
    let shape = QueryShape::of(filter, sort);
    let explain = db
        .run_command(doc! { "explain": { "find": collection, "filter": filter.clone(), "sort": sort.clone() }, "verbosity": "queryPlanner" })
        .await
        .unwrap();
    if let Ok(planner) = explain.get_document("queryPlanner") {
        let plan = Bson::Document(planner.get_document("winningPlan").unwrap().clone());
        let (mut scans, mut colls, mut sorts) = (Vec::new(), Vec::new(), Vec::new());
        stages(&plan, "IXSCAN", &mut scans);
        stages(&plan, "COLLSCAN", &mut colls);
        stages(&plan, "SORT", &mut sorts);
        assert!(
            colls.is_empty() && !scans.is_empty(),
            "{what}: {collection} {filter}: {plan}"
        );
        for scan in scans {
            let key = key_pattern(scan.get_document("keyPattern").unwrap());
            if let Err(why) = shape.served_by(&key, tie_breaker) {
                panic!("{what}: the plan's index {key:?} does not serve {shape:?}: {why}\n{plan}");
            }
        }
        assert!(
            !tie_breaker || shape.sort.is_empty() || sorts.is_empty(),
            "{what}: blocking sort in {plan}"
        );
        return;
    }
    let indexes = dhara::db::indexes::list_indexes(db, collection).await.unwrap();
    let verdicts: Vec<(String, Result<(), String>)> = indexes
        .iter()
        .map(|ix| {
            let key = key_pattern(ix.get_document("key").unwrap());
            (format!("{key:?}"), shape.served_by(&key, tie_breaker))
        })
        .collect();
    assert!(
        verdicts.iter().any(|(_, v)| v.is_ok()),
        "{what}: no index stored on {collection} has the equality fields, then the sort keys, then a \
         range field of {filter} sorted by {sort} as a prefix (dev server: declared indexes checked, \
         no plan): {verdicts:#?}"
    );
}

/// The finds the service issued while profiling was on: (collection, filter, sort).
async fn profiled_finds(app: &TestApp) -> Vec<(String, Document, Document)> {
    use futures_util::TryStreamExt;
    let entries: Vec<Document> = app
        .db
        .collection::<Document>("system.profile")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut out: Vec<(String, Document, Document)> = Vec::new();
    for e in entries {
        let Ok(cmd) = e.get_document("command") else {
            continue;
        };
        let Ok(coll) = cmd.get_str("find") else {
            continue;
        };
        let filter = cmd.get_document("filter").cloned().unwrap_or_default();
        let sort = cmd.get_document("sort").cloned().unwrap_or_default();
        let found = (coll.to_owned(), filter, sort);
        if !out.contains(&found) {
            out.push(found);
        }
    }
    out
}

/// Drives the bookings list with a keyset cursor (plain and by status), the free slots (the
/// overlap query) and the clients search, with the database profiler on, and returns the hot
/// query shapes the service actually sent: (what, collection, filter, sort).
async fn captured_hot_queries(app: &TestApp) -> Vec<(&'static str, String, Document, Document)> {
    let me = therapist(app).await;
    app.put_as("/api/availability/schedule", &me, &open_schedule(0))
        .await;
    let client = new_client(app, &me, "Ana Index").await;
    let day = in_days(3);
    for (start, end) in [("09:00", "10:00"), ("10:00", "11:00")] {
        let r = app
            .post_as(
                "/api/bookings",
                &me,
                &json!({ "clientId": client, "date": day, "startTime": start, "endTime": end }),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let first = json_body(app.get_as("/api/bookings?limit=1", &me).await).await;
    let cursor = first["pagination"]["nextCursor"].as_str().unwrap().to_owned();
    let status = first["data"][0]["status"].as_str().unwrap().to_owned();

    app.db.run_command(doc! { "profile": 2 }).await.unwrap();
    let paths = [
        format!("/api/bookings?limit=1&cursor={cursor}"),
        format!("/api/bookings?limit=1&status={status}&cursor={cursor}"),
        format!(
            "/api/availability/therapist/{}/date/{day}?sessionDuration=60",
            me.id
        ),
        "/api/clients?search=ana".to_owned(),
        "/api/clients?search=ana&status=active".to_owned(),
    ];
    let mut answers = Vec::new();
    for path in &paths {
        answers.push(app.get_as(path, &me).await.status());
    }
    // Off again before anything can fail: the dev server cannot drop a database whose profiler
    // is on.
    app.db.run_command(doc! { "profile": 0 }).await.unwrap();
    for (path, status) in paths.iter().zip(answers) {
        assert_eq!(status, 200, "{path}");
    }

    let finds = profiled_finds(app).await;
    let mut hot = Vec::new();
    let named = |sort: &Document, keys: &[&str]| sort.keys().map(String::as_str).eq(keys.iter().copied());
    for (coll, filter, sort) in finds {
        let what = match coll.as_str() {
            "bookings" if filter.contains_key("$and") && named(&sort, &["startsAt", "_id"]) => {
                if format!("{filter}").contains("\"status\"") {
                    "bookings list by status, after a cursor"
                } else {
                    "bookings list, after a cursor"
                }
            }
            "bookings" if filter.contains_key("endsAt") && named(&sort, &["startsAt"]) => {
                "overlapping bookings"
            }
            "clients" if filter.contains_key("$or") && !sort.is_empty() => {
                if filter.contains_key("status") {
                    "clients search by status"
                } else {
                    "clients search"
                }
            }
            _ => continue,
        };
        hot.push((what, coll, filter, sort));
    }
    for what in [
        "bookings list, after a cursor",
        "bookings list by status, after a cursor",
        "overlapping bookings",
        "clients search",
        "clients search by status",
    ] {
        assert!(
            hot.iter().any(|(w, ..)| *w == what),
            "the profiler saw no query for {what}: {hot:#?}"
        );
    }
    hot
}

#[tokio::test]
async fn hot_query_shapes_are_served_by_declared_indexes() {
    let app = spawn_app().await;
    // The shapes the service sends, captured: exact filters and sorts.
    for (what, coll, filter, sort) in captured_hot_queries(&app).await {
        assert_served(&app.db, what, &coll, &filter, &sort, false).await;
    }
    // Shapes of other hot paths, restated from the source (not captured).
    let t = ObjectId::new();
    let now = DateTime::now();
    let restated: Vec<(&str, &str, Document, Document)> = vec![
        (
            "calendar by local dates",
            "bookings",
            doc! { "therapistId": t, "date": { "$gte": "2031-01-01", "$lte": "2031-01-31" } },
            doc! {},
        ),
        (
            "a client's bookings",
            "bookings",
            doc! { "clientId": t },
            doc! { "startsAt": -1 },
        ),
        (
            "completed bookings",
            "bookings",
            doc! { "therapistId": t, "status": "completed" },
            doc! {},
        ),
        ("login", "users", doc! { "email": "a@b.co" }, doc! {}),
        (
            "blocks overlapping",
            "availability_blocks",
            doc! { "therapistId": t, "startsAt": { "$lt": now } },
            doc! { "startsAt": 1 },
        ),
        (
            "expired claims",
            "slot_claims",
            doc! { "expiresAt": { "$lt": now } },
            doc! {},
        ),
        (
            "claims of an attempt (bar those it took over)",
            "slot_claims",
            doc! { "token": ObjectId::new(), "takenOver": { "$ne": true } },
            doc! {},
        ),
        (
            "a booking's claims in some buckets",
            "slot_claims",
            doc! { "bookingId": ObjectId::new(), "bucket": { "$in": [1, 2] } },
            doc! {},
        ),
        (
            "recently cancelled",
            "bookings",
            doc! { "status": "cancelled", "updatedAt": { "$gte": now } },
            doc! {},
        ),
        (
            "payments list",
            "payments",
            doc! { "therapistId": t },
            doc! { "paymentDate": -1, "_id": -1 },
        ),
        (
            "notifications list",
            "notifications",
            doc! { "userId": t },
            doc! { "createdAt": -1, "_id": -1 },
        ),
        (
            "reviews list",
            "reviews",
            doc! { "therapistId": t },
            doc! { "createdAt": -1, "_id": -1 },
        ),
    ];
    for (what, coll, filter, sort) in restated {
        assert_served(&app.db, what, coll, &filter, &sort, false).await;
    }
}

/// Keyset pages sort on (field, `_id`): the indexes that serve them end with `_id`, so a
/// genuine server returns a page without sorting every matching document in memory.
#[tokio::test]
async fn keyset_sorts_including_the_id_tie_breaker_are_served_by_indexes() {
    let app = spawn_app().await;
    for (what, coll, filter, sort) in captured_hot_queries(&app).await {
        assert_served(&app.db, what, &coll, &filter, &sort, true).await;
    }
}

#[test]
fn query_shapes_follow_the_esr_rule() {
    let t = ObjectId::new();
    let key = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
        pairs.iter().map(|(f, d)| ((*f).to_owned(), *d)).collect()
    };
    let cursor = doc! { "$and": [ { "therapistId": t }, { "$or": [ { "startsAt": { "$gt": 1 } }, { "startsAt": 1, "_id": { "$gt": t } } ] } ] };
    let list = QueryShape::of(&cursor, &doc! { "startsAt": 1, "_id": 1 });
    assert_eq!(list.eq, BTreeSet::from(["therapistId".to_owned()]));
    assert_eq!(list.range, BTreeSet::from(["startsAt".to_owned()]));
    assert!(list
        .served_by(&key(&[("therapistId", 1), ("startsAt", 1)]), false)
        .is_ok());
    assert!(
        list.served_by(&key(&[("therapistId", 1), ("startsAt", -1)]), false)
            .is_ok(),
        "reversed"
    );
    assert!(list
        .served_by(&key(&[("therapistId", 1), ("startsAt", 1)]), true)
        .is_err());
    assert!(list
        .served_by(&key(&[("therapistId", 1), ("startsAt", 1), ("_id", 1)]), true)
        .is_ok());
    assert!(
        list.served_by(&key(&[("therapistId", 1), ("startsAt", 1), ("_id", -1)]), true)
            .is_err(),
        "mixed directions"
    );
    assert!(
        list.served_by(&key(&[("therapistId", 1), ("date", 1)]), false)
            .is_err(),
        "unsorted"
    );
    assert!(
        list.served_by(&key(&[("startsAt", 1), ("therapistId", 1)]), false)
            .is_err(),
        "range first"
    );
    assert!(list.served_by(&key(&[("therapistId", 1)]), false).is_err());
    let overlap = QueryShape::of(
        &doc! { "therapistId": t, "startsAt": { "$lt": 2 }, "endsAt": { "$gt": 1 }, "status": { "$ne": "cancelled" } },
        &doc! { "startsAt": 1 },
    );
    assert!(overlap
        .served_by(&key(&[("therapistId", 1), ("startsAt", 1)]), false)
        .is_ok());
    assert!(
        overlap
            .served_by(&key(&[("therapistId", 1), ("status", 1), ("startsAt", 1)]), false)
            .is_err(),
        "$ne is no equality"
    );
    let search = QueryShape::of(
        &doc! { "status": "active", "$or": [ { "name": { "$regex": "a" } }, { "email": { "$regex": "a" } } ], "therapistId": t },
        &doc! { "createdAt": -1, "_id": -1 },
    );
    assert!(search.range.is_empty());
    assert!(search
        .served_by(
            &key(&[("therapistId", 1), ("status", 1), ("createdAt", -1)]),
            false
        )
        .is_ok());
    assert!(search
        .served_by(&key(&[("therapistId", 1), ("createdAt", -1)]), false)
        .is_err());
    let by_dates = QueryShape::of(&doc! { "therapistId": t, "date": { "$gte": "a" } }, &doc! {});
    assert!(by_dates
        .served_by(&key(&[("therapistId", 1), ("date", 1)]), false)
        .is_ok());
    assert!(by_dates
        .served_by(&key(&[("therapistId", 1), ("status", 1)]), false)
        .is_err());
}

#[tokio::test]
async fn public_routes_are_limited_per_address() {
    let app = spawn_app_with(&[("DHARA_RATE_LIMIT__PUBLIC_IP__MAX", "3")]).await;
    let me = therapist(&app).await;
    let path = format!("/api/availability/therapist/{}/date/{}", me.id, in_days(3));
    let get = |ip: &'static str| {
        app.client
            .get(app.url(&path))
            .header("X-Forwarded-For", ip)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(get("198.51.100.7").await.unwrap().status(), 200);
    }
    let r = get("198.51.100.7").await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, "RATE_LIMITED").await;
    assert_eq!(
        get("198.51.100.8").await.unwrap().status(),
        200,
        "other visitors are not affected"
    );
}

#[tokio::test]
async fn a_booking_keeps_the_buffer_it_was_made_with_when_the_schedule_changes() {
    let app = spawn_app().await;
    let me = therapist(&app).await;
    app.put_as("/api/availability/schedule", &me, &open_schedule(30))
        .await;
    let day = in_days(5);
    let client = new_client(&app, &me, "Con margen").await;
    new_booking(&app, &me, &client, &day).await; // 10:00-11:00, holding until 11:30
    app.put_as("/api/availability/schedule", &me, &open_schedule(0))
        .await;
    // The booking site offers what can be booked: not 11:00 (still held), 11:30 on.
    let offered = slots(&app, &me.id, &day).await;
    assert_eq!(offered, ["09:00", "11:30"], "{offered:?}");
    let at = |start: &str, end: &str| json!({ "therapistId": me.id, "date": day, "startTime": start, "endTime": end });
    let r = app
        .post_json("/api/availability/check-slot", &at("11:00", "12:00"))
        .await;
    assert_eq!(json_body(r).await["data"]["available"], false);
    let c = client_user(&app).await;
    assert_error(
        app.post_as("/api/bookings/client/book", &c, &at("11:00", "12:00"))
            .await,
        409,
        "SLOT_TAKEN",
    )
    .await;
    let r = app
        .post_json("/api/availability/check-slot", &at("11:30", "12:30"))
        .await;
    assert_eq!(json_body(r).await["data"]["available"], true);
    // The therapist's own check says the same.
    let check = |start: &str, end: &str| {
        format!("/api/bookings/check-availability?date={day}&startTime={start}&endTime={end}")
    };
    let r = json_body(app.get_as(&check("11:00", "12:00"), &me).await).await;
    assert_eq!(r["data"]["available"], false, "{r}");
    assert_eq!(r["data"]["conflicts"][0]["startTime"], "10:00", "{r}");
    let r = json_body(app.get_as(&check("11:30", "12:30"), &me).await).await;
    assert_eq!(r["data"]["available"], true, "{r}");
    let r = app
        .post_as("/api/bookings/client/book", &c, &at("11:30", "12:30"))
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
}
