//! A stored profile as the dashboard and the booking site read it: money in major units under
//! names without the `Cents` suffix, lists never `null`.

use mongodb::bson::Document;
use serde_json::{json, Value};

use crate::money::Cents;

fn money(c: Option<i64>) -> Value {
    c.map(|c| Cents(c).to_major()).unwrap_or(Value::Null)
}

fn cents_of(d: &Document, key: &str) -> Value {
    money(d.get(key).and_then(crate::db::as_i64))
}

/// A stored list of documents as JSON, each `…Cents` field shown in major units under its
/// name without the suffix.
fn priced_list(d: &Document, key: &str) -> Vec<Value> {
    d.get_array(key)
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_document())
        .map(|p| {
            let mut out = serde_json::Map::new();
            for (k, v) in p {
                match k.strip_suffix("Cents") {
                    Some(name) => out.insert(name.to_owned(), money(crate::db::as_i64(v))),
                    None => out.insert(k.clone(), v.clone().into_relaxed_extjson()),
                };
            }
            Value::Object(out)
        })
        .collect()
}

/// The view of a stored profile.
pub fn view(d: &Document) -> Value {
    let id = d.get_object_id("_id").map(|i| i.to_hex()).unwrap_or_default();
    let plain = |k: &str| {
        d.get(k)
            .cloned()
            .map(|b| b.into_relaxed_extjson())
            .unwrap_or(Value::Null)
    };
    let list = |k: &str| match plain(k) {
        Value::Null => json!([]),
        v => v,
    };
    let rates = d.get_document("rates").cloned().unwrap_or_default();
    let mut packages = priced_list(d, "pricingPackages");
    for p in &mut packages {
        p["discountedPrice"] = p["price"].clone();
    }
    let custom = rates.get_document("customRates").ok().map(|c| {
        json!({
            "currency": c.get_str("currency").unwrap_or("EUR"),
            "sessions": priced_list(c, "sessions"), "packages": priced_list(c, "packages"),
        })
    });
    json!({
        "id": id, "_id": id,
        "userId": d.get_object_id("userId").map(|u| u.to_hex()).ok(),
        "about": plain("about"), "specialties": plain("specialties"), "languages": plain("languages"),
        "education": plain("education"),
        "rates": {
            "sessionPrice": cents_of(&rates, "sessionPriceCents"),
            "followUpPrice": cents_of(&rates, "followUpPriceCents"),
            "packagePrice": cents_of(&rates, "packagePriceCents"),
            "coupleSessionPrice": cents_of(&rates, "coupleSessionPriceCents"),
            "currency": rates.get_str("currency").unwrap_or("EUR"),
            "sessionDuration": rates.get("sessionDuration").and_then(crate::db::as_i64),
            "customRates": custom,
        },
        "pricingPackages": packages,
        "workLocations": list("workLocations"), "externalLinks": list("externalLinks"),
        "videoPresentation": plain("videoPresentation"), "featuredTestimonials": list("featuredTestimonials"),
        "experience": list("experience"), "isAvailable": d.get_bool("isAvailable").unwrap_or(true),
        "legalInfo": plain("legalInfo"), "credentials": list("credentials"), "banner": plain("banner"),
        "updatedAt": d.get_datetime("updatedAt").map(|t| crate::time::rfc3339(*t)).unwrap_or_default(),
    })
}
