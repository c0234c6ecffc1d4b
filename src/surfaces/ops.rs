//! Operations surface (SPEC §8): `/health` and `/metrics`. `/metrics` may want a bearer token
//! (`metrics.token`) or live on its own address (`metrics.listen`, served by the server there
//! instead of here).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::metrics;
use crate::server::state::AppState;
use crate::surfaces::ErrorBody;

/// `/health`, and `/metrics` unless it has an address of its own.
pub fn routes(with_metrics: bool) -> axum::Router<AppState> {
    let router = axum::Router::new().route("/health", get(health));
    if with_metrics { router.merge(metrics_routes()) } else { router }
}

pub fn metrics_routes() -> axum::Router<AppState> {
    axum::Router::new().route("/metrics", get(prometheus))
}

/// This surface's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(health, prometheus))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// The server's health.
#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok`, `degraded` (the database or the broker is down) or `shutting_down`.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
    /// `switchboard`.
    #[schema(value_type = String)]
    service: &'static str,
    /// RFC 3339.
    timestamp: String,
    checks: Checks,
}

#[derive(Serialize, ToSchema)]
struct Checks {
    /// `ok` or `down`.
    #[schema(value_type = String)]
    database: &'static str,
    broker: BrokerCheck,
    /// Live connections on this node.
    connections: u64,
}

#[derive(Serialize, ToSchema)]
struct BrokerCheck {
    /// `memory`, `redis` or `nats`.
    #[schema(value_type = String)]
    backend: &'static str,
    /// `ok` or `down`.
    #[schema(value_type = String)]
    status: &'static str,
}

/// `{"status":"ok"|"degraded","service":"switchboard","timestamp","checks":{…}}`; 503 while
/// shutting down.
#[utoipa::path(
    get,
    path = "/health",
    tag = "Operations",
    responses(
        (status = 200, description = "Serving (`ok`, or `degraded` while the database or the broker is down).", body = Health),
        (status = 503, description = "Shutting down.", body = Health),
    ),
)]
async fn health(State(state): State<AppState>) -> Response {
    let database = matches!(tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await, Ok(Ok(())));
    let broker = state.realtime.broker_healthy();
    metrics::health(broker, database);
    let draining = state.shutdown.is_draining();
    let status = if draining {
        "shutting_down"
    } else if database && broker {
        "ok"
    } else {
        "degraded"
    };
    let timestamp =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let body = Health {
        status,
        service: "switchboard",
        timestamp,
        checks: Checks {
            database: if database { "ok" } else { "down" },
            broker: BrokerCheck { backend: state.realtime.broker_name(), status: if broker { "ok" } else { "down" } },
            connections: state.realtime.total_connections(),
        },
    };
    let code = if draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(body)).into_response()
}

/// Prometheus metrics (text exposition format 0.0.4). Served here unless `metrics.listen` gives
/// them an address of their own.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "Operations",
    responses(
        (status = 200, description = "The metrics.", content_type = "text/plain", body = String),
        (status = 401, description = "`metrics.token` is set and the request does not carry it.", body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 503, description = "The metrics recorder is unavailable.", body = ErrorBody),
    ),
    security((), ("metrics_token" = [])),
)]
async fn prometheus(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics.token {
        let given = crate::accounts::bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
        if !given.is_some_and(|g| crate::auth::secrets_equal(g, &token.0)) {
            let mut response =
                (StatusCode::UNAUTHORIZED, Json(json!({ "error": "metrics need the bearer token" }))).into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    metrics::health(state.realtime.broker_healthy(), true);
    match &state.metrics {
        Some(handle) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response(),
        None => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "metrics recorder unavailable" }))).into_response()
        }
    }
}
