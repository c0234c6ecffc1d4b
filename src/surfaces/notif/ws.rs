//! The Notif WebSocket endpoint `GET /ws` (SPEC §4): the upgrade checks, answered as HTTP 401
//! JSON before upgrading as Notif did, and the session each connection runs inside the shared
//! loop. Errors on an open socket are `pusher:error` frames; the socket stays open.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;

use super::codes;
use super::error::ApiError;
use super::protocol::{self as proto, ClientFrame, Subscribe};
use crate::apps::App;
use crate::audit;
use crate::auth::pusher as sig;
use crate::core::{
    CacheReplay, ChannelKind, ChannelName, ChannelRules, ConnHandle, Data, Disconnect, Event, MAX_USER_ID_LEN,
    MAX_WATCHLIST, Member, SubscribeError, Transport, fits_chars,
};
use crate::metrics;
use crate::ratelimit::TokenBucket;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::surfaces::PresenceUsers;
use crate::transport::ws::{self as loop_, Closing, Flow, NotAnUpgrade, Replies, Session, Socket, WsUpgrade};

/// Header carrying the app key when the query has no `api_key` (Notif's alternative).
pub const KEY_HEADER: &str = "x-app-key";
/// Room for the JSON envelope around an event's `data` in one frame.
const ENVELOPE_BYTES: usize = 4096;
/// A WebSocket Ping goes out this often (SPEC §4).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// A connection that sent no frame at all (a Pong counts) for this long is closed (SPEC §4).
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(90);

/// `GET /ws`: key, app and origin checks, then the upgrade. (With `EIO=` in the query the router
/// sends the request to Engine.IO instead.)
pub async fn upgrade(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WsUpgrade, NotAnUpgrade>,
) -> Response {
    let params = sig::query_pairs(query.as_deref().unwrap_or_default());
    let app = match admit(&state, &params, &headers) {
        Ok(app) => app,
        Err(e) => {
            metrics::disconnect("refused");
            let kind = match e {
                ApiError::OriginRequired | ApiError::OriginMismatch => Some(audit::Refusal::OriginRefused),
                ApiError::InvalidKey => Some(audit::Refusal::UnknownKey),
                _ => None,
            };
            if let Some(kind) = kind {
                audit::refused(kind, client, "/ws", &e);
            }
            return e.into_response();
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(not) => return not.refusal(ApiError::NotAnUpgrade.into_response()),
    };
    let extra_events = params.iter().any(|(k, v)| k == "extra_events" && (v == "1" || v == "true"));
    let cap = app.limits().max_message_bytes + ENVELOPE_BYTES;
    ws.max_message_size(cap).on_upgrade(move |socket| serve(socket, state, app, extra_events))
}

/// The app the key names, if it is enabled and the origin may use it.
fn admit(state: &AppState, params: &[(String, String)], headers: &HeaderMap) -> Result<Arc<App>, ApiError> {
    let key = params
        .iter()
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.as_str())
        .or_else(|| headers.get(KEY_HEADER).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::KeyRequired)?;
    let app = state.apps.by_key(key).filter(|a| a.enabled).ok_or(ApiError::InvalidKey)?;
    // An Origin that is not text is sent but cannot match: it is not "missing".
    let origin = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or_default());
    if !app.origin_allowed(origin) {
        return Err(if origin.is_none() { ApiError::OriginRequired } else { ApiError::OriginMismatch });
    }
    Ok(app)
}

async fn serve(socket: Socket, state: AppState, app: Arc<App>, extra_events: bool) {
    let conn = match state.realtime.connect(&app.id, Transport::Notif, app.limits().max_connections) {
        Ok(conn) => conn,
        Err(_) => {
            metrics::disconnect("refused");
            let message = "Application is over its connection quota";
            let last_frame = Some(proto::error(codes::OVER_LIMIT, message, None));
            return loop_::refuse(socket, Closing { last_frame, code: codes::OVER_LIMIT, reason: message }).await;
        }
    };
    if !extra_events {
        // Member events, subscription counts and watchlists (SPEC §4: notifmoo.js would hand
        // unknown frames to the app).
        conn.skip_extras();
    }
    let shutdown = state.shutdown.token();
    let session = NotifSession::new(state, app, conn, extra_events);
    loop_::run(socket, session, shutdown).await;
}

