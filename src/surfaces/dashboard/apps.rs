//! `/dashboard/apps`: list, create, read, update, rotate the secret, delete. An account sees and
//! touches only its own apps; admins see all. Changes reach live connections at once.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Caller, DashError, parse, rfc3339};
use crate::accounts::Account;
use crate::apps::{self, App, AppSettings, CreateApp, LimitsPatch, SwitchesPatch, UpdateApp};
use crate::server::state::AppState;
use crate::surfaces::ErrorBody;

fn can_manage(caller: &Account, app: &App) -> bool {
    caller.is_admin || app.owner_id == Some(caller.id)
}

/// The app as its owner sees it, secret included.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes `app_json`.
pub(super) struct AppView {
    id: String,
    /// Its number (the `/apps/{id}` of older clients).
    number: i64,
    key: String,
    secret: String,
    name: String,
    enabled: bool,
    owner_id: Option<i64>,
    allowed_origins: Vec<String>,
    limits: crate::apps::AppLimits,
    switches: crate::apps::Switches,
    /// RFC 3339.
    created_at: String,
}

/// `{"ok": true}`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the `{"ok":true}` answers.
pub(super) struct Done {
    ok: bool,
}

/// The app as its owner sees it, secret included.
pub(super) fn app_json(a: &App) -> Value {
    json!({
        "id": &*a.id,
        "number": a.number,
        "key": &*a.key,
        "secret": &a.secret.0,
        "name": a.name,
        "enabled": a.enabled,
        "owner_id": a.owner_id,
        "allowed_origins": a.settings.allowed_origins,
        "limits": a.settings.limits,
        "switches": a.settings.switches,
        "created_at": rfc3339(a.created_at),
    })
}

fn owned(state: &AppState, caller: &Account, id: &str) -> Result<Arc<App>, DashError> {
    state.apps.by_id(id).filter(|a| can_manage(caller, a)).ok_or_else(|| DashError::not_found("App not found"))
}

/// Brings this node's app cache up to the change just made, so it is in force before the
/// response goes out.
async fn reload(state: &AppState, revision: i64) -> Result<(), DashError> {
    state.apps_changed(revision).await.map_err(DashError::internal)
}

/// The caller's apps (every app for an admin).
#[utoipa::path(
    get,
    path = "/dashboard/apps",
    tag = "Dashboard",
    responses(
        (status = 200, description = "The apps.", body = [AppView]),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    let apps: Vec<Value> = state.apps.all().iter().filter(|a| can_manage(&caller, a)).map(|a| app_json(a)).collect();
    Json(Value::Array(apps))
}

/// A new app; the id and key are made when not given.
#[derive(Deserialize, ToSchema)]
#[schema(as = AppCreate)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    name: String,
    id: Option<String>,
    key: Option<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    limits: Option<LimitsPatch>,
    switches: Option<SwitchesPatch>,
}

/// Creates an app owned by the caller.
#[utoipa::path(
    post,
    path = "/dashboard/apps",
    tag = "Dashboard",
    request_body(content = CreateBody),
    responses(
        (status = 201, description = "Created.", body = AppView),
        (status = 400, description = "An invalid body or field.", body = ErrorBody),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
        (status = 409, description = "The id or key is taken.", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, DashError> {
    let body: CreateBody = parse(&headers, body).await?;
    let mut settings = AppSettings { allowed_origins: body.allowed_origins, ..Default::default() };
    merge_settings(&mut settings, body.limits, body.switches);
    let app = apps::create(
        &state.store,
        CreateApp {
            id: body.id,
            key: body.key,
            name: body.name,
            owner_id: Some(caller.id),
            settings,
            ..Default::default()
        },
    )
    .await?;
    reload(&state, app.revision).await?;
    Ok((StatusCode::CREATED, Json(app_json(&app))).into_response())
}

/// One of the caller's apps.
#[utoipa::path(
    get,
    path = "/dashboard/apps/{id}",
    tag = "Dashboard",
    params(("id" = String, Path, description = "The app's id.")),
    responses(
        (status = 200, description = "The app.", body = AppView),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
        (status = 404, description = "No such app of the caller's.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, DashError> {
    let app = owned(&state, &caller, &id)?;
    Ok(Json(app_json(&app)))
}

/// Changes to an app: given fields replace, absent ones stay (`limits` and `switches` key by key).
#[derive(Deserialize, ToSchema)]
#[schema(as = AppUpdate)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    enabled: Option<bool>,
    allowed_origins: Option<Vec<String>>,
    limits: Option<LimitsPatch>,
    switches: Option<SwitchesPatch>,
}

/// Changes one of the caller's apps; live connections see the change at once.
#[utoipa::path(
    patch,
    path = "/dashboard/apps/{id}",
    tag = "Dashboard",
    params(("id" = String, Path, description = "The app's id.")),
    request_body(content = UpdateBody),
    responses(
        (status = 200, description = "The app as changed.", body = AppView),
        (status = 400, description = "An invalid body or field.", body = ErrorBody),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
        (status = 404, description = "No such app of the caller's.", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, DashError> {
    let current = owned(&state, &caller, &id)?;
    let body: UpdateBody = parse(&headers, body).await?;
    let mut settings = current.settings.clone();
    if let Some(origins) = body.allowed_origins {
        settings.allowed_origins = origins;
    }
    merge_settings(&mut settings, body.limits, body.switches);
    let changes = UpdateApp { name: body.name, enabled: body.enabled, settings: Some(settings), ..Default::default() };
    let app = apps::update(&state.store, &id, changes).await?;
    reload(&state, app.revision).await?;
    Ok(Json(app_json(&app)))
}

/// Gives one of the caller's apps a new secret (the old one stops working at once).
#[utoipa::path(
    post,
    path = "/dashboard/apps/{id}/rotate-secret",
    tag = "Dashboard",
    params(("id" = String, Path, description = "The app's id.")),
    responses(
        (status = 200, description = "The app with its new secret.", body = AppView),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
        (status = 404, description = "No such app of the caller's.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, DashError> {
    owned(&state, &caller, &id)?;
    let app = apps::rotate_secret(&state.store, &id).await?;
    reload(&state, app.revision).await?;
    Ok(Json(app_json(&app)))
}

/// Deletes one of the caller's apps; its connections are closed.
#[utoipa::path(
    delete,
    path = "/dashboard/apps/{id}",
    tag = "Dashboard",
    params(("id" = String, Path, description = "The app's id.")),
    responses(
        (status = 200, description = "Deleted.", body = Done),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
        (status = 404, description = "No such app of the caller's.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, DashError> {
    owned(&state, &caller, &id)?;
    let revision = apps::delete(&state.store, &id).await?;
    reload(&state, revision).await?;
    Ok(Json(json!({ "ok": true })))
}

/// Applies partial `limits` / `switches` objects: given keys replace, others stay (unknown keys
/// were refused when the body was parsed).
fn merge_settings(settings: &mut AppSettings, limits: Option<LimitsPatch>, switches: Option<SwitchesPatch>) {
    if let Some(patch) = limits {
        patch.apply(&mut settings.limits);
    }
    if let Some(patch) = switches {
        patch.apply(&mut settings.switches);
    }
}
