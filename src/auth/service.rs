//! Sign-in logic shared by the auth handlers: credential checks with brute-force protection,
//! session issuing and rotation, password changes and resets.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;

use super::model::{RefreshToken, RegisterRequest, Role, Session, User, UserView};
use super::password::{self, Verdict};
use super::store::{role_matches, AuthStore, Rotation};
use super::tokens::{random_token, token_hash};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

/// The one answer for unknown email, wrong password and wrong account type.
pub const BAD_CREDENTIALS: &str = "Invalid email or password";

const DAY_MS: i64 = 86_400_000;

/// Creates an account and signs it in.
pub async fn register(state: &AppState, req: RegisterRequest, role: Role) -> ApiResult<Session> {
    let store = AuthStore::new(&state.db);
    let hash = password::hash(req.password).await?;
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
    if role == Role::Client {
        crate::clients::store::ClientStore::new(&state.db)
            .link_user(&user.email, user.id)
            .await?;
    }
    new_session(state, &user, true).await
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
    state.limiter.check(limits.lockout, &fail_key).await?;
    state
        .limiter
        .hit(limits.login_account, &format!("login:acct:{email}"))
        .await?;

    let store = AuthStore::new(&state.db);
    let user = store.user_by_email(email).await?;
    // Unknown emails verify against a dummy hash: same work, same answer, similar time.
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::dummy_hash().to_owned());
    let verdict = password::verify(password_attempt.clone(), stored).await?;
    match user {
        Some(user) if verdict != Verdict::Mismatch && role_matches(&user, expected) => {
            state.limiter.reset(&fail_key).await;
            if verdict == Verdict::OkRehash {
                let upgraded = password::hash(password_attempt).await?;
                store
                    .replace_password_hash(user.id, &user.password_hash, &upgraded)
                    .await?;
            }
            Ok(user)
        }
        _ => {
            state.limiter.record(limits.lockout, &fail_key).await;
            Err(ApiError::unauthorized(BAD_CREDENTIALS))
        }
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
    let refresh = random_token();
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
    let hash = password::hash(new_password).await?;
    store.set_password_hash(user_id, &hash).await?;
    store.revoke_all_for_user(user_id).await?;
    Ok(())
}

/// Creates a single-use reset token and emails the link (in the background, so the answer
/// takes the same time whether or not the account exists).
pub async fn start_password_reset(state: &AppState, user: &User) -> ApiResult<()> {
    let token = random_token();
    let ttl_ms = state.config.auth.reset_token_ttl_minutes as i64 * 60_000;
    let expires = DateTime::from_millis(DateTime::now().timestamp_millis() + ttl_ms);
    AuthStore::new(&state.db)
        .insert_reset(user.id, &token_hash(&token), expires)
        .await?;
    let link = format!(
        "{}/reset-password?token={token}",
        state.config.mail.public_base_url.trim_end_matches('/')
    );
    let body = format!(
        "Hola {name},\n\nSomeone asked to reset the password of your Dhara account.\n\
         Open this link within {mins} minutes to choose a new one:\n\n{link}\n\n\
         If it was not you, ignore this email: your password stays as it is.\n",
        name = user.name,
        mins = state.config.auth.reset_token_ttl_minutes,
    );
    let state = state.clone();
    let to = user.email.clone();
    tokio::spawn(async move {
        if let Err(e) = state
            .mailer
            .send_text(&to, "Reset your Dhara password", body)
            .await
        {
            tracing::error!(error = format!("{e:#}"), "password reset email failed");
        }
    });
    Ok(())
}

const INVITATIONS: &str = "client_invitations";
const INVITATION_DAYS: i64 = 7;

