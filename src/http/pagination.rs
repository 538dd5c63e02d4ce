//! The three list shapes of SPEC section 1, typed (the paging itself is `db::paging`):
//! - bookings: `{success, count, total, data, pagination: {page, limit, totalPages, nextCursor}}`
//! - clients: `{success, data, pagination: {currentPage, totalPages, totalItems, itemsPerPage,
//!   hasNextPage, hasPrevPage, nextCursor}}`
//! - payments, reviews, documents, notifications, notes: `{success, data: {<plural>: [...],
//!   pagination: {current, pages, total, nextCursor}}}`
//!
//! `nextCursor` is set exactly when another page follows (lists read `limit + 1`).

use serde::Serialize;

use crate::db::Page;

/// A bookings-shaped list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CountedList<T> {
    pub success: bool,
    pub count: usize,
    pub total: u64,
    pub data: Vec<T>,
    pub pagination: PagePosition,
}

/// Where a bookings-shaped list is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PagePosition {
    pub page: u64,
    pub limit: u64,
    pub total_pages: u64,
    pub next_cursor: Option<String>,
}

impl<T> CountedList<T> {
    pub fn new(data: Vec<T>, total: u64, page: &Page, next_cursor: Option<String>) -> Self {
        Self {
            success: true,
            count: data.len(),
            total,
            pagination: PagePosition {
                page: page.page,
                limit: page.limit,
                total_pages: page.total_pages(total),
                next_cursor,
            },
            data,
        }
    }
}

/// A clients-shaped list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PagedList<T> {
    pub success: bool,
    pub data: Vec<T>,
    pub pagination: PageFlags,
}

/// Where a clients-shaped list is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageFlags {
    pub current_page: u64,
    pub total_pages: u64,
    pub total_items: u64,
    pub items_per_page: u64,
    pub has_next_page: bool,
    pub has_prev_page: bool,
    pub next_cursor: Option<String>,
}

impl<T> PagedList<T> {
    pub fn new(data: Vec<T>, total: u64, page: &Page, next_cursor: Option<String>) -> Self {
        let pages = page.total_pages(total);
        Self {
            success: true,
            data,
            pagination: PageFlags {
                current_page: page.page,
                total_pages: pages,
                total_items: total,
                items_per_page: page.limit,
                has_next_page: next_cursor.is_some(),
                has_prev_page: page.page > 1,
                next_cursor,
            },
        }
    }
}

/// The `{current, pages, total, nextCursor}` pagination nested in the `data` of payments,
/// reviews, documents, notifications and notes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Nested {
    pub current: u64,
    pub pages: u64,
    pub total: u64,
    pub next_cursor: Option<String>,
}

/// The nested pagination of a page.
pub fn nested(page: &Page, total: u64, next: Option<String>) -> Nested {
    Nested {
        current: page.page,
        pages: page.total_pages(total),
        total,
        next_cursor: next,
    }
}
