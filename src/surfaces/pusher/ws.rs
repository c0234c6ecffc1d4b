//! The Pusher WebSocket endpoint `/app/{key}`: the upgrade checks (SPEC §3 close codes) and the
//! protocol-7 session each connection runs inside the shared loop.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;

use super::codes;
use super::protocol::{self as proto};
use crate::apps::App;
use crate::audit;
use crate::auth::pusher as sig;
use crate::core::{
    CacheReplay, ChannelKind, ChannelName, ChannelRules, ConnHandle, Data, Disconnect, Event, MAX_EVENT_NAME,
    MAX_USER_ID_LEN, MAX_WATCHLIST, Member, SubscribeError, Transport, fits_chars,
};
use crate::metrics;
use crate::ratelimit::TokenBucket;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::surfaces::{ErrorBody, PresenceUsers};
use crate::transport::ws::{self as loop_, Closing, Flow, NotAnUpgrade, Replies, Session, Socket, WsUpgrade};

/// Longest serialised `user_info` (SPEC §3).
pub const MAX_USER_INFO: usize = 1024;
/// Room for the JSON envelope around an event's `data` in one frame.
const ENVELOPE_BYTES: usize = 4096;

/// `GET /app/{key}`: checks the app, protocol and origin, then upgrades. Refusals are sent as
/// Pusher does: a `pusher:error` frame, then a close with the same code.
#[utoipa::path(
    get,
    path = "/app/{key}",
    tag = "Pusher WebSocket",
    params(
        ("key" = String, Path, description = "The app's key."),
        ("protocol" = u32, Query, description = "Pusher protocol version, 4 to 7."),
        ("client" = Option<String>, Query, description = "The client library's name."),
        ("version" = Option<String>, Query, description = "The client library's version."),
    ),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol; the first frame is \
            `pusher:connection_established`, or a `pusher:error` and a close (4001 unknown key, 4003 app \
            disabled, 4006-4008 protocol version, 4009 origin not allowed, 4100 over capacity)."),
        (status = 400, description = "Not a WebSocket upgrade request.", body = ErrorBody),
    ),
)]
pub async fn upgrade(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WsUpgrade, NotAnUpgrade>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(not) => {
            let body = serde_json::json!({ "error": "expected a WebSocket upgrade" });
            return not.refusal((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
        }
    };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match admit(&state, &key, query.as_deref(), origin) {
        Err((code, message)) => {
            match code {
                codes::APP_NOT_FOUND => audit::refused(audit::Refusal::UnknownKey, client, &key, &message),
                codes::UNAUTHORIZED => audit::refused(audit::Refusal::OriginRefused, client, &key, &message),
                _ => {}
            }
            ws.on_upgrade(move |socket| refuse(socket, code, message))
        }
        Ok(app) => {
            let cap = app.limits().max_message_bytes + ENVELOPE_BYTES;
            ws.max_message_size(cap).on_upgrade(move |socket| serve(socket, state, app))
        }
    }
}

/// `/app/{key}/…` and `/app/`: Pusher's 4005 for a path it does not know.
#[utoipa::path(
    get,
    path = "/app/{key}/{rest}",
    tag = "Pusher WebSocket",
    params(
        ("key" = String, Path, description = "Anything."),
        ("rest" = String, Path, description = "Anything (more segments too)."),
    ),
    responses(
        (status = 101, description = "A WebSocket upgrade: refused at once with close code 4005 (path not found)."),
        (status = 404, description = "Not a WebSocket upgrade request.", body = ErrorBody),
    ),
)]
pub async fn bad_path(ws: Result<WsUpgrade, NotAnUpgrade>) -> Response {
    match ws {
        Ok(ws) => ws.on_upgrade(|socket| refuse(socket, codes::PATH_NOT_FOUND, "Path not found".into())),
        Err(_) => (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "not found" }))).into_response(),
    }
}