/// After a therapist creates a client with an email: link the record to an existing client
/// login, or email a single-use invitation to activate one.
pub async fn invite_client(
    state: &AppState,
    client: &crate::clients::model::Client,
    email: &str,
) -> ApiResult<crate::clients::model::Client> {
    use mongodb::bson::doc;
    let store = AuthStore::new(&state.db);
    if let Some(user) = store.user_by_email(email).await? {
        if user.role == Role::Client {
            crate::clients::store::ClientStore::new(&state.db)
                .link_user(email, user.id)
                .await?;
            let mut linked = client.clone();
            linked.user_id = Some(user.id);
            return Ok(linked);
        }
        // The email belongs to a therapist account: no client login can be made for it.
        return Ok(client.clone());
    }
    let token = random_token();
    let expires = DateTime::from_millis(DateTime::now().timestamp_millis() + INVITATION_DAYS * DAY_MS);
    state
        .db
        .collection::<mongodb::bson::Document>(INVITATIONS)
        .insert_one(doc! {
            "tokenHash": token_hash(&token), "email": email, "name": &client.name,
            "clientId": client.id, "therapistId": client.therapist_id,
            "createdAt": DateTime::now(), "expiresAt": expires, "usedAt": null,
        })
        .await?;
    let link = format!(
        "{}/activate?token={token}",
        state.config.mail.public_base_url.trim_end_matches('/')
    );
    let body = format!(
        "Hola {},\n\nYour therapist has added you to Dhara, where you can see and manage your sessions.\n\
         Open this link within {INVITATION_DAYS} days to choose your password:\n\n{link}\n",
        client.name
    );
    let state = state.clone();
    let to = email.to_owned();
    tokio::spawn(async move {
        if let Err(e) = state.mailer.send_text(&to, "Your Dhara account", body).await {
            tracing::error!(error = format!("{e:#}"), "invitation email failed");
        }
    });
    Ok(client.clone())
}

/// Redeems an invitation: creates the client login and links every record with its email.
pub async fn activate_client(state: &AppState, token: &str, password: String) -> ApiResult<Session> {
    use mongodb::bson::doc;
    let now = DateTime::now();
    let invitation = state
        .db
        .collection::<mongodb::bson::Document>(INVITATIONS)
        .find_one_and_update(
            doc! { "tokenHash": token_hash(token), "usedAt": null, "expiresAt": { "$gt": now } },
            doc! { "$set": { "usedAt": now } },
        )
        .await?
        .ok_or_else(|| ApiError::field("token", "is invalid, expired or already used"))?;
    let email = invitation.get_str("email").unwrap_or_default().to_owned();
    let name = invitation.get_str("name").unwrap_or("Client").to_owned();
    let req = RegisterRequest {
        name,
        email,
        confirm_password: password.clone(),
        password,
        user_type: None,
    };
    register(state, req, Role::Client).await
}

/// The therapist's client record for a client login: found by login or email, else created.
pub async fn client_record_for(
    state: &AppState,
    therapist: ObjectId,
    user_id: ObjectId,
) -> ApiResult<ObjectId> {
    use mongodb::bson::doc;
    let clients = state.db.collection::<mongodb::bson::Document>("clients");
    if let Some(d) = clients
        .find_one(doc! { "therapistId": therapist, "userId": user_id })
        .await?
    {
        return Ok(d.get_object_id("_id").map_err(anyhow::Error::from)?);
    }
    let user = AuthStore::new(&state.db)
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
    let linked = clients
        .find_one_and_update(
            doc! { "therapistId": therapist, "email": &user.email },
            doc! { "$set": { "userId": user_id, "updatedAt": DateTime::now() } },
        )
        .await?;
    if let Some(d) = linked {
        return Ok(d.get_object_id("_id").map_err(anyhow::Error::from)?);
    }
    let now = DateTime::now();
    let record = crate::clients::model::Client {
        id: ObjectId::new(),
        therapist_id: therapist,
        user_id: Some(user_id),
        name: user.name.clone(),
        email: Some(user.email.clone()),
        phone: None,
        age: None,
        address: None,
        emergency_contact: None,
        notes: None,
        tags: Vec::new(),
        preferences: Default::default(),
        status: crate::clients::model::ClientStatus::Active,
        created_at: now,
        updated_at: now,
    };
    match crate::clients::store::ClientStore::new(&state.db)
        .insert(&record)
        .await
    {
        Ok(()) => Ok(record.id),
        // Created concurrently by another request: use that one.
        Err(e) if crate::db::is_duplicate_key(&e) => {
            let d = clients
                .find_one(doc! { "therapistId": therapist, "email": &user.email })
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("client record vanished")))?;
            Ok(d.get_object_id("_id").map_err(anyhow::Error::from)?)
        }
        Err(e) => Err(e.into()),
    }
}
