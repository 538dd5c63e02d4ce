//! The text fields of an upload form, as the dashboard sends them: `title, description,
//! category, clientId, tags, visibility` (or `accessLevel`), `isConfidential`. Empty values
//! (the dashboard sends `clientId=""`) are absent; tags come as a JSON array or a comma list;
//! fields the dashboard adds for itself (`metadata`, `options`, `session`) are ignored.

use std::collections::HashMap;

use mongodb::bson::oid::ObjectId;

use super::model::{Category, Visibility};
use crate::error::{ApiError, ApiResult};

/// Validated upload metadata.
#[derive(Debug, Default, Clone)]
pub struct UploadMeta {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Category,
    pub client: Option<ObjectId>,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub confidential: bool,
}

fn given<'a>(fields: &'a HashMap<String, String>, names: &[&str]) -> Option<(&'a str, String)> {
    names.iter().find_map(|n| {
        let (key, v) = fields.get_key_value(*n)?;
        let v = v.trim();
        (!v.is_empty() && v != "null" && v != "undefined").then(|| (key.as_str(), v.to_owned()))
    })
}

/// A value of a string enum, or a 400 naming the field.
fn choice<T: serde::de::DeserializeOwned>(field: &str, raw: &str) -> ApiResult<T> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map_err(|_| ApiError::field(field, format!("`{raw}` is not an accepted value")))
}

/// Trimmed text of at most `max` characters.
pub fn text(field: &str, raw: &str, max: usize) -> ApiResult<String> {
    let t = raw.trim();
    if t.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::field(field, "must not contain control characters"));
    }
    Ok(t.to_owned())
}

/// Tags: at most 30 of up to 40 characters, trimmed, without empties or repeats.
pub fn tags(field: &str, list: Vec<String>) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in list {
        let t = text(field, &t, 40)?;
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > 30 {
        return Err(ApiError::field(field, "at most 30 tags"));
    }
    Ok(out)
}

fn parse_tags(raw: &str) -> ApiResult<Vec<String>> {
    let list = if raw.starts_with('[') {
        serde_json::from_str::<Vec<String>>(raw).map_err(|_| {
            ApiError::field(
                "tags",
                "must be a JSON array of strings or a comma-separated list",
            )
        })?
    } else {
        raw.split(',').map(str::to_owned).collect()
    };
    tags("tags", list)
}

fn parse_bool(field: &str, raw: &str) -> ApiResult<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ApiError::field(field, "must be true or false")),
    }
}

impl UploadMeta {
    /// Reads and checks the form's fields.
    pub fn parse(fields: &HashMap<String, String>) -> ApiResult<Self> {
        let mut meta = UploadMeta::default();
        if let Some((f, v)) = given(fields, &["title", "name"]) {
            meta.title = Some(text(f, &v, 200)?);
        }
        if let Some((f, v)) = given(fields, &["description"]) {
            meta.description = Some(text(f, &v, 2000)?);
        }
        if let Some((f, v)) = given(fields, &["category"]) {
            meta.category = choice(f, &v)?;
        }
        if let Some((f, v)) = given(fields, &["clientId", "client_id"]) {
            meta.client = Some(crate::auth::extract::parse_id(&v, f)?);
        }
        if let Some((_, v)) = given(fields, &["tags"]) {
            meta.tags = parse_tags(&v)?;
        }
        if let Some((f, v)) = given(fields, &["visibility", "accessLevel"]) {
            meta.visibility = choice(f, &v)?;
        }
        if let Some((f, v)) = given(fields, &["isConfidential", "is_confidential"]) {
            meta.confidential = parse_bool(f, &v)?;
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_dashboards_form_reads_as_meant() {
        let m = UploadMeta::parse(&form(&[
            ("title", " Consentimiento "),
            ("category", "legal"),
            ("clientId", ""),
            ("session", ""),
            ("tags", "[\"firma\",\"firma\",\" 2026 \"]"),
            ("visibility", "therapist_only"),
            ("isConfidential", "true"),
            ("metadata", "{\"anything\": 1}"),
        ]))
        .unwrap();
        assert_eq!(m.title.as_deref(), Some("Consentimiento"));
        assert_eq!(m.category, Category::Legal);
        assert_eq!(m.client, None);
        assert_eq!(m.tags, vec!["firma", "2026"]);
        assert_eq!(m.visibility, Visibility::TherapistOnly);
        assert!(m.confidential);
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = |pairs: &[(&str, &str)]| format!("{:?}", UploadMeta::parse(&form(pairs)).unwrap_err());
        assert!(err(&[("category", "secret")]).contains("category"));
        assert!(err(&[("clientId", "nope")]).contains("clientId"));
        assert!(err(&[("isConfidential", "maybe")]).contains("isConfidential"));
        assert!(err(&[("tags", "[1,2]")]).contains("tags"));
        assert!(err(&[("accessLevel", "everyone")]).contains("accessLevel"));
        assert_eq!(
            UploadMeta::parse(&form(&[("tags", "a, b,,c")])).unwrap().tags,
            vec!["a", "b", "c"]
        );
    }
}
