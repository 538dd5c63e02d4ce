//! The query parameters of the booking lists and reads (camelCase and the dashboard's
//! snake_case aliases), and the filters they become.

use chrono::NaiveDate;
use chrono_tz::Tz;
use mongodb::bson::{doc, Document};
use serde::Deserialize;

use super::model::BookingStatus;
use crate::db::{Page, SortOrder};
use crate::error::{ApiError, ApiResult};
use crate::http::docs::{Cursor, DateOrInstant, IdFilter, OwnTherapist, PageLimit, PageNumber};
use crate::http::query::date_bound;

/// `GET /api/bookings` query (camelCase and the dashboard's snake_case aliases).
#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct BookingListQuery {
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    #[param(schema_with = crate::http::docs::filter::<BookingStatus>)]
    pub status: Option<BookingStatus>,
    #[serde(alias = "start_date", alias = "dateFrom", alias = "date_from")]
    #[param(value_type = Option<DateOrInstant>)]
    pub start_date: Option<String>,
    #[serde(alias = "end_date", alias = "dateTo", alias = "date_to")]
    #[param(value_type = Option<DateOrInstant>)]
    pub end_date: Option<String>,
    #[serde(
        default,
        alias = "client_id",
        deserialize_with = "crate::http::query::non_empty"
    )]
    #[param(value_type = Option<IdFilter>)]
    pub client_id: Option<String>,
    #[serde(alias = "therapist_id")]
    #[param(value_type = Option<OwnTherapist>)]
    pub therapist_id: Option<String>,
    #[param(value_type = Option<PageNumber>)]
    pub page: Option<u64>,
    #[param(value_type = Option<PageLimit>)]
    pub limit: Option<u64>,
    #[param(value_type = Option<Cursor>)]
    pub cursor: Option<String>,
    #[serde(alias = "sort_by")]
    #[param(schema_with = crate::http::docs::accepts::<BookingSort>)]
    pub sort_by: Option<BookingSort>,
    #[serde(alias = "sort_order")]
    #[param(schema_with = crate::http::docs::accepts::<SortOrder>)]
    pub sort_order: Option<SortOrder>,
}

/// `GET /api/bookings/client` query: a client's own bookings, by date (`sortBy` is read and
/// ignored); other parameters are ignored.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ClientBookingQuery {
    #[serde(default, deserialize_with = "crate::http::query::all_or")]
    #[param(schema_with = crate::http::docs::filter::<BookingStatus>)]
    pub status: Option<BookingStatus>,
    #[param(value_type = Option<PageNumber>)]
    pub page: Option<u64>,
    #[param(value_type = Option<PageLimit>)]
    pub limit: Option<u64>,
    #[param(value_type = Option<Cursor>)]
    pub cursor: Option<String>,
    #[serde(alias = "sort_by")]
    #[param(schema_with = crate::http::docs::accepts::<BookingSort>)]
    pub sort_by: Option<BookingSort>,
    #[serde(alias = "sort_order")]
    #[param(schema_with = crate::http::docs::accepts::<SortOrder>)]
    pub sort_order: Option<SortOrder>,
}

impl From<ClientBookingQuery> for BookingListQuery {
    fn from(q: ClientBookingQuery) -> Self {
        BookingListQuery {
            status: q.status,
            start_date: None,
            end_date: None,
            client_id: None,
            therapist_id: None,
            page: q.page,
            limit: q.limit,
            cursor: q.cursor,
            sort_by: q.sort_by,
            sort_order: q.sort_order,
        }
    }
}

/// Sort fields of the booking list (`dateTime` is the dashboard's name for chronological).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum BookingSort {
    #[serde(alias = "startsAt", alias = "dateTime", alias = "startTime")]
    Date,
    CreatedAt,
}

/// How a list is ordered and where its page starts.
pub struct Order {
    /// The sorted field.
    pub field: &'static str,
    pub sort: Document,
    /// Keyset condition of the page after the cursor.
    pub after: Option<Document>,
}

impl BookingListQuery {
    /// Whether either date bound is given.
    pub fn has_dates(&self) -> bool {
        self.start_date.is_some() || self.end_date.is_some()
    }

    /// The `date` condition of a list: local days, instants read as days of `zone`.
    pub fn date_range(&self, zone: Tz) -> ApiResult<Option<Document>> {
        let from = date_bound(&[("startDate", &self.start_date)])?;
        let to = date_bound(&[("endDate", &self.end_date)])?;
        if from.is_none() && to.is_none() {
            return Ok(None);
        }
        let (from, to) = (from.map(|b| b.local_day(zone)), to.map(|b| b.local_day(zone)));
        if let (Some(a), Some(b)) = (from, to) {
            if a > b {
                return Err(ApiError::field("endDate", "must not be before startDate"));
            }
        }
        let mut range = Document::new();
        if let Some(a) = from {
            range.insert("$gte", day(a));
        }
        if let Some(b) = to {
            range.insert("$lte", day(b));
        }
        Ok(Some(range))
    }

    /// The order of a list sorted by `field` (default: the query's `sortBy`, else the date).
    pub fn order(&self, page: &Page, field: Option<&'static str>) -> ApiResult<Order> {
        let field = field.unwrap_or(match self.sort_by.unwrap_or(BookingSort::Date) {
            BookingSort::Date => "startsAt",
            BookingSort::CreatedAt => "createdAt",
        });
        let descending = self.sort_order.unwrap_or_default() == SortOrder::Desc;
        let dir = if descending { -1 } else { 1 };
        let after = page
            .cursor
            .as_ref()
            .map(|c| c.filter(field, descending))
            .transpose()?;
        Ok(Order {
            field,
            sort: doc! { field: dir, "_id": dir },
            after,
        })
    }
}

/// A local date as stored (`YYYY-MM-DD`).
pub fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// `?limit` of the upcoming list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    #[param(value_type = Option<crate::http::docs::AnyCount>)]
    pub limit: Option<u64>,
}

/// `?startDate&endDate` (days of the therapist's calendar or ISO instants; default: this
/// month, in the therapist's zone), `therapistId` as the caller.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RangeQuery {
    #[serde(alias = "start_date", alias = "date_from", alias = "dateFrom")]
    #[param(value_type = Option<crate::http::docs::DateOrInstant>)]
    pub start_date: Option<String>,
    #[serde(alias = "end_date", alias = "date_to", alias = "dateTo")]
    #[param(value_type = Option<crate::http::docs::DateOrInstant>)]
    pub end_date: Option<String>,
    #[serde(alias = "therapist_id")]
    #[param(value_type = Option<crate::http::docs::OwnTherapist>)]
    pub therapist_id: Option<String>,
}

/// `?date&startTime&endTime[&excludeBookingId]`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CheckQuery {
    #[param(value_type = crate::http::docs::DateText)]
    pub date: String,
    #[param(value_type = crate::http::docs::GridStart)]
    pub start_time: String,
    #[param(value_type = crate::http::docs::GridEnd)]
    pub end_time: String,
    #[param(value_type = Option<crate::http::docs::ObjectIdText>)]
    pub exclude_booking_id: Option<String>,
}

/// `?sessionDuration=60`.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DurationQuery {
    #[param(value_type = Option<crate::http::docs::SessionMinutes>)]
    pub session_duration: Option<u32>,
}
