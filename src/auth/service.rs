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
use crate::events::{ClientChange, ClientChanged, EmailKind, EmailRequested, Event};

/// The one answer for unknown email, wrong password and wrong account type.
pub const BAD_CREDENTIALS: &str = "Invalid email or password";

const DAY_MS: i64 = 86_400_000;

/// Creates an account and signs it in. A client login links to no therapist's records yet: it
/// is sent a verification email, and linking waits for that proof (see [`verify_email`]).
pub async fn register(state: &AppState, req: RegisterRequest, role: Role) -> ApiResult<Session> {
    let user = create_user(state, req, role, None).await?;
    if role == Role::Client {
        start_email_verification(state, &user).await?;
    }
    new_session(state, &user, true).await
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

const VERIFICATIONS: &str = "email_verifications";
const VERIFICATION_HOURS: i64 = 48;

/// Emails a single-use link proving the client login's email (stored hashed, 48 h).
pub async fn start_email_verification(state: &AppState, user: &User) -> ApiResult<()> {
    use mongodb::bson::doc;
    let token = random_token();
    let now = DateTime::now();
    let expires = DateTime::from_millis(now.timestamp_millis() + VERIFICATION_HOURS * 3_600_000);
    state
        .db
        .collection::<mongodb::bson::Document>(VERIFICATIONS)
        .insert_one(doc! {
            "tokenHash": token_hash(&token), "userId": user.id, "email": &user.email,
            "createdAt": now, "expiresAt": expires, "usedAt": null,
        })
        .await?;
    let link = format!(
        "{}/verify-email?token={token}",
        state.config.mail.public_base_url.trim_end_matches('/')
    );
    let body = format!(
        "Hola {},\n\nConfirm that this is your email to see the sessions your therapists keep for it.\n\
         Open this link within {VERIFICATION_HOURS} hours:\n\n{link}\n\n\
         If you did not create a Dhara account, ignore this email.\n",
        user.name
    );
    send_later(
        state,
        EmailKind::Verification,
        &user.email,
        "Confirm your email",
        body,
    )
    .await;
    Ok(())
}

/// Spends a single-use emailed token of `collection` (stored hashed): its record, once, while
/// unexpired; a 400 on `token` otherwise.
async fn spend_token(state: &AppState, collection: &str, token: &str) -> ApiResult<mongodb::bson::Document> {
    use mongodb::bson::doc;
    let now = DateTime::now();
    state
        .db
        .collection::<mongodb::bson::Document>(collection)
        .find_one_and_update(
            doc! { "tokenHash": token_hash(token), "usedAt": null, "expiresAt": { "$gt": now } },
            doc! { "$set": { "usedAt": now } },
        )
        .await?
        .ok_or_else(|| ApiError::field("token", "is invalid, expired or already used"))
}

/// Redeems a verification link: marks the email proven and links the client records that
/// therapists keep for it, telling each therapist whose record was linked.
pub async fn verify_email(state: &AppState, token: &str) -> ApiResult<usize> {
    let record = spend_token(state, VERIFICATIONS, token).await?;
    let invalid = || ApiError::field("token", "is invalid, expired or already used");
    let user_id = record.get_object_id("userId").map_err(|_| invalid())?;
    let email = record.get_str("email").map_err(|_| invalid())?;
    let store = AuthStore::new(&state.db);
    if !store.mark_email_verified(user_id, email).await? {
        return Err(invalid());
    }
    let user = store.user_by_id(user_id).await?.ok_or_else(invalid)?;
    link_verified_client(state, &user).await
}

/// Links every unlinked record for a verified client login's email, notifying each therapist.
async fn link_verified_client(state: &AppState, user: &User) -> ApiResult<usize> {
    let linked = crate::clients::store::ClientStore::new(&state.db)
        .link_user(&user.email, user.id)
        .await?;
    for (record, therapist) in &linked {
        let kind = ClientChange::Linked {
            name: user.name.clone(),
            email: user.email.clone(),
        };
        let event = ClientChanged {
            therapist: *therapist,
            client: *record,
            kind,
        };
        state.events.emit(Event::Client(event)).await;
    }
    Ok(linked.len())
}

/// Asks for an email (sent in the background: the answer does not wait for SMTP).
async fn send_later(state: &AppState, kind: EmailKind, to: &str, subject: &str, body: String) {
    let email = EmailRequested {
        kind,
        to: to.to_owned(),
        subject: subject.to_owned(),
        body,
    };
    state.events.emit(Event::Email(email)).await;
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
    send_later(
        state,
        EmailKind::PasswordReset,
        &user.email,
        "Reset your Dhara password",
        body,
    )
    .await;
    Ok(())
}

const INVITATIONS: &str = "client_invitations";
const INVITATION_DAYS: i64 = 7;

/// After a therapist creates a client with an email: link the record to an existing client
/// login whose owner has proven that email, else email a single-use invitation (whose link
/// is the proof).
pub async fn invite_client(
    state: &AppState,
    client: &crate::clients::model::Client,
    email: &str,
) -> ApiResult<crate::clients::model::Client> {
    use mongodb::bson::doc;
    let store = AuthStore::new(&state.db);
    if let Some(user) = store.user_by_email(email).await? {
        if user.role != Role::Client {
            // The email belongs to a therapist account: no client login can be made for it.
            return Ok(client.clone());
        }
        if user.email_verified_at.is_some() {
            let mut linked = client.clone();
            if crate::clients::store::ClientStore::new(&state.db)
                .link_record(client.id, user.id)
                .await?
            {
                linked.user_id = Some(user.id);
            }
            return Ok(linked);
        }
        // An unproven login: whoever made it may not own the email. The invitation decides.
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
    send_later(state, EmailKind::Invitation, email, "Your Dhara account", body).await;
    Ok(client.clone())
}

/// What redeeming an invitation did.
pub enum Activation {
    /// A new client login, signed in.
    Created(Box<Session>),
    /// The email already had a client login: the invited record is now linked to it.
    Linked,
}

/// Redeems an invitation (the link proves the email): creates the client login, or uses the
/// one that exists, and links the invited record, and only that one.
pub async fn activate_client(state: &AppState, token: &str, password: String) -> ApiResult<Activation> {
    let now = DateTime::now();
    let invitation = spend_token(state, INVITATIONS, token).await?;
    let email = invitation.get_str("email").unwrap_or_default().to_owned();
    let name = invitation.get_str("name").unwrap_or("Client").to_owned();
    let record = invitation
        .get_object_id("clientId")
        .map_err(|_| ApiError::field("token", "is invalid, expired or already used"))?;
    let store = AuthStore::new(&state.db);
    let clients = crate::clients::store::ClientStore::new(&state.db);
    if let Some(user) = store.user_by_email(&email).await? {
        if user.role != Role::Client {
            return Err(ApiError::Conflict {
                code: "EMAIL_TAKEN",
                message: "An account with this email already exists".into(),
                extra: Default::default(),
            });
        }
        if user.email_verified_at.is_some() {
            // Its owner already proved the email: the invited record joins that login.
            clients.link_record(record, user.id).await?;
            return Ok(Activation::Linked);
        }
        // An unproven login for this email may be anyone's. The invitation is the first proof,
        // so whoever redeems it owns the login: their password replaces the one it had (ending
        // every session made with the old one), and only then is anything linked.
        set_password(state, user.id, password).await?;
        store.mark_email_verified(user.id, &email).await?;
        clients.link_record(record, user.id).await?;
        let user = store
            .user_by_id(user.id)
            .await?
            .ok_or_else(|| ApiError::field("token", "is invalid, expired or already used"))?;
        return Ok(Activation::Created(Box::new(
            new_session(state, &user, true).await?,
        )));
    }
    let req = RegisterRequest {
        name,
        email,
        confirm_password: password.clone(),
        password,
        user_type: None,
    };
    let user = create_user(state, req, Role::Client, Some(now)).await?;
    clients.link_record(record, user.id).await?;
    Ok(Activation::Created(Box::new(
        new_session(state, &user, true).await?,
    )))
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
    if let Some(d) = clients
        .find_one(doc! { "therapistId": therapist, "email": &user.email })
        .await?
    {
        // The therapist keeps a record for this email (with its history and notes): only a
        // login that proved the email may take it over.
        if user.email_verified_at.is_none() {
            return Err(ApiError::Forbidden(
                "Confirm your email (see the link we sent you) before booking with this therapist".into(),
            ));
        }
        let id = d.get_object_id("_id").map_err(anyhow::Error::from)?;
        if d.get_object_id("userId").is_ok_and(|u| u != user_id) {
            return Err(ApiError::Forbidden(
                "This email's record belongs to another account".into(),
            ));
        }
        crate::clients::store::ClientStore::new(&state.db)
            .link_record(id, user_id)
            .await?;
        return Ok(id);
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
            // Someone made a record for this email meanwhile: it is ours only if it already
            // names this login, or this login proved the email (the same rule as above).
            let d = clients
                .find_one(doc! { "therapistId": therapist, "email": &user.email })
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("client record vanished")))?;
            let id = d.get_object_id("_id").map_err(anyhow::Error::from)?;
            let owner = d.get_object_id("userId").ok();
            let linked = owner == Some(user_id)
                || (owner.is_none()
                    && user.email_verified_at.is_some()
                    && crate::clients::store::ClientStore::new(&state.db)
                        .link_record(id, user_id)
                        .await?);
            if !linked {
                return Err(ApiError::Forbidden(
                    "Confirm your email (see the link we sent you) before booking with this therapist".into(),
                ));
            }
            Ok(id)
        }
        Err(e) => Err(e.into()),
    }
}
