//! Payment statistics: totals of a period or of the dashboard's window, its trend against the
//! window before, a series by day or month, and revenue per month for a year; all in the
//! therapist's zone, read from secondaries where a replica set has them.

use axum::extract::State;
use axum::response::Response;
use chrono::{Datelike, Duration, Utc};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde::Deserialize;
use serde_json::{json, Value};

use super::store::PaymentStore;
pub use super::store::Totals;
use crate::app::AppState;
use crate::auth::extract::Therapist;
use crate::availability::store::AvailabilityStore;
use crate::error::{ApiError, ApiResult};
use crate::http::envelope;
use crate::http::extract::ApiQuery;
use crate::money::Cents;

/// `?period=week|month|quarter|year`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    #[param(schema_with = crate::http::docs::accepts::<Period>)]
    pub period: Option<Period>,
    #[serde(
        alias = "date_from",
        alias = "dateFrom",
        alias = "startDate",
        alias = "start_date"
    )]
    #[param(value_type = Option<crate::http::docs::DateOrInstant>)]
    pub from: Option<String>,
    #[serde(alias = "date_to", alias = "dateTo", alias = "endDate", alias = "end_date")]
    #[param(value_type = Option<crate::http::docs::DateOrInstant>)]
    pub to: Option<String>,
    #[serde(alias = "group_by", alias = "groupBy")]
    #[param(schema_with = crate::http::docs::accepts::<Group>)]
    pub group: Option<Group>,
}

/// How a statistics series is grouped.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Day,
    Month,
}

/// Statistics window.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Week,
    Month,
    Quarter,
    Year,
}

/// The last 12 local months, oldest first, ending with the current one.
pub fn last_twelve_months(today: chrono::NaiveDate) -> Vec<String> {
    let (mut y, mut m) = (today.year(), today.month() as i32);
    let mut out = Vec::with_capacity(12);
    for _ in 0..12 {
        out.push(format!("{y:04}-{m:02}"));
        m -= 1;
        if m == 0 {
            m = 12;
            y -= 1;
        }
    }
    out.reverse();
    out
}

/// Totals for the period and revenue per month for 12 months (refunds deducted).
#[utoipa::path(get, path = "/api/payments/statistics", tag = "payments",
    security(("therapist" = [])),
    params(ApiQuery<PeriodQuery>),
    responses((status = 200, body = crate::http::docs::Data<crate::payments::docs::PaymentStatistics>)))]
pub async fn statistics(
    State(state): State<AppState>,
    me: Therapist,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> ApiResult<Response> {
    let period = q.period.unwrap_or(Period::Month);
    let zone = AvailabilityStore::new(&state.db).zone(me.0.id).await?;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let since = DateTime::from_chrono(crate::time::day_bounds(zone, period.start(today)).0);
    let (current, monthly) = revenue(&state.db, me.0.id, since, today).await?;
    // The dashboard's window (`date_from`/`date_to`), else this period; compared with the
    // window of the same length just before it.
    let from = crate::http::query::date_bound(&[("date_from", &q.from)])?.map(|b| b.start(zone));
    let to = crate::http::query::date_bound(&[("date_to", &q.to)])?.map(|b| b.end(zone));
    let (start, end) = (
        from.unwrap_or_else(|| since.to_chrono()),
        to.unwrap_or_else(Utc::now),
    );
    if start > end {
        return Err(ApiError::field("date_to", "must not be before date_from"));
    }
    let group = q.group.unwrap_or(Group::Month);
    let window = window_stats(&state, me.0.id, zone, start, end, group).await?;
    let mut body = window.view(start, end);
    body["period"] = json!(period_name(period));
    body["currentPeriod"] = period_view(&current);
    body["monthlyRevenue"] = json!(monthly);
    Ok(envelope::ok(body))
}

impl Period {
    /// The first local day of the period that contains `today` (a week is the last 7 days).
    fn start(self, today: chrono::NaiveDate) -> chrono::NaiveDate {
        match self {
            Period::Week => today - Duration::days(6),
            Period::Month => today.with_day(1).unwrap_or(today),
            Period::Quarter => chrono::NaiveDate::from_ymd_opt(today.year(), (today.month0() / 3) * 3 + 1, 1)
                .unwrap_or(today),
            Period::Year => chrono::NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today),
        }
    }
}

/// The `currentPeriod` figures (refunds deducted).
fn period_view(t: &Totals) -> Value {
    let total = t.amount - t.refunded;
    json!({
        "totalAmount": Cents(total).to_major(),
        "totalNetAmount": Cents(total - t.fees).to_major(),
        "totalFees": Cents(t.fees).to_major(),
        "count": t.count,
        "avgAmount": if t.count > 0 { Cents(total / t.count).to_major() } else { json!(0) },
    })
}

