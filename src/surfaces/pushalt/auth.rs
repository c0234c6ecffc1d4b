//! Sessions, the caller's profile, and first-run setup: `/api/auth/{login, refresh, logout,
//! profile, profile/update}` and `/api/setup/complete`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::User;
use super::input::{self, json};
use super::schema::*;
use super::{ApiError, limit, ok, user_json};
use crate::accounts::{AccountChanges, AccountError, Registration};
use crate::audit;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::store::now_ms;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PushAltLogin)]
pub struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

/// `{email, password}` → an hour's access token and a week's refresh token. An unknown email, a
/// wrong password and a deactivated account are one 401; attempts are limited per address and
/// per name, and password checks share the server's cap (503 past it).
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "Push-Alt",
    request_body(content = LoginBody),
    responses(
        (status = 200, description = "Signed in.", body = LoginAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "Wrong email or password, or a deactivated account.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
        (status = 429, description = "Too many requests.", body = PushAltFailure, headers(("Retry-After" = u64))),
        (status = 503, description = "Password checks are saturated, or the broker is down; retry.", body = PushAltFailure, headers(("Retry-After" = u64))),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: LoginBody = json(&headers, body, limit::SMALL).await?;
    let (Some(email), Some(password)) =
        (b.email.filter(|e| !e.trim().is_empty()), b.password.filter(|p| !p.is_empty()))
    else {
        return Err(ApiError::bad("Email and password are required"));
    };
    let account = state.accounts.check_login(Some(&email), Some(&password), ip).await?;
    let session = state.sessions.open(&state.accounts, &account).await?;
    Ok(ok(json!({
        "message": "Login successful",
        "data": {
            "email": account.email,
            "name": account.name,
            "type": "Bearer",
            "access_token": session.access_token.expose(),
            "refresh_token": session.refresh_token.expose(),
        },
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PushAltRefresh)]
pub struct RefreshBody {
    refresh_token: Option<String>,
}

async fn refresh_token(headers: &HeaderMap, body: Body) -> Result<String, ApiError> {
    let b: RefreshBody = json(headers, body, limit::SMALL).await?;
    b.refresh_token.filter(|t| !t.is_empty()).ok_or_else(|| ApiError::bad("Refresh token required"))
}

/// `{refresh_token}` → a new access token.
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "Push-Alt",
    request_body(content = RefreshBody),
    responses(
        (status = 200, description = "A new access token.", body = RefreshAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "An invalid or expired refresh token.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
)]
pub async fn refresh(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    let token = refresh_token(&headers, body).await?;
    let access_token = state.sessions.refresh(&state.accounts, &token).await?;
    Ok(ok(json!({ "message": "Token refreshed", "data": { "access_token": access_token.expose() } })))
}

/// `{refresh_token}` → the session ends (an unknown token is 400, as Push-Alt answered).
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "Push-Alt",
    request_body(content = RefreshBody),
    responses(
        (status = 200, description = "Signed out.", body = PushAltDone),
        (status = 400, description = "No refresh token, or an unknown one.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    let token = refresh_token(&headers, body).await?;
    state.sessions.close(&token).await.map_err(|e| match e {
        crate::sessions::SessionError::Invalid => ApiError::bad("Invalid refresh token"),
        e => e.into(),
    })?;
    Ok(ok(json!({ "message": "Logged out successfully" })))
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/auth/profile",
    tag = "Push-Alt",
    responses(
        (status = 200, description = "The account.", body = PushAltAccountAnswer),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn profile(User(account): User) -> Json<Value> {
    ok(json!({ "data": user_json(&account) }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PushAltProfile)]
pub struct ProfileBody {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

/// `{name, email, password?}` → the account as it is now (Push-Alt answered with the account
/// as it was before). A new password ends the account's other sessions' refresh tokens.
#[utoipa::path(
    put,
    path = "/api/auth/profile/update",
    tag = "Push-Alt",
    request_body(content = ProfileBody),
    responses(
        (status = 200, description = "The account as changed.", body = PushAltAccountAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 409, description = "Taken already.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
        (status = 503, description = "Password checks are saturated, or the broker is down; retry.", body = PushAltFailure, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = [])),
)]
pub async fn update_profile(
    State(state): State<AppState>,
    User(caller): User,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: ProfileBody = json(&headers, body, limit::SMALL).await?;
    let (Some(name), Some(email)) = (b.name.filter(|n| !n.trim().is_empty()), b.email.filter(|e| !e.trim().is_empty()))
    else {
        return Err(ApiError::bad("Name and email are required"));
    };
    let changes = AccountChanges { name: Some(name), email: Some(email), password: b.password, active: None };
    let account = state.accounts.update(caller.id, changes).await?;
    Ok(ok(json!({ "data": user_json(&account), "message": "Profile updated successfully" })))
}

/// Whether setup is still to do (Push-Alt answered this GET with a placeholder text).
#[utoipa::path(
    get,
    path = "/api/setup/complete",
    tag = "Push-Alt",
    responses(
        (status = 200, description = "The setup state.", body = SetupStateAnswer),
    ),
)]
pub async fn setup_status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let done = state.accounts.setup_done().await?;
    Ok(ok(json!({ "data": { "setup_completed": done } })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PushAltSetup)]
pub struct SetupBody {
    setup_token: Option<String>,
    app_name: Option<String>,
    timezone: Option<String>,
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
}

/// Longest setting value (Push-Alt's column).
const MAX_SETTING_CHARS: usize = 255;

/// Creates the first admin, once, with the setup token printed at first start; stores the app
/// name, time zone and `installed_at` settings. The password is never echoed.
#[utoipa::path(
    post,
    path = "/api/setup/complete",
    tag = "Push-Alt",
    request_body(content = SetupBody),
    responses(
        (status = 200, description = "Set up.", body = SetupAnswer),
        (status = 400, description = "A field is missing or invalid, or setup is done already.", body = PushAltFailure),
        (status = 401, description = "A wrong setup token.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
        (status = 429, description = "Too many requests.", body = PushAltFailure, headers(("Retry-After" = u64))),
        (status = 503, description = "Password checks are saturated, or the broker is down; retry.", body = PushAltFailure, headers(("Retry-After" = u64))),
    ),
)]
pub async fn setup(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    if state.accounts.setup_done().await? {
        return Err(ApiError::bad("Setup already completed, cannot insert again"));
    }
    let b: SetupBody = json(&headers, body, limit::SMALL).await?;
    let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let fields = (
        given(b.app_name),
        given(b.timezone),
        given(b.name),
        given(b.email),
        given(b.password),
        given(b.password_confirm),
    );
    let (Some(app_name), Some(timezone), Some(name), Some(email), Some(password), Some(confirm)) = fields else {
        return Err(ApiError::bad("All fields are required"));
    };
    if confirm != password {
        return Err(ApiError::bad("Passwords do not match"));
    }
    if app_name.chars().count() > MAX_SETTING_CHARS || timezone.chars().count() > MAX_SETTING_CHARS {
        return Err(ApiError::bad("app_name and timezone must be at most 255 characters"));
    }
    let token = b.setup_token.unwrap_or_default();
    let reg = Registration { name: Some(name), username: None, email: Some(email), password: Some(password) };
    let admin = state.accounts.complete_setup(&token, reg).await.map_err(|e| {
        if matches!(e, AccountError::SetupToken) {
            audit::refused(audit::Refusal::BadToken, ip, "/api/setup/complete", &"not a setup token printed at start");
        }
        ApiError::from(e)
    })?;
    let settings = [
        ("app_name".to_owned(), app_name.clone()),
        ("timezone".to_owned(), timezone.clone()),
        ("installed_at".to_owned(), input::date(now_ms())),
    ];
    // Three rows against a cap of a thousand: only a database failure refuses them.
    state.store.put_settings(&settings, super::settings::MAX_SETTINGS).await?;
    Ok(ok(json!({
        "message": "Setup completed successfully",
        "data": {
            "settings": { "app_name": app_name, "timezone": timezone },
            "user": { "name": admin.name, "email": admin.email },
        },
    })))
}
