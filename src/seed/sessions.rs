//! The demo practice's history: a year of sessions (claims and all), their payments and
//! reviews.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use rand::rngs::StdRng;
use rand::Rng;

use crate::app::AppState;
use crate::auth::model::User;
use crate::bookings::claims::buckets_of;
use crate::bookings::model::{Booking, BookingStatus, PaymentStatus};
use crate::clients::model::{Client, ClientStatus};
use crate::money::{Cents, Currency};
use crate::reviews::model::Review;
use crate::reviews::store::ReviewStore;

const COMMENTS: &[&str] = &[
    "Muy buena profesional, me ayudó mucho.",
    "Sesiones claras y útiles.",
    "Me sentí escuchada.",
    "Recomendable.",
];

const THERAPIES: &[&str] = &[
    "Terapia cognitivo-conductual",
    "Terapia de pareja",
    "EMDR",
    "Mindfulness",
    "Terapia sistémica",
];

/// Each client gets a fixed fortnightly slot (weekday and hour, distinct across clients) from
/// `months` ago to a month ahead: past sessions mostly completed and paid, some cancelled or
/// missed; future ones upcoming.
pub(super) async fn seed_sessions(
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
        // Demo practices are not emailed.
        pending_emails: Vec::new(),
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

async fn insert_review(state: &AppState, rng: &mut StdRng, b: &Booking) -> anyhow::Result<()> {
    let review = Review {
        id: ObjectId::new(),
        therapist_id: b.therapist_id,
        client_id: b.client_id,
        client_user_id: None,
        booking_id: b.id,
        rating: [5, 5, 5, 4, 4, 3][rng.gen_range(0..6)],
        comment: Some(COMMENTS[rng.gen_range(0..COMMENTS.len())].to_owned()),
        status: Some("published".into()),
        response: None,
        created_at: b.ends_at,
        updated_at: b.ends_at,
    };
    ReviewStore::new(&state.db).insert(&review).await?;
    Ok(())
}
