//! Hestia's picture routes (SPEC §6, CONTRACTS §3.3): `PATCH /users/profile-picture` (multipart
//! `avatar`, or `profilePictureUrl` as a form field or JSON), `PATCH /users/profile-banner`
//! (`banner` / `profileBannerUrl`), and the files at `/uploads/avatars/*` and
//! `/uploads/banners/*`.
//!
//! The account is authenticated and its upload rate taken before a byte of the body is read;
//! the file streams to disk through [`crate::uploads`], which cuts it off at its cap (413 while
//! it is still arriving) and checks it; the client's file name and declared type are ignored.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde::Deserialize;

use super::{ApiError, Authed, BODY_LIMIT, PublicBase, json_body};
use crate::chat::{Picture, PictureKind};
use crate::server::state::AppState;
use crate::surfaces::accounts::RateLimitedBody;
use crate::surfaces::{ErrorBody, accounts::rate_limited, json_error, read_body};
use crate::uploads::{StoredPicture, UploadError, Uploads};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/profile-picture", patch(profile_picture))
        .route("/users/profile-banner", patch(profile_banner))
        .route("/uploads", get(serve))
        .route("/uploads/", get(serve))
        .route("/uploads/{*path}", get(serve))
}

/// Room for a form's boundaries, part headers and a URL field beside the file.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// A picture URL field read at most this far; the chat service allows 2048 bytes.
const URL_FIELD_MAX: usize = 8 * 1024;

/// How long a refused form's rest is waited for ([`drain`]).
const DRAIN_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Served files never change under their name.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Nothing in a served file may run or load anything, even if a browser were talked into
/// rendering it as a document.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// Where each kind comes from in a request.
struct Fields {
    kind: PictureKind,
    file: &'static str,
    url: &'static str,
    missing: &'static str,
}

const AVATAR: Fields = Fields {
    kind: PictureKind::Avatar,
    file: "avatar",
    url: "profilePictureUrl",
    missing: "profilePictureUrl or avatar file is required",
};

const BANNER: Fields = Fields {
    kind: PictureKind::Banner,
    file: "banner",
    url: "profileBannerUrl",
    missing: "profileBannerUrl or banner file is required",
};

