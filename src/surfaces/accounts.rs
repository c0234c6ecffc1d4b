//! Account endpoints shared by Notif, Hestia and the dashboard (SPEC §4, §6): register, login
//! and status, answering with the superset of Notif's and Hestia's shapes. Also at `/register`,
//! `/login` and `/status`, where Hestia mounted them.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::accounts::{Account, AccountError, Registration, bearer};
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::surfaces::{ErrorBody, body_limit, read_body};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/auth/register", post(register))
        .route("/register", post(register))
        .route("/auth/login", post(login))
        .route("/login", post(login))
        .route("/auth/status", get(status))
        .route("/status", get(status))
}

/// This surface's part of the OpenAPI document (the root paths are Hestia's aliases).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(register, login, status))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    crate::surfaces::docs::alias(&mut doc, "/auth/register", &["/register"]);
    crate::surfaces::docs::alias(&mut doc, "/auth/login", &["/login"]);
    crate::surfaces::docs::alias(&mut doc, "/auth/status", &["/status"]);
    doc
}

/// An account as these routes show it.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes `user_json`.
struct AccountUser {
    id: i64,
    username: Option<String>,
    name: String,
    email: Option<String>,
}

/// The answer to a registration: the account's fields at the top (Notif's shape) and as
/// `user` (Hestia's), with a session token.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the JSON `register` answers.
struct Registered {
    #[schema(example = "User registered successfully.")]
    message: String,
    /// A session token (JWT) for `Authorization: Bearer`.
    token: String,
    id: i64,
    name: String,
    email: Option<String>,
    username: Option<String>,
    user: AccountUser,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the JSON `login` answers.
struct LoggedIn {
    #[schema(example = "Login successful.")]
    message: String,
    /// A session token (JWT) for `Authorization: Bearer`.
    token: String,
    user: AccountUser,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the JSON `status` answers.
struct TokenStatus {
    /// `true` here; `false` in the 401 answer.
    authenticated: bool,
    user: TokenUser,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TokenUser {
    id: i64,
    username: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the 401 `status` answers.
struct NotAuthenticated {
    error: String,
    /// `false`.
    authenticated: bool,
}

/// 429's body.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes `rate_limited`'s JSON.
pub struct RateLimitedBody {
    #[schema(example = "Too many requests, please try again later.")]
    error: String,
    /// Seconds to wait (as `Retry-After`).
    #[schema(rename = "retryAfter")]
    retry_after: u64,
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
            AccountError::Busy => {
                return crate::surfaces::json_error(StatusCode::SERVICE_UNAVAILABLE, self.0.to_string(), Some(1));
            }
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
    let secs = crate::ratelimit::retry_after_secs(wait);
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({ "error": "Too many requests, please try again later.", "retryAfter": secs })),
    )
        .into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

/// A login or registration body, deserialized straight into its fields: other keys are
/// skipped without building anything from them. Registration needs a password and a username
/// or an email (Notif's `name` too); login takes `email` or `username` with the password.
#[derive(Deserialize, ToSchema)]
struct AccountBody {
    name: Option<String>,
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

/// Reads (at most [`body_limit::ACCOUNT`] bytes) and parses the body; anything but a JSON
/// object of string fields is a 400 in this surface's format.
async fn account_body(headers: &HeaderMap, body: Body) -> Result<AccountBody, Response> {
    let bytes = read_body(headers, body, body_limit::ACCOUNT).await.map_err(IntoResponse::into_response)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let why = if e.is_data() && object { "Fields must be strings." } else { "Body must be a JSON object." };
        AuthApiError(AccountError::Invalid(why)).into_response()
    })
}

fn user_json(a: &Account) -> Value {
    json!({ "id": a.id, "username": a.username, "name": a.name, "email": a.email })
}

/// Creates an account and signs it in.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "Accounts",
    request_body(content = AccountBody),
    responses(
        (status = 201, description = "Registered.", body = Registered),
        (status = 400, description = "A field is missing or invalid.", body = ErrorBody),
        (status = 403, description = "Registration is closed (`auth.registration = \"closed\"`) and the caller is not a signed-in admin.", body = ErrorBody),
        (status = 409, description = "The username or email is taken.", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address.", body = RateLimitedBody, headers(("Retry-After" = u64))),
        (status = 503, description = "Password checks are saturated; retry.", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security((), ("bearer" = [])),
)]
async fn register(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    if state.config.auth.registration == crate::config::Registration::Closed {
        registration_allowed(&state, &headers).await?;
    }
    let b = account_body(&headers, body).await?;
    let reg = Registration { name: b.name, username: b.username, email: b.email, password: b.password };
    let (account, token) = state.accounts.register(reg, ip).await.map_err(|e| AuthApiError(e).into_response())?;
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

/// With `auth.registration = "closed"`, only a signed-in admin registers accounts (and
/// `switchboard setup` creates the first one); everyone else gets 403 before the body is read.
async fn registration_allowed(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let token = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let admin = match token {
        Some(token) => state.accounts.authenticate(token).await.is_ok_and(|a| a.is_admin),
        None => false,
    };
    if admin {
        return Ok(());
    }
    Err((StatusCode::FORBIDDEN, Json(json!({ "error": "Registration is closed; an administrator creates accounts." })))
        .into_response())
}

/// Signs in with a password.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "Accounts",
    request_body(content = AccountBody),
    responses(
        (status = 200, description = "Signed in.", body = LoggedIn),
        (status = 400, description = "A field is missing or invalid.", body = ErrorBody),
        (status = 401, description = "Wrong login or password.", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
        (status = 429, description = "Too many attempts for this login or address.", body = RateLimitedBody, headers(("Retry-After" = u64))),
        (status = 503, description = "Password checks are saturated; retry.", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
)]
async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let b = account_body(&headers, body).await?;
    let login = b.email.or(b.username);
    let (account, token) = state
        .accounts
        .login(login.as_deref(), b.password.as_deref(), ip)
        .await
        .map_err(|e| AuthApiError(e).into_response())?;
    Ok(Json(json!({ "message": "Login successful.", "token": token, "user": user_json(&account) })).into_response())
}

/// Whether a session token is valid, and whose it is.
#[utoipa::path(
    get,
    path = "/auth/status",
    tag = "Accounts",
    responses(
        (status = 200, description = "The token is valid.", body = TokenStatus),
        (status = 401, description = "No token, or an invalid or expired one.", body = NotAuthenticated),
    ),
    security(("bearer" = [])),
)]
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
