//! Avatar and banner uploads (images only, `documents.max_image_bytes`) on the same GridFS
//! storage as documents, and their public route `/api/media/:id` (cacheable: an id never
//! names other bytes).

use std::time::Duration;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use futures_util::future::BoxFuture;
use mongodb::bson::{oid::ObjectId, DateTime};
use serde_json::json;

use super::media_store::{Media, MediaKind, MediaState, MediaStore};
use crate::app::AppState;
use crate::auth::extract::{parse_id, AuthUser, Therapist};
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, ProfileChanged};
use crate::files::serve::{respond, Served};
use crate::files::sniff::{self, Kind};
use crate::files::upload::{self, check_length, multipart, Cleanup, Destination, Rules};
use crate::files::FileStore;
use crate::http::envelope;

/// Room for the form around the image.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// Routes of avatars and banners.
pub fn routes(state: &AppState) -> Router<AppState> {
    let limit = DefaultBodyLimit::max((state.config.documents.max_image_bytes + FORM_OVERHEAD) as usize);
    Router::new()
        .route(
            "/api/profile/avatar",
            post(upload_avatar).delete(remove_avatar).layer(limit),
        )
        .route(
            "/api/profile/banner",
            post(upload_banner).delete(remove_banner).layer(limit),
        )
        .route("/api/media/{id}", get(serve))
}

/// The public link of image `id`.
fn link(state: &AppState, id: ObjectId) -> String {
    format!(
        "{}/api/media/{}",
        state.config.documents.media_base_url.trim_end_matches('/'),
        id.to_hex()
    )
}

struct PendingImage {
    store: MediaStore,
    files: FileStore,
    owner: ObjectId,
    kind: MediaKind,
    margin: Duration,
}

impl Destination for PendingImage {
    fn begin<'a>(
        &'a mut self,
        kind: &'a Kind,
        _filename: &'a str,
    ) -> BoxFuture<'a, ApiResult<(ObjectId, Cleanup)>> {
        Box::pin(async move {
            let now = DateTime::now();
            let record = Media {
                id: ObjectId::new(),
                owner_id: self.owner,
                kind: self.kind,
                state: MediaState::Uploading,
                mime_type: kind.mime.to_owned(),
                size: 0,
                sha256: String::new(),
                created_at: now,
                purge_after: Some(DateTime::from_millis(
                    now.timestamp_millis() + self.margin.as_millis() as i64,
                )),
            };
            self.store.insert_pending(&record).await?;
            let (store, files, id) = (self.store.clone(), self.files.clone(), record.id);
            let cleanup: Cleanup = Box::new(move || Box::pin(async move { store.abandon(&files, id).await }));
            Ok((id, cleanup))
        })
    }
}

/// Receives an image of `kind` for `owner` and makes it current; its public link.
async fn replace(
    state: &AppState,
    owner: ObjectId,
    kind: MediaKind,
    headers: &HeaderMap,
    form: Multipart,
) -> ApiResult<String> {
    let max = state.config.documents.max_image_bytes;
    check_length(headers, max + FORM_OVERHEAD)?;
    if kind == MediaKind::Banner {
        super::load_or_create(state, owner).await?;
    }
    let (store, files) = (MediaStore::new(&state.db), FileStore::new(&state.db));
    let rules = Rules {
        file_fields: &["file", "avatar", "banner", "image"],
        max_bytes: max,
        sniff: sniff::sniff_image,
    };
    let margin =
        Duration::from_secs_f64(state.config.http.timeouts.upload_seconds) + Duration::from_secs(600);
    let mut dest = PendingImage {
        store: store.clone(),
        files,
        owner,
        kind,
        margin,
    };
    let received = upload::receive(form, &rules, &FileStore::new(&state.db), &mut dest).await?;
    let url = link(state, received.file.file_id);
    let (id, size, sha) = (
        received.file.file_id,
        received.file.bytes as i64,
        received.file.sha256.clone(),
    );
    let state2 = state.clone();
    let url2 = url.clone();
    let finish = tokio::spawn(async move {
        let pending = received.file.close().await?;
        match store
            .make_current(owner, kind, Some((id, size, sha)), Some(url2))
            .await
        {
            Ok(()) => pending.keep(),
            Err(e) => {
                drop(pending);
                return Err(e);
            }
        }
        state2
            .events
            .emit(Event::Profile(ProfileChanged { therapist: owner }))
            .await;
        Ok::<_, ApiError>(())
    });
    finish
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("upload task failed: {e}")))??;
    Ok(url)
}

