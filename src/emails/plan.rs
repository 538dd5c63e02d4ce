//! Which emails a booking warrants, as a pure function of the booking, its client's reminder
//! hours and the clock: the arming side writes these jobs, and the sending side asks the same
//! question again just before sending, so a job that a later change made wrong is never sent.

use chrono::{DateTime as Chrono, Duration, Utc};
use mongodb::bson::DateTime;

use super::model::{booking_job_id, reminder_due, EmailJob, JobKind};
use crate::bookings::model::{Booking, BookingStatus};

/// The reminders `booking` warrants now: one per hour of `hours` whose due time is not more
/// than `max_late` past, for an upcoming booking that has not started.
pub fn reminders(booking: &Booking, hours: &[u32], now: Chrono<Utc>, max_late: Duration) -> Vec<EmailJob> {
    let starts = booking.starts_at.to_chrono();
    if booking.status != BookingStatus::Upcoming || starts <= now {
        return Vec::new();
    }
    let mut hours = hours.to_vec();
    hours.sort_unstable();
    hours.dedup();
    hours
        .into_iter()
        .filter(|h| reminder_due(starts, *h) + max_late >= now)
        .map(|h| {
            let id = booking_job_id(booking.id, JobKind::Reminder, Some(h), booking.starts_at);
            let due = DateTime::from_chrono(reminder_due(starts, h));
            let mut job = of_booking(EmailJob::scheduled(id, JobKind::Reminder, due), booking);
            job.hours = Some(h);
            job
        })
        .collect()
}

/// The notices a booking's `pendingEmails` asks for: each kind once, with the version of the
/// latest change that asked for it (entries are `{kind}@{version}`; those written before
/// versions were recorded have none). A later move makes an earlier move's notice moot.
pub fn requested_notices(pending: &[String]) -> Vec<(JobKind, Option<i64>)> {
    let mut out: Vec<(JobKind, Option<i64>)> = Vec::new();
    for entry in pending {
        let (name, version) = match entry.split_once('@') {
            Some((name, v)) => (name, v.parse::<i64>().ok()),
            None => (entry.as_str(), None),
        };
        let Some(kind) = JobKind::of_booking_change(name) else {
            continue;
        };
        match out.iter_mut().find(|(k, _)| *k == kind) {
            Some(seen) => seen.1 = seen.1.max(version),
            None => out.push((kind, version)),
        }
    }
    out
}

/// The notice a booking's change asks for (`pendingEmails`), due at once. A client's request
/// is acknowledged under its own id, so the therapist's approval confirms it again. A
/// reschedule notice's id names the version the move wrote (`change`): a booking moved back
/// to a time it had before gets a new notice, while arming the same move twice finds one job.
pub fn notice(booking: &Booking, kind: JobKind, change: Option<i64>, now: Chrono<Utc>) -> EmailJob {
    let mut id = booking_job_id(booking.id, kind, None, booking.starts_at);
    if kind == JobKind::Confirmation && booking.status == BookingStatus::Pending {
        id.push_str(":request");
    }
    if let (JobKind::Reschedule, Some(version)) = (kind, change) {
        id.push_str(&format!(":v{version}"));
    }
    of_booking(EmailJob::scheduled(id, kind, DateTime::from_chrono(now)), booking)
}

/// When a reminder job is meant to go out: the start it refers to minus its hours (its
/// `dueAt` moves with retries).
pub fn reminder_time(job: &EmailJob) -> Option<Chrono<Utc>> {
    match (job.kind, job.refers_to, job.hours) {
        (JobKind::Reminder, Some(at), Some(h)) => Some(reminder_due(at.to_chrono(), h)),
        _ => None,
    }
}

fn of_booking(mut job: EmailJob, booking: &Booking) -> EmailJob {
    job.booking_id = Some(booking.id);
    job.therapist_id = Some(booking.therapist_id);
    job.refers_to = Some(booking.starts_at);
    job
}

