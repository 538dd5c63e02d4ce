//! A client login meets the records therapists keep for its email: the verification link and
//! the invitation's activation (SPEC section 2; they live here because both link records).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use validator::Validate;

use super::linking::{self, Activation};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::extract::ValidatedJson;

/// `POST /api/clients/activate`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivateRequest {
    #[validate(length(min = 16, max = 512, message = "is not a valid invitation token"))]
    #[schema(min_length = 16, max_length = 512)]
    pub token: String,
    #[validate(length(min = 8, max = 128, message = "must be 8 to 128 characters"))]
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[validate(must_match(other = "password", message = "must match password"))]
    pub confirm_password: String,
}

/// `{token}` of a verification link.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyEmailRequest {
    #[validate(length(min = 20, max = 200))]
    #[schema(min_length = 20, max_length = 200)]
    pub token: String,
}

/// Proves a client login's email and links the records therapists keep for it.
#[utoipa::path(post, path = "/api/clients/verify-email", tag = "auth",
    security(()),
    request_body = VerifyEmailRequest,
    responses((status = 200, body = crate::clients::docs::Verified)))]
pub async fn verify_email(
    State(state): State<AppState>,
    ValidatedJson(req): ValidatedJson<VerifyEmailRequest>,
) -> ApiResult<Response> {
    let linked = linking::verify_email(&state, &req.token).await?;
    Ok(Json(serde_json::json!({
        "success": true,
        "message": "Email confirmed",
        "data": { "linkedRecords": linked },
    }))
    .into_response())
}

/// Activates a client login from the invitation a therapist's client record sent.
#[utoipa::path(post, path = "/api/clients/activate", tag = "auth",
    security(()),
    request_body = ActivateRequest,
    responses((status = 201, body = crate::auth::model::Session), (status = 200, description = "The email already has an account: sign in with it", body = crate::http::docs::Message), (status = 409, description = "The invitation was already used")))]
pub async fn client_activate(
    State(state): State<AppState>,
    ValidatedJson(req): ValidatedJson<ActivateRequest>,
) -> ApiResult<Response> {
    match linking::activate(&state, &req.token, req.password).await? {
        Activation::Created(session) => Ok((axum::http::StatusCode::CREATED, Json(session)).into_response()),
        Activation::Linked => Ok(Json(serde_json::json!({
            "success": true,
            "message": "You already have an account: sign in with it to see these sessions",
        }))
        .into_response()),
    }
}
