//! Invitations a therapist's client record sends (collection `client_invitations`): a
//! single-use link, stored hashed, whose redemption proves the invited email.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use crate::auth::store::live_token;
use crate::db::Db;

/// The collection name.
pub const INVITATIONS: &str = "client_invitations";

/// A stored invitation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub token_hash: String,
    pub email: String,
    /// The invited client's name (the new login's name).
    pub name: String,
    /// The record the redeemed invitation links, and only that one.
    pub client_id: ObjectId,
    pub therapist_id: ObjectId,
    pub created_at: DateTime,
    pub expires_at: DateTime,
    pub used_at: Option<DateTime>,
}

/// Queries of invitations.
pub struct InvitationStore {
    invitations: Collection<Invitation>,
}

impl InvitationStore {
    pub fn new(db: &Db) -> Self {
        Self {
            invitations: db.collection(INVITATIONS),
        }
    }

    pub async fn insert(&self, invitation: &Invitation) -> mongodb::error::Result<()> {
        self.invitations.insert_one(invitation).await.map(|_| ())
    }

    /// Withdraws the invitations of a record sent to any address but `email` (its current one).
    pub async fn withdraw_others(&self, client: ObjectId, email: &str) -> mongodb::error::Result<u64> {
        let r = self
            .invitations
            .delete_many(doc! { "clientId": client, "email": { "$ne": email } })
            .await?;
        Ok(r.deleted_count)
    }

    /// Spends a live invitation (once, while unexpired); returns it.
    pub async fn consume(&self, token_hash: &str) -> mongodb::error::Result<Option<Invitation>> {
        let now = DateTime::now();
        self.invitations
            .find_one_and_update(live_token(token_hash, now), doc! { "$set": { "usedAt": now } })
            .await
    }
}