/// WebSocket-level liveness: a Ping every [`PING_INTERVAL`]; closed after [`LIVENESS_TIMEOUT`]
/// without any frame from the client. Silence in JSON alone never closes a Notif socket.
#[derive(Debug, Clone, Copy)]
struct Liveness {
    last_seen: Instant,
    next_ping: Instant,
}

#[derive(Debug, PartialEq, Eq)]
enum Tick {
    Wait,
    Ping,
    Dead,
}

impl Liveness {
    fn new(now: Instant) -> Self {
        Self { last_seen: now, next_ping: now + PING_INTERVAL }
    }

    fn seen(&mut self, now: Instant) {
        self.last_seen = now;
    }

    fn deadline(&self) -> Instant {
        self.next_ping.min(self.last_seen + LIVENESS_TIMEOUT)
    }

    fn tick(&mut self, now: Instant) -> Tick {
        if now >= self.last_seen + LIVENESS_TIMEOUT {
            Tick::Dead
        } else if now >= self.next_ping {
            self.next_ping = now + PING_INTERVAL;
            Tick::Ping
        } else {
            Tick::Wait
        }
    }
}

/// One Notif connection's protocol state.
pub struct NotifSession {
    state: AppState,
    app: Arc<App>,
    conn: ConnHandle,
    rules: ChannelRules,
    /// `extra_events=1`: member events, cache misses and sign-in frames are sent too.
    extra_events: bool,
    liveness: Liveness,
    /// Client events allowed now.
    bucket: TokenBucket,
    /// Presence user per presence channel, for `user_id` on client events.
    presence_user: PresenceUsers,
}

type Refusal = (u16, String);

impl NotifSession {
    fn new(state: AppState, app: Arc<App>, conn: ConnHandle, extra_events: bool) -> Self {
        let limits = app.limits();
        let rules = app.channel_rules();
        let now = Instant::now();
        Self {
            bucket: TokenBucket::full(limits.client_events_per_second),
            state,
            app,
            conn,
            rules,
            extra_events,
            liveness: Liveness::new(now),
            presence_user: PresenceUsers::default(),
        }
    }

    /// The app as it is now (a rotated secret applies to the next signature at once).
    fn current_app(&self) -> Arc<App> {
        self.state.apps.by_id(&self.app.id).unwrap_or_else(|| self.app.clone())
    }

    fn subscribe(&mut self, sub: Subscribe, out: &mut Replies) {
        let name = sub.channel.as_str().to_owned();
        let member = if sub.channel.needs_auth() {
            match self.authorize(&sub) {
                Ok(member) => member,
                Err((code, message)) => return out.text(proto::error(code, &message, Some(&name))),
            }
        } else {
            None
        };
        let user = member.as_ref().map(|m| m.user_id.clone());
        match self.state.realtime.subscribe(&self.conn, &sub.channel, member, &self.rules) {
            Ok(joined) => {
                if let Some(user) = user {
                    self.presence_user.joined(&sub.channel, user);
                }
                out.text(proto::subscription_succeeded(&name, joined.presence.as_ref()));
                match joined.cache {
                    CacheReplay::NotCache => {}
                    CacheReplay::Miss if self.extra_events => out.text(proto::cache_miss(&name)),
                    CacheReplay::Miss => {}
                    CacheReplay::Hit(event) => out.text(proto::encode_event(&event)),
                }
            }
            Err(SubscribeError::Closed) => {}
            Err(e) => {
                let code = match e {
                    SubscribeError::MemberRequired => codes::AUTH_FAILED,
                    _ => codes::OVER_LIMIT,
                };
                let limit = match e {
                    SubscribeError::ChannelLimit => format!(" (limit {})", self.rules.max_channels),
                    SubscribeError::MemberLimit => format!(" (limit {})", self.rules.max_members),
                    _ => String::new(),
                };
                out.text(proto::error(code, &format!("Subscribe failed: {e}{limit}"), Some(&name)));
            }
        }
    }

