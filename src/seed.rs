//! `dhara seed`: a realistic demo practice so a newcomer sees a populated dashboard.
//! Deterministic for a given `--seed`; bookings hold their time through the same claims as
//! live ones, so the no-overlap guarantee covers demo data too.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::app::AppState;
use crate::auth::model::{Role, User};
use crate::availability::model::Schedule;
use crate::bookings::claims::buckets_of;
use crate::bookings::model::{Booking, BookingStatus, PaymentStatus};
use crate::clients::model::{Client, ClientStatus};
use crate::money::{Cents, Currency};

/// Sizes of the demo practice.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub therapists: u32,
    pub clients: u32,
    pub months: u32,
    pub seed: u64,
    pub password: String,
}

/// What was created.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub therapists: Vec<String>,
    pub skipped: Vec<String>,
    pub clients: usize,
    pub bookings: usize,
    pub payments: usize,
    pub reviews: usize,
}

const FIRST: &[&str] = &[
    "Lucía", "Martín", "Sofía", "Hugo", "Valeria", "Pablo", "Carmen", "Diego", "Elena", "Javier", "Noa",
    "Álvaro", "Irene", "Mateo", "Marta", "Daniel",
];
const LAST: &[&str] = &[
    "García",
    "Fernández",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Ruiz",
    "Díaz",
    "Moreno",
    "Álvarez",
    "Romero",
];
const THERAPIES: &[&str] = &[
    "Terapia cognitivo-conductual",
    "Terapia de pareja",
    "EMDR",
    "Mindfulness",
    "Terapia sistémica",
];
const COMMENTS: &[&str] = &[
    "Muy buena profesional, me ayudó mucho.",
    "Sesiones claras y útiles.",
    "Me sentí escuchada.",
    "Recomendable.",
];

/// Creates the demo practice; therapists whose email already exists are skipped.
pub async fn seed(state: &AppState, opts: &SeedOptions) -> anyhow::Result<SeedReport> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut report = SeedReport::default();
    let hash = crate::auth::password::hash(&state.hashing, opts.password.clone()).await?;
    for t in 1..=opts.therapists {
        let email = format!("demo.therapist{t}@dhara.local");
        let users = crate::auth::store::AuthStore::new(&state.db);
        if users.user_by_email(&email).await?.is_some() {
            report.skipped.push(email);
            continue;
        }
        let now = DateTime::now();
        let therapist = User {
            id: ObjectId::new(),
            name: format!(
                "Dra. {} {}",
                FIRST[rng.gen_range(0..FIRST.len())],
                LAST[rng.gen_range(0..LAST.len())]
            ),
            email: email.clone(),
            password_hash: hash.clone(),
            role: Role::Therapist,
            avatar: None,
            is_verified: true,
            verification_status: "verified".into(),
            timezone: "Europe/Madrid".into(),
            email_verified_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        users.insert_user(&therapist).await?;
        let schedule = Schedule::default();
        crate::availability::store::AvailabilityStore::new(&state.db)
            .put_schedule(therapist.id, &schedule)
            .await?;
        seed_profile(state, therapist.id).await?;
        let clients = seed_clients(state, &mut rng, therapist.id, opts.clients).await?;
        report.clients += clients.len();
        let (b, p, r) = seed_sessions(state, &mut rng, &therapist, &clients, opts.months).await?;
        report.bookings += b;
        report.payments += p;
        report.reviews += r;
        let today = Utc::now().with_timezone(&chrono_tz::Europe::Madrid).date_naive();
        seed_blocks(state, therapist.id, today).await?;
        seed_notifications(state, therapist.id).await?;
        seed_session_notes(state, therapist.id).await?;
        report.therapists.push(email);
    }
    Ok(report)
}

async fn seed_profile(state: &AppState, therapist: ObjectId) -> anyhow::Result<()> {
    crate::profile::load_or_create(state, therapist)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    state
        .db
        .collection::<Document>("profiles")
        .update_one(
            doc! { "userId": therapist },
            doc! { "$set": {
                "about": "Psicóloga sanitaria con consulta en Madrid y sesiones online.",
                "specialties": ["ansiedad", "depresión", "duelo"], "languages": ["es", "en"],
                "rates": { "sessionPriceCents": 6000_i64, "currency": "EUR", "sessionDuration": 50 },
                "workLocations": [ { "name": "Consulta Chamberí", "city": "Madrid", "online": false }, { "name": "Online", "online": true } ],
            } },
        )
        .await?;
    Ok(())
}

