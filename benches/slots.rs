//! Free-slot computation: 60 days for a therapist with 500 bookings (target: under 2 ms).
//! `cargo bench --bench slots`

use std::hint::black_box;

use chrono::{Duration, TimeZone, Utc};
use chrono_tz::Tz;
use criterion::{criterion_group, criterion_main, Criterion};
use dhara::availability::model::{Schedule, WorkingHours, WEEKDAYS};
use dhara::availability::slots::{free_slots, SlotRequest};

fn schedule() -> Schedule {
    let mut s = Schedule::default();
    for day in WEEKDAYS {
        s.weekly.insert(
            day.into(),
            vec![
                WorkingHours {
                    start: "08:00".into(),
                    end: "14:00".into(),
                    location: None,
                },
                WorkingHours {
                    start: "15:00".into(),
                    end: "21:00".into(),
                    location: None,
                },
            ],
        );
    }
    s.buffer_minutes = 10;
    s.min_notice_hours = 0;
    s.max_advance_days = 365;
    s
}

fn bench(c: &mut Criterion) {
    let zone: Tz = "Europe/Madrid".parse().expect("zone");
    let now = Utc.with_ymd_and_hms(2030, 3, 1, 0, 0, 0).single().expect("time");
    let from = now.date_naive();
    let to = from + Duration::days(59);
    // 500 one-hour bookings spread over the 60 days (about 8 a day), sorted by start.
    let mut bookings: Vec<(i64, i64)> = (0..500)
        .map(|i| {
            let day = i64::from(i % 60);
            let hour = 8 + i64::from((i / 60) * 2 % 12);
            let start = now.timestamp() + day * 86_400 + hour * 3600;
            (start, start + 3600)
        })
        .collect();
    bookings.sort_unstable();
    let blocked = vec![(now.timestamp() + 20 * 86_400, now.timestamp() + 23 * 86_400)];
    let s = schedule();
    c.bench_function("free_slots_60_days_500_bookings", |b| {
        b.iter(|| {
            let req = SlotRequest {
                zone,
                from,
                to,
                duration_minutes: 50,
                now,
                bookings: black_box(&bookings),
                blocked: black_box(&blocked),
            };
            black_box(free_slots(&s, &req))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
