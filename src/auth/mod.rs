//! Accounts and access (SPEC section 2): registration, sign-in, token rotation, sign-out,
//! password change and reset, for therapists and clients alike.

pub mod checks;
pub mod extract;
pub mod model;
pub mod password;
pub mod service;
pub mod store;
pub mod tokens;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::app::AppState;
use crate::cache::family::Family;
use crate::error::{ApiError, ApiResult};
use crate::http::client_ip::ClientIp;
use crate::http::docs::{Message, TooManyRequests, WrongCredentials};
use crate::http::envelope;
use crate::http::extract::{parse_json, ValidatedJson};
use extract::AuthUser;
use model::{
    ChangePasswordRequest, ForgotPasswordRequest, LoginRequest, LogoutRequest, Me, RefreshRequest,
    RegisterRequest, ResetPasswordRequest, Role, Session, UserType, UserView,
};
use store::AuthStore;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .route("/api/auth/change-password", post(change_password))
        .route("/api/auth/forgot-password", post(forgot_password))
        .route("/api/auth/reset-password", post(reset_password))
        .route("/api/clients/login", post(client_login))
        .route("/api/clients/register", post(client_register))
}

/// Creates a therapist account (or a client one with `userType: "cliente"`).
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", security(()), request_body = RegisterRequest,
    responses((status = 201, body = Session), (status = 409, description = "`EMAIL_TAKEN`"), TooManyRequests))]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(req): ValidatedJson<RegisterRequest>,
) -> ApiResult<Response> {
    state
        .limiter
        .hit(state.config.rate_limit.register_ip, &format!("register:ip:{ip}"))
        .await?;
    let role = req.user_type.map_or(Role::Therapist, UserType::role);
    let session = service::register(&state, req, role).await?;
    Ok((axum::http::StatusCode::CREATED, Json(session)).into_response())
}

/// Creates a client account from the booking site.
#[utoipa::path(post, path = "/api/clients/register", tag = "auth", security(()), request_body = RegisterRequest,
    responses((status = 201, body = Session), (status = 409, description = "`EMAIL_TAKEN`"), TooManyRequests))]
pub async fn client_register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(req): ValidatedJson<RegisterRequest>,
) -> ApiResult<Response> {
    state
        .limiter
        .hit(state.config.rate_limit.register_ip, &format!("register:ip:{ip}"))
        .await?;
    let session = service::register(&state, req, Role::Client).await?;
    Ok((axum::http::StatusCode::CREATED, Json(session)).into_response())
}

/// Signs in; `userType` restricts the account type.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(()), request_body = LoginRequest,
    responses((status = 200, body = Session), WrongCredentials, TooManyRequests))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(req): ValidatedJson<LoginRequest>,
) -> ApiResult<Json<Session>> {
    let expected = req.user_type.map(UserType::role);
    sign_in(&state, &ip.to_string(), req, expected).await
}

/// Signs a client of the booking site in.
#[utoipa::path(post, path = "/api/clients/login", tag = "auth", security(()), request_body = LoginRequest,
    responses((status = 200, body = Session), WrongCredentials, TooManyRequests))]
pub async fn client_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(req): ValidatedJson<LoginRequest>,
) -> ApiResult<Json<Session>> {
    sign_in(&state, &ip.to_string(), req, Some(Role::Client)).await
}

async fn sign_in(
    state: &AppState,
    ip: &str,
    req: LoginRequest,
    expected: Option<Role>,
) -> ApiResult<Json<Session>> {
    let user = service::authenticate(state, ip, &req.email, req.password, expected).await?;
    Ok(Json(service::new_session(state, &user, req.remember_me).await?))
}

/// Exchanges a refresh token for a new pair (the old one is spent).
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", security(()), request_body = RefreshRequest,
    responses((status = 200, body = Session), (status = 401, description = "Invalid, expired or spent refresh token"), TooManyRequests))]
pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(req): ValidatedJson<RefreshRequest>,
) -> ApiResult<Json<Session>> {
    Ok(Json(
        service::refresh(&state, &ip.to_string(), &req.refresh_token).await?,
    ))
}

/// Ends the session of the given refresh token, or every session of the bearer.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security((), ("therapist" = []), ("client" = [])),
    request_body = LogoutRequest, responses((status = 200, body = Message)))]
