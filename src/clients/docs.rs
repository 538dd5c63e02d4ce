//! Schemas of the clients' answers built as JSON values: what the document promises about them.
#![allow(dead_code)] // schema descriptions, never built

use serde::Serialize;
use utoipa::ToSchema;

use super::model::ClientView;

/// `{"success", "message", "data"}` of a deactivation.
#[derive(Serialize, ToSchema)]
pub struct Deactivated {
    success: bool,
    message: String,
    data: ClientView,
}

/// `POST /api/clients/verify-email`.
#[derive(Serialize, ToSchema)]
pub struct Verified {
    success: bool,
    message: String,
    data: Linked,
}

/// How many client records the proven email linked.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Linked {
    linked_records: u64,
}
