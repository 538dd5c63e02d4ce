//! `dhara seed`: a realistic demo practice so a newcomer sees a populated dashboard.
//! Deterministic for a given `--seed`; bookings hold their time through the same claims as
//! live ones, so the no-overlap guarantee covers demo data too.

use chrono::{Duration, Utc};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::app::AppState;
use crate::auth::model::{Role, User};
use crate::availability::model::Schedule;
use crate::bookings::model::Booking;
use crate::clients::model::{Client, ClientStatus};
use crate::session_notes::model::SessionNote;

mod sessions;
use sessions::seed_sessions;

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
        // Written around the services: whatever was read of this practice meanwhile is stale.
        let stale = crate::cache::family::Family::ALL.map(|f| (f, therapist.id));
        state.cache.invalidate(&stale).await;
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
    let done = latest(state, therapist, "completed", -1, 3).await?;
    let notes = crate::session_notes::store::NoteStore::new(&state.db);
    for b in &done {
        let note = SessionNote {
            id: ObjectId::new(),
            therapist_id: therapist,
            client_id: b.client_id,
            booking_id: Some(b.id),
            title: format!("Sesión del {}", b.date),
            content: "Buena evolución; se acuerdan ejercicios de respiración para la semana.".into(),
            tags: vec!["seguimiento".into()],
            date: b.starts_at,
            note_type: Default::default(),
            category: None,
            priority: Default::default(),
            status: Default::default(),
            is_emergency: false,
            requires_response: false,
            mood: None,
            wellness_score: None,
            created_at: b.ends_at,
            updated_at: b.ends_at,
        };
        notes.insert(&note).await?;
    }
    Ok(())
}

/// The therapist's first `n` bookings with `status` by start (`dir` 1 ascending, -1 descending).
async fn latest(
    state: &AppState,
    therapist: ObjectId,
    status: &str,
    dir: i32,
    n: i64,
) -> anyhow::Result<Vec<Booking>> {
    let filter = doc! { "therapistId": therapist, "status": status };
    let sort = doc! { "startsAt": dir, "_id": dir };
    let (found, _) = crate::bookings::store::BookingStore::new(&state.db)
        .page(filter, None, sort, 0, n)
        .await?;
    Ok(found)
}

/// A few notifications, as the practice's recent activity would have left them.
async fn seed_notifications(state: &AppState, therapist: ObjectId) -> anyhow::Result<()> {
    use crate::notifications::{record, Notice};
    let bookings = latest(state, therapist, "upcoming", 1, 2).await?;
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
