//! The vocabulary of the OpenAPI document that every resource's annotations share: the SPEC's
//! envelopes, path parameters, the formats of ids, dates, times and amounts as the parsers read
//! them (`formats`), and queries and enums as serde reads them (`query`). `crate::openapi`
//! assembles the document and adds, from each operation's own shape, the answers every route of
//! that shape can give (see its module docs), so an annotation states only what is its own.
//!
//! A handler's annotation, the convention:
//! ```text
//! #[utoipa::path(put, path = "/api/things/{id}", tag = "things", params(IdPath),
//!     security(("therapist" = [])), request_body = ThingInput,
//!     responses((status = 200, body = Data<ThingView>), (status = 409, description = "...")))]
//! ```
//! `security`: `("therapist" = [])`, `("client" = [])`, both (any signed-in user), `()` first
//! when the token is optional, or `()` alone for a public route. Error answers without a body
//! get the SPEC's error envelope. A query is documented through the extractor the handler takes,
//! `params(ApiQuery<ThingQuery>)` (its aliases with it); a body that may be left out is
//! `request_body = Option<ThingInput>`. Request fields state what their validators check:
//! `#[schema(max_length = .., minimum = .., pattern = ..)]`, `value_type = DateText` (and the
//! other formats), `schema_with = accepts::<Enum>` (every name serde accepts).

use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};

use crate::error::FieldError;

mod formats;
mod query;

pub use formats::*;
pub use query::*;

/// `{"success": false, "message", "code", "errors"?}`: every 4xx and 5xx answer.
#[derive(ToSchema)]
#[allow(dead_code)] // describes what `ApiError` renders
pub struct ErrorBody {
    /// Always `false`.
    success: bool,
    /// A sentence for people.
    message: String,
    /// A machine code (`VALIDATION_ERROR`, `NOT_FOUND`, `SLOT_TAKEN`...).
    code: String,
    /// Which fields were refused (validation errors).
    #[schema(nullable = false)]
    errors: Option<Vec<FieldError>>,
}

/// `{"success": true, "data": ...}` (200, or 201 on create).
#[derive(ToSchema)]
#[allow(dead_code)] // describes what `envelope::ok` and `envelope::created` render
pub struct Data<T> {
    success: bool,
    data: T,
    #[schema(nullable = false)]
    message: Option<String>,
}

/// `{"success": true, "message": ...}`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes what `envelope::message` renders
pub struct Message {
    success: bool,
    message: String,
}

/// `{id}`: a stored document's id.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct IdPath {
    /// The document's id (24 hexadecimal digits).
    #[param(value_type = ObjectIdText)]
    id: String,
}

/// `{id}` of a therapist's public pages: their id, or `current` for the signed-in therapist.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TherapistPath {
    /// The therapist's id, or `current`.
    #[param(value_type = TherapistRef)]
    id: String,
}

/// `Idempotency-Key`: the same key and body replay the first answer (`Idempotent-Replayed:
/// true`); the same key with another body is a 409. Keys live 24 hours.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKey {
    /// 1 to 255 visible ASCII characters.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    idempotency_key: Option<String>,
}

/// `If-Match`: the version the change was read at (`"3"`, `W/"3"` or `3`); a body `version`
/// wins over it; stale: 412.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IfMatchHeader {
    #[param(rename = "If-Match", pattern = r#"^(W/)?"?[0-9]+"?$"#)]
    if_match: Option<String>,
}

/// A string schema to refine (`pattern`, `format`, lengths).
pub fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// An integer schema to refine (`minimum`, `maximum`).
pub fn integer() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Integer)
}

/// A named schema for a value the derive cannot describe (a constrained string or number):
/// `text_schema!(/// doc\n Name = "ComponentName", string().pattern(Some("...")));`
macro_rules! text_schema {
    ($(#[$doc:meta])* $name:ident = $component:literal, $build:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $build.into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($component)
            }
        }
    };
}
pub(crate) use text_schema;

macro_rules! answer {
    ($(#[$doc:meta])* $name:ident = $status:literal, $description:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                let response = utoipa::openapi::ResponseBuilder::new().description($description).build();
                [($status.to_string(), response.into())].into()
            }
        }
    };
}

answer!(
    /// 429 `RATE_LIMITED` (per address or per account, across instances), with `Retry-After`.
    TooManyRequests = 429,
    "Too many attempts; retry after `Retry-After` seconds"
);

answer!(
    /// 401 `INVALID_CREDENTIALS`: one answer for an unknown email and a wrong password.
    WrongCredentials = 401,
    "Wrong email or password (the same answer for both)"
);

answer!(
    /// 412 `VERSION_CONFLICT`: the `version` (body or `If-Match`) is not the current one.
    StaleVersion = 412,
    "The resource changed since it was read: `version` or `If-Match` is stale"
);

answer!(
    /// 409 `CONCURRENT_UPDATE`: a transaction met a concurrent write; retrying is safe.
    Concurrent = 409,
    "`CONCURRENT_UPDATE`: a concurrent change to the same records; try again"
);
