//! Profile (SPEC section 3): a therapist's public practice profile, created empty on first read.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::extract::{parse_id, AuthUser, Therapist};
use crate::auth::model::{Role, UserView};
use crate::auth::store::AuthStore;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ValidatedJson;
use crate::money::Cents;

pub mod model;
mod update;

pub use model::{Education, ExternalLink, PricingPackage, ProfileInput, Rates, WorkLocation};

const PROFILES: &str = "profiles";

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/profile", get(get_profile).put(put_profile))
        .route("/api/users/profile", get(user_profile))
        .route("/api/profile/public/{user_id}", get(public_profile))
}

fn empty_profile(user: ObjectId) -> Document {
    let now = DateTime::now();
    doc! {
        "_id": ObjectId::new(), "userId": user, "about": "", "specialties": [], "languages": [],
        "education": [], "rates": { "sessionPriceCents": null, "currency": "EUR", "sessionDuration": null },
        "pricingPackages": [], "workLocations": [], "externalLinks": [], "videoPresentation": null,
        "featuredTestimonials": [], "experience": [], "isAvailable": true, "legalInfo": null, "credentials": [],
        "banner": null, "createdAt": now, "updatedAt": now,
    }
}

/// The profile of `user`, created empty on first read (one round trip either way).
pub async fn load_or_create(state: &AppState, user: ObjectId) -> ApiResult<Document> {
    let coll = state.db.collection::<Document>(PROFILES);
    let mut init = empty_profile(user);
    init.remove("userId");
    let result = coll
        .find_one_and_update(doc! { "userId": user }, doc! { "$setOnInsert": init })
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await;
    match result {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(ApiError::Internal(anyhow::anyhow!(
            "profile upsert returned nothing"
        ))),
        // Two first reads at once: the unique index let one create it; read that one.
        Err(e) if crate::db::is_duplicate_key(&e) => coll
            .find_one(doc! { "userId": user })
            .await?
            .ok_or_else(|| ApiError::not_found("Profile")),
        Err(e) => Err(e.into()),
    }
}

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

fn view(d: &Document) -> Value {
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

/// The caller's profile (created empty on first read).
#[utoipa::path(get, path = "/api/profile", tag = "profile", responses((status = 200)))]
pub async fn get_profile(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    Ok(envelope::ok(view(&load_or_create(&state, me.0.id).await?)))
}

/// Updates the given parts of the caller's profile.
#[utoipa::path(put, path = "/api/profile", tag = "profile", request_body = ProfileInput, responses((status = 200), (status = 400)))]
pub async fn put_profile(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(req): ValidatedJson<ProfileInput>,
) -> ApiResult<Response> {
    let set = update::changes(&state.config, req)?;
    load_or_create(&state, me.0.id).await?;
    let d = state
        .db
        .collection::<Document>(PROFILES)
        .find_one_and_update(doc! { "userId": me.0.id }, doc! { "$set": set })
        .return_document(ReturnDocument::After)
        .await?
        .ok_or_else(|| ApiError::not_found("Profile"))?;
    Ok(envelope::ok(view(&d)))
}

/// The signed-in user with their profile (therapists) .
#[utoipa::path(get, path = "/api/users/profile", tag = "profile", responses((status = 200), (status = 401)))]
pub async fn user_profile(State(state): State<AppState>, me: AuthUser) -> ApiResult<Response> {
    let user = AuthStore::new(&state.db)
        .user_by_id(me.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
    let profile = if user.role == Role::Therapist {
        Some(view(&load_or_create(&state, me.id).await?))
    } else {
        None
    };
    Ok(envelope::ok(
        json!({ "user": UserView::from(&user), "profile": profile }),
    ))
}

/// Public: what the booking site shows about a therapist.
#[utoipa::path(get, path = "/api/profile/public/{user_id}", tag = "profile", responses((status = 200), (status = 404)))]
pub async fn public_profile(
    State(state): State<AppState>,
    crate::http::client_ip::ClientIp(ip): crate::http::client_ip::ClientIp,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    crate::availability::public_limit(&state, ip).await?;
    let id = parse_id(&user_id, "userId")?;
    let user = AuthStore::new(&state.db).user_by_id(id).await?;
    let Some(user) = user.filter(|u| u.role == Role::Therapist) else {
        return Err(ApiError::not_found("Therapist"));
    };
    let profile = state
        .db
        .collection::<Document>(PROFILES)
        .find_one(doc! { "userId": id })
        .await?;
    let profile = profile
        .map(|d| view(&d))
        .unwrap_or_else(|| view(&empty_profile(id)));
    let (total, avg, _) = crate::reviews::summary(&state, id).await?;
    Ok(envelope::ok(json!({
        "id": id.to_hex(), "name": user.name, "avatar": user.avatar, "isVerified": user.is_verified,
        "timezone": user.timezone, "profile": profile,
        "reviews": { "totalReviews": total, "averageRating": avg },
    })))
}
