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
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

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
use crate::surfaces::{ErrorBody, body_limit, declared_length, read_declared};

/// Most channels one event may go to.
pub const MAX_CHANNELS_PER_EVENT: usize = 100;
/// Most events one batch may hold.
pub const MAX_BATCH: usize = 10;
type ApiResult<T> = Result<Json<T>, ApiError>;

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

    fn render(self, channel: &ChannelName, stats: ChannelStats) -> ChannelAttributes {
        ChannelAttributes {
            user_count: (self.user_count && channel.kind() == ChannelKind::Presence)
                .then(|| stats.user_count.unwrap_or(0)),
            subscription_count: self.subscription_count.then_some(stats.subscription_count),
        }
    }
}

/// A channel's attributes, as many as `info` asked for.
#[derive(Serialize, ToSchema, Default)]
pub struct ChannelAttributes {
    /// Distinct users (presence channels, with `info=user_count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    user_count: Option<usize>,
    /// Connections subscribed (with `info=subscription_count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_count: Option<usize>,
}

/// The answer to a trigger: `{}`, or the attributes of each channel when `info` asked for some.
#[derive(Serialize, ToSchema)]
pub struct TriggerAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<BTreeMap<String, ChannelAttributes>>,
}

/// The answer to a batch: `{}`, or per event (in order) its first channel's attributes when an
/// event's `info` asked for some.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<Vec<ChannelAttributes>>,
}

/// The occupied channels (optionally those starting with `filter_by_prefix`).
#[derive(Serialize, ToSchema)]
pub struct ChannelsAnswer {
    channels: BTreeMap<String, ChannelAttributes>,
}

/// One channel: whether it is occupied, the attributes `info` asked for, and with `info=cache`
/// the event a subscriber of a cache channel would be replayed now (null when none).
#[derive(Serialize, ToSchema)]
pub struct ChannelAnswer {
    occupied: bool,
    #[serde(flatten)]
    attributes: ChannelAttributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable)]
    cache: Option<Option<CachedEvent>>,
}

/// A cache channel's last event and the seconds it is kept yet.
#[derive(Serialize, ToSchema)]
pub struct CachedEvent {
    event: String,
    data: String,
    ttl: u64,
}

/// A presence channel's users.
#[derive(Serialize, ToSchema)]
pub struct UsersAnswer {
    users: Vec<PresenceUser>,
}

#[derive(Serialize, ToSchema)]
pub struct PresenceUser {
    id: String,
}

/// `{}`.
#[derive(Serialize, ToSchema)]
pub struct Empty {}

/// One event to publish (a trigger's body; in a batch, `channel` names its one channel). The
/// fields may come in the query string instead; the body wins.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the body `RawEvent` reads field by field.
pub struct EventBody {
    /// 1–200 characters, not starting with `pusher`.
    name: String,
    /// The payload: a string (sent to clients as it is) or any JSON value; at most the app's
    /// `max_message_bytes`.
    data: serde_json::Value,
    /// Up to 100 channels (triggers only).
    channels: Option<Vec<String>>,
    /// One channel, instead of `channels`.
    channel: Option<String>,
    /// A connection to leave out (`<digits>.<digits>`).
    socket_id: Option<String>,
    /// Attributes to answer with: `user_count`, `subscription_count` (comma-separated).
    info: Option<String>,
}

