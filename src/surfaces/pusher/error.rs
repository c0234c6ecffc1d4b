//! The HTTP API's errors: a status and a JSON `{"error": message}` (SPEC §3).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::pusher::ApiAuthError;
use crate::surfaces::BodyError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Auth(#[from] ApiAuthError),
    #[error("Application is disabled")]
    Disabled,
    #[error("Unknown app")]
    UnknownApp,
    #[error("{0}")]
    TooLarge(String),
    #[error("Broker unavailable; nothing was published, retry later")]
    BrokerDown,
    #[error("Too many requests for this app; retry after {0} s")]
    RateLimited(u64),
    /// The body was not read (too large, or broken off): answered as [`BodyError`] says.
    #[error(transparent)]
    Body(#[from] BodyError),
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::Disabled => StatusCode::FORBIDDEN,
            Self::UnknownApp => StatusCode::NOT_FOUND,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BrokerDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Body(e) => e.status(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Body(e) = self {
            return e.into_response();
        }
        let retry_after = if let Self::RateLimited(secs) = self { Some(secs) } else { None };
        crate::surfaces::json_error(self.status(), self.to_string(), retry_after)
    }
}
