//! `POST /api/broadcast` (SPEC §4): publish `{channel, event, data}` for one app, authenticated by
//! the app secret in `x-app-key` or by a Pusher signature. Notif accepted the public key browsers
//! hold, so any page could publish; that stays possible only behind an app's
//! `legacy_key_publish` switch, which is warned about at start.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::error::ApiError;
use super::ws::KEY_HEADER;
use crate::apps::{App, AppCache};
use crate::audit;
use crate::auth::pusher::{self as sig, SignedHead};
use crate::auth::{secrets_equal, unix_now};
use crate::core::{ChannelName, Data, Event, MAX_EVENT_NAME, fits_chars};
use crate::metrics;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::surfaces::{ErrorBody, body_limit, read_body};

/// A validated broadcast.
struct Broadcast {
    channel: ChannelName,
    event: Arc<str>,
    data: Data,
}

/// The answer to a broadcast.
#[derive(Serialize, ToSchema)]
pub struct BroadcastAnswer {
    /// `true`.
    ok: bool,
    channel: String,
    event: String,
    /// Connections on this node subscribed to the channel when it was published.
    subscriber_count: usize,
}

/// An event to publish.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the body `RawBroadcast` reads field by field.
pub struct BroadcastBody {
    /// A channel name (SPEC §1).
    channel: String,
    /// 1–200 characters, not starting with `pusher:` or `pusher_internal:`.
    event: String,
    /// Any JSON value (null when missing); at most the app's `max_message_bytes`.
    data: Option<serde_json::Value>,
}

/// `POST /api/broadcast` → `{"ok":true,"channel","event","subscriber_count"}`.
#[utoipa::path(
    post,
    path = "/api/broadcast",
    tag = "Notif",
    params(
        ("auth_key" = Option<String>, Query, description = "With a Pusher-style signed query instead of `x-app-key`: the app's key (and `auth_timestamp`, `auth_version`, `body_md5`, `auth_signature`)."),
    ),
    request_body(content = BroadcastBody),
    responses(
        (status = 200, description = "Published.", body = BroadcastAnswer),
        (status = 400, description = "A field is missing or invalid.", body = ErrorBody),
        (status = 401, description = "No valid `x-app-key` or signature.", body = ErrorBody),
        (status = 413, description = "Data over the app's `max_message_bytes`, or a body over the route's limit.", body = ErrorBody),
        (status = 429, description = "Over the app's `api_requests_per_second`.", body = ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "The broker is down: nothing was published.", body = ErrorBody),
    ),
    security(("notif_app_key" = []), ("pusher_signature" = [])),
)]
pub async fn broadcast(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BroadcastAnswer>, ApiError> {
    // Credentials first: nobody gets the body read without them.
    let (app, signed) = authenticate(&state, &method, &uri, &headers).inspect_err(|e| {
        let kind =
            if matches!(e, ApiError::Signature(_)) { audit::Refusal::BadSignature } else { audit::Refusal::UnknownKey };
        audit::refused(kind, client, "/api/broadcast", e);
    })?;
    state.api_limits.per_second(&*app.id, app.limits().api_requests_per_second).map_err(ApiError::RateLimited)?;
    let body = read_body(&headers, body, body_limit::event(app.limits().max_message_bytes)).await?;
    if let Some(signed) = signed {
        signed.verify_body(&body).inspect_err(|e| audit::refused(audit::Refusal::BadSignature, client, &app.id, e))?;
    }
    let b = parse(&body, &app)?;
    if !state.realtime.broker_healthy() {
        return Err(ApiError::BrokerDown);
    }
    let event =
        Event { channel: Some(b.channel.clone()), name: b.event.clone(), data: b.data, user_id: None, except: None };
    state.realtime.publish(&app.id, event).map_err(|_| ApiError::BrokerDown)?;
    metrics::published("http");
    let subscriber_count = state.realtime.channel_stats(&app.id, &b.channel).subscription_count;
    Ok(Json(BroadcastAnswer { ok: true, channel: b.channel.to_string(), event: b.event.to_string(), subscriber_count }))
}

/// A Pusher-signed request (its query names `auth_key`) is checked as the Pusher API checks it
/// (the body's MD5 once it is read: the [`SignedHead`] comes back for that); otherwise
/// `x-app-key` must be an app's secret, or its key when `legacy_key_publish` is on.
fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Arc<App>, Option<SignedHead>), ApiError> {
    let query = uri.query().unwrap_or_default();
    let signer = sig::query_pairs(query).into_iter().find(|(k, _)| k.eq_ignore_ascii_case("auth_key")).map(|(_, v)| v);
    if let Some(key) = signer {
        let app = state.apps.by_key(&key).ok_or(ApiError::InactiveSigner)?;
        let signed = sig::verify_head(&app.key, &app.secret.0, method.as_str(), uri.path(), query, unix_now())?;
        return if app.enabled { Ok((app, Some(signed))) } else { Err(ApiError::InactiveSigner) };
    }
    let given = headers
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingAppKey)?;
    let app = match by_secret(&state.apps, given)? {
        Some(app) if app.enabled => app,
        Some(_) => return Err(ApiError::InactiveAppKey),
        None => match state.apps.by_key(given) {
            Some(app) if !app.enabled => return Err(ApiError::InactiveAppKey),
            Some(app) if app.switches().legacy_key_publish => app,
            Some(_) => return Err(ApiError::PublicKey),
            None => return Err(ApiError::InactiveAppKey),
        },
    };
    Ok((app, None))
}

