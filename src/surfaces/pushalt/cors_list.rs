//! `/api/cors` (admins only): the stored part of the global origin list, as Push-Alt's
//! `cors_entries` (`{id, url, created_at, updated_at}`). An entry is an `http://` or `https://`
//! origin, host possibly `*.domain`, with an optional port and no path. A change is in force on
//! this node before it is answered, on others at their next refresh (`server.app_refresh_ms`).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::Admin;
use super::input::{self, IdPath, json};
use super::schema::*;
use super::{ApiError, limit, ok};
use crate::apps::OriginPattern;
use crate::origins::MAX_STORED;
use crate::server::state::AppState;
use crate::store::{self, cors::CorsOriginRecord};

fn json_of(r: &CorsOriginRecord) -> Value {
    json!({
        "id": r.id,
        "url": r.origin,
        "created_at": input::text_time(r.created_at),
        "updated_at": input::text_time(r.updated_at),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CorsUrl)]
pub struct UrlBody {
    url: Option<String>,
}

/// The entry as stored (lowercased, no trailing slash), or 400 "Invalid URL".
async fn origin_of(headers: &HeaderMap, body: Body) -> Result<String, ApiError> {
    let b: UrlBody = json(headers, body, limit::SMALL).await?;
    let invalid = || ApiError::bad("Invalid URL");
    let url = b.url.ok_or_else(invalid)?;
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.len() > 255 {
        return Err(invalid());
    }
    OriginPattern::parse(url).map_err(|_| invalid())?;
    Ok(lower.trim_end_matches('/').to_owned())
}

/// Puts the change that made `revision` in force on this node before it is answered.
async fn in_force(state: &AppState, revision: i64) -> Result<(), ApiError> {
    state.origins.catch_up(revision).await.map_err(ApiError::internal)
}

fn duplicate() -> ApiError {
    ApiError::Conflict("URL already exists".into())
}

/// The allowed origins (admin).
#[utoipa::path(
    get,
    path = "/api/cors",
    tag = "Push-Alt",
    responses(
        (status = 200, description = "The entries.", body = CorsListAnswer),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.store.cors_origins().await?.iter().map(json_of).collect();
    Ok(ok(json!({ "data": data })))
}

/// Allows an origin (admin).
#[utoipa::path(
    post,
    path = "/api/cors",
    tag = "Push-Alt",
    request_body(content = UrlBody),
    responses(
        (status = 200, description = "Added.", body = CorsAnswer),
        (status = 400, description = "An invalid URL, or the list is full.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 409, description = "Taken already.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Admin(_): Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let origin = origin_of(&headers, body).await?;
    let (record, revision) = match state.store.insert_cors_origin(&origin, MAX_STORED).await {
        Ok(Some(inserted)) => inserted,
        Ok(None) => return Err(ApiError::bad(format!("The CORS list holds at most {MAX_STORED} entries"))),
        Err(store::Error::Conflict(_)) => return Err(duplicate()),
        Err(e) => return Err(e.into()),
    };
    in_force(&state, revision).await?;
    Ok(ok(json!({ "data": json_of(&record), "message": "CORS entry added successfully" })))
}

/// Changes an allowed origin (admin).
#[utoipa::path(
    put,
    path = "/api/cors/{id}",
    tag = "Push-Alt",
    params(("id" = i64, Path, description = "The entry's id.")),
    request_body(content = UrlBody),
    responses(
        (status = 200, description = "Changed.", body = PushAltDone),
        (status = 400, description = "An invalid id or URL.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
        (status = 409, description = "Taken already.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    Admin(_): Admin,
    IdPath(id): IdPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let origin = origin_of(&headers, body).await?;
    let revision = match state.store.update_cors_origin(id, &origin).await {
        Ok(revision) => revision,
        Err(store::Error::NotFound) => return Err(not_found()),
        Err(store::Error::Conflict(_)) => return Err(duplicate()),
        Err(e) => return Err(e.into()),
    };
    in_force(&state, revision).await?;
    Ok(ok(json!({ "message": "CORS entry updated successfully" })))
}

/// Removes an allowed origin (admin).
#[utoipa::path(
    delete,
    path = "/api/cors/{id}",
    tag = "Push-Alt",
    params(("id" = i64, Path, description = "The entry's id.")),
    responses(
        (status = 200, description = "Removed.", body = PushAltDone),
        (status = 400, description = "An invalid id.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Admin(_): Admin,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let revision = match state.store.delete_cors_origin(id).await {
        Ok(revision) => revision,
        Err(store::Error::NotFound) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    in_force(&state, revision).await?;
    Ok(ok(json!({ "message": "CORS entry deleted successfully" })))
}

fn not_found() -> ApiError {
    ApiError::not_found("CORS entry not found")
}
