//! The authenticated caller, and the owner scope that every query of a therapist's resources
//! goes through (another therapist's id then matches nothing: 404 by construction).

use crate::db::OwnerScope;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mongodb::bson::oid::ObjectId;

use super::model::Role;
use super::tokens::TokenError;
use crate::app::AppState;
use crate::error::ApiError;

/// Any signed-in caller.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: ObjectId,
    pub role: Role,
}

/// A signed-in therapist (403 for any other role).
#[derive(Debug, Clone, Copy)]
pub struct Therapist(pub AuthUser);

/// A signed-in client of the booking site (403 for any other role).
#[derive(Debug, Clone, Copy)]
pub struct ClientUser(pub AuthUser);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be a Bearer token"))?;
        let claims = state.tokens.verify(token).map_err(|e| match e {
            TokenError::Expired => ApiError::Unauthorized {
                code: "TOKEN_EXPIRED",
                message: "Access token expired".into(),
            },
            TokenError::Invalid => ApiError::Unauthorized {
                code: "INVALID_TOKEN",
                message: "Invalid access token".into(),
            },
        })?;
        let id = ObjectId::parse_str(&claims.sub).map_err(|_| ApiError::Unauthorized {
            code: "INVALID_TOKEN",
            message: "Invalid access token".into(),
        })?;
        // A valid signature is not enough: the account must still exist with that role, and
        // the token must not predate the account's last password change.
        let gone = || ApiError::Unauthorized {
            code: "INVALID_TOKEN",
            message: "This account no longer exists or its sessions were ended".into(),
        };
        let account = state.accounts.check(id).await?.ok_or_else(gone)?;
        let issued_ms = claims.iat_ms.unwrap_or(claims.iat * 1000 + 999);
        if account.role != claims.role || account.password_changed_ms.is_some_and(|t| issued_ms < t) {
            return Err(gone());
        }
        Ok(AuthUser {
            id,
            role: claims.role,
        })
    }
}

/// `Option<AuthUser>`: `None` without an `Authorization` header; a bad token is still a 401.
impl OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !parts.headers.contains_key(AUTHORIZATION) {
            return Ok(None);
        }
        <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

impl FromRequestParts<AppState> for Therapist {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        match user.role {
            Role::Therapist => Ok(Therapist(user)),
            _ => Err(ApiError::Forbidden("This route is for therapists".into())),
        }
    }
}

impl FromRequestParts<AppState> for ClientUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        match user.role {
            Role::Client => Ok(ClientUser(user)),
            _ => Err(ApiError::Forbidden("This route is for clients".into())),
        }
    }
}

impl Therapist {
    /// The owner scope of this therapist's resources.
    pub fn scope(&self) -> OwnerScope {
        OwnerScope::of(self.0.id)
    }
}

/// Parses a path id; a malformed one is a 400 naming the parameter.
pub fn parse_id(raw: &str, field: &str) -> Result<ObjectId, ApiError> {
    ObjectId::parse_str(raw).map_err(|_| ApiError::field(field, "must be a 24-character hex id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_ids_are_refused() {
        assert!(parse_id("nope", "id").is_err());
    }
}
