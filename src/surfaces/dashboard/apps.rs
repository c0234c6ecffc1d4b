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

use super::{Caller, DashError, parse, rfc3339};
use crate::accounts::Account;
use crate::apps::{self, App, AppSettings, CreateApp, LimitsPatch, SwitchesPatch, UpdateApp};
use crate::server::state::AppState;

fn can_manage(caller: &Account, app: &App) -> bool {
    caller.is_admin || app.owner_id == Some(caller.id)
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

pub async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    let apps: Vec<Value> = state.apps.all().iter().filter(|a| can_manage(&caller, a)).map(|a| app_json(a)).collect();
    Json(Value::Array(apps))
}

#[derive(Deserialize)]
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

pub async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, DashError> {
    let app = owned(&state, &caller, &id)?;
    Ok(Json(app_json(&app)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    enabled: Option<bool>,
    allowed_origins: Option<Vec<String>>,
    limits: Option<LimitsPatch>,
    switches: Option<SwitchesPatch>,
}

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
