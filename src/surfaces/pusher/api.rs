//! The signed HTTP API (<https://pusher.com/docs/channels/library_auth_reference/rest-api/>):
//! publish events and batches, query channels and presence users, terminate a user's
//! connections. Every request is signed; nothing is read before the signature checks out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::ApiError;
use crate::apps::App;
use crate::audit;
use crate::auth::pusher as sig;
use crate::auth::unix_now;
use crate::core::{
    ChannelKind, ChannelName, ChannelStats, Data, Event, MAX_EVENT_NAME, MAX_USER_ID_LEN, SocketId, fits_chars,
};
use crate::metrics;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::surfaces::{body_limit, declared_length, read_declared};

/// Most channels one event may go to.
pub const MAX_CHANNELS_PER_EVENT: usize = 100;
/// Most events one batch may hold.
pub const MAX_BATCH: usize = 10;
type ApiResult = Result<Json<Value>, ApiError>;

/// How much body a route reads at most, given the app (its message limit sizes publishes).
#[derive(Clone, Copy)]
enum BodyNeed {
    Event,
    Batch,
    Empty,
}

impl BodyNeed {
    fn limit(self, app: &App) -> usize {
        let event = body_limit::event(app.limits().max_message_bytes);
        match self {
            Self::Event => event,
            Self::Batch => event.saturating_mul(MAX_BATCH),
            Self::Empty => body_limit::EMPTY,
        }
    }
}

/// Checks everything the query carries (app, key, timestamp, version, signature: the
/// signature covers `body_md5`) before a byte of the body is read, then reads at most what the
/// route needs and checks it against `body_md5`.
async fn authenticate(
    state: &AppState,
    app_id: &str,
    req: &ApiRequest,
    body: Body,
    need: BodyNeed,
) -> Result<(Arc<App>, Bytes), ApiError> {
    let Some(app) = state.apps.by_id(app_id) else {
        audit::refused(audit::Refusal::UnknownKey, req.client, app_id, &"no such app");
        return Err(ApiError::UnknownApp);
    };
    let query = req.uri.query().unwrap_or_default();
    let signed = sig::verify_head(&app.key, &app.secret.0, req.method.as_str(), req.uri.path(), query, unix_now())
        .inspect_err(|e| audit::refused(audit::Refusal::BadSignature, req.client, &app.id, e))?;
    if !app.enabled {
        return Err(ApiError::Disabled);
    }
    state.api_limits.per_second(&*app.id, app.limits().api_requests_per_second).map_err(ApiError::RateLimited)?;
    let body = read_declared(req.declared_length, body, need.limit(&app)).await?;
    signed.verify_body(&body).inspect_err(|e| audit::refused(audit::Refusal::BadSignature, req.client, &app.id, e))?;
    Ok((app, body))
}

/// The parts of an API request the handlers use (the body is read once its credentials check).
pub struct ApiRequest {
    method: Method,
    uri: Uri,
    declared_length: Option<u64>,
    client: std::net::IpAddr,
}

impl<S: Send + Sync> FromRequestParts<S> for ApiRequest {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientAddr(client) = ClientAddr::from_request_parts(parts, state).await?;
        let declared_length = declared_length(&parts.headers);
        Ok(Self { method: parts.method.clone(), uri: parts.uri.clone(), declared_length, client })
    }
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

/// One event as sent: each field kept as raw JSON text and read on its own, so that unknown
/// fields are skipped without building anything and every field gets its own error.
#[derive(Deserialize, Default)]
struct RawEvent<'a> {
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    channel: Option<&'a RawValue>,
    #[serde(borrow)]
    channels: Option<&'a RawValue>,
    #[serde(borrow)]
    socket_id: Option<&'a RawValue>,
    #[serde(borrow)]
    info: Option<&'a RawValue>,
}

/// A POST parameter given in the query string instead (Pusher allows it); the body wins.
#[derive(Default)]
struct QueryParams {
    name: Option<String>,
    data: Option<String>,
    channel: Option<String>,
    channels: Vec<String>,
    socket_id: Option<String>,
    info: Option<String>,
}

