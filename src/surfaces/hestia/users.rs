//! `/users/*` but pictures, FCM and Web Push: lookups, `me`, account deletion, bio, username,
//! status, public key. Every user answer is the full user object (SPEC §6).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiError, Authed, PublicBase, json_body};
use crate::chat::{Chat, User};
use crate::server::state::AppState;
use crate::surfaces::ErrorBody;

type UserAnswer = Result<Json<User>, ApiError>;

/// A user by username.
#[utoipa::path(
    get,
    path = "/users/by-username/{username}",
    tag = "Hestia",
    params(("username" = String, Path, description = "The username.")),
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 404, description = "User not found.", body = ErrorBody),
    ),
)]
pub async fn by_username(State(state): State<AppState>, base: PublicBase, Path(name): Path<String>) -> UserAnswer {
    Ok(base.user(state.chat.user_by_username(&name).await?))
}

/// A user by id.
#[utoipa::path(
    get,
    path = "/users/by-id/{id}",
    tag = "Hestia",
    params(("id" = String, Path, description = "A user id: a whole number 1..2^53.")),
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 400, description = "Invalid user ID.", body = ErrorBody),
        (status = 404, description = "User not found.", body = ErrorBody),
    ),
)]
pub async fn by_id(State(state): State<AppState>, base: PublicBase, Path(id): Path<String>) -> UserAnswer {
    let id = Chat::id_from_str(&id, "Invalid user ID")?;
    Ok(base.user(state.chat.user(id).await?))
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "Hestia",
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn me(State(state): State<AppState>, Authed(me): Authed, base: PublicBase) -> UserAnswer {
    Ok(base.user(state.chat.user(me).await?))
}

/// 204: the account and its chat data are gone, its tokens stop working, its name is free.
#[utoipa::path(
    delete,
    path = "/users/me",
    tag = "Hestia",
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn delete_me(State(state): State<AppState>, Authed(me): Authed) -> Result<Response, ApiError> {
    let uploads = state.chat.delete_user(me).await?;
    // Its uploaded pictures: nothing names them any more.
    state.uploads.remove_all(&uploads).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
struct BioBody {
    bio: String,
}

/// Sets the bio (up to 500 characters).
#[utoipa::path(
    patch,
    path = "/users/bio",
    tag = "Hestia",
    request_body(content = BioBody),
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 400, description = "Bio must be a string up to 500 characters.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn set_bio(
    State(state): State<AppState>,
    Authed(me): Authed,
    base: PublicBase,
    headers: HeaderMap,
    body: Body,
) -> UserAnswer {
    const WHY: &str = "Bio must be a string up to 500 characters.";
    let b: BioBody = json_body(&headers, body, WHY).await?;
    Ok(base.user(state.chat.set_bio(me, Some(&b.bio)).await?))
}

#[derive(Deserialize, ToSchema)]
struct UsernameBody {
    username: String,
}

/// Changes the username.
#[utoipa::path(
    patch,
    path = "/users/username",
    tag = "Hestia",
    request_body(content = UsernameBody),
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 400, description = "An invalid username.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 409, description = "Username already taken.", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn set_username(
    State(state): State<AppState>,
    Authed(me): Authed,
    base: PublicBase,
    headers: HeaderMap,
    body: Body,
) -> UserAnswer {
    let b: UsernameBody = json_body(&headers, body, "Username is required.").await?;
    Ok(base.user(state.chat.set_username(me, &b.username).await?))
}

#[derive(Deserialize, ToSchema)]
struct StatusBody {
    status: String,
}

/// Sets the status (`active`, `offline` or `do_not_disturb`; `do_not_disturb` stays through connects and gets no push).
#[utoipa::path(
    patch,
    path = "/users/status",
    tag = "Hestia",
    request_body(content = StatusBody),
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 400, description = "Invalid status.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn set_status(
    State(state): State<AppState>,
    Authed(me): Authed,
    base: PublicBase,
    headers: HeaderMap,
    body: Body,
) -> UserAnswer {
    let b: StatusBody = json_body(&headers, body, "Invalid status").await?;
    Ok(base.user(state.chat.set_status(me, &b.status).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PublicKeyBody {
    /// Must be present: `{}` is a mistake, `{"publicKey": null}` clears the key.
    #[serde(default, deserialize_with = "present")]
    public_key: Option<Option<String>>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Sets (or with `null` clears) the end-to-end public key.
#[utoipa::path(
    patch,
    path = "/users/public-key",
    tag = "Hestia",
    request_body(content = PublicKeyBody),
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 400, description = "publicKey must be a string of at most 8 KiB, or null.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn set_public_key(
    State(state): State<AppState>,
    Authed(me): Authed,
    base: PublicBase,
    headers: HeaderMap,
    body: Body,
) -> UserAnswer {
    const WHY: &str = "publicKey must be a string of at most 8 KiB, or null.";
    let b: PublicKeyBody = json_body(&headers, body, WHY).await?;
    let key = b.public_key.ok_or(ApiError::BadRequest(WHY))?;
    Ok(base.user(state.chat.set_public_key(me, key.as_deref()).await?))
}