async fn seed_clients(
    state: &AppState,
    rng: &mut StdRng,
    therapist: ObjectId,
    n: u32,
) -> anyhow::Result<Vec<Client>> {
    let mut out = Vec::new();
    let now = DateTime::now();
    for i in 0..n {
        let first = FIRST[rng.gen_range(0..FIRST.len())];
        let last = LAST[rng.gen_range(0..LAST.len())];
        let client = Client {
            id: ObjectId::new(),
            therapist_id: therapist,
            user_id: None,
            name: format!("{first} {last}"),
            email: Some(format!(
                "cliente{}.{}@example.com",
                i + 1,
                therapist.to_hex()[18..].to_owned()
            )),
            phone: Some(format!(
                "+34 6{:02} {:03} {:03}",
                rng.gen_range(0..100),
                rng.gen_range(0..1000),
                rng.gen_range(0..1000)
            )),
            age: Some(rng.gen_range(19..70)),
            address: None,
            emergency_contact: None,
            notes: None,
            tags: vec![["ansiedad", "pareja", "duelo", "online"][rng.gen_range(0..4)].to_owned()],
            preferences: Default::default(),
            status: if i % 9 == 8 {
                ClientStatus::Inactive
            } else {
                ClientStatus::Active
            },
            created_at: now,
            updated_at: now,
        };
        crate::clients::store::ClientStore::new(&state.db)
            .insert(&client)
            .await?;
        out.push(client);
    }
    Ok(out)
}

/// Each client gets a fixed fortnightly slot (weekday and hour, distinct across clients) from
/// `months` ago to a month ahead: past sessions mostly completed and paid, some cancelled or
/// missed; future ones upcoming.
async fn seed_sessions(
    state: &AppState,
    rng: &mut StdRng,
    therapist: &User,
    clients: &[Client],
    months: u32,
) -> anyhow::Result<(usize, usize, usize)> {
    let zone = chrono_tz::Europe::Madrid;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let start = today - Duration::days(i64::from(months) * 30);
    let end = today + Duration::days(30);
    let weekdays = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    let hours = [9u32, 10, 11, 12, 16, 17, 18, 19];
    let claims = crate::bookings::service::claims(state);
    let (mut bookings_n, mut payments_n, mut reviews_n) = (0, 0, 0);
    for (i, client) in clients
        .iter()
        .enumerate()
        .filter(|(_, c)| c.status == ClientStatus::Active)
    {
        let slot = i % (weekdays.len() * hours.len());
        let (weekday, hour) = (weekdays[slot % weekdays.len()], hours[slot / weekdays.len()]);
        let offset = (i / (weekdays.len() * hours.len())) as i64 * 7;
        let mut day = start
            + Duration::days(
                (7 + weekday.num_days_from_monday() as i64 - start.weekday().num_days_from_monday() as i64)
                    % 7
                    + offset,
            );
        while day <= end {
            let mut booking = demo_booking(rng, therapist, client, day, hour, today, zone)?;
            // Time older than the claims' retention is closed to booking, and its claims would
            // be removed at once: history is written without them.
            if booking.status.holds_time() && booking.ends_at.to_chrono() >= claims.earliest_end() {
                let token = mongodb::bson::oid::ObjectId::new();
                booking.claim_tokens = vec![token];
                if claims
                    .claim(therapist.id, booking.id, token, &buckets_of(&booking))
                    .await?
                    != crate::bookings::claims::Claimed::Ok
                {
                    day += Duration::days(14);
                    continue;
                }
            }
            crate::bookings::store::BookingStore::new(&state.db)
                .insert_all(std::slice::from_ref(&booking))
                .await?;
            bookings_n += 1;
            if booking.status == BookingStatus::Completed {
                insert_payment(state, rng, &booking, zone, payments_n == 0).await?;
                payments_n += 1;
                if rng.gen_bool(0.3) {
                    insert_review(state, rng, &booking).await?;
                    reviews_n += 1;
                }
            }
            day += Duration::days(14);
        }
    }
    Ok((bookings_n, payments_n, reviews_n))
}

