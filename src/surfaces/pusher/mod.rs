//! Surface A, Pusher Channels (SPEC §3): the WebSocket protocol 7 at `/app/{key}` and the
//! signed HTTP API under `/apps/{id}`.

pub mod api;
pub mod codes;
mod error;
pub mod protocol;
pub mod ws;

use axum::Router;
use axum::routing::{get, post};

use crate::server::state::AppState;

pub use error::ApiError;

/// This surface's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        ws::upgrade,
        ws::bad_path,
        api::trigger,
        api::trigger_batch,
        api::channels,
        api::channel,
        api::channel_users,
        api::terminate_connections,
        api::terminate_connections_by_key,
    ))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    // One refusal serves the paths around `/app/{key}`.
    crate::surfaces::docs::alias(&mut doc, "/app/{key}/{rest}", &["/app/{key}/", "/app", "/app/"]);
    doc
}

/// This surface's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/{key}", get(ws::upgrade))
        .route("/app/{key}/", get(ws::bad_path))
        .route("/app/{key}/{*rest}", get(ws::bad_path))
        .route("/app", get(ws::bad_path))
        .route("/app/", get(ws::bad_path))
        .route("/apps/{app_id}/events", post(api::trigger))
        .route("/apps/{app_id}/batch_events", post(api::trigger_batch))
        .route("/apps/{app_id}/channels", get(api::channels))
        .route("/apps/{app_id}/channels/{channel}", get(api::channel))
        .route("/apps/{app_id}/channels/{channel}/users", get(api::channel_users))
        .route("/apps/{app_id}/users/{user_id}/terminate_connections", post(api::terminate_connections))
        .route("/users/{user_id}/terminate_connections", post(api::terminate_connections_by_key))
}
