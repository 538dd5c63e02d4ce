//! What serde's derive accepts, read from the derive itself: every name of a struct's fields
//! (each field's own and its aliases), every name of an enum's variants, and which names are one
//! field. The OpenAPI document takes query aliases and enum aliases from here (see `http::docs`),
//! so it cannot drift from what the server reads.
//!
//! How: the derive hands its names to the `Deserializer` (`deserialize_struct(.., FIELDS, ..)`,
//! `deserialize_enum(.., VARIANTS, ..)`, aliases included); a deserializer that only records
//! them reads them. Two names are one field when a map giving both is refused as a duplicate.

use std::cell::Cell;

use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, Visitor};

type Names = &'static [&'static str];

/// Every name serde accepts for the fields of `T` (a derived struct without `flatten`), or
/// `None` when `T` is not one.
pub fn fields<T: DeserializeOwned>() -> Option<Names> {
    let seen = Cell::new(None);
    let _ = T::deserialize(Recorder(&seen));
    seen.get()
}

/// Every name serde accepts for the variants of `T` (a derived enum), aliases included, or
/// `None` when `T` is not one.
pub fn variants<T: DeserializeOwned>() -> Option<Names> {
    fields::<T>()
}

/// The names of `T`'s fields, one group per field (its name and aliases), in declaration order.
pub fn field_groups<T: DeserializeOwned>() -> Option<Vec<Vec<&'static str>>> {
    let mut groups: Vec<Vec<&'static str>> = Vec::new();
    for name in fields::<T>()? {
        match groups.iter_mut().find(|g| same_field::<T>(g[0], name)) {
            Some(group) => group.push(name),
            None => groups.push(vec![name]),
        }
    }
    Some(groups)
}

/// Whether `a` and `b` name the same field of `T`: serde refuses them together as a duplicate.
fn same_field<T: DeserializeOwned>(a: &'static str, b: &'static str) -> bool {
    match T::deserialize(Pairs { keys: [a, b], at: 0 }) {
        Err(e) => e.to_string().starts_with("duplicate field"),
        Ok(_) => false,
    }
}

/// Records the names a derived `Deserialize` passes, and deserializes nothing.
struct Recorder<'a>(&'a Cell<Option<Names>>);

impl<'de> Deserializer<'de> for Recorder<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("not a derived struct or enum"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        names: Names,
        _: V,
    ) -> Result<V::Value, Error> {
        self.0.set(Some(names));
        Err(de::Error::custom("recorded"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        names: Names,
        _: V,
    ) -> Result<V::Value, Error> {
        self.0.set(Some(names));
        Err(de::Error::custom("recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// A map of two keys whose values are blank (`None`, `0`, `""`...).
struct Pairs {
    keys: [&'static str; 2],
    at: usize,
}

impl<'de> Deserializer<'de> for Pairs {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> MapAccess<'de> for Pairs {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some(key) = self.keys.get(self.at) else {
            return Ok(None);
        };
        self.at += 1;
        seed.deserialize(StrDeserializer::<Error>::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(Blank)
    }
}

/// The emptiest value of whatever is asked for, so that a field's value never stops the probe.
struct Blank;

impl<'de> Deserializer<'de> for Blank {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("")
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_none()
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(false)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(0.0)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        names: Names,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(StrDeserializer::<Error>::new(
            names.first().copied().unwrap_or_default(),
        ))
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Query {
        #[serde(alias = "start_date", alias = "from")]
        start_date: Option<String>,
        #[serde(default, deserialize_with = "crate::http::query::all_or")]
        status: Option<Kind>,
        page: Option<u64>,
        required: String,
        flag: Option<bool>,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Kind {
        #[serde(alias = "scheduled")]
        Upcoming,
        NoShow,
    }

    #[test]
    fn reads_names_and_aliases_from_the_derive() {
        let mut names = fields::<Query>().unwrap().to_vec();
        names.sort();
        assert_eq!(
            names,
            [
                "flag",
                "from",
                "page",
                "required",
                "startDate",
                "start_date",
                "status"
            ]
        );
        assert_eq!(
            field_groups::<Query>().unwrap(),
            vec![
                vec!["from", "startDate", "start_date"],
                vec!["status"],
                vec!["page"],
                vec!["required"],
                vec!["flag"],
            ]
        );
        assert_eq!(variants::<Kind>().unwrap(), ["scheduled", "upcoming", "no_show"]);
        assert_eq!(fields::<String>(), None);
    }
}
