//! Sign-in logic shared by the auth handlers: credential checks with brute-force protection,
//! session issuing and rotation, password changes and resets, and the proofs of a client
//! login's email (what the client records do with that proof is the clients' business).

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;

use super::model::{EmailVerification, RefreshToken, RegisterRequest, Role, Session, User, UserView};
use super::password::{self, Verdict};
use super::store::{role_matches, AuthStore, Rotation};
use super::tokens::{random_token, token_hash};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::events::{EmailKind, EmailRequested};

/// The one answer for unknown email, wrong password and wrong account type.
pub const BAD_CREDENTIALS: &str = "Invalid email or password";

const DAY_MS: i64 = 86_400_000;

/// Creates an account and signs it in. A client login links to no therapist's records yet: it
/// is sent a verification email, and linking waits for that proof (see [`confirm_email`]).
pub async fn register(state: &AppState, req: RegisterRequest, role: Role) -> ApiResult<Session> {
    let (email, attempt) = (req.email.clone(), req.password.clone());
    let user = match create_user(state, req, role, None).await {
        Err(taken @ ApiError::Conflict { .. }) if role == Role::Client => {
            resend_unsent_verification(state, &email, attempt).await?;
            return Err(taken);
        }
        other => other?,
    };
    if role == Role::Client {
        start_email_verification(state, &user).await?;
    }
    new_session(state, &user, true).await
}

/// A client login whose verification email was never queued (its registration stored the
/// account and then answered 503): the retry that meets it (409) queues it, so the email can
/// still be proven; otherwise the retry would meet a 409 forever with no link ever sent.
/// Only for the retry of that registration (its password is the login's), and never once one
/// was queued: registering someone else's login again cannot have its verification sent to
/// the address's owner (whose click would prove the email for whoever made that login).
async fn resend_unsent_verification(state: &AppState, email: &str, attempt: String) -> ApiResult<()> {
    let Some(user) = AuthStore::new(&state.db).user_by_email(email).await? else {
        return Ok(());
    };
    if user.role != Role::Client || user.email_verified_at.is_some() {
        return Ok(());
    }
    if state
        .email_queue
        .ever_queued(EmailKind::Verification, user.id)
        .await?
    {
        return Ok(());
    }
    if password::verify(&state.hashing, attempt, user.password_hash.clone()).await? == Verdict::Mismatch {
        return Ok(());
    }
    tracing::warn!(user = %user.id, "a client login's verification email was never queued; queued now");
    start_email_verification(state, &user).await
}

async fn create_user(
    state: &AppState,
    req: RegisterRequest,
    role: Role,
    email_verified_at: Option<DateTime>,
) -> ApiResult<User> {
    let store = AuthStore::new(&state.db);
    let hash = password::hash(&state.hashing, req.password).await?;
    let now = DateTime::now();
    let user = User {
        id: ObjectId::new(),
        name: req.name,
        email: req.email,
        password_hash: hash,
        role,
        avatar: None,
        is_verified: false,
        verification_status: "unverified".into(),
        timezone: super::model::default_timezone(),
        email_verified_at,
        created_at: now,
        updated_at: now,
    };
    if let Err(e) = store.insert_user(&user).await {
        if crate::db::is_duplicate_key(&e) {
            return Err(ApiError::Conflict {
                code: "EMAIL_TAKEN",
                message: "An account with this email already exists".into(),
                extra: Default::default(),
            });
        }
        return Err(e.into());
    }
    Ok(user)
}

const VERIFICATION_HOURS: i64 = 48;

/// Emails a single-use link proving the client login's email (stored hashed, 48 h).
pub async fn start_email_verification(state: &AppState, user: &User) -> ApiResult<()> {
    let token = random_token();
    let now = DateTime::now();
    let verification = EmailVerification {
        token_hash: token_hash(&token),
        user_id: user.id,
        email: user.email.clone(),
        created_at: now,
        expires_at: DateTime::from_millis(now.timestamp_millis() + VERIFICATION_HOURS * 3_600_000),
        used_at: None,
    };
    AuthStore::new(&state.db)
        .insert_verification(&verification)
        .await?;
    let link = format!(
        "{}/verify-email?token={token}",
        state.config.mail.public_base_url.trim_end_matches('/')
    );
    let vars = serde_json::json!({ "name": user.name, "link": link, "hours": VERIFICATION_HOURS });
    send_later(state, EmailKind::Verification, &user.email, None, vars, user.id).await
}

/// The answer to a spent, expired or unknown emailed token.
pub fn invalid_token() -> ApiError {
    ApiError::field("token", "is invalid, expired or already used")
}

