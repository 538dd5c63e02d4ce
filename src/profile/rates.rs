//! The profile's price list as the dashboard's rates and packages forms send it: session
//! prices, custom rates (kinds of session and bundles of them) and pricing packages. Prices
//! arrive in major units (numbers or text) and are kept in cents: the `Stored…` types are the
//! stored form (prices under `…Cents` names), written by an update and read by the views.

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use validator::Validate;

use super::fields::{fresh_id, item_id, price_opt, short_texts};
use crate::money::{Cents, Currency};

/// Kinds of session a custom rate prices.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Individual,
    Couple,
    Group,
    Consultation,
    Followup,
    Online,
}

/// One priced kind of session.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionRate {
    #[serde(default, deserialize_with = "item_id")]
    #[schema(value_type = Option<crate::profile::docs::ItemId>)]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: SessionKind,
    #[validate(length(min = 1, max = 120))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    #[validate(range(min = 5, max = 720))]
    #[schema(minimum = 5, maximum = 720)]
    pub duration: u32,
    #[serde(
        deserialize_with = "crate::money::major",
        skip_serializing_if = "super::fields::never"
    )]
    #[schema(value_type = crate::http::docs::Amount, required = true)]
    pub price: Cents,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// A bundle of one kind of session.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RatePackage {
    #[serde(default, deserialize_with = "item_id")]
    #[schema(value_type = Option<crate::profile::docs::ItemId>)]
    pub id: Option<String>,
    #[validate(length(min = 1, max = 120))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    #[validate(range(min = 1, max = 100))]
    #[schema(minimum = 1, maximum = 100)]
    pub sessions: u32,
    pub session_type: SessionKind,
    #[serde(
        deserialize_with = "crate::money::major",
        skip_serializing_if = "super::fields::never"
    )]
    #[schema(value_type = crate::http::docs::Amount, required = true)]
    pub price: Cents,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// The custom rates form: kinds of session and packages.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomRates {
    #[serde(default)]
    #[schema(schema_with = crate::http::docs::accepts::<Currency>)]
    pub currency: Currency,
    #[serde(default)]
    #[validate(length(max = 20), nested)]
    #[schema(max_items = 20)]
    pub sessions: Vec<SessionRate>,
    #[serde(default)]
    #[validate(length(max = 20), nested)]
    #[schema(max_items = 20)]
    pub packages: Vec<RatePackage>,
}

/// Session prices (both rates forms of the dashboard; prices as numbers or text, `""` none).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rates {
    #[serde(
        default,
        deserialize_with = "price_opt",
        skip_serializing_if = "super::fields::never"
    )]
    #[schema(schema_with = crate::http::docs::price)]
    pub session_price: Option<Cents>,
    #[serde(
        default,
        deserialize_with = "price_opt",
        skip_serializing_if = "super::fields::never"
    )]
    #[schema(schema_with = crate::http::docs::price)]
    pub follow_up_price: Option<Cents>,
    #[serde(
        default,
        deserialize_with = "price_opt",
        skip_serializing_if = "super::fields::never"
    )]
    #[schema(schema_with = crate::http::docs::price)]
    pub package_price: Option<Cents>,
    #[serde(
        default,
        deserialize_with = "price_opt",
        skip_serializing_if = "super::fields::never"
    )]
    #[schema(schema_with = crate::http::docs::price)]
    pub couple_session_price: Option<Cents>,
    #[serde(default)]
    #[schema(schema_with = crate::http::docs::accepts::<Currency>)]
    pub currency: Currency,
    #[validate(range(min = 5, max = 720))]
    #[schema(minimum = 5, maximum = 720)]
    pub session_duration: Option<u32>,
    #[validate(nested)]
    pub custom_rates: Option<CustomRates>,
}

/// A bundle of sessions sold together (the SPEC's fields, plus the dashboard's package form:
/// `discountedPrice` is the price, `originalPrice` what it would cost without the bundle).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PricingPackage {
    #[serde(default, deserialize_with = "item_id")]
    #[schema(value_type = Option<crate::profile::docs::ItemId>)]
    pub id: Option<String>,
    #[serde(deserialize_with = "crate::http::extract::trimmed")]
    #[validate(length(min = 1, max = 120))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    #[validate(range(min = 1, max = 100))]
    #[schema(minimum = 1, maximum = 100)]
    pub sessions: u32,
    #[serde(
        default,
        deserialize_with = "price_opt",
        skip_serializing_if = "super::fields::never"
    )]
    #[schema(schema_with = crate::http::docs::price)]
    pub price: Option<Cents>,
    #[serde(
        default,
        deserialize_with = "price_opt",
        skip_serializing_if = "super::fields::never"
    )]
    #[schema(schema_with = crate::http::docs::price)]
    pub discounted_price: Option<Cents>,
    #[serde(
        default,
        deserialize_with = "price_opt",
        skip_serializing_if = "super::fields::never"
    )]
    #[schema(schema_with = crate::http::docs::price)]
    pub original_price: Option<Cents>,
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    #[validate(range(min = 1, max = 3650))]
    #[schema(minimum = 1, maximum = 3650)]
    pub validity_days: Option<u32>,
    pub is_active: Option<bool>,
    #[validate(custom(function = "short_texts"))]
    #[schema(value_type = Option<crate::profile::docs::ShortTexts>)]
    pub features: Option<Vec<String>>,
}

