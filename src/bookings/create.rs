//! Creating bookings (one, or the occurrences of a weekly series): their time claimed under one
//! attempt token, then the bookings written, all or nothing, then told. A keyed creation (its
//! booking ids derived from its `Idempotency-Key`) takes over the claims an earlier attempt of
//! the same request left, and answers the bookings such an attempt wrote meanwhile.

use mongodb::bson::oid::ObjectId;

use super::claims::{buckets_of, Claimed, Claims};
use super::model::Booking;
use super::service::{changed, check_deadline, check_not_too_old, claims, slot_taken};
use super::store::BookingStore;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::events::{BookingChange, Event};

/// Creates `bookings` (one, or a series) atomically against every other claim of their time,
/// then tells it: requested when a client booked, created otherwise. `keyed`: their ids derive
/// from an `Idempotency-Key`, so claims naming them were left by an earlier attempt of the same
/// request, and are taken over (`claims/takeover.rs`).
pub async fn create_all(
    state: &AppState,
    mut bookings: Vec<Booking>,
    client_name: Option<String>,
    keyed: bool,
) -> ApiResult<Vec<Booking>> {
    let claims = claims(state);
    let token = ObjectId::new();
    let started = std::time::Instant::now();
    for b in &bookings {
        check_not_too_old(&claims, b.ends_at.to_chrono())?;
    }
    for b in &mut bookings {
        b.claim_tokens = vec![token];
    }
    for b in &bookings {
        let claimed = if keyed {
            claims
                .claim_keyed(b.therapist_id, b.id, token, &buckets_of(b))
                .await
        } else {
            claims.claim(b.therapist_id, b.id, token, &buckets_of(b)).await
        };
        match claimed {
            Ok(Claimed::Ok) => {}
            Ok(refused) => {
                claims.release_attempt(token).await?;
                return Err(if refused == Claimed::Contended {
                    another_attempt_writing()
                } else {
                    slot_taken(state, &bookings, None).await
                });
            }
            Err(e) => {
                let _ = claims.release_attempt(token).await;
                return Err(e.into());
            }
        }
    }
    check_deadline(&claims, token, started).await?;
    if let Err(e) = BookingStore::new(&state.db).insert_all(&bookings).await {
        return written_by_another_attempt(state, &claims, &bookings, token, e).await;
    }
    if let Some(first) = bookings.first() {
        let kind = if first.created_by == "client" {
            BookingChange::Requested
        } else {
            BookingChange::Created
        };
        let mut event = changed(first, kind, client_name);
        event.bookings = bookings.iter().map(|b| b.id).collect();
        state.events.emit(Event::Booking(event)).await;
    }
    Ok(bookings)
}

/// After `bookings` failed to be inserted (`e`): when every failure was an id already taken,
/// another attempt of the same keyed request (a stalled one, woken up) wrote them, held by
/// claims naming them, and this attempt answers them. Otherwise what this attempt wrote is
/// removed before letting go of its time; if that fails, or another attempt adopted one of
/// them, the claims stay: they protect the time until the reaper sees no booking behind them.
async fn written_by_another_attempt(
    state: &AppState,
    claims: &Claims,
    bookings: &[Booking],
    token: ObjectId,
    e: mongodb::error::Error,
) -> ApiResult<Vec<Booking>> {
    let store = BookingStore::new(&state.db);
    let ids: Vec<ObjectId> = bookings.iter().map(|b| b.id).collect();
    let taken = crate::db::only_duplicate_keys(&e);
    if let (true, Some(first)) = (taken, bookings.first()) {
        // Named by this attempt's token too before they are read: the attempt that wrote them
        // no longer removes them, so what is answered here stays written.
        store.adopt(&ids, token).await?;
        let scope = crate::db::OwnerScope::of(first.therapist_id);
        let written = store.get_ids(&scope, &ids).await?;
        if written.len() == ids.len() {
            return Ok(written);
        }
    }
    if store.delete_written(&ids, token).await.unwrap_or(false) {
        claims.release_attempt(token).await?;
    }
    Err(if taken {
        another_attempt_writing()
    } else {
        e.into()
    })
}

/// 503: another attempt of the same keyed request is writing the same bookings right now; a
/// retry finds what it wrote (and nothing is stored under the key meanwhile).
fn another_attempt_writing() -> ApiError {
    ApiError::Unavailable {
        code: "IDEMPOTENCY_IN_PROGRESS",
        message: "Another attempt of this request is writing it; retry shortly".into(),
        retry_after_secs: 1,
    }
}
