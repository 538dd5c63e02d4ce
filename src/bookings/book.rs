//! Booking: the therapist's (one booking or a weekly series, for one of their clients) and the
//! client's from the booking site (a `pending` request within the therapist's rules). Both end
//! in `create::create_all`, which claims the time and tells it.

use chrono::Utc;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;

use super::create::create_all;
use super::model::{Booking, BookingStatus, ClientBook, CreateBooking, PaymentStatus};
use super::place::{place, series, Placed};
use super::store::BookingStore;
use crate::app::AppState;
use crate::auth::extract::{parse_id, ClientUser, Therapist};
use crate::availability::model::Schedule;
use crate::availability::open_time::BlockedTime;
use crate::availability::query::public_therapist;
use crate::availability::slots;
use crate::availability::store::AvailabilityStore;
use crate::clients::model::ClientStatus;
use crate::clients::store::ClientStore;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::Ids;
use crate::money::{Cents, Currency};
use crate::time;

/// What a booking request fixes beyond its time.
struct Terms {
    therapist: ObjectId,
    client: ObjectId,
    status: BookingStatus,
    therapy_type: Option<String>,
    amount: Cents,
    currency: Currency,
    created_by: &'static str,
}

/// A new booking of `terms` at `p`, under the therapist's current rules.
fn new_booking(id: ObjectId, terms: &Terms, schedule: &Schedule, p: &Placed, now: DateTime) -> Booking {
    Booking {
        id,
        therapist_id: terms.therapist,
        client_id: terms.client,
        date: p.date.clone(),
        start_time: p.start_time.clone(),
        end_time: p.end_time.clone(),
        starts_at: DateTime::from_chrono(p.starts_at),
        ends_at: DateTime::from_chrono(p.ends_at),
        timezone: schedule.timezone.clone(),
        status: terms.status,
        therapy_type: terms.therapy_type.clone(),
        therapy_duration: p.minutes(),
        amount_cents: terms.amount,
        currency: terms.currency,
        location: None,
        notes: None,
        client_notes: None,
        meeting_link: None,
        payment_status: PaymentStatus::Pending,
        buffer_minutes: schedule.buffer_minutes,
        series_id: None,
        cancellation: None,
        claim_tokens: Vec::new(),
        pending_emails: vec!["confirmation".into()],
        payment_method: None,
        version: 1,
        created_by: terms.created_by.into(),
        created_at: now,
        updated_at: now,
    }
}

/// The occurrences a therapist's request asks for (one, or a weekly series) and their status.
fn occurrences_of(req: &CreateBooking, zone: chrono_tz::Tz) -> ApiResult<(Vec<Placed>, BookingStatus)> {
    let first = place(zone, &req.date, &req.start_time, &req.end_time)?;
    if req.therapy_duration.is_some_and(|d| d != first.minutes()) {
        return Err(ApiError::field(
            "therapyDuration",
            "must equal the minutes between startTime and endTime",
        ));
    }
    let status = req.status.unwrap_or(BookingStatus::Upcoming);
    if !matches!(status, BookingStatus::Pending | BookingStatus::Upcoming) {
        return Err(ApiError::field("status", "a new booking is pending or upcoming"));
    }
    let occurrences = match req.recurrence {
        Some(r) => series(zone, &first, r.interval, r.count)?,
        None => vec![first],
    };
    Ok((occurrences, status))
}

/// The bookings a first attempt of this keyed request wrote (all `n` of them), if it did.
async fn written_before(
    state: &AppState,
    me: &Therapist,
    ids: &Ids,
    n: usize,
) -> ApiResult<Option<Vec<Booking>>> {
    if !ids.derived() {
        return Ok(None);
    }
    let wanted: Vec<ObjectId> = (0..n as u32).map(|i| ids.nth(i)).collect();
    let existing = BookingStore::new(&state.db).get_ids(&me.scope(), &wanted).await?;
    Ok((existing.len() == wanted.len()).then_some(existing))
}

