//! Every MongoDB query of profiles (collection `profiles`, one per therapist, keyed by
//! `userId`). A profile is read and shown as stored (its shape is the dashboard's and
//! changes with it), so the profile itself stays a `Document`; what other resources read from
//! it (the session price) is decoded into types here.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Deserialize;

use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::money::{Cents, Currency};

/// The collection name.
pub const PROFILES: &str = "profiles";

/// Queries of profiles.
pub struct ProfileStore {
    profiles: Collection<Document>,
    rates: Collection<RatesOf>,
}

/// The part of a profile the session price is read from.
#[derive(Debug, Deserialize)]
struct RatesOf {
    #[serde(default)]
    rates: Option<StoredRates>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRates {
    #[serde(default)]
    session_price_cents: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
}

/// What a profile holds before the therapist fills it in.
pub fn empty_profile(user: ObjectId) -> Document {
    let now = DateTime::now();
    doc! {
        "_id": ObjectId::new(), "userId": user, "about": "", "specialties": [], "languages": [],
        "education": [], "rates": { "sessionPriceCents": null, "currency": "EUR", "sessionDuration": null },
        "pricingPackages": [], "workLocations": [], "externalLinks": [], "videoPresentation": null,
        "featuredTestimonials": [], "experience": [], "isAvailable": true, "legalInfo": null, "credentials": [],
        "banner": null, "createdAt": now, "updatedAt": now,
    }
}

impl ProfileStore {
    pub fn new(db: &Db) -> Self {
        Self {
            profiles: db.collection(PROFILES),
            rates: db.collection(PROFILES),
        }
    }

    /// The profile of `user`, created empty on first read (one round trip either way).
    pub async fn load_or_create(&self, user: ObjectId) -> ApiResult<Document> {
        let mut init = empty_profile(user);
        init.remove("userId");
        let result = self
            .profiles
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
            Err(e) if crate::db::is_duplicate_key(&e) => self
                .find(user)
                .await?
                .ok_or_else(|| ApiError::not_found("Profile")),
            Err(e) => Err(e.into()),
        }
    }

    /// The profile of `user`, if one was ever created (never creates it).
    pub async fn find(&self, user: ObjectId) -> mongodb::error::Result<Option<Document>> {
        self.profiles.find_one(doc! { "userId": user }).await
    }

    /// Applies `set` to the profile of `user`; the profile after the change.
    pub async fn update(&self, user: ObjectId, set: Document) -> mongodb::error::Result<Option<Document>> {
        self.profiles
            .find_one_and_update(doc! { "userId": user }, doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
    }

    /// The therapist's session price and its currency (0 EUR when none is set).
    pub async fn session_price(&self, therapist: ObjectId) -> ApiResult<(Cents, Currency)> {
        let rates = self
            .rates
            .find_one(doc! { "userId": therapist })
            .projection(doc! { "rates.sessionPriceCents": 1, "rates.currency": 1 })
            .await?
            .and_then(|p| p.rates);
        let cents = rates
            .as_ref()
            .and_then(|r| r.session_price_cents)
            .unwrap_or(0)
            .max(0);
        let currency = rates
            .and_then(|r| r.currency)
            .and_then(|c| serde_json::from_value(serde_json::Value::String(c)).ok())
            .unwrap_or_default();
        Ok((Cents(cents), currency))
    }
}