fn admit(state: &AppState, key: &str, query: Option<&str>, origin: Option<&str>) -> Result<Arc<App>, (u16, String)> {
    let app = state.apps.by_key(key).ok_or_else(|| (codes::APP_NOT_FOUND, format!("App key {key} does not exist")))?;
    let protocol =
        sig::query_pairs(query.unwrap_or_default()).into_iter().find(|(k, _)| k == "protocol").map(|(_, v)| v);
    match protocol {
        None => return Err((codes::NO_PROTOCOL, "No protocol version supplied".into())),
        Some(v) => match v.parse::<u32>() {
            Err(_) => {
                return Err((codes::INVALID_VERSION, "Invalid version string format".into()));
            }
            Ok(n) if !codes::PROTOCOLS.contains(&n) => {
                return Err((codes::UNSUPPORTED_PROTOCOL, format!("Unsupported protocol version {n}")));
            }
            Ok(_) => {}
        },
    }
    if !app.enabled {
        return Err((codes::APP_DISABLED, "Application is disabled".into()));
    }
    if !app.origin_allowed(origin) {
        return Err((codes::UNAUTHORIZED, "Origin not allowed for this app".into()));
    }
    Ok(app)
}

async fn refuse(socket: Socket, code: u16, message: String) {
    metrics::disconnect("refused");
    loop_::refuse(socket, Closing { last_frame: Some(proto::error(code, &message)), code, reason: "refused" }).await;
}

async fn serve(socket: Socket, state: AppState, app: Arc<App>) {
    let conn = match state.realtime.connect(&app.id, Transport::Pusher, app.limits().max_connections) {
        Ok(conn) => conn,
        Err(_) => {
            return refuse(socket, codes::OVER_QUOTA, "Application is over its connection quota".into()).await;
        }
    };
    let shutdown = state.shutdown.token();
    let session = PusherSession::new(state, app, conn);
    loop_::run(socket, session, shutdown).await;
}

/// One Pusher connection's protocol state.
pub struct PusherSession {
    state: AppState,
    app: Arc<App>,
    conn: ConnHandle,
    rules: ChannelRules,
    last_seen: Instant,
    ping_sent: Option<Instant>,
    /// Client events allowed now.
    bucket: TokenBucket,
    /// Presence user per presence channel, for `user_id` on client events.
    presence_user: PresenceUsers,
}

impl PusherSession {
    fn new(state: AppState, app: Arc<App>, conn: ConnHandle) -> Self {
        let limits = app.limits();
        let rules = app.channel_rules();
        let now = Instant::now();
        Self {
            bucket: TokenBucket::full(limits.client_events_per_second),
            state,
            app,
            conn,
            rules,
            last_seen: now,
            ping_sent: None,
            presence_user: PresenceUsers::default(),
        }
    }

    fn activity_timeout(&self) -> Duration {
        Duration::from_secs(self.state.config.pusher.activity_timeout_secs)
    }

    fn pong_timeout(&self) -> Duration {
        Duration::from_secs(self.state.config.pusher.pong_timeout_secs)
    }

    /// The app as it is now (a rotated secret applies to the next signature at once).
    fn current_app(&self) -> Arc<App> {
        self.state.apps.by_id(&self.app.id).unwrap_or_else(|| self.app.clone())
    }

