//! Surfaces: one adapter per compatibility product. A surface parses its frames and requests,
//! authenticates, calls the core or a service, and answers in its own format. Surfaces never
//! import each other.

pub mod accounts;
pub mod dashboard;
pub mod notif;
pub mod ops;
pub mod pusher;

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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
/// the error shape the Pusher API and Notif's HTTP endpoints share.
pub(crate) fn json_error(status: StatusCode, message: String, retry_after_secs: Option<u64>) -> Response {
    let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
    if let Some(secs) = retry_after_secs {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
