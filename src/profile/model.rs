//! The profile's types: the stored document (`Profile`) and the request types, everything
//! the dashboard's profile page sends on `PUT`.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, Document};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

pub use super::fields::fresh_id;
use super::fields::{email_or_empty, hh_mm, item_id, month_or_date, nullable, short_texts, year_opt};
pub use super::rates::{
    CustomRates, PackagesForm, PackagesInput, PricingPackage, RatePackage, Rates, SessionKind, SessionRate,
    StoredPackage, StoredRates,
};
/// A degree or training.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Education {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub institution: Option<String>,
    #[validate(range(min = 1900, max = 2200))]
    #[schema(minimum = 1900, maximum = 2200)]
    pub year: Option<u16>,
}

/// A credential as the profile page edits it (title, institution, year, description).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credential {
    #[serde(default, deserialize_with = "item_id")]
    #[schema(value_type = Option<crate::profile::docs::ItemId>)]
    pub id: Option<String>,
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub institution: Option<String>,
    #[serde(default, deserialize_with = "year_opt")]
    #[validate(range(min = 1900, max = 2200))]
    #[schema(value_type = Option<crate::profile::docs::YearText>)]
    pub year: Option<u16>,
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
}

/// Opening hours of one weekday at a location.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DayHours {
    #[serde(default)]
    pub enabled: bool,
    #[validate(custom(function = "hh_mm"))]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    #[validate(custom(function = "hh_mm"))]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
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
    #[schema(value_type = Option<crate::profile::docs::ItemId>)]
    pub id: Option<String>,
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 120))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    #[validate(length(max = 300))]
    #[schema(max_length = 300)]
    pub address: Option<String>,
    #[validate(length(max = 120))]
    #[schema(max_length = 120)]
    pub city: Option<String>,
    #[validate(length(max = 20))]
    #[schema(max_length = 20)]
    pub postal_code: Option<String>,
    #[validate(length(max = 60))]
    #[schema(max_length = 60)]
    pub country: Option<String>,
    #[validate(length(max = 30))]
    #[schema(max_length = 30)]
    pub phone: Option<String>,
    #[validate(length(max = 254), custom(function = "email_or_empty"))]
    #[schema(max_length = 254)]
    #[schema(value_type = Option<crate::profile::docs::EmailOrEmpty>)]
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
    #[schema(value_type = Option<crate::profile::docs::ItemId>)]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<LinkKind>,
    #[validate(length(min = 1, max = 60))]
    #[schema(min_length = 1, max_length = 60)]
    pub label: String,
    #[validate(
        url(message = "must be a URL"),
        custom(function = "crate::http::extract::web_link"),
        length(max = 500)
    )]
    #[schema(value_type = crate::http::docs::WebLink)]
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
    #[schema(value_type = Option<crate::http::docs::LongWebLink>)]
    pub url: Option<String>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
}

/// A review the therapist features on their public profile. The dashboard sends the whole
/// review as it read it; what a testimonial shows is kept, the rest ignored.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeaturedTestimonial {
    #[serde(default, deserialize_with = "item_id")]
    #[schema(value_type = Option<crate::profile::docs::ItemId>)]
    pub id: Option<String>,
    #[validate(length(max = 120))]
    #[schema(max_length = 120)]
    pub client_name: Option<String>,
    #[validate(range(min = 1, max = 5))]
    #[schema(minimum = 1, maximum = 5)]
    pub rating: Option<u8>,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
    #[validate(length(max = 40))]
    #[schema(max_length = 40)]
    pub date: Option<String>,
    #[serde(default)]
    pub verified: bool,
}

/// A job in the therapist's work history.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Experience {
    #[serde(default, deserialize_with = "item_id")]
    #[schema(value_type = Option<crate::profile::docs::ItemId>)]
    pub id: Option<String>,
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 120))]
    #[schema(min_length = 1, max_length = 120)]
    pub position: String,
    #[validate(length(max = 120))]
    #[schema(max_length = 120)]
    pub company: Option<String>,
    #[validate(length(max = 120))]
    #[schema(max_length = 120)]
    pub location: Option<String>,
    #[validate(custom(function = "month_or_date"))]
    #[schema(value_type = Option<crate::profile::docs::MonthOrDate>)]
    pub start_date: Option<String>,
    #[validate(custom(function = "month_or_date"))]
    #[schema(value_type = Option<crate::profile::docs::MonthOrDate>)]
    pub end_date: Option<String>,
    #[serde(default)]
    pub is_current: bool,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "short_texts"))]
    #[schema(value_type = crate::profile::docs::ShortTexts)]
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
    #[schema(value_type = Option<crate::profile::docs::ItemId>)]
    pub id: Option<String>,
    #[serde(rename = "type")]
    #[validate(length(min = 1, max = 120))]
    #[schema(min_length = 1, max_length = 120)]
    pub kind: String,
    #[validate(length(min = 1, max = 60))]
    #[schema(min_length = 1, max_length = 60)]
    pub number: String,
    #[validate(length(max = 120))]
    #[schema(max_length = 120)]
    pub issuing_body: Option<String>,
    #[validate(custom(function = "month_or_date"))]
    #[schema(value_type = Option<crate::profile::docs::MonthOrDate>)]
    pub expiry_date: Option<String>,
    pub status: Option<LicenseStatus>,
}

