//! Stored user, token documents and the auth request/response types.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// A user's role. Stored in English; shown to the dashboard in Spanish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[serde(alias = "terapeuta")]
    Therapist,
    #[serde(alias = "cliente")]
    Client,
    Admin,
}

impl Role {
    /// The name the dashboard reads (`terapeuta`, `cliente`, `admin`).
    pub fn dashboard_name(self) -> &'static str {
        match self {
            Self::Therapist => "terapeuta",
            Self::Client => "cliente",
            Self::Admin => "admin",
        }
    }
}

/// The `userType` a sign-in form sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum UserType {
    #[serde(alias = "therapist", rename = "terapeuta")]
    Therapist,
    #[serde(alias = "client", rename = "cliente")]
    Client,
}

impl UserType {
    /// The role this user type signs in as.
    pub fn role(self) -> Role {
        match self {
            Self::Therapist => Role::Therapist,
            Self::Client => Role::Client,
        }
    }
}

/// A stored user (collection `users`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    #[serde(default)]
    pub avatar: Option<String>,
    #[serde(default)]
    pub is_verified: bool,
    #[serde(default = "unverified")]
    pub verification_status: String,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// When the owner proved the email (a verification or invitation link). Client records a
    /// therapist keeps for that email are linked to this login only after that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified_at: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

fn unverified() -> String {
    "unverified".into()
}

/// The zone a therapist gets until they choose one.
pub fn default_timezone() -> String {
    "Europe/Madrid".into()
}

/// A user as the dashboard reads it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    #[schema(value_type = crate::http::docs::ObjectIdText)]
    pub id: String,
    #[serde(rename = "_id")]
    #[schema(value_type = crate::http::docs::ObjectIdText)]
    pub underscore_id: String,
    pub name: String,
    pub email: String,
    /// `terapeuta`, `cliente` or `admin`.
    #[schema(pattern = "^(terapeuta|cliente|admin)$")]
    pub role: &'static str,
    pub avatar: Option<String>,
    pub is_verified: bool,
    pub verification_status: String,
    pub timezone: String,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        let id = u.id.to_hex();
        Self {
            underscore_id: id.clone(),
            id,
            name: u.name.clone(),
            email: u.email.clone(),
            role: u.role.dashboard_name(),
            avatar: u.avatar.clone(),
            is_verified: u.is_verified,
            verification_status: u.verification_status.clone(),
            timezone: u.timezone.clone(),
            created_at: u.created_at.try_to_rfc3339_string().unwrap_or_default(),
        }
    }
}

/// A refresh token (collection `refresh_tokens`), stored hashed. Rotation marks it used and
/// issues a successor in the same family; presenting a used one revokes the family.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshToken {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub token_hash: String,
    pub family_id: String,
    pub user_id: ObjectId,
    pub role: Role,
    pub created_at: DateTime,
    pub expires_at: DateTime,
    pub used_at: Option<DateTime>,
    pub revoked_at: Option<DateTime>,
}

/// A single-use emailed link proving a client login's email (collection
/// `email_verifications`), stored hashed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailVerification {
    pub token_hash: String,
    pub user_id: ObjectId,
    pub email: String,
    pub created_at: DateTime,
    pub expires_at: DateTime,
    pub used_at: Option<DateTime>,
}

/// A single-use password reset link (collection `password_resets`), stored hashed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordReset {
    pub token_hash: String,
    pub user_id: ObjectId,
    pub created_at: DateTime,
    pub expires_at: DateTime,
    pub used_at: Option<DateTime>,
}

/// Trims and lower-cases an email address while deserializing.
pub fn email<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(String::deserialize(d)?.trim().to_lowercase())
}

fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(String::deserialize(d)?.trim().to_owned())
}

/// `POST /api/auth/register` and `/api/clients/register`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 120, message = "must be 1 to 120 characters"))]
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub name: String,
    #[serde(deserialize_with = "email")]
    #[validate(email(message = "must be a valid email address"), length(max = 254))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[validate(length(min = 8, max = 128, message = "must be 8 to 128 characters"))]
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// The same as `password`.
    #[validate(must_match(other = "password", message = "must match password"))]
    #[schema(min_length = 8, max_length = 128)]
    pub confirm_password: String,
    #[serde(default)]
    pub user_type: Option<UserType>,
}

/// `POST /api/auth/login`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    #[serde(deserialize_with = "email")]
    #[validate(length(min = 3, max = 254, message = "is required"))]
    #[schema(min_length = 3, max_length = 254, pattern = r"\S")]
    pub email: String,
    #[validate(length(min = 1, max = 1024, message = "is required"))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    #[serde(default)]
    pub remember_me: bool,
    #[serde(default)]
    pub user_type: Option<UserType>,
}

/// `POST /api/auth/refresh` and the optional body of `logout`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    #[validate(length(min = 16, max = 512, message = "is not a valid refresh token"))]
    #[schema(min_length = 16, max_length = 512)]
    pub refresh_token: String,
}

/// Optional body of `logout`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// `POST /api/auth/change-password`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    #[validate(length(min = 1, max = 1024, message = "is required"))]
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    #[validate(length(min = 8, max = 128, message = "must be 8 to 128 characters"))]
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
    /// The same as `newPassword`.
    #[validate(must_match(other = "new_password", message = "must match newPassword"))]
    #[schema(min_length = 8, max_length = 128)]
    pub confirm_password: String,
}

/// `POST /api/auth/forgot-password`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForgotPasswordRequest {
    #[serde(deserialize_with = "email")]
    #[validate(email(message = "must be a valid email address"))]
    #[schema(format = Email)]
    pub email: String,
}

/// `POST /api/auth/reset-password`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetPasswordRequest {
    #[validate(length(min = 16, max = 512, message = "is not a valid reset token"))]
    #[schema(min_length = 16, max_length = 512)]
    pub token: String,
    #[validate(length(min = 8, max = 128, message = "must be 8 to 128 characters"))]
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// The same as `password`.
    #[validate(must_match(other = "password", message = "must match password"))]
    #[schema(min_length = 8, max_length = 128)]
    pub confirm_password: String,
}

/// A token pair with the user, as login, register and refresh answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub success: bool,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub user: UserView,
}

/// `GET /api/auth/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub success: bool,
    pub user: UserView,
}