/// What the therapist books: one booking, or the occurrences of a weekly series (all or none).
/// A rerun of a keyed request whose first attempt wrote its bookings gets them back instead of
/// colliding with its own time. The bookings, and whether they are a series.
pub async fn book_as_therapist(
    state: &AppState,
    me: &Therapist,
    req: CreateBooking,
    ids: &Ids,
) -> ApiResult<(Vec<Booking>, bool)> {
    crate::http::extract::require_https(&state.config, "meetingLink", req.meeting_link.as_deref())?;
    let client_id = parse_id(&req.client_id, "clientId")?;
    let client = ClientStore::new(&state.db)
        .get(&me.scope(), client_id)
        .await?
        .ok_or_else(|| ApiError::field("clientId", "is not one of your clients"))?;
    // A deactivated client has no upcoming bookings (deactivating waits for them to end).
    if client.status != ClientStatus::Active {
        return Err(ApiError::field(
            "clientId",
            "is a deactivated client (reactivate them first)",
        ));
    }
    let (schedule, zone) = AvailabilityStore::new(&state.db)
        .schedule_in_zone(me.0.id)
        .await?;
    let (occurrences, status) = occurrences_of(&req, zone)?;
    let is_series = occurrences.len() > 1;
    if let Some(existing) = written_before(state, me, ids, occurrences.len()).await? {
        return Ok((existing, is_series));
    }
    let terms = Terms {
        therapist: me.0.id,
        client: client.id,
        status,
        therapy_type: req.therapy_type.clone(),
        amount: req.amount.unwrap_or_default(),
        currency: req.currency.unwrap_or_default(),
        created_by: "therapist",
    };
    let series_id = is_series.then(|| ids.nth(u32::MAX));
    let now = DateTime::now();
    let bookings = occurrences
        .iter()
        .enumerate()
        .map(|(i, p)| Booking {
            location: req.location.clone(),
            notes: req.notes.clone(),
            meeting_link: req.meeting_link.clone(),
            series_id,
            ..new_booking(ids.nth(i as u32), &terms, &schedule, p, now)
        })
        .collect();
    let created = create_all(state, bookings, Some(client.name.clone()), ids.derived()).await?;
    Ok((created, is_series))
}

/// 400 (naming `startTime`) when a client may not book `p` on local `date` now: notice, how far
/// ahead, open time. Other bookings are the claims' to refuse.
async fn check_rules(
    state: &AppState,
    therapist: ObjectId,
    schedule: &Schedule,
    zone: chrono_tz::Tz,
    date: &str,
    p: &Placed,
) -> ApiResult<()> {
    let day = time::parse_date(date).map_err(|e| ApiError::field("date", e.to_string()))?;
    let pad = chrono::Duration::days(1);
    let blocked =
        BlockedTime::load(&AvailabilityStore::new(&state.db), therapist, zone, day, day, pad).await?;
    let (s, e) = (p.starts_at.timestamp(), p.ends_at.timestamp());
    slots::within_rules(
        schedule,
        zone,
        day,
        s,
        e,
        Utc::now(),
        &blocked.closed,
        &blocked.opened,
    )
    .map_err(|r| ApiError::field("startTime", format!("this time {r}")))
}

/// Books a slot as a signed-in client: rules checked, client record found or created, time
/// claimed atomically like any booking. A rerun of a keyed request whose first attempt booked
/// gets that booking back.
pub async fn book_as_client(
    state: &AppState,
    me: &ClientUser,
    req: ClientBook,
    ids: &Ids,
) -> ApiResult<Booking> {
    let id = ids.nth(0);
    if ids.derived() {
        let mine = BookingStore::new(&state.db)
            .get_unscoped(id)
            .await?
            .filter(|b| b.created_by == "client");
        if let Some(b) = mine {
            return Ok(b);
        }
    }
    // A malformed id is a 400 naming `therapistId`, an unknown one (or `current`) a 404.
    let therapist = public_therapist(state, &req.therapist_id).await?;
    let (schedule, zone) = AvailabilityStore::new(&state.db)
        .schedule_in_zone(therapist)
        .await?;
    let p = place(zone, &req.date, &req.start_time, &req.end_time)?;
    check_rules(state, therapist, &schedule, zone, &req.date, &p).await?;
    let client = crate::clients::service::client_record_for(state, therapist, me.0.id).await?;
    let (amount, currency) = crate::profile::store::ProfileStore::new(&state.db)
        .session_price(therapist)
        .await?;
    let terms = Terms {
        therapist,
        client,
        status: BookingStatus::Pending,
        therapy_type: req.therapy_type,
        amount,
        currency,
        created_by: "client",
    };
    let booking = Booking {
        client_notes: req.notes,
        ..new_booking(id, &terms, &schedule, &p, DateTime::now())
    };
    let mut created = create_all(state, vec![booking], None, ids.derived()).await?;
    created
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("booking vanished")))
}