    /// Checks `auth` (and presence `channel_data`) the lenient Notif way; returns the member.
    fn authorize(&self, sub: &Subscribe) -> Result<Option<Member>, Refusal> {
        let failed = || (codes::AUTH_FAILED, "Auth failed for channel".to_owned());
        let auth = sub.auth.as_deref().ok_or_else(failed)?;
        let presence = sub.channel.kind() == ChannelKind::Presence;
        let forms = match (&sub.channel_data, presence) {
            (Some(data), true) => proto::signed_forms(data),
            _ => Vec::new(),
        };
        let forms: Vec<&str> = forms.iter().map(String::as_str).collect();
        let app = self.current_app();
        let socket_id = self.conn.socket_id.to_string();
        if !sig::verify_channel_notif(&app.key, &app.secret.0, &socket_id, sub.channel.as_str(), &forms, auth) {
            return Err(failed());
        }
        if !presence {
            return Ok(None);
        }
        proto::member_of(sub.channel_data.as_ref(), &socket_id).map(Some).map_err(|e| {
            let code = match e {
                proto::MemberError::InfoTooLarge => codes::OVER_LIMIT,
                proto::MemberError::BadUserId => codes::BAD_FRAME,
            };
            (code, format!("Subscribe failed: {e}"))
        })
    }

    fn unsubscribe(&mut self, channel: &ChannelName) {
        self.state.realtime.unsubscribe(&self.conn, channel, &self.rules);
        self.presence_user.left(channel);
    }

    fn client_event(&mut self, name: String, channel: ChannelName, data: Value, out: &mut Replies) {
        let refuse = |out: &mut Replies, code: u16, message: &str| out.text(proto::error(code, message, None));
        if !matches!(channel.kind(), ChannelKind::Private | ChannelKind::Presence) {
            return refuse(out, codes::BAD_FRAME, "Client events are only allowed on private and presence channels");
        }
        if !self.conn.is_subscribed(&channel) {
            return refuse(out, codes::BAD_FRAME, "Client event rejected: not subscribed to this channel");
        }
        if !self.bucket.take(self.app.limits().client_events_per_second) {
            return refuse(out, codes::RATE_LIMITED, "Client event rejected due to rate limit");
        }
        // A Notif client publishes JSON values; they reach Pusher clients encoded once.
        let data = data.to_string();
        if data.len() > self.app.limits().max_message_bytes {
            return refuse(out, codes::OVER_LIMIT, "Client event data is over the size limit");
        }
        let user_id = self.presence_user.get(&channel);
        let event = Event {
            channel: Some(channel),
            name: name.into(),
            data: Data::Json(data.into()),
            user_id,
            except: Some(self.conn.socket_id),
        };
        metrics::published("client");
        if self.state.realtime.publish(&self.app.id, event).is_err() {
            refuse(out, codes::BAD_FRAME, "Event could not be published: broker unavailable");
        }
    }

    /// `pusher:signin` (extra events only): Pusher's user authentication, errors kept open.
    fn signin(&mut self, auth: &str, user_data: &str, out: &mut Replies) {
        let refuse = |out: &mut Replies, code: u16, message: &str| out.text(proto::error(code, message, None));
        if !self.extra_events {
            return refuse(out, codes::BAD_FRAME, "pusher:signin needs extra_events=1 on the connection URL");
        }
        let app = self.current_app();
        if !sig::verify_user(&app.key, &app.secret.0, &self.conn.socket_id.to_string(), user_data, auth) {
            return refuse(out, codes::AUTH_FAILED, "Invalid signature: user authentication failed");
        }
        let parsed: Option<Value> = serde_json::from_str(user_data).ok();
        let id = match parsed.as_ref().and_then(|v| v.get("id")) {
            Some(Value::String(s)) if !s.is_empty() && fits_chars(s, MAX_USER_ID_LEN) => s.clone(),
            _ => {
                return refuse(
                    out,
                    codes::BAD_FRAME,
                    "user_data must be a JSON object with a string id of 1–128 characters",
                );
            }
        };
        let watchlist: Vec<Arc<str>> = match parsed.as_ref().and_then(|v| v.get("watchlist")) {
            Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(Arc::from)).collect(),
            _ => Vec::new(),
        };
        if watchlist.len() > MAX_WATCHLIST {
            return refuse(out, codes::OVER_LIMIT, "Watchlist holds more than 100 user ids");
        }
        let watching = app.switches().watchlist_events;
        let online = self.state.realtime.sign_in(&self.conn, id.into(), if watching { watchlist } else { Vec::new() });
        out.text(proto::signin_success(user_data));
        if watching {
            let ids: Vec<&str> = online.iter().map(|u| &**u).collect();
            let data = serde_json::json!({ "events": [{ "name": "online", "user_ids": ids }] });
            out.text(proto::encode_event(&Event {
                channel: None,
                name: crate::core::events::WATCHLIST_EVENTS.into(),
                data: Data::Json(data.to_string().into()),
                user_id: None,
                except: None,
            }));
        }
    }
}

