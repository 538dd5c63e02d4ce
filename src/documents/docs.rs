//! Schemas of the document answers built with `json!` and of the upload form (OpenAPI only).

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{Category, DocumentView, SharedDocumentView};
use crate::http::pagination::Nested;

/// `GET /api/documents`: `data`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct DocumentPage {
    documents: Vec<DocumentView>,
    pagination: Nested,
    total: u64,
    has_more: bool,
}

/// `GET /api/documents/client`: `data`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct SharedDocumentPage {
    documents: Vec<SharedDocumentView>,
    pagination: Nested,
}

/// A therapist's storage.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct Storage {
    /// Bytes of live documents.
    used: u64,
    /// The quota, in bytes.
    limit: u64,
    available: u64,
    file_count: i64,
    percent_used: f64,
    /// The largest file an upload may be, in bytes.
    max_file_size: u64,
}

/// One group of the statistics.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct DocumentGroup {
    key: String,
    count: i64,
    total_size: i64,
}

/// `GET /api/documents/statistics`: `data` (plus `byCategory`, `byType` or `byVisibility`,
/// the groups keyed by name).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct DocumentStatistics {
    group_by: String,
    groups: Vec<DocumentGroup>,
    total_documents: i64,
    total_size: i64,
    storage: Storage,
}

/// `POST /api/documents/upload`: 201.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct Uploaded {
    success: bool,
    /// The new document's id (also `data.documentId`).
    document_id: String,
    data: DocumentView,
    message: String,
}

/// `DELETE /api/documents/{id}`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Deleted {
    success: bool,
    message: String,
    data: DocumentView,
}

/// The upload form (`multipart/form-data`): the file, then optional metadata.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file (at most `documents.max_file_bytes`; its content decides its type).
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// At most 200 characters (`name` also).
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$")]
    title: Option<String>,
    #[schema(max_length = 2000, pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$")]
    description: Option<String>,
    #[schema(schema_with = form_category)]
    category: Option<String>,
    /// One of the caller's clients (`client_id` also).
    #[schema(schema_with = form_client)]
    client_id: Option<String>,
    /// A JSON array of strings or a comma-separated list (at most 30, 40 characters each).
    tags: Option<String>,
    /// `accessLevel` also.
    #[schema(schema_with = form_visibility)]
    visibility: Option<String>,
    /// `is_confidential` also.
    #[schema(schema_with = form_flag)]
    is_confidential: Option<String>,
}

/// A form field: `pattern` (unanchored) or blank, `null`, `undefined` (absent), spaces around.
fn form_field(pattern: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    crate::http::docs::string()
        .pattern(Some(crate::http::docs::blank_or(&format!(
            "null|undefined|{pattern}"
        ))))
        .into()
}

fn form_category() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    form_field(&crate::http::docs::variant_names::<Category>().join("|"))
}

fn form_visibility() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    form_field(&crate::http::docs::variant_names::<super::model::Visibility>().join("|"))
}

fn form_client() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    form_field("[0-9a-fA-F]{24}")
}

fn form_flag() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let words: Vec<String> = ["true", "1", "yes", "on", "false", "0", "no", "off"]
        .iter()
        .map(|w| crate::http::docs::any_case(w))
        .collect();
    form_field(&words.join("|"))
}

crate::http::docs::text_schema!(
    /// `?tags=`: comma-separated, at most 30 (empty items aside).
    TagList = "DocumentTagFilter",
    crate::http::docs::string()
        .pattern(Some("^[^,]*(,[^,]*){0,29}$"))
        .description(Some("Comma-separated tags, at most 30; a document matches any of them"))
);

crate::http::docs::text_schema!(
    /// `?type=`: families, comma-separated.
    FamilyList = "DocumentTypeFilter",
    crate::http::docs::string()
        .pattern(Some(family_list_pattern()))
        .description(Some(format!(
            "Comma-separated families: {}",
            super::query::FAMILIES.join(", ")
        )))
);

/// Comma-separated families, spaces and empty items allowed (`pdf, image`).
fn family_list_pattern() -> String {
    let one = format!("\\s*({})?\\s*", super::query::FAMILIES.join("|"));
    format!("^{one}(,{one})*$")
}