pub async fn logout(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        parse_json(&body)?
    };
    let token = body.refresh_token.filter(|t| !t.is_empty());
    let store = AuthStore::new(&state.db);
    match (token, user) {
        (Some(token), caller) => {
            let hash = tokens::token_hash(&token);
            if !store.revoke_family_of(&hash, caller.map(|u| u.id)).await? && caller.is_none() {
                return Err(ApiError::Unauthorized {
                    code: "INVALID_TOKEN",
                    message: "Invalid refresh token".into(),
                });
            }
        }
        (None, Some(caller)) => store.revoke_all_for_user(caller.id).await?,
        (None, None) => return Err(ApiError::unauthorized("Authentication required")),
    }
    Ok(envelope::message("Logged out"))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("therapist" = []), ("client" = [])),
    responses((status = 200, body = Me)))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> ApiResult<Response> {
    // The extractor has checked the account and its tokens on the primary; the body is cached.
    let fill = || async {
        let found = AuthStore::new(&state.db)
            .user_by_id(user.id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
        let body = Me {
            success: true,
            user: UserView::from(&found),
        };
        Ok(serde_json::to_vec(&body).map_err(anyhow::Error::from)?.into())
    };
    let (body, _) = state.cache.get_or_fill(Family::User, user.id, "", fill).await?;
    Ok(envelope::json_bytes(body))
}

/// Changes the password (current one required); other sessions end, this one continues.
#[utoipa::path(post, path = "/api/auth/change-password", tag = "auth", security(("therapist" = []), ("client" = [])),
    request_body = ChangePasswordRequest, responses((status = 200, body = Session), TooManyRequests))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: AuthUser,
    ValidatedJson(req): ValidatedJson<ChangePasswordRequest>,
) -> ApiResult<Json<Session>> {
    let store = AuthStore::new(&state.db);
    let found = store
        .user_by_id(user.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
    let checked =
        service::authenticate(&state, &ip.to_string(), &found.email, req.current_password, None).await;
    if let Err(ApiError::Unauthorized { .. }) = checked {
        return Err(ApiError::field("currentPassword", "is incorrect"));
    }
    checked?;
    service::set_password(&state, user.id, req.new_password).await?;
    Ok(Json(service::new_session(&state, &found, true).await?))
}

/// Emails a reset link when the account exists; answers the same either way.
#[utoipa::path(post, path = "/api/auth/forgot-password", tag = "auth", security(()), request_body = ForgotPasswordRequest,
    responses((status = 200, body = Message), TooManyRequests))]
pub async fn forgot_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(req): ValidatedJson<ForgotPasswordRequest>,
) -> ApiResult<Response> {
    let limits = &state.config.rate_limit;
    state
        .limiter
        .hit(limits.forgot_ip, &format!("forgot:ip:{ip}"))
        .await?;
    state
        .limiter
        .hit(limits.forgot_account, &format!("forgot:acct:{}", req.email))
        .await?;
    // The lookup and the reset are done after answering, so the answer takes the same time
    // whether or not the account exists.
    let st = state.clone();
    // The link counts as made now (a password change landing before it is stored spends it).
    let asked = mongodb::bson::DateTime::now();
    tokio::spawn(async move {
        let found = AuthStore::new(&st.db).user_by_email(&req.email).await;
        let outcome = match found {
            Ok(Some(user)) => service::start_password_reset(&st, &user, asked).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = outcome {
            // Answered already: nothing was sent, and the account holder has to ask again.
            tracing::error!(error = %e, "password reset not started (no email queued)");
        }
    });
    Ok(envelope::message(
        "If an account exists for this email, a reset link has been sent",
    ))
}

/// Sets a new password with a single-use reset token.
#[utoipa::path(post, path = "/api/auth/reset-password", tag = "auth", security(()), request_body = ResetPasswordRequest,
    responses((status = 200, body = Message)))]
pub async fn reset_password(
    State(state): State<AppState>,
    ValidatedJson(req): ValidatedJson<ResetPasswordRequest>,
) -> ApiResult<Response> {
    let spent = || ApiError::field("token", "is invalid, expired or already used");
    let store = AuthStore::new(&state.db);
    let (user_id, made) = store
        .consume_reset(&tokens::token_hash(&req.token))
        .await?
        .ok_or_else(spent)?;
    // A link made before the password last changed is spent by that change (one stored
    // just after it, or used at the same moment as another, included).
    let changed = store
        .account_state(user_id)
        .await?
        .and_then(|a| a.password_changed_ms);
    if changed.is_some_and(|ms| ms > made.timestamp_millis()) {
        return Err(spent());
    }
    service::set_password(&state, user_id, req.password).await?;
    Ok(envelope::message("Password updated; please sign in"))
}
