//! `/groups/*` (SPEC §6): create (201), list, detail, update, members (add 201, remove), and
//! messages (post 201 as `newMessage`, history with `before` and `limit`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{ApiError, Authed, json_body};
use crate::chat::{Chat, Group, GroupChanges, GroupDetail, GroupListItem, Message, NewGroup, Page, Role, Via};
use crate::server::state::AppState;
use crate::surfaces::ErrorBody;
use crate::surfaces::accounts::RateLimitedBody;

const BAD_GROUP: &str = "Invalid input: name (1-100 characters), description (up to 500) and isPrivate (boolean).";

fn group_id(raw: &str) -> Result<i64, ApiError> {
    Ok(Chat::id_from_str(raw, "Invalid group ID")?)
}

/// Creates a group; the creator is its admin.
#[utoipa::path(
    post,
    path = "/groups",
    tag = "Hestia",
    request_body(content = NewGroup),
    responses(
        (status = 201, description = "Created.", body = Group),
        (status = 400, description = "Invalid input.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Authed(me): Authed,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let new: NewGroup = json_body(&headers, body, BAD_GROUP).await?;
    let group = state.chat.create_group(me, new).await?;
    Ok((StatusCode::CREATED, Json(group)).into_response())
}

/// The signed-in user's groups.
#[utoipa::path(
    get,
    path = "/groups",
    tag = "Hestia",
    responses(
        (status = 200, description = "The groups.", body = [GroupListItem]),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, Authed(me): Authed) -> Result<Json<Vec<GroupListItem>>, ApiError> {
    Ok(Json(state.chat.groups(me).await?))
}

/// A group with its members (members only).
#[utoipa::path(
    get,
    path = "/groups/{id}",
    tag = "Hestia",
    params(("id" = String, Path, description = "A group id: a whole number 1..2^53.")),
    responses(
        (status = 200, description = "The group.", body = GroupDetail),
        (status = 400, description = "Invalid group ID.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "Group not found.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn detail(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> Result<Json<GroupDetail>, ApiError> {
    Ok(Json(state.chat.group(me, group_id(&id)?).await?))
}

/// Changes a group (admins only).
#[utoipa::path(
    put,
    path = "/groups/{id}",
    tag = "Hestia",
    params(("id" = String, Path, description = "A group id: a whole number 1..2^53.")),
    request_body(content = GroupChanges),
    responses(
        (status = 200, description = "The group.", body = Group),
        (status = 400, description = "Invalid input.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "Group not found.", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Group>, ApiError> {
    let id = group_id(&id)?;
    let changes: GroupChanges = json_body(&headers, body, BAD_GROUP).await?;
    Ok(Json(state.chat.update_group(me, id, changes).await?))
}

/// `{"message": "User removed from group"}`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `remove_member` answers.
struct MemberRemoved {
    message: String,
}

#[derive(Deserialize, ToSchema)]
struct AddMemberBody {
    role: Option<Role>,
}

/// Adds a user to a group (admins only).
#[utoipa::path(
    post,
    path = "/groups/{id}/members/{user_id}",
    tag = "Hestia",
    params(("id" = String, Path, description = "A group id: a whole number 1..2^53."), ("user_id" = String, Path, description = "A user id.")),
    request_body(content = AddMemberBody),
    responses(
        (status = 201, description = "Added.", body = crate::chat::Member),
        (status = 400, description = "An invalid id or role.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "Group or user not found.", body = ErrorBody),
        (status = 409, description = "Already a member.", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn add_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path((id, user)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = group_id(&id)?;
    let user = Chat::id_from_str(&user, "Invalid user ID")?;
    let b: AddMemberBody = json_body(&headers, body, "role must be \"ADMIN\" or \"MEMBER\".").await?;
    let member = state.chat.add_member(me, id, user, b.role).await?;
    Ok((StatusCode::CREATED, Json(member)).into_response())
}

/// Removes a member (admins, or the member themself).
#[utoipa::path(
    delete,
    path = "/groups/{id}/members/{user_id}",
    tag = "Hestia",
    params(("id" = String, Path, description = "A group id: a whole number 1..2^53."), ("user_id" = String, Path, description = "A user id.")),
    responses(
        (status = 200, description = "Removed.", body = MemberRemoved),
        (status = 400, description = "An invalid id.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "Group or member not found.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn remove_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path((id, user)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = group_id(&id)?;
    let user = Chat::id_from_str(&user, "Invalid user ID")?;
    state.chat.remove_member(me, id, user).await?;
    Ok(Json(json!({ "message": "User removed from group" })))
}

#[derive(Deserialize, ToSchema)]
struct MessageBody {
    content: String,
}

/// Posts a message to a group (members only); sockets get `newMessage`.
#[utoipa::path(
    post,
    path = "/groups/{id}/messages",
    tag = "Hestia",
    params(("id" = String, Path, description = "A group id: a whole number 1..2^53.")),
    request_body(content = MessageBody),
    responses(
        (status = 201, description = "Stored and delivered.", body = Message),
        (status = 400, description = "Content is required (1–2048 characters).", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "Group not found.", body = ErrorBody),
        (status = 429, description = "Over the account's message rate.", body = RateLimitedBody, headers(("Retry-After" = u64))),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn post_message(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = group_id(&id)?;
    let b: MessageBody = json_body(&headers, body, "Content is required").await?;
    let message = state.chat.send_group_message(me, id, &b.content, Via::Rest).await?;
    Ok((StatusCode::CREATED, Json(message)).into_response())
}

/// A group's messages, newest first (members only).
#[utoipa::path(
    get,
    path = "/groups/{id}/messages",
    tag = "Hestia",
    params(("id" = String, Path, description = "A group id: a whole number 1..2^53."), ("before" = Option<String>, Query, description = "Only messages older than this message id."), ("limit" = Option<u32>, Query, description = "1–1000 (more reads as 1000); default 1000.")),
    responses(
        (status = 200, description = "The messages.", body = [Message]),
        (status = 400, description = "An invalid id, before or limit.", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 404, description = "Group not found.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn history(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Message>>, ApiError> {
    let id = group_id(&id)?;
    let page = page(query.as_deref().unwrap_or_default())?;
    Ok(Json(state.chat.group_history(me, id, page).await?))
}

/// `before` (a message id) and `limit` (1–1000; more is read as 1000) from a query string.
fn page(query: &str) -> Result<Page, ApiError> {
    let mut page = Page::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "before" => page.before = Some(Chat::id_from_str(&value, "Invalid before")?),
            "limit" => {
                let n = (!value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| value.parse::<u64>().ok())
                    .flatten()
                    .filter(|n| *n >= 1)
                    .ok_or(ApiError::BadRequest("Invalid limit"))?;
                page.limit = Some(u32::try_from(n).unwrap_or(u32::MAX));
            }
            _ => {}
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages() {
        let p = super::page("before=10&limit=5").unwrap();
        assert_eq!((p.before, p.limit), (Some(10), Some(5)));
        let p = super::page("limit=99999").unwrap();
        assert_eq!(p.limit, Some(99999), "the service caps it");
        for bad in ["limit=0", "limit=-1", "limit=1.5", "limit=x", "before=1.5", "before=-2", "before=abc"] {
            assert!(super::page(bad).is_err(), "{bad}");
        }
    }
}
