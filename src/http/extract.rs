//! Extractors whose rejections are the SPEC's 4xx envelope, naming the offending field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::{ApiError, FieldError};

/// JSON body, deserialized with the failing field named in the 400.
pub struct ApiJson<T>(pub T);

/// JSON body that is also checked with `validator`.
pub struct ValidatedJson<T>(pub T);

/// Query string, deserialized with the failing parameter named in the 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Validate> FromRequest<S> for ValidatedJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiJson(value) = ApiJson::<T>::from_request(req, state).await?;
        value.validate().map_err(validation_errors)?;
        Ok(ValidatedJson(value))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| ApiError::field(field_name(&e.path().to_string()), e.inner().to_string()))
    }
}

/// The raw body of a request, for handlers that parse it themselves (idempotency fingerprints):
/// a body over the limit is the SPEC's 413 envelope, like every other route's.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_rejection)
    }
}

/// The version an update was read at, from `If-Match` (`"3"`, `W/"3"` or `3`). A body
/// `version` wins over it (the header is then not read at all); a stale version is the
/// resource's 412, a malformed header a 400 naming it, decided after the resource is found.
#[derive(Debug, Clone, Default)]
pub struct IfMatch(Option<axum::http::HeaderValue>);

impl IfMatch {
    /// The version the request carries: the body's `version` first, else `If-Match`.
    pub fn or_body(&self, body: Option<i64>) -> Result<Option<i64>, ApiError> {
        if body.is_some() {
            return Ok(body);
        }
        let Some(raw) = &self.0 else {
            return Ok(None);
        };
        raw.to_str()
            .ok()
            .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::field("If-Match", "must be the version number the resource was read at"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(IfMatch(parts.headers.get(header::IF_MATCH).cloned()))
    }
}

/// A JSON body where an empty body reads as `{}` (so `PUT .../complete` may send nothing),
/// validated; the 400/413/415 of [`parse_body`].
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Validate> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let RawBody(body) = RawBody::from_request(req, state).await?;
        parse_body(&headers, &body).map(JsonBody)
    }
}

/// Deserializes a string trimmed, so validation sees (and storage keeps) what matters.
pub fn trimmed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::Deserialize;
    Ok(String::deserialize(d)?.trim().to_owned())
}

/// A link shown to others (meeting links, profile links): `https:` or `http:` only, never
/// `javascript:`, `data:` and the like. Whether `http:` is allowed is the deployment's choice:
/// see [`require_https`].
pub fn web_link(v: &str) -> Result<(), validator::ValidationError> {
    let lower = v.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(())
    } else {
        Err(validator::ValidationError::new("scheme").with_message("must be an https:// link".into()))
    }
}

/// 400 for an `http:` link outside development: links served publicly must be `https:`.
pub fn require_https(
    config: &crate::config::Config,
    field: &str,
    link: Option<&str>,
) -> Result<(), ApiError> {
    match link {
        Some(l) if !l.trim().to_ascii_lowercase().starts_with("https://") && config.env != "development" => {
            Err(ApiError::field(field, "must be an https:// link"))
        }
        _ => Ok(()),
    }
}

fn require_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(
            "Expected a JSON body with Content-Type: application/json".into(),
        ));
    };
    let mime = value.to_str().unwrap_or_default().to_ascii_lowercase();
    let essence = mime.split(';').next().unwrap_or_default().trim();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Unsupported Content-Type `{essence}`, expected application/json"
        )))
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest {
            code: "INVALID_BODY",
            message: "The request body could not be read".into(),
        }
    }
}

/// The 400 of a body that parsed as JSON but not as the request: the field at `path`, and
/// for a missing field (which serde reports at its parent) the field itself.
fn field_error(path: String, serde_message: &str) -> ApiError {
    let message = clean_serde_message(serde_message);
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        let field = if path == "." {
            missing.to_owned()
        } else {
            format!("{path}.{missing}")
        };
        return ApiError::field(field, "is required");
    }
    ApiError::field(field_name(&path), message)
}

