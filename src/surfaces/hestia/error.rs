//! Hestia's REST error format: `{"error": "<Hestia's message>"}` with Hestia's statuses
//! (CONTRACTS §3); 429 `{"error", "retryAfter"}` with `Retry-After`. A server fault is logged
//! once here and shown as "Internal server error".

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::chat::ChatError;
use crate::surfaces::BodyError;

/// Every failure of a Hestia REST route.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer token: 401.
    #[error("No token provided")]
    NoToken,
    /// A token that is forged, expired, of another algorithm, or of a deleted account: 403.
    #[error("Invalid or expired token")]
    BadToken,
    /// A request the route cannot read (bad JSON, a field of the wrong type): 400.
    #[error("{0}")]
    BadRequest(&'static str),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Chat(#[from] ChatError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self {
            Self::Body(e) => return e.into_response(),
            Self::Chat(ChatError::RateLimited(wait)) => return crate::surfaces::accounts::rate_limited(wait),
            Self::Chat(e) if e.is_internal() => {
                tracing::error!(error = %e, "hestia");
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "Internal server error" })))
                    .into_response();
            }
            other => other,
        };
        let status = match &error {
            Self::NoToken => StatusCode::UNAUTHORIZED,
            Self::BadToken => StatusCode::FORBIDDEN,
            Self::BadRequest(_) | Self::Body(_) | Self::Chat(ChatError::Invalid(_)) => StatusCode::BAD_REQUEST,
            Self::Chat(ChatError::Forbidden(_)) => StatusCode::FORBIDDEN,
            Self::Chat(ChatError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Chat(ChatError::Conflict(_)) => StatusCode::CONFLICT,
            Self::Chat(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": error.to_string() }))).into_response()
    }
}
