//! `/api/setting/*` (admins only): name/value settings. Names and values are 1–255 characters;
//! at most [`MAX_SETTINGS`] are kept. `update_form_setting` takes the web app's multipart form
//! (also a URL-encoded form or a JSON object of strings), one field per setting.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, State};
use axum::http::{HeaderMap, Request, header};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value, json};

use super::caller::Admin;
use super::input::{self, NamePath, json};
use super::schema::*;
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

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SettingBody)]
pub struct OneBody {
    name: Option<String>,
    value: Option<String>,
}

/// Sets one setting (admin).
#[utoipa::path(
    post,
    path = "/api/setting/add_or_update",
    tag = "Push-Alt",
    request_body(content = OneBody),
    responses(
        (status = 200, description = "Set.", body = PushAltDone),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
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

/// Sets several settings from a form (admin): JSON `{name: value}` or `multipart/form-data`.
#[utoipa::path(
    post,
    path = "/api/setting/update_form_setting",
    tag = "Push-Alt",
    request_body(content((SettingsForm = "application/json"), (SettingsForm = "multipart/form-data"))),
    responses(
        (status = 200, description = "Set.", body = PushAltDone),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
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
            let form: JsonForm = input::parse(&bytes)?;
            if form.not_text {
                return Err(ApiError::bad("Setting values must be strings"));
            }
            form.fields
        }
    };
    if fields.is_empty() {
        return Err(ApiError::bad("No settings provided"));
    }
    if fields.len() > MAX_FIELDS {
        return Err(too_many_fields());
    }
    let pairs = fields.into_iter().map(|(n, v)| checked(n, v)).collect::<Result<Vec<_>, _>>()?;
    put(&state, &pairs).await?;
    Ok(ok(json!({ "message": "Settings updated successfully" })))
}

fn too_many_fields() -> ApiError {
    ApiError::bad(format!("At most {MAX_FIELDS} settings per form"))
}

/// The settings form as a JSON object of strings, read straight into its pairs: a value that is
/// not a string is noted and skipped unbuilt, and past [`MAX_FIELDS`] fields one more is kept
/// (to be refused) and the rest skipped.
struct JsonForm {
    fields: Vec<(String, String)>,
    not_text: bool,
}

impl<'de> Deserialize<'de> for JsonForm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FormVisitor;
        impl<'de> Visitor<'de> for FormVisitor {
            type Value = JsonForm;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of setting names and string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonForm, A::Error> {
                let mut form = JsonForm { fields: Vec::new(), not_text: false };
                while let Some(name) = map.next_key::<String>()? {
                    if form.fields.len() > MAX_FIELDS {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    match map.next_value::<FieldValue>()? {
                        FieldValue::Text(value) => form.fields.push((name, value)),
                        FieldValue::Other => form.not_text = true,
                    }
                }
                Ok(form)
            }
        }
        d.deserialize_map(FormVisitor)
    }
}

/// One value of [`JsonForm`]: a string, or anything else (skipped without being built).
enum FieldValue {
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = FieldValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a setting value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
                Ok(FieldValue::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<FieldValue, E> {
                Ok(FieldValue::Text(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<FieldValue, E> {
                Ok(FieldValue::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<FieldValue, E> {
                Ok(FieldValue::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<FieldValue, E> {
                Ok(FieldValue::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<FieldValue, E> {
                Ok(FieldValue::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<FieldValue, E> {
                Ok(FieldValue::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<FieldValue, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| FieldValue::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldValue, A::Error> {
                IgnoredAny.visit_map(map).map(|_| FieldValue::Other)
            }
        }
        d.deserialize_any(ValueVisitor)
    }
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
            return Err(too_many_fields());
        }
        let name = field.name().unwrap_or_default().to_owned();
        let value = field.text().await.map_err(bad)?;
        fields.push((name, value));
    }
    Ok(fields)
}

/// One setting (admin).
#[utoipa::path(
    get,
    path = "/api/setting/{name}/view",
    tag = "Push-Alt",
    params(("name" = String, Path, description = "The setting's name.")),
    responses(
        (status = 200, description = "The setting.", body = SettingAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn view(
    State(state): State<AppState>,
    Admin(_): Admin,
    NamePath(name): NamePath,
) -> Result<Json<Value>, ApiError> {
    one(&state, &name, "Setting not found").await
}

/// The `installed_at` setting (admin).
#[utoipa::path(
    get,
    path = "/api/setting/last_installed",
    tag = "Push-Alt",
    responses(
        (status = 200, description = "The setting.", body = SettingAnswer),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
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

/// Every setting (admin).
#[utoipa::path(
    get,
    path = "/api/setting/settings",
    tag = "Push-Alt",
    responses(
        (status = 200, description = "The settings.", body = SettingsAnswer),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.store.settings().await?.iter().map(json_of).collect();
    Ok(ok(json!({ "data": data })))
}

/// Every setting as `{name: value}`.
#[utoipa::path(
    get,
    path = "/api/setting/gets_form_setting",
    tag = "Push-Alt",
    responses(
        (status = 200, description = "The settings.", body = SettingsFormAnswer),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn form(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<Value>, ApiError> {
    let data: Map<String, Value> =
        state.store.settings().await?.into_iter().map(|r| (r.name, Value::String(r.value))).collect();
    Ok(ok(json!({ "data": data })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(raw: &str) -> JsonForm {
        serde_json::from_str(raw).unwrap()
    }

    #[test]
    fn a_json_form_is_read_into_its_pairs_and_nothing_else_is_built() {
        let f = form(r#"{"a": "1", "b": "two"}"#);
        assert_eq!(f.fields, vec![("a".into(), "1".into()), ("b".into(), "two".into())]);
        assert!(!f.not_text);
        for raw in [r#"{"a": 5}"#, r#"{"a": null}"#, r#"{"a": [[[["deep"]]]]}"#, r#"{"a": {"b": "c"}}"#] {
            let f = form(raw);
            assert!(f.not_text && f.fields.is_empty(), "{raw}");
        }
        let many: Vec<String> = (0..1000).map(|i| format!("\"k{i}\": \"v\"")).collect();
        let f = form(&format!("{{{}}}", many.join(",")));
        assert_eq!(f.fields.len(), MAX_FIELDS + 1, "one past the cap is kept, to be refused");
        assert!(serde_json::from_str::<JsonForm>("[\"a\"]").is_err());
        assert!(serde_json::from_str::<JsonForm>("\"a\"").is_err());
    }
}
