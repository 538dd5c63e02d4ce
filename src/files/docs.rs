//! OpenAPI pieces of file transfers: the download answers and headers, the image form.

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses, ToSchema};

/// Headers a download honours.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct DownloadHeaders {
    /// One byte range (`bytes=0-99`, `bytes=100-`, `bytes=-500`); others get the whole file.
    #[param(rename = "Range")]
    range: Option<String>,
    /// The ETag of a copy already held: 304 when it is current.
    #[param(rename = "If-None-Match")]
    if_none_match: Option<String>,
    /// Serve the range only if the file still has this ETag (else the whole file).
    #[param(rename = "If-Range")]
    if_range: Option<String>,
}

/// The answers of a download: the file (any type), a part of it, not modified, or a range
/// past its end.
pub struct FileAnswers;

impl IntoResponses for FileAnswers {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let binary = || {
            ContentBuilder::new()
                .schema(Some(crate::http::docs::string().format(Some(
                    utoipa::openapi::schema::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Binary),
                ))))
                .build()
        };
        let file = ResponseBuilder::new()
            .description("The file, streamed, its type as stored (`ETag`: its SHA-256)")
            .content("*/*", binary())
            .build();
        let part = ResponseBuilder::new()
            .description("The requested range (`Content-Range`)")
            .content("*/*", binary())
            .build();
        let unchanged = ResponseBuilder::new()
            .description("`If-None-Match` matched: the copy held is current")
            .build();
        let past_end = ResponseBuilder::new()
            .description(
                "`RANGE_NOT_SATISFIABLE`: the range starts past the end (`Content-Range: bytes */size`)",
            )
            .build();
        [
            ("200", file),
            ("206", part),
            ("304", unchanged),
            ("416", past_end),
        ]
        .into_iter()
        .map(|(s, r)| (s.to_owned(), r.into()))
        .collect()
    }
}

/// The image form of avatars and banners (`multipart/form-data`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImageForm {
    /// The image (png, jpeg, gif, webp...; at most `documents.max_image_bytes`).
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}
