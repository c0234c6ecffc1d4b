//! Notif's dashboard API with its exact shapes (SPEC §4, CONTRACTS §2.3): a domain is an app of
//! the caller seen through its first allowed origin. Bare arrays, `{"ok":true}`,
//! `{"error":…}`; the secret is shown once, at creation; a domain that is missing or not the
//! caller's is 404 "Domain not found".

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Caller, DashError, rfc3339};
use crate::apps::{self, App, AppSettings, CreateApp, OriginPattern, UpdateApp};
use crate::server::state::AppState;
use crate::surfaces::ErrorBody;
use crate::surfaces::{body_limit, read_body};

/// An app as Notif showed a domain.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes `domain_json`.
struct Domain {
    id: String,
    /// The app's first allowed origin.
    domain_name: String,
    key: String,
    is_active: bool,
    /// RFC 3339.
    created_at: String,
}

/// A domain just created: the secret is shown this once.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `create` answers.
struct NewDomain {
    id: String,
    domain_name: String,
    key: String,
    is_active: bool,
    /// RFC 3339.
    created_at: String,
    /// The app secret (for `x-app-key` or signing).
    secret: String,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `user` answers.
struct DashboardUser {
    id: i64,
    name: String,
    email: Option<String>,
    username: Option<String>,
    is_admin: bool,
    /// RFC 3339.
    created_at: String,
}

/// A live channel of one of the caller's apps.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `channels` answers.
struct LiveChannel {
    /// `<app id>:<channel>`.
    id: String,
    name: String,
    domain_id: String,
    /// When it became occupied (RFC 3339).
    created_at: String,
    subscription_count: usize,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `ws_status` answers.
struct WsStatus {
    by_channel: Vec<ChannelConnections>,
    connections: Vec<ChannelConnection>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ChannelConnections {
    channel_name: String,
    connection_count: usize,
}

/// One (connection, channel) pair.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ChannelConnection {
    /// `<socket id>:<channel>`.
    id: String,
    channel_name: String,
    socket_id: String,
    connected_user: Option<String>,
    /// RFC 3339.
    connected_at: String,
    /// `connected`.
    status: String,
}

/// `{domain_name}` to create, `{is_active}` to change.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the body `DomainBody` reads.
struct DomainFields {
    /// An origin pattern, e.g. `example.com` or `*.example.com` (create).
    domain_name: Option<String>,
    /// Enables or disables the app (update).
    is_active: Option<bool>,
}

fn domain_json(a: &App) -> Value {
    json!({
        "id": &*a.id,
        "domain_name": a.settings.allowed_origins.first().cloned().unwrap_or_default(),
        "key": &*a.key,
        "is_active": a.enabled,
        "created_at": rfc3339(a.created_at),
    })
}

fn mine(state: &AppState, caller_id: i64) -> Vec<std::sync::Arc<App>> {
    let mut apps: Vec<_> = state.apps.all().into_iter().filter(|a| a.owner_id == Some(caller_id)).collect();
    apps.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.number.cmp(&a.number)));
    apps
}

fn my_domain(state: &AppState, caller_id: i64, id: &str) -> Result<std::sync::Arc<App>, DashError> {
    state
        .apps
        .by_id(id)
        .filter(|a| a.owner_id == Some(caller_id))
        .ok_or_else(|| DashError::not_found("Domain not found"))
}

/// The signed-in account.
#[utoipa::path(
    get,
    path = "/dashboard/user",
    tag = "Dashboard",
    responses(
        (status = 200, description = "The account.", body = DashboardUser),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn user(Caller(caller): Caller) -> Json<Value> {
    Json(json!({
        "id": caller.id,
        "name": caller.name,
        "email": caller.email,
        "username": caller.username,
        "is_admin": caller.is_admin,
        "created_at": rfc3339(caller.created_at),
    }))
}

/// The caller's apps as Notif's domains, newest first.
#[utoipa::path(
    get,
    path = "/dashboard/domains",
    tag = "Dashboard",
    responses(
        (status = 200, description = "The domains.", body = [Domain]),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    Json(Value::Array(mine(&state, caller.id).iter().map(|a| domain_json(a)).collect()))
}

/// `{domain_name}` / `{is_active}`, kept raw until read: other fields are skipped unbuilt, and a
/// field of the wrong type counts as missing.
#[derive(Deserialize)]
struct DomainBody<'a> {
    #[serde(borrow)]
    domain_name: Option<&'a RawValue>,
    #[serde(borrow)]
    is_active: Option<&'a RawValue>,
}

