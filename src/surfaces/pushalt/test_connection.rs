//! `POST /api/test-connection` (admins only): what Push-Alt's README promised, a database and a
//! broker round trip, timed (`data: {database_ms, broker_ms}`); 503 when either fails, naming
//! which (the cause is logged, never shown). Push-Alt's code kept saved "test connection"
//! presets there instead; those routes answer 404 saying so.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::caller::Admin;
use super::schema::*;
use super::{ApiError, ok};
use crate::probe;
use crate::server::state::AppState;

/// How long each round trip may take before it counts as failed.
const WAIT: Duration = Duration::from_secs(5);

/// Times a database and a broker round trip (admin).
#[utoipa::path(
    post,
    path = "/api/test-connection",
    tag = "Push-Alt",
    responses(
        (status = 200, description = "Both answered.", body = TestConnectionAnswer),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 503, description = "A round trip failed.", body = PushAltFailure, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = [])),
)]
pub async fn run(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<Value>, ApiError> {
    let database = probe::database(&state.store, WAIT).await.map_err(|e| failed("Database", &e))?;
    let broker = probe::broker(&state.realtime, WAIT).await.map_err(|e| failed("Broker", &e))?;
    Ok(ok(json!({
        "message": "Database and broker answered",
        "data": { "database_ms": millis(database), "broker_ms": millis(broker) },
    })))
}

/// Logs why a round trip failed and answers 503 naming only the dependency: a database error's
/// text can carry hosts, users and SQL.
fn failed(dependency: &'static str, err: &probe::ProbeError) -> ApiError {
    tracing::warn!(dependency, error = %err, "test-connection round trip failed");
    ApiError::Unavailable(format!("{dependency} round trip failed"))
}

/// Milliseconds with microsecond precision.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// The preset routes Push-Alt's code had under `/api/test-connection/`.
#[utoipa::path(
    method(get,post,put,patch,delete),
    path = "/api/test-connection/{rest}",
    tag = "Push-Alt",
    params(("rest" = String, Path, description = "Anything (more segments too).")),
    responses(
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 404, description = "Retired.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn retired(Admin(_): Admin) -> ApiError {
    ApiError::not_found(
        "Saved test connections are not kept; POST /api/test-connection times a database and a broker round trip",
    )
}
