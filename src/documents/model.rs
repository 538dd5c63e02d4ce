//! A therapist's document (metadata in `documents`, content in GridFS) and its request and
//! response types.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::SortOrder;
use crate::http::query::non_empty;
use crate::time::rfc3339;

/// What a document is about (the dashboard's categories).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Clinical,
    Administrative,
    Legal,
    Educational,
    Personal,
    Shared,
    Template,
    #[default]
    Other,
}

impl Category {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Clinical => "clinical",
            Category::Administrative => "administrative",
            Category::Legal => "legal",
            Category::Educational => "educational",
            Category::Personal => "personal",
            Category::Shared => "shared",
            Category::Template => "template",
            Category::Other => "other",
        }
    }
}

/// Who the therapist means a document for (the dashboard's access levels). Clients see a
/// document only once it is shared with them (`sharedWith`), never when it is confidential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Private,
    #[default]
    TherapistOnly,
    ClientShared,
    TeamShared,
    Public,
}

/// Where a document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocStatus {
    /// Its file is still arriving (never listed; removed if it never completes).
    Uploading,
    Active,
    /// Deleted: listed only with `includeDeleted`, its file removed at `purgeAfter`.
    Deleted,
}

/// A stored document (collection `documents`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredDocument {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub therapist_id: ObjectId,
    /// The GridFS file (bucket `files`).
    pub file_id: ObjectId,
    pub status: DocStatus,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub mime_type: String,
    /// The family of the content: pdf, image, document, spreadsheet, presentation, text...
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub category: Category,
    #[serde(default)]
    pub client_id: Option<ObjectId>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub is_confidential: bool,
    /// Client records this document is shared with.
    #[serde(default)]
    pub shared_with: Vec<ObjectId>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    #[serde(default)]
    pub deleted_at: Option<DateTime>,
    /// When the file is removed (pending uploads and deleted documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_after: Option<DateTime>,
}

/// A document as the dashboard reads it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentView {
    pub id: String,
    #[serde(rename = "_id")]
    pub underscore_id: String,
    pub document_id: String,
    pub therapist_id: String,
    pub title: String,
    pub description: Option<String>,
    pub filename: String,
    pub original_name: String,
    pub mime_type: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub size: i64,
    pub checksum: String,
    pub category: Category,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub access_level: Visibility,
    pub is_confidential: bool,
    pub is_shared: bool,
    pub shared_with: Vec<String>,
    pub status: DocStatus,
    pub url: String,
    pub uploaded_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

impl DocumentView {
    /// The view of `d`, with its client's name when known.
    pub fn new(d: &StoredDocument, client_name: Option<String>) -> Self {
        let id = d.id.to_hex();
        Self {
            underscore_id: id.clone(),
            document_id: id.clone(),
            url: format!("/api/documents/{id}/download"),
            id,
            therapist_id: d.therapist_id.to_hex(),
            title: d.title.clone(),
            description: d.description.clone(),
            filename: d.filename.clone(),
            original_name: d.filename.clone(),
            mime_type: d.mime_type.clone(),
            kind: d.kind.clone(),
            size: d.size,
            checksum: d.sha256.clone(),
            category: d.category,
            client_id: d.client_id.map(|c| c.to_hex()),
            client_name,
            tags: d.tags.clone(),
            visibility: d.visibility,
            access_level: d.visibility,
            is_confidential: d.is_confidential,
            is_shared: !d.shared_with.is_empty(),
            shared_with: d.shared_with.iter().map(|c| c.to_hex()).collect(),
            status: d.status,
            uploaded_at: rfc3339(d.created_at),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
            deleted_at: d.deleted_at.map(rfc3339),
        }
    }

    /// What a client sees of a document shared with them.
    pub fn for_client(d: &StoredDocument) -> SharedDocumentView {
        let id = d.id.to_hex();
        SharedDocumentView {
            underscore_id: id.clone(),
            document_id: id.clone(),
            url: format!("/api/documents/client/{id}/download"),
            id,
            therapist_id: d.therapist_id.to_hex(),
            title: d.title.clone(),
            description: d.description.clone(),
            filename: d.filename.clone(),
            mime_type: d.mime_type.clone(),
            kind: d.kind.clone(),
            size: d.size,
            checksum: d.sha256.clone(),
            category: d.category,
            uploaded_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// A document shared with the signed-in client: no sharing list, no other client, no tags
/// (the therapist's own filing words).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedDocumentView {
    pub id: String,
    #[serde(rename = "_id")]
    pub underscore_id: String,
    pub document_id: String,
    pub therapist_id: String,
    pub title: String,
    pub description: Option<String>,
    pub filename: String,
    pub mime_type: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub size: i64,
    pub checksum: String,
    pub category: Category,
    pub url: String,
    pub uploaded_at: String,
    pub updated_at: String,
}

/// Sort keys of the document list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum DocSort {
    #[default]
    #[serde(
        alias = "createdAt",
        alias = "uploaded_at",
        alias = "created_at",
        alias = "date"
    )]
    UploadedAt,
    #[serde(alias = "updated_at")]
    UpdatedAt,
    #[serde(alias = "name")]
    Title,
    #[serde(alias = "fileSize")]
    Size,
}

