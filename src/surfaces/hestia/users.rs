//! `/users/*` but pictures, FCM and Web Push: lookups, `me`, account deletion, bio, username,
//! status, public key. Every user answer is the full user object (SPEC §6).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, Authed, PublicBase, json_body};
use crate::chat::{Chat, User};
use crate::server::state::AppState;

type UserAnswer = Result<Json<User>, ApiError>;

pub async fn by_username(State(state): State<AppState>, base: PublicBase, Path(name): Path<String>) -> UserAnswer {
    Ok(base.user(state.chat.user_by_username(&name).await?))
}

pub async fn by_id(State(state): State<AppState>, base: PublicBase, Path(id): Path<String>) -> UserAnswer {
    let id = Chat::id_from_str(&id, "Invalid user ID")?;
    Ok(base.user(state.chat.user(id).await?))
}

pub async fn me(State(state): State<AppState>, Authed(me): Authed, base: PublicBase) -> UserAnswer {
    Ok(base.user(state.chat.user(me).await?))
}

/// 204: the account and its chat data are gone, its tokens stop working, its name is free.
pub async fn delete_me(State(state): State<AppState>, Authed(me): Authed) -> Result<Response, ApiError> {
    let uploads = state.chat.delete_user(me).await?;
    // Its uploaded pictures: nothing names them any more.
    state.uploads.remove_all(&uploads).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct BioBody {
    bio: String,
}

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

#[derive(Deserialize)]
struct UsernameBody {
    username: String,
}

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

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

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

#[derive(Deserialize)]
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