/// Sets the profile picture: an uploaded image (PNG, JPEG, WebP, GIF) or an https URL.
#[utoipa::path(
    patch,
    path = "/users/profile-picture",
    tag = "Hestia",
    request_body(content((AvatarForm = "multipart/form-data"), (AvatarUrl = "application/json"), (AvatarUrl = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The user, the picture URL absolute.", body = crate::chat::User),
        (status = 400, description = "Neither a file nor a URL, not an image, too many pixels, or an invalid URL.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 413, description = "The file is over its cap (the connection closes).", body = ErrorBody),
        (status = 429, description = "Over the account's upload rate.", body = RateLimitedBody, headers(("Retry-After" = u64))),
        (status = 503, description = "Images are being checked at capacity; retry.", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = [])),
)]
async fn profile_picture(
    State(state): State<AppState>,
    Authed(me): Authed,
    base: PublicBase,
    headers: HeaderMap,
    body: Body,
) -> Response {
    change(&state, me, &AVATAR, &base, &headers, body).await
}

/// Sets the profile banner: an uploaded image (PNG, JPEG, WebP, GIF) or an https URL.
#[utoipa::path(
    patch,
    path = "/users/profile-banner",
    tag = "Hestia",
    request_body(content((BannerForm = "multipart/form-data"), (BannerUrl = "application/json"), (BannerUrl = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The user, the picture URL absolute.", body = crate::chat::User),
        (status = 400, description = "Neither a file nor a URL, not an image, too many pixels, or an invalid URL.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 413, description = "The file is over its cap (the connection closes).", body = ErrorBody),
        (status = 429, description = "Over the account's upload rate.", body = RateLimitedBody, headers(("Retry-After" = u64))),
        (status = 503, description = "Images are being checked at capacity; retry.", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = [])),
)]
async fn profile_banner(
    State(state): State<AppState>,
    Authed(me): Authed,
    base: PublicBase,
    headers: HeaderMap,
    body: Body,
) -> Response {
    change(&state, me, &BANNER, &base, &headers, body).await
}

/// What a request asks the picture to become.
enum NewPicture {
    Upload(StoredPicture),
    Url(String),
}

/// A refusal, answered as `{"error": …}`.
struct Refused(StatusCode, String);

impl Refused {
    fn bad(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

impl From<UploadError> for Refused {
    fn from(e: UploadError) -> Self {
        let status = match &e {
            UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::NotAnImage | UploadError::TooManyPixels { .. } | UploadError::Invalid => {
                StatusCode::BAD_REQUEST
            }
            UploadError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            UploadError::Io(io) => {
                tracing::error!(error = %io, "storing an upload");
                return Self(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error".into());
            }
        };
        Self(status, e.to_string())
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let retry = (self.0 == StatusCode::SERVICE_UNAVAILABLE).then_some(1);
        let mut response = json_error(self.0, self.1, retry);
        // The rest of a body that was cut off is never read.
        if self.0 == StatusCode::PAYLOAD_TOO_LARGE {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Takes the account's upload allowance, reads the new picture, sets it, and removes the file it
/// replaced (or, when setting fails, the file just stored).
async fn change(
    state: &AppState,
    me: i64,
    fields: &Fields,
    base: &PublicBase,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if let Err(wait) = state.uploads.admit(me) {
        return rate_limited(wait);
    }
    let new = match read_request(&state.uploads, fields, headers, body).await {
        Ok(new) => new,
        Err(refused) => return refused,
    };
    let stored = match &new {
        NewPicture::Upload(picture) => Some(picture.path()),
        NewPicture::Url(_) => None,
    };
    let picture = match new {
        NewPicture::Upload(p) => Picture::Upload(p.path()),
        NewPicture::Url(url) => Picture::Url(url),
    };
    match state.chat.set_picture(me, fields.kind, Some(picture)).await {
        Ok((user, replaced)) => {
            if let Some(old) = replaced {
                state.uploads.remove(&old).await;
            }
            base.user(user).into_response()
        }
        Err(e) => {
            if let Some(path) = stored {
                state.uploads.remove(&path).await;
            }
            ApiError::from(e).into_response()
        }
    }
}

/// The new picture from a multipart form, a JSON object or a URL-encoded form (the latter two
/// read as the other chat routes' bodies are).
async fn read_request(
    uploads: &Uploads,
    fields: &Fields,
    headers: &HeaderMap,
    body: Body,
) -> Result<NewPicture, Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let url = match essence.as_str() {
        "multipart/form-data" => {
            return read_multipart(uploads, fields, headers, content_type, body)
                .await
                .map_err(IntoResponse::into_response);
        }
        "application/json" => {
            let body: UrlBody = json_body(headers, body, fields.missing).await.map_err(IntoResponse::into_response)?;
            match fields.kind {
                PictureKind::Avatar => body.profile_picture_url,
                PictureKind::Banner => body.profile_banner_url,
            }
        }
        "application/x-www-form-urlencoded" => {
            let bytes = read_body(headers, body, BODY_LIMIT).await.map_err(IntoResponse::into_response)?;
            form_urlencoded::parse(&bytes).find(|(k, _)| k == fields.url).map(|(_, v)| v.into_owned())
        }
        _ => None,
    };
    url.map(NewPicture::Url).ok_or_else(|| Refused::bad(fields.missing).into_response())
}

/// `multipart/form-data` for `PATCH /users/profile-picture`: the file wins over the URL.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the form `read_multipart` streams.
struct AvatarForm {
    /// The image (PNG, JPEG, WebP or GIF; at most `uploads.avatar_max_bytes`).
    #[schema(value_type = Option<String>, format = Binary)]
    avatar: Option<Vec<u8>>,
    /// An https URL instead.
    #[schema(rename = "profilePictureUrl")]
    profile_picture_url: Option<String>,
}

/// `{"profilePictureUrl"}` as JSON or a URL-encoded form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes `UrlBody` for the avatar.
struct AvatarUrl {
    /// An https URL, at most 2048 bytes.
    #[schema(rename = "profilePictureUrl")]
    profile_picture_url: String,
}

/// `multipart/form-data` for `PATCH /users/profile-banner`: the file wins over the URL.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the form `read_multipart` streams.
struct BannerForm {
    /// The image (PNG, JPEG, WebP or GIF; at most `uploads.banner_max_bytes`).
    #[schema(value_type = Option<String>, format = Binary)]
    banner: Option<Vec<u8>>,
    /// An https URL instead.
    #[schema(rename = "profileBannerUrl")]
    profile_banner_url: Option<String>,
}

/// `{"profileBannerUrl"}` as JSON or a URL-encoded form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes `UrlBody` for the banner.
struct BannerUrl {
    /// An https URL, at most 2048 bytes.
    #[schema(rename = "profileBannerUrl")]
    profile_banner_url: String,
}

/// Hestia's JSON form; only the URL of the route's kind is read.
#[derive(Deserialize)]
struct UrlBody {
    #[serde(rename = "profilePictureUrl")]
    profile_picture_url: Option<String>,
    #[serde(rename = "profileBannerUrl")]
    profile_banner_url: Option<String>,
}

/// Streams the form: the file field to [`Uploads`], the URL field into a short string, any other
/// field drained unread. A file stored before a later part fails is removed again.
async fn read_multipart(
    uploads: &Uploads,
    fields: &Fields,
    headers: &HeaderMap,
    content_type: &str,
    body: Body,
) -> Result<NewPicture, Refused> {
    let cap = uploads.max_bytes(fields.kind);
    let limit = cap.saturating_add(FORM_OVERHEAD);
    if crate::surfaces::declared_length(headers).is_some_and(|n| n > limit) {
        return Err(UploadError::TooLarge { limit: cap }.into());
    }
    let boundary = multer::parse_boundary(content_type).map_err(|_| Refused::bad("Malformed multipart body"))?;
    let constraints = multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit));
    let mut form = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut file: Option<StoredPicture> = None;
    let mut url: Option<String> = None;
    let read = async {
        while let Some(mut field) = form.next_field().await.map_err(|e| multipart_refusal(e, cap))? {
            let name = field.name().unwrap_or_default();
            if name == fields.file {
                if file.is_some() {
                    return Err(Refused::bad("Only one file may be sent"));
                }
                let mut incoming = uploads.begin(fields.kind).await?;
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_refusal(e, cap))? {
                    incoming.write(&chunk).await?;
                }
                file = Some(incoming.finish().await?);
            } else if name == fields.url {
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_refusal(e, cap))? {
                    if text.len() + chunk.len() > URL_FIELD_MAX {
                        return Err(Refused::bad(format!("{} must be at most 2048 bytes", fields.url)));
                    }
                    text.extend_from_slice(&chunk);
                }
                url = Some(String::from_utf8(text).map_err(|_| Refused::bad(format!("{} is not text", fields.url)))?);
            } else {
                while field.chunk().await.map_err(|e| multipart_refusal(e, cap))?.is_some() {}
            }
        }
        Ok(())
    }
    .await;
    match (read, file, url) {
        (Err(refused), stored, _) => {
            if let Some(picture) = stored {
                uploads.remove(&picture.path()).await;
            }
            if refused.0 != StatusCode::PAYLOAD_TOO_LARGE {
                drain(&mut form).await;
            }
            Err(refused)
        }
        // As in Hestia, a file wins over a URL.
        (Ok(()), Some(picture), _) => Ok(NewPicture::Upload(picture)),
        (Ok(()), None, Some(url)) => Ok(NewPicture::Url(url)),
        (Ok(()), None, None) => Err(Refused::bad(fields.missing)),
    }
}

/// Reads and discards what is left of a refused form (within its size limit), so that a client
/// still sending it reads the answer instead of a reset connection; stops after [`DRAIN_IDLE`]
/// without data. Nothing of it is kept or decoded.
async fn drain(form: &mut multer::Multipart<'_>) {
    while let Ok(Ok(Some(mut field))) = tokio::time::timeout(DRAIN_IDLE, form.next_field()).await {
        while let Ok(Ok(Some(_))) = tokio::time::timeout(DRAIN_IDLE, field.chunk()).await {}
    }
}

fn multipart_refusal(e: multer::Error, cap: u64) -> Refused {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            UploadError::TooLarge { limit: cap }.into()
        }
        _ => Refused::bad("Malformed multipart body"),
    }
}

/// A picture file: `avatars/<name>` or `banners/<name>`.
#[utoipa::path(
    get,
    path = "/uploads/{path}",
    tag = "Hestia",
    params(("path" = String, Path, description = "`avatars/<name>` or `banners/<name>`, as a user's picture URL names it.")),
    responses(
        (status = 200, description = "The image.", content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/webp"), (Vec<u8> = "image/gif"))),
        (status = 404, description = "No such file.", body = ErrorBody),
    ),
)]
/// `GET /uploads/<kind>/<name>`: only a name the server could have chosen is looked up, taken
/// from the raw path (no percent-decoding, so `%2e%2e` is just not a name); everything else
/// is 404. CORS `*` comes from the chat routes' layer.
async fn serve(State(state): State<AppState>, uri: Uri) -> Response {
    let Some(picture) = StoredPicture::from_path(uri.path()) else { return not_found() };
    match state.uploads.open_stored(&picture).await {
        Ok(Some((file, len))) => {
            let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(picture.image_type.content_type()));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
            headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
            headers.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
            response
        }
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "reading an upload");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error".into(), None)
        }
    }
}

fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "Not found".into(), None)
}
