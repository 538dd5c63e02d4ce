//! Access tokens (HS256 JWT: `sub`, `role`, `exp`), refresh tokens (HS256 JWT too, because the
//! dashboard decodes `exp` from both, with a random `jti`; never usable as an access token), and
//! opaque reset tokens. Refresh and reset tokens are stored only as SHA-256 hashes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::Role;
use crate::config::AuthConfig;

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: i64,
    pub iat: i64,
    /// Issue time in milliseconds: a password change ends the sessions made before it, even
    /// within the same second.
    #[serde(default, rename = "iatMs", skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<i64>,
}

/// Claims of a refresh token: no `role`, so it never passes as an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshClaims {
    sub: String,
    typ: String,
    jti: String,
    iat: i64,
    exp: i64,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

/// Signs and checks access tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl_secs: i64,
}

impl TokenKeys {
    /// Keys from the configured secret.
    pub fn new(cfg: &AuthConfig) -> Self {
        let secret = cfg.jwt_secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl_secs: cfg.access_ttl_seconds as i64,
        }
    }

    /// Lifetime of access tokens, in seconds.
    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }

    /// A signed access token for `user_id`.
    pub fn issue(&self, user_id: &str, role: Role) -> anyhow::Result<String> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let now = now_ms.div_euclid(1000);
        let claims = Claims {
            sub: user_id.to_owned(),
            role,
            iat: now,
            iat_ms: Some(now_ms),
            exp: now + self.access_ttl_secs,
        };
        Ok(encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// A signed refresh token for `user_id` expiring at `expires_at_secs` (the family's end).
    /// Its 256-bit random `jti` makes it unguessable; what the server keeps is its hash.
    pub fn issue_refresh(&self, user_id: &str, expires_at_secs: i64) -> anyhow::Result<String> {
        let claims = RefreshClaims {
            sub: user_id.to_owned(),
            typ: "refresh".to_owned(),
            jti: random_token(),
            iat: chrono::Utc::now().timestamp(),
            exp: expires_at_secs,
        };
        Ok(encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// Verifies signature, algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// A fresh random opaque token (256 bits, URL-safe).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of an opaque token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn keys(secret: &str, ttl: u64) -> TokenKeys {
        TokenKeys::new(&AuthConfig {
            jwt_secret: SecretString::from(secret.to_owned()),
            access_ttl_seconds: ttl,
            refresh_ttl_days: 30,
            reset_token_ttl_minutes: 10,
            hash_concurrency: 0,
            hash_queue: 64,
        })
    }

    #[test]
    fn tokens_verify_and_tampering_is_caught() {
        let k = keys("0123456789abcdef0123456789abcdef", 900);
        let t = k.issue("abc", Role::Therapist).unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!(c.sub, "abc");
        assert_eq!(c.role, Role::Therapist);
        assert!(c.exp - c.iat == 900);
        let other = keys("ffffffffffffffffffffffffffffffff", 900);
        assert_eq!(other.verify(&t).unwrap_err(), TokenError::Invalid);
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"abc","role":"admin","exp":9999999999,"iat":1}"#);
        assert_eq!(k.verify(&parts.join(".")).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn opaque_tokens_are_random_and_hashed() {
        let a = random_token();
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
