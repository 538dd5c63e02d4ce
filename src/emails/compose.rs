//! Turning a job into an email: its template (files under `templates/email/<lang>/`, rendered by
//! minijinja; the `.txt` file's first line is the subject), its data, and for booking emails the
//! `.ics` calendar file (UID = booking id, SEQUENCE = booking version).

use std::sync::OnceLock;

use chrono::Utc;
use minijinja::Environment;
use serde_json::{json, Value};

use super::model::{EmailJob, JobKind};
use crate::bookings::model::Booking;
use crate::clients::model::Client;
use crate::mail::ics::{CalendarEvent, Method};
use crate::mail::{CalendarFile, Outgoing};

include!(concat!(env!("OUT_DIR"), "/email_templates.rs"));

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "email template does not parse");
            }
        }
        env
    })
}

/// The languages with templates; anything else gets Spanish.
fn language(wanted: Option<&str>) -> &'static str {
    match wanted.map(|l| l.trim().to_ascii_lowercase()) {
        Some(l) if l == "en" || l.starts_with("en-") || l.starts_with("en_") => "en",
        _ => "es",
    }
}

/// Subject, text and HTML of `kind` in `lang` with `vars`.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders `kind`'s templates in the recipient's language.
pub fn render(kind: JobKind, lang: Option<&str>, vars: &Value) -> anyhow::Result<Rendered> {
    let lang = language(lang);
    let env = templates();
    let text = env
        .get_template(&format!("{lang}/{}.txt", kind.as_str()))?
        .render(vars)?;
    let html = env
        .get_template(&format!("{lang}/{}.html", kind.as_str()))?
        .render(vars)?;
    let (first, body) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    let subject = first
        .strip_prefix("Subject:")
        .ok_or_else(|| anyhow::anyhow!("template {lang}/{} lacks its Subject line", kind.as_str()))?
        .trim()
        .to_owned();
    Ok(Rendered {
        subject,
        text: body.trim_start_matches(['\r', '\n']).to_owned(),
        html,
    })
}

/// What a booking's email is about.
pub struct BookingContext<'a> {
    pub booking: &'a Booking,
    pub client: &'a Client,
    pub therapist_name: &'a str,
    /// The therapist's address, as the calendar event's organizer.
    pub organizer_email: &'a str,
}

fn booking_vars(job: &EmailJob, c: &BookingContext) -> Value {
    let b = c.booking;
    let cancellation = b.cancellation.as_ref();
    json!({
        "client_name": c.client.name,
        "therapist_name": c.therapist_name,
        "date": b.date,
        "start_time": b.start_time,
        "end_time": b.end_time,
        "timezone": b.timezone,
        "location": b.location,
        "meeting_link": b.meeting_link,
        "pending": b.status == crate::bookings::model::BookingStatus::Pending,
        "hours": job.hours,
        "reason": cancellation.and_then(|c| c.reason.clone()),
        "cancelled_by_client": cancellation.is_some_and(|c| c.cancelled_by == "client"),
    })
}

/// The email of booking job `job` to the client of `c`, as the booking is now.
pub fn booking_email(job: &EmailJob, c: &BookingContext, to: &str, domain: &str) -> anyhow::Result<Outgoing> {
    let rendered = render(
        job.kind,
        c.client.preferences.language.as_deref(),
        &booking_vars(job, c),
    )?;
    let calendar = job.kind.calendar_method().map(|method| {
        let b = c.booking;
        // The booking's id, exactly: the one event every later email of the booking updates.
        let uid = b.id.to_hex();
        let event = CalendarEvent {
            uid: &uid,
            sequence: b.version,
            method: if method == "CANCEL" {
                Method::Cancel
            } else {
                Method::Request
            },
            starts_at: b.starts_at.to_chrono(),
            ends_at: b.ends_at.to_chrono(),
            summary: &rendered.subject,
            description: b.meeting_link.as_deref().unwrap_or(""),
            location: b.location.as_deref().or(b.meeting_link.as_deref()),
            organizer: (c.therapist_name, c.organizer_email),
            attendee: (&c.client.name, to),
            stamp: Utc::now(),
        };
        CalendarFile {
            method,
            body: event.render(),
        }
    });
    Ok(Outgoing {
        to: to.to_owned(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        message_id: job.message_id(domain),
        calendar,
    })
}

/// The email of account job `job` (its recipient and data are stored with it).
pub fn account_email(job: &EmailJob, domain: &str) -> anyhow::Result<Outgoing> {
    let to = job
        .to
        .clone()
        .ok_or_else(|| anyhow::anyhow!("account email without a recipient"))?;
    let vars = job
        .vars
        .clone()
        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
        .unwrap_or_else(|| json!({}));
    let rendered = render(job.kind, job.language.as_deref(), &vars)?;
    Ok(Outgoing {
        to,
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        message_id: job.message_id(domain),
        calendar: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [JobKind; 7] = [
        JobKind::Confirmation,
        JobKind::Reschedule,
        JobKind::Cancellation,
        JobKind::Reminder,
        JobKind::PasswordReset,
        JobKind::Invitation,
        JobKind::Verification,
    ];

    #[test]
    fn every_kind_renders_a_subject_text_and_html_in_both_languages() {
        let vars = json!({
            "client_name": "Ana <b>", "therapist_name": "Dr. Ruiz", "date": "2026-03-29",
            "start_time": "10:00", "end_time": "11:00", "timezone": "Europe/Madrid",
            "location": "Calle Mayor 1", "meeting_link": null, "pending": false, "hours": 24,
            "reason": null, "cancelled_by_client": false,
            "name": "Ana", "link": "https://app.example/reset?token=abc123", "minutes": 30,
        });
        for lang in ["es", "en"] {
            for kind in KINDS {
                let r = render(kind, Some(lang), &vars).unwrap_or_else(|e| panic!("{lang}/{kind:?}: {e:#}"));
                assert!(
                    !r.subject.is_empty() && !r.subject.contains('\n'),
                    "{lang}/{kind:?}"
                );
                assert!(!r.text.is_empty() && r.html.contains("<html"), "{lang}/{kind:?}");
                assert!(!r.html.contains("<b>"), "HTML escapes data");
                if matches!(
                    kind,
                    JobKind::PasswordReset | JobKind::Invitation | JobKind::Verification
                ) {
                    assert!(r.text.contains("token=abc123"), "{lang}/{kind:?} shows its link");
                }
            }
        }
    }

    #[test]
    fn spanish_unless_the_client_reads_english() {
        assert_eq!(language(None), "es");
        assert_eq!(language(Some("fr")), "es");
        assert_eq!(language(Some("EN-gb")), "en");
        let vars = json!({ "name": "Ana", "link": "https://x/y?token=t", "minutes": 30 });
        let es = render(JobKind::PasswordReset, None, &vars).unwrap();
        let en = render(JobKind::PasswordReset, Some("en"), &vars).unwrap();
        assert_ne!(es.subject, en.subject);
    }
}
