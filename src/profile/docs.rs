//! Schemas of the profile answers built as JSON values: what the document promises.
#![allow(dead_code)] // schema descriptions, never built

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::model::UserView;

/// The therapist's practice profile (about, specialties, languages, education, rates,
/// pricing packages, work locations, external links).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    id: String,
    user_id: String,
    about: Option<String>,
    specialties: Option<Vec<String>>,
    languages: Option<Vec<String>>,
    pricing_packages: Vec<PackageView>,
    is_available: bool,
}

/// `GET /api/users/profile` data.
#[derive(Serialize, ToSchema)]
pub struct UserProfile {
    user: UserView,
    /// The practice profile (therapists), or null.
    profile: Option<ProfileView>,
}

/// A pricing package as the profile shows it (prices in major units).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageView {
    id: Option<String>,
    name: String,
    sessions: u32,
    price: Option<f64>,
    original_price: Option<f64>,
    /// The same as `price` (the dashboard's package form reads this name).
    discounted_price: Option<f64>,
    description: Option<String>,
    validity_days: Option<u32>,
    is_active: Option<bool>,
    features: Option<Vec<String>>,
}

/// An avatar's public link (`null` once removed).
#[derive(Serialize, ToSchema)]
pub struct AvatarLink {
    avatar: Option<String>,
    #[schema(nullable = false)]
    url: Option<String>,
}

/// A banner's public link (`null` once removed).
#[derive(Serialize, ToSchema)]
pub struct BannerLink {
    banner: Option<String>,
    #[schema(nullable = false)]
    url: Option<String>,
}

crate::http::docs::text_schema!(
    /// A list item's id as the dashboard makes them: text of at most 64 characters, or an
    /// integer (`Date.now()`); blank or absent: a new id.
    ItemId = "ProfileItemId",
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(crate::http::docs::string().max_length(Some(64)))
        .item(crate::http::docs::integer())
        .item(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Null))
);

crate::http::docs::text_schema!(
    /// A year (1900 to 2200) as a number or as text; blank: none.
    YearText = "YearText",
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(crate::http::docs::integer().minimum(Some(1900)).maximum(Some(2200)))
        .item(crate::http::docs::string().pattern(Some(r"^\s*(19[0-9]{2}|2[01][0-9]{2}|2200)?\s*$")))
        .item(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Null))
);

crate::http::docs::text_schema!(
    /// `YYYY-MM` or `YYYY-MM-DD`, or empty.
    MonthOrDate = "MonthOrDate",
    crate::http::docs::string().pattern(Some(format!(
        "^((19[0-9]{{2}}|2[01][0-9]{{2}}|2200)-(0[1-9]|1[0-2])|{})?$",
        crate::http::docs::DAY
    )))
);

crate::http::docs::text_schema!(
    /// An email address, or empty.
    EmailOrEmpty = "EmailOrEmpty",
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            crate::http::docs::string()
                .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Email,
                )))
                .max_length(Some(254)),
        )
        .item(crate::http::docs::string().max_length(Some(0)))
);

crate::http::docs::text_schema!(
    /// Specialties: at most 30 of up to 80 characters (blank ones are dropped).
    Specialties = "Specialties",
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::http::docs::string().max_length(Some(80)))
        .max_items(Some(30))
);

crate::http::docs::text_schema!(
    /// Languages: at most 20 of up to 80 characters (blank ones are dropped).
    Languages = "Languages",
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::http::docs::string().max_length(Some(80)))
        .max_items(Some(20))
);

crate::http::docs::text_schema!(
    /// Short texts: at most 20 of up to 300 characters.
    ShortTexts = "ShortTexts",
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::http::docs::string().max_length(Some(300)))
        .max_items(Some(20))
);

/// The banner link: an `https://` link of at most 1000 characters (the uploaded banner's own
/// link as `GET /api/profile` shows it, too); blank or `null` removes it.
pub fn banner() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Null))
        .item(crate::http::docs::string().pattern(Some(r"^\s*$")))
        .item(
            crate::http::docs::string()
                .format(Some(utoipa::openapi::schema::SchemaFormat::Custom("uri".into())))
                .pattern(Some("^[Hh][Tt][Tt][Pp][Ss]://"))
                .max_length(Some(1000)),
        )
        .into()
}
