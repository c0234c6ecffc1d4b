//! `/api/workspaces`: Push-Alt's workspaces are apps (SPEC §1): `id` = the app's number, `app_id`
//! = its id, `app_key` = its secret (chosen by the client; a PUT with one replaces it), `status`
//! = enabled. Answers carry the public `key` (for Pusher and Notif clients) and never a secret.
//! Admins see every workspace, other accounts the ones they created.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::User;
use super::error::text;
use super::input::{self, Id, IdPath, Text, json};
use super::schema::*;
use super::{ApiError, limit, ok};
use crate::accounts::Account;
use crate::apps::{self, App, CreateApp, UpdateApp};
use crate::server::state::AppState;

/// Most ids one delete may name.
const MAX_IDS: usize = 100;

fn json_of(a: &App) -> Value {
    json!({
        "id": a.number,
        "name": a.name,
        "app_id": &*a.id,
        "key": &*a.key,
        "description": a.description,
        "status": status(a.enabled),
        "created_at": input::iso_time(a.created_at),
        "updated_at": input::iso_time(a.updated_at),
    })
}

fn status(enabled: bool) -> &'static str {
    if enabled { "active" } else { "deactivated" }
}

/// `active` or `deactivated` as enabled.
fn enabled(status: &str) -> Result<bool, ApiError> {
    match status {
        "active" => Ok(true),
        "deactivated" => Ok(false),
        _ => Err(ApiError::bad("status must be active or deactivated")),
    }
}

fn can_manage(caller: &Account, app: &App) -> bool {
    caller.is_admin || app.owner_id == Some(caller.id)
}

/// The workspace with this number, if the caller may see it (others are "not found" too).
fn find(state: &AppState, caller: &Account, number: i64) -> Result<Arc<App>, ApiError> {
    state
        .apps
        .by_number(number)
        .filter(|a| can_manage(caller, a))
        .ok_or_else(|| ApiError::not_found(text::WORKSPACE_NOT_FOUND))
}

/// Brings this node's app cache up to a change just made (so it is in force, and a disabled
/// app's connections are closed, before the answer goes out).
async fn caught_up(state: &AppState, revision: i64) -> Result<(), ApiError> {
    state.apps_changed(revision).await.map_err(ApiError::internal)
}

/// Newest `updated_at` first, as Push-Alt listed them.
#[utoipa::path(
    get,
    path = "/api/workspaces",
    tag = "Push-Alt",
    responses(
        (status = 200, description = "The workspaces.", body = WorkspacesAnswer),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, User(caller): User) -> Json<Value> {
    let mut apps: Vec<_> = state.apps.all().into_iter().filter(|a| can_manage(&caller, a)).collect();
    apps.sort_by_key(|a| std::cmp::Reverse((a.updated_at, a.number)));
    let data: Vec<Value> = apps.iter().map(|a| json_of(a)).collect();
    ok(json!({ "message": "Workspaces retrieved", "data": data }))
}

