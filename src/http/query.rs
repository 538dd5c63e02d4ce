//! The query vocabulary of the dashboard, shared by every list: `status=all` (no filter), empty
//! values (`search=`, `tags=`) as absent, dates given as `YYYY-MM-DD` or as ISO instants, and
//! `therapistId` naming the caller. Each list's query struct declares its own parameters and
//! their aliases (camelCase and snake_case); parameters nobody knows are ignored, malformed ones
//! are a 400 naming the parameter.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use mongodb::bson::oid::ObjectId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// `deserialize_with` for an optional filter whose value `all` (or an empty value) means "no
/// filter"; anything else must be a valid `T`.
pub fn all_or<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let raw = Option::<String>::deserialize(d)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") | Some("all") => Ok(None),
        Some(v) => T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(
            v,
        ))
        .map(Some)
        .map_err(serde::de::Error::custom),
    }
}

/// `deserialize_with` for an optional text parameter: an empty value is absent.
pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

/// A date bound as the dashboard sends it: a local date, or an instant (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    /// `YYYY-MM-DD`: a day of the therapist's calendar.
    Day(NaiveDate),
    /// `2026-11-23T10:00:00.000Z`: a moment.
    Instant(DateTime<Utc>),
}

impl DateBound {
    /// Parses `raw`; a 400 naming `field` when it is neither form.
    pub fn parse(raw: &str, field: &str) -> Result<Self, ApiError> {
        let raw = raw.trim();
        if raw.len() == 10 {
            return crate::time::parse_date(raw)
                .map(DateBound::Day)
                .map_err(|e| ApiError::field(field, e.to_string()));
        }
        // A `+01:00` offset sent unencoded in a URL arrives as ` 01:00`.
        DateTime::parse_from_rfc3339(&raw.replace(' ', "+"))
            .map(|t| DateBound::Instant(t.with_timezone(&Utc)))
            .ok()
            .filter(
                |t| matches!(t, DateBound::Instant(i) if (1900..=2200).contains(&chrono::Datelike::year(i))),
            )
            .ok_or_else(|| ApiError::field(field, "must be a date (YYYY-MM-DD) or an ISO 8601 instant"))
    }

    /// The local day of this bound in `zone` (an instant's day where the therapist lives).
    pub fn local_day(self, zone: Tz) -> NaiveDate {
        match self {
            DateBound::Day(d) => d,
            DateBound::Instant(t) => t.with_timezone(&zone).date_naive(),
        }
    }

    /// The instant this bound starts (a day: its first moment in `zone`).
    pub fn start(self, zone: Tz) -> DateTime<Utc> {
        match self {
            DateBound::Day(d) => crate::time::day_bounds(zone, d).0,
            DateBound::Instant(t) => t,
        }
    }

    /// The instant this bound ends, exclusive (a day: the first moment of the next in `zone`).
    pub fn end(self, zone: Tz) -> DateTime<Utc> {
        match self {
            DateBound::Day(d) => crate::time::day_bounds(zone, d).1,
            DateBound::Instant(t) => t,
        }
    }
}

/// Parses an optional bound given under one of several names (the first present wins).
pub fn date_bound(candidates: &[(&str, &Option<String>)]) -> Result<Option<DateBound>, ApiError> {
    for (field, value) in candidates {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            return DateBound::parse(v, field).map(Some);
        }
    }
    Ok(None)
}

/// 400 naming `end` when the bound `to` ends before `from` starts (in `zone`).
pub fn in_order(
    from: Option<DateBound>,
    to: Option<DateBound>,
    zone: Tz,
    (start, end): (&str, &str),
) -> Result<(), ApiError> {
    match (from, to) {
        (Some(a), Some(b)) if a.start(zone) > b.end(zone) => {
            Err(ApiError::field(end, format!("must not be before {start}")))
        }
        _ => Ok(()),
    }
}

/// `therapistId` on a therapist's own list: absent, `current` or the caller's id are fine;
/// any other therapist's id answers 404 (ids cannot be probed).
pub fn own_therapist(raw: Option<&str>, me: ObjectId) -> Result<(), ApiError> {
    match raw.map(str::trim) {
        None | Some("") | Some("current") => Ok(()),
        Some(v) => match ObjectId::parse_str(v) {
            Ok(id) if id == me => Ok(()),
            Ok(_) => Err(ApiError::not_found("Therapist")),
            Err(_) => Err(ApiError::field("therapistId", "must be an id or `current`")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_bounds_take_days_and_instants() {
        let madrid: Tz = "Europe/Madrid".parse().unwrap();
        let day = DateBound::parse("2026-03-29", "d").unwrap();
        assert_eq!(day.start(madrid).to_rfc3339(), "2026-03-28T23:00:00+00:00");
        assert_eq!(
            day.end(madrid).to_rfc3339(),
            "2026-03-29T22:00:00+00:00",
            "a 23-hour day"
        );
        let late = DateBound::parse("2026-11-23T23:30:00.000Z", "d").unwrap();
        assert_eq!(late.local_day(madrid).to_string(), "2026-11-24");
        assert!(DateBound::parse("2026-13-01", "d").is_err());
        assert!(DateBound::parse("yesterday", "d").is_err());
    }
}
