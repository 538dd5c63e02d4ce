//! Domain events: what a write changed, told once, after the write, by the one service function
//! that performs each action. Side effects that follow from a change (the therapist's
//! notifications, emails, and later cache invalidation and reminders) subscribe here instead of
//! being called from the writers, so a new consequence of "a booking changed" is one subscriber,
//! and no writer can forget it.
//!
//! Delivery is in process and awaited: `emit` returns after every subscriber has handled the
//! event, so what a subscriber records is visible when the request that caused it answers.
//! A subscriber's failure is its own to log; it never undoes or fails the write it follows.
//! Account emails are therefore not events: they go through [`EmailQueue`], which answers.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use mongodb::bson::oid::ObjectId;

/// Something that reacts to domain events.
pub trait Subscriber: Send + Sync {
    /// Handles one event. Must not fail the caller: errors are logged by the subscriber.
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()>;
}

/// The subscribers of one application, in the order they are told.
#[derive(Clone, Default)]
pub struct EventBus {
    subscribers: Vec<Arc<dyn Subscriber>>,
}

impl EventBus {
    /// A bus with `subscribers`.
    pub fn new(subscribers: Vec<Arc<dyn Subscriber>>) -> Self {
        Self { subscribers }
    }

    /// Tells every subscriber about `event`, one after the other.
    pub async fn emit(&self, event: Event) {
        for s in &self.subscribers {
            s.handle(&event).await;
        }
    }
}

/// Every change the rest of the service may react to.
#[derive(Debug, Clone)]
pub enum Event {
    Booking(BookingChanged),
    Payment(PaymentChanged),
    Review(ReviewChanged),
    Client(ClientChanged),
    Availability(AvailabilityChanged),
    Profile(ProfileChanged),
    /// A user marked notifications read.
    NotificationsRead(NotificationsRead),
}

impl Event {
    /// The therapist whose practice changed (none for account emails).
    pub fn therapist(&self) -> Option<ObjectId> {
        match self {
            Event::Booking(e) => Some(e.therapist),
            Event::Payment(e) => Some(e.therapist),
            Event::Review(e) => Some(e.therapist),
            Event::Client(e) => Some(e.therapist),
            Event::Availability(e) => Some(e.therapist),
            Event::Profile(e) => Some(e.therapist),
            Event::NotificationsRead(_) => None,
        }
    }
}

/// What happened to one or more bookings of a therapist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingChange {
    /// Created by the therapist (one booking or a series).
    Created,
    /// Requested by a client from the booking site.
    Requested,
    /// Moved to another time.
    Rescheduled,
    /// Cancelled (by the therapist or, when `by_client`, by the client).
    Cancelled,
    /// Marked completed.
    Completed,
    /// Marked no-show.
    NoShow,
    /// Another status change (confirmed, pending, in progress).
    StatusChanged,
    /// Details changed without moving it (notes, link, price, type).
    Updated,
    /// Its payment state changed (a payment was recorded, refunded or removed).
    Paid,
    /// Removed.
    Deleted,
}

/// A change to bookings: `bookings` holds every booking the change touched (a series creates
/// several), the first being the one the change is reported by.
#[derive(Debug, Clone)]
pub struct BookingChanged {
    pub therapist: ObjectId,
    pub client: ObjectId,
    pub bookings: Vec<ObjectId>,
    pub kind: BookingChange,
    /// Whether the client made the change.
    pub by_client: bool,
    /// The client's name when the writer had it at hand.
    pub client_name: Option<String>,
    /// Local date and start time of the first booking (after the change).
    pub date: String,
    pub time: String,
    /// The first booking's version after the change.
    pub version: i64,
}

/// What happened to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentChange {
    Received,
    StatusChanged,
    /// Part or all of it was refunded (`amount_cents` is then the refund's amount).
    Refunded,
    Updated,
    Deleted,
}

/// A change to one payment.
#[derive(Debug, Clone)]
pub struct PaymentChanged {
    pub therapist: ObjectId,
    pub payment: ObjectId,
    pub booking: Option<ObjectId>,
    pub client: Option<ObjectId>,
    pub kind: PaymentChange,
    pub amount_cents: i64,
    /// ISO code, e.g. `EUR`.
    pub currency: String,
}