impl WindowStats {
    /// The window's figures, trends against the window before, series and bounds.
    fn view(self, start: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>) -> Value {
        let (cur, prev) = (self.current, self.previous);
        let revenue = cur.amount - cur.refunded;
        json!({
            "totalRevenue": Cents(revenue).to_major(),
            "totalTransactions": cur.count,
            "transactions": cur.count,
            "averageTransaction": if cur.count > 0 { Cents(revenue / cur.count).to_major() } else { json!(0) },
            "totalFees": Cents(cur.fees).to_major(),
            "trends": {
                "revenue": change(revenue, prev.amount - prev.refunded),
                "transactions": change(cur.count, prev.count),
            },
            "series": self.series,
            "window": { "from": crate::time::rfc3339(DateTime::from_chrono(start)), "to": crate::time::rfc3339(DateTime::from_chrono(end)) },
        })
    }
}

/// Percent change from `before` to `now` (one decimal); 0 when there was nothing before.
fn change(now: i64, before: i64) -> f64 {
    if before == 0 {
        return if now > 0 { 100.0 } else { 0.0 };
    }
    ((now - before) as f64 * 1000.0 / before as f64).round() / 10.0
}

/// A statistics window: its totals, the previous window's, and a series by day or month.
struct WindowStats {
    current: Totals,
    previous: Totals,
    series: Vec<Value>,
}

/// Earned payments of `[start, end)` and of the window of equal length before it, grouped in
/// the therapist's zone; one query, read from secondaries where available.
async fn window_stats(
    state: &AppState,
    therapist: ObjectId,
    zone: chrono_tz::Tz,
    start: chrono::DateTime<Utc>,
    end: chrono::DateTime<Utc>,
    group: Group,
) -> ApiResult<WindowStats> {
    let earlier = start - (end - start);
    let earned = PaymentStore::new(&state.db)
        .earned_between(
            therapist,
            DateTime::from_chrono(earlier),
            DateTime::from_chrono(end),
        )
        .await?;
    let (mut current, mut previous) = (Totals::default(), Totals::default());
    let mut buckets: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for e in &earned {
        let at = e.payment_date.to_chrono();
        let t = if at >= start { &mut current } else { &mut previous };
        t.amount += e.amount_cents;
        t.refunded += e.refunded_cents;
        t.fees += e.fee_cents;
        t.count += 1;
        if at >= start {
            let local = at.with_timezone(&zone);
            let key = match group {
                Group::Day => local.format("%Y-%m-%d").to_string(),
                Group::Month => local.format("%Y-%m").to_string(),
            };
            let b = buckets.entry(key).or_default();
            b.0 += e.amount_cents - e.refunded_cents;
            b.1 += 1;
        }
    }
    let series = buckets
        .into_iter()
        .map(|(k, (cents, n))| json!({ "period": k, "revenue": Cents(cents).to_major(), "count": n }))
        .collect();
    Ok(WindowStats {
        current,
        previous,
        series,
    })
}

/// Earned payments since `since`, and revenue (refunds deducted) for each of the 12 local months
/// ending with `today`'s — one aggregation round trip, read from secondaries where available.
pub async fn revenue(
    db: &crate::db::Db,
    therapist: ObjectId,
    since: DateTime,
    today: chrono::NaiveDate,
) -> ApiResult<(Totals, Vec<Value>)> {
    let months = last_twelve_months(today);
    let r = PaymentStore::new(db)
        .revenue(therapist, since, &months[0])
        .await?;
    let totals = r.current.first().copied().unwrap_or_default();
    let by_month: std::collections::HashMap<&str, Totals> =
        r.monthly.iter().map(|m| (m.month.as_str(), m.sums)).collect();
    let monthly = months
        .iter()
        .map(|m| {
            let s = by_month.get(m.as_str()).copied().unwrap_or_default();
            json!({ "month": m, "revenue": Cents(s.amount - s.refunded).to_major(), "count": s.count })
        })
        .collect();
    Ok((totals, monthly))
}

fn period_name(p: Period) -> &'static str {
    match p {
        Period::Week => "week",
        Period::Month => "month",
        Period::Quarter => "quarter",
        Period::Year => "year",
    }
}

/// The last day of `today`'s month.
pub fn month_end(today: chrono::NaiveDate) -> chrono::NaiveDate {
    let (y, m) = if today.month() == 12 {
        (today.year() + 1, 1)
    } else {
        (today.year(), today.month() + 1)
    };
    chrono::NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .unwrap_or(today)
}
