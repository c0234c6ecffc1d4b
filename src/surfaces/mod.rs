//! Surfaces: one adapter per compatibility product. A surface parses its frames and requests,
//! authenticates, calls the core or a service, and answers in its own format. Surfaces never
//! import each other.

pub mod accounts;
pub mod dashboard;
pub mod notif;
pub mod ops;
pub mod pusher;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `{"error": message}` with `status`, and `Retry-After` when a rate limit refused the request:
/// the error shape the Pusher API and Notif's HTTP endpoints share.
pub(crate) fn json_error(status: StatusCode, message: String, retry_after_secs: Option<u64>) -> Response {
    let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
    if let Some(secs) = retry_after_secs {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
