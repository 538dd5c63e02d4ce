//! The write of a profile: one function that applies the edit and then tells the rest of the
//! service (`Event::Profile`); work locations are part of the profile, so their edits go here
//! too.

use mongodb::bson::oid::ObjectId;

use super::model::{Profile, ProfileInput};
use super::store::ProfileStore;
use super::update::changes;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, ProfileChanged};

/// Applies the given parts of `req` to the therapist's profile (created first if it was never
/// read); the profile after the change.
pub async fn update(state: &AppState, therapist: ObjectId, req: ProfileInput) -> ApiResult<Profile> {
    let store = ProfileStore::new(&state.db);
    let current = store.load_or_create(therapist).await?;
    if let Some(Some(link)) = &req.banner {
        // An uploaded image is set through /api/profile/banner; here only kept as it is.
        if link.contains("/api/media/") && current.banner.as_deref() != Some(link.as_str()) {
            return Err(ApiError::field(
                "banner",
                "an uploaded banner is set through POST /api/profile/banner",
            ));
        }
    }
    let patch = changes(&state.config, req)?;
    let profile = store
        .update(therapist, &patch)
        .await?
        .ok_or_else(|| ApiError::not_found("Profile"))?;
    state
        .events
        .emit(Event::Profile(ProfileChanged { therapist }))
        .await;
    Ok(profile)
}
