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
    pricing_packages: Vec<serde_json::Map<String, serde_json::Value>>,
    is_available: bool,
}

/// `GET /api/users/profile` data.
#[derive(Serialize, ToSchema)]
pub struct UserProfile {
    user: UserView,
    /// The practice profile (therapists), or null.
    profile: Option<serde_json::Map<String, serde_json::Value>>,
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
