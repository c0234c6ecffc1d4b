//! Surfaces: one adapter per compatibility product. A surface parses its frames and requests,
//! authenticates, calls the core or a service, and answers in its own format. Surfaces never
//! import each other.

pub mod accounts;
pub mod dashboard;
pub mod notif;
pub mod ops;
pub mod pushalt;
pub mod pusher;

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use crate::core::ChannelName;

/// A connection's presence identity per channel, for `user_id` on its client events.
#[derive(Default)]
pub(crate) struct PresenceUsers(Vec<(ChannelName, Arc<str>)>);

impl PresenceUsers {
    /// Records the user a subscription joined as. A repeated subscribe keeps the membership it
    /// already has in the core, so the first identity stays here too.
    pub fn joined(&mut self, channel: &ChannelName, user: Arc<str>) {
        if self.get(channel).is_none() {
            self.0.push((channel.clone(), user));
        }
    }

    pub fn left(&mut self, channel: &ChannelName) {
        self.0.retain(|(c, _)| c != channel);
    }

    pub fn get(&self, channel: &ChannelName) -> Option<Arc<str>> {
        self.0.iter().find(|(c, _)| c == channel).map(|(_, u)| u.clone())
    }
}

/// `{"error": message}` with `status`, and `Retry-After` when a rate limit refused the request:
/// the error shape of the Pusher API, Notif's HTTP endpoints, the accounts routes and the
/// server's own refusals.
pub(crate) fn json_error(status: StatusCode, message: String, retry_after_secs: Option<u64>) -> Response {
    let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
    if let Some(secs) = retry_after_secs {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Body limits per route (SPEC §10, STYLE "Bounded by construction"): each route reads at most
/// what its valid requests need.
pub(crate) mod body_limit {
    /// Login and registration: a name, an email and a password of at most 128 characters,
    /// with room for JSON escapes.
    pub const ACCOUNT: usize = 8 * 1024;
    /// Dashboard requests (an app's name, origins, limits and switches).
    pub const DASHBOARD: usize = 64 * 1024;
    /// Requests whose valid form has no body to speak of (queries, `terminate_connections`).
    pub const EMPTY: usize = 4 * 1024;
    /// What one published event may take beyond its data: name, channels (100 of 164
    /// characters), socket id, info.
    pub const EVENT_ENVELOPE: usize = 24 * 1024;

    /// The body one published event of at most `max_data` bytes can need: JSON-escaping may
    /// make data up to six times longer (`\u001f`), so that much is allowed, no more.
    pub const fn event(max_data: usize) -> usize {
        max_data.saturating_mul(6).saturating_add(EVENT_ENVELOPE)
    }
}

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// `Content-Length` or the stream went past the route's limit.
    #[error("Request body is larger than this endpoint accepts ({0} bytes)")]
    TooLarge(usize),
    /// The client broke off or the body was malformed at the HTTP level.
    #[error("Request body could not be read")]
    Unreadable,
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads a request body of at most `limit` bytes. A `Content-Length` over the limit is refused
/// before a byte is read; a body that streams past it is refused as soon as it does.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    read_declared(declared_length(headers), body, limit).await
}

/// The `Content-Length` a request declares, if any.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
}

/// [`read_body`] for a caller that kept only the declared length.
pub(crate) async fn read_declared(declared: Option<u64>, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Err(_) => Err(BodyError::Unreadable),
    }
}

/// `{"error": …}`; a body over the limit also closes the connection, since the rest of it is
/// never read.
impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        let mut response = json_error(self.status(), self.to_string(), None);
        if let Self::TooLarge(_) = self {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
