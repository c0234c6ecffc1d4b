//! Notif's HTTP errors: a status and `{"error": message}`, always JSON (SPEC §4: Notif sent some
//! extractor rejections as plain text). The upgrade refusals keep Notif's exact messages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::pusher::ApiAuthError;
use crate::surfaces::BodyError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("api_key required")]
    KeyRequired,
    #[error("Invalid or inactive API key")]
    InvalidKey,
    #[error("Origin required and must match domain")]
    OriginRequired,
    #[error("Origin does not match domain for this key")]
    OriginMismatch,
    #[error("expected a WebSocket upgrade")]
    NotAnUpgrade,
    #[error("invalid or missing x-app-key")]
    MissingAppKey,
    #[error("invalid or inactive x-app-key")]
    InactiveAppKey,
    #[error("x-app-key must be the app secret; the public key cannot publish")]
    PublicKey,
    #[error("x-app-key matches more than one app; sign the request Pusher-style so auth_key names the app")]
    AmbiguousSecret,
    #[error("invalid or inactive auth_key")]
    InactiveSigner,
    #[error(transparent)]
    Signature(#[from] ApiAuthError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("Broker unavailable; nothing was published, retry later")]
    BrokerDown,
    #[error("Too many requests for this app; retry after {0} s")]
    RateLimited(u64),
    #[error("method not allowed")]
    MethodNotAllowed,
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
            Self::KeyRequired
            | Self::InvalidKey
            | Self::OriginRequired
            | Self::OriginMismatch
            | Self::MissingAppKey
            | Self::InactiveAppKey
            | Self::PublicKey
            | Self::AmbiguousSecret
            | Self::InactiveSigner
            | Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::NotAnUpgrade | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BrokerDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Body(e) => e.status(),
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
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
