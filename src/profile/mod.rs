//! Profile (SPEC section 3): a therapist's practice profile, created empty on first read. The
//! booking site's public view of it (with the therapist's rating) is served by `reviews`, which
//! sits above both.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use mongodb::bson::oid::ObjectId;
use serde_json::json;

use crate::app::AppState;
use crate::auth::extract::{AuthUser, Therapist};
use crate::auth::model::{Role, UserView};
use crate::auth::store::AuthStore;
use crate::cache::family::Family;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ValidatedJson;

pub mod docs;
mod fields;
pub mod media;
pub mod media_store;
pub mod model;
pub mod rates;
pub mod service;
pub mod store;
mod update;
pub mod view;

pub use model::{Education, ExternalLink, PricingPackage, Profile, ProfileInput, Rates, WorkLocation};
pub use store::ProfileStore;
pub use view::view;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/profile", get(get_profile).put(put_profile))
        .route("/api/users/profile", get(user_profile))
}

/// The profile of `user`, created empty on first read.
pub async fn load_or_create(state: &AppState, user: ObjectId) -> ApiResult<Profile> {
    ProfileStore::new(&state.db).load_or_create(user).await
}

/// The caller's profile (created empty on first read).
#[utoipa::path(get, path = "/api/profile", tag = "profile",
    security(("therapist" = [])),
    responses((status = 200, body = crate::http::docs::Data<crate::profile::docs::ProfileView>)))]
pub async fn get_profile(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    let fill = || async { Ok(envelope::ok_body(view(&load_or_create(&state, me.0.id).await?))) };
    state.cache.json(Family::Profile, me.0.id, "own", fill).await
}

/// Updates the given parts of the caller's profile.
#[utoipa::path(put, path = "/api/profile", tag = "profile",
    security(("therapist" = [])),
    request_body = ProfileInput,
    responses((status = 200, body = crate::http::docs::Data<crate::profile::docs::ProfileView>)))]
pub async fn put_profile(
    State(state): State<AppState>,
    me: Therapist,
    ValidatedJson(req): ValidatedJson<ProfileInput>,
) -> ApiResult<Response> {
    let profile = service::update(&state, me.0.id, req).await?;
    Ok(envelope::ok(view(&profile)))
}

/// The signed-in user with their profile (therapists) .
#[utoipa::path(get, path = "/api/users/profile", tag = "profile",
    security(("therapist" = []), ("client" = [])),
    responses((status = 200, body = crate::http::docs::Data<crate::profile::docs::UserProfile>)))]
pub async fn user_profile(State(state): State<AppState>, me: AuthUser) -> ApiResult<Response> {
    let fill = || async {
        let user = AuthStore::new(&state.db)
            .user_by_id(me.id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
        let profile = if user.role == Role::Therapist {
            Some(view(&load_or_create(&state, me.id).await?))
        } else {
            None
        };
        Ok(envelope::ok_body(
            json!({ "user": UserView::from(&user), "profile": profile }),
        ))
    };
    state.cache.json(Family::Profile, me.id, "user", fill).await
}

/// What the booking site shows of a therapist's profile: the stored one, or the empty one
/// when they never opened it (reading it publicly never creates it).
pub async fn public_view(state: &AppState, therapist: ObjectId) -> ApiResult<serde_json::Value> {
    let profile = match ProfileStore::new(&state.db).find(therapist).await? {
        Some(p) => p,
        None => store::empty(therapist)?,
    };
    Ok(view(&profile))
}