impl QueryParams {
    fn from_uri(uri: &Uri) -> Self {
        let mut q = Self::default();
        for (key, value) in sig::query_pairs(uri.query().unwrap_or_default()) {
            match key.as_str() {
                "channels[]" => q.channels.push(value),
                "name" => q.name = Some(value),
                "data" => q.data = Some(value),
                "channel" => q.channel = Some(value),
                "socket_id" => q.socket_id = Some(value),
                "info" => q.info = Some(value),
                _ => {}
            }
        }
        q
    }
}

/// A raw field read as a string: `Ok(None)` when absent or null, `Err(())` when another type.
fn raw_string(raw: Option<&RawValue>) -> Result<Option<String>, ()> {
    match raw {
        None => Ok(None),
        Some(r) => serde_json::from_str::<Option<String>>(r.get()).map_err(|_| ()),
    }
}

fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

fn parse_trigger(ev: &RawEvent<'_>, query: &QueryParams, app: &App, batch: bool) -> Result<Trigger, ApiError> {
    let name = match raw_string(ev.name) {
        Ok(Some(n)) => Some(n),
        Ok(None) if ev.name.is_none() => query.name.clone(),
        _ => None,
    };
    let name = match name {
        Some(n) if n.starts_with("pusher") => {
            // As Pusher: the namespace is the protocol's own (`pusher:`, `pusher_internal:`);
            // an API caller must not forge member or subscription events.
            return Err(ApiError::bad("Event names cannot be prefixed with 'pusher'"));
        }
        Some(n) if !n.is_empty() && fits_chars(&n, MAX_EVENT_NAME) => n,
        Some(_) => return Err(ApiError::bad("Event name must be 1–200 characters")),
        None => return Err(ApiError::bad("Missing event name")),
    };
    let data = match ev.data {
        None => match &query.data {
            Some(d) => Data::Text(d.as_str().into()),
            None => return Err(ApiError::bad("Missing data")),
        },
        Some(raw) if is_null(raw) => return Err(ApiError::bad("Missing data")),
        Some(raw) => match serde_json::from_str::<String>(raw.get()) {
            Ok(s) => Data::Text(s.into()),
            Err(_) => Data::json_from_raw(raw.get()),
        },
    };
    let size = match &data {
        Data::Text(s) | Data::Json(s) => s.len(),
    };
    let limit = app.limits().max_message_bytes;
    if size > limit {
        return Err(ApiError::TooLarge(format!("Event data is {size} bytes; the limit is {limit}")));
    }
    let raw_channels: Vec<String> = match (ev.channels.filter(|_| !batch), ev.channel) {
        (Some(list), _) => match serde_json::from_str::<Vec<&RawValue>>(list.get()) {
            Ok(items) => items
                .iter()
                .map(|c| serde_json::from_str::<String>(c.get()).map_err(|_| ApiError::bad("channels must be strings")))
                .collect::<Result<_, _>>()?,
            Err(_) => return Err(ApiError::bad("channels must be an array of strings")),
        },
        (None, Some(c)) => match raw_string(Some(c)) {
            Ok(Some(c)) => vec![c],
            _ => return Err(ApiError::bad("channel must be a string")),
        },
        (None, None) if !batch && !query.channels.is_empty() => query.channels.clone(),
        (None, None) => match &query.channel {
            Some(c) => vec![c.clone()],
            None => return Err(ApiError::bad("Missing channel or channels")),
        },
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
    let socket_id = match ev.socket_id {
        None => query.socket_id.clone(),
        Some(raw) => raw_string(Some(raw)).map_err(|_| ApiError::bad("socket_id must be a string"))?,
    };
    let except = match socket_id {
        None => None,
        Some(s) => match s.parse::<SocketId>() {
            Ok(id) => Some(id),
            // Pusher's shape (`\d+\.\d+`) but outside this server's ids: no connection has it.
            Err(_) if socket_id_shaped(&s) => None,
            Err(_) => return Err(ApiError::bad(format!("Invalid socket_id {s:?}"))),
        },
    };
    // A non-string `info` is ignored, as before.
    let info = match ev.info {
        None => query.info.clone(),
        Some(raw) => raw_string(Some(raw)).unwrap_or_default(),
    };
    let info = Info::parse(info.as_deref())?.without_cache()?;
    Ok(Trigger { name: name.into(), data, channels, except, info })
}

fn socket_id_shaped(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    s.split_once('.').is_some_and(|(a, b)| digits(a) && digits(b))
}

/// The body as one event: a JSON object (an empty body is an object with no fields, so that
/// the parameters may all come in the query string).
fn parse_event(body: &[u8]) -> Result<RawEvent<'_>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RawEvent::default());
    }
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
    req: ApiRequest,
    body: Body,
) -> ApiResult {
    let (app, body) = authenticate(&state, &app_id, &req, body, BodyNeed::Event).await?;
    let t = parse_trigger(&parse_event(&body)?, &QueryParams::from_uri(&req.uri), &app, false)?;
    publish(&state, &app, &t)?;
    if t.info.any() {
        return Ok(Json(json!({ "channels": channel_info(&state, &app, &t) })));
    }
    Ok(Json(json!({})))
}