impl DocSort {
    /// The stored field sorted on.
    pub fn field(self) -> &'static str {
        match self {
            DocSort::UploadedAt => "createdAt",
            DocSort::UpdatedAt => "updatedAt",
            DocSort::Title => "title",
            DocSort::Size => "size",
        }
    }
}

/// `GET /api/documents` (the dashboard's parameters and their snake_case forms).
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DocListQuery {
    #[param(value_type = Option<crate::http::docs::PageNumber>)]
    pub page: Option<u64>,
    #[param(value_type = Option<crate::http::docs::PageLimit>)]
    pub limit: Option<u64>,
    #[serde(default, deserialize_with = "non_empty")]
    #[param(value_type = Option<crate::http::docs::Cursor>)]
    pub cursor: Option<String>,
    #[serde(default, alias = "sort_by")]
    #[param(schema_with = crate::http::docs::accepts::<DocSort>)]
    pub sort_by: Option<DocSort>,
    #[serde(default, alias = "sort_order")]
    #[param(schema_with = crate::http::docs::accepts::<SortOrder>)]
    pub sort_order: Option<SortOrder>,
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    #[param(schema_with = crate::http::docs::filter::<Category>)]
    pub category: Option<Category>,
    #[serde(default, alias = "client_id", deserialize_with = "non_empty")]
    #[param(value_type = Option<crate::http::docs::IdFilter>)]
    pub client_id: Option<String>,
    #[serde(default, alias = "q", deserialize_with = "non_empty")]
    #[param(value_type = Option<crate::http::docs::SearchText>)]
    pub search: Option<String>,
    /// Comma-separated; a document matches when it has any of them.
    #[serde(default, deserialize_with = "non_empty")]
    #[param(value_type = Option<super::docs::TagList>)]
    pub tags: Option<String>,
    /// Families, comma-separated (`pdf,image`).
    #[serde(default, rename = "type", alias = "types", deserialize_with = "non_empty")]
    #[param(value_type = Option<super::docs::FamilyList>)]
    pub r#type: Option<String>,
    #[serde(
        default,
        alias = "accessLevel",
        alias = "access_level",
        deserialize_with = "crate::http::query::all_or"
    )]
    #[param(schema_with = crate::http::docs::filter::<Visibility>)]
    pub visibility: Option<Visibility>,
    #[serde(default, alias = "include_deleted")]
    pub include_deleted: Option<bool>,
}

/// `GET /api/documents/client` (the newest first; other parameters are ignored).
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientDocQuery {
    #[param(value_type = Option<crate::http::docs::PageNumber>)]
    pub page: Option<u64>,
    #[param(value_type = Option<crate::http::docs::PageLimit>)]
    pub limit: Option<u64>,
    #[serde(default, deserialize_with = "non_empty")]
    #[param(value_type = Option<crate::http::docs::Cursor>)]
    pub cursor: Option<String>,
}

/// `GET /api/documents/statistics`.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct StatsQuery {
    #[serde(default, alias = "group_by")]
    #[param(schema_with = crate::http::docs::accepts::<GroupBy>)]
    pub group_by: Option<GroupBy>,
}

/// What the statistics group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum GroupBy {
    #[default]
    Category,
    Type,
    Visibility,
}

impl GroupBy {
    /// The stored field grouped on.
    pub fn field(self) -> &'static str {
        match self {
            GroupBy::Category => "category",
            GroupBy::Type => "type",
            GroupBy::Visibility => "visibility",
        }
    }
}

/// `PUT /api/documents/:id`: the given fields replace the stored ones. Fields the dashboard
/// adds for its own bookkeeping (`updatedAt`, `updatedBy`...) are ignored.
#[derive(Debug, Deserialize, ToSchema, Default, validator::Validate)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDocument {
    #[schema(value_type = Option<crate::http::docs::Title>)]
    pub title: Option<String>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::http::docs::Printable2000>)]
    pub description: Option<Option<String>>,
    #[schema(schema_with = crate::http::docs::accepts_or_null::<Category>)]
    pub category: Option<Category>,
    #[schema(max_items = 30, value_type = Option<Vec<crate::http::docs::ShortTag>>)]
    pub tags: Option<Vec<String>>,
    #[serde(alias = "accessLevel")]
    #[schema(schema_with = crate::http::docs::accepts_or_null::<Visibility>)]
    pub visibility: Option<Visibility>,
    pub is_confidential: Option<bool>,
    /// `null` detaches the document from its client.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::http::docs::IdFilter>)]
    pub client_id: Option<Option<String>>,
}

/// `POST /api/documents/:id/share` and `/unshare`: the client record (also `sharedWith`, as
/// the dashboard's share form names it).
#[derive(Debug, Deserialize, ToSchema, Default, validator::Validate)]
#[serde(rename_all = "camelCase")]
pub struct ShareRequest {
    #[serde(alias = "sharedWith")]
    #[schema(value_type = crate::http::docs::ObjectIdText, required = true)]
    pub client_id: Option<String>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}
