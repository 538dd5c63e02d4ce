//! Every MongoDB query of profiles (collection `profiles`, one per therapist, keyed by
//! `userId`), on the typed `Profile`: a stored profile that does not decode is an error
//! (500, cause logged), never an empty profile.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Deserialize;

use super::model::{Profile, StoredRates};
use super::update::ProfilePatch;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::money::{Cents, Currency};

/// The collection name.
pub const PROFILES: &str = "profiles";

/// Queries of profiles.
#[derive(Clone)]
pub struct ProfileStore {
    profiles: Collection<Profile>,
}

/// The part of a profile the session price is read from (a projection of `Profile`).
#[derive(Debug, Deserialize)]
struct RatesOf {
    #[serde(default)]
    rates: Option<StoredRates>,
}

/// What a profile holds before the therapist fills it in.
pub fn empty_profile(user: ObjectId) -> Document {
    let now = DateTime::now();
    doc! {
        // The user's id: the empty profile shown before the first is stored carries the id the
        // stored one will have.
        "_id": user, "userId": user, "about": "", "specialties": [], "languages": [],
        "education": [], "rates": { "sessionPriceCents": null, "currency": "EUR", "sessionDuration": null },
        "pricingPackages": [], "workLocations": [], "externalLinks": [], "videoPresentation": null,
        "featuredTestimonials": [], "experience": [], "isAvailable": true, "legalInfo": null, "credentials": [],
        "banner": null, "createdAt": now, "updatedAt": now,
    }
}

/// The empty profile of `user`, typed (what the booking site shows of a therapist who never
/// opened theirs).
pub fn empty(user: ObjectId) -> ApiResult<Profile> {
    mongodb::bson::from_document(empty_profile(user)).map_err(|e| ApiError::Internal(e.into()))
}

impl ProfileStore {
    pub fn new(db: &Db) -> Self {
        Self {
            profiles: db.collection(PROFILES),
        }
    }

    /// The profile of `user`, created empty on first read (one round trip either way).
    pub async fn load_or_create(&self, user: ObjectId) -> ApiResult<Profile> {
        let mut init = empty_profile(user);
        init.remove("userId");
        let result = self
            .profiles
            .find_one_and_update(doc! { "userId": user }, doc! { "$setOnInsert": init })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        match result {
            Ok(Some(p)) => Ok(p),
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
    pub async fn find(&self, user: ObjectId) -> mongodb::error::Result<Option<Profile>> {
        self.profiles.find_one(doc! { "userId": user }).await
    }

    /// Sets (or with `None` clears) the banner link of `user`'s profile, inside the caller's
    /// transaction (the profile must exist).
    pub async fn set_banner_in(
        &self,
        session: &mut mongodb::ClientSession,
        user: ObjectId,
        link: Option<&str>,
    ) -> mongodb::error::Result<()> {
        self.profiles
            .update_one(
                doc! { "userId": user },
                doc! { "$set": { "banner": link, "updatedAt": DateTime::now() } },
            )
            .session(session)
            .await
            .map(|_| ())
    }

    /// Applies `patch` to the profile of `user`; the profile after the change.
    pub async fn update(&self, user: ObjectId, patch: &ProfilePatch) -> ApiResult<Option<Profile>> {
        Ok(self
            .profiles
            .find_one_and_update(doc! { "userId": user }, doc! { "$set": patch.to_set()? })
            .return_document(ReturnDocument::After)
            .await?)
    }

    /// The therapist's session price and its currency (0 EUR when none is set).
    pub async fn session_price(&self, therapist: ObjectId) -> ApiResult<(Cents, Currency)> {
        let rates = self
            .profiles
            .clone_with_type::<RatesOf>()
            .find_one(doc! { "userId": therapist })
            .projection(doc! { "rates.sessionPriceCents": 1, "rates.currency": 1 })
            .await?
            .and_then(|p| p.rates);
        let cents = rates
            .as_ref()
            .and_then(|r| r.session_price_cents)
            .unwrap_or(0)
            .max(0);
        let currency = rates.and_then(|r| r.currency).unwrap_or_default();
        Ok((Cents(cents), currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_and_the_seeded_profile_decode() {
        let user = ObjectId::new();
        let p = empty(user).unwrap();
        assert_eq!(p.user_id, user);
        assert_eq!(p.is_available, Some(true));
        let mut seeded = empty_profile(user);
        seeded.extend(doc! {
            "rates": { "sessionPriceCents": 6000_i64, "currency": "EUR", "sessionDuration": 50 },
            "workLocations": [ { "name": "Consulta Chamberí", "city": "Madrid", "online": false }, { "name": "Online", "online": true } ],
        });
        let p: Profile = mongodb::bson::from_document(seeded).unwrap();
        assert_eq!(p.rates.and_then(|r| r.session_price_cents), Some(6000));
        assert_eq!(p.work_locations.map(|l| l.len()), Some(2));
    }
}
