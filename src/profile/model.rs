//! The profile's request types: everything the dashboard's profile page sends on `PUT`.

use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

pub use super::rates::{
    CustomRates, PackagesForm, PackagesInput, PricingPackage, RatePackage, Rates, SessionKind, SessionRate,
};
use crate::money::Cents;

/// A list item's id as the dashboard makes them (`Date.now()` numbers or strings), kept as
/// text; items saved without one get a fresh id.
pub(super) fn item_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
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

/// An id for an item that came without one.
pub fn fresh_id(id: &mut Option<String>) {
    if id.is_none() {
        *id = Some(ObjectId::new().to_hex());
    }
}

/// A price in major units; `null` or `""` (an empty form field) is no price.
pub(super) fn price_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cents>, D::Error> {
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
fn year_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
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
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(
        Option::<String>::deserialize(d)?
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    ))
}

fn hh_mm(v: &str) -> Result<(), ValidationError> {
    crate::time::parse_time(v)
        .map(|_| ())
        .map_err(|_| ValidationError::new("time").with_message("must be HH:mm".into()))
}

/// `YYYY-MM` or `YYYY-MM-DD` (the dashboard's month and date inputs); `""` allowed.
fn month_or_date(v: &str) -> Result<(), ValidationError> {
    let ok = v.is_empty()
        || chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
        || chrono::NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d").is_ok();
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new("date").with_message("must be YYYY-MM or YYYY-MM-DD".into()))
    }
}

pub(super) fn short_texts(v: &[String]) -> Result<(), ValidationError> {
    if v.len() <= 20 && v.iter().all(|s| s.chars().count() <= 300) {
        Ok(())
    } else {
        Err(ValidationError::new("length").with_message("at most 20 entries of up to 300 characters".into()))
    }
}

fn email_or_empty(v: &str) -> Result<(), ValidationError> {
    if v.is_empty() || validator::ValidateEmail::validate_email(&v) {
        Ok(())
    } else {
        Err(ValidationError::new("email").with_message("must be a valid email address".into()))
    }
}

/// A degree or training.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Education {
    #[validate(length(min = 1, max = 200))]
    pub title: String,
    #[validate(length(max = 200))]
    pub institution: Option<String>,
    #[validate(range(min = 1900, max = 2200))]
    pub year: Option<u16>,
}

/// A credential as the profile page edits it (title, institution, year, description).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credential {
    #[serde(default, deserialize_with = "item_id")]
    pub id: Option<String>,
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 200))]
    pub title: String,
    #[validate(length(max = 200))]
    pub institution: Option<String>,
    #[serde(default, deserialize_with = "year_opt")]
    #[validate(range(min = 1900, max = 2200))]
    #[schema(value_type = Option<u16>)]
    pub year: Option<u16>,
    #[validate(length(max = 1000))]
    pub description: Option<String>,
}

/// Opening hours of one weekday at a location.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DayHours {
    #[serde(default)]
    pub enabled: bool,
    #[validate(custom(function = "hh_mm"))]
    pub start: String,
    #[validate(custom(function = "hh_mm"))]
    pub end: String,
}

/// A location's weekly opening hours.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationSchedule {
    #[validate(nested)]
    pub monday: Option<DayHours>,
    #[validate(nested)]
    pub tuesday: Option<DayHours>,
    #[validate(nested)]
    pub wednesday: Option<DayHours>,
    #[validate(nested)]
    pub thursday: Option<DayHours>,
    #[validate(nested)]
    pub friday: Option<DayHours>,
    #[validate(nested)]
    pub saturday: Option<DayHours>,
    #[validate(nested)]
    pub sunday: Option<DayHours>,
}

fn yes() -> bool {
    true
}

/// Where the therapist works.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkLocation {
    #[serde(default, deserialize_with = "item_id")]
    pub id: Option<String>,
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 120))]
    pub name: String,
    #[validate(length(max = 300))]
    pub address: Option<String>,
    #[validate(length(max = 120))]
    pub city: Option<String>,
    #[validate(length(max = 20))]
    pub postal_code: Option<String>,
    #[validate(length(max = 60))]
    pub country: Option<String>,
    #[validate(length(max = 30))]
    pub phone: Option<String>,
    #[validate(length(max = 254), custom(function = "email_or_empty"))]
    pub email: Option<String>,
    #[serde(default)]
    pub online: bool,
    #[serde(default)]
    pub is_primary: bool,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[validate(nested)]
    pub schedule: Option<LocationSchedule>,
}

/// Kinds of external link.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Website,
    Blog,
    Linkedin,
    Instagram,
    Facebook,
    Twitter,
    Youtube,
    Tiktok,
    Other,
}

