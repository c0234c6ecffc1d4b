//! The signed HTTP API (<https://pusher.com/docs/channels/library_auth_reference/rest-api/>):
//! publish events and batches, query channels and presence users, terminate a user's
//! connections. Every request is signed; nothing is read before the signature checks out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{Method, Uri};
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value, json};

use super::ApiError;
use crate::apps::App;
use crate::auth::pusher::{self as sig, SignedRequest};
use crate::core::{
    ChannelKind, ChannelName, ChannelStats, Data, Event, MAX_EVENT_NAME, MAX_USER_ID_LEN, SocketId, fits_chars,
};
use crate::metrics;
use crate::server::AppState;

/// Most channels one event may go to.
pub const MAX_CHANNELS_PER_EVENT: usize = 100;
/// Most events one batch may hold.
pub const MAX_BATCH: usize = 10;
/// Largest request body read (a full batch of maximal events fits).
const MAX_BODY: usize = 2 * 1024 * 1024;

type ApiResult = Result<Json<Value>, ApiError>;

/// Looks the app up by id, reads the body and checks the signature over all of it.
async fn authenticate(
    state: &AppState,
    app_id: &str,
    method: &Method,
    uri: &Uri,
    body: Body,
) -> Result<(Arc<App>, Bytes), ApiError> {
    let app = state.apps.by_id(app_id).ok_or(ApiError::UnknownApp)?;
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(ApiError::TooLarge(format!("Request body is larger than {MAX_BODY} bytes")));
        }
    };
    let req = SignedRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        body: &body,
    };
    sig::verify_request(&app.key, &app.secret.0, &req, unix_now())?;
    if !app.enabled {
        return Err(ApiError::Disabled);
    }
    state.api_limits.per_second(&app.id, app.limits().api_requests_per_second).map_err(ApiError::RateLimited)?;
    Ok((app, body))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// One event of a trigger or batch, validated.
struct Trigger {
    name: Arc<str>,
    data: Data,
    channels: Vec<ChannelName>,
    except: Option<SocketId>,
    info: Info,
}

#[derive(Default, Clone, Copy)]
struct Info {
    user_count: bool,
    subscription_count: bool,
    /// The cached event of a cache channel (`GET /channels/{name}` only).
    cache: bool,
}

impl Info {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut info = Self::default();
        for attr in raw.unwrap_or_default().split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match attr {
                "user_count" => info.user_count = true,
                "subscription_count" => info.subscription_count = true,
                "cache" => info.cache = true,
                other => {
                    return Err(ApiError::bad(format!(
                        "Unknown info attribute {other:?}; use user_count, subscription_count, cache"
                    )));
                }
            }
        }
        Ok(info)
    }

    /// Refuses `cache` where it has no meaning (triggers, channel lists).
    fn without_cache(self) -> Result<Self, ApiError> {
        if self.cache {
            return Err(ApiError::bad("cache is only available for one channel: GET /channels/{name}?info=cache"));
        }
        Ok(self)
    }

    fn any(self) -> bool {
        self.user_count || self.subscription_count
    }

    fn render(self, channel: &ChannelName, stats: ChannelStats) -> Value {
        let mut out = Map::new();
        if self.user_count && channel.kind() == ChannelKind::Presence {
            out.insert("user_count".into(), stats.user_count.unwrap_or(0).into());
        }
        if self.subscription_count {
            out.insert("subscription_count".into(), stats.subscription_count.into());
        }
        Value::Object(out)
    }
}

