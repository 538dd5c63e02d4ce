//! The `$set` of a profile update (`ProfilePatch`): validated input turned into what is
//! stored (money in cents, list items with ids, links checked to be `https:` where served
//! publicly).

use mongodb::bson::{to_document, DateTime, Document};
use serde::Serialize;
use validator::Validate;

use super::model::{
    fresh_id, Credential, Education, Experience, ExternalLink, FeaturedTestimonial, LegalInfo,
    PricingPackage, ProfileInput, StoredPackage, StoredRates, VideoPresentation, WorkLocation,
};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{require_https, validation_errors, web_link};

/// Most characters of a specialty or a language (a package feature: its own 300).
const ENTRY_MAX: usize = 80;
const FEATURE_MAX: usize = 300;

/// The list trimmed, blank entries dropped; an entry over `max` characters is a 400 naming it
/// (`field[i]`), never silently dropped with the rest kept.
fn clean(field: &str, max: usize, v: Vec<String>) -> ApiResult<Vec<String>> {
    let mut out = Vec::with_capacity(v.len());
    for (i, s) in v.into_iter().enumerate() {
        let s = s.trim();
        if s.chars().count() > max {
            return Err(ApiError::field(
                format!("{field}[{i}]"),
                format!("must be at most {max} characters"),
            ));
        }
        if !s.is_empty() {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// Validates each package (the list is untagged, so `validator` cannot reach it) and stores it.
fn stored_packages(list: Vec<PricingPackage>) -> ApiResult<Vec<StoredPackage>> {
    if list.len() > 20 {
        return Err(ApiError::field("pricingPackages", "at most 20 packages"));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            if let Err(e) = p.validate() {
                return Err(match validation_errors(e) {
                    ApiError::Validation(errors) => ApiError::Validation(
                        errors
                            .into_iter()
                            .map(|mut f| {
                                f.field = format!("pricingPackages[{i}].{}", f.field);
                                f
                            })
                            .collect(),
                    ),
                    other => other,
                });
            }
            let cost = p
                .cost()
                .ok_or_else(|| ApiError::field(format!("pricingPackages[{i}].price"), "is required"))?;
            fresh_id(&mut p.id);
            Ok(StoredPackage {
                id: p.id,
                name: p.name,
                sessions: p.sessions,
                price_cents: Some(cost.0),
                original_price_cents: p.original_price.map(|c| c.0),
                description: p.description,
                validity_days: p.validity_days,
                is_active: Some(p.is_active.unwrap_or(true)),
                features: Some(
                    p.features
                        .map(|f| clean(&format!("pricingPackages[{i}].features"), FEATURE_MAX, f))
                        .transpose()?
                        .unwrap_or_default(),
                ),
            })
        })
        .collect()
}

/// `v` with an id on every item.
fn with_ids<T>(mut v: Vec<T>, id: fn(&mut T) -> &mut Option<String>) -> Vec<T> {
    v.iter_mut().for_each(|x| fresh_id(id(x)));
    v
}

/// The `$set` of a profile update: the given parts, each replacing what is stored.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfilePatch {
    pub updated_at: DateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specialties: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub education: Option<Vec<Education>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates: Option<StoredRates>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_packages: Option<Vec<StoredPackage>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_locations: Option<Vec<WorkLocation>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_links: Option<Vec<ExternalLink>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_presentation: Option<VideoPresentation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub featured_testimonials: Option<Vec<FeaturedTestimonial>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experience: Option<Vec<Experience>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_available: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_info: Option<LegalInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Vec<Credential>>,
    /// `Some(None)` removes the banner (stored as `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banner: Option<Option<String>>,
}

impl ProfilePatch {
    /// The `$set` document.
    pub fn to_set(&self) -> ApiResult<Document> {
        to_document(self).map_err(|e| ApiError::Internal(e.into()))
    }
}

/// Checks that every link of `req` served publicly is `https:` (where the config asks for it)
/// and that the banner is a web link.
fn check_links(config: &Config, req: &ProfileInput) -> ApiResult<()> {
    if let Some(v) = &req.external_links {
        for (i, l) in v.iter().enumerate() {
            require_https(config, &format!("externalLinks[{i}].url"), Some(&l.url))?;
        }
    }
    if let Some(v) = &req.video_presentation {
        require_https(config, "videoPresentation.url", v.url.as_deref())?;
    }
    if let Some(Some(link)) = &req.banner {
        if is_own_media(config, link) {
            // An uploaded banner's own link, as `GET /api/profile` showed it.
            return Ok(());
        }
        if web_link(link).is_err() || !validator::ValidateUrl::validate_url(link) {
            return Err(ApiError::field("banner", "must be an https:// link"));
        }
        if link.chars().count() > 1000 {
            return Err(ApiError::field("banner", "must be at most 1000 characters"));
        }
        require_https(config, "banner", Some(link))?;
    }
    Ok(())
}

/// Whether `link` is an image this service serves (`<media_base_url>/api/media/<id>`).
fn is_own_media(config: &Config, link: &str) -> bool {
    let prefix = format!(
        "{}/api/media/",
        config.documents.media_base_url.trim_end_matches('/')
    );
    link.strip_prefix(&prefix)
        .is_some_and(|id| mongodb::bson::oid::ObjectId::parse_str(id).is_ok())
}

/// The patch of `req`: money in cents, list items with ids, links checked.
pub fn changes(config: &Config, mut req: ProfileInput) -> ApiResult<ProfilePatch> {
    let pricing_packages = req
        .pricing_packages
        .take()
        .map(|p| stored_packages(p.into_packages()))
        .transpose()?;
    check_links(config, &req)?;
    Ok(ProfilePatch {
        updated_at: DateTime::now(),
        about: req.about,
        specialties: req
            .specialties
            .map(|v| clean("specialties", ENTRY_MAX, v))
            .transpose()?,
        languages: req
            .languages
            .map(|v| clean("languages", ENTRY_MAX, v))
            .transpose()?,
        education: req.education,
        rates: req.rates.map(StoredRates::from),
        pricing_packages,
        work_locations: req
            .work_locations
            .map(|v| with_ids(v, |l: &mut WorkLocation| &mut l.id)),
        external_links: req
            .external_links
            .map(|v| with_ids(v, |l: &mut ExternalLink| &mut l.id)),
        video_presentation: req.video_presentation,
        featured_testimonials: req.featured_testimonials,
        experience: req
            .experience
            .map(|v| with_ids(v, |e: &mut Experience| &mut e.id)),
        is_available: req.is_available,
        legal_info: req.legal_info.map(|mut l| {
            l.licenses.iter_mut().for_each(|x| fresh_id(&mut x.id));
            l
        }),
        credentials: req
            .credentials
            .map(|v| with_ids(v, |c: &mut Credential| &mut c.id)),
        banner: req.banner,
    })
}
