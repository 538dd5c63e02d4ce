//! Query parameters and enums in the document, from what serde reads (`http::names`):
//!
//! - `params(ApiQuery<Q>)` (the extractor the handler takes) documents `Q`'s parameters and,
//!   for every alias serde accepts, the same parameter under that name, marked
//!   `x-alias-of: <name>`. Two names of one parameter in one request are a 400 (serde's
//!   duplicate field), which OpenAPI cannot say: each alias's description does. Building the
//!   document fails when a name serde reads is not documented or the reverse.
//! - `accepts::<T>` is an enum as requests may give it (every variant name and alias);
//!   `filter::<T>` adds `all` and the empty value (`http::query::all_or`: no filter). Answers
//!   use the enum's own component (canonical names only).

use serde::de::DeserializeOwned;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::IntoParams;

use crate::http::extract::ApiQuery;
use crate::http::names;

/// The extension naming the parameter an alias stands for.
pub const ALIAS_OF: &str = "x-alias-of";

/// The extension of a range's end naming its start: an end before the start is a 400 (a rule
/// between two parameters, which OpenAPI cannot state otherwise).
pub const NOT_BEFORE: &str = "x-not-before";

/// The (end, start) pairs of date ranges.
const RANGES: &[(&str, &str)] = &[("endDate", "startDate"), ("dateTo", "dateFrom"), ("to", "from")];

impl<Q: IntoParams + DeserializeOwned> IntoParams for ApiQuery<Q> {
    fn into_params(parameter_in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        with_aliases::<Q>(Q::into_params(parameter_in_provider))
    }
}

/// `documented` and, after each, its aliases; panics when they and serde's names differ.
fn with_aliases<Q: DeserializeOwned>(documented: Vec<Parameter>) -> Vec<Parameter> {
    let query = std::any::type_name::<Q>();
    let groups = names::field_groups::<Q>().unwrap_or_else(|| {
        panic!("{query}: serde's names cannot be read (not a derived struct, or `flatten`)")
    });
    let mut out = Vec::new();
    for param in &documented {
        let group = groups
            .iter()
            .find(|g| g.contains(&param.name.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{query}: `{}` is documented but serde does not read it",
                    param.name
                )
            });
        out.push(param.clone());
        for alias in group.iter().filter(|n| **n != param.name) {
            assert!(
                !documented.iter().any(|p| p.name == *alias),
                "{query}: `{}` and `{alias}` are one parameter: document one",
                param.name
            );
            let mut copy = param.clone();
            copy.name = (*alias).to_owned();
            copy.description = Some(format!(
                "`{}` under another name; give one name of a parameter (two: 400)",
                param.name
            ));
            copy.extensions = Some(
                [(ALIAS_OF, serde_json::Value::from(param.name.clone()))]
                    .into_iter()
                    .collect(),
            );
            out.push(copy);
        }
    }
    for group in &groups {
        assert!(
            documented.iter().any(|p| group.contains(&p.name.as_str())),
            "{query}: serde reads {group:?} but none is documented"
        );
    }
    for param in &mut out {
        let name = param
            .extensions
            .as_ref()
            .and_then(|e| e.get(ALIAS_OF))
            .and_then(|v| v.as_str())
            .unwrap_or(&param.name)
            .to_owned();
        let start = RANGES
            .iter()
            .find(|(end, _)| *end == name)
            .map(|(_, start)| *start);
        if let Some(start) = start.filter(|s| documented.iter().any(|p| p.name == *s)) {
            let note = format!("Not before `{start}` (400)");
            param.description = Some(match param.description.take() {
                Some(d) => format!("{d}. {note}"),
                None => note,
            });
            param
                .extensions
                .get_or_insert_with(Default::default)
                .insert(NOT_BEFORE.to_owned(), start.into());
        }
    }
    out
}

/// Every name serde accepts for the variants of `T`.
pub fn variant_names<T: DeserializeOwned>() -> Vec<&'static str> {
    names::variants::<T>()
        .unwrap_or_else(|| panic!("{}: not a derived enum", std::any::type_name::<T>()))
        .to_vec()
}

/// The enum `T` as a request may give it: every variant name and alias serde accepts.
pub fn accepts<T: DeserializeOwned>() -> RefOr<Schema> {
    enum_of(variant_names::<T>())
}

/// An optional enum field of a body: what [`accepts`] takes, or `null` (absent).
pub fn accepts_or_null<T: DeserializeOwned>() -> RefOr<Schema> {
    names_of(variant_names::<T>(), true)
}

/// The names serde accepts for the variants of `T` that `keep` keeps (a rule narrower than the
/// type: a new booking is `pending` or `upcoming`).
pub fn names_where<T: DeserializeOwned>(keep: impl Fn(&T) -> bool) -> Vec<&'static str> {
    variant_names::<T>()
        .into_iter()
        .filter(|name| {
            T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(
                name,
            ))
            .is_ok_and(|v| keep(&v))
        })
        .collect()
}

/// A string schema of these `names`, and `null` where `nullable`.
pub fn names_of(names: Vec<&'static str>, nullable: bool) -> RefOr<Schema> {
    if !nullable {
        return enum_of(names);
    }
    let mut values: Vec<serde_json::Value> = names.into_iter().map(Into::into).collect();
    values.push(serde_json::Value::Null);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
        .into()
}

/// A list filter of enum `T` (`http::query::all_or`): a variant, `all` or empty (no filter).
pub fn filter<T: DeserializeOwned>() -> RefOr<Schema> {
    let mut values = variant_names::<T>();
    values.extend(["all", ""]);
    enum_of(values)
}

fn enum_of(values: Vec<&'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .into()
}
