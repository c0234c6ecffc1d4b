//! Surfaces: one adapter per compatibility product. A surface parses its frames and requests,
//! authenticates, calls the core or a service, and answers in its own format. Surfaces never
//! import each other.

pub mod accounts;
pub mod dashboard;
pub mod docs;
pub mod hestia;
pub mod notif;
pub mod ops;
pub mod pushalt;
pub mod pusher;

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use crate::core::ChannelName;
use crate::server::state::AppState;

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

/// `{"error": …}`: the error body of the Pusher API, Notif's HTTP endpoints, the accounts routes,
/// the dashboard, the operations routes and the server's own refusals.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub error: String,
}

/// `{"error": message}` with `status`, and `Retry-After` when a rate limit refused the request:
/// the error shape of the Pusher API, Notif's HTTP endpoints, the accounts routes and the
/// server's own refusals.
pub(crate) fn json_error(status: StatusCode, message: String, retry_after_secs: Option<u64>) -> Response {
    let mut response = (status, Json(ErrorBody { error: message })).into_response();
    if let Some(secs) = retry_after_secs {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// What the server answers around the surfaces rather than in one: admission before a request
/// reaches its route (capacity, the per-address rate), the request deadline, and a path no
/// route serves. Each is answered in the format of the surface the path belongs to
/// ([`ErrorFormat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A connection accepted over capacity: 503 with `Retry-After: 1`, then closed.
    AtCapacity,
    /// Over `server.requests_per_ip_per_second`: 429 with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// Not answered within the request deadline: 408, then closed (the rest of the body is
    /// never read).
    Deadline,
    /// No route serves the path: 404.
    NotFound,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Self::AtCapacity => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Deadline => StatusCode::REQUEST_TIMEOUT,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::AtCapacity => "Server at connection capacity, please retry shortly.",
            Self::RateLimited { .. } => "Too many requests, please try again later.",
            Self::Deadline => "request not completed in time",
            Self::NotFound => "not found",
        }
    }

    /// Seconds for `Retry-After`, if the refusal passes.
    pub fn retry_after_secs(self) -> Option<u64> {
        match self {
            Self::AtCapacity => Some(1),
            Self::RateLimited { retry_after_secs } => Some(retry_after_secs),
            Self::Deadline | Self::NotFound => None,
        }
    }

    /// Whether the connection ends with the answer.
    fn closes(self) -> bool {
        matches!(self, Self::AtCapacity | Self::Deadline)
    }
}

/// The error format of the surface a request's path belongs to, for [`Refusal`]s the server
/// makes before or after the surface runs. Taken from the request's head before the request is
/// handed on, since the deadline answers once it is gone.
pub(crate) enum ErrorFormat {
    /// `{"error": …}`: the Pusher API, Notif, the accounts routes, the dashboard, the server.
    Json,
    /// Push-Alt's envelope, with CORS for the request's `Origin` as on its routes.
    PushAlt { origin: Option<HeaderValue> },
    /// `{"error": …}` with the chat routes' CORS `*` (`socket`: the path is `/socket.io`'s,
    /// which is the chat's only when the chat socket is served there).
    Chat { socket: bool },
}

impl ErrorFormat {
    /// The format of the surface `req`'s path belongs to: Push-Alt's for every path under
    /// `/api/` but Notif's broadcast, the chat's for its paths, `{"error"}` for the rest.
    pub fn of<B>(req: &Request<B>) -> Self {
        let path = req.uri().path();
        if path.starts_with(pushalt::PATH_PREFIX) && path != notif::BROADCAST_PATH {
            Self::PushAlt { origin: req.headers().get(header::ORIGIN).cloned() }
        } else if hestia::cors::is_chat_path(path) {
            Self::Chat { socket: hestia::cors::is_socket_path(path) }
        } else {
            Self::Json
        }
    }

    /// `refusal` in this format.
    pub async fn answer(self, state: &AppState, refusal: Refusal) -> Response {
        let mut response = match self {
            Self::Json => json_error(refusal.status(), refusal.message().into(), refusal.retry_after_secs()),
            Self::PushAlt { origin } => pushalt::refusal(state, origin, refusal).await,
            Self::Chat { socket } => {
                let mut response = json_error(refusal.status(), refusal.message().into(), refusal.retry_after_secs());
                if !socket || state.engineio.chat_served {
                    hestia::cors::allow_any_origin(&mut response);
                }
                response
            }
        };
        if refusal.closes() {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
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
