//! The reads over many client records: the list's query (filters, search, sort), the counts of
//! the stats and the tags in use, as typed values.

use mongodb::bson::{doc, Document};
use serde::{Deserialize, Serialize};

use super::model::ClientStatus;
use crate::db::SortOrder;
use crate::error::{ApiError, ApiResult};

/// Sort fields of the client list.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ClientSort {
    Name,
    CreatedAt,
    UpdatedAt,
}

/// `GET /api/clients` query.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ClientListQuery {
    #[param(value_type = Option<crate::http::docs::PageNumber>)]
    pub page: Option<u64>,
    #[param(value_type = Option<crate::http::docs::PageLimit>)]
    pub limit: Option<u64>,
    #[param(value_type = Option<crate::http::docs::Cursor>)]
    pub cursor: Option<String>,
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    #[param(schema_with = crate::http::docs::filter::<ClientStatus>)]
    pub status: Option<ClientStatus>,
    #[serde(default, deserialize_with = "crate::http::query::non_empty")]
    #[param(value_type = Option<crate::http::docs::SearchText>)]
    pub search: Option<String>,
    /// Comma-separated; a client matches when it has any of them.
    #[serde(default, deserialize_with = "crate::http::query::non_empty")]
    pub tags: Option<String>,
    #[serde(alias = "sort_by")]
    #[param(schema_with = crate::http::docs::accepts::<ClientSort>)]
    pub sort_by: Option<ClientSort>,
    #[serde(alias = "sort_order")]
    #[param(schema_with = crate::http::docs::accepts::<SortOrder>)]
    pub sort_order: Option<SortOrder>,
}

impl ClientListQuery {
    /// The filter of the query's status, search text and tags (not yet scoped).
    pub fn filter(&self) -> ApiResult<Document> {
        let mut filter = Document::new();
        if let Some(s) = self.status {
            filter.insert("status", status_str(s));
        }
        if let Some(search) = self.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            if search.chars().count() > 100 {
                return Err(ApiError::field("search", "must be at most 100 characters"));
            }
            let pattern = regex_escape(search);
            filter.insert(
                "$or",
                vec![
                    doc! { "name": { "$regex": &pattern, "$options": "i" } },
                    doc! { "email": { "$regex": &pattern, "$options": "i" } },
                    doc! { "phone": { "$regex": &pattern, "$options": "i" } },
                ],
            );
        }
        if let Some(tags) = self.tags.as_deref() {
            let list: Vec<&str> = tags.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
            if !list.is_empty() {
                filter.insert("tags", doc! { "$in": list });
            }
        }
        Ok(filter)
    }

    /// The stored field to sort on and whether descending (names A-Z, dates newest first,
    /// unless `sortOrder` says otherwise).
    pub fn sort(&self) -> (&'static str, bool) {
        let (field, default_desc) = match self.sort_by.unwrap_or(ClientSort::CreatedAt) {
            ClientSort::Name => ("name", false),
            ClientSort::CreatedAt => ("createdAt", true),
            ClientSort::UpdatedAt => ("updatedAt", true),
        };
        (field, self.sort_order.map_or(default_desc, SortOrder::descending))
    }
}

/// The `status` stored for a list filter value.
pub fn status_str(s: ClientStatus) -> &'static str {
    match s {
        ClientStatus::Active => "active",
        ClientStatus::Inactive => "inactive",
    }
}

/// Escapes user text for use inside a regular expression.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\^$.|?*+()[]{}/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One count of a `$group`/`$count` stage.
#[derive(Debug, Deserialize)]
pub struct Count {
    #[serde(rename = "_id", default)]
    pub key: Option<String>,
    #[serde(deserialize_with = "crate::db::count")]
    pub n: i64,
}

/// The `$facet` of the stats aggregation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountFacets {
    pub by_status: Vec<Count>,
    pub new_this_month: Vec<Count>,
    pub with_email: Vec<Count>,
    pub linked: Vec<Count>,
}

/// `GET /api/clients/stats` data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientStats {
    pub total: i64,
    pub active: i64,
    pub inactive: i64,
    pub new_this_month: i64,
    pub with_email: i64,
    pub with_account: i64,
}

impl From<CountFacets> for ClientStats {
    fn from(f: CountFacets) -> Self {
        let first = |v: &[Count]| v.first().map_or(0, |c| c.n);
        let status = |s: &str| {
            f.by_status
                .iter()
                .find(|c| c.key.as_deref() == Some(s))
                .map_or(0, |c| c.n)
        };
        let (active, inactive) = (status("active"), status("inactive"));
        Self {
            total: active + inactive,
            active,
            inactive,
            new_this_month: first(&f.new_this_month),
            with_email: first(&f.with_email),
            with_account: first(&f.linked),
        }
    }
}

/// A tag in use and how many clients carry it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TagCount {
    #[serde(rename(deserialize = "_id"))]
    pub tag: String,
    #[serde(deserialize_with = "crate::db::count")]
    pub count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_matched_literally() {
        assert_eq!(regex_escape("a.b(c)+"), "a\\.b\\(c\\)\\+");
    }

    #[test]
    fn stats_count_only_known_statuses_in_the_total() {
        let count = |key: Option<&str>, n| Count {
            key: key.map(str::to_owned),
            n,
        };
        let facets = CountFacets {
            by_status: vec![
                count(Some("active"), 3),
                count(Some("inactive"), 1),
                count(None, 7),
            ],
            new_this_month: vec![count(None, 2)],
            with_email: vec![],
            linked: vec![count(None, 1)],
        };
        let stats = ClientStats::from(facets);
        assert_eq!((stats.total, stats.active, stats.inactive), (4, 3, 1));
        assert_eq!(
            (stats.new_this_month, stats.with_email, stats.with_account),
            (2, 0, 1)
        );
    }
}
