//! All routes in one table, and the layers every request passes: metrics and JSON for the
//! framework's own rejections; admission (the overflow of a server at capacity, the per-address
//! rate); the request deadline. The refusals made here are answered in the format of the surface
//! the path belongs to ([`crate::surfaces::ErrorFormat`]).

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::{AppState, ClientAddr, OverCapacity, engineio};
use crate::metrics;
use crate::surfaces::docs::{EngineIoError, EngineIoQuery, WsRefusal};
use crate::surfaces::{
    ErrorBody, ErrorFormat, Refusal, accounts, dashboard, docs, hestia, notif, ops, pushalt, pusher,
};

/// The built-in routes, behind the embedding program's `program` routes when it has some: a
/// path the program routes is the program's, every other one falls through to the table.
pub fn build(state: AppState, program: Option<Router>) -> Router {
    let builtin = builtin(state.clone());
    match program {
        None => builtin,
        // `layer` wraps the routes the program router has now; the fallback set after it is
        // the built-in table, which has its own layers.
        Some(program) => program
            .layer(middleware::from_fn_with_state(state.clone(), deadline))
            .layer(middleware::from_fn_with_state(state.clone(), admit))
            .layer(middleware::from_fn(record_program))
            .fallback_service(builtin),
    }
}

fn builtin(state: AppState) -> Router {
    let metrics_here = state.config.metrics.listen.is_none();
    let socket_io = any(engineio_hestia);
    // The chat socket's CORS is the chat routes' `*` (SPEC §6); a program's setup keeps the
    // endpoint's own (the origins it allows, reflected).
    let socket_io =
        if state.engineio.chat_served { socket_io.layer(middleware::from_fn(hestia::cors::cors)) } else { socket_io };
    Router::new()
        .merge(pusher::routes())
        .merge(notif::routes())
        .merge(ops::routes(metrics_here))
        // The accounts routes are Hestia's too: CORS `*` as on the chat routes (SPEC §6).
        .merge(hestia::cors::with_cors(accounts::routes()))
        .merge(hestia::routes())
        .merge(dashboard::routes())
        .merge(pushalt::routes(state.clone()))
        .merge(docs::routes())
        .route("/ws", any(ws_entry))
        .route(engineio::WS_SLASH, any(engineio_pushalt))
        .route(engineio::SOCKET_IO, socket_io)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(state.clone(), admit))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// The part of the OpenAPI document for the routes this table serves itself: the Engine.IO
/// endpoints and `/ws`, which is Notif's WebSocket and Push-Alt's Engine.IO both.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(ws_entry, engineio_pushalt, engineio_hestia))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// `/ws`: Engine.IO (Push-Alt's Socket.IO) with `EIO=` in the query, else Notif's WebSocket.
///
/// Without `EIO`, a GET is Notif's WebSocket upgrade (`api_key` in the query or `x-app-key`,
/// `extra_events=1` for member and count events); with `EIO=4` it is Push-Alt's Engine.IO
/// endpoint, as `/ws/`.
#[utoipa::path(
    method(get, post),
    path = "/ws",
    tag = "Engine.IO",
    params(
        ("api_key" = Option<String>, Query, description = "Notif: the app's public key (or send `x-app-key`)."),
        ("extra_events" = Option<String>, Query, description = "Notif: `1` or `true` for member, count and watchlist events."),
        EngineIoQuery,
    ),
    request_body(content = String, content_type = "text/plain", description = "Engine.IO: packets of a polling POST."),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol (Notif's JSON frames, or Engine.IO packets with `EIO`)."),
        (status = 200, description = "Engine.IO polling: the handshake or queued packets (GET), `ok` (POST).", content_type = "text/plain", body = String),
        (status = 400, description = "Notif: not an upgrade; Engine.IO: a bad request.", body = WsRefusal),
        (status = 401, description = "Notif: no key, an unknown or inactive one, or an origin the app does not allow.", body = ErrorBody),
        (status = 403, description = "Engine.IO: an origin the server does not allow.", body = EngineIoError),
        (status = 405, description = "Notif: a method other than GET.", body = ErrorBody),
        (status = 413, description = "Engine.IO: a POST over `socketio.max_payload`; the session ends (no body)."),
    ),
    security((), ("notif_app_key" = [])),
)]
async fn ws_entry(State(state): State<AppState>, req: Request) -> Response {
    if engineio::is_engineio_ws(&req) {
        return engineio_pushalt(State(state), req).await;
    }
    if req.method() != axum::http::Method::GET && req.method() != axum::http::Method::HEAD {
        return method_not_allowed().await;
    }
    notif::ws::upgrade.call(req, state).await
}

/// `/ws/` and `/ws?EIO=…`.
///
/// Push-Alt's Socket.IO (v5 over Engine.IO v4): a GET without `sid` opens a session (polling,
/// or a WebSocket upgrade with `transport=websocket`); with `sid`, GET polls and POST sends.
#[utoipa::path(
    method(get, post),
    path = "/ws/",
    tag = "Engine.IO",
    params(EngineIoQuery),
    request_body(content = String, content_type = "text/plain", description = "Packets of a polling POST."),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol (Engine.IO packets)."),
        (status = 200, description = "The handshake or queued packets (GET), `ok` (POST).", content_type = "text/plain", body = String),
        (status = 400, description = "An unknown transport or session, a bad method or request, an unsupported protocol version.", body = EngineIoError),
        (status = 403, description = "An origin the server does not allow.", body = EngineIoError),
        (status = 413, description = "A POST over `socketio.max_payload`; the session ends (no body)."),
    ),
)]
async fn engineio_pushalt(State(state): State<AppState>, req: Request) -> Response {
    let client = ClientAddr::of(&req);
    state.engineio.pushalt.serve(Some(client), req).await
}