    fn subscribe(&mut self, data: Option<&Value>, out: &mut Replies) {
        let data = normalize(data);
        let Some(raw) = data.as_ref().and_then(|d| d.get("channel")).and_then(Value::as_str) else {
            out.text(proto::error(codes::GENERIC, "pusher:subscribe needs data.channel as a string"));
            return;
        };
        if let Some(user) = raw.strip_prefix(crate::core::channel::USER_PREFIX) {
            // pusher-js subscribes to its own user channel after signin; the signin already
            // joined it, so this only confirms. Anyone else's is refused.
            if self.conn.user().is_some_and(|u| &*u == user) {
                return out.text(proto::subscription_succeeded(raw, None));
            }
            return out.text(proto::subscription_error(raw, "AuthError", "Sign in as this user first", 401));
        }
        let channel = match ChannelName::parse(raw) {
            Ok(c) => c,
            Err(e) => {
                return out.text(proto::subscription_error(raw, "InvalidChannel", &e.to_string(), 400));
            }
        };
        let data = data.as_ref();
        let member = if channel.needs_auth() {
            match self.authorize(&channel, data) {
                Ok(member) => member,
                Err((kind, error, status)) => {
                    return out.text(proto::subscription_error(raw, kind, &error, status));
                }
            }
        } else {
            None
        };
        let user = member.as_ref().map(|m| m.user_id.clone());
        match self.state.realtime.subscribe(&self.conn, &channel, member, &self.rules) {
            Ok(joined) => {
                if let Some(user) = user {
                    self.presence_user.joined(&channel, user);
                }
                out.text(proto::subscription_succeeded(raw, joined.presence.as_ref()));
                match joined.cache {
                    CacheReplay::NotCache => {}
                    CacheReplay::Miss => out.text(proto::cache_miss(raw)),
                    CacheReplay::Hit(event) => out.text(proto::encode_event(&event)),
                }
            }
            Err(e) => {
                let (kind, status) = match e {
                    SubscribeError::ChannelLimit => ("LimitReached", 400),
                    SubscribeError::MemberLimit => ("LimitReached", 403),
                    SubscribeError::MemberRequired => ("AuthError", 401),
                    SubscribeError::Closed => ("Closed", 503),
                };
                out.text(proto::subscription_error(raw, kind, &e.to_string(), status));
            }
        }
    }

