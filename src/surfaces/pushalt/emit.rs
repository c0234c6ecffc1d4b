//! `POST /api/message/emit {app_id, app_key, channel_name, body}` (SPEC §5): publishes the event
//! `message` with `body` as its data on channel `channel_name` of the app, through the core, so
//! every subscriber of that channel gets it once in its own form (Pusher clients `data` as a
//! JSON string, Notif clients the value, Socket.IO clients at `/ws` the value as
//! `workspace:<n>:<channel>:message`). Push-Alt let anyone emit; here `app_key` (the app secret)
//! or a request signed the Pusher way over this path is required, unless the app's
//! `legacy_open_emit` switch is on.
//!
//! The app is named inside the body, so an unsigned emit is read before anything about it is
//! known: it is read up to [`UNSIGNED_LIMIT`], a bound of the server's own (sized by the default
//! message limit), never by what some app's owner chose. A signed emit names its app and proves
//! its secret in the query, checked before the read, so it is read up to that app's limit.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::credentials::{self, Proof};
use super::error::text;
use super::input::{self, Text};
use super::schema::*;
use super::{ApiError, ok};
use crate::core::{ChannelName, Data, Event};
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::surfaces::BodyError;
use crate::surfaces::{body_limit, read_body};
use crate::{apps, metrics};

/// The event name an emit publishes (Push-Alt's `…:message`).
pub const EVENT: &str = "message";

/// The most an unsigned emit's body is read, in bytes: what data of the default message limit
/// can take (JSON escapes, the envelope). Larger bodies must be signed.
pub const UNSIGNED_LIMIT: usize = body_limit::event(apps::DEFAULT_MAX_MESSAGE_BYTES);

#[derive(Deserialize)]
struct EmitBody<'a> {
    app_id: Option<Text>,
    app_key: Option<String>,
    channel_name: Option<String>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
}

/// Emits a message to a channel's Socket.IO subscribers.
#[utoipa::path(
    post,
    path = "/api/message/emit",
    tag = "Push-Alt",
    request_body(content = EmitFields),
    responses(
        (status = 200, description = "Emitted.", body = PushAltDone),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "A deactivated workspace, or wrong credentials.", body = PushAltFailure),
        (status = 404, description = "No such workspace.", body = PushAltFailure),
        (status = 413, description = "The message is over the app's limit, or the body over the route's.", body = PushAltFailure),
        (status = 429, description = "Too many requests.", body = PushAltFailure, headers(("Retry-After" = u64))),
        (status = 503, description = "The broker is down: nothing was emitted.", body = PushAltFailure, headers(("Retry-After" = u64))),
    ),
    security(("pushalt_app_key" = []), ("pusher_signature" = [])),
)]
pub async fn emit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let signed = credentials::signed_head(&state, client, &method, &uri)?;
    let bytes = match &signed {
        Some(s) => read_body(&headers, body, body_limit::event(s.app.limits().max_message_bytes)).await?,
        None => read_body(&headers, body, UNSIGNED_LIMIT).await.map_err(|e| match e {
            BodyError::TooLarge(_) => ApiError::UnsignedTooLarge(format!(
                "Request body is too large: an emit without a Pusher signature is read up to {UNSIGNED_LIMIT} \
                 bytes; sign larger ones"
            )),
            e => e.into(),
        })?,
    };
    let b: EmitBody<'_> = input::parse(&bytes)?;
    let (Some(Text(app_id)), Some(channel_name), Some(data)) = (b.app_id, b.channel_name, b.body.filter(|d| !falsy(d)))
    else {
        return Err(ApiError::bad("app_id, channel_name, and body are required"));
    };
    let app = state.apps.by_id(&app_id).ok_or_else(|| ApiError::not_found(text::WORKSPACE_NOT_FOUND))?;
    let proof = Proof::of(signed.as_ref(), b.app_key.as_deref());
    match proof {
        Proof::Missing if app.switches().legacy_open_emit => {}
        Proof::Missing => return Err(ApiError::unauthorized("app_key required: send the workspace app_key")),
        _ => credentials::verify(&app, &proof, &bytes, client)?,
    }
    if !app.enabled {
        return Err(ApiError::unauthorized(text::WORKSPACE_DEACTIVATED));
    }
    let channel = ChannelName::parse(&channel_name).map_err(|e| ApiError::bad(format!("Invalid channel_name: {e}")))?;
    let data = Data::json_from_raw(data.get());
    let (Data::Json(compact) | Data::Text(compact)) = &data;
    let (size, limit) = (compact.len(), app.limits().max_message_bytes);
    if size > limit {
        return Err(ApiError::TooLarge(format!("body is {size} bytes; the limit is {limit}")));
    }
    state.api_limits.per_second(&*app.id, app.limits().api_requests_per_second).map_err(ApiError::RateLimited)?;
    if !state.realtime.broker_healthy() {
        return Err(broker_down());
    }
    let event = Event { channel: Some(channel), name: EVENT.into(), data, user_id: None, except: None };
    state.realtime.publish(&app.id, event).map_err(|_| broker_down())?;
    metrics::published("http");
    Ok(ok(json!({ "message": "Message emitted to connected clients" })))
}

/// SPEC §9: nothing was published, so a retry cannot duplicate.
fn broker_down() -> ApiError {
    ApiError::Unavailable("Broker unavailable; nothing was emitted, retry later".into())
}

/// Whether JavaScript took this JSON value for false (`!body` in Push-Alt): `null`, `false`,
/// `0`, `""`. Such a body counted as missing there, and does here.
fn falsy(raw: &RawValue) -> bool {
    match raw.get().trim() {
        "null" | "false" | "\"\"" => true,
        n if n.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => n.parse::<f64>().is_ok_and(|v| v == 0.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falsy_bodies_are_javascripts() {
        for raw in ["null", "false", "0", "-0", "0.0", "0e5", "\"\""] {
            assert!(falsy(&RawValue::from_string(raw.into()).unwrap()), "{raw}");
        }
        for raw in ["true", "1", "\"0\"", "\" \"", "{}", "[]", "\"hi\"", "-1.5"] {
            assert!(!falsy(&RawValue::from_string(raw.into()).unwrap()), "{raw}");
        }
    }
}
