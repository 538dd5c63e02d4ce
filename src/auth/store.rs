//! Every MongoDB query of users, refresh tokens, password resets and email verifications.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;

use super::model::{EmailVerification, PasswordReset, RefreshToken, Role, User};
use crate::db::Db;

const USERS: &str = "users";
const REFRESH_TOKENS: &str = "refresh_tokens";
const PASSWORD_RESETS: &str = "password_resets";
const EMAIL_VERIFICATIONS: &str = "email_verifications";

/// The parts of an account that decide whether its tokens still count.
#[derive(Debug, Clone, Copy)]
pub struct AccountState {
    pub role: Role,
    /// Milliseconds since the epoch of the last password change, if any.
    pub password_changed_ms: Option<i64>,
}

/// Queries of the auth capability.
#[derive(Clone)]
pub struct AuthStore {
    users: Collection<User>,
    refresh: Collection<RefreshToken>,
    resets: Collection<PasswordReset>,
    verifications: Collection<EmailVerification>,
}

/// What presenting a refresh token led to.
pub enum Rotation {
    /// The token was live and is now used; here it is.
    Rotated(RefreshToken),
    /// The token was already used: its family has now been revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

impl AuthStore {
    /// Store over the primary (every auth read decides something).
    pub fn new(db: &Db) -> Self {
        Self {
            users: db.collection(USERS),
            refresh: db.collection(REFRESH_TOKENS),
            resets: db.collection(PASSWORD_RESETS),
            verifications: db.collection(EMAIL_VERIFICATIONS),
        }
    }

    pub async fn insert_user(&self, user: &User) -> mongodb::error::Result<()> {
        self.users.insert_one(user).await.map(|_| ())
    }

    pub async fn user_by_email(&self, email: &str) -> mongodb::error::Result<Option<User>> {
        self.users.find_one(doc! { "email": email }).await
    }

    /// What a request's token is checked against: the account's role and last password change.
    pub async fn account_state(&self, id: ObjectId) -> mongodb::error::Result<Option<AccountState>> {
        self.account_states(&[id]).await?.remove(&id).transpose()
    }

    /// `account_state` of several accounts in one read (absent ones are missing from the map).
    /// Each account decodes on its own: one unreadable account fails only its own check.
    pub async fn account_states(
        &self,
        ids: &[ObjectId],
    ) -> mongodb::error::Result<HashMap<ObjectId, mongodb::error::Result<AccountState>>> {
        /// The projected part of a user.
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Row {
            role: Role,
            #[serde(default)]
            password_changed_at: Option<DateTime>,
        }
        let filter = match ids {
            [one] => doc! { "_id": one },
            many => doc! { "_id": { "$in": many.to_vec() } },
        };
        let rows: Vec<Document> = self
            .users
            .clone_with_type::<Document>()
            .find(filter)
            .projection(doc! { "role": 1, "passwordChangedAt": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|raw| {
                let id = raw.get_object_id("_id").ok()?;
                let state = mongodb::bson::from_document::<Row>(raw)
                    .map(|row| AccountState {
                        role: row.role,
                        password_changed_ms: row.password_changed_at.map(|t| t.timestamp_millis()),
                    })
                    .map_err(|e| mongodb::error::Error::from(mongodb::error::ErrorKind::from(e)));
                Some((id, state))
            })
            .collect())
    }

    /// Records that `id` proved it owns `email` (only while that is still its email).
    pub async fn mark_email_verified(&self, id: ObjectId, email: &str) -> mongodb::error::Result<bool> {
        let now = DateTime::now();
        let r = self
            .users
            .update_one(
                doc! { "_id": id, "email": email },
                doc! { "$set": { "emailVerifiedAt": now, "updatedAt": now } },
            )
            .await?;
        Ok(r.matched_count == 1)
    }

    /// Sets (or with `None` clears) the user's avatar link, inside the caller's transaction.
    pub async fn set_avatar_in(
        &self,
        session: &mut mongodb::ClientSession,
        id: ObjectId,
        link: Option<&str>,
    ) -> mongodb::error::Result<()> {
        self.users
            .update_one(doc! { "_id": id }, doc! { "$set": { "avatar": link } })
            .session(session)
            .await
            .map(|_| ())
    }

    pub async fn user_by_id(&self, id: ObjectId) -> mongodb::error::Result<Option<User>> {
        self.users.find_one(doc! { "_id": id }).await
    }