/// Legal information shown to clients.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegalInfo {
    #[serde(default)]
    #[validate(length(max = 20), nested)]
    #[schema(max_items = 20)]
    pub licenses: Vec<License>,
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub professional_registration: Option<String>,
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub ethics_code: Option<String>,
    #[validate(length(max = 300))]
    #[schema(max_length = 300)]
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
    #[schema(max_length = 5000)]
    pub about: Option<String>,
    #[validate(length(max = 30))]
    #[schema(value_type = Option<crate::profile::docs::Specialties>)]
    pub specialties: Option<Vec<String>>,
    #[validate(length(max = 20))]
    #[schema(value_type = Option<crate::profile::docs::Languages>)]
    pub languages: Option<Vec<String>>,
    #[validate(length(max = 30), nested)]
    #[schema(max_items = 30)]
    pub education: Option<Vec<Education>>,
    #[validate(nested)]
    pub rates: Option<Rates>,
    #[schema(value_type = Option<PackagesInput>)]
    pub pricing_packages: Option<PackagesInput>,
    #[validate(length(max = 20), nested)]
    #[schema(max_items = 20)]
    pub work_locations: Option<Vec<WorkLocation>>,
    #[validate(length(max = 20), nested)]
    #[schema(max_items = 20)]
    pub external_links: Option<Vec<ExternalLink>>,
    #[validate(nested)]
    pub video_presentation: Option<VideoPresentation>,
    #[validate(length(max = 3, message = "at most 3 testimonials"), nested)]
    #[schema(max_items = 3)]
    pub featured_testimonials: Option<Vec<FeaturedTestimonial>>,
    #[validate(length(max = 30), nested)]
    #[schema(max_items = 30)]
    pub experience: Option<Vec<Experience>>,
    pub is_available: Option<bool>,
    #[validate(nested)]
    pub legal_info: Option<LegalInfo>,
    #[validate(length(max = 30), nested)]
    #[schema(max_items = 30)]
    pub credentials: Option<Vec<Credential>>,
    /// The banner image link; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::profile::docs::banner)]
    pub banner: Option<Option<String>>,
}

/// A stored profile (collection `profiles`, one per therapist, keyed by `userId`). What the
/// service reads or converts (ids, prices, availability, dates) is typed; the lists the
/// dashboard edits and reads back exactly as it saved them stay the stored documents, so a
/// key the dashboard sent is echoed as stored (absent stays absent, `null` stays `null`).
/// A field missing from an older profile reads as `None` (shown as `null`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    #[serde(default)]
    pub about: Option<String>,
    #[serde(default)]
    pub specialties: Option<Vec<String>>,
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    #[serde(default)]
    pub education: Option<Vec<Document>>,
    #[serde(default)]
    pub rates: Option<StoredRates>,
    #[serde(default)]
    pub pricing_packages: Option<Vec<StoredPackage>>,
    #[serde(default)]
    pub work_locations: Option<Vec<Document>>,
    #[serde(default)]
    pub external_links: Option<Vec<Document>>,
    #[serde(default)]
    pub video_presentation: Option<Document>,
    #[serde(default)]
    pub featured_testimonials: Option<Vec<Document>>,
    #[serde(default)]
    pub experience: Option<Vec<Document>>,
    /// Open to new clients (`None`: never said, which reads as yes).
    #[serde(default)]
    pub is_available: Option<bool>,
    #[serde(default)]
    pub legal_info: Option<Document>,
    #[serde(default)]
    pub credentials: Option<Vec<Document>>,
    #[serde(default)]
    pub banner: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime>,
    #[serde(default)]
    pub updated_at: Option<DateTime>,
}
