//! Operations surface (SPEC §8): `/health` and `/metrics`. `/metrics` may want a bearer token
//! (`metrics.token`) or live on its own address (`metrics.listen`, served by the server there
//! instead of here).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::metrics;
use crate::server::state::AppState;

/// `/health`, and `/metrics` unless it has an address of its own.
pub fn routes(with_metrics: bool) -> axum::Router<AppState> {
    let router = axum::Router::new().route("/health", get(health));
    if with_metrics { router.merge(metrics_routes()) } else { router }
}

pub fn metrics_routes() -> axum::Router<AppState> {
    axum::Router::new().route("/metrics", get(prometheus))
}

/// `{"status":"ok"|"degraded","service":"switchboard","timestamp","checks":{…}}`; 503 while
/// shutting down.
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
    let body = json!({
        "status": status,
        "service": "switchboard",
        "timestamp": timestamp,
        "checks": {
            "database": if database { "ok" } else { "down" },
            "broker": { "backend": state.realtime.broker_name(), "status": if broker { "ok" } else { "down" } },
            "connections": state.realtime.total_connections(),
        },
    });
    let code = if draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(body)).into_response()
}

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
