//! What a notification says, typed: each kind with the values it needs, rendered in the reader's
//! language (Spanish by default, English) when it is read, so the same record reads right in
//! either language. Ids in `data` are plain strings.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};

/// The languages notifications are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Es,
    En,
}

impl Lang {
    /// The first supported language of an `Accept-Language` header; Spanish otherwise.
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let Some(h) = header else {
            return Lang::Es;
        };
        for part in h.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("es") {
                return Lang::Es;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Es
    }
}

/// One thing that happened in a practice, worth telling its therapist.
#[derive(Debug, Clone)]
pub enum Notice {
    BookingCreated {
        booking: ObjectId,
        client: String,
        sessions: usize,
        date: String,
        time: String,
    },
    BookingRequested {
        booking: ObjectId,
        date: String,
        time: String,
    },
    BookingCancelled {
        booking: ObjectId,
        by_client: bool,
        date: String,
        time: String,
    },
    PaymentReceived {
        payment: ObjectId,
        amount: String,
        currency: String,
    },
    ReviewReceived {
        review: ObjectId,
        client: String,
        rating: i64,
    },
    ClientLinked {
        client: ObjectId,
        name: String,
        email: String,
    },
}

impl Notice {
    /// The stored `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::BookingCreated { .. } => "booking_created",
            Notice::BookingRequested { .. } => "booking_requested",
            Notice::BookingCancelled { .. } => "booking_cancelled",
            Notice::PaymentReceived { .. } => "payment_received",
            Notice::ReviewReceived { .. } => "review_received",
            Notice::ClientLinked { .. } => "client_linked",
        }
    }

    /// The stored `data`: ids as plain strings, and every value a rendering needs.
    pub fn data(&self) -> Document {
        match self {
            Notice::BookingCreated {
                booking,
                client,
                sessions,
                date,
                time,
            } => doc! {
                "bookingId": booking.to_hex(), "clientName": client, "sessions": *sessions as i64, "date": date, "time": time,
            },
            Notice::BookingRequested { booking, date, time } => {
                doc! { "bookingId": booking.to_hex(), "date": date, "time": time }
            }
            Notice::BookingCancelled {
                booking,
                by_client,
                date,
                time,
            } => doc! {
                "bookingId": booking.to_hex(), "byClient": by_client, "date": date, "time": time,
            },
            Notice::PaymentReceived {
                payment,
                amount,
                currency,
            } => {
                doc! { "paymentId": payment.to_hex(), "amount": amount, "currency": currency }
            }
            Notice::ReviewReceived {
                review,
                client,
                rating,
            } => {
                doc! { "reviewId": review.to_hex(), "clientName": client, "rating": rating }
            }
            Notice::ClientLinked { client, name, email } => {
                doc! { "clientId": client.to_hex(), "clientName": name, "email": email }
            }
        }
    }
}

