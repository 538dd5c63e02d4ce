//! A stored profile as the dashboard and the booking site read it: money in major units under
//! names without the `Cents` suffix, lists never `null`.

use mongodb::bson::{Bson, Document};
use serde_json::{json, Value};

use super::model::Profile;
use super::rates::{StoredCustomRates, StoredPackage, StoredRates};
use crate::money::Cents;

fn money(c: Option<i64>) -> Value {
    c.map(|c| Cents(c).to_major()).unwrap_or(Value::Null)
}

/// Stored documents as JSON, as stored (`null` when absent).
fn plain(list: &Option<Vec<Document>>) -> Value {
    match list {
        Some(v) => Bson::Array(v.iter().cloned().map(Bson::Document).collect()).into_relaxed_extjson(),
        None => Value::Null,
    }
}

/// Like `plain`, but an absent list is `[]`.
fn list(list: &Option<Vec<Document>>) -> Value {
    match plain(list) {
        Value::Null => json!([]),
        v => v,
    }
}

fn one(d: &Option<Document>) -> Value {
    d.clone()
        .map(|d| Bson::Document(d).into_relaxed_extjson())
        .unwrap_or(Value::Null)
}

/// A pricing package, its price also shown as `discountedPrice` (the dashboard's name).
fn package(p: &StoredPackage) -> Value {
    json!({
        "id": p.id, "name": p.name, "sessions": p.sessions, "price": money(p.price_cents),
        "originalPrice": money(p.original_price_cents), "description": p.description,
        "validityDays": p.validity_days, "isActive": p.is_active, "features": p.features,
        "discountedPrice": money(p.price_cents),
    })
}

fn custom_rates(c: &StoredCustomRates) -> Value {
    let sessions: Vec<Value> = c
        .sessions
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "type": s.kind, "name": s.name, "duration": s.duration,
                "price": money(Some(s.price_cents)), "description": s.description,
            })
        })
        .collect();
    let packages: Vec<Value> = c
        .packages
        .iter()
        .map(|p| {
            json!({
                "id": p.id, "name": p.name, "sessions": p.sessions, "sessionType": p.session_type,
                "price": money(Some(p.price_cents)), "description": p.description,
            })
        })
        .collect();
    json!({ "currency": c.currency, "sessions": sessions, "packages": packages })
}

fn rates(r: &StoredRates) -> Value {
    json!({
        "sessionPrice": money(r.session_price_cents),
        "followUpPrice": money(r.follow_up_price_cents),
        "packagePrice": money(r.package_price_cents),
        "coupleSessionPrice": money(r.couple_session_price_cents),
        "currency": r.currency.unwrap_or_default(),
        "sessionDuration": r.session_duration,
        "customRates": r.custom_rates.as_ref().map(custom_rates),
    })
}

/// The view of a stored profile.
pub fn view(p: &Profile) -> Value {
    let id = p.id.to_hex();
    let packages: Vec<Value> = p.pricing_packages.iter().flatten().map(package).collect();
    json!({
        "id": id, "_id": id,
        "userId": p.user_id.to_hex(),
        "about": p.about, "specialties": p.specialties, "languages": p.languages,
        "education": plain(&p.education),
        "rates": rates(&p.rates.clone().unwrap_or_default()),
        "pricingPackages": packages,
        "workLocations": list(&p.work_locations), "externalLinks": list(&p.external_links),
        "videoPresentation": one(&p.video_presentation), "featuredTestimonials": list(&p.featured_testimonials),
        "experience": list(&p.experience), "isAvailable": p.is_available.unwrap_or(true),
        "legalInfo": one(&p.legal_info), "credentials": list(&p.credentials), "banner": p.banner,
        "updatedAt": p.updated_at.map(crate::time::rfc3339).unwrap_or_default(),
    })
}