/// What happened to a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewChange {
    Received,
    Responded,
    Updated,
}

/// A change to one review.
#[derive(Debug, Clone)]
pub struct ReviewChanged {
    pub therapist: ObjectId,
    pub review: ObjectId,
    pub kind: ReviewChange,
    pub client_name: String,
    pub rating: i64,
}

/// What happened to a client record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientChange {
    Created,
    Updated,
    Deleted,
    /// A client login proved the record's email and was linked to it.
    Linked {
        name: String,
        email: String,
    },
}

/// A change to one client record of a therapist.
#[derive(Debug, Clone)]
pub struct ClientChanged {
    pub therapist: ObjectId,
    pub client: ObjectId,
    pub kind: ClientChange,
}

/// What part of a therapist's availability changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvailabilityChange {
    Schedule,
    Blocks,
    Absences,
}

/// A change to a therapist's weekly schedule, blocks or absences.
#[derive(Debug, Clone)]
pub struct AvailabilityChanged {
    pub therapist: ObjectId,
    pub kind: AvailabilityChange,
}

/// A change to a therapist's profile (or what it embeds: work locations, rates).
#[derive(Debug, Clone)]
pub struct ProfileChanged {
    pub therapist: ObjectId,
}

/// A user marked one or all of their notifications read.
#[derive(Debug, Clone)]
pub struct NotificationsRead {
    pub user: ObjectId,
}

/// Why an email is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    Verification,
    PasswordReset,
    Invitation,
}

impl EmailKind {
    /// Its name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::Verification => "verification",
            EmailKind::PasswordReset => "password_reset",
            EmailKind::Invitation => "invitation",
        }
    }
}

/// An account email to send (the request that asked for it does not wait for delivery): the
/// outbox stores it with what its template needs and a worker sends it. Not an event: it is
/// queued through [`EmailQueue`], whose failure fails the request. It is defined here because
/// the modules that ask for it (auth, clients) sit below the outbox (`emails`).
#[derive(Debug, Clone)]
pub struct EmailRequested {
    pub kind: EmailKind,
    pub to: String,
    /// Language of the recipient (`es` when unknown).
    pub language: Option<String>,
    /// What the template shows (`name`, `link`, `minutes`, `hours`, `therapist_name`).
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// What it is about: the account (verification, reset) or the client record (invitation).
    pub about: ObjectId,
}

/// Where account emails are queued (the outbox). Unlike a subscriber it answers: a request that
/// asks for an email succeeds only once its job is stored, so no link is lost behind a 200.
pub trait EmailQueue: Send + Sync {
    /// Stores the email's job (the same email queued twice is one job).
    fn queue<'a>(&'a self, email: &'a EmailRequested) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Whether an email of `kind` about `about` was ever stored (read from the primary).
    fn ever_queued(&self, kind: EmailKind, about: ObjectId) -> BoxFuture<'_, mongodb::error::Result<bool>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Record(Mutex<Vec<String>>);

    impl Subscriber for Record {
        fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                if let Ok(mut seen) = self.0.lock() {
                    seen.push(format!("{:?}", event.therapist()));
                }
            })
        }
    }

    #[tokio::test]
    async fn every_subscriber_hears_each_event_once_in_order() {
        let a = Arc::new(Record(Mutex::new(Vec::new())));
        let b = Arc::new(Record(Mutex::new(Vec::new())));
        let bus = EventBus::new(vec![a.clone(), b.clone()]);
        let t = ObjectId::new();
        bus.emit(Event::Profile(ProfileChanged { therapist: t })).await;
        bus.emit(Event::NotificationsRead(NotificationsRead { user: t }))
            .await;
        for r in [a, b] {
            let seen = r.0.lock().map(|s| s.clone()).unwrap_or_default();
            assert_eq!(seen, vec![format!("{:?}", Some(t)), "None".to_owned()]);
        }
    }
}
