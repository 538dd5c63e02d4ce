//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::OpenApi;

/// Every documented path and schema.
#[derive(OpenApi)]
#[openapi(
    info(title = "Dhara API", description = "Booking and practice backend for therapists"),
    paths(
        crate::ops::health, crate::ops::ready, crate::ops::metrics, crate::ops::openapi,
        crate::auth::register, crate::auth::login, crate::auth::refresh, crate::auth::logout,
        crate::auth::me, crate::auth::change_password, crate::auth::forgot_password,
        crate::auth::reset_password, crate::auth::client_login, crate::auth::client_register,
    ),
    components(schemas(
        crate::ops::Health, crate::ops::Ready, crate::ops::ReadyChecks,
        crate::auth::model::Session, crate::auth::model::UserView, crate::auth::model::Role,
        crate::auth::model::UserType,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Probes, metrics and this document"),
        (name = "auth", description = "Accounts, sign-in and sessions"),
    )
)]
pub struct ApiDoc;

/// Declares the Bearer scheme the API uses.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
