//! Hestia's REST surface (SPEC §6, CONTRACTS §3.2–3.3): users, friends and groups at Hestia's
//! paths and shapes, with SPEC's deviations. Thin: parse, authenticate ([`Authed`]), call
//! [`crate::chat::Chat`], encode. Ids in paths are taken as text and parsed by the chat
//! service, so `/users/by-id/1.5` is a 400 in Hestia's format. Every route here (and the
//! accounts routes, wired in `server/router.rs`) gets CORS `*` ([`cors`]).

pub mod auth;
pub mod cors;
pub mod error;
mod friends;
mod groups;
mod push;
pub mod socketio;
mod uploads;
mod users;

use axum::Router;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::routing::{get, patch, post};
use serde::de::DeserializeOwned;

pub use auth::Authed;
pub use error::ApiError;

use crate::chat::User;
use crate::server::state::AppState;
use crate::surfaces::read_body;

/// The largest body a chat route reads: a public key of 8 KiB or a message of 2048 characters,
/// JSON-escaped.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The chat routes; uploads and push registration add theirs here.
pub fn routes() -> Router<AppState> {
    let routes = Router::new()
        .route("/users/by-username/{username}", get(users::by_username))
        .route("/users/by-id/{id}", get(users::by_id))
        .route("/users/me", get(users::me).delete(users::delete_me))
        .route("/users/bio", patch(users::set_bio))
        .route("/users/username", patch(users::set_username))
        .route("/users/status", patch(users::set_status))
        .route("/users/public-key", patch(users::set_public_key))
        .route("/users/fcm-token", patch(push::fcm_token))
        .route("/users/web-push", patch(push::web_push))
        .route("/users/web-push/vapid-public-key", get(push::vapid_public_key))
        .route("/friends", get(friends::list))
        .route("/friends/requests", get(friends::requests))
        .route("/friends/request/{id}", post(friends::request))
        .route("/friends/accept/{id}", post(friends::accept))
        .route("/friends/decline/{id}", post(friends::decline))
        .route("/friends/{id}", axum::routing::delete(friends::remove))
        .route("/groups", post(groups::create).get(groups::list))
        .route("/groups/{id}", get(groups::detail).put(groups::update))
        .route("/groups/{id}/members/{user_id}", post(groups::add_member).delete(groups::remove_member))
        .route("/groups/{id}/messages", post(groups::post_message).get(groups::history))
        .merge(uploads::routes());
    cors::with_cors(routes)
}

/// This surface's part of the OpenAPI document (the accounts routes are `accounts::openapi`'s).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        users::by_username,
        users::by_id,
        users::me,
        users::delete_me,
        users::set_bio,
        users::set_username,
        users::set_status,
        users::set_public_key,
        friends::list,
        friends::requests,
        friends::request,
        friends::accept,
        friends::decline,
        friends::remove,
        groups::create,
        groups::list,
        groups::detail,
        groups::update,
        groups::add_member,
        groups::remove_member,
        groups::post_message,
        groups::history,
        push::fcm_token,
        push::web_push,
        push::vapid_public_key,
        uploads::profile_picture,
        uploads::profile_banner,
        uploads::serve,
    ))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    // The file route answers 404 for every path under `/uploads` that names no file.
    crate::surfaces::docs::alias(&mut doc, "/uploads/{path}", &["/uploads", "/uploads/"]);
    doc
}

/// `{"success": true}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the `{"success":true}` answers.
struct Success {
    success: bool,
}

/// Reads a JSON body (at most [`BODY_LIMIT`]) into `T`; an empty body reads as `{}`. Anything
/// that is valid JSON but does not fit `T` is 400 `why`.
pub(crate) async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    why: &'static str,
) -> Result<T, ApiError> {
    let bytes = read_body(headers, body, BODY_LIMIT).await?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
    serde_json::from_slice(bytes).map_err(|e| {
        // Broken JSON (a lone surrogate `"\ud800"` included) is told apart from a wrong field.
        if e.is_data() { ApiError::BadRequest(why) } else { ApiError::BadRequest("Request body must be valid JSON.") }
    })
}

/// The base that stored upload paths (`/uploads/…`) are made absolute with:
/// `chat.public_url`, else the request's scheme and `Host` (the scheme from
/// `X-Forwarded-Proto` only when a trusted proxy sent the request).
pub(crate) fn public_base(state: &AppState, parts: &Parts) -> String {
    if let Some(url) = &state.config.chat.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let proxied = parts.extensions.get::<crate::server::forwarded::FromTrustedProxy>().is_some();
    let proto = proxied
        .then(|| parts.headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()))
        .flatten()
        .and_then(|p| p.split(',').next())
        .map(str::trim)
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)))
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    format!("{proto}://{host}")
}

/// The base URL for pictures, as an extractor ([`public_base`]).
pub struct PublicBase(pub String);

impl axum::extract::FromRequestParts<AppState> for PublicBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(public_base(state, parts)))
    }
}

impl PublicBase {
    /// `user` as answered: its uploads' paths absolute.
    pub fn user(&self, user: User) -> axum::Json<User> {
        axum::Json(absolute(user, &self.0))
    }
}

/// `user` with its uploaded pictures' paths made absolute (URLs a client gave stay as they are).
pub(crate) fn absolute(mut user: User, base: &str) -> User {
    for url in [&mut user.profile_picture_url, &mut user.profile_banner_url].into_iter().flatten() {
        if url.starts_with('/') {
            *url = format!("{base}{url}");
        }
    }
    user
}
