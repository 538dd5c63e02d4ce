//! The pagination block lists answer with (the paging itself is `db::paging`).

use crate::db::Page;

/// The `{current, pages, total, nextCursor}` pagination of payments, reviews, documents and
/// notifications.
pub fn nested(page: &Page, total: u64, next: Option<String>) -> serde_json::Value {
    serde_json::json!({ "current": page.page, "pages": page.total_pages(total), "total": total, "nextCursor": next })
}