/// Redeems a verification link (once, while unexpired): marks the email proven and returns
/// the login that proved it.
pub async fn confirm_email(state: &AppState, token: &str) -> ApiResult<User> {
    let store = AuthStore::new(&state.db);
    let record = store
        .consume_verification(&token_hash(token))
        .await?
        .ok_or_else(invalid_token)?;
    if !store.mark_email_verified(record.user_id, &record.email).await? {
        return Err(invalid_token());
    }
    store.user_by_id(record.user_id).await?.ok_or_else(invalid_token)
}

/// Queues an email of `kind` about `about` (an account or client record) showing `vars` (an
/// object) in the outbox: the answer does not wait for SMTP, but it does wait for the job to be
/// stored, and is a 503 when it cannot be (the link it carries would otherwise be lost behind a
/// success).
pub async fn send_later(
    state: &AppState,
    kind: EmailKind,
    to: &str,
    language: Option<&str>,
    vars: serde_json::Value,
    about: ObjectId,
) -> ApiResult<()> {
    let email = EmailRequested {
        about,
        kind,
        to: to.to_owned(),
        language: language.map(str::to_owned),
        vars: match vars {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
    };
    state.email_queue.queue(&email).await.map_err(|e| {
        tracing::error!(
            kind = kind.as_str(),
            error = format!("{e:#}"),
            "account email not queued; nothing will be sent"
        );
        ApiError::Unavailable {
            code: "EMAIL_NOT_QUEUED",
            message: "The email could not be queued; please try again".into(),
            retry_after_secs: 5,
        }
    })
}

/// Checks credentials under the per-IP, per-account and lockout limits.
pub async fn authenticate(
    state: &AppState,
    ip: &str,
    email: &str,
    password_attempt: String,
    expected: Option<Role>,
) -> ApiResult<User> {
    let limits = &state.config.rate_limit;
    let fail_key = format!("login:fail:{email}");
    state
        .limiter
        .hit(limits.login_ip, &format!("login:ip:{ip}"))
        .await?;
    state
        .limiter
        .hit(limits.login_account, &format!("login:acct:{email}"))
        .await?;
    // Each attempt reserves one of the account's allowed failures *before* the password is
    // checked (one atomic increment shared by every instance), so a burst of concurrent
    // guesses gets exactly `lockout.max` checks; a success gives the reservation back.
    state.limiter.hit(limits.lockout, &fail_key).await?;

    let store = AuthStore::new(&state.db);
    let user = store.user_by_email(email).await?;
    // Unknown emails verify against a dummy hash: same work, same answer, similar time.
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::dummy_hash().to_owned());
    let verdict = match password::verify(&state.hashing, password_attempt.clone(), stored).await {
        Ok(v) => v,
        Err(e) => {
            // No password was checked (hashing busy, 503): the attempt does not count.
            state.limiter.give_back(&fail_key).await;
            return Err(e);
        }
    };
    match user {
        Some(user) if verdict != Verdict::Mismatch && role_matches(&user, expected) => {
            state.limiter.reset(&fail_key).await;
            if verdict == Verdict::OkRehash {
                let upgraded = password::hash(&state.hashing, password_attempt).await?;
                store
                    .replace_password_hash(user.id, &user.password_hash, &upgraded)
                    .await?;
            }
            Ok(user)
        }
        _ => Err(ApiError::unauthorized(BAD_CREDENTIALS)),
    }
}

/// Issues an access token and a refresh token of a new family.
pub async fn new_session(state: &AppState, user: &User, remember: bool) -> ApiResult<Session> {
    let days = if remember {
        state.config.auth.refresh_ttl_days as i64
    } else {
        1
    };
    let expires_at = DateTime::from_millis(DateTime::now().timestamp_millis() + days * DAY_MS);
    issue(state, user, uuid::Uuid::new_v4().to_string(), expires_at).await
}

async fn issue(state: &AppState, user: &User, family_id: String, expires_at: DateTime) -> ApiResult<Session> {
    let refresh = state
        .tokens
        .issue_refresh(&user.id.to_hex(), expires_at.timestamp_millis().div_euclid(1000))?;
    let record = RefreshToken {
        id: ObjectId::new(),
        token_hash: token_hash(&refresh),
        family_id,
        user_id: user.id,
        role: user.role,
        created_at: DateTime::now(),
        expires_at,
        used_at: None,
        revoked_at: None,
    };
    AuthStore::new(&state.db).insert_refresh(&record).await?;
    let access = state.tokens.issue(&user.id.to_hex(), user.role)?;
    Ok(Session {
        success: true,
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl_secs(),
        user: UserView::from(user),
    })
}

