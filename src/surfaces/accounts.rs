//! Account endpoints shared by Notif, Hestia and the dashboard (SPEC §4, §6): register, login
//! and status, answering with the superset of Notif's and Hestia's shapes. Also at `/register`,
//! `/login` and `/status`, where Hestia mounted them.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::accounts::{Account, AccountError, Registration, bearer};
use crate::server::AppState;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/auth/register", post(register))
        .route("/register", post(register))
        .route("/auth/login", post(login))
        .route("/login", post(login))
        .route("/auth/status", get(status))
        .route("/status", get(status))
}

/// `{"error": …}` with the status each failure has in SPEC §4/§6.
pub struct AuthApiError(pub AccountError);

impl From<AccountError> for AuthApiError {
    fn from(e: AccountError) -> Self {
        Self(e)
    }
}

impl IntoResponse for AuthApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self.0 {
            AccountError::Invalid(m) => (StatusCode::BAD_REQUEST, m.to_string()),
            AccountError::Duplicate(m) => (StatusCode::CONFLICT, m.to_string()),
            AccountError::InvalidCredentials => (StatusCode::UNAUTHORIZED, self.0.to_string()),
            AccountError::Token => (StatusCode::UNAUTHORIZED, "Invalid token".to_owned()),
            AccountError::AlreadySetUp => (StatusCode::BAD_REQUEST, "Setup already completed".to_owned()),
            AccountError::RateLimited(wait) => return rate_limited(*wait),
            other => {
                tracing::error!(error = %other, "accounts");
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error".to_owned())
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

/// 429 `{"error":"Too many requests, please try again later.","retryAfter":s}` with
/// `Retry-After` (SPEC §6).
pub fn rate_limited(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({ "error": "Too many requests, please try again later.", "retryAfter": secs })),
    )
        .into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

/// Parses a JSON object body; anything else is a 400 in this surface's format.
fn object(body: &Bytes) -> Result<serde_json::Map<String, Value>, AuthApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AccountError::Invalid("Body must be a JSON object.").into()),
    }
}

/// A string field; present but not a string is a 400.
fn field(map: &serde_json::Map<String, Value>, name: &'static str) -> Result<Option<String>, AuthApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AccountError::Invalid("Fields must be strings.").into()),
    }
}

fn user_json(a: &Account) -> Value {
    json!({ "id": a.id, "username": a.username, "name": a.name, "email": a.email })
}

async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Response, AuthApiError> {
    let map = object(&body)?;
    let reg = Registration {
        name: field(&map, "name")?,
        username: field(&map, "username")?,
        email: field(&map, "email")?,
        password: field(&map, "password")?,
    };
    let (account, token) = state.accounts.register(reg, peer.ip()).await?;
    let body = json!({
        "message": "User registered successfully.",
        "token": token,
        "id": account.id,
        "name": account.name,
        "email": account.email,
        "username": account.username,
        "user": user_json(&account),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Response, AuthApiError> {
    let map = object(&body)?;
    let login = field(&map, "email")?.or(field(&map, "username")?);
    let password = field(&map, "password")?;
    let (account, token) = state.accounts.login(login.as_deref(), password.as_deref(), peer.ip()).await?;
    Ok(Json(json!({ "message": "Login successful.", "token": token, "user": user_json(&account) })).into_response())
}

async fn status(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let Some(token) = token else {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "No token provided", "authenticated": false })))
            .into_response();
    };
    match state.accounts.authenticate(token).await {
        Ok(a) => Json(json!({ "authenticated": true, "user": { "id": a.id, "username": a.username } })).into_response(),
        Err(AccountError::Token) => {
            (StatusCode::UNAUTHORIZED, Json(json!({ "error": "Invalid token", "authenticated": false })))
                .into_response()
        }
        Err(e) => AuthApiError(e).into_response(),
    }
}
