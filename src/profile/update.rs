//! The `$set` of a profile update: validated input turned into what is stored (money in
//! cents, list items with ids, links checked to be `https:` where served publicly).

use mongodb::bson::{doc, to_bson, DateTime, Document};
use validator::Validate;

use super::model::{fresh_id, PricingPackage, ProfileInput, Rates};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{require_https, validation_errors, web_link};

fn clean(v: Vec<String>) -> Vec<String> {
    v.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.chars().count() <= 80)
        .collect()
}

fn rates_doc(r: Rates) -> ApiResult<Document> {
    let custom = match r.custom_rates {
        None => None,
        Some(c) => {
            let sessions: Vec<Document> = c
                .sessions
                .into_iter()
                .map(|mut s| {
                    fresh_id(&mut s.id);
                    Ok(
                        doc! { "id": s.id, "type": to_bson(&s.kind)?, "name": s.name, "duration": s.duration,
                        "priceCents": s.price.0, "description": s.description },
                    )
                })
                .collect::<ApiResult<_>>()?;
            let packages: Vec<Document> = c
                .packages
                .into_iter()
                .map(|mut p| {
                    fresh_id(&mut p.id);
                    Ok(doc! { "id": p.id, "name": p.name, "sessions": p.sessions, "sessionType": to_bson(&p.session_type)?,
                        "priceCents": p.price.0, "description": p.description })
                })
                .collect::<ApiResult<_>>()?;
            Some(doc! { "currency": to_bson(&c.currency)?, "sessions": sessions, "packages": packages })
        }
    };
    Ok(doc! {
        "sessionPriceCents": r.session_price.map(|c| c.0),
        "followUpPriceCents": r.follow_up_price.map(|c| c.0),
        "packagePriceCents": r.package_price.map(|c| c.0),
        "coupleSessionPriceCents": r.couple_session_price.map(|c| c.0),
        "currency": to_bson(&r.currency)?,
        "sessionDuration": r.session_duration,
        "customRates": custom,
    })
}

/// Validates each package (the list is untagged, so `validator` cannot reach it) and stores it.
fn packages_doc(list: Vec<PricingPackage>) -> ApiResult<Vec<Document>> {
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
            Ok(doc! {
                "id": p.id, "name": p.name, "sessions": p.sessions, "priceCents": cost.0,
                "originalPriceCents": p.original_price.map(|c| c.0), "description": p.description,
                "validityDays": p.validity_days, "isActive": p.is_active.unwrap_or(true),
                "features": p.features.map(clean).unwrap_or_default(),
            })
        })
        .collect()
}

/// Inserts `value` (serialized) under `key` when given.
fn put<T: serde::Serialize>(set: &mut Document, key: &str, value: Option<T>) -> ApiResult<()> {
    if let Some(v) = value {
        set.insert(key, to_bson(&v)?);
    }
    Ok(())
}

/// `v` with an id on every item.
fn with_ids<T>(mut v: Vec<T>, id: fn(&mut T) -> &mut Option<String>) -> Vec<T> {
    v.iter_mut().for_each(|x| fresh_id(id(x)));
    v
}

/// The `$set` of `req`.
pub fn changes(config: &Config, req: ProfileInput) -> ApiResult<Document> {
    let mut set = doc! { "updatedAt": DateTime::now() };
    put(&mut set, "about", req.about)?;
    put(&mut set, "specialties", req.specialties.map(clean))?;
    put(&mut set, "languages", req.languages.map(clean))?;
    put(&mut set, "education", req.education)?;
    if let Some(r) = req.rates {
        set.insert("rates", rates_doc(r)?);
    }
    if let Some(p) = req.pricing_packages {
        set.insert("pricingPackages", packages_doc(p.into_packages())?);
    }
    put(
        &mut set,
        "workLocations",
        req.work_locations
            .map(|v| with_ids(v, |l: &mut super::WorkLocation| &mut l.id)),
    )?;
    if let Some(v) = &req.external_links {
        for (i, l) in v.iter().enumerate() {
            require_https(config, &format!("externalLinks[{i}].url"), Some(&l.url))?;
        }
    }
    put(
        &mut set,
        "externalLinks",
        req.external_links
            .map(|v| with_ids(v, |l: &mut super::ExternalLink| &mut l.id)),
    )?;
    if let Some(v) = &req.video_presentation {
        require_https(config, "videoPresentation.url", v.url.as_deref())?;
    }
    put(&mut set, "videoPresentation", req.video_presentation)?;
    put(&mut set, "featuredTestimonials", req.featured_testimonials)?;
    put(
        &mut set,
        "experience",
        req.experience
            .map(|v| with_ids(v, |e: &mut super::model::Experience| &mut e.id)),
    )?;
    put(&mut set, "isAvailable", req.is_available)?;
    let legal = req.legal_info.map(|mut l| {
        l.licenses.iter_mut().for_each(|x| fresh_id(&mut x.id));
        l
    });
    put(&mut set, "legalInfo", legal)?;
    put(
        &mut set,
        "credentials",
        req.credentials
            .map(|v| with_ids(v, |c: &mut super::model::Credential| &mut c.id)),
    )?;
    if let Some(banner) = req.banner {
        if let Some(link) = &banner {
            if web_link(link).is_err() || !validator::ValidateUrl::validate_url(link) {
                return Err(ApiError::field("banner", "must be an https:// link"));
            }
            if link.chars().count() > 1000 {
                return Err(ApiError::field("banner", "must be at most 1000 characters"));
            }
            require_https(config, "banner", Some(link))?;
        }
        set.insert("banner", banner);
    }
    Ok(set)
}
