//! Page/limit, keyset cursors and sort direction shared by every list. `limit` is capped at 100;
//! `cursor` (opaque, from `pagination.nextCursor`) continues after the last item on the list's
//! index. A page reads `limit + 1` items to know whether a next one exists.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, Document};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Largest page a list serves.
pub const MAX_LIMIT: u64 = 100;

/// A normalized page request.
#[derive(Debug, Clone)]
pub struct Page {
    pub page: u64,
    pub limit: u64,
    pub cursor: Option<Cursor>,
}

impl Page {
    /// From raw query values (`page` 1..=1,000,000; `limit` 1..=1,000,000, served as at most
    /// 100; default `default_limit`).
    pub fn new(
        page: Option<u64>,
        limit: Option<u64>,
        cursor: Option<&str>,
        default_limit: u64,
    ) -> Result<Self, ApiError> {
        let page = page.unwrap_or(1);
        if page == 0 || page > 1_000_000 {
            return Err(ApiError::field("page", "must be between 1 and 1000000"));
        }
        let limit = limit.unwrap_or(default_limit);
        if limit == 0 || limit > 1_000_000 {
            return Err(ApiError::field("limit", "must be between 1 and 1000000"));
        }
        let cursor = cursor.filter(|c| !c.is_empty()).map(Cursor::decode).transpose()?;
        Ok(Self {
            page,
            limit: limit.min(MAX_LIMIT),
            cursor,
        })
    }

    /// Documents to skip (0 when continuing from a cursor).
    pub fn skip(&self) -> u64 {
        if self.cursor.is_some() {
            0
        } else {
            (self.page - 1) * self.limit
        }
    }

    /// Keeps the first `limit` of `items` (read as `limit + 1`) and, when there were more, the
    /// cursor after the last one kept.
    pub fn split<T>(
        &self,
        mut items: Vec<T>,
        cursor: impl Fn(&T) -> Option<String>,
    ) -> (Vec<T>, Option<String>) {
        if items.len() as u64 > self.limit {
            items.truncate(self.limit as usize);
            let next = items.last().and_then(cursor);
            (items, next)
        } else {
            (items, None)
        }
    }

    /// Total pages for `total` items.
    pub fn total_pages(&self, total: u64) -> u64 {
        total.div_ceil(self.limit)
    }
}

/// Position after the last item of a page: its sort value and id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    /// Sort value (JSON form of the BSON value).
    pub v: serde_json::Value,
    /// `_id` (hex), the tie-breaker.
    pub id: String,
}

impl Cursor {
    /// Encodes the position after `last` for a list sorted on `field`.
    pub fn after(last: &Document, field: &str) -> Option<String> {
        let id = last.get_object_id("_id").ok()?;
        let v = match last.get(field)? {
            Bson::DateTime(d) => serde_json::json!({ "$date": d.timestamp_millis() }),
            other => other.clone().into_relaxed_extjson(),
        };
        let json = serde_json::to_vec(&Cursor { v, id: id.to_hex() }).ok()?;
        Some(URL_SAFE_NO_PAD.encode(json))
    }

    fn decode(raw: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::field("cursor", "is not a cursor this list produced");
        let bytes = URL_SAFE_NO_PAD.decode(raw.as_bytes()).map_err(|_| bad())?;
        let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        ObjectId::parse_str(&c.id).map_err(|_| bad())?;
        if c.v.is_object() && c.v.get("$date").and_then(|d| d.as_i64()).is_none() {
            return Err(bad());
        }
        Ok(c)
    }

    /// The filter selecting items after this cursor on (`field`, `_id`), in `descending` order.
    pub fn filter(&self, field: &str, descending: bool) -> Result<Document, ApiError> {
        let id = ObjectId::parse_str(&self.id).map_err(|_| ApiError::field("cursor", "is invalid"))?;
        let value = match self.v.get("$date").and_then(|d| d.as_i64()) {
            Some(ms) => Bson::DateTime(mongodb::bson::DateTime::from_millis(ms)),
            None => Bson::try_from(self.v.clone()).map_err(|_| ApiError::field("cursor", "is invalid"))?,
        };
        // Values are only ever scalars we put there; refuse operators smuggled in.
        if matches!(value, Bson::Document(_) | Bson::Array(_)) {
            return Err(ApiError::field("cursor", "is invalid"));
        }
        let op = if descending { "$lt" } else { "$gt" };
        Ok(doc! { "$or": [ { field: { op: value.clone() } }, { field: value, "_id": { op: id } } ] })
    }
}

/// One page of `coll` matching `filter` (already scoped), sorted on (`field`, `_id`),
/// continuing after the page's cursor; with the total count and the next cursor.
pub async fn page_of(
    coll: &mongodb::Collection<Document>,
    filter: Document,
    field: &str,
    descending: bool,
    page: &Page,
) -> Result<(Vec<Document>, u64, Option<String>), ApiError> {
    use futures_util::TryStreamExt;
    let total = coll.count_documents(filter.clone()).await?;
    let query = match page
        .cursor
        .as_ref()
        .map(|c| c.filter(field, descending))
        .transpose()?
    {
        Some(after) => doc! { "$and": [filter, after] },
        None => filter,
    };
    let dir = if descending { -1 } else { 1 };
    let docs: Vec<Document> = coll
        .find(query)
        .sort(doc! { field: dir, "_id": dir })
        .skip(page.skip())
        .limit(page.limit as i64 + 1)
        .await?
        .try_collect()
        .await?;
    let (docs, next) = page.split(docs, |d| Cursor::after(d, field));
    Ok((docs, total, next))
}

/// Sort direction of a list (`asc`/`desc`, also `ASC`, `ascending`...).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    #[serde(alias = "ASC", alias = "ascending")]
    Asc,
    #[default]
    #[serde(alias = "DESC", alias = "descending")]
    Desc,
}

impl SortOrder {
    /// Whether newest/largest come first.
    pub fn descending(self) -> bool {
        self == SortOrder::Desc
    }
}