    /// Checks `auth` (and presence `channel_data`); returns the presence member.
    fn authorize(
        &self,
        channel: &ChannelName,
        data: Option<&Value>,
    ) -> Result<Option<Member>, (&'static str, String, u16)> {
        let auth_error = |msg: &str| ("AuthError", msg.to_owned(), 401);
        let auth = match data.and_then(|d| d.get("auth")) {
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Null) | None => {
                return Err(auth_error("auth is required for private and presence channels"));
            }
            Some(_) => return Err(auth_error("auth must be a string")),
        };
        let presence = channel.kind() == ChannelKind::Presence;
        let channel_data = if presence {
            match data.and_then(|d| d.get("channel_data")) {
                Some(Value::String(s)) => Some(s.as_str()),
                Some(Value::Null) | None => {
                    return Err(auth_error("channel_data is required for presence channels"));
                }
                Some(_) => return Err(auth_error("channel_data must be a string")),
            }
        } else {
            None
        };
        let app = self.current_app();
        let socket_id = self.conn.socket_id.to_string();
        if !sig::verify_channel(&app.key, &app.secret.0, &socket_id, channel.as_str(), channel_data, auth) {
            return Err(auth_error("Invalid signature: auth does not match this socket and channel"));
        }
        match channel_data {
            None => Ok(None),
            Some(text) => parse_member(text).map(Some).map_err(|why| ("InvalidChannelData", why, 400)),
        }
    }

    fn unsubscribe(&mut self, data: Option<&Value>, out: &mut Replies) {
        let data = normalize(data);
        let Some(raw) = data.as_ref().and_then(|d| d.get("channel")).and_then(Value::as_str) else {
            return out.text(proto::error(codes::GENERIC, "pusher:unsubscribe needs data.channel as a string"));
        };
        if let Ok(channel) = ChannelName::parse(raw) {
            self.state.realtime.unsubscribe(&self.conn, &channel, &self.rules);
            self.presence_user.left(&channel);
        }
    }

    fn client_event(
        &mut self,
        name: &str,
        channel: Option<&str>,
        data: Option<&Value>,
        raw_len: usize,
        out: &mut Replies,
    ) {
        let Some(channel) = channel.and_then(|c| ChannelName::parse(c).ok()) else {
            return out.text(proto::error(codes::GENERIC, "Client event needs a valid channel"));
        };
        if !matches!(channel.kind(), ChannelKind::Private | ChannelKind::Presence) {
            return out
                .text(proto::error(codes::GENERIC, "Client events are only allowed on private and presence channels"));
        }
        if !self.conn.is_subscribed(&channel) {
            return out.text(proto::error(codes::GENERIC, "Client event rejected: not subscribed to this channel"));
        }
        if !fits_chars(name, MAX_EVENT_NAME) {
            return out.text(proto::error(codes::GENERIC, "Event name is longer than 200 characters"));
        }
        if !self.bucket.take(self.app.limits().client_events_per_second) {
            return out.text(proto::error(codes::CLIENT_EVENT_RATE, "Client event rejected due to rate limit"));
        }
        let data = match data {
            Some(Value::String(s)) => Data::Text(s.as_str().into()),
            Some(v) => Data::Json(v.to_string().into()),
            None => Data::Text("".into()),
        };
        let size = match &data {
            Data::Text(s) | Data::Json(s) => s.len(),
        };
        if size > self.app.limits().max_message_bytes || raw_len > self.app.limits().max_message_bytes + ENVELOPE_BYTES
        {
            return out.text(proto::error(codes::GENERIC, "Client event data is over the size limit"));
        }
        let user_id = self.presence_user.get(&channel);
        let event =
            Event { channel: Some(channel), name: name.into(), data, user_id, except: Some(self.conn.socket_id) };
        metrics::published("client");
        if self.state.realtime.publish(&self.app.id, event).is_err() {
            out.text(proto::error(codes::GENERIC, "Event could not be published: broker unavailable"));
        }
    }

    fn signin(&mut self, data: Option<&Value>, out: &mut Replies) -> Flow {
        let data = normalize(data);
        let field = |name: &str| data.as_ref().and_then(|d| d.get(name)).and_then(Value::as_str).map(str::to_owned);
        let (Some(auth), Some(user_data)) = (field("auth"), field("user_data")) else {
            out.text(proto::error(codes::GENERIC, "pusher:signin needs auth and user_data strings"));
            return Flow::Continue;
        };
        let app = self.current_app();
        if !sig::verify_user(&app.key, &app.secret.0, &self.conn.socket_id.to_string(), &user_data, &auth) {
            return close_with(codes::UNAUTHORIZED, "Invalid signature: user authentication failed");
        }
        let parsed: Option<Value> = serde_json::from_str(&user_data).ok();
        let id = match parsed.as_ref().and_then(|v| v.get("id")) {
            Some(Value::String(s)) if !s.is_empty() && fits_chars(s, MAX_USER_ID_LEN) => s.clone(),
            _ => {
                out.text(proto::error(
                    codes::GENERIC,
                    "user_data must be a JSON object with a string id of 1–128 characters",
                ));
                return Flow::Continue;
            }
        };
        let watchlist: Vec<Arc<str>> = match parsed.as_ref().and_then(|v| v.get("watchlist")) {
            Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(Arc::from)).collect(),
            _ => Vec::new(),
        };
        if watchlist.len() > MAX_WATCHLIST {
            out.text(proto::error(codes::WATCHLIST_LIMIT, "Watchlist holds more than 100 user ids"));
            return Flow::Continue;
        }
        let watching = app.switches().watchlist_events;
        let online = self.state.realtime.sign_in(&self.conn, id.into(), if watching { watchlist } else { Vec::new() });
        out.text(proto::signin_success(&user_data));
        if watching {
            let data = serde_json::json!({ "events": [{ "name": "online", "user_ids": online.iter().map(|u| &**u).collect::<Vec<_>>() }] });
            out.text(proto::frame(crate::core::events::WATCHLIST_EVENTS, None, Some(&data.to_string()), None));
        }
        Flow::Continue
    }
}

impl Session for PusherSession {
    fn conn(&self) -> &ConnHandle {
        &self.conn
    }

    fn on_open(&mut self, out: &mut Replies) {
        out.text(proto::connection_established(
            &self.conn.socket_id.to_string(),
            self.state.config.pusher.activity_timeout_secs,
        ));
    }

