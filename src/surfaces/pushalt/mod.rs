//! Push-Alt's HTTP API (SPEC §5) at its paths and in its envelope: `{"success","message"?,
//! "data"?}`, failures `{"success":false,"message"}` with Push-Alt's statuses and texts. Channel
//! tokens and emits for app backends; the admin API (sessions, setup, workspaces, the CORS list,
//! users, settings, channels, a connection test) behind `Authorization: Bearer`. CORS on every
//! route here follows the global origin list ([`crate::origins`]).
//!
//! Thin: the rules are the services' ([`crate::channel_tokens`], [`crate::accounts`],
//! [`crate::sessions`], [`crate::apps`], [`crate::origins`], [`crate::probe`]). The Socket.IO
//! side builds on [`crate::transport::socketio`]; [`socketio`] names its channel events.

mod admin;
mod auth;
mod caller;
mod channel;
mod cors;
mod cors_list;
mod credentials;
mod emit;
mod error;
mod input;
mod schema;
mod settings;
pub mod socketio;
mod test_connection;
mod workspaces;

use axum::Router;
use axum::http::HeaderValue;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post, put};
use serde_json::{Value, json};

pub use error::ApiError;
pub use input::Id;

use crate::accounts::Account;
use crate::apps::AppCache;
use crate::server::state::AppState;
use crate::surfaces::Refusal;

/// Every route of this surface is under it; so are the server's refusals answered in its
/// envelope, but on Notif's `/api/broadcast`.
pub const PATH_PREFIX: &str = "/api/";

/// Every Push-Alt route, behind the CORS layer.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/channel/auth", only(post(channel::auth)))
        .route("/api/channel/channels", only(get(channel::list)))
        .route("/api/channel/{id}", only(get(channel::view)))
        .route("/api/message/emit", only(post(emit::emit)))
        .route("/api/auth/login", only(post(auth::login)))
        .route("/api/auth/refresh", only(post(auth::refresh)))
        .route("/api/auth/logout", only(post(auth::logout)))
        .route("/api/auth/profile", only(get(auth::profile)))
        .route("/api/auth/profile/update", only(put(auth::update_profile)))
        .route("/api/setup/complete", only(get(auth::setup_status).post(auth::setup)))
        .route("/api/workspaces", only(get(workspaces::list).post(workspaces::create).delete(workspaces::delete)))
        .route("/api/workspaces/{id}", only(get(workspaces::read).put(workspaces::update)))
        .route("/api/cors", only(get(cors_list::list).post(cors_list::create)))
        .route("/api/cors/{id}", only(put(cors_list::update).delete(cors_list::delete)))
        .route("/api/admin/add", only(post(admin::add)))
        .route("/api/admin/update", only(put(admin::update)))
        .route("/api/admin/restore", only(post(admin::restore)))
        .route("/api/admin/{id}/view", only(get(admin::view)))
        .route("/api/admin/admins", only(get(admin::list)))
        .route("/api/setting/add_or_update", only(post(settings::put_one)))
        .route("/api/setting/update_form_setting", only(post(settings::put_form)))
        .route("/api/setting/{name}/view", only(get(settings::view)))
        .route("/api/setting/settings", only(get(settings::list)))
        .route("/api/setting/gets_form_setting", only(get(settings::form)))
        .route("/api/setting/last_installed", only(get(settings::last_installed)))
        .route("/api/test-connection", only(post(test_connection::run)))
        .route("/api/test-connection/{*rest}", any(test_connection::retired))
        .layer(middleware::from_fn_with_state(state, cors::layer))
}

/// This surface's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        channel::auth,
        channel::list,
        channel::view,
        emit::emit,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::profile,
        auth::update_profile,
        auth::setup_status,
        auth::setup,
        workspaces::list,
        workspaces::create,
        workspaces::delete,
        workspaces::read,
        workspaces::update,
        cors_list::list,
        cors_list::create,
        cors_list::update,
        cors_list::delete,
        admin::add,
        admin::update,
        admin::restore,
        admin::view,
        admin::list,
        settings::put_one,
        settings::put_form,
        settings::view,
        settings::list,
        settings::form,
        settings::last_installed,
        test_connection::run,
        test_connection::retired,
    ))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// A refusal the server made around this surface's routes (admission, the deadline, an unknown
/// path under `/api/`), answered as the routes answer: in the envelope, with CORS for an
/// allowed `origin`.
pub(crate) async fn refusal(state: &AppState, origin: Option<HeaderValue>, refusal: Refusal) -> Response {
    let mut response = ApiError::from(refusal).into_response();
    cors::allow(state, origin, &mut response).await;
    response
}

/// A route's methods and, for any other, 405 in this surface's envelope (axum keeps `Allow`).
/// A route's own fallback also keeps the CORS layer in front of preflights, which the
/// router-wide 405 would otherwise answer.
fn only(methods: MethodRouter<AppState>) -> MethodRouter<AppState> {
    methods.fallback(|| async { ApiError::MethodNotAllowed })
}

/// Body limits of this surface's routes (STYLE, "Bounded by construction"); an emit's is the
/// server's own bound unsigned ([`emit::UNSIGNED_LIMIT`]) and its app's when signed.
mod limit {
    /// Sign-in, setup and token requests: a few short strings.
    pub const SMALL: usize = crate::surfaces::body_limit::ACCOUNT;
    /// Admin requests: a workspace (name, a 1024-character description, a key), a user, a
    /// setting, a list of at most 100 ids, with room for JSON escapes.
    pub const ADMIN: usize = 16 * 1024;
    /// The settings form: at most 100 fields of 255 characters, multipart framing included.
    pub const FORM: usize = 64 * 1024;
}

/// `{"success":true, …fields}`.
fn ok(fields: Value) -> axum::Json<Value> {
    let mut body = json!({ "success": true });
    if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), fields) {
        map.extend(extra);
    }
    axum::Json(body)
}

/// An account as Push-Alt showed its users (never the password hash): `role` and `is_root` say
/// whether it is an admin (Push-Alt's root).
fn user_json(a: &Account) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "last_name": Value::Null,
        "email": a.email,
        "username": a.username,
        "role": if a.is_admin { "admin" } else { "user" },
        "is_root": a.is_admin,
        "status": if a.active { "active" } else { "deactivated" },
        "created_at": input::iso_time(a.created_at),
        "updated_at": input::iso_time(a.updated_at),
    })
}

/// Warns once per app whose `legacy_open_emit` switch is on (called where apps load at start):
/// with it, anyone who knows the app id can emit to its channels.
pub fn warn_open_emitters(apps: &AppCache) {
    for app in apps.all().iter().filter(|a| a.switches().legacy_open_emit) {
        tracing::warn!(
            app_id = %app.id,
            "legacy_open_emit is on: /api/message/emit accepts this app's events without app_key or signature"
        );
    }
}
