//! What every operation of a given shape can answer, added to the document from the shape
//! itself (its security, parameters, body and method), so that no annotation can forget it:
//!
//! | shape | answers | why |
//! |---|---|---|
//! | any parameter or body, or a write | 400 | a malformed value (`VALIDATION_ERROR`), a body that cannot be read |
//! | a token required (or optional) | 401 | missing, expired or revoked token |
//! | one role only | 403 | a client's token on a therapist's route and the reverse |
//! | a path parameter | 404 | not found, or someone else's (never 403: ids cannot be probed) |
//! | a write (`POST`, `PUT`, `PATCH`, `DELETE`) | 413 | a body over `http.json_body_limit_bytes` |
//! | a JSON body | 415 | a `Content-Type` other than JSON |
//! | under `/api/` | 503 | starting up, overloaded, timed out, database unreachable (`Retry-After`) |
//!
//! A body that may be left out (`request_body = Option<T>`) is `T`, never `null`. Every error
//! answer's body is the SPEC's envelope (`ErrorBody`). Public routes get an explicit
//! empty `security`, and routes served under a second path (the dashboard's names) are
//! documented under both.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};

/// Routes served under a second path: (alias, documented path).
pub const ALIASES: &[(&str, &str)] = &[
    ("/api/notes", "/api/session-notes"),
    ("/api/notes/{id}", "/api/session-notes/{id}"),
    ("/api/reviews/{id}/responses", "/api/reviews/{id}/response"),
    ("/api/auth/verify-email", "/api/clients/verify-email"),
    ("/api/dashboard/therapist", "/api/dashboard"),
];

/// The security schemes: one bearer JWT per role, so a client knows which token a route takes.
pub const THERAPIST: &str = "therapist";
/// A client (booking site) login's bearer token.
pub const CLIENT: &str = "client";

/// Completes the document (see the module docs).
pub struct Finish;

impl utoipa::Modify for Finish {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, who) in [
            (THERAPIST, "a therapist"),
            (CLIENT, "a client of the booking site"),
        ] {
            let scheme = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(format!(
                    "Access token of {who} (`POST /api/auth/login`), sent as `Authorization: Bearer`"
                )))
                .build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
        for (alias, original) in ALIASES {
            if let Some(item) = doc.paths.paths.get(*original).cloned() {
                doc.paths.paths.insert((*alias).to_owned(), item);
            }
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                complete(path, method, op);
            }
        }
        unique_operation_ids(doc);
    }
}

/// The operations of a path, with their methods.
pub fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

/// Who may call an operation, from its `security`.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    Public,
    /// A token is optional (a bad one is still a 401).
    Optional,
    /// Any signed-in user.
    Anyone,
    /// One role only.
    Role,
}

fn access(op: &Operation) -> Access {
    let requirements: Vec<serde_json::Value> = op
        .security
        .iter()
        .flatten()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let empty = requirements
        .iter()
        .filter(|r| r.as_object().is_some_and(|o| o.is_empty()))
        .count();
    match (requirements.len() - empty, empty) {
        (0, _) => Access::Public,
        (_, 1..) => Access::Optional,
        (1, 0) => Access::Role,
        _ => Access::Anyone,
    }
}

fn complete(path: &str, method: &str, op: &mut Operation) {
    let access = access(op);
    if access == Access::Public {
        op.security = Some(Vec::new());
    }
    optional_body_is_not_null(op);
    let write = method != "get";
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let body = op.request_body.is_some();
    let mut standard: Vec<(u16, &str)> = Vec::new();
    if has_params || body || write {
        standard.push((400, "Invalid input: the field or parameter is named in `errors`"));
    }
    if access != Access::Public {
        standard.push((401, "Missing, invalid, expired or revoked access token"));
    }
    if access == Access::Role {
        standard.push((403, "The token is another role's"));
    }
    if path.contains('{') {
        standard.push((404, "Not found, or not the caller's"));
    }
    if write {
        standard.push((413, "Request body too large"));
    }
    if body {
        standard.push((415, "Content-Type is not JSON"));
    }
    if path.starts_with("/api/") {
        standard.push((503, "Starting up, overloaded, timed out or the database is unreachable; retry after `Retry-After` seconds"));
    }
    let responses = &mut op.responses.responses;
    for (code, description) in standard {
        responses
            .entry(code.to_string())
            .or_insert_with(|| ResponseBuilder::new().description(description).build().into());
    }
    for (code, response) in responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if code.as_str() < "400" || !response.content.is_empty() {
            continue;
        }
        response.content.insert(
            "application/json".to_owned(),
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        );
        if code == "429" || code == "503" {
            let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
            let header = HeaderBuilder::new()
                .schema(seconds)
                .description(Some("Seconds to wait before trying again"))
                .build();
            response.headers.insert("Retry-After".to_owned(), header);
        }
    }
}

/// `request_body = Option<T>` (a body that may be left out: an empty body reads as `{}`) is
/// documented by utoipa as `T` or `null`; no body here may be the JSON `null`.
fn optional_body_is_not_null(op: &mut Operation) {
    use utoipa::openapi::schema::Schema;
    let Some(body) = op.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
            continue;
        };
        let not_null: Vec<_> = one_of
            .items
            .iter()
            .filter(|s| !matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == Type::Null.into()))
            .cloned()
            .collect();
        if not_null.len() == 1 && one_of.items.len() == 2 {
            content.schema = not_null.into_iter().next();
        }
    }
}

/// Operation ids are the handlers' names; where two share one (every resource has a `list`),
/// both are prefixed with their tag, and an alias path's copy with its path.
fn unique_operation_ids(doc: &mut OpenApi) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations(item) {
            *seen
                .entry(op.operation_id.clone().unwrap_or_default())
                .or_default() += 1;
        }
    }
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        let alias = ALIASES.iter().any(|(a, _)| a == path);
        for (method, op) in operations(item) {
            let name = op.operation_id.clone().unwrap_or_else(|| method.to_owned());
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first())
                .cloned()
                .unwrap_or_default();
            let mut id = if seen.get(&name).copied().unwrap_or(0) > 1 {
                format!("{}_{name}", tag.replace('-', "_"))
            } else {
                name
            };
            if alias {
                id = format!(
                    "{id}_at_{}",
                    path.trim_start_matches("/api/")
                        .replace(['/', '-'], "_")
                        .replace(['{', '}'], "")
                );
            }
            let n = taken.entry(id.clone()).or_default();
            *n += 1;
            if *n > 1 {
                id = format!("{id}_{n}");
            }
            op.operation_id = Some(id);
        }
    }
}
