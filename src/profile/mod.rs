//! Profile (SPEC section 3): a therapist's public practice profile, created empty on first read.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use validator::Validate;

use crate::app::AppState;
use crate::auth::extract::{parse_id, AuthUser, Therapist};
use crate::auth::model::{Role, UserView};
use crate::auth::store::AuthStore;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ValidatedJson;
use crate::money::{major_opt, Cents, Currency};

const PROFILES: &str = "profiles";

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/profile", get(get_profile).put(put_profile))
        .route("/api/users/profile", get(user_profile))
        .route("/api/profile/public/{user_id}", get(public_profile))
}

/// A degree or training.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Education {
    #[validate(length(min = 1, max = 200))]
    pub title: String,
    #[validate(length(max = 200))]
    pub institution: Option<String>,
    #[validate(range(min = 1900, max = 2200))]
    pub year: Option<u16>,
}

/// Session prices.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rates {
    #[serde(default, deserialize_with = "major_opt", skip_serializing)]
    #[schema(value_type = Option<f64>)]
    pub session_price: Option<Cents>,
    #[serde(default)]
    pub currency: Currency,
    #[validate(range(min = 5, max = 720))]
    pub session_duration: Option<u32>,
}

/// A bundle of sessions sold together.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PricingPackage {
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 120))]
    pub name: String,
    #[validate(range(min = 1, max = 100))]
    pub sessions: u32,
    #[serde(deserialize_with = "crate::money::major", skip_serializing)]
    #[schema(value_type = f64)]
    pub price: Cents,
    #[validate(length(max = 1000))]
    pub description: Option<String>,
}

/// Where the therapist works.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkLocation {
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 120))]
    pub name: String,
    #[validate(length(max = 300))]
    pub address: Option<String>,
    #[validate(length(max = 120))]
    pub city: Option<String>,
    #[serde(default)]
    pub online: bool,
}

/// A link to elsewhere (website, LinkedIn...).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalLink {
    #[validate(length(min = 1, max = 60))]
    pub label: String,
    #[validate(
        url(message = "must be a URL"),
        custom(function = "crate::http::extract::web_link"),
        length(max = 500)
    )]
    pub url: String,
}

/// `PUT /api/profile` (each field optional; given ones replace).
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
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
    #[validate(length(max = 20), nested)]
    pub pricing_packages: Option<Vec<PricingPackage>>,
    #[validate(length(max = 20), nested)]
    pub work_locations: Option<Vec<WorkLocation>>,
    #[validate(length(max = 20), nested)]
    pub external_links: Option<Vec<ExternalLink>>,
}

fn empty_profile(user: ObjectId) -> Document {
    let now = DateTime::now();
    doc! {
        "_id": ObjectId::new(), "userId": user, "about": "", "specialties": [], "languages": [],
        "education": [], "rates": { "sessionPriceCents": null, "currency": "EUR", "sessionDuration": null },
        "pricingPackages": [], "workLocations": [], "externalLinks": [], "createdAt": now, "updatedAt": now,
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

fn view(d: &Document) -> Value {
    let id = d.get_object_id("_id").map(|i| i.to_hex()).unwrap_or_default();
    let plain = |k: &str| {
        d.get(k)
            .cloned()
            .map(|b| b.into_relaxed_extjson())
            .unwrap_or(Value::Null)
    };
    let money = |c: Option<i64>| c.map(|c| Cents(c).to_major()).unwrap_or(Value::Null);
    let rates = d.get_document("rates").cloned().unwrap_or_default();
    let packages: Vec<Value> = d
        .get_array("pricingPackages")
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_document())
        .map(|p| {
            json!({
                "name": p.get_str("name").unwrap_or_default(), "sessions": p.get("sessions").and_then(crate::db::as_i64),
                "price": money(p.get("priceCents").and_then(crate::db::as_i64)), "description": p.get_str("description").ok(),
            })
        })
        .collect();
    json!({
        "id": id, "_id": id,
        "userId": d.get_object_id("userId").map(|u| u.to_hex()).ok(),
        "about": plain("about"), "specialties": plain("specialties"), "languages": plain("languages"),
        "education": plain("education"),
        "rates": {
            "sessionPrice": money(rates.get("sessionPriceCents").and_then(crate::db::as_i64)),
            "currency": rates.get_str("currency").unwrap_or("EUR"),
            "sessionDuration": rates.get("sessionDuration").and_then(crate::db::as_i64),
        },
        "pricingPackages": packages,
        "workLocations": plain("workLocations"), "externalLinks": plain("externalLinks"),
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
    load_or_create(&state, me.0.id).await?;
    let mut set = doc! { "updatedAt": DateTime::now() };
    let clean = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && s.chars().count() <= 80)
            .collect()
    };
    if let Some(v) = req.about {
        set.insert("about", v);
    }
    if let Some(v) = req.specialties {
        set.insert("specialties", clean(v));
    }
    if let Some(v) = req.languages {
        set.insert("languages", clean(v));
    }
    if let Some(v) = req.education {
        set.insert("education", mongodb::bson::to_bson(&v)?);
    }
    if let Some(r) = req.rates {
        set.insert(
            "rates",
            doc! { "sessionPriceCents": r.session_price.map(|c| c.0), "currency": mongodb::bson::to_bson(&r.currency)?, "sessionDuration": r.session_duration },
        );
    }
    if let Some(v) = req.pricing_packages {
        let list: Vec<Document> = v
            .into_iter()
            .map(|p| doc! { "name": p.name, "sessions": p.sessions, "priceCents": p.price.0, "description": p.description })
            .collect();
        set.insert("pricingPackages", list);
    }
    if let Some(v) = req.work_locations {
        set.insert("workLocations", mongodb::bson::to_bson(&v)?);
    }
    if let Some(v) = req.external_links {
        for (i, l) in v.iter().enumerate() {
            crate::http::extract::require_https(
                &state.config,
                &format!("externalLinks[{i}].url"),
                Some(&l.url),
            )?;
        }
        set.insert("externalLinks", mongodb::bson::to_bson(&v)?);
    }
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
