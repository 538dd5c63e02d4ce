//! Links between a therapist's client records and client logins: made when a login proves the
//! email a record carries (a verification link, an invitation), or when a login books with a
//! therapist for the first time. A record is linked only to a login that proved its email.

use mongodb::bson::oid::ObjectId;

use super::invitations::InvitationStore;
use super::model::Client;
use super::service::emit;
use super::store::ClientStore;
use crate::app::AppState;
use crate::auth::model::{Session, User};
use crate::auth::service::{self as auth, invalid_token, InvitedLogin};
use crate::auth::store::AuthStore;
use crate::auth::tokens::token_hash;
use crate::db::OwnerScope;
use crate::error::{ApiError, ApiResult};
use crate::events::ClientChange;

/// Redeems a verification link: marks the email proven and links the client records that
/// therapists keep for it, telling each therapist whose record was linked. The number linked.
pub async fn verify_email(state: &AppState, token: &str) -> ApiResult<usize> {
    let user = auth::confirm_email(state, token).await?;
    link_verified_client(state, &user).await
}

/// Links every unlinked record for a verified client login's email (`Event::Client` with
/// `ClientChange::Linked` for each, so its therapist is told).
async fn link_verified_client(state: &AppState, user: &User) -> ApiResult<usize> {
    let linked = ClientStore::new(&state.db)
        .link_user(&user.email, user.id)
        .await?;
    for (record, therapist) in &linked {
        let kind = ClientChange::Linked {
            name: user.name.clone(),
            email: user.email.clone(),
        };
        emit(state, *therapist, *record, kind).await;
    }
    Ok(linked.len())
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
pub async fn activate(state: &AppState, token: &str, password: String) -> ApiResult<Activation> {
    let invitation = InvitationStore::new(&state.db)
        .consume(&token_hash(token))
        .await?
        .ok_or_else(invalid_token)?;
    // An invitation is for the address the record had when it was sent: once the therapist
    // changed it (a typo corrected), whoever got the old one takes over nothing.
    let clients = ClientStore::new(&state.db);
    let scope = OwnerScope::of(invitation.therapist_id);
    let record = clients.get(&scope, invitation.client_id).await?;
    if record.and_then(|r| r.email).as_deref() != Some(invitation.email.as_str()) {
        return Err(invalid_token());
    }
    let email = invitation.email.clone();
    let login = auth::claim_invited_login(state, invitation.name, invitation.email, password).await?;
    let (user, proven) = match login {
        // Its owner already proved the email: the invited record joins that login.
        InvitedLogin::AlreadyProven(user) => (user, true),
        InvitedLogin::Claimed(user) => (user, false),
    };
    clients.link_record(invitation.client_id, &email, user.id).await?;
    let (therapist, record) = (invitation.therapist_id, invitation.client_id);
    emit(state, therapist, record, ClientChange::Updated).await;
    if proven {
        return Ok(Activation::Linked);
    }
    let session = auth::new_session(state, &user, true).await?;
    Ok(Activation::Created(Box::new(session)))
}

fn unproven() -> ApiError {
    ApiError::Forbidden(
        "Confirm your email (see the link we sent you) before booking with this therapist".into(),
    )
}

/// The therapist's client record for a client login: found by login or email, else created.
pub async fn client_record_for(
    state: &AppState,
    therapist: ObjectId,
    user_id: ObjectId,
) -> ApiResult<ObjectId> {
    let clients = ClientStore::new(&state.db);
    if let Some(id) = clients.id_by_login(therapist, user_id).await? {
        return Ok(id);
    }
    let user = AuthStore::new(&state.db)
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
    if let Some((id, owner)) = clients.by_email(therapist, &user.email).await? {
        // The therapist keeps a record for this email (with its history and notes): only a
        // login that proved the email may take it over.
        if user.email_verified_at.is_none() {
            return Err(unproven());
        }
        if owner.is_some_and(|u| u != user_id) {
            return Err(ApiError::Forbidden(
                "This email's record belongs to another account".into(),
            ));
        }
        clients.link_record(id, &user.email, user_id).await?;
        emit(state, therapist, id, ClientChange::Updated).await;
        return Ok(id);
    }
    let record = Client::for_login(therapist, user_id, &user.name, &user.email);
    match clients.insert(&record).await {
        Ok(()) => {
            emit(state, therapist, record.id, ClientChange::Created).await;
            Ok(record.id)
        }
        // Someone made a record for this email meanwhile: it is ours only if it already
        // names this login, or this login proved the email (the same rule as above).
        Err(e) if crate::db::is_duplicate_key(&e) => {
            let (id, owner) = clients
                .by_email(therapist, &user.email)
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("client record vanished")))?;
            let linked = owner == Some(user_id)
                || (owner.is_none()
                    && user.email_verified_at.is_some()
                    && clients.link_record(id, &user.email, user_id).await?);
            if !linked {
                return Err(unproven());
            }
            if owner != Some(user_id) {
                emit(state, therapist, id, ClientChange::Updated).await;
            }
            Ok(id)
        }
        Err(e) => Err(e.into()),
    }
}
