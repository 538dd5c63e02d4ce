//! iCalendar (RFC 5545) attachments for booking emails: `METHOD:REQUEST` for a confirmation,
//! a reschedule or a reminder, `METHOD:CANCEL` for a cancellation. The event's `UID` is the
//! booking's id and its `SEQUENCE` the booking's version, so a calendar updates (or removes)
//! the one event instead of adding another. Times are written in UTC (`...Z`): the instants are
//! the booking's stored ones, computed from the therapist's local time with its zone's rules, so
//! they are right across daylight-saving changes without a `VTIMEZONE`.

use chrono::{DateTime, Utc};

/// What the calendar is asked to do with the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Add or update it.
    Request,
    /// Remove it.
    Cancel,
}

/// One booking as a calendar event.
#[derive(Debug, Clone)]
pub struct CalendarEvent<'a> {
    /// The booking's id (stable across updates).
    pub uid: &'a str,
    /// The booking's version: higher wins in the client's calendar.
    pub sequence: i64,
    pub method: Method,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub summary: &'a str,
    pub description: &'a str,
    pub location: Option<&'a str>,
    /// The therapist's practice, as organizer.
    pub organizer: (&'a str, &'a str),
    /// The client, as attendee.
    pub attendee: (&'a str, &'a str),
    /// When the message is written (`DTSTAMP`).
    pub stamp: DateTime<Utc>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a TEXT value (RFC 5545 3.3.11).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value (a display name), quoted when it holds a delimiter; quotes cannot be
/// escaped in iCalendar, so they are dropped.
fn param(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    if clean.contains([';', ':', ',']) {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

/// Folds a content line at 75 octets (continuation lines start with a space), never inside a
/// UTF-8 character, and ends it with CRLF.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

impl CalendarEvent<'_> {
    /// The `text/calendar` body.
    pub fn render(&self) -> String {
        let (method, status) = match self.method {
            Method::Request => ("REQUEST", "CONFIRMED"),
            Method::Cancel => ("CANCEL", "CANCELLED"),
        };
        let mut lines = vec![
            "BEGIN:VCALENDAR".to_owned(),
            "VERSION:2.0".to_owned(),
            "PRODID:-//Dhara//Bookings//ES".to_owned(),
            "CALSCALE:GREGORIAN".to_owned(),
            format!("METHOD:{method}"),
            "BEGIN:VEVENT".to_owned(),
            format!("UID:{}", text(self.uid)),
            format!("SEQUENCE:{}", self.sequence.max(0)),
            format!("DTSTAMP:{}", utc(self.stamp)),
            format!("DTSTART:{}", utc(self.starts_at)),
            format!("DTEND:{}", utc(self.ends_at)),
            format!("SUMMARY:{}", text(self.summary)),
            format!("DESCRIPTION:{}", text(self.description)),
        ];
        if let Some(place) = self.location.filter(|l| !l.trim().is_empty()) {
            lines.push(format!("LOCATION:{}", text(place)));
        }
        let (org_name, org_email) = self.organizer;
        let (att_name, att_email) = self.attendee;
        lines.push(format!("ORGANIZER;CN={}:mailto:{org_email}", param(org_name)));
        lines.push(format!(
            "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT:mailto:{att_email}",
            param(att_name)
        ));
        lines.push(format!("STATUS:{status}"));
        lines.push("END:VEVENT".to_owned());
        lines.push("END:VCALENDAR".to_owned());
        let mut out = String::new();
        for l in &lines {
            fold(l, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{local_interval, parse_date, parse_zone};

    fn event<'a>(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>, method: Method) -> CalendarEvent<'a> {
        CalendarEvent {
            uid: "6b05220a972b23e28c7c56bd",
            sequence: 3,
            method,
            starts_at,
            ends_at,
            summary: "Sesión con Dra. Ruiz",
            description: "Consulta; primera sesión, online",
            location: Some("Calle Mayor 1, Madrid"),
            organizer: ("Consulta Ruiz", "agenda@example.com"),
            attendee: ("Elena \"Ele\" Soto", "elena@example.com"),
            stamp: starts_at,
        }
    }

    /// The DTSTART/DTEND of a session at local `start`-`end` on `date` in `zone`.
    fn times(zone: &str, date: &str, start: &str, end: &str) -> (String, String) {
        let zone = parse_zone(zone).unwrap();
        let (s, e) = local_interval(zone, parse_date(date).unwrap(), start, end).unwrap();
        let ics = event(s, e, Method::Request).render();
        let find = |key: &str| ics.lines().find_map(|l| l.strip_prefix(key)).unwrap().to_owned();
        (find("DTSTART:"), find("DTEND:"))
    }

    #[test]
    fn sessions_on_daylight_saving_days_keep_their_local_hour() {
        // Madrid: UTC+1 in winter, UTC+2 in summer; the change is at 02:00 or 03:00 local.
        let madrid = [
            ("2031-03-29", "10:00", "20310329T090000Z"), // the day before spring forward
            ("2031-03-30", "10:00", "20310330T080000Z"), // spring-forward day
            ("2031-10-26", "10:00", "20311026T090000Z"), // fall-back day
            ("2031-10-25", "10:00", "20311025T080000Z"),
        ];
        for (date, start, want) in madrid {
            assert_eq!(times("Europe/Madrid", date, start, "11:00").0, want, "{date}");
        }
        // A session across the night's change: 01:30-03:30 local lasts one hour in spring.
        let (s, e) = times("Europe/Madrid", "2031-03-30", "01:30", "03:30");
        assert_eq!((s.as_str(), e.as_str()), ("20310330T003000Z", "20310330T013000Z"));
        // New York: UTC-5 in winter, UTC-4 in summer.
        let new_york = [
            ("2031-03-09", "09:00", "20310309T130000Z"), // spring-forward day
            ("2031-03-08", "09:00", "20310308T140000Z"),
            ("2031-11-02", "09:00", "20311102T140000Z"), // fall-back day
            ("2031-11-01", "09:00", "20311101T130000Z"),
        ];
        for (date, start, want) in new_york {
            assert_eq!(times("America/New_York", date, start, "10:00").0, want, "{date}");
        }
    }

    #[test]
    fn request_and_cancel_name_one_event_by_booking_and_version() {
        let t = Utc::now();
        let request = event(t, t, Method::Request).render();
        let cancel = event(t, t, Method::Cancel).render();
        for ics in [&request, &cancel] {
            assert!(ics.contains("UID:6b05220a972b23e28c7c56bd\r\n"));
            assert!(ics.contains("SEQUENCE:3\r\n"));
            assert!(ics.ends_with("END:VCALENDAR\r\n"));
            assert!(!ics.replace("\r\n", "").contains('\n'), "CRLF only");
        }
        assert!(request.contains("METHOD:REQUEST\r\n") && request.contains("STATUS:CONFIRMED\r\n"));
        assert!(cancel.contains("METHOD:CANCEL\r\n") && cancel.contains("STATUS:CANCELLED\r\n"));
    }

    #[test]
    fn text_is_escaped_and_long_lines_fold_without_splitting_characters() {
        let t = Utc::now();
        let ics = event(t, t, Method::Request).render();
        assert!(ics.contains("DESCRIPTION:Consulta\\; primera sesión\\, online\r\n"));
        assert!(ics.contains("ATTENDEE;CN=Elena Ele Soto;"), "{ics}");
        let long = "ñ".repeat(100);
        let mut out = String::new();
        fold(&format!("SUMMARY:{long}"), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets", line.len());
        }
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{long}\r\n"));
    }
}
