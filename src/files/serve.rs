//! Answers a download: `ETag` (the SHA-256), `If-None-Match` (304), one `Range` (206, or 416
//! when it lies past the end; `If-Range` falls back to the whole file), the file name per
//! RFC 6266, and the body streamed from GridFS chunk by chunk.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mongodb::bson::oid::ObjectId;
use serde_json::json;

use super::range::{content_disposition, etag, none_match, parse_range, RangeAsk};
use super::store::FileStore;

/// What is served.
pub struct Served<'a> {
    pub file_id: ObjectId,
    pub size: u64,
    pub sha256: &'a str,
    pub mime: &'a str,
    pub filename: &'a str,
    /// `Cache-Control` (none: the API's `no-store`).
    pub cache_control: Option<&'static str>,
    /// Shown in the page (images) instead of saved as a file.
    pub inline: bool,
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The response to a GET of `f` with the request's `headers`.
pub fn respond(store: &FileStore, f: &Served<'_>, headers: &HeaderMap) -> Response {
    let tag = etag(f.sha256);
    if none_match(header_str(headers, header::IF_NONE_MATCH), &tag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        set(&mut r, header::ETAG, &tag);
        if let Some(c) = f.cache_control {
            set(&mut r, header::CACHE_CONTROL, c);
        }
        return r;
    }
    let if_range_stale = header_str(headers, header::IF_RANGE).is_some_and(|v| v.trim() != tag);
    let ask = if if_range_stale {
        RangeAsk::Whole
    } else {
        parse_range(header_str(headers, header::RANGE), f.size)
    };
    let (status, start, end) = match ask {
        RangeAsk::Unsatisfiable => {
            let body = json!({
                "success": false, "code": "RANGE_NOT_SATISFIABLE",
                "message": format!("The file has {} bytes", f.size),
            });
            let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, axum::Json(body)).into_response();
            set(&mut r, header::CONTENT_RANGE, &format!("bytes */{}", f.size));
            return r;
        }
        RangeAsk::Whole => (StatusCode::OK, 0, f.size.saturating_sub(1)),
        RangeAsk::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
    };
    let length = if f.size == 0 { 0 } else { end - start + 1 };
    let body = if length == 0 {
        Body::empty()
    } else {
        Body::from_stream(store.read(f.file_id, start, end))
    };
    let mut r = (status, body).into_response();
    set(&mut r, header::CONTENT_TYPE, f.mime);
    set(&mut r, header::CONTENT_LENGTH, &length.to_string());
    set(&mut r, header::ACCEPT_RANGES, "bytes");
    set(&mut r, header::ETAG, &tag);
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            &mut r,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{end}/{}", f.size),
        );
    }
    let disposition = if f.inline {
        "inline".to_owned()
    } else {
        content_disposition(f.filename)
    };
    set(&mut r, header::CONTENT_DISPOSITION, &disposition);
    // Whatever the content, a browser never runs it as a page of this origin.
    set(
        &mut r,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox",
    );
    if let Some(c) = f.cache_control {
        set(&mut r, header::CACHE_CONTROL, c);
    }
    r
}

fn set(r: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}