/// Up to 10 events, validated all before any is published.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the body `RawBatch` reads.
pub struct BatchBody {
    batch: Vec<EventBody>,
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

fn channel_info(state: &AppState, app: &App, t: &Trigger) -> BTreeMap<String, ChannelAttributes> {
    t.channels.iter().map(|c| (c.to_string(), t.info.render(c, state.realtime.channel_stats(&app.id, c)))).collect()
}

/// Publishes one event to up to 100 channels.
#[utoipa::path(
    post,
    path = "/apps/{app_id}/events",
    tag = "Pusher HTTP API",
    params(AppIdPath, SignedQuery),
    request_body(content = EventBody, description = "The event (its fields may come in the query string instead)."),
    responses(
        (status = 200, description = "Published.", body = TriggerAnswer),
        (status = 400, description = "A field is missing or invalid.", body = ErrorBody),
        (status = 401, description = "The signature does not check out.", body = ErrorBody),
        (status = 403, description = "The app is disabled.", body = ErrorBody),
        (status = 404, description = "No such app.", body = ErrorBody),
        (status = 413, description = "Data over the app's `max_message_bytes`, or a body over the route's limit.", body = ErrorBody),
        (status = 429, description = "Over the app's `api_requests_per_second`.", body = ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "The broker is down: nothing was published.", body = ErrorBody),
    ),
    security(("pusher_signature" = [])),
)]
pub async fn trigger(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    req: ApiRequest,
    body: Body,
) -> ApiResult<TriggerAnswer> {
    let (app, body) = authenticate(&state, &app_id, &req, body, BodyNeed::Event).await?;
    let t = parse_trigger(&parse_event(&body)?, &QueryParams::from_uri(&req.uri), &app, false)?;
    publish(&state, &app, &t)?;
    let channels = t.info.any().then(|| channel_info(&state, &app, &t));
    Ok(Json(TriggerAnswer { channels }))
}

/// `{"batch": [events]}`, each event kept raw until it is read.
#[derive(Deserialize)]
struct RawBatch<'a> {
    #[serde(borrow)]
    batch: Option<&'a RawValue>,
}

/// Publishes up to 10 events, each to one channel; all are validated before any is published.
#[utoipa::path(
    post,
    path = "/apps/{app_id}/batch_events",
    tag = "Pusher HTTP API",
    params(AppIdPath, SignedQuery),
    request_body(content = BatchBody),
    responses(
        (status = 200, description = "Published.", body = BatchAnswer),
        (status = 400, description = "An event is missing a field or invalid; none was published.", body = ErrorBody),
        (status = 401, description = "The signature does not check out.", body = ErrorBody),
        (status = 403, description = "The app is disabled.", body = ErrorBody),
        (status = 404, description = "No such app.", body = ErrorBody),
        (status = 413, description = "Data over the app's `max_message_bytes`, or a body over the route's limit.", body = ErrorBody),
        (status = 429, description = "Over the app's `api_requests_per_second`.", body = ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "The broker is down.", body = ErrorBody),
    ),
    security(("pusher_signature" = [])),
)]
pub async fn trigger_batch(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    req: ApiRequest,
    body: Body,
) -> ApiResult<BatchAnswer> {
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
    let batch = triggers.iter().any(|t| t.info.any()).then(|| {
        triggers
            .iter()
            .map(|t| {
                t.channels.first().map_or_else(ChannelAttributes::default, |c| {
                    t.info.render(c, state.realtime.channel_stats(&app.id, c))
                })
            })
            .collect()
    });
    Ok(Json(BatchAnswer { batch }))
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    sig::query_pairs(uri.query().unwrap_or_default()).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Lists the occupied channels.
#[utoipa::path(
    get,
    path = "/apps/{app_id}/channels",
    tag = "Pusher HTTP API",
    params(
        AppIdPath,
        ("filter_by_prefix" = Option<String>, Query, description = "Only channels whose names start with it."),
        ("info" = Option<String>, Query, description = "`subscription_count`, and `user_count` with `filter_by_prefix=presence-` (comma-separated)."),
        SignedQuery,
    ),
    responses(
        (status = 200, description = "The channels.", body = ChannelsAnswer),
        (status = 400, description = "An `info` attribute is unknown or not available here.", body = ErrorBody),
        (status = 401, description = "The signature does not check out.", body = ErrorBody),
        (status = 403, description = "The app is disabled.", body = ErrorBody),
        (status = 404, description = "No such app.", body = ErrorBody),
        (status = 429, description = "Over the app's `api_requests_per_second`.", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("pusher_signature" = [])),
)]
pub async fn channels(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    req: ApiRequest,
    body: Body,
) -> ApiResult<ChannelsAnswer> {
    let (app, _) = authenticate(&state, &app_id, &req, body, BodyNeed::Empty).await?;
    let prefix = query_param(&req.uri, "filter_by_prefix").unwrap_or_default();
    let info = Info::parse(query_param(&req.uri, "info").as_deref())?.without_cache()?;
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(ApiError::bad("user_count is only available with filter_by_prefix=presence-"));
    }
    let channels = state
        .realtime
        .occupied_channels(&app.id, &prefix)
        .into_iter()
        .map(|(name, stats)| (name.to_string(), info.render(&name, stats)))
        .collect();
    Ok(Json(ChannelsAnswer { channels }))
}

