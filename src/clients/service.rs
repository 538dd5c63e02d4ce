//! One function per change of a client record: each performs the write and then tells the
//! event bus (`Event::Client`). The links between records and client logins are in `linking`.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;

use super::invitations::{Invitation, InvitationStore};
use super::model::{Client, ClientPatch, ClientStatus, CreateClient, UpdateClient};
use super::store::ClientStore;
use crate::app::AppState;
use crate::auth::model::Role;
use crate::auth::service::send_later;
use crate::auth::store::AuthStore;
use crate::auth::tokens::{random_token, token_hash};
use crate::db::OwnerScope;
use crate::error::{ApiError, ApiResult};
use crate::events::{ClientChange, ClientChanged, EmailKind, Event};

const INVITATION_DAYS: i64 = 7;
const DAY_MS: i64 = 86_400_000;

fn email_taken() -> ApiError {
    ApiError::conflict("CLIENT_EXISTS", "You already have a client with this email")
}

/// Tells the bus that `client` of `therapist` changed.
pub(super) async fn emit(state: &AppState, therapist: ObjectId, client: ObjectId, kind: ClientChange) {
    let event = ClientChanged {
        therapist,
        client,
        kind,
    };
    state.events.emit(Event::Client(event)).await;
}

/// Creates a client of `scope`'s therapist; with an email, links them or invites them to the
/// booking site (see [`invite`]).
pub async fn create(state: &AppState, scope: &OwnerScope, req: CreateClient) -> ApiResult<Client> {
    let client = Client::new(scope.therapist_id, req);
    match ClientStore::new(&state.db).insert(&client).await {
        Err(e) if crate::db::is_duplicate_key(&e) => {
            if let Some(email) = &client.email {
                invite_if_never_invited(state, scope, email).await?;
            }
            return Err(email_taken());
        }
        other => other?,
    }
    let (therapist, id) = (client.therapist_id, client.id);
    let client = match client.email.clone() {
        Some(email) => invite(state, client, &email).await,
        None => Ok(client),
    };
    // The record is stored whatever became of its invitation: the lists that show it are
    // invalidated either way.
    emit(state, therapist, id, ClientChange::Created).await;
    client
}

/// Applies a partial update; an email another of the therapist's clients has is a 409.
pub async fn update(
    state: &AppState,
    scope: &OwnerScope,
    id: ObjectId,
    req: UpdateClient,
) -> ApiResult<Client> {
    let patch = ClientPatch::from(req);
    let email_set = patch.email.is_some();
    let updated = match ClientStore::new(&state.db).update(scope, id, &patch).await {
        Err(e) if crate::db::is_duplicate_key(&e) => return Err(email_taken()),
        other => other?,
    };
    let client = updated.ok_or_else(|| ApiError::not_found("Client"))?;
    if let Some(email) = client.email.as_deref().filter(|_| email_set) {
        // Invitations sent to an earlier address are withdrawn (activation also checks the
        // record's current address, so one redeemed meanwhile links nothing).
        InvitationStore::new(&state.db)
            .withdraw_others(client.id, email)
            .await?;
    }
    emit(state, client.therapist_id, client.id, ClientChange::Updated).await;
    Ok(client)
}

/// Soft delete (status `inactive`). Whether the client may be deactivated (no upcoming
/// bookings) is decided by the caller, which can read bookings.
pub async fn deactivate(state: &AppState, scope: &OwnerScope, id: ObjectId) -> ApiResult<Client> {
    let client = ClientStore::new(&state.db)
        .update(scope, id, &ClientPatch::status(ClientStatus::Inactive))
        .await?
        .ok_or_else(|| ApiError::not_found("Client"))?;
    emit(state, client.therapist_id, client.id, ClientChange::Deleted).await;
    Ok(client)
}

/// The therapist's record for `email` when its invitation was never queued (its creation stored
/// it and then answered 503): the retry that meets it (409) invites it now; otherwise the
/// client would never be invited. Not once linked to a login or invited, nor when inactive.
async fn invite_if_never_invited(state: &AppState, scope: &OwnerScope, email: &str) -> ApiResult<()> {
    let clients = ClientStore::new(&state.db);
    let Some((id, None)) = clients.by_email(scope.therapist_id, email).await? else {
        return Ok(());
    };
    if state.email_queue.ever_queued(EmailKind::Invitation, id).await? {
        return Ok(());
    }
    match clients.get(scope, id).await? {
        Some(client) if client.status == ClientStatus::Active => {
            tracing::warn!(client = %id, "a client's invitation was never queued; queued now");
            invite(state, client, email).await.map(|_| ())
        }
        _ => Ok(()),
    }
}

/// After a therapist creates a client with an email: link the record to an existing client
/// login whose owner has proven that email, else email a single-use invitation (whose link
/// is the proof).
async fn invite(state: &AppState, mut client: Client, email: &str) -> ApiResult<Client> {
    if let Some(user) = AuthStore::new(&state.db).user_by_email(email).await? {
        if user.role != Role::Client {
            // The email belongs to a therapist account: no client login can be made for it.
            return Ok(client);
        }
        if user.email_verified_at.is_some() {
            if ClientStore::new(&state.db)
                .link_record(client.id, email, user.id)
                .await?
            {
                client.user_id = Some(user.id);
            }
            return Ok(client);
        }
        // An unproven login: whoever made it may not own the email. The invitation decides.
    }
    let token = random_token();
    let now = DateTime::now();
    let invitation = Invitation {
        token_hash: token_hash(&token),
        email: email.to_owned(),
        name: client.name.clone(),
        client_id: client.id,
        therapist_id: client.therapist_id,
        created_at: now,
        expires_at: DateTime::from_millis(now.timestamp_millis() + INVITATION_DAYS * DAY_MS),
        used_at: None,
    };
    InvitationStore::new(&state.db).insert(&invitation).await?;
    let link = format!(
        "{}/activate?token={token}",
        state.config.mail.public_base_url.trim_end_matches('/')
    );
    let therapist_name = AuthStore::new(&state.db)
        .user_by_id(client.therapist_id)
        .await?
        .map(|u| u.name);
    let vars = serde_json::json!({
        "name": client.name,
        "therapist_name": therapist_name,
        "link": link,
        "hours": INVITATION_DAYS * 24,
    });
    let language = client.preferences.language.as_deref();
    send_later(state, EmailKind::Invitation, email, language, vars, client.id).await?;
    Ok(client)
}

pub use super::linking::client_record_for;