impl Session for NotifSession {
    fn conn(&self) -> &ConnHandle {
        &self.conn
    }

    fn on_open(&mut self, out: &mut Replies) {
        out.text(proto::connection_established(&self.conn.socket_id.to_string()));
    }

    fn on_text(&mut self, text: &str, out: &mut Replies) -> Flow {
        match proto::parse_frame(text) {
            Ok(ClientFrame::Subscribe(sub)) => self.subscribe(sub, out),
            Ok(ClientFrame::Unsubscribe(channel)) => self.unsubscribe(&channel),
            Ok(ClientFrame::Ping) => out.text(proto::pong()),
            Ok(ClientFrame::Pong) => {}
            Ok(ClientFrame::Signin { auth, user_data }) => self.signin(&auth, &user_data, out),
            Ok(ClientFrame::ClientEvent { name, channel, data }) => self.client_event(name, channel, data, out),
            Err(e) => out.text(proto::error(codes::BAD_FRAME, &e.to_string(), e.channel())),
        }
        Flow::Continue
    }

    fn on_binary(&mut self, out: &mut Replies) -> Flow {
        out.text(proto::error(codes::BAD_FRAME, "Binary frames are not supported", None));
        Flow::Continue
    }

    fn on_activity(&mut self, now: Instant) {
        self.liveness.seen(now);
    }

    fn deadline(&self) -> Instant {
        self.liveness.deadline()
    }

    fn on_timer(&mut self, now: Instant, out: &mut Replies) -> Flow {
        match self.liveness.tick(now) {
            Tick::Wait => Flow::Continue,
            Tick::Ping => {
                out.ping();
                Flow::Continue
            }
            Tick::Dead => {
                metrics::disconnect("pong_timeout");
                Flow::Close(Closing { last_frame: None, code: codes::PONG_TIMEOUT, reason: "Pong reply not received" })
            }
        }
    }

    fn closing_for(&self, reason: Disconnect) -> Closing {
        let (code, message) = codes::for_disconnect(reason);
        metrics::disconnect(reason.label());
        // A restart is routine: notifmoo.js reconnects on the close alone, without an onError.
        let last_frame = (reason != Disconnect::Shutdown).then(|| proto::error(code, message, None));
        Closing { last_frame, code, reason: message }
    }

    fn finish(&mut self) {
        self.state.realtime.disconnect(&self.conn, &self.rules);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_pings_every_interval_and_gives_up_without_frames() {
        let start = Instant::now();
        let mut l = Liveness::new(start);
        assert_eq!(l.deadline(), start + PING_INTERVAL);
        assert_eq!(l.tick(start + Duration::from_secs(1)), Tick::Wait);
        assert_eq!(l.tick(start + PING_INTERVAL), Tick::Ping);
        assert_eq!(l.deadline(), start + PING_INTERVAL * 2);
        // A Pong (any frame) keeps it alive.
        l.seen(start + Duration::from_secs(31));
        assert_eq!(l.tick(start + PING_INTERVAL * 2), Tick::Ping);
        assert_eq!(l.tick(start + PING_INTERVAL * 3), Tick::Ping);
        assert_eq!(l.tick(start + PING_INTERVAL * 4), Tick::Ping);
        assert_eq!(l.deadline(), start + Duration::from_secs(31) + LIVENESS_TIMEOUT);
        assert_eq!(l.tick(start + Duration::from_secs(31) + LIVENESS_TIMEOUT), Tick::Dead);
    }
}