fn path_channel(raw: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(raw).map_err(|e| ApiError::bad(format!("Invalid channel {raw:?}: {e}")))
}

/// One channel's state.
#[utoipa::path(
    get,
    path = "/apps/{app_id}/channels/{channel}",
    tag = "Pusher HTTP API",
    params(
        AppIdPath,
        ("channel" = String, Path, description = "The channel's name."),
        ("info" = Option<String>, Query, description = "`subscription_count`, `user_count` (presence channels), `cache` (cache channels), comma-separated."),
        SignedQuery,
    ),
    responses(
        (status = 200, description = "The channel.", body = ChannelAnswer),
        (status = 400, description = "The channel name or an `info` attribute is invalid.", body = ErrorBody),
        (status = 401, description = "The signature does not check out.", body = ErrorBody),
        (status = 403, description = "The app is disabled.", body = ErrorBody),
        (status = 404, description = "No such app.", body = ErrorBody),
        (status = 429, description = "Over the app's `api_requests_per_second`.", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("pusher_signature" = [])),
)]
pub async fn channel(
    State(state): State<AppState>,
    Path((app_id, channel)): Path<(String, String)>,
    req: ApiRequest,
    body: Body,
) -> ApiResult<ChannelAnswer> {
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
    // What a subscriber would be replayed now (null after a miss), with the seconds it is kept
    // yet: what a backend needs to serve initial state itself.
    let cache = info.cache.then(|| {
        state.realtime.cached_event(&app.id, &channel).map(|(event, left)| {
            let data = match &event.data {
                Data::Text(s) | Data::Json(s) => s.to_string(),
            };
            CachedEvent { event: event.name.to_string(), data, ttl: left.as_secs() }
        })
    });
    Ok(Json(ChannelAnswer { occupied: stats.subscription_count > 0, attributes: info.render(&channel, stats), cache }))
}

/// A presence channel's users.
#[utoipa::path(
    get,
    path = "/apps/{app_id}/channels/{channel}/users",
    tag = "Pusher HTTP API",
    params(AppIdPath, ("channel" = String, Path, description = "A presence channel's name."), SignedQuery),
    responses(
        (status = 200, description = "The users.", body = UsersAnswer),
        (status = 400, description = "Not a presence channel, or an invalid name.", body = ErrorBody),
        (status = 401, description = "The signature does not check out.", body = ErrorBody),
        (status = 403, description = "The app is disabled.", body = ErrorBody),
        (status = 404, description = "No such app.", body = ErrorBody),
        (status = 429, description = "Over the app's `api_requests_per_second`.", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("pusher_signature" = [])),
)]
pub async fn channel_users(
    State(state): State<AppState>,
    Path((app_id, channel)): Path<(String, String)>,
    req: ApiRequest,
    body: Body,
) -> ApiResult<UsersAnswer> {
    let (app, _) = authenticate(&state, &app_id, &req, body, BodyNeed::Empty).await?;
    let channel = path_channel(&channel)?;
    if channel.kind() != ChannelKind::Presence {
        return Err(ApiError::bad("Users are only available for presence channels"));
    }
    let users =
        state.realtime.presence_users(&app.id, &channel).iter().map(|u| PresenceUser { id: u.to_string() }).collect();
    Ok(Json(UsersAnswer { users }))
}

