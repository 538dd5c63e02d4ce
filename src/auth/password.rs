//! Password hashing: argon2id for new hashes; bcrypt hashes of the original system are accepted
//! and flagged for rehashing. Hashing runs on the blocking pool, never on the async workers.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password (or unusable hash).
    Mismatch,
    /// Right password, hash is current.
    Ok,
    /// Right password, but the hash is legacy (bcrypt): store a new argon2id hash.
    OkRehash,
}

fn argon2() -> Argon2<'static> {
    // argon2id v19 with the crate defaults (m = 19 MiB, t = 2, p = 1): OWASP's recommendation.
    Argon2::default()
}

/// Hashes a password with argon2id (PHC string).
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Checks `password` against a stored argon2 or bcrypt hash.
pub async fn verify(password: String, stored: String) -> anyhow::Result<Verdict> {
    Ok(tokio::task::spawn_blocking(move || verify_blocking(&password, &stored)).await?)
}

fn verify_blocking(password: &str, stored: &str) -> Verdict {
    if is_bcrypt(stored) {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verdict::OkRehash,
            _ => Verdict::Mismatch,
        };
    }
    match PasswordHash::new(stored) {
        Ok(parsed) if argon2().verify_password(password.as_bytes(), &parsed).is_ok() => Verdict::Ok,
        _ => Verdict::Mismatch,
    }
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| stored.starts_with(p))
}

/// A real argon2id hash of a random password, so that an unknown email costs the same
/// verification time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = uuid::Uuid::new_v4().to_string();
        argon2()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_round_trip_and_bcrypt_upgrade() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(
            verify("correct horse".into(), h.clone()).await.unwrap(),
            Verdict::Ok
        );
        assert_eq!(verify("wrong".into(), h).await.unwrap(), Verdict::Mismatch);

        let legacy = bcrypt::hash("from-node", 4).unwrap();
        assert_eq!(
            verify("from-node".into(), legacy.clone()).await.unwrap(),
            Verdict::OkRehash
        );
        assert_eq!(verify("nope".into(), legacy).await.unwrap(), Verdict::Mismatch);
        assert_eq!(
            verify("x".into(), "garbage".into()).await.unwrap(),
            Verdict::Mismatch
        );
        assert!(dummy_hash().starts_with("$argon2id$"));
    }
}