/// One of the caller's workspaces.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}",
    tag = "Push-Alt",
    params(("id" = i64, Path, description = "The workspace's number.")),
    responses(
        (status = 200, description = "The workspace.", body = WorkspaceAnswer),
        (status = 400, description = "An invalid id.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn read(
    State(state): State<AppState>,
    User(caller): User,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let app = find(&state, &caller, id)?;
    Ok(ok(json!({ "message": "Workspace retrieved", "data": json_of(&app) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = WorkspaceCreate)]
pub struct CreateBody {
    name: Option<String>,
    description: Option<String>,
    status: Option<String>,
    app_key: Option<String>,
    app_id: Option<Text>,
}

/// `{name, description?, status?, app_key, app_id?}`: the client chooses `app_id` (409 if it is
/// taken; generated when absent) and `app_key`, which becomes the app's secret.
#[utoipa::path(
    post,
    path = "/api/workspaces",
    tag = "Push-Alt",
    request_body(content = CreateBody),
    responses(
        (status = 200, description = "Created.", body = WorkspaceAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 409, description = "Taken already.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    User(caller): User,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: CreateBody = json(&headers, body, limit::ADMIN).await?;
    let name = b.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| ApiError::bad("name is required"))?;
    let secret = b.app_key.filter(|k| !k.is_empty()).ok_or_else(|| ApiError::bad("app_key is required"))?;
    let enabled = b.status.as_deref().map(enabled).transpose()?;
    let req = CreateApp {
        id: b.app_id.map(|t| t.0),
        secret: Some(secret),
        name,
        description: b.description,
        enabled,
        owner_id: Some(caller.id),
        ..Default::default()
    };
    let app = apps::create(&state.store, req).await?;
    caught_up(&state, app.revision).await?;
    Ok(ok(json!({ "message": "Workspace created", "data": json_of(&app) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = WorkspaceUpdate)]
pub struct UpdateBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "input::present")]
    description: Option<Option<String>>,
    status: Option<String>,
    app_key: Option<String>,
    app_id: Option<Text>,
}

/// `{name?, description?, status?, app_key?, app_id?}`: given fields change; an `app_key`
/// replaces the secret (the old one stops working at once); `app_id` cannot change (it names
/// the app to the Pusher API and its tokens).
#[utoipa::path(
    put,
    path = "/api/workspaces/{id}",
    tag = "Push-Alt",
    params(("id" = i64, Path, description = "The workspace's number.")),
    request_body(content = UpdateBody),
    responses(
        (status = 200, description = "The workspace as changed.", body = WorkspaceAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
        (status = 409, description = "Taken already.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    User(caller): User,
    IdPath(id): IdPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let current = find(&state, &caller, id)?;
    let b: UpdateBody = json(&headers, body, limit::ADMIN).await?;
    if b.app_id.as_ref().is_some_and(|Text(given)| *given != *current.id) {
        return Err(ApiError::bad("app_id cannot be changed"));
    }
    let changes = UpdateApp {
        name: b.name,
        enabled: b.status.as_deref().map(enabled).transpose()?,
        description: b.description,
        secret: b.app_key.filter(|k| !k.is_empty()),
        ..Default::default()
    };
    let app = apps::update(&state.store, &current.id, changes).await?;
    caught_up(&state, app.revision).await?;
    Ok(ok(json!({ "message": "Workspace updated", "data": json_of(&app) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = WorkspaceDelete)]
pub struct DeleteBody {
    ids: Option<Vec<Id>>,
}

/// `{ids: [n, …]}` (1 to 100 ids): deletes the caller's workspaces among them; ids of others,
/// or of none, are passed over, as Push-Alt's `IN (…)` did.
#[utoipa::path(
    delete,
    path = "/api/workspaces",
    tag = "Push-Alt",
    request_body(content = DeleteBody),
    responses(
        (status = 200, description = "Deleted.", body = PushAltDone),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    User(caller): User,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: DeleteBody = match json(&headers, body, limit::ADMIN).await {
        Ok(b) => b,
        Err(ApiError::Bad(_)) => return Err(invalid_ids()),
        Err(e) => return Err(e),
    };
    let ids = b.ids.filter(|ids| (1..=MAX_IDS).contains(&ids.len())).ok_or_else(invalid_ids)?;
    let mut revision = None;
    for Id(number) in ids {
        let Some(app) = state.apps.by_number(number).filter(|a| can_manage(&caller, a)) else { continue };
        match apps::delete(&state.store, &app.id).await {
            Ok(r) => revision = Some(r),
            Err(apps::Error::Store(crate::store::Error::NotFound)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(revision) = revision {
        caught_up(&state, revision).await?;
    }
    Ok(ok(json!({ "message": "Workspaces deleted", "data": [] })))
}

fn invalid_ids() -> ApiError {
    ApiError::bad("Invalid or empty IDs")
}
