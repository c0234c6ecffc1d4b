//! The dashboard's JSON API (Bearer JWT): the app-management API every account uses for its own
//! apps (`/dashboard/apps`), and Notif's dashboard API with its exact shapes
//! (`/dashboard/user`, `/dashboard/domains`, `/dashboard/channels`, `/dashboard/ws-status`).
//! Domains and apps are one thing seen two ways.

mod apps;
mod domains;

use std::net::IpAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::accounts::{Account, AccountError, bearer};
use crate::audit;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::surfaces::{BodyError, body_limit, read_body};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/dashboard/apps", get(apps::list).post(apps::create))
        .route("/dashboard/apps/{id}", get(apps::read).patch(apps::update).delete(apps::delete))
        .route("/dashboard/apps/{id}/rotate-secret", post(apps::rotate_secret))
        .route("/dashboard/user", get(domains::user))
        .route("/dashboard/domains", get(domains::list).post(domains::create))
        .route("/dashboard/domains/{id}", axum::routing::patch(domains::update).delete(domains::delete))
        .route("/dashboard/channels", get(domains::channels))
        .route("/dashboard/ws-status", get(domains::ws_status))
}

/// This surface's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        apps::list,
        apps::create,
        apps::read,
        apps::update,
        apps::delete,
        apps::rotate_secret,
        domains::user,
        domains::list,
        domains::create,
        domains::update,
        domains::delete,
        domains::channels,
        domains::ws_status,
    ))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// `{"error": …}` with a status.
#[derive(Debug)]
pub struct DashError(StatusCode, String);

impl DashError {
    fn bad(msg: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, msg.into())
    }

    fn not_found(msg: &str) -> Self {
        Self(StatusCode::NOT_FOUND, msg.into())
    }

    fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "dashboard api");
        Self(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error".into())
    }
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is never read: the connection ends with the answer.
            response.headers_mut().insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<BodyError> for DashError {
    fn from(e: BodyError) -> Self {
        Self(e.status(), e.to_string())
    }
}

impl From<crate::apps::Error> for DashError {
    fn from(e: crate::apps::Error) -> Self {
        match e {
            crate::apps::Error::Invalid { .. } => Self::bad(e.to_string()),
            crate::apps::Error::Duplicate { .. } => Self(StatusCode::CONFLICT, e.to_string()),
            crate::apps::Error::Store(crate::store::Error::Conflict(_)) => {
                Self(StatusCode::CONFLICT, "An app with that id or key already exists".into())
            }
            crate::apps::Error::Store(crate::store::Error::NotFound) => Self::not_found("App not found"),
            other => Self::internal(other),
        }
    }
}

/// The signed-in account making the request.
pub struct Caller(pub Account);

impl FromRequestParts<AppState> for Caller {
    type Rejection = DashError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, DashError> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = bearer(header).ok_or_else(|| DashError(StatusCode::UNAUTHORIZED, "Missing bearer token".into()))?;
        match state.accounts.authenticate(token).await {
            Ok(account) => Ok(Self(account)),
            Err(AccountError::Token) => {
                let client =
                    ClientAddr::from_request_parts(parts, state).await.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0);
                audit::refused(audit::Refusal::BadToken, client, parts.uri.path(), &"invalid or expired token");
                Err(DashError(StatusCode::UNAUTHORIZED, "Invalid or expired token".into()))
            }
            Err(e) => Err(DashError::internal(e)),
        }
    }
}

/// Reads at most [`body_limit::DASHBOARD`] bytes and parses them into `T`, the request's own
/// type; errors are 400 with serde's message.
async fn parse<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, DashError> {
    let bytes = read_body(headers, body, body_limit::DASHBOARD).await?;
    serde_json::from_slice(&bytes).map_err(|e| DashError::bad(format!("Invalid request body: {e}")))
}

/// RFC 3339 for a millisecond timestamp.
fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
