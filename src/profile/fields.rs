//! How the profile form's fields are read: item ids as the dashboard makes them, prices and
//! years as numbers or text, `null` as "clear it", and the checks `validator` runs on texts.

use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Deserializer};
use validator::ValidationError;

use crate::money::Cents;

/// A list item's id as the dashboard makes them (`Date.now()` numbers or strings), kept as
/// text; items saved without one get a fresh id.
pub fn item_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.chars().count() <= 64 => {
            Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
        }
        Some(serde_json::Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(_) => Err(D::Error::custom(
            "must be a string of at most 64 characters or an integer",
        )),
    }
}

/// `skip_serializing_if` of a price a request gives in major units and its stored form keeps
/// in cents: never written as given (`skip_serializing` would hide it from the document too).
pub fn never<T>(_: &T) -> bool {
    true
}

/// An id for an item that came without one.
pub fn fresh_id(id: &mut Option<String>) {
    if id.is_none() {
        *id = Some(ObjectId::new().to_hex());
    }
}

/// A price in major units; `null` or `""` (an empty form field) is no price.
pub fn price_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cents>, D::Error> {
    use serde::de::Error;
    let text = match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(serde_json::Value::String(s)) => s.trim().to_owned(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => return Err(D::Error::custom("must be a number")),
    };
    Cents::parse_major(&text).map(Some).map_err(D::Error::custom)
}

/// A year as a number or the text of one (the credential form sends text); `""` is none.
pub fn year_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom("must be a year")),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|y| u16::try_from(y).ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom("must be a year")),
        Some(_) => Err(D::Error::custom("must be a year")),
    }
}

/// `null` is "clear it", absent is "leave it".
pub fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(
        Option::<String>::deserialize(d)?
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    ))
}

pub fn hh_mm(v: &str) -> Result<(), ValidationError> {
    crate::time::parse_time(v)
        .map(|_| ())
        .map_err(|_| ValidationError::new("time").with_message("must be HH:mm".into()))
}

/// `YYYY-MM` or `YYYY-MM-DD` (the dashboard's month and date inputs); `""` allowed.
pub fn month_or_date(v: &str) -> Result<(), ValidationError> {
    let ok = v.is_empty()
        || chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
        || chrono::NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d").is_ok();
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new("date").with_message("must be YYYY-MM or YYYY-MM-DD".into()))
    }
}

pub fn short_texts(v: &[String]) -> Result<(), ValidationError> {
    if v.len() <= 20 && v.iter().all(|s| s.chars().count() <= 300) {
        Ok(())
    } else {
        Err(ValidationError::new("length").with_message("at most 20 entries of up to 300 characters".into()))
    }
}

pub fn email_or_empty(v: &str) -> Result<(), ValidationError> {
    if v.is_empty() || validator::ValidateEmail::validate_email(&v) {
        Ok(())
    } else {
        Err(ValidationError::new("email").with_message("must be a valid email address".into()))
    }
}