/// `/socket.io/`: the chat socket, or the program's setup.
///
/// The Socket.IO endpoint of socket.io-client's default path (Hestia's chat socket, or the
/// embedding program's): Engine.IO v4 as at `/ws/`.
#[utoipa::path(
    method(get, post),
    path = "/socket.io/",
    tag = "Engine.IO",
    params(EngineIoQuery),
    request_body(content = String, content_type = "text/plain", description = "Packets of a polling POST."),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol (Engine.IO packets)."),
        (status = 200, description = "The handshake or queued packets (GET), `ok` (POST).", content_type = "text/plain", body = String),
        (status = 400, description = "An unknown transport or session, a bad method or request, an unsupported protocol version.", body = EngineIoError),
        (status = 403, description = "An origin the server does not allow.", body = EngineIoError),
        (status = 413, description = "A POST over `socketio.max_payload`; the session ends (no body)."),
    ),
)]
async fn engineio_hestia(State(state): State<AppState>, req: Request) -> Response {
    let client = ClientAddr::of(&req);
    if state.engineio.chat_served {
        return hestia::socketio::serve(&state.engineio.hestia, Some(client), req).await;
    }
    state.engineio.hestia.serve(Some(client), req).await
}

/// `/metrics` alone, for its own listener (`metrics.listen`).
pub fn metrics_only(state: AppState) -> Router {
    Router::new()
        .merge(ops::metrics_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// In the format of the surface the path belongs to (Push-Alt's under `/api/`).
async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    ErrorFormat::of(&req).answer(&state, Refusal::NotFound).await
}

/// Every surface answers errors in JSON; axum's own 405 has an empty body (`Allow` is kept).
async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(serde_json::json!({ "error": "method not allowed" }))).into_response()
}

/// Probes are never limited: a load balancer checking `/health` must not be told 429.
fn is_probe(path: &str) -> bool {
    path == "/health" || path == "/metrics"
}

/// Whether a request is served at all, before any surface works on it: a connection accepted
/// over capacity gets 503, and a client over `server.requests_per_ip_per_second` (SPEC §10)
/// 429, each in the format of the surface the path belongs to; probes never are refused.
async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_probe(req.uri().path()) {
        return next.run(req).await;
    }
    if req.extensions().get::<OverCapacity>().is_some() {
        return ErrorFormat::of(&req).answer(&state, Refusal::AtCapacity).await;
    }
    let rate = state.config.server.requests_per_ip_per_second;
    if rate > 0 {
        let client = ClientAddr::of(&req);
        if let Err(wait) = state.ip_limits.per_second(&crate::ratelimit::address_key(client), rate) {
            crate::audit::refused(
                crate::audit::Refusal::RateLimited,
                client,
                req.uri().path(),
                &"requests per address",
            );
            return ErrorFormat::of(&req).answer(&state, Refusal::RateLimited { retry_after_secs: wait }).await;
        }
    }
    next.run(req).await
}

/// Bounds a request from its head to its answer. hyper's header timeout ends at the head, so a
/// body that trickles in (or never comes) would otherwise hold the connection and its task for
/// as long as the client likes. The 408 closes the connection: the rest of the body is not read.
/// (A WebSocket upgrade answers at once; the socket's life is not part of the request.)
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // A long-poll GET is held until a packet or the next ping; the heartbeat bounds it.
    if engineio::is_long_poll(&req) {
        return next.run(req).await;
    }
    // Read now: the request is gone by the time the deadline answers.
    let format = ErrorFormat::of(&req);
    match tokio::time::timeout(state.config.server.request_timeout(), next.run(req)).await {
        Ok(response) => response,
        Err(_) => format.answer(&state, Refusal::Deadline).await,
    }
}

/// The framework's own rejections (a path that does not decode, an extractor's complaint) come
/// as plain text; every surface here answers errors as `{"error": …}`, so they are rewritten,
/// keeping status and headers.
async fn json_errors(response: Response) -> Response {
    let is_error = response.status().is_client_error() || response.status().is_server_error();
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !is_error || !is_text {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).trim().to_owned(),
        _ => parts.status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let body = serde_json::to_vec(&serde_json::json!({ "error": text })).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The outermost layer: counts requests by route template (never the raw path: labels stay
/// bounded) and gives the framework's text rejections the JSON form of every other error. One
/// layer for both, because each layer costs every request (and every WebSocket handshake) a
/// boxed future.
async fn record(State(_state): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_of(&req);
    let started = Instant::now();
    let response = json_errors(next.run(req).await).await;
    metrics::http_request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// [`record`] for the embedding program's routes: counted alike, but their answers are the
/// program's own, never rewritten.
async fn record_program(req: Request, next: Next) -> Response {
    let route = route_of(&req);
    let started = Instant::now();
    let response = next.run(req).await;
    metrics::http_request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// The route template (a bounded label), never the raw path.
fn route_of(req: &Request) -> String {
    req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}
