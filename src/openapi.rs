//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::OpenApi;

/// Every documented path and schema.
#[derive(OpenApi)]
#[openapi(
    info(title = "Dhara API", description = "Booking and practice backend for therapists"),
    paths(crate::ops::health, crate::ops::ready, crate::ops::metrics, crate::ops::openapi),
    components(schemas(crate::ops::Health, crate::ops::Ready, crate::ops::ReadyChecks)),
    tags((name = "operations", description = "Probes, metrics and this document"))
)]
pub struct ApiDoc;
