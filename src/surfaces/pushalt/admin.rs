//! `/api/admin/*` (admins only): the accounts an admin manages, which are Switchboard accounts
//! (Push-Alt's root is an admin, its other users are accounts that are not): add, update,
//! restore (reactivate), view one, list those that are not admins.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::Admin;
use super::input::{self, Id, IdPath, json};
use super::schema::*;
use super::{ApiError, limit, ok, user_json};
use crate::accounts::{AccountChanges, Registration};
use crate::server::state::AppState;

/// Most accounts one page or one restore may name.
const MAX_TAKE: i64 = 100;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AccountAdd)]
pub struct AddBody {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

/// `{name, email, password}` → a new, active account that is not an admin.
#[utoipa::path(
    post,
    path = "/api/admin/add",
    tag = "Push-Alt",
    request_body(content = AddBody),
    responses(
        (status = 200, description = "Created.", body = PushAltAccountAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 409, description = "Taken already.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
        (status = 503, description = "Password checks are saturated, or the broker is down; retry.", body = PushAltFailure, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = [])),
)]
pub async fn add(
    State(state): State<AppState>,
    Admin(_): Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: AddBody = json(&headers, body, limit::SMALL).await?;
    let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let (Some(name), Some(email), Some(password)) = (given(b.name), given(b.email), given(b.password)) else {
        return Err(ApiError::bad("Name, email, and password are required"));
    };
    let reg = Registration { name: Some(name), username: None, email: Some(email), password: Some(password) };
    let account = state.accounts.create_user(reg).await?;
    Ok(ok(json!({ "data": user_json(&account), "message": "User added successfully" })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AccountUpdate)]
pub struct UpdateBody {
    id: Option<Id>,
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    status: Option<String>,
}

/// `{id, name, email, password?, status?}`. An admin cannot deactivate their own account (no
/// one could sign in to undo it if they were the last).
#[utoipa::path(
    put,
    path = "/api/admin/update",
    tag = "Push-Alt",
    request_body(content = UpdateBody),
    responses(
        (status = 200, description = "The account as changed.", body = PushAltAccountAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
        (status = 409, description = "Taken already.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
        (status = 503, description = "Password checks are saturated, or the broker is down; retry.", body = PushAltFailure, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: UpdateBody = json(&headers, body, limit::SMALL).await?;
    let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let (Some(Id(id)), Some(name), Some(email)) = (b.id, given(b.name), given(b.email)) else {
        return Err(ApiError::bad("ID, name, and email are required"));
    };
    let active = match b.status.as_deref() {
        None => None,
        Some("active") => Some(true),
        Some("deactivated") => Some(false),
        Some(_) => return Err(ApiError::bad("status must be active or deactivated")),
    };
    if active == Some(false) && id == caller.id {
        return Err(ApiError::bad("You cannot deactivate your own account"));
    }
    let changes = AccountChanges { name: Some(name), email: Some(email), password: b.password, active };
    let account = state.accounts.update(id, changes).await?;
    Ok(ok(json!({ "data": user_json(&account), "message": "User updated successfully" })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AccountRestore)]
pub struct RestoreBody {
    id: Option<Id>,
    ids: Option<Vec<Id>>,
}

/// `{id}` (Push-Alt's API) or `{ids: […]}` (what its web app sent): reactivates the accounts.
#[utoipa::path(
    post,
    path = "/api/admin/restore",
    tag = "Push-Alt",
    request_body(content = RestoreBody),
    responses(
        (status = 200, description = "Restored: the account, or a list of them.", body = RestoredAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn restore(
    State(state): State<AppState>,
    Admin(_): Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: RestoreBody = json(&headers, body, limit::SMALL).await?;
    let activate = AccountChanges { active: Some(true), ..Default::default() };
    if let Some(Id(id)) = b.id {
        let account = state.accounts.update(id, activate).await?;
        return Ok(ok(json!({ "data": user_json(&account), "message": "User restored successfully" })));
    }
    let ids = b.ids.filter(|ids| !ids.is_empty() && ids.len() <= MAX_TAKE as usize);
    let Some(ids) = ids else {
        return Err(ApiError::bad("User ID is required"));
    };
    let mut restored = Vec::with_capacity(ids.len());
    for Id(id) in ids {
        restored.push(user_json(&state.accounts.update(id, activate.clone()).await?));
    }
    Ok(ok(json!({ "data": restored, "message": "User restored successfully" })))
}

/// One account (admin).
#[utoipa::path(
    get,
    path = "/api/admin/{id}/view",
    tag = "Push-Alt",
    params(("id" = i64, Path, description = "The account's id.")),
    responses(
        (status = 200, description = "The account.", body = PushAltAccountAnswer),
        (status = 400, description = "An invalid id.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn view(State(state): State<AppState>, Admin(_): Admin, IdPath(id): IdPath) -> Result<Json<Value>, ApiError> {
    let account = state.accounts.get(id).await?;
    Ok(ok(json!({ "data": user_json(&account) })))
}

/// `GET /api/admin/admins?take=&skip=`: the accounts that are not admins, in id order.
#[utoipa::path(
    get,
    path = "/api/admin/admins",
    tag = "Push-Alt",
    params(("take" = Option<u32>, Query, description = "1–100; default 10."), ("skip" = Option<u32>, Query, description = "Default 0.")),
    responses(
        (status = 200, description = "The accounts.", body = PushAltAccounts),
        (status = 400, description = "Invalid pagination parameters.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, Admin(_): Admin, uri: Uri) -> Result<Json<Value>, ApiError> {
    let take = input::query_number(uri.query(), "take", 10, 1..=MAX_TAKE)?;
    let skip = input::query_number(uri.query(), "skip", 0, 0..=1_000_000_000)?;
    let accounts = state.accounts.users_page(take, skip).await?;
    let data: Vec<Value> = accounts.iter().map(user_json).collect();
    Ok(ok(json!({ "data": data })))
}
