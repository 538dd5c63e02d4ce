//! The outbox's job: one email to send, under an id that names what it is for, so arming it
//! twice (a retried request, a replayed event, the reconciler) finds the same job.

use chrono::{DateTime as Chrono, Utc};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, Document};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What an email is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Confirmation,
    Reschedule,
    Cancellation,
    Reminder,
    PasswordReset,
    Invitation,
    Verification,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Confirmation => "confirmation",
            JobKind::Reschedule => "reschedule",
            JobKind::Cancellation => "cancellation",
            JobKind::Reminder => "reminder",
            JobKind::PasswordReset => "password_reset",
            JobKind::Invitation => "invitation",
            JobKind::Verification => "verification",
        }
    }

    /// The booking email a booking's `pendingEmails` names (`sync` names none).
    pub fn of_booking_change(name: &str) -> Option<JobKind> {
        match name {
            "confirmation" => Some(JobKind::Confirmation),
            "reschedule" => Some(JobKind::Reschedule),
            "cancellation" => Some(JobKind::Cancellation),
            _ => None,
        }
    }

    /// Whether it carries a calendar file (and which method).
    pub fn calendar_method(self) -> Option<&'static str> {
        match self {
            JobKind::Confirmation | JobKind::Reschedule | JobKind::Reminder => Some("REQUEST"),
            JobKind::Cancellation => Some("CANCEL"),
            _ => None,
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its due time.
    Scheduled,
    /// Claimed by a worker (under a lease).
    Sending,
    /// Accepted by the SMTP server.
    Sent,
    /// Its last attempt failed; due again at `dueAt`.
    Failed,
    /// Failed `emails.max_attempts` times; not tried again.
    Dead,
    /// No longer warranted (the booking moved or was cancelled, the client opted out).
    Cancelled,
}

/// How far a claimed job got (kept while `sending`): a lease taken over at `submitting` may
/// already be in the recipient's mailbox, and is not sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Claimed,
    Submitting,
}

/// One email of the outbox (collection `email_jobs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailJob {
    /// `{booking}:{kind}[:{hours}h]:{startsAt ms}` for booking emails (a reschedule notice adds
    /// `:v{version}`, the version its move wrote), `{kind}:{digest}` for account emails.
    #[serde(rename = "_id")]
    pub id: String,
    pub kind: JobKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub therapist_id: Option<ObjectId>,
    /// The booking start this email is about (a moved booking's old jobs no longer match it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<DateTime>,
    /// Reminders: hours before the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<u32>,
    /// Account emails: the recipient and what the template shows (removed once final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<Document>,
    /// Account emails: the account (verification, reset) or client record (invitation) it is
    /// about, so whether one was ever queued can be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<ObjectId>,
    pub state: JobState,
    pub due_at: DateTime,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime>,
    /// Set when a worker stopped after handing it to SMTP and before recording the answer: it
    /// was not sent again, and may or may not have arrived.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A booking email's job id: the booking, the kind, the reminder hours, the start it refers to.
pub fn booking_job_id(booking: ObjectId, kind: JobKind, hours: Option<u32>, starts_at: DateTime) -> String {
    let at = starts_at.timestamp_millis();
    match hours {
        Some(h) => format!("{}:{}:{h}h:{at}", booking.to_hex(), kind.as_str()),
        None => format!("{}:{}:{at}", booking.to_hex(), kind.as_str()),
    }
}

impl EmailJob {
    /// A new scheduled job.
    pub fn scheduled(id: String, kind: JobKind, due_at: DateTime) -> Self {
        let now = DateTime::now();
        Self {
            id,
            kind,
            booking_id: None,
            therapist_id: None,
            refers_to: None,
            hours: None,
            to: None,
            language: None,
            vars: None,
            about: None,
            state: JobState::Scheduled,
            due_at,
            attempts: 0,
            last_error: None,
            phase: None,
            lease_owner: None,
            lease_until: None,
            sent_at: None,
            unconfirmed: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// The `Message-ID` of this job's email: the same for every attempt.
    pub fn message_id(&self, domain: &str) -> String {
        let local: String = self
            .id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
            .collect();
        format!("<{local}@{domain}>")
    }

    /// What `GET /api/bookings/:id/emails` shows of it.
    pub fn view(&self) -> Value {
        let time = |t: Option<DateTime>| t.map(crate::time::rfc3339);
        json!({
            "id": self.id,
            "kind": self.kind,
            "hours": self.hours,
            "dueAt": crate::time::rfc3339(self.due_at),
            "refersTo": time(self.refers_to),
            "state": self.state,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "sentAt": time(self.sent_at),
            "unconfirmed": self.unconfirmed,
            "updatedAt": crate::time::rfc3339(self.updated_at),
        })
    }
}

/// The wait before attempt `attempts + 1`: `base * 2^(attempts-1)`, capped, with up to 25%
/// jitter either way so failed jobs do not come back in lockstep.
pub fn backoff(attempts: u32, base_ms: u64, max_ms: u64, jitter: f64) -> chrono::Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let raw = base_ms.saturating_mul(1u64 << exp).min(max_ms) as f64;
    let jittered = raw * (1.0 + 0.25 * jitter.clamp(-1.0, 1.0));
    chrono::Duration::milliseconds(jittered.max(1.0) as i64)
}

/// When a reminder `hours` before `starts_at` is due.
pub fn reminder_due(starts_at: Chrono<Utc>, hours: u32) -> Chrono<Utc> {
    starts_at - chrono::Duration::hours(i64::from(hours))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_booking_the_kind_and_the_time() {
        let b = ObjectId::parse_str("65f000000000000000000001").unwrap();
        let at = DateTime::from_millis(1_700_000_000_000);
        assert_eq!(
            booking_job_id(b, JobKind::Reminder, Some(24), at),
            "65f000000000000000000001:reminder:24h:1700000000000"
        );
        assert_ne!(
            booking_job_id(b, JobKind::Reminder, Some(24), at),
            booking_job_id(b, JobKind::Reminder, Some(2), at)
        );
        let job = EmailJob::scheduled(
            booking_job_id(b, JobKind::Confirmation, None, at),
            JobKind::Confirmation,
            at,
        );
        assert_eq!(
            job.message_id("dhara.local"),
            "<65f000000000000000000001.confirmation.1700000000000@dhara.local>"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_bounded_jitter() {
        assert_eq!(backoff(1, 1000, 60_000, 0.0).num_milliseconds(), 1000);
        assert_eq!(backoff(3, 1000, 60_000, 0.0).num_milliseconds(), 4000);
        assert_eq!(backoff(40, 1000, 60_000, 0.0).num_milliseconds(), 60_000);
        assert_eq!(backoff(1, 1000, 60_000, 1.0).num_milliseconds(), 1250);
        assert_eq!(backoff(1, 1000, 60_000, -1.0).num_milliseconds(), 750);
    }
}
