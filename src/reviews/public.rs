//! The booking site's view of a therapist: who they are, their profile and their rating.
//! Served here rather than in `profile` because it combines the profile with reviews, and
//! `profile` sits below `reviews` (it must not import it).

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::json;

use super::store::ReviewStore;
use crate::app::AppState;
use crate::auth::extract::parse_id;
use crate::auth::model::Role;
use crate::auth::store::AuthStore;
use crate::cache::family::Family;
use crate::error::{ApiError, ApiResult};
use crate::http::client_ip::ClientIp;
use crate::http::envelope;

/// Public: what the booking site shows about a therapist.
#[utoipa::path(get, path = "/api/profile/public/{user_id}", tag = "profile",
    security(()),
    params(("user_id" = crate::http::docs::ObjectIdText, Path, description = "The therapist's id")),
    responses((status = 200, body = crate::http::docs::Data<crate::reviews::docs::PublicProfile>), crate::http::docs::TooManyRequests))]
pub async fn public_profile(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    crate::availability::public_limit(&state, ip).await?;
    let id = parse_id(&user_id, "userId")?;
    let user = AuthStore::new(&state.db).user_by_id(id).await?;
    let Some(user) = user.filter(|u| u.role == Role::Therapist) else {
        return Err(ApiError::not_found("Therapist"));
    };
    // Who the therapist is was read above (an unknown id never reaches the cache); the page is
    // cached under their profile.
    let fill = || async {
        let profile = crate::profile::public_view(&state, id).await?;
        let rating = ReviewStore::new(&state.db.fresh()).rating_summary(id).await?;
        Ok(envelope::ok_body(json!({
            "id": id.to_hex(), "name": user.name, "avatar": user.avatar, "isVerified": user.is_verified,
            "timezone": user.timezone, "profile": profile,
            "reviews": { "totalReviews": rating.total, "averageRating": rating.average },
        })))
    };
    state.cache.json(Family::Profile, id, "public", fill).await
}