/// Parses JSON bytes into `T`, naming the field that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde lets a struct come as a JSON array of its fields: every body here is an object.
    let first = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace() && **b != 0xEF && **b != 0xBB && **b != 0xBF);
    if first == Some(&b'[') {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        // `115.0` is an integer in JSON Schema's sense (and in JavaScript's): read it as one.
        Err(e) if e.inner().to_string().starts_with("invalid type: floating point") => {
            let mut v: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest {
                    code: "INVALID_JSON",
                    message: format!("Malformed JSON: {e}"),
                })?;
            integral_floats_as_integers(&mut v);
            return serde_path_to_error::deserialize(v)
                .map_err(|e| field_error(e.path().to_string(), &e.inner().to_string()));
        }
        other => other,
    }
    .map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest {
                code: "INVALID_JSON",
                message: format!("Malformed JSON: {inner}"),
            };
        }
        field_error(e.path().to_string(), &inner.to_string())
    })?;
    de.end().map_err(|e| ApiError::BadRequest {
        code: "INVALID_JSON",
        message: format!("Malformed JSON: {e}"),
    })?;
    Ok(value)
}

/// Rewrites every number with no fractional part (`115.0`, `1e2`) as an integer, where one fits.
fn integral_floats_as_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if f >= 0.0 && f < u64::MAX as f64 {
                    *n = (f as u64).into();
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    *n = (f as i64).into();
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn field_name(path: &str) -> String {
    if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

/// Drops serde's " at line 1 column 20" suffix, which means nothing to a dashboard user.
fn clean_serde_message(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Flattens validator's nested errors into `field` paths.
pub fn validation_errors(errors: ValidationErrors) -> ApiError {
    let mut out = Vec::new();
    flatten(&errors, "", &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field));
    ApiError::Validation(out)
}

fn flatten(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        // validator reports Rust names; the API speaks camelCase.
        let field = camel_case(field);
        let path = if prefix.is_empty() {
            field
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let message = e
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| format!("is invalid ({})", e.code));
                    out.push(FieldError::new(path.clone(), message));
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    flatten(inner, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses and validates a JSON body read as bytes (for handlers that also need the raw bytes,
/// such as idempotent ones). An empty body is `{}`.
pub fn parse_body<T: DeserializeOwned + Validate>(
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiError> {
    let empty = bytes.iter().all(u8::is_ascii_whitespace);
    if !empty {
        require_json_content_type(headers)?;
    }
    let value: T = parse_json(if empty { b"{}" } else { bytes })?;
    value.validate().map_err(validation_errors)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Probe {
        first_name: String,
        age: u8,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        when: String,
    }

    fn field_of(json: &str) -> String {
        match parse_json::<Probe>(json.as_bytes()) {
            Err(ApiError::Validation(errors)) => errors[0].field.clone(),
            Err(ApiError::BadRequest { code, .. }) => code.to_owned(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field_of(r#"{"age": 3}"#), "firstName");
        assert_eq!(field_of(r#"{"firstName": "a", "age": 300}"#), "age");
        assert_eq!(
            field_of(r#"{"firstName": "a", "age": 3, "inner": {}}"#),
            "inner.when"
        );
        assert_eq!(field_of(r#"{"firstName": 1, "age": 3}"#), "firstName");
        assert_eq!(field_of(r#"{"firstName": "a", "#), "INVALID_JSON");
        assert_eq!(
            field_of(r#"{"firstName": "a", "age": 1} trailing"#),
            "INVALID_JSON"
        );
        assert_eq!(field_of("[]"), "body");
        assert_eq!(field_of(r#"{"firstName": "a", "age": 300.0}"#), "age");
        assert_eq!(field_of(r#"{"firstName": "a", "age": 3.5}"#), "age");
        // Read again with its integral float as an integer, a missing field is still named.
        assert_eq!(field_of(r#"{"age": 30.0}"#), "firstName");
    }

    #[test]
    fn integral_floats_read_as_integers() {
        let p: Probe = parse_json(br#"{"firstName": "a", "age": 30.0}"#).unwrap();
        assert_eq!(p.age, 30);
        let p: Probe = parse_json(br#"{"firstName": "a", "age": 3e1}"#).unwrap();
        assert_eq!(p.age, 30);
    }

    #[test]
    fn snake_names_become_camel() {
        assert_eq!(camel_case("confirm_password"), "confirmPassword");
        assert_eq!(camel_case("email"), "email");
    }
}
