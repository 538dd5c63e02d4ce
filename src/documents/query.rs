//! The filter of a document list, from its query.

use mongodb::bson::{doc, Document};

use super::model::DocListQuery;
use super::store::DocumentStore;
use crate::auth::extract::parse_id;
use crate::db::OwnerScope;
use crate::error::{ApiError, ApiResult};

/// Families a `type` filter may name.
pub const FAMILIES: &[&str] = &[
    "pdf",
    "image",
    "document",
    "spreadsheet",
    "presentation",
    "text",
    "audio",
    "video",
];

/// The list filter (the owner is added by the scope): a client must be the caller's (404
/// otherwise); a search is literal text in the title, file name, description or tags; `tags`
/// and `type` match any of their comma-separated values.
pub async fn list_filter(store: &DocumentStore, scope: &OwnerScope, q: &DocListQuery) -> ApiResult<Document> {
    let mut filter = if q.include_deleted == Some(true) {
        doc! { "status": { "$in": ["active", "deleted"] } }
    } else {
        doc! { "status": "active" }
    };
    if let Some(c) = q.category {
        filter.insert("category", c.as_str());
    }
    if let Some(v) = q.visibility {
        filter.insert("visibility", mongodb::bson::to_bson(&v)?);
    }
    if let Some(raw) = q.client_id.as_deref() {
        let id = parse_id(raw, "clientId")?;
        store.client_or_404(scope, id).await?;
        filter.insert("clientId", id);
    }
    if let Some(raw) = q.tags.as_deref() {
        let tags: Vec<String> = raw
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if tags.len() > 30 {
            return Err(ApiError::field("tags", "at most 30 tags"));
        }
        if !tags.is_empty() {
            filter.insert("tags", doc! { "$in": tags });
        }
    }
    if let Some(raw) = q.r#type.as_deref() {
        let mut types = Vec::new();
        for t in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !FAMILIES.contains(&t) {
                return Err(ApiError::field(
                    "type",
                    format!("`{t}` is not one of {}", FAMILIES.join(", ")),
                ));
            }
            types.push(t.to_owned());
        }
        if !types.is_empty() {
            filter.insert("type", doc! { "$in": types });
        }
    }
    if let Some(search) = q.search.as_deref() {
        if search.chars().count() > 100 {
            return Err(ApiError::field("search", "must be at most 100 characters"));
        }
        let pattern = crate::clients::regex_escape(search);
        filter.insert(
            "$or",
            ["title", "filename", "description", "tags"]
                .iter()
                .map(|f| doc! { *f: { "$regex": &pattern, "$options": "i" } })
                .collect::<Vec<_>>(),
        );
    }
    Ok(filter)
}
