//! Time blocks as the dashboard draws them (issue 9): types and repeats, the dashboard's ranges,
//! the weekly schedule as read-only recurring blocks, free slots and occupancy honouring blocks,
//! DST, ownership and validation.

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use mongodb::bson::{doc, oid::ObjectId, DateTime};
use serde_json::{json, Value};

use crate::helpers::*;

fn day_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn in_days(days: i64) -> NaiveDate {
    Utc::now().date_naive() + Duration::days(days)
}

async fn setup(app: &TestApp) -> Caller {
    let me = therapist(app).await;
    let r = app
        .put_as("/api/availability/schedule", &me, &open_schedule())
        .await;
    assert_eq!(r.status(), 200);
    me
}

async fn slots(app: &TestApp, who: &Caller, date: NaiveDate) -> Vec<String> {
    let r = app
        .get(&format!(
            "/api/availability/therapist/{}/date/{}?sessionDuration=60",
            who.id,
            day_str(date)
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

async fn create(app: &TestApp, who: &Caller, body: &Value) -> Value {
    let r = app.post_as("/api/availability/blocks", who, body).await;
    assert_eq!(r.status(), 201, "{body}");
    let v = json_body(r).await;
    assert!(v.get("success").is_none(), "bare JSON: {v}");
    v
}

async fn list(app: &TestApp, who: &Caller, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    let r = app
        .get_as(
            &format!(
                "/api/availability/therapist/{}/blocks?startDate={}&endDate={}",
                who.id,
                day_str(from),
                day_str(to)
            ),
            who,
        )
        .await;
    assert_eq!(r.status(), 200);
    json_body(r).await.as_array().expect("a bare JSON list").clone()
}

#[tokio::test]
async fn every_type_and_repeat_is_stored_and_listed_over_the_dashboards_four_months() {
    let app = spawn_app().await;
    let me = setup(&app).await;
    let start = in_days(7);
    // What the dashboard's slot form posts, extra fields and empty strings included.
    let form = json!({
        "id": "slot_1712345678", "therapistId": me.id, "type": "availability", "blockType": "available",
        "title": "Tardes", "startDate": day_str(start), "endDate": day_str(start),
        "startTime": "15:00", "endTime": "17:30", "repeat": "weekly_custom",
        "selectedWeekdays": ["monday", "thursday"], "duration": "3_months", "durationEndDate": "",
        "timezone": "Europe/Madrid", "color": "blue", "notes": "", "location": "online", "version": 1,
    });
    let weekly = create(&app, &me, &form).await;
    assert_eq!(weekly["type"], "availability");
    assert_eq!(weekly["repeat"], "weekly");
    assert_eq!(weekly["selectedWeekdays"], json!(["monday", "thursday"]));
    assert_eq!(
        weekly["until"],
        json!(day_str(start.checked_add_months(chrono::Months::new(3)).unwrap()))
    );
    assert_eq!(
        (weekly["color"].as_str(), weekly["location"].as_str()),
        (Some("blue"), Some("online"))
    );
    assert_eq!(weekly["title"], "Tardes");
    assert_eq!(weekly["startTime"], "15:00");
    assert_eq!(weekly["endTime"], "17:30");
    assert_eq!(weekly["source"], "block");

    let kinds = [
        ("unavailable", "none"),
        ("unavailable", "daily"),
        ("availability", "weekly"),
        ("availability", "monthly"),
        ("unavailable", "monthly_weekday"),
    ];
    for (kind, repeat) in kinds {
        let b = create(
            &app,
            &me,
            &json!({ "type": kind, "title": format!("{kind} {repeat}"), "startDate": day_str(start),
                "startTime": "18:00", "endTime": "19:00", "repeat": repeat, "duration": "1_month",
                "color": "red", "location": "consultorio1" }),
        )
        .await;
        assert_eq!(b["type"], kind);
        let normalized = match repeat {
            "monthly_weekday" => "monthly",
            r => r,
        };
        assert_eq!(b["repeat"], normalized, "{b}");
        assert_eq!(b["endDate"], day_str(start));
    }
    assert_eq!(app.count("availability_blocks").await, 6);

    // The dashboard's range: a month back, three ahead (about 123 days).
    let (from, to) = (in_days(-30), in_days(92));
    let listed = list(&app, &me, from, to).await;
    let stored: Vec<&Value> = listed.iter().filter(|b| b["source"] == "block").collect();
    assert_eq!(stored.len(), 6, "{listed:?}");
    let weekly = stored.iter().find(|b| b["title"] == "Tardes").unwrap();
    let occurrences = weekly["occurrences"].as_array().unwrap();
    assert!(
        occurrences.len() >= 24,
        "Mondays and Thursdays for 3 months: {}",
        occurrences.len()
    );
    for o in occurrences {
        let d = NaiveDate::parse_from_str(o["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        assert!(matches!(d.weekday(), Weekday::Mon | Weekday::Thu), "{o}");
        assert_eq!(o["startTime"], "15:00");
    }
    let daily = stored.iter().find(|b| b["title"] == "unavailable daily").unwrap();
    assert!(daily["occurrences"].as_array().unwrap().len() >= 29);
    let once = stored.iter().find(|b| b["title"] == "unavailable none").unwrap();
    assert_eq!(once["occurrences"].as_array().unwrap().len(), 1);

    // The weekly schedule is there too: read-only recurring availability blocks.
    let schedule: Vec<&Value> = listed.iter().filter(|b| b["source"] == "schedule").collect();
    assert_eq!(schedule.len(), 7, "one per working interval: {schedule:?}");
    for b in &schedule {
        assert_eq!(b["type"], "availability");
        assert_eq!(b["repeat"], "weekly");
        assert_eq!(b["readOnly"], true);
        assert_eq!(b["startTime"], "09:00");
        assert_eq!(b["endTime"], "13:00");
        assert!(b["occurrences"].as_array().unwrap().len() >= 17);
    }
    // `current` and the caller's own id are the same list.
    let r = app
        .get_as(
            &format!(
                "/api/availability/therapist/current/blocks?startDate={}&endDate={}&isActive=true",
                day_str(from),
                day_str(to)
            ),
            &me,
        )
        .await;
    assert_eq!(json_body(r).await.as_array().unwrap().len(), listed.len());
}

#[tokio::test]
async fn availability_blocks_open_time_and_unavailable_blocks_close_it() {
    let app = spawn_app().await;
    let me = setup(&app).await;
    let day = in_days(10);
    assert_eq!(slots(&app, &me, day).await, ["09:00", "10:00", "11:00", "12:00"]);
    create(
        &app,
        &me,
        &json!({ "type": "availability", "title": "Extra", "startDate": day_str(day),
            "startTime": "15:00", "endTime": "17:00" }),
    )
    .await;
    assert_eq!(
        slots(&app, &me, day).await,
        ["09:00", "10:00", "11:00", "12:00", "15:00", "16:00"],
        "an availability block opens time outside the weekly hours"
    );
    let r = app
        .post_json(
            "/api/availability/check-slot",
            &json!({ "therapistId": me.id, "date": day_str(day), "startTime": "15:00", "endTime": "16:00" }),
        )
        .await;
    assert_eq!(json_body(r).await["data"]["available"], true);
    // Adjacent to the schedule's hours: one open stretch.
    create(
        &app,
        &me,
        &json!({ "type": "availability", "startDate": day_str(day), "startTime": "13:00", "endTime": "15:00" }),
    )
    .await;
    assert_eq!(slots(&app, &me, day).await.len(), 8);

    let closed = create(
        &app,
        &me,
        &json!({ "type": "unavailable", "title": "Supervisión", "startDate": day_str(day - Duration::days(7)),
            "startTime": "10:00", "endTime": "11:00", "repeat": "weekly" }),
    )
    .await;
    assert_eq!(
        slots(&app, &me, day).await,
        ["09:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    );
    assert!(!slots(&app, &me, day + Duration::days(7))
        .await
        .contains(&"10:00".to_owned()));
    assert!(slots(&app, &me, day + Duration::days(1))
        .await
        .contains(&"10:00".to_owned()));

    // Occupancy counts the opened hours less the closed ones.
    let r = app
        .get_as(
            &format!(
                "/api/availability/analysis/occupancy?startDate={}&endDate={}&therapistId=current",
                day_str(day),
                day_str(day)
            ),
            &me,
        )
        .await;
    let data = json_body(r).await["data"].clone();
    assert_eq!(data["workingHours"], json!(8.0), "{data}");
    assert_eq!(data["totalAvailableHours"], json!(7.0), "{data}");

    // Deleting the unavailable block gives the hour back.
    let id = closed["id"].as_str().unwrap();
    let r = app
        .delete_as(&format!("/api/availability/blocks/{id}"), &me)
        .await;
    assert_eq!(json_body(r).await["deleted"], true);
    assert!(slots(&app, &me, day).await.contains(&"10:00".to_owned()));
}

/// The next date (after a week from now) of Madrid's DST change: the last Sunday of March or
/// October.
fn next_madrid_transition() -> NaiveDate {
    let last_sunday = |y: i32, m: u32| {
        let mut d = NaiveDate::from_ymd_opt(y, m + 1, 1).unwrap() - Duration::days(1);
        while d.weekday() != Weekday::Sun {
            d -= Duration::days(1);
        }
        d
    };
    let soon = in_days(8);
    [soon.year(), soon.year() + 1]
        .into_iter()
        .flat_map(|y| [last_sunday(y, 3), last_sunday(y, 10)])
        .find(|d| *d >= soon)
        .unwrap()
}

#[tokio::test]
async fn a_weekly_block_keeps_its_local_time_across_a_dst_change() {
    let app = spawn_app().await;
    let me = setup(&app).await;
    let change = next_madrid_transition();
    let first = change - Duration::days(7);
    create(
        &app,
        &me,
        &json!({ "type": "availability", "title": "Domingos", "startDate": day_str(first),
            "startTime": "16:00", "endTime": "17:00", "repeat": "weekly",
            "duration": "until_date", "durationEndDate": day_str(change + Duration::days(7)) }),
    )
    .await;
    for d in [first, change, change + Duration::days(7)] {
        assert_eq!(
            slots(&app, &me, d).await,
            ["09:00", "10:00", "11:00", "12:00", "16:00"],
            "{d}"
        );
    }
    assert_eq!(
        slots(&app, &me, change + Duration::days(14)).await.len(),
        4,
        "ended"
    );
    let listed = list(&app, &me, first, change + Duration::days(14)).await;
    let block = listed.iter().find(|b| b["title"] == "Domingos").unwrap();
    let occ = block["occurrences"].as_array().unwrap();
    assert_eq!(occ.len(), 3);
    let utc_hours: Vec<String> = occ
        .iter()
        .map(|o| o["startsAt"].as_str().unwrap()[11..16].to_owned())
        .collect();
    assert!(occ.iter().all(|o| o["startTime"] == "16:00"));
    assert_ne!(
        utc_hours[0], utc_hours[2],
        "the UTC instant moves, the local time does not: {utc_hours:?}"
    );
    assert_eq!(
        utc_hours[1], utc_hours[2],
        "the change happens at night, before 16:00"
    );
}

#[tokio::test]
async fn calendar_ranges_up_to_a_year_dates_or_instants_and_named_errors() {
    let app = spawn_app().await;
    let me = setup(&app).await;
    let client = new_client(&app, &me, "Calendar Client").await;
    let day = in_days(5);
    let r = app
        .post_as(
            "/api/bookings",
            &me,
            &json!({ "clientId": client, "date": day_str(day), "startTime": "10:00", "endTime": "11:00" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    create(
        &app,
        &me,
        &json!({ "type": "unavailable", "title": "Médico", "startDate": day_str(day), "startTime": "12:00", "endTime": "13:00" }),
    )
    .await;
    // The dashboard's call: 123 days, view=week.
    let (from, to) = (in_days(-30), in_days(92));
    let r = app
        .get_as(
            &format!(
                "/api/availability/calendar/events?startDate={}&endDate={}&view=week",
                day_str(from),
                day_str(to)
            ),
            &me,
        )
        .await;
    assert_eq!(r.status(), 200);
    let events = json_body(r).await["data"].as_array().unwrap().clone();
    let of = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!(of("booking"), 1);
    assert_eq!(of("unavailable"), 1);
    assert_eq!(
        of("availability"),
        123,
        "working hours every day: {}",
        of("availability")
    );

    // ISO instants, the caller's own id, a year, unknown parameters.
    let path = format!(
        "/api/availability/calendar/events?startDate={}T00:00:00.000Z&endDate={}T23:59:59.999Z&therapistId={}&foo=bar",
        day_str(day),
        day_str(day),
        me.id
    );
    let r = app.get_as(&path, &me).await;
    assert_eq!(r.status(), 200);
    let events = json_body(r).await["data"].as_array().unwrap().clone();
    assert!(events.iter().any(|e| e["type"] == "booking"));
    for path in [
        format!(
            "/api/availability/calendar/events?startDate={}&endDate={}",
            day_str(in_days(0)),
            day_str(in_days(365))
        ),
        format!(
            "/api/availability/analysis/occupancy?startDate={}&endDate={}&therapistId=current",
            day_str(from),
            day_str(to)
        ),
    ] {
        let r = app.get_as(&path, &me).await;
        assert_eq!(r.status(), 200, "{path}");
        if path.contains("occupancy") {
            assert!(
                json_body(r).await["data"]["totalAvailableHours"]
                    .as_f64()
                    .unwrap()
                    > 400.0
            );
        }
    }
    let bad = [
        (
            "/api/availability/calendar/events?startDate=2026-13-01&endDate=2026-12-01",
            "startDate",
        ),
        (
            "/api/availability/calendar/events?startDate=2026-01-01&endDate=soon",
            "endDate",
        ),
        (
            "/api/availability/calendar/events?startDate=2026-01-01&endDate=2027-06-01",
            "endDate",
        ),
        (
            "/api/availability/analysis/occupancy?startDate=01/02/2026",
            "startDate",
        ),
        (
            "/api/availability/analysis/occupancy?therapistId=nope",
            "therapistId",
        ),
    ];
    for (path, field) in bad {
        let err = assert_error(app.get_as(path, &me).await, 400, "VALIDATION_ERROR").await;
        assert_eq!(err["errors"][0]["field"], field, "{path}: {err}");
    }
    let other = therapist(&app).await;
    let r = app
        .get_as(
            &format!("/api/availability/calendar/events?therapistId={}", other.id),
            &me,
        )
        .await;
    assert_error(r, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn another_therapists_block_is_404_and_schedule_blocks_are_read_only() {
    let app = spawn_app().await;
    let owner = setup(&app).await;
    let intruder = therapist(&app).await;
    let block = create(
        &app,
        &owner,
        &json!({ "type": "availability", "startDate": day_str(in_days(3)), "startTime": "15:00", "endTime": "16:00" }),
    )
    .await;
    let id = block["id"].as_str().unwrap();
    let change = json!({ "startTime": "16:00", "endTime": "17:00" });
    assert_error(
        app.put_as(&format!("/api/availability/blocks/{id}"), &intruder, &change)
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
    // The owner's partial update keeps the rest.
    let r = app
        .put_as(&format!("/api/availability/blocks/{id}"), &owner, &change)
        .await;
    assert_eq!(r.status(), 200);
    let updated = json_body(r).await;
    assert_eq!(updated["startTime"], "16:00");
    assert_eq!(updated["type"], "availability");
    assert_eq!(updated["startDate"], block["startDate"]);

    let listed = list(&app, &owner, in_days(0), in_days(7)).await;
    let derived = listed.iter().find(|b| b["source"] == "schedule").unwrap();
    let sid = derived["id"].as_str().unwrap();
    for r in [
        app.put_as(&format!("/api/availability/blocks/{sid}"), &owner, &change)
            .await,
        app.delete_as(&format!("/api/availability/blocks/{sid}"), &owner)
            .await,
    ] {
        assert_error(r, 400, "SCHEDULE_BLOCK_READ_ONLY").await;
    }
    assert_eq!(app.count("availability_blocks").await, 1);
}

#[tokio::test]
async fn bad_blocks_are_400_with_the_field_named_and_nothing_stored() {
    let app = spawn_app().await;
    let me = setup(&app).await;
    let d = day_str(in_days(3));
    let base = json!({ "type": "availability", "startDate": d, "startTime": "10:00", "endTime": "11:00" });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let bad = [
        (with("type", json!("busy")), "type"),
        (with("repeat", json!("yearly")), "repeat"),
        (with("startDate", json!("2026-02-30")), "startDate"),
        (with("endDate", json!(day_str(in_days(2)))), "endDate"),
        (with("startTime", json!("10:07")), "startTime"),
        (with("endTime", json!("10:00")), "endTime"),
        (with("endTime", json!("25:00")), "endTime"),
        (with("title", json!(42)), "title"),
        (
            json!({ "type": "availability", "startTime": "10:00", "endTime": "11:00" }),
            "date",
        ),
        (
            json!({ "type": "availability", "startDate": d, "startTime": "10:00", "endTime": "11:00",
                "repeat": "weekly", "selectedWeekdays": ["monday", "caturday"] }),
            "selectedWeekdays[1]",
        ),
        (
            json!({ "type": "availability", "startDate": d, "startTime": "10:00", "endTime": "11:00",
                "repeat": "daily", "duration": "forever" }),
            "duration",
        ),
        (
            json!({ "type": "availability", "startDate": d, "startTime": "10:00", "endTime": "11:00",
                "repeat": "daily", "duration": "until_date" }),
            "durationEndDate",
        ),
    ];
    for (body, field) in bad {
        let err = assert_error(
            app.post_as("/api/availability/blocks", &me, &body).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(err["errors"][0]["field"], field, "{body}: {err}");
    }
    assert_eq!(app.count("availability_blocks").await, 0);
    // A refused update changes nothing either.
    let block = create(&app, &me, &base).await;
    let id = block["id"].as_str().unwrap();
    let err = assert_error(
        app.put_as(
            &format!("/api/availability/blocks/{id}"),
            &me,
            &json!({ "repeat": "hourly" }),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(err["errors"][0]["field"], "repeat");
    let listed = list(&app, &me, in_days(3), in_days(3)).await;
    let stored = listed.iter().find(|b| b["id"] == block["id"]).unwrap();
    assert_eq!(stored["repeat"], "none");
}

#[tokio::test]
async fn blocks_stored_before_the_rules_still_read_and_still_block() {
    let app = spawn_app().await;
    let me = setup(&app).await;
    let day = in_days(6);
    // An old document: only the UTC interval (10:00-11:00 Madrid, in UTC+1 or UTC+2).
    let listed = list(&app, &me, day, day).await;
    let nine = listed.iter().find(|b| b["source"] == "schedule").unwrap()["occurrences"][0]["startsAt"]
        .as_str()
        .unwrap()
        .to_owned();
    let starts = chrono::DateTime::parse_from_rfc3339(&nine)
        .unwrap()
        .with_timezone(&Utc)
        + Duration::hours(1);
    let now = DateTime::now();
    app.db
        .collection::<mongodb::bson::Document>("availability_blocks")
        .insert_one(doc! {
            "_id": ObjectId::new(), "therapistId": ObjectId::parse_str(&me.id).unwrap(), "kind": "block",
            "absenceType": null, "startsAt": DateTime::from_chrono(starts),
            "endsAt": DateTime::from_chrono(starts + Duration::hours(1)), "reason": "old lunch",
            "createdAt": now, "updatedAt": now,
        })
        .await
        .unwrap();
    let listed = list(&app, &me, day, day).await;
    let old = listed
        .iter()
        .find(|b| b["source"] == "block")
        .expect("the old block is listed");
    assert_eq!(old["type"], "unavailable");
    assert_eq!(old["repeat"], "none");
    assert_eq!(
        (old["startTime"].as_str(), old["endTime"].as_str()),
        (Some("10:00"), Some("11:00"))
    );
    assert_eq!(old["startDate"], day_str(day));
    assert_eq!(old["title"], "old lunch");
    assert_eq!(slots(&app, &me, day).await, ["09:00", "11:00", "12:00"]);
}