/// `{"batch": [events]}`, each event kept raw until it is read.
#[derive(Deserialize)]
struct RawBatch<'a> {
    #[serde(borrow)]
    batch: Option<&'a RawValue>,
}

/// `POST /apps/{id}/batch_events`.
pub async fn trigger_batch(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    req: ApiRequest,
    body: Body,
) -> ApiResult {
    let (app, body) = authenticate(&state, &app_id, &req, body, BodyNeed::Batch).await?;
    let raw: RawBatch<'_> =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("Invalid JSON body: {e}")))?;
    let shape = || ApiError::bad("Body must be {\"batch\": [events]}");
    let items: Vec<&RawValue> = serde_json::from_str(raw.batch.ok_or_else(shape)?.get()).map_err(|_| shape())?;
    if items.len() > MAX_BATCH {
        return Err(ApiError::bad(format!("A batch may hold at most {MAX_BATCH} events")));
    }
    // Validate all before publishing any, so a bad event does not half-apply a batch.
    let none = QueryParams::default();
    let triggers = items
        .iter()
        .map(|item| {
            let ev: RawEvent<'_> =
                serde_json::from_str(item.get()).map_err(|_| ApiError::bad("Each event must be a JSON object"))?;
            parse_trigger(&ev, &none, &app, true)
        })
        .collect::<Result<Vec<_>, _>>()?;
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
    req: ApiRequest,
    body: Body,
) -> ApiResult {
    let (app, _) = authenticate(&state, &app_id, &req, body, BodyNeed::Empty).await?;
    let prefix = query_param(&req.uri, "filter_by_prefix").unwrap_or_default();
    let info = Info::parse(query_param(&req.uri, "info").as_deref())?.without_cache()?;
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
    req: ApiRequest,
    body: Body,
) -> ApiResult {
    let (app, _) = authenticate(&state, &app_id, &req, body, BodyNeed::Empty).await?;
    let channel = path_channel(&channel)?;
    let info = Info::parse(query_param(&req.uri, "info").as_deref())?;
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
    req: ApiRequest,
    body: Body,
) -> ApiResult {
    let (app, _) = authenticate(&state, &app_id, &req, body, BodyNeed::Empty).await?;
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
    req: ApiRequest,
    body: Body,
) -> ApiResult {
    terminate(state, &app_id, user_id, req, body).await
}

/// `POST /users/{user_id}/terminate_connections`: the path the official Python SDK (3.x) signs
/// and sends, without `/apps/{id}`. The app is the one whose `auth_key` signed the request.
pub async fn terminate_connections_by_key(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    req: ApiRequest,
    body: Body,
) -> ApiResult {
    let key = query_param(&req.uri, "auth_key").ok_or(ApiError::Auth(sig::ApiAuthError::Missing("auth_key")))?;
    let Some(app) = state.apps.by_key(&key) else {
        audit::refused(audit::Refusal::UnknownKey, req.client, &key, &"no app has this auth_key");
        return Err(ApiError::Auth(sig::ApiAuthError::WrongKey));
    };
    terminate(state, &app.id, user_id, req, body).await
}

async fn terminate(state: AppState, app_id: &str, user_id: String, req: ApiRequest, body: Body) -> ApiResult {
    let (app, _) = authenticate(&state, app_id, &req, body, BodyNeed::Empty).await?;
    if user_id.is_empty() || !fits_chars(&user_id, MAX_USER_ID_LEN) {
        return Err(ApiError::bad("user_id must be 1–128 characters"));
    }
    state.realtime.terminate_user(&app.id, &user_id).map_err(|_| ApiError::BrokerDown)?;
    Ok(Json(json!({})))
}
