//! `/api/setting/*` (admins only): name/value settings. Names and values are 1–255 characters;
//! at most [`MAX_SETTINGS`] are kept. `update_form_setting` takes the web app's multipart form
//! (also a URL-encoded form or a JSON object of strings), one field per setting.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, State};
use axum::http::{HeaderMap, Request, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::caller::Admin;
use super::input::{self, NamePath, json};
use super::{ApiError, limit, ok};
use crate::server::state::AppState;
use crate::store::{self, settings::SettingRecord};
use crate::surfaces::read_body;

/// Most settings kept.
pub const MAX_SETTINGS: i64 = 1000;
/// Most fields one form may set.
const MAX_FIELDS: usize = 100;
const MAX_CHARS: usize = 255;

fn json_of(r: &SettingRecord) -> Value {
    json!({
        "name": r.name,
        "value": r.value,
        "created_at": input::iso_time(r.created_at),
        "updated_at": input::iso_time(r.updated_at),
    })
}

/// A name and value within their lengths, or 400 naming the problem.
fn checked(name: String, value: String) -> Result<(String, String), ApiError> {
    if name.is_empty() || value.is_empty() {
        return Err(ApiError::bad("Name and value are required"));
    }
    if name.chars().count() > MAX_CHARS || value.chars().count() > MAX_CHARS {
        return Err(ApiError::bad(format!("Setting names and values are at most {MAX_CHARS} characters")));
    }
    Ok((name, value))
}

async fn put(state: &AppState, pairs: &[(String, String)]) -> Result<(), ApiError> {
    if state.store.put_settings(pairs, MAX_SETTINGS).await? {
        Ok(())
    } else {
        Err(ApiError::bad(format!("At most {MAX_SETTINGS} settings are kept")))
    }
}

#[derive(Deserialize)]
pub struct OneBody {
    name: Option<String>,
    value: Option<String>,
}

pub async fn put_one(
    State(state): State<AppState>,
    Admin(_): Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: OneBody = json(&headers, body, limit::SMALL).await?;
    let pair = checked(b.name.unwrap_or_default(), b.value.unwrap_or_default())?;
    put(&state, &[pair]).await?;
    Ok(ok(json!({ "message": "Setting updated successfully" })))
}

pub async fn put_form(
    State(state): State<AppState>,
    Admin(_): Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(&headers, body, limit::FORM).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let fields = match media.as_str() {
        "multipart/form-data" => multipart_fields(content_type, bytes).await?,
        "application/x-www-form-urlencoded" => form_urlencoded::parse(&bytes).into_owned().collect(),
        _ => {
            let object: Map<String, Value> = input::parse(&bytes)?;
            object
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    _ => Err(ApiError::bad("Setting values must be strings")),
                })
                .collect::<Result<_, _>>()?
        }
    };
    if fields.is_empty() {
        return Err(ApiError::bad("No settings provided"));
    }
    if fields.len() > MAX_FIELDS {
        return Err(ApiError::bad(format!("At most {MAX_FIELDS} settings per form")));
    }
    let pairs = fields.into_iter().map(|(n, v)| checked(n, v)).collect::<Result<Vec<_>, _>>()?;
    put(&state, &pairs).await?;
    Ok(ok(json!({ "message": "Settings updated successfully" })))
}

/// The text fields of a multipart body already read (within [`limit::FORM`]).
async fn multipart_fields(content_type: &str, bytes: axum::body::Bytes) -> Result<Vec<(String, String)>, ApiError> {
    let bad = |e: axum::extract::multipart::MultipartError| ApiError::bad(format!("Invalid form: {}", e.body_text()));
    let req = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .map_err(|_| ApiError::bad("Invalid form"))?;
    let mut form = Multipart::from_request(req, &()).await.map_err(|_| ApiError::bad("Invalid form: no boundary"))?;
    let mut fields = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        if fields.len() >= MAX_FIELDS {
            return Err(ApiError::bad(format!("At most {MAX_FIELDS} settings per form")));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let value = field.text().await.map_err(bad)?;
        fields.push((name, value));
    }
    Ok(fields)
}

pub async fn view(
    State(state): State<AppState>,
    Admin(_): Admin,
    NamePath(name): NamePath,
) -> Result<Json<Value>, ApiError> {
    one(&state, &name, "Setting not found").await
}

pub async fn last_installed(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<Value>, ApiError> {
    one(&state, "installed_at", "Installed_at setting not found").await
}

async fn one(state: &AppState, name: &str, missing: &str) -> Result<Json<Value>, ApiError> {
    match state.store.setting(name).await {
        Ok(r) => Ok(ok(json!({ "data": json_of(&r) }))),
        Err(store::Error::NotFound) => Err(ApiError::not_found(missing)),
        Err(e) => Err(e.into()),
    }
}

pub async fn list(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.store.settings().await?.iter().map(json_of).collect();
    Ok(ok(json!({ "data": data })))
}

/// Every setting as `{name: value}`.
pub async fn form(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<Value>, ApiError> {
    let data: Map<String, Value> =
        state.store.settings().await?.into_iter().map(|r| (r.name, Value::String(r.value))).collect();
    Ok(ok(json!({ "data": data })))
}