/// A link to elsewhere (website, LinkedIn...).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalLink {
    #[serde(default, deserialize_with = "item_id")]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<LinkKind>,
    #[validate(length(min = 1, max = 60))]
    pub label: String,
    #[validate(
        url(message = "must be a URL"),
        custom(function = "crate::http::extract::web_link"),
        length(max = 500)
    )]
    pub url: String,
}

/// The presentation video (uploaded elsewhere; the profile keeps its link).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VideoPresentation {
    #[validate(
        url(message = "must be a URL"),
        custom(function = "crate::http::extract::web_link"),
        length(max = 1000)
    )]
    pub url: Option<String>,
    #[validate(length(max = 200))]
    pub title: Option<String>,
    #[validate(length(max = 1000))]
    pub description: Option<String>,
}

/// A review the therapist features on their public profile. The dashboard sends the whole
/// review as it read it; what a testimonial shows is kept, the rest ignored.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeaturedTestimonial {
    #[serde(default, deserialize_with = "item_id")]
    pub id: Option<String>,
    #[validate(length(max = 120))]
    pub client_name: Option<String>,
    #[validate(range(min = 1, max = 5))]
    pub rating: Option<u8>,
    #[validate(length(max = 2000))]
    pub comment: Option<String>,
    #[validate(length(max = 40))]
    pub date: Option<String>,
    #[serde(default)]
    pub verified: bool,
}

/// A job in the therapist's work history.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Experience {
    #[serde(default, deserialize_with = "item_id")]
    pub id: Option<String>,
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 120))]
    pub position: String,
    #[validate(length(max = 120))]
    pub company: Option<String>,
    #[validate(length(max = 120))]
    pub location: Option<String>,
    #[validate(custom(function = "month_or_date"))]
    pub start_date: Option<String>,
    #[validate(custom(function = "month_or_date"))]
    pub end_date: Option<String>,
    #[serde(default)]
    pub is_current: bool,
    #[validate(length(max = 2000))]
    pub description: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "short_texts"))]
    pub achievements: Vec<String>,
}

/// Status of a licence.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LicenseStatus {
    Active,
    Expired,
    Pending,
}

/// A licence or professional registration.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct License {
    #[serde(default, deserialize_with = "item_id")]
    pub id: Option<String>,
    #[serde(rename = "type")]
    #[validate(length(min = 1, max = 120))]
    pub kind: String,
    #[validate(length(min = 1, max = 60))]
    pub number: String,
    #[validate(length(max = 120))]
    pub issuing_body: Option<String>,
    #[validate(custom(function = "month_or_date"))]
    pub expiry_date: Option<String>,
    pub status: Option<LicenseStatus>,
}

/// Legal information shown to clients.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegalInfo {
    #[serde(default)]
    #[validate(length(max = 20), nested)]
    pub licenses: Vec<License>,
    #[validate(length(max = 1000))]
    pub professional_registration: Option<String>,
    #[validate(length(max = 1000))]
    pub ethics_code: Option<String>,
    #[validate(length(max = 300))]
    pub insurance_coverage: Option<String>,
    #[serde(default)]
    pub data_protection_compliance: bool,
}

/// `PUT /api/profile` (each field optional; given ones replace). The SPEC's fields plus
/// everything the dashboard's profile page sends.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileInput {
    #[validate(length(max = 5000))]
    pub about: Option<String>,
    #[validate(length(max = 30))]
    pub specialties: Option<Vec<String>>,
    #[validate(length(max = 20))]
    pub languages: Option<Vec<String>>,
    #[validate(length(max = 30), nested)]
    pub education: Option<Vec<Education>>,
    #[validate(nested)]
    pub rates: Option<Rates>,
    #[schema(value_type = Option<Vec<PricingPackage>>)]
    pub pricing_packages: Option<PackagesInput>,
    #[validate(length(max = 20), nested)]
    pub work_locations: Option<Vec<WorkLocation>>,
    #[validate(length(max = 20), nested)]
    pub external_links: Option<Vec<ExternalLink>>,
    #[validate(nested)]
    pub video_presentation: Option<VideoPresentation>,
    #[validate(length(max = 3, message = "at most 3 testimonials"), nested)]
    pub featured_testimonials: Option<Vec<FeaturedTestimonial>>,
    #[validate(length(max = 30), nested)]
    pub experience: Option<Vec<Experience>>,
    pub is_available: Option<bool>,
    #[validate(nested)]
    pub legal_info: Option<LegalInfo>,
    #[validate(length(max = 30), nested)]
    pub credentials: Option<Vec<Credential>>,
    /// The banner image link; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub banner: Option<Option<String>>,
}