/// Title and message of a stored notification of `kind` with `data`, in `lang`. Unknown kinds
/// keep what was stored.
pub fn render(kind: &str, data: &Document, lang: Lang) -> Option<(String, String)> {
    let s = |k: &str| data.get_str(k).unwrap_or_default().to_owned();
    let n = |k: &str| data.get(k).and_then(crate::db::as_i64).unwrap_or(0);
    let es = lang == Lang::Es;
    Some(match kind {
        "booking_created" => {
            let sessions = n("sessions");
            let (date, time, client) = (s("date"), s("time"), s("clientName"));
            let message = match (es, sessions > 1) {
                (true, true) => format!("{client}: {sessions} sesiones desde el {date} a las {time}"),
                (true, false) => format!("{client}: sesión el {date} a las {time}"),
                (false, true) => format!("{client}: {sessions} sessions from {date} at {time}"),
                (false, false) => format!("{client}: session on {date} at {time}"),
            };
            (if es { "Nueva cita" } else { "New booking" }.to_owned(), message)
        }
        "booking_requested" => {
            let (date, time) = (s("date"), s("time"));
            if es {
                (
                    "Nueva solicitud de cita".to_owned(),
                    format!("Un cliente ha pedido el {date} a las {time}"),
                )
            } else {
                (
                    "New booking request".to_owned(),
                    format!("A client asked for {date} at {time}"),
                )
            }
        }
        "booking_cancelled" => {
            let (date, time) = (s("date"), s("time"));
            let by_client = data.get_bool("byClient").unwrap_or(false);
            let message = match (es, by_client) {
                (true, true) => format!("Un cliente ha cancelado la sesión del {date} a las {time}"),
                (true, false) => format!("Has cancelado la sesión del {date} a las {time}"),
                (false, true) => format!("A client cancelled the session of {date} at {time}"),
                (false, false) => format!("You cancelled the session of {date} at {time}"),
            };
            (
                if es { "Cita cancelada" } else { "Booking cancelled" }.to_owned(),
                message,
            )
        }
        "payment_received" => {
            let (amount, currency) = (s("amount"), s("currency"));
            if es {
                (
                    "Pago recibido".to_owned(),
                    format!("Pago de {amount} {currency} recibido"),
                )
            } else {
                (
                    "Payment received".to_owned(),
                    format!("Payment of {amount} {currency} received"),
                )
            }
        }
        "review_received" => {
            let (client, rating) = (
                s("clientName"),
                data.get("rating").and_then(crate::db::as_i64).unwrap_or(0),
            );
            if es {
                (
                    "Nueva reseña".to_owned(),
                    format!("{client} ha valorado una sesión con {rating} de 5"),
                )
            } else {
                (
                    "New review".to_owned(),
                    format!("{client} rated a session {rating} out of 5"),
                )
            }
        }
        "client_linked" => {
            let (name, email) = (s("clientName"), s("email"));
            if es {
                (
                    "Cuenta de cliente vinculada".to_owned(),
                    format!("{name} ha confirmado {email} y ya ve sus sesiones contigo"),
                )
            } else {
                (
                    "Client account linked".to_owned(),
                    format!("{name} confirmed {email} and can now see their sessions with you"),
                )
            }
        }
        _ => return None,
    })
}

/// `data` with every ObjectId as its hex string (records written before ids were strings).
pub fn plain_ids(data: &Document) -> Document {
    data.iter()
        .map(|(k, v)| {
            let v = match v {
                mongodb::bson::Bson::ObjectId(id) => mongodb::bson::Bson::String(id.to_hex()),
                mongodb::bson::Bson::Document(d) => mongodb::bson::Bson::Document(plain_ids(d)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_renders_in_both_languages_with_plain_ids() {
        let id = ObjectId::new();
        let all = [
            Notice::BookingCreated {
                booking: id,
                client: "Ana".into(),
                sessions: 3,
                date: "2031-01-02".into(),
                time: "10:00".into(),
            },
            Notice::BookingRequested {
                booking: id,
                date: "2031-01-02".into(),
                time: "10:00".into(),
            },
            Notice::BookingCancelled {
                booking: id,
                by_client: true,
                date: "2031-01-02".into(),
                time: "10:00".into(),
            },
            Notice::PaymentReceived {
                payment: id,
                amount: "50.00".into(),
                currency: "EUR".into(),
            },
            Notice::ReviewReceived {
                review: id,
                client: "Ana".into(),
                rating: 5,
            },
            Notice::ClientLinked {
                client: id,
                name: "Ana".into(),
                email: "a@b.co".into(),
            },
        ];
        for n in all {
            let data = n.data();
            assert!(data.values().all(|v| v.as_object_id().is_none()), "{data}");
            let (es_title, es) = render(n.kind(), &data, Lang::Es).unwrap();
            let (en_title, en) = render(n.kind(), &data, Lang::En).unwrap();
            assert_ne!(es_title, en_title);
            assert_ne!(es, en);
        }
        assert_eq!(Lang::from_accept_language(Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("de-DE,es;q=0.5")), Lang::Es);
        assert_eq!(Lang::from_accept_language(None), Lang::Es);
        let legacy = doc! { "bookingId": id, "nested": { "x": id } };
        assert_eq!(plain_ids(&legacy).get_str("bookingId").unwrap(), id.to_hex());
    }
}
