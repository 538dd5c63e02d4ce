//! Turns domain events into the therapist's notifications: the one place that decides which
//! changes are worth telling.

use futures_util::future::BoxFuture;
use mongodb::bson::oid::ObjectId;

use super::{record, Notice};
use crate::db::Db;
use crate::events::{BookingChange, ClientChange, Event, PaymentChange, ReviewChange, Subscriber};
use crate::money::Cents;

/// Records a notification for the changes a therapist is told about.
pub struct Notifier {
    db: Db,
}

impl Notifier {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// The notice an event warrants, and for whom.
pub fn notice_for(event: &Event) -> Option<(ObjectId, Notice)> {
    match event {
        Event::Booking(e) => {
            let booking = *e.bookings.first()?;
            let (date, time) = (e.date.clone(), e.time.clone());
            let notice = match e.kind {
                BookingChange::Created => Notice::BookingCreated {
                    booking,
                    client: e.client_name.clone().unwrap_or_default(),
                    sessions: e.bookings.len(),
                    date,
                    time,
                },
                BookingChange::Requested => Notice::BookingRequested { booking, date, time },
                BookingChange::Cancelled => Notice::BookingCancelled {
                    booking,
                    by_client: e.by_client,
                    date,
                    time,
                },
                _ => return None,
            };
            Some((e.therapist, notice))
        }
        Event::Payment(e) if e.kind == PaymentChange::Received => {
            let notice = Notice::PaymentReceived {
                payment: e.payment,
                amount: Cents(e.amount_cents).to_major_string(),
                currency: e.currency.clone(),
            };
            Some((e.therapist, notice))
        }
        Event::Review(e) if e.kind == ReviewChange::Received => {
            let notice = Notice::ReviewReceived {
                review: e.review,
                client: e.client_name.clone(),
                rating: e.rating,
            };
            Some((e.therapist, notice))
        }
        Event::Client(e) => match &e.kind {
            ClientChange::Linked { name, email } => Some((
                e.therapist,
                Notice::ClientLinked {
                    client: e.client,
                    name: name.clone(),
                    email: email.clone(),
                },
            )),
            _ => None,
        },
        _ => None,
    }
}

impl Subscriber for Notifier {
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some((user, notice)) = notice_for(event) {
                record(&self.db, user, notice).await;
            }
        })
    }
}