/// The app whose secret is `given`. Every secret is compared (constant time each, no early exit),
/// so timing does not tell which app matched. Apps imported from Notif may share one secret;
/// then only an enabled one that is alone in holding it is chosen.
fn by_secret(apps: &AppCache, given: &str) -> Result<Option<Arc<App>>, ApiError> {
    let matches: Vec<Arc<App>> = apps.all().into_iter().filter(|a| secrets_equal(&a.secret.0, given)).collect();
    if matches.len() <= 1 {
        return Ok(matches.into_iter().next());
    }
    let mut enabled = matches.into_iter().filter(|a| a.enabled);
    match (enabled.next(), enabled.next()) {
        (Some(app), None) => Ok(Some(app)),
        (None, _) => Err(ApiError::InactiveAppKey),
        (Some(_), Some(_)) => Err(ApiError::AmbiguousSecret),
    }
}

/// `{channel, event, data}`, each field kept raw until read (other fields are skipped without
/// building anything).
#[derive(Deserialize)]
struct RawBroadcast<'a> {
    #[serde(borrow)]
    channel: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

fn parse(body: &[u8], app: &App) -> Result<Broadcast, ApiError> {
    let raw: RawBroadcast<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::bad("Body must be a JSON object {channel, event, data}")
        } else {
            ApiError::bad(format!("Invalid JSON body: {e}"))
        }
    })?;
    let string = |raw: &RawValue| serde_json::from_str::<String>(raw.get()).ok();
    let channel = match raw.channel {
        Some(c) => match string(c) {
            Some(c) => ChannelName::parse_for_publish(&c).map_err(|e| {
                let shown: String = c.chars().take(64).collect();
                ApiError::bad(format!("Invalid channel {shown:?}: {e}"))
            })?,
            None => return Err(ApiError::bad("channel must be a string")),
        },
        None => return Err(ApiError::bad("channel is required")),
    };
    let event = match raw.event.map(|e| string(e).ok_or(())) {
        Some(Ok(e)) if e.is_empty() || !fits_chars(&e, MAX_EVENT_NAME) => {
            return Err(ApiError::bad("event must be 1–200 characters"));
        }
        // Publishing these would let a backend forge protocol frames (member events and the like).
        Some(Ok(e)) if e.starts_with("pusher:") || e.starts_with("pusher_internal:") => {
            return Err(ApiError::bad("event names starting with pusher: or pusher_internal: are reserved"));
        }
        Some(Ok(e)) => Arc::from(e.as_str()),
        Some(Err(())) => return Err(ApiError::bad("event must be a string")),
        None => return Err(ApiError::bad("event is required")),
    };
    // Any JSON value, as Notif took it; a missing `data` is null.
    let data = raw.data.map_or(Data::Json("null".into()), |d| Data::json_from_raw(d.get()));
    let size = match &data {
        Data::Text(s) | Data::Json(s) => s.len(),
    };
    let limit = app.limits().max_message_bytes;
    if size > limit {
        return Err(ApiError::TooLarge(format!("Event data is {size} bytes; the limit is {limit}")));
    }
    Ok(Broadcast { channel, event, data })
}

/// Warns once per app whose `legacy_key_publish` switch is on (called where apps load at start):
/// with it, any page holding the public key can publish.
pub fn warn_legacy_publishers(apps: &AppCache) {
    for app in apps.all().iter().filter(|a| a.switches().legacy_key_publish) {
        tracing::warn!(
            app_id = %app.id,
            "legacy_key_publish is on: /api/broadcast accepts this app's public key, so any page can publish"
        );
    }
}

/// Other methods on `/api/broadcast`: JSON, like every error here.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
