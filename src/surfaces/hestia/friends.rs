//! `/friends/*` (SPEC §6): requests keyed by the other user's id, `{success:true}` answers,
//! and the lists as `[{id, username}]`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{ApiError, Authed};
use crate::chat::{Chat, UserRef};
use crate::server::state::AppState;

type Success = Result<Json<Value>, ApiError>;

fn success() -> Json<Value> {
    Json(json!({ "success": true }))
}

pub async fn list(State(state): State<AppState>, Authed(me): Authed) -> Result<Json<Vec<UserRef>>, ApiError> {
    Ok(Json(state.chat.friends(me).await?))
}

pub async fn requests(State(state): State<AppState>, Authed(me): Authed) -> Result<Json<Vec<UserRef>>, ApiError> {
    Ok(Json(state.chat.friend_requests(me).await?))
}

pub async fn request(State(state): State<AppState>, Authed(me): Authed, Path(id): Path<String>) -> Success {
    let to = Chat::id_from_str(&id, "Invalid user ID")?;
    state.chat.request_friend(me, to).await?;
    Ok(success())
}

pub async fn accept(State(state): State<AppState>, Authed(me): Authed, Path(id): Path<String>) -> Success {
    let sender = Chat::id_from_str(&id, "Invalid user ID")?;
    state.chat.accept_friend(me, sender).await?;
    Ok(success())
}

pub async fn decline(State(state): State<AppState>, Authed(me): Authed, Path(id): Path<String>) -> Success {
    let sender = Chat::id_from_str(&id, "Invalid user ID")?;
    state.chat.decline_friend(me, sender).await?;
    Ok(success())
}

pub async fn remove(State(state): State<AppState>, Authed(me): Authed, Path(id): Path<String>) -> Success {
    let other = Chat::id_from_str(&id, "Invalid user ID")?;
    state.chat.remove_friend(me, other).await?;
    Ok(success())
}
