//! Money: amounts travel as major units (`80`, `80.5`) and are stored as integer cents.
//! Parsing reads the number's decimal text, so no binary float ever decides a cent.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Largest amount accepted: 1,000,000.00.
pub const MAX_CENTS: i64 = 100_000_000;

/// Supported currencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
pub enum Currency {
    #[default]
    #[serde(alias = "eur")]
    EUR,
    #[serde(alias = "usd")]
    USD,
    #[serde(alias = "gbp")]
    GBP,
}

/// A non-negative amount in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl Cents {
    /// Major units for JSON output (`8050` → `80.5`).
    pub fn to_major(self) -> serde_json::Value {
        self.to_major_string()
            .parse::<serde_json::Number>()
            .map(serde_json::Value::Number)
            .unwrap_or_default()
    }

    /// Major units as text with two decimals (`8050` → `"80.50"`).
    pub fn to_major_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// Parses major units from their decimal text: at most two decimals, 0..=MAX.
    pub fn parse_major(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err("must be a non-negative amount with at most two decimals");
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > 2 {
            return Err("must have at most two decimals");
        }
        if whole.len() > 9 {
            return Err("is too large");
        }
        let whole: i64 = whole.parse().map_err(|_| "is too large")?;
        let frac_cents: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
        let cents = whole * 100 + frac_cents;
        if cents > MAX_CENTS {
            return Err("is too large (at most 1000000)");
        }
        Ok(Cents(cents))
    }
}

/// Deserializes a JSON number (or numeric string) of major units into cents.
pub fn major<'de, D: Deserializer<'de>>(d: D) -> Result<Cents, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let text = match &value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => return Err(D::Error::custom("must be a number")),
    };
    Cents::parse_major(&text).map_err(D::Error::custom)
}

/// Like `major`, for optional fields.
pub fn major_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cents>, D::Error> {
    major(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_cents_from_decimal_text() {
        assert_eq!(Cents::parse_major("80").unwrap(), Cents(8000));
        assert_eq!(Cents::parse_major("80.5").unwrap(), Cents(8050));
        assert_eq!(Cents::parse_major("0.1").unwrap(), Cents(10));
        assert_eq!(Cents::parse_major("19.99").unwrap(), Cents(1999));
        assert_eq!(Cents::parse_major("19.990").unwrap(), Cents(1999));
        assert!(Cents::parse_major("19.999").is_err());
        assert!(Cents::parse_major("-1").is_err());
        assert!(Cents::parse_major("1e3").is_err());
        assert!(Cents::parse_major("1000000.01").is_err());
        assert!(Cents::parse_major("99999999999999999999").is_err());
        assert_eq!(Cents(8050).to_major().to_string(), "80.5");
        assert_eq!(Cents(5).to_major().to_string(), "0.05");
    }
}