impl PricingPackage {
    /// What the bundle costs: `price`, else `discountedPrice`.
    pub fn cost(&self) -> Option<Cents> {
        self.price.or(self.discounted_price)
    }
}

/// `pricingPackages`: the SPEC's list, or the dashboard's `{packages, coupons}`. Coupons are
/// out of scope (SPEC): accepted and not stored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PackagesInput {
    List(Vec<PricingPackage>),
    Form(PackagesForm),
}

/// The dashboard's packages-and-coupons form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackagesForm {
    #[serde(default)]
    pub packages: Vec<PricingPackage>,
    #[serde(default)]
    #[allow(dead_code)]
    pub coupons: Vec<serde_json::Value>,
}

impl PackagesInput {
    /// The packages given either way.
    pub fn into_packages(self) -> Vec<PricingPackage> {
        match self {
            Self::List(l) => l,
            Self::Form(f) => f.packages,
        }
    }
}

/// Counts and durations are stored as 32-bit integers (as they always were).
fn int32<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i32(i32::try_from(*v).map_err(serde::ser::Error::custom)?)
}

fn int32_opt<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => int32(v, s),
        None => s.serialize_none(),
    }
}

/// A session kind's price as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSessionRate {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: SessionKind,
    pub name: String,
    #[serde(serialize_with = "int32")]
    pub duration: u32,
    pub price_cents: i64,
    #[serde(default)]
    pub description: Option<String>,
}

impl From<SessionRate> for StoredSessionRate {
    fn from(mut s: SessionRate) -> Self {
        fresh_id(&mut s.id);
        Self {
            id: s.id,
            kind: s.kind,
            name: s.name,
            duration: s.duration,
            price_cents: s.price.0,
            description: s.description,
        }
    }
}

/// A bundle of one kind of session as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRatePackage {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(serialize_with = "int32")]
    pub sessions: u32,
    pub session_type: SessionKind,
    pub price_cents: i64,
    #[serde(default)]
    pub description: Option<String>,
}

impl From<RatePackage> for StoredRatePackage {
    fn from(mut p: RatePackage) -> Self {
        fresh_id(&mut p.id);
        Self {
            id: p.id,
            name: p.name,
            sessions: p.sessions,
            session_type: p.session_type,
            price_cents: p.price.0,
            description: p.description,
        }
    }
}

/// The custom rates as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCustomRates {
    #[serde(default)]
    pub currency: Currency,
    #[serde(default)]
    pub sessions: Vec<StoredSessionRate>,
    #[serde(default)]
    pub packages: Vec<StoredRatePackage>,
}

/// The session prices as stored (every key written, `null` when not set).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRates {
    #[serde(default)]
    pub session_price_cents: Option<i64>,
    #[serde(default)]
    pub follow_up_price_cents: Option<i64>,
    #[serde(default)]
    pub package_price_cents: Option<i64>,
    #[serde(default)]
    pub couple_session_price_cents: Option<i64>,
    #[serde(default)]
    pub currency: Option<Currency>,
    #[serde(default, serialize_with = "int32_opt")]
    pub session_duration: Option<u32>,
    #[serde(default)]
    pub custom_rates: Option<StoredCustomRates>,
}

impl From<Rates> for StoredRates {
    fn from(r: Rates) -> Self {
        Self {
            session_price_cents: r.session_price.map(|c| c.0),
            follow_up_price_cents: r.follow_up_price.map(|c| c.0),
            package_price_cents: r.package_price.map(|c| c.0),
            couple_session_price_cents: r.couple_session_price.map(|c| c.0),
            currency: Some(r.currency),
            session_duration: r.session_duration,
            custom_rates: r.custom_rates.map(|c| StoredCustomRates {
                currency: c.currency,
                sessions: c.sessions.into_iter().map(Into::into).collect(),
                packages: c.packages.into_iter().map(Into::into).collect(),
            }),
        }
    }
}

/// A pricing package as stored (its cost under `priceCents`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPackage {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(serialize_with = "int32")]
    pub sessions: u32,
    #[serde(default)]
    pub price_cents: Option<i64>,
    #[serde(default)]
    pub original_price_cents: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, serialize_with = "int32_opt")]
    pub validity_days: Option<u32>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub features: Option<Vec<String>>,
}