fn demo_booking(
    rng: &mut StdRng,
    therapist: &User,
    client: &Client,
    day: NaiveDate,
    hour: u32,
    today: NaiveDate,
    zone: chrono_tz::Tz,
) -> anyhow::Result<Booking> {
    let start_t = NaiveTime::from_hms_opt(hour, 0, 0).ok_or_else(|| anyhow::anyhow!("hour"))?;
    let starts = crate::time::local_to_utc_lenient(zone, day.and_time(start_t));
    let ends = starts + Duration::minutes(50);
    let status = if day >= today {
        BookingStatus::Upcoming
    } else {
        match rng.gen_range(0..100) {
            0..=84 => BookingStatus::Completed,
            85..=92 => BookingStatus::Cancelled,
            _ => BookingStatus::NoShow,
        }
    };
    let now = DateTime::now();
    Ok(Booking {
        id: ObjectId::new(),
        therapist_id: therapist.id,
        client_id: client.id,
        date: day.format("%Y-%m-%d").to_string(),
        start_time: format!("{hour:02}:00"),
        end_time: format!("{hour:02}:50"),
        starts_at: DateTime::from_chrono(starts),
        ends_at: DateTime::from_chrono(ends),
        timezone: zone.name().to_owned(),
        status,
        therapy_type: Some(THERAPIES[rng.gen_range(0..THERAPIES.len())].to_owned()),
        therapy_duration: 50,
        amount_cents: Cents(6000),
        currency: Currency::EUR,
        location: Some("Consulta Chamberí".into()),
        notes: None,
        client_notes: None,
        meeting_link: None,
        payment_status: if status == BookingStatus::Completed {
            PaymentStatus::Paid
        } else {
            PaymentStatus::Pending
        },
        buffer_minutes: 0,
        series_id: None,
        cancellation: None,
        claim_tokens: Vec::new(),
        payment_method: None,
        version: 1,
        created_by: "seed".into(),
        created_at: now,
        updated_at: now,
    })
}

/// The payment of a completed session; the first of a practice is partly refunded (so every
/// state the payments page shows exists). The booking records what it was paid, as a payment
/// made through the API would.
async fn insert_payment(
    state: &AppState,
    rng: &mut StdRng,
    b: &Booking,
    zone: chrono_tz::Tz,
    partly_refunded: bool,
) -> anyhow::Result<()> {
    let method = ["card", "transfer", "cash"][rng.gen_range(0..3)];
    let fee = if method == "card" {
        crate::payments::fees::fee(state.config.payments.fees.card, b.amount_cents.0)
    } else {
        0
    };
    let paid_at = b.ends_at;
    let id = ObjectId::new();
    let refunded = if partly_refunded { b.amount_cents.0 / 4 } else { 0 };
    let refunds = if partly_refunded {
        vec![
            doc! { "id": ObjectId::new(), "amountCents": refunded, "reason": "Sesión acortada", "refundedAt": paid_at },
        ]
    } else {
        Vec::new()
    };
    let status = if partly_refunded {
        "partially_refunded"
    } else {
        "completed"
    };
    state
        .db
        .collection::<Document>("payments")
        .insert_one(doc! {
            "_id": id, "therapistId": b.therapist_id, "clientId": b.client_id, "bookingId": b.id,
            "amountCents": b.amount_cents.0, "currency": "EUR", "method": method, "status": status,
            "feeCents": fee, "netCents": b.amount_cents.0 - fee, "refundedCents": refunded,
            "refundableCents": b.amount_cents.0 - refunded, "refunds": refunds,
            "transactionId": format!("SEED-{}", b.id.to_hex()), "description": "Sesión",
            "paymentDate": paid_at, "month": paid_at.to_chrono().with_timezone(&zone).format("%Y-%m").to_string(),
            "createdAt": paid_at, "updatedAt": paid_at,
        })
        .await?;
    let booking_status = if partly_refunded {
        "partially_refunded"
    } else {
        "paid"
    };
    state
        .db
        .collection::<Document>("bookings")
        .update_one(
            doc! { "_id": b.id },
            doc! { "$set": {
                "paymentStatus": booking_status, "paymentId": id, "paymentMethod": method,
                "paidCents": b.amount_cents.0 - refunded, "chargeIds": [id],
            } },
        )
        .await?;
    Ok(())
}