    /// The names of the users among `ids`, in one query (a projection; an unknown id is absent).
    pub async fn names(&self, ids: &[ObjectId]) -> mongodb::error::Result<HashMap<ObjectId, String>> {
        /// The projected part of a user.
        #[derive(serde::Deserialize)]
        struct Named {
            #[serde(rename = "_id")]
            id: ObjectId,
            name: String,
        }
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let named: Vec<Named> = self
            .users
            .clone_with_type::<Named>()
            .find(doc! { "_id": { "$in": ids.to_vec() } })
            .projection(doc! { "name": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(named.into_iter().map(|u| (u.id, u.name)).collect())
    }

    /// Replaces the password hash only if it is still `old` (a concurrent change wins).
    pub async fn replace_password_hash(
        &self,
        id: ObjectId,
        old: &str,
        new: &str,
    ) -> mongodb::error::Result<bool> {
        let r = self
            .users
            .update_one(
                doc! { "_id": id, "passwordHash": old },
                doc! { "$set": { "passwordHash": new, "updatedAt": DateTime::now(), "passwordChangedAt": DateTime::now() } },
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    pub async fn set_password_hash(&self, id: ObjectId, new: &str) -> mongodb::error::Result<()> {
        self.users
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "passwordHash": new, "updatedAt": DateTime::now(), "passwordChangedAt": DateTime::now() } },
            )
            .await
            .map(|_| ())
    }

    pub async fn insert_refresh(&self, token: &RefreshToken) -> mongodb::error::Result<()> {
        self.refresh.insert_one(token).await.map(|_| ())
    }

    /// The user a refresh token belongs to, if it exists at all.
    pub async fn refresh_owner(&self, token_hash: &str) -> mongodb::error::Result<Option<ObjectId>> {
        Ok(self
            .refresh
            .find_one(doc! { "tokenHash": token_hash })
            .await?
            .map(|t| t.user_id))
    }

    /// Atomically marks a live token used; detects reuse of a used one.
    pub async fn rotate(&self, token_hash: &str) -> mongodb::error::Result<Rotation> {
        let now = DateTime::now();
        let claimed = self
            .refresh
            .find_one_and_update(
                doc! { "tokenHash": token_hash, "usedAt": null, "revokedAt": null, "expiresAt": { "$gt": now } },
                doc! { "$set": { "usedAt": now } },
            )
            .return_document(ReturnDocument::After)
            .await?;
        if let Some(token) = claimed {
            return Ok(Rotation::Rotated(token));
        }
        match self.refresh.find_one(doc! { "tokenHash": token_hash }).await? {
            Some(t) if t.used_at.is_some() => {
                self.revoke_family(&t.family_id).await?;
                Ok(Rotation::Reused)
            }
            _ => Ok(Rotation::Invalid),
        }
    }

    pub async fn revoke_family(&self, family_id: &str) -> mongodb::error::Result<()> {
        self.refresh
            .update_many(
                doc! { "familyId": family_id, "revokedAt": null },
                doc! { "$set": { "revokedAt": DateTime::now() } },
            )
            .await
            .map(|_| ())
    }

    /// Revokes the family of `token_hash` if it belongs to `user_id`; true when found.
    pub async fn revoke_family_of(
        &self,
        token_hash: &str,
        user_id: Option<ObjectId>,
    ) -> mongodb::error::Result<bool> {
        let Some(t) = self.refresh.find_one(doc! { "tokenHash": token_hash }).await? else {
            return Ok(false);
        };
        if user_id.is_some_and(|u| u != t.user_id) {
            return Ok(false);
        }
        self.revoke_family(&t.family_id).await?;
        Ok(true)
    }

    pub async fn revoke_all_for_user(&self, user_id: ObjectId) -> mongodb::error::Result<()> {
        self.refresh
            .update_many(
                doc! { "userId": user_id, "revokedAt": null },
                doc! { "$set": { "revokedAt": DateTime::now() } },
            )
            .await
            .map(|_| ())
    }

    /// Spends every live reset token of `user_id` (its password just changed).
    pub async fn spend_resets_of(&self, user_id: ObjectId) -> mongodb::error::Result<()> {
        self.resets
            .update_many(
                doc! { "userId": user_id, "usedAt": null },
                doc! { "$set": { "usedAt": DateTime::now() } },
            )
            .await
            .map(|_| ())
    }

    pub async fn insert_reset(
        &self,
        user_id: ObjectId,
        token_hash: &str,
        created_at: DateTime,
        expires_at: DateTime,
    ) -> mongodb::error::Result<()> {
        let reset = PasswordReset {
            token_hash: token_hash.to_owned(),
            user_id,
            created_at,
            expires_at,
            used_at: None,
        };
        self.resets.insert_one(reset).await.map(|_| ())
    }

    /// Consumes a live reset token (single use); returns its user and when it was made.
    pub async fn consume_reset(
        &self,
        token_hash: &str,
    ) -> mongodb::error::Result<Option<(ObjectId, DateTime)>> {
        let now = DateTime::now();
        let found = self
            .resets
            .find_one_and_update(live_token(token_hash, now), doc! { "$set": { "usedAt": now } })
            .await?;
        Ok(found.map(|r| (r.user_id, r.created_at)))
    }

    pub async fn insert_verification(&self, verification: &EmailVerification) -> mongodb::error::Result<()> {
        self.verifications.insert_one(verification).await.map(|_| ())
    }

    /// Consumes a live email verification token (single use); returns its record.
    pub async fn consume_verification(
        &self,
        token_hash: &str,
    ) -> mongodb::error::Result<Option<EmailVerification>> {
        let now = DateTime::now();
        self.verifications
            .find_one_and_update(live_token(token_hash, now), doc! { "$set": { "usedAt": now } })
            .await
    }
}

/// The filter of a single-use token that is neither used nor expired at `now`.
pub fn live_token(token_hash: &str, now: DateTime) -> Document {
    doc! { "tokenHash": token_hash, "usedAt": null, "expiresAt": { "$gt": now } }
}

/// A role check used by queries that must not return another role's account.
pub fn role_matches(user: &User, expected: Option<Role>) -> bool {
    expected.is_none_or(|r| r == user.role)
}