async fn clear(state: &AppState, owner: ObjectId, kind: MediaKind) -> ApiResult<()> {
    if kind == MediaKind::Banner {
        super::load_or_create(state, owner).await?;
    }
    MediaStore::new(&state.db)
        .make_current(owner, kind, None, None)
        .await?;
    state
        .events
        .emit(Event::Profile(ProfileChanged { therapist: owner }))
        .await;
    Ok(())
}

/// Sets the caller's avatar (multipart field `file`; png, jpeg, gif, webp...).
#[utoipa::path(post, path = "/api/profile/avatar", tag = "profile",
    security(("therapist" = []), ("client" = [])),
    request_body(content = crate::files::docs::ImageForm, content_type = "multipart/form-data"),
    responses((status = 200, body = crate::http::docs::Data<super::docs::AvatarLink>),
        (status = 413, description = "`FILE_TOO_LARGE`"), (status = 415, description = "Not an image")))]
pub async fn upload_avatar(
    State(state): State<AppState>,
    me: AuthUser,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let url = replace(&state, me.id, MediaKind::Avatar, &headers, multipart(form)?).await?;
    Ok(envelope::ok(json!({ "avatar": url, "url": url })))
}

/// Removes the caller's avatar.
#[utoipa::path(delete, path = "/api/profile/avatar", tag = "profile",
    security(("therapist" = []), ("client" = [])),
    responses((status = 200, body = crate::http::docs::Data<super::docs::AvatarLink>)))]
pub async fn remove_avatar(State(state): State<AppState>, me: AuthUser) -> ApiResult<Response> {
    clear(&state, me.id, MediaKind::Avatar).await?;
    Ok(envelope::ok(json!({ "avatar": null })))
}

/// Sets the therapist's profile banner (multipart field `file`; images only).
#[utoipa::path(post, path = "/api/profile/banner", tag = "profile",
    security(("therapist" = [])),
    request_body(content = crate::files::docs::ImageForm, content_type = "multipart/form-data"),
    responses((status = 200, body = crate::http::docs::Data<super::docs::BannerLink>),
        (status = 413, description = "`FILE_TOO_LARGE`"), (status = 415, description = "Not an image")))]
pub async fn upload_banner(
    State(state): State<AppState>,
    me: Therapist,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let url = replace(&state, me.0.id, MediaKind::Banner, &headers, multipart(form)?).await?;
    Ok(envelope::ok(json!({ "banner": url, "url": url })))
}

/// Removes the therapist's profile banner.
#[utoipa::path(delete, path = "/api/profile/banner", tag = "profile",
    security(("therapist" = [])),
    responses((status = 200, body = crate::http::docs::Data<super::docs::BannerLink>)))]
pub async fn remove_banner(State(state): State<AppState>, me: Therapist) -> ApiResult<Response> {
    clear(&state, me.0.id, MediaKind::Banner).await?;
    Ok(envelope::ok(json!({ "banner": null })))
}

/// An avatar or banner, public and cacheable for a year (`ETag`, `Range` supported).
#[utoipa::path(get, path = "/api/media/{id}", tag = "profile",
    security(()), params(crate::http::docs::IdPath, crate::files::docs::DownloadHeaders),
    responses(crate::files::docs::FileAnswers))]
pub async fn serve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_id(&id, "id")?;
    let m = MediaStore::new(&state.db)
        .servable(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Image"))?;
    let served = Served {
        file_id: m.id,
        size: m.size.max(0) as u64,
        sha256: &m.sha256,
        mime: &m.mime_type,
        filename: "image",
        cache_control: Some("public, max-age=31536000, immutable"),
        inline: true,
    };
    Ok(respond(&FileStore::new(&state.db), &served, &headers))
}