fn parse_trigger(v: &Value, app: &App, batch: bool) -> Result<Trigger, ApiError> {
    let obj = v.as_object().ok_or_else(|| ApiError::bad("Each event must be a JSON object"))?;
    let name = match obj.get("name") {
        Some(Value::String(n)) if n.starts_with("pusher") => {
            // As Pusher: the namespace is the protocol's own (`pusher:`, `pusher_internal:`);
            // an API caller must not forge member or subscription events.
            return Err(ApiError::bad("Event names cannot be prefixed with 'pusher'"));
        }
        Some(Value::String(n)) if !n.is_empty() && fits_chars(n, MAX_EVENT_NAME) => n.as_str(),
        Some(Value::String(_)) => return Err(ApiError::bad("Event name must be 1–200 characters")),
        _ => return Err(ApiError::bad("Missing event name")),
    };
    let data = match obj.get("data") {
        Some(Value::String(s)) => Data::Text(s.as_str().into()),
        Some(Value::Null) | None => return Err(ApiError::bad("Missing data")),
        Some(other) => Data::Json(other.to_string().into()),
    };
    let size = match &data {
        Data::Text(s) | Data::Json(s) => s.len(),
    };
    let limit = app.limits().max_message_bytes;
    if size > limit {
        return Err(ApiError::TooLarge(format!("Event data is {size} bytes; the limit is {limit}")));
    }
    let raw_channels: Vec<&str> = match (obj.get("channels"), obj.get("channel")) {
        (Some(Value::Array(list)), _) if !batch => list
            .iter()
            .map(|c| c.as_str().ok_or_else(|| ApiError::bad("channels must be strings")))
            .collect::<Result<_, _>>()?,
        (Some(_), _) if !batch => {
            return Err(ApiError::bad("channels must be an array of strings"));
        }
        (_, Some(Value::String(c))) => vec![c.as_str()],
        (_, Some(_)) => return Err(ApiError::bad("channel must be a string")),
        _ => return Err(ApiError::bad("Missing channel or channels")),
    };
    if raw_channels.is_empty() {
        return Err(ApiError::bad("At least one channel is required"));
    }
    if raw_channels.len() > MAX_CHANNELS_PER_EVENT {
        return Err(ApiError::bad(format!("An event may go to at most {MAX_CHANNELS_PER_EVENT} channels")));
    }
    let channels = raw_channels
        .iter()
        .map(|c| ChannelName::parse_for_publish(c).map_err(|e| ApiError::bad(format!("Invalid channel {c:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let except = match obj.get("socket_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.parse::<SocketId>() {
            Ok(id) => Some(id),
            // Pusher's shape (`\d+\.\d+`) but outside this server's ids: no connection has it.
            Err(_) if socket_id_shaped(s) => None,
            Err(_) => return Err(ApiError::bad(format!("Invalid socket_id {s:?}"))),
        },
        Some(_) => return Err(ApiError::bad("socket_id must be a string")),
    };
    let info = Info::parse(obj.get("info").and_then(Value::as_str))?.without_cache()?;
    Ok(Trigger { name: name.into(), data, channels, except, info })
}

fn socket_id_shaped(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    s.split_once('.').is_some_and(|(a, b)| digits(a) && digits(b))
}

/// Pusher lets a POST carry its parameters in the query string instead of the JSON body
/// (arrays as `channels[]=a&channels[]=b`); the body wins where both give one.
fn with_query_params(mut v: Value, uri: &Uri) -> Value {
    let Value::Object(obj) = &mut v else {
        return v;
    };
    let mut channels = Vec::new();
    for (key, value) in sig::query_pairs(uri.query().unwrap_or_default()) {
        match key.as_str() {
            "channels[]" => channels.push(Value::String(value)),
            "name" | "data" | "channel" | "socket_id" | "info" => {
                obj.entry(key).or_insert(Value::String(value));
            }
            _ => {}
        }
    }
    if !channels.is_empty() {
        obj.entry("channels").or_insert(Value::Array(channels));
    }
    v
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("Invalid JSON body: {e}")))
}

/// Publishes one validated event to each of its channels.
fn publish(state: &AppState, app: &App, t: &Trigger) -> Result<(), ApiError> {
    if !state.realtime.broker_healthy() {
        return Err(ApiError::BrokerDown);
    }
    for channel in &t.channels {
        let event = Event {
            channel: Some(channel.clone()),
            name: t.name.clone(),
            data: t.data.clone(),
            user_id: None,
            except: t.except,
        };
        state.realtime.publish(&app.id, event).map_err(|_| ApiError::BrokerDown)?;
        metrics::published("http");
    }
    Ok(())
}

fn channel_info(state: &AppState, app: &App, t: &Trigger) -> Value {
    let channels: Map<String, Value> = t
        .channels
        .iter()
        .map(|c| (c.to_string(), t.info.render(c, state.realtime.channel_stats(&app.id, c))))
        .collect();
    Value::Object(channels)
}

/// `POST /apps/{id}/events`.
pub async fn trigger(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    method: Method,
    uri: Uri,
    body: Body,
) -> ApiResult {
    let (app, body) = authenticate(&state, &app_id, &method, &uri, body).await?;
    let v = if body.is_empty() { Value::Object(Map::new()) } else { parse_json(&body)? };
    let t = parse_trigger(&with_query_params(v, &uri), &app, false)?;
    publish(&state, &app, &t)?;
    if t.info.any() {
        return Ok(Json(json!({ "channels": channel_info(&state, &app, &t) })));
    }
    Ok(Json(json!({})))
}

/// `POST /apps/{id}/batch_events`.
pub async fn trigger_batch(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    method: Method,
    uri: Uri,
    body: Body,
) -> ApiResult {
    let (app, body) = authenticate(&state, &app_id, &method, &uri, body).await?;
    let v = parse_json(&body)?;
    let Some(Value::Array(items)) = v.get("batch") else {
        return Err(ApiError::bad("Body must be {\"batch\": [events]}"));
    };
    if items.len() > MAX_BATCH {
        return Err(ApiError::bad(format!("A batch may hold at most {MAX_BATCH} events")));
    }
    // Validate all before publishing any, so a bad event does not half-apply a batch.
    let triggers = items.iter().map(|i| parse_trigger(i, &app, true)).collect::<Result<Vec<_>, _>>()?;
    for t in &triggers {
        publish(&state, &app, t)?;
    }
    if triggers.iter().any(|t| t.info.any()) {
        let batch: Vec<Value> = triggers
            .iter()
            .map(|t| {
                t.channels.first().map_or(json!({}), |c| t.info.render(c, state.realtime.channel_stats(&app.id, c)))
            })
            .collect();
        return Ok(Json(json!({ "batch": batch })));
    }
    Ok(Json(json!({})))
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    sig::query_pairs(uri.query().unwrap_or_default()).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// `GET /apps/{id}/channels?filter_by_prefix=&info=`.
pub async fn channels(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    method: Method,
    uri: Uri,
    body: Body,
) -> ApiResult {
    let (app, _) = authenticate(&state, &app_id, &method, &uri, body).await?;
    let prefix = query_param(&uri, "filter_by_prefix").unwrap_or_default();
    let info = Info::parse(query_param(&uri, "info").as_deref())?.without_cache()?;
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(ApiError::bad("user_count is only available with filter_by_prefix=presence-"));
    }
    let channels: BTreeMap<String, Value> = state
        .realtime
        .occupied_channels(&app.id, &prefix)
        .into_iter()
        .map(|(name, stats)| (name.to_string(), info.render(&name, stats)))
        .collect();
    Ok(Json(json!({ "channels": channels })))
}

fn path_channel(raw: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(raw).map_err(|e| ApiError::bad(format!("Invalid channel {raw:?}: {e}")))
}

/// `GET /apps/{id}/channels/{name}?info=`.
pub async fn channel(
    State(state): State<AppState>,
    Path((app_id, channel)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    body: Body,
) -> ApiResult {
    let (app, _) = authenticate(&state, &app_id, &method, &uri, body).await?;
    let channel = path_channel(&channel)?;
    let info = Info::parse(query_param(&uri, "info").as_deref())?;
    if info.user_count && channel.kind() != ChannelKind::Presence {
        return Err(ApiError::bad("user_count is only available for presence channels"));
    }
    if info.cache && !channel.is_cache() {
        return Err(ApiError::bad("cache is only available for cache channels"));
    }
    let stats = state.realtime.channel_stats(&app.id, &channel);
    let mut out = Map::new();
    out.insert("occupied".into(), (stats.subscription_count > 0).into());
    if let Value::Object(attrs) = info.render(&channel, stats) {
        out.extend(attrs);
    }
    if info.cache {
        // What a subscriber would be replayed now (null after a miss), with the seconds it is
        // kept yet: what a backend needs to serve initial state itself.
        let cached = state.realtime.cached_event(&app.id, &channel).map(|(event, left)| {
            let data = match &event.data {
                Data::Text(s) | Data::Json(s) => &**s,
            };
            json!({ "event": &*event.name, "data": data, "ttl": left.as_secs() })
        });
        out.insert("cache".into(), cached.unwrap_or(Value::Null));
    }
    Ok(Json(Value::Object(out)))
}

/// `GET /apps/{id}/channels/{presence-name}/users`.
pub async fn channel_users(
    State(state): State<AppState>,
    Path((app_id, channel)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    body: Body,
) -> ApiResult {
    let (app, _) = authenticate(&state, &app_id, &method, &uri, body).await?;
    let channel = path_channel(&channel)?;
    if channel.kind() != ChannelKind::Presence {
        return Err(ApiError::bad("Users are only available for presence channels"));
    }
    let users: Vec<Value> =
        state.realtime.presence_users(&app.id, &channel).iter().map(|u| json!({ "id": &**u })).collect();
    Ok(Json(json!({ "users": users })))
}

/// `POST /apps/{id}/users/{user_id}/terminate_connections`.
pub async fn terminate_connections(
    State(state): State<AppState>,
    Path((app_id, user_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    body: Body,
) -> ApiResult {
    terminate(state, &app_id, user_id, method, uri, body).await
}

/// `POST /users/{user_id}/terminate_connections`: the path the official Python SDK (3.x) signs
/// and sends, without `/apps/{id}`. The app is the one whose `auth_key` signed the request.
pub async fn terminate_connections_by_key(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    method: Method,
    uri: Uri,
    body: Body,
) -> ApiResult {
    let key = query_param(&uri, "auth_key").ok_or(ApiError::Auth(sig::ApiAuthError::Missing("auth_key")))?;
    let app = state.apps.by_key(&key).ok_or(ApiError::Auth(sig::ApiAuthError::WrongKey))?;
    terminate(state, &app.id, user_id, method, uri, body).await
}

async fn terminate(state: AppState, app_id: &str, user_id: String, method: Method, uri: Uri, body: Body) -> ApiResult {
    let (app, _) = authenticate(&state, app_id, &method, &uri, body).await?;
    if user_id.is_empty() || !fits_chars(&user_id, MAX_USER_ID_LEN) {
        return Err(ApiError::bad("user_id must be 1–128 characters"));
    }
    state.realtime.terminate_user(&app.id, &user_id).map_err(|_| ApiError::BrokerDown)?;
    Ok(Json(json!({})))
}