/// Closes every connection of a user (signed in with `pusher:signin`).
#[utoipa::path(
    post,
    path = "/apps/{app_id}/users/{user_id}/terminate_connections",
    tag = "Pusher HTTP API",
    params(AppIdPath, ("user_id" = String, Path, description = "1–128 characters."), SignedQuery),
    responses(
        (status = 200, description = "Their connections are being closed.", body = Empty),
        (status = 400, description = "An invalid user id.", body = ErrorBody),
        (status = 401, description = "The signature does not check out.", body = ErrorBody),
        (status = 403, description = "The app is disabled.", body = ErrorBody),
        (status = 404, description = "No such app.", body = ErrorBody),
        (status = 429, description = "Over the app's `api_requests_per_second`.", body = ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "The broker is down.", body = ErrorBody),
    ),
    security(("pusher_signature" = [])),
)]
pub async fn terminate_connections(
    State(state): State<AppState>,
    Path((app_id, user_id)): Path<(String, String)>,
    req: ApiRequest,
    body: Body,
) -> ApiResult<Empty> {
    terminate(state, &app_id, user_id, req, body).await
}

/// `POST /users/{user_id}/terminate_connections`: the path the official Python SDK (3.x) signs
/// and sends, without `/apps/{id}`. The app is the one whose `auth_key` signed the request.
#[utoipa::path(
    post,
    path = "/users/{user_id}/terminate_connections",
    tag = "Pusher HTTP API",
    params(("user_id" = String, Path, description = "1–128 characters."), SignedQuery),
    responses(
        (status = 200, description = "Their connections are being closed.", body = Empty),
        (status = 400, description = "An invalid user id.", body = ErrorBody),
        (status = 401, description = "No `auth_key`, no app has it, or the signature does not check out.", body = ErrorBody),
        (status = 403, description = "The app is disabled.", body = ErrorBody),
        (status = 429, description = "Over the app's `api_requests_per_second`.", body = ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "The broker is down.", body = ErrorBody),
    ),
    security(("pusher_signature" = [])),
)]
pub async fn terminate_connections_by_key(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    req: ApiRequest,
    body: Body,
) -> ApiResult<Empty> {
    let key = query_param(&req.uri, "auth_key").ok_or(ApiError::Auth(sig::ApiAuthError::Missing("auth_key")))?;
    let Some(app) = state.apps.by_key(&key) else {
        audit::refused(audit::Refusal::UnknownKey, req.client, &key, &"no app has this auth_key");
        return Err(ApiError::Auth(sig::ApiAuthError::WrongKey));
    };
    terminate(state, &app.id, user_id, req, body).await
}

async fn terminate(state: AppState, app_id: &str, user_id: String, req: ApiRequest, body: Body) -> ApiResult<Empty> {
    let (app, _) = authenticate(&state, app_id, &req, body, BodyNeed::Empty).await?;
    if user_id.is_empty() || !fits_chars(&user_id, MAX_USER_ID_LEN) {
        return Err(ApiError::bad("user_id must be 1–128 characters"));
    }
    state.realtime.terminate_user(&app.id, &user_id).map_err(|_| ApiError::BrokerDown)?;
    Ok(Json(Empty {}))
}

/// The app an API path names.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Describes the `{app_id}` the handlers take as a `Path<String>`.
pub struct AppIdPath {
    /// The app's id.
    app_id: String,
}

/// The signed query every API request carries (the `pusher_signature` scheme).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query `sig::verify_head` checks.
pub struct SignedQuery {
    /// The app's key.
    auth_key: String,
    /// Unix seconds; within 600 s of the server's clock.
    auth_timestamp: u64,
    /// `1.0`.
    auth_version: String,
    /// The hex MD5 of the body (requests with a body).
    body_md5: Option<String>,
    /// The hex HMAC-SHA256, with the app secret, of `METHOD\nPATH\nSORTED_QUERY`.
    auth_signature: String,
}