/// Rotates a refresh token: the successor keeps the family and its absolute expiry.
pub async fn refresh(state: &AppState, ip: &str, presented: &str) -> ApiResult<Session> {
    let limits = &state.config.rate_limit;
    state
        .limiter
        .hit(limits.refresh_ip, &format!("refresh:ip:{ip}"))
        .await?;
    let store = AuthStore::new(&state.db);
    let hash = token_hash(presented);
    // The per-account limit is checked before the token is spent, so a refused refresh leaves
    // the session usable once the window passes.
    if let Some(owner) = store.refresh_owner(&hash).await? {
        state
            .limiter
            .hit(limits.refresh_account, &format!("refresh:acct:{owner}"))
            .await?;
    }
    let token = match store.rotate(&hash).await? {
        Rotation::Rotated(t) => t,
        Rotation::Reused => {
            tracing::warn!("refresh token reuse detected; family revoked");
            return Err(ApiError::Unauthorized {
                code: "TOKEN_REUSED",
                message: "This session was ended for safety; please sign in again".into(),
            });
        }
        Rotation::Invalid => {
            return Err(ApiError::Unauthorized {
                code: "INVALID_TOKEN",
                message: "Invalid or expired refresh token".into(),
            })
        }
    };
    let user = store
        .user_by_id(token.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("Invalid or expired refresh token"))?;
    issue(state, &user, token.family_id, token.expires_at).await
}

/// Sets a new password and ends every session of the user.
pub async fn set_password(state: &AppState, user_id: ObjectId, new_password: String) -> ApiResult<()> {
    let store = AuthStore::new(&state.db);
    let hash = password::hash(&state.hashing, new_password).await?;
    store.set_password_hash(user_id, &hash).await?;
    store.revoke_all_for_user(user_id).await?;
    // Reset links asked for before the change no longer change the password again.
    store.spend_resets_of(user_id).await?;
    Ok(())
}

/// Creates a single-use reset token and queues the email with its link (forgot-password runs
/// it in the background, so the answer takes the same time whether or not the account exists).
/// `asked`: when the link was asked for (what it counts as made at).
pub async fn start_password_reset(state: &AppState, user: &User, asked: DateTime) -> ApiResult<()> {
    let token = random_token();
    let ttl_ms = state.config.auth.reset_token_ttl_minutes as i64 * 60_000;
    let expires = DateTime::from_millis(asked.timestamp_millis() + ttl_ms);
    AuthStore::new(&state.db)
        .insert_reset(user.id, &token_hash(&token), asked, expires)
        .await?;
    let link = format!(
        "{}/reset-password?token={token}",
        state.config.mail.public_base_url.trim_end_matches('/')
    );
    let vars = serde_json::json!({
        "name": user.name,
        "link": link,
        "minutes": state.config.auth.reset_token_ttl_minutes,
    });
    send_later(state, EmailKind::PasswordReset, &user.email, None, vars, user.id).await
}

/// The client login an invitation (whose link proves the email) leads to.
pub enum InvitedLogin {
    /// A login whose owner had already proved the email: it is left as it was.
    AlreadyProven(User),
    /// A login made, or taken over, by whoever redeemed the invitation.
    Claimed(User),
}

/// The client login for an invited `email` whose owner has just proved it: the one that exists,
/// or a new one with `password`. An unproven login for this email may be anyone's; the
/// invitation is the first proof, so whoever redeems it owns the login: their password
/// replaces the one it had (ending every session made with the old one).
pub async fn claim_invited_login(
    state: &AppState,
    name: String,
    email: String,
    password: String,
) -> ApiResult<InvitedLogin> {
    let store = AuthStore::new(&state.db);
    let Some(user) = store.user_by_email(&email).await? else {
        let req = RegisterRequest {
            name,
            email,
            confirm_password: password.clone(),
            password,
            user_type: None,
        };
        let user = create_user(state, req, Role::Client, Some(DateTime::now())).await?;
        return Ok(InvitedLogin::Claimed(user));
    };
    if user.role != Role::Client {
        return Err(ApiError::Conflict {
            code: "EMAIL_TAKEN",
            message: "An account with this email already exists".into(),
            extra: Default::default(),
        });
    }
    if user.email_verified_at.is_some() {
        return Ok(InvitedLogin::AlreadyProven(user));
    }
    set_password(state, user.id, password).await?;
    store.mark_email_verified(user.id, &email).await?;
    let user = store.user_by_id(user.id).await?.ok_or_else(invalid_token)?;
    Ok(InvitedLogin::Claimed(user))
}