/// Creates an app allowed from one origin (its key starts `nk_`).
#[utoipa::path(
    post,
    path = "/dashboard/domains",
    tag = "Dashboard",
    request_body(content = DomainFields),
    responses(
        (status = 200, description = "Created.", body = NewDomain),
        (status = 400, description = "No valid `domain_name`, or the caller has that domain already.", body = ErrorBody),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, DashError> {
    let bytes = read_body(&headers, body, body_limit::DASHBOARD).await?;
    let body: DomainBody<'_> = serde_json::from_slice(&bytes).map_err(|_| DashError::bad("domain_name required"))?;
    let raw = body
        .domain_name
        .and_then(|d| serde_json::from_str::<String>(d.get()).ok())
        .map(|d| d.trim().to_lowercase())
        .unwrap_or_default();
    if raw.is_empty() {
        return Err(DashError::bad("domain_name required"));
    }
    let pattern = OriginPattern::parse(&raw).map_err(|e| DashError::bad(e.to_string()))?;
    let domain = pattern.as_str().to_owned();
    if mine(&state, caller.id).iter().any(|a| a.settings.allowed_origins.first() == Some(&domain)) {
        return Err(DashError::bad("Domain already exists for this user"));
    }
    let settings = AppSettings { allowed_origins: vec![domain.clone()], ..Default::default() };
    let app = apps::create(
        &state.store,
        CreateApp { name: domain, owner_id: Some(caller.id), settings, key_prefix: Some("nk_"), ..Default::default() },
    )
    .await?;
    state.apps_changed(app.revision).await.map_err(DashError::internal)?;
    let mut out = domain_json(&app);
    out["secret"] = Value::from(app.secret.0.clone());
    Ok(Json(out))
}

/// Enables or disables one of the caller's domains.
#[utoipa::path(
    patch,
    path = "/dashboard/domains/{id}",
    tag = "Dashboard",
    params(("id" = String, Path, description = "The domain's (app's) id.")),
    request_body(content = DomainFields),
    responses(
        (status = 200, description = "Changed.", body = super::apps::Done),
        (status = 400, description = "`is_active` is not a boolean.", body = ErrorBody),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
        (status = 404, description = "No such domain of the caller's.", body = ErrorBody),
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
    my_domain(&state, caller.id, &id)?;
    let bytes = read_body(&headers, body, body_limit::DASHBOARD).await?;
    let active = serde_json::from_slice::<DomainBody<'_>>(&bytes)
        .ok()
        .and_then(|b| b.is_active)
        .and_then(|a| serde_json::from_str::<bool>(a.get()).ok())
        .ok_or_else(|| DashError::bad("is_active must be a boolean"))?;
    let app = apps::update(&state.store, &id, UpdateApp { enabled: Some(active), ..Default::default() }).await?;
    state.apps_changed(app.revision).await.map_err(DashError::internal)?;
    Ok(Json(json!({ "ok": true })))
}

/// Deletes one of the caller's domains (the app).
#[utoipa::path(
    delete,
    path = "/dashboard/domains/{id}",
    tag = "Dashboard",
    params(("id" = String, Path, description = "The domain's (app's) id.")),
    responses(
        (status = 200, description = "Deleted.", body = super::apps::Done),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
        (status = 404, description = "No such domain of the caller's.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, DashError> {
    my_domain(&state, caller.id, &id)?;
    let revision = apps::delete(&state.store, &id).await?;
    state.apps_changed(revision).await.map_err(DashError::internal)?;
    Ok(Json(json!({ "ok": true })))
}

/// Live channels of the caller's apps (Notif listed every channel ever used).
#[utoipa::path(
    get,
    path = "/dashboard/channels",
    tag = "Dashboard",
    responses(
        (status = 200, description = "The channels.", body = [LiveChannel]),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn channels(State(state): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    let mut out = Vec::new();
    for app in mine(&state, caller.id) {
        for (name, stats) in state.realtime.occupied_channels(&app.id, "") {
            out.push(json!({
                "id": format!("{}:{}", app.id, name),
                "name": name.as_str(),
                "domain_id": &*app.id,
                "created_at": rfc3339(stats.occupied_since),
                "subscription_count": stats.subscription_count,
            }));
        }
    }
    Json(Value::Array(out))
}

/// Connections per channel and one row per (connection, channel), as Notif's page expects.
#[utoipa::path(
    get,
    path = "/dashboard/ws-status",
    tag = "Dashboard",
    responses(
        (status = 200, description = "The connections.", body = WsStatus),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn ws_status(State(state): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    let mut by_channel: BTreeMap<String, usize> = BTreeMap::new();
    let mut connections = Vec::new();
    for app in mine(&state, caller.id) {
        for conn in state.realtime.connections(&app.id) {
            for channel in conn.channels.iter().filter(|c| c.kind() != crate::core::ChannelKind::User) {
                *by_channel.entry(channel.to_string()).or_default() += 1;
                connections.push(json!({
                    "id": format!("{}:{}", conn.socket_id, channel),
                    "channel_name": channel.as_str(),
                    "socket_id": conn.socket_id.to_string(),
                    "connected_user": conn.user.as_deref(),
                    "connected_at": rfc3339(conn.connected_at),
                    "status": "connected",
                }));
            }
        }
    }
    let by_channel: Vec<Value> =
        by_channel.into_iter().map(|(channel_name, connection_count)| json!({ "channel_name": channel_name, "connection_count": connection_count })).collect();
    Json(json!({ "by_channel": by_channel, "connections": connections }))
}
