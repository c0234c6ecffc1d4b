//! Operations surface (SPEC §8): `/health` and `/metrics`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::metrics;
use crate::server::AppState;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/health", get(health)).route("/metrics", get(prometheus))
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

async fn prometheus(State(state): State<AppState>) -> Response {
    metrics::health(state.realtime.broker_healthy(), true);
    match &state.metrics {
        Some(handle) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable").into_response(),
    }
}
