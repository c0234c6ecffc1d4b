//! Surface B, Notif (SPEC §4): the plain-JSON WebSocket at `/ws`, `POST /api/broadcast` and the
//! script-tag client `/notifmoo.js`. Accounts and the dashboard API live elsewhere; this module
//! holds no account logic and imports no other surface.

pub mod broadcast;
pub mod client_js;
pub mod codes;
mod error;
pub mod protocol;
pub mod ws;

use axum::Router;
use axum::routing::{get, post};

use crate::server::state::AppState;

pub use error::ApiError;

/// This surface's part of the OpenAPI document (its WebSocket at `/ws` is the router's: that
/// path is Push-Alt's Engine.IO too).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(broadcast::broadcast, client_js::serve))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// Notif's one route under `/api/`, which is otherwise Push-Alt's.
pub const BROADCAST_PATH: &str = "/api/broadcast";

/// This surface's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(BROADCAST_PATH, post(broadcast::broadcast).fallback(broadcast::method_not_allowed))
        .route("/notifmoo.js", get(client_js::serve))
}
