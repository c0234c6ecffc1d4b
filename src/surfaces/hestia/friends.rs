//! `/friends/*` (SPEC §6): requests keyed by the other user's id, `{success:true}` answers,
//! and the lists as `[{id, username}]`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{ApiError, Authed};
use crate::chat::{Chat, UserRef};
use crate::server::state::AppState;
use crate::surfaces::ErrorBody;

type Success = Result<Json<Value>, ApiError>;

fn success() -> Json<Value> {
    Json(json!({ "success": true }))
}

/// The signed-in user's friends.
#[utoipa::path(
    get,
    path = "/friends",
    tag = "Hestia",
    responses(
        (status = 200, description = "The friends.", body = [UserRef]),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, Authed(me): Authed) -> Result<Json<Vec<UserRef>>, ApiError> {
    Ok(Json(state.chat.friends(me).await?))
}

/// Friend requests the signed-in user has received.
#[utoipa::path(
    get,
    path = "/friends/requests",
    tag = "Hestia",
    responses(
        (status = 200, description = "The senders.", body = [UserRef]),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn requests(State(state): State<AppState>, Authed(me): Authed) -> Result<Json<Vec<UserRef>>, ApiError> {
    Ok(Json(state.chat.friend_requests(me).await?))
}

/// Sends a friend request.
#[utoipa::path(
    post,
    path = "/friends/request/{id}",
    tag = "Hestia",
    params(("id" = String, Path, description = "A user id: a whole number 1..2^53.")),
    responses(
        (status = 200, description = "Sent.", body = super::Success),
        (status = 400, description = "An invalid user id, or a request to oneself.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "User not found.", body = ErrorBody),
        (status = 409, description = "Already friends, or a request is pending.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn request(State(state): State<AppState>, Authed(me): Authed, Path(id): Path<String>) -> Success {
    let to = Chat::id_from_str(&id, "Invalid user ID")?;
    state.chat.request_friend(me, to).await?;
    Ok(success())
}

/// Accepts a friend request from a user.
#[utoipa::path(
    post,
    path = "/friends/accept/{id}",
    tag = "Hestia",
    params(("id" = String, Path, description = "A user id: a whole number 1..2^53.")),
    responses(
        (status = 200, description = "Accepted.", body = super::Success),
        (status = 400, description = "Invalid user ID.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "No such request.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn accept(State(state): State<AppState>, Authed(me): Authed, Path(id): Path<String>) -> Success {
    let sender = Chat::id_from_str(&id, "Invalid user ID")?;
    state.chat.accept_friend(me, sender).await?;
    Ok(success())
}

/// Declines a friend request from a user.
#[utoipa::path(
    post,
    path = "/friends/decline/{id}",
    tag = "Hestia",
    params(("id" = String, Path, description = "A user id: a whole number 1..2^53.")),
    responses(
        (status = 200, description = "Declined.", body = super::Success),
        (status = 400, description = "Invalid user ID.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "No such request.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn decline(State(state): State<AppState>, Authed(me): Authed, Path(id): Path<String>) -> Success {
    let sender = Chat::id_from_str(&id, "Invalid user ID")?;
    state.chat.decline_friend(me, sender).await?;
    Ok(success())
}

/// Ends a friendship.
#[utoipa::path(
    delete,
    path = "/friends/{id}",
    tag = "Hestia",
    params(("id" = String, Path, description = "A user id: a whole number 1..2^53.")),
    responses(
        (status = 200, description = "Removed.", body = super::Success),
        (status = 400, description = "Invalid user ID.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "Not friends.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn remove(State(state): State<AppState>, Authed(me): Authed, Path(id): Path<String>) -> Success {
    let other = Chat::id_from_str(&id, "Invalid user ID")?;
    state.chat.remove_friend(me, other).await?;
    Ok(success())
}