/// Why `job` must not be sent as the booking is now (None: send it).
pub fn unwarranted(
    job: &EmailJob,
    booking: &Booking,
    hours: &[u32],
    now: Chrono<Utc>,
    max_late: Duration,
) -> Option<&'static str> {
    let moved = job.refers_to != Some(booking.starts_at);
    let cancelled = booking.status == BookingStatus::Cancelled;
    match job.kind {
        JobKind::Reminder => {
            let wanted = reminders(booking, hours, now, max_late);
            if wanted.iter().any(|w| w.id == job.id) {
                None
            } else if cancelled {
                Some("the booking was cancelled")
            } else if moved {
                Some("the booking moved to another time")
            } else if booking.status != BookingStatus::Upcoming {
                Some("the booking is no longer upcoming")
            } else if booking.starts_at.to_chrono() <= now
                || reminder_time(job).is_some_and(|t| t + max_late < now)
            {
                Some("too late: the reminder time passed")
            } else {
                Some("the client no longer wants this reminder")
            }
        }
        JobKind::Confirmation => cancelled.then_some("the booking was cancelled"),
        JobKind::Reschedule if cancelled => Some("the booking was cancelled"),
        JobKind::Reschedule => moved.then_some("the booking moved again; a newer notice replaces it"),
        JobKind::Cancellation => (!cancelled).then_some("the booking is no longer cancelled"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bookings::model::PaymentStatus;
    use crate::money::{Cents, Currency};
    use chrono::TimeZone;
    use mongodb::bson::oid::ObjectId;

    fn booking(starts: Chrono<Utc>, status: BookingStatus) -> Booking {
        Booking {
            id: ObjectId::new(),
            therapist_id: ObjectId::new(),
            client_id: ObjectId::new(),
            date: String::new(),
            start_time: String::new(),
            end_time: String::new(),
            starts_at: DateTime::from_chrono(starts),
            ends_at: DateTime::from_chrono(starts + Duration::hours(1)),
            timezone: "Europe/Madrid".into(),
            status,
            therapy_type: None,
            therapy_duration: 60,
            amount_cents: Cents::default(),
            currency: Currency::default(),
            location: None,
            notes: None,
            client_notes: None,
            meeting_link: None,
            payment_status: PaymentStatus::Pending,
            payment_method: None,
            buffer_minutes: 0,
            series_id: None,
            cancellation: None,
            claim_tokens: Vec::new(),
            pending_emails: Vec::new(),
            version: 1,
            created_by: "therapist".into(),
            created_at: DateTime::now(),
            updated_at: DateTime::now(),
        }
    }

    #[test]
    fn reminders_are_instants_before_the_start_across_a_dst_change() {
        // Madrid springs forward on 2026-03-29 at 02:00 -> 03:00. A 10:00 session that Monday
        // is 08:00 UTC; its 24 h reminder is 24 real hours earlier, Sunday 08:00 UTC, which is
        // 10:00 local on the short day too.
        let madrid = chrono_tz::Europe::Madrid;
        let starts = madrid
            .with_ymd_and_hms(2026, 3, 30, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let b = booking(starts, BookingStatus::Upcoming);
        let now = Utc.with_ymd_and_hms(2026, 3, 20, 0, 0, 0).unwrap();
        let jobs = reminders(&b, &[2, 24, 24], now, Duration::minutes(30));
        assert_eq!(jobs.len(), 2, "duplicated hours arm once");
        let due: Vec<_> = jobs.iter().map(|j| j.due_at.to_chrono()).collect();
        assert_eq!(due[0], Utc.with_ymd_and_hms(2026, 3, 30, 6, 0, 0).unwrap());
        assert_eq!(due[1], Utc.with_ymd_and_hms(2026, 3, 29, 8, 0, 0).unwrap());
        assert_eq!(due[1].with_timezone(&madrid).format("%H:%M").to_string(), "10:00");
    }

    #[test]
    fn only_upcoming_future_bookings_with_times_not_long_past_get_reminders() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let late = Duration::minutes(30);
        let soon = booking(now + Duration::hours(3), BookingStatus::Upcoming);
        let hours: Vec<u32> = reminders(&soon, &[24, 2], now, late)
            .iter()
            .filter_map(|j| j.hours)
            .collect();
        assert_eq!(hours, vec![2], "the 24 h reminder is long past");
        let just_late = booking(
            now + Duration::hours(2) - Duration::minutes(10),
            BookingStatus::Upcoming,
        );
        assert_eq!(
            reminders(&just_late, &[2], now, late).len(),
            1,
            "10 minutes late is still sent"
        );
        for status in [
            BookingStatus::Pending,
            BookingStatus::Cancelled,
            BookingStatus::Completed,
        ] {
            assert!(reminders(&booking(now + Duration::hours(5), status), &[2], now, late).is_empty());
        }
        assert!(reminders(
            &booking(now - Duration::minutes(1), BookingStatus::Upcoming),
            &[2],
            now,
            late
        )
        .is_empty());
    }

    #[test]
    fn a_moved_or_cancelled_booking_makes_its_old_jobs_unwarranted() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let late = Duration::minutes(30);
        let mut b = booking(now + Duration::hours(30), BookingStatus::Upcoming);
        let reminder = reminders(&b, &[24], now, late).remove(0);
        let confirmation = notice(&b, JobKind::Confirmation, None, now);
        assert_eq!(unwarranted(&reminder, &b, &[24], now, late), None);
        assert!(
            unwarranted(&reminder, &b, &[2], now, late).is_some(),
            "preference removed"
        );
        b.starts_at = DateTime::from_chrono(now + Duration::hours(50));
        assert_eq!(
            unwarranted(&reminder, &b, &[24], now, late),
            Some("the booking moved to another time")
        );
        assert_eq!(
            unwarranted(&confirmation, &b, &[24], now, late),
            None,
            "confirmed at its new time"
        );
        b.status = BookingStatus::Cancelled;
        assert!(unwarranted(&confirmation, &b, &[24], now, late).is_some());
        let cancel = notice(&b, JobKind::Cancellation, None, now);
        assert_eq!(unwarranted(&cancel, &b, &[24], now, late), None);
    }

    #[test]
    fn each_move_is_its_own_notice_and_the_latest_request_wins() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let pending: Vec<String> = ["confirmation", "reschedule@2", "sync@3", "reschedule@4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            requested_notices(&pending),
            vec![(JobKind::Confirmation, None), (JobKind::Reschedule, Some(4))]
        );
        assert_eq!(
            requested_notices(&["reschedule".to_owned()]),
            vec![(JobKind::Reschedule, None)],
            "an entry written before versions were recorded"
        );
        // Moved A -> B (version 2), back to A, then to B again (version 4): two notices at B.
        let b = booking(now + Duration::hours(30), BookingStatus::Upcoming);
        let first = notice(&b, JobKind::Reschedule, Some(2), now);
        let again = notice(&b, JobKind::Reschedule, Some(4), now);
        assert_ne!(first.id, again.id);
        assert_eq!(
            first.id,
            notice(&b, JobKind::Reschedule, Some(2), now).id,
            "deterministic"
        );
        assert!(first.id.ends_with(":v2"), "{}", first.id);
    }
}