    fn on_text(&mut self, text: &str, out: &mut Replies) -> Flow {
        let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(text) else {
            out.text(proto::error(codes::GENERIC, "Invalid message: expected a JSON object"));
            return Flow::Continue;
        };
        let Some(Value::String(event)) = msg.remove("event") else {
            out.text(proto::error(codes::GENERIC, "Invalid message: event must be a string"));
            return Flow::Continue;
        };
        let data = msg.get("data");
        match event.as_str() {
            proto::PING => out.text(proto::pong()),
            proto::PONG => {}
            proto::SUBSCRIBE => self.subscribe(data, out),
            proto::UNSUBSCRIBE => self.unsubscribe(data, out),
            proto::SIGNIN => return self.signin(data, out),
            name if name.starts_with("client-") => {
                let channel = msg.get("channel").and_then(Value::as_str);
                self.client_event(name, channel, data, text.len(), out);
            }
            name if name.starts_with("pusher:") || name.starts_with("pusher_internal:") => {
                out.text(proto::error(
                    codes::GENERIC,
                    &format!("Event {name} is reserved and cannot be sent by clients"),
                ));
            }
            _ => out.text(proto::error(
                codes::GENERIC,
                "Unknown event: clients may send pusher: protocol events and client- events",
            )),
        }
        Flow::Continue
    }

    fn on_binary(&mut self, out: &mut Replies) -> Flow {
        out.text(proto::error(codes::GENERIC, "Binary frames are not supported"));
        Flow::Continue
    }

    fn on_activity(&mut self, now: Instant) {
        self.last_seen = now;
        self.ping_sent = None;
    }

    fn deadline(&self) -> Instant {
        match self.ping_sent {
            Some(at) => at + self.pong_timeout(),
            None => self.last_seen + self.activity_timeout(),
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Replies) -> Flow {
        match self.ping_sent {
            Some(at) if now >= at + self.pong_timeout() => {
                metrics::disconnect("pong_timeout");
                Flow::Close(Closing { last_frame: None, code: codes::PONG_TIMEOUT, reason: "Pong reply not received" })
            }
            None if now >= self.last_seen + self.activity_timeout() => {
                self.ping_sent = Some(now);
                out.text(proto::ping());
                Flow::Continue
            }
            _ => Flow::Continue,
        }
    }

    fn closing_for(&self, reason: Disconnect) -> Closing {
        let (code, message) = codes::for_disconnect(reason);
        metrics::disconnect(reason.label());
        Closing { last_frame: Some(proto::error(code, message)), code, reason: message }
    }

    fn finish(&mut self) {
        self.state.realtime.disconnect(&self.conn, &self.rules);
    }
}

fn close_with(code: u16, message: &'static str) -> Flow {
    Flow::Close(Closing { last_frame: Some(proto::error(code, message)), code, reason: message })
}

/// Some clients send `data` as a JSON-encoded string; treat it as the object it encodes.
fn normalize(data: Option<&Value>) -> Option<Value> {
    match data {
        Some(Value::String(s)) => serde_json::from_str(s).ok(),
        Some(v) => Some(v.clone()),
        None => None,
    }
}

/// Parses presence `channel_data`: `{"user_id": string|number, "user_info"?: any}`.
fn parse_member(text: &str) -> Result<Member, String> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Err("channel_data must be a JSON object".into());
    };
    let user_id = match map.get("user_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("channel_data.user_id must be a string or a number".into()),
    };
    if user_id.is_empty() || !fits_chars(&user_id, MAX_USER_ID_LEN) {
        return Err("channel_data.user_id must be 1–128 characters".into());
    }
    let user_info = match map.get("user_info") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = v.to_string();
            if s.len() > MAX_USER_INFO {
                return Err("channel_data.user_info is larger than 1 KB".into());
            }
            Some(Arc::from(s))
        }
    };
    Ok(Member { user_id: user_id.into(), user_info })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members() {
        assert_eq!(&*parse_member(r#"{"user_id":12}"#).unwrap().user_id, "12");
        assert!(parse_member(r#"{"user_id":""}"#).is_err());
        assert!(parse_member(r#"{"user_info":{}}"#).is_err());
        assert!(parse_member("[]").is_err());
        let big = format!(r#"{{"user_id":"a","user_info":"{}"}}"#, "x".repeat(1100));
        assert!(parse_member(&big).is_err());
    }
}
