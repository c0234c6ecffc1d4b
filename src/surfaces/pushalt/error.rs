//! Push-Alt's failures: a status and `{"success":false,"message"}`. Lower errors arrive by
//! `From`; an internal one is logged once with its source and shown as a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::accounts::AccountError;
use crate::channel_tokens::TokenError;
use crate::sessions::SessionError;
use crate::surfaces::{BodyError, Refusal};
use crate::{apps, store};

/// Push-Alt's texts that more than one route answers with.
pub mod text {
    pub const NO_TOKEN: &str = "No token provided";
    pub const INVALID_TOKEN: &str = "Invalid token";
    pub const ADMIN_REQUIRED: &str = "Admin access required";
    pub const WORKSPACE_NOT_FOUND: &str = "Workspace not found";
    pub const WORKSPACE_DEACTIVATED: &str = "Workspace Deactivated";
    pub const INVALID_CREDENTIALS: &str = "Invalid workspace or credentials";
    pub const USER_NOT_FOUND: &str = "User not found";
    pub const INVALID_PAGINATION: &str = "Invalid pagination parameters";
}

#[derive(Debug)]
pub enum ApiError {
    /// 400.
    Bad(String),
    /// 401.
    Unauthorized(String),
    /// 403.
    Forbidden(&'static str),
    /// 404.
    NotFound(String),
    /// 409.
    Conflict(String),
    /// 405.
    MethodNotAllowed,
    /// 413 for data over the app's message limit.
    TooLarge(String),
    /// The body was not read (too large, or broken off).
    Body(BodyError),
    /// 413 for an unsigned emit past the server's bound (the rest is not read).
    UnsignedTooLarge(String),
    /// 429, with the seconds for `Retry-After`.
    RateLimited(u64),
    /// 503 with `Retry-After: 1` (password checks or the broker).
    Unavailable(String),
    /// 408: the request deadline passed.
    Timeout,
    /// 500; the cause is logged where it is made.
    Internal,
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self::Bad(message.into())
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// Logs `err` and answers 500 without it.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "push-alt api");
        Self::Internal
    }

    fn parts(&self) -> (StatusCode, &str) {
        match self {
            Self::Bad(m) => (StatusCode::BAD_REQUEST, m),
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Self::Conflict(m) => (StatusCode::CONFLICT, m),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
            Self::TooLarge(m) | Self::UnsignedTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            Self::Body(BodyError::TooLarge(_)) => (StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large"),
            Self::Body(BodyError::Unreadable) => (StatusCode::BAD_REQUEST, "Request body could not be read"),
            Self::RateLimited(_) => {
                (StatusCode::TOO_MANY_REQUESTS, Refusal::RateLimited { retry_after_secs: 1 }.message())
            }
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            Self::Timeout => (StatusCode::REQUEST_TIMEOUT, Refusal::Deadline.message()),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = self.parts();
        let mut response = (status, Json(json!({ "success": false, "message": message }))).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::RateLimited(secs) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of the body is never read: the connection ends with the answer.
            Self::Body(BodyError::TooLarge(_)) | Self::UnsignedTooLarge(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::AtCapacity => Self::Unavailable(r.message().into()),
            Refusal::RateLimited { retry_after_secs } => Self::RateLimited(retry_after_secs),
            Refusal::Deadline => Self::Timeout,
            Refusal::NotFound => Self::not_found("Not found"),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        Self::Body(e)
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(m) => Self::bad(m),
            AccountError::Duplicate(m) => Self::Conflict(m.to_owned()),
            AccountError::InvalidCredentials => Self::unauthorized("Invalid email or password"),
            AccountError::RateLimited(wait) => Self::RateLimited(crate::ratelimit::retry_after_secs(wait)),
            AccountError::Token => Self::unauthorized(text::INVALID_TOKEN),
            AccountError::AlreadySetUp => Self::bad("Setup already completed, cannot insert again"),
            AccountError::SetupToken => Self::unauthorized("Invalid setup token"),
            AccountError::Store(store::Error::NotFound) => Self::not_found(text::USER_NOT_FOUND),
            AccountError::Busy => Self::Unavailable("Server busy, please try again shortly.".into()),
            other => Self::internal(other),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Invalid | SessionError::Expired => Self::unauthorized(e.to_string()),
            SessionError::Account(e) => e.into(),
            SessionError::Store(e) => Self::internal(e),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Presence => Self::bad("channel_name: presence channels cannot be joined with a channel token"),
            TokenError::Invalid | TokenError::AppDisabled => Self::unauthorized(e.to_string()),
            TokenError::Store(e) => Self::internal(e),
        }
    }
}

impl From<apps::Error> for ApiError {
    fn from(e: apps::Error) -> Self {
        match e {
            apps::Error::Invalid { field, reason } => {
                // Push-Alt's names for the fields a workspace request sets.
                let field = match field {
                    "id" => "app_id",
                    "secret" => "app_key",
                    other => other,
                };
                Self::bad(format!("{field} {reason}"))
            }
            apps::Error::Duplicate { field: "id", value } => Self::Conflict(format!("app_id {value} is already taken")),
            apps::Error::Duplicate { .. } | apps::Error::Store(store::Error::Conflict(_)) => {
                Self::Conflict("A workspace with that app_id already exists".into())
            }
            apps::Error::Store(store::Error::NotFound) => Self::not_found(text::WORKSPACE_NOT_FOUND),
            other => Self::internal(other),
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        Self::internal(e)
    }
}
