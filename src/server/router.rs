//! All routes in one table, and the request-metrics layer.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::metrics;
use crate::surfaces::{self, accounts, dashboard, notif, ops, pusher};

pub fn build(state: AppState) -> Router {
    Router::new()
        .merge(pusher::routes())
        .merge(notif::routes())
        .merge(ops::routes())
        .merge(accounts::routes())
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(state.clone(), per_address))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "not found" }))).into_response()
}

/// Every surface answers errors in JSON; axum's own 405 has an empty body (`Allow` is kept).
async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(serde_json::json!({ "error": "method not allowed" }))).into_response()
}

/// `server.requests_per_ip_per_second` (SPEC §10), before any surface does work for the request.
async fn per_address(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let rate = state.config.server.requests_per_ip_per_second;
    if rate > 0
        && let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(wait) = state.ip_limits.per_second(&peer.ip().to_string(), rate)
    {
        return surfaces::json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests, please try again later.".into(),
            Some(wait),
        );
    }
    next.run(req).await
}

/// Bounds a request from its head to its answer. hyper's header timeout ends at the head, so a
/// body that trickles in (or never comes) would otherwise hold the connection and its task for
/// as long as the client likes. The 408 closes the connection: the rest of the body is not read.
/// (A WebSocket upgrade answers at once; the socket's life is not part of the request.)
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.server.request_timeout(), next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = (
                StatusCode::REQUEST_TIMEOUT,
                axum::Json(serde_json::json!({ "error": "request not completed in time" })),
            )
                .into_response();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// Counts requests by route template (never the raw path: labels stay bounded).
async fn record(State(_state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    metrics::http_request(&route, response.status().as_u16(), started.elapsed());
    response
}