/// The therapist's time as the availability page draws it: an extra afternoon every Saturday
/// and a blocked morning for a training day.
async fn seed_blocks(state: &AppState, therapist: ObjectId, today: chrono::NaiveDate) -> anyhow::Result<()> {
    use crate::availability::blocks::{new_block, BlockInput};
    let zone = chrono_tz::Europe::Madrid;
    let day = |d: i64| (today + Duration::days(d)).format("%Y-%m-%d").to_string();
    let inputs = [
        serde_json::json!({
            "type": "availability", "title": "Sábados de tarde", "startDate": day(1), "endDate": day(1),
            "startTime": "16:00", "endTime": "19:00", "repeat": "weekly", "selectedWeekdays": ["saturday"],
            "color": "#22c55e", "location": "Online",
        }),
        serde_json::json!({
            "type": "unavailable", "title": "Formación", "startDate": day(9), "endDate": day(9),
            "startTime": "09:00", "endTime": "13:00", "repeat": "none", "color": "#ef4444",
        }),
    ];
    let store = crate::availability::store::AvailabilityStore::new(&state.db);
    for input in inputs {
        let input: BlockInput = serde_json::from_value(input)?;
        let block = new_block(therapist, input, zone).map_err(|e| anyhow::anyhow!("{e}"))?;
        store.insert_block(&block).await?;
    }
    Ok(())
}

/// Private notes of the last completed sessions, as the client detail page lists them.
async fn seed_session_notes(state: &AppState, therapist: ObjectId) -> anyhow::Result<()> {
    let done: Vec<Booking> = state
        .db
        .collection::<Booking>("bookings")
        .find(doc! { "therapistId": therapist, "status": "completed" })
        .sort(doc! { "startsAt": -1 })
        .limit(3)
        .await?
        .try_collect()
        .await?;
    let notes: Vec<Document> = done
        .iter()
        .map(|b| {
            doc! {
                "_id": ObjectId::new(), "therapistId": therapist, "clientId": b.client_id, "bookingId": b.id,
                "title": format!("Sesión del {}", b.date),
                "content": "Buena evolución; se acuerdan ejercicios de respiración para la semana.",
                "tags": ["seguimiento"], "date": b.starts_at, "createdAt": b.ends_at, "updatedAt": b.ends_at,
            }
        })
        .collect();
    if !notes.is_empty() {
        state
            .db
            .collection::<Document>("session_notes")
            .insert_many(notes)
            .await?;
    }
    Ok(())
}

/// A few notifications, as the practice's recent activity would have left them.
async fn seed_notifications(state: &AppState, therapist: ObjectId) -> anyhow::Result<()> {
    use crate::notifications::{record, Notice};
    let bookings: Vec<Booking> = state
        .db
        .collection::<Booking>("bookings")
        .find(doc! { "therapistId": therapist, "status": "upcoming" })
        .sort(doc! { "startsAt": 1 })
        .limit(2)
        .await?
        .try_collect()
        .await?;
    let clients = crate::clients::store::ClientStore::new(&state.db);
    let scope = crate::db::OwnerScope::of(therapist);
    for b in &bookings {
        let client = clients
            .get(&scope, b.client_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("seeded client {} vanished", b.client_id))?
            .name;
        let notice = Notice::BookingCreated {
            booking: b.id,
            client,
            sessions: 1,
            date: b.date.clone(),
            time: b.start_time.clone(),
        };
        record(&state.db, therapist, notice).await;
    }
    Ok(())
}

async fn insert_review(state: &AppState, rng: &mut StdRng, b: &Booking) -> anyhow::Result<()> {
    let rating: i32 = [5, 5, 5, 4, 4, 3][rng.gen_range(0..6)];
    state
        .db
        .collection::<Document>("reviews")
        .insert_one(doc! {
            "_id": ObjectId::new(), "therapistId": b.therapist_id, "clientId": b.client_id, "bookingId": b.id,
            "rating": rating, "comment": COMMENTS[rng.gen_range(0..COMMENTS.len())], "status": "published",
            "createdAt": b.ends_at, "updatedAt": b.ends_at,
        })
        .await?;
    Ok(())
}
