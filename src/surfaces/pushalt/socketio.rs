//! Push-Alt's Socket.IO side (SPEC §5, CONTRACTS §1.3) at `/ws`: `join_channel` with a channel
//! token, channel events named `workspace:<n>:<channel>:<event>`, and the `message` relay.
//!
//! A socket is a core connection (the Socket.IO transport's); it starts in a lobby app and its
//! first valid token moves it into the token's app ([`Socket::move_to_app`]), under that app's
//! connection quota, channel limit and origin list. **One socket, one workspace**: a socket
//! holds channels of one app only, because the core keeps a connection in one app's space (its
//! quota, its deactivation, its limits). A token of another app on a socket that already joined
//! gets `error` and the disconnect, as any failed join; a client that listens to two workspaces
//! opens a socket for each (docs/migrating-from-push-alt.md).
//!
//! The relay goes through the core and its Broker like every publish, as a Socket.IO-only event
//! ([`events::SOCKETIO_ONLY`]): encoded once for all Socket.IO subscribers of the channel,
//! cluster-wide, never rendered for Pusher or Notif sockets.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::apps::{App, AppCache};
use crate::audit::{self, Refusal};
use crate::channel_tokens::{ChannelTokens, Grant, TokenError};
use crate::core::{ChannelName, Data, Event, MoveError, Realtime, SubscribeError, events};
use crate::metrics;
use crate::ratelimit::TokenBucket;
use crate::transport::socketio::{Args, JoinError, Message, Namespace, Naming, Socket, SocketIo};

/// What every failed token check answers, whatever failed (nothing is learned by trying).
pub const INVALID_TOKEN: &str = "Invalid token or channel";
/// Token checks one socket may have under way at once; more are refused (each is a lookup).
const MAX_PENDING_JOINS: usize = 4;
/// `join_channel`s one socket may send a second (a burst of as many): the webapp sends one per
/// channel on each connect; past it, `error` (the socket stays).
const JOINS_PER_SECOND: u32 = 10;

/// What the Push-Alt handlers need from the server.
#[derive(Clone)]
pub struct Deps {
    pub apps: AppCache,
    pub tokens: Arc<ChannelTokens>,
    pub realtime: Realtime,
    /// Ends token checks under way when the server shuts down (their owner).
    pub shutdown: CancellationToken,
}

/// One socket's Push-Alt state, kept with the socket.
#[derive(Default)]
struct PushAltSocket(Mutex<Joins>);

#[derive(Default)]
struct Joins {
    /// The app its channels belong to, once it joined one.
    app: Option<Arc<App>>,
    /// Its first channel: where its `message` events are relayed.
    first: Option<ChannelName>,
}

/// One connection's Push-Alt limits, kept with the connection: a client that leaves the
/// namespace and connects again gets a new socket, not new room for token checks and relays.
#[derive(Default)]
struct PushAltConn(Mutex<Limits>);

#[derive(Default)]
struct Limits {
    /// Token checks under way.
    pending: usize,
    /// `join_channel`s per second ([`JOINS_PER_SECOND`]), made at the first.
    joins: Option<TokenBucket>,
    /// Relays per second, refilled at the app's `client_events_per_second`; made at the first
    /// join, at that app's rate.
    relays: Option<TokenBucket>,
}

/// Push-Alt's Socket.IO setup at `/ws`: the main namespace, its channel events named
/// [`channel_naming`], `join_channel` and the `message` relay.
pub fn setup(deps: Deps) -> SocketIo {
    let joins = deps.clone();
    let ns = Namespace::new()
        .channel_naming(channel_naming(deps.apps.clone()))
        .on_connect(|socket, _auth| {
            socket.set_data(PushAltSocket::default());
            Ok(())
        })
        .on("join_channel", move |socket, message| join_channel(&joins, socket, message))
        .on("message", move |socket, message| relay(&deps, socket, message));
    SocketIo::new().namespace("/", ns)
}

/// `join_channel {token, channel_name}`: checks the token (a store lookup, on a task of its
/// own), then joins its channel or answers `error` and disconnects.
fn join_channel(deps: &Deps, socket: &Socket, message: Message) {
    let (Some(state), Some(limits)) = (socket.data::<PushAltSocket>(), socket.connection_data::<PushAltConn>()) else {
        return;
    };
    let Some((token, named)) = token_of(&message.args) else {
        refuse(socket, INVALID_TOKEN);
        return;
    };
    {
        let mut joins = limits.0.lock();
        if joins.pending >= MAX_PENDING_JOINS {
            drop(joins);
            let _ = socket.emit("error", &message_args("Too many joins at once: wait for joined"));
            return;
        }
        if !joins.joins.get_or_insert_with(|| TokenBucket::full(JOINS_PER_SECOND)).take(JOINS_PER_SECOND) {
            drop(joins);
            let text = format!("Too many joins: at most {JOINS_PER_SECOND} a second");
            let _ = socket.emit("error", &message_args(&text));
            return;
        }
        joins.pending += 1;
    }
    let (deps, socket) = (deps.clone(), socket.clone());
    tokio::spawn(async move {
        let checked = tokio::select! {
            checked = deps.tokens.check(&deps.apps, &token) => checked,
            () = deps.shutdown.cancelled() => return,
        };
        limits.0.lock().pending -= 1;
        match checked {
            Ok(grant) => joined(&socket, &state, &limits, grant, named.as_deref()),
            Err(e) => {
                let reason = match &e {
                    TokenError::Store(err) => {
                        tracing::warn!(error = %err, "channel token lookup failed");
                        "Could not check the token now: try again"
                    }
                    _ => INVALID_TOKEN,
                };
                audit::refused(Refusal::BadToken, client(&socket), "join_channel", &e);
                refuse(&socket, reason);
            }
        }
    });
}

/// The token (a string) and the channel name the client says it is for, from the first
/// argument; `None` for anything else (no argument, `null`, not an object, no token).
fn token_of(args: &Args) -> Option<(String, Option<String>)> {
    let first: Value = args.first().ok()?;
    let object = first.as_object()?;
    let token = object.get("token")?.as_str()?.to_owned();
    let named = object.get("channel_name").and_then(Value::as_str).map(str::to_owned);
    Some((token, named))
}

/// A valid grant: the app's origin list, the one-workspace rule, then the core's subscribe.
fn joined(socket: &Socket, state: &PushAltSocket, conn: &PushAltConn, grant: Grant, named: Option<&str>) {
    let Grant { app, channel, .. } = grant;
    let origin = socket.handshake().origin.as_deref();
    if !app.origin_allowed(origin) {
        let shown: String = origin.unwrap_or_default().chars().take(64).collect();
        audit::refused(Refusal::OriginRefused, client(socket), &app.id, &format!("origin {shown:?} at join_channel"));
        refuse(socket, INVALID_TOKEN);
        return;
    }
    if named.is_some_and(|n| n != channel.as_str()) {
        // Push-Alt read only the token; a client naming another channel is told nothing.
        tracing::debug!(app = %app.id, channel = %channel, "join_channel names another channel than its token's");
    }
    let mut joins = state.0.lock();
    match &joins.app {
        Some(current) if current.id != app.id => {
            drop(joins);
            refuse(socket, "This socket has joined channels of another workspace: open one socket per workspace");
            return;
        }
        Some(_) => {}
        None => {
            let limits = app.limits();
            match socket.move_to_app(&app.id, app.channel_rules(), limits.max_connections) {
                Ok(()) => {}
                Err(MoveError::OverQuota) => {
                    drop(joins);
                    refuse(socket, "Workspace is over its connection quota");
                    return;
                }
                Err(MoveError::Joined | MoveError::Closed) => return,
            }
            conn.0.lock().relays.get_or_insert_with(|| TokenBucket::full(limits.client_events_per_second));
            joins.app = Some(app.clone());
        }
    }
    match socket.join(&channel) {
        Ok(_) => {
            joins.first.get_or_insert_with(|| channel.clone());
            drop(joins);
            let text = format!("Connected to {channel} in workspace {}", app.number);
            let _ = socket.emit("joined", &message_args(&text));
        }
        Err(JoinError::Subscribe(SubscribeError::ChannelLimit)) => {
            drop(joins);
            let max = app.limits().max_channels_per_connection;
            refuse(socket, &format!("Too many channels on this socket (at most {max})"));
        }
        // Gone meanwhile, or a channel the core refuses: nothing to tell a closed socket.
        Err(e) => {
            drop(joins);
            tracing::debug!(error = %e, "join_channel after the socket left");
            refuse(socket, INVALID_TOKEN);
        }
    }
}

/// The `message` relay: the socket's first channel, every Socket.IO socket in it (the sender
/// too), through the core. Over the size or rate limit: `error`, the socket stays.
fn relay(deps: &Deps, socket: &Socket, message: Message) {
    let (Some(state), Some(conn)) = (socket.data::<PushAltSocket>(), socket.connection_data::<PushAltConn>()) else {
        return;
    };
    let (app, channel) = {
        let joins = state.0.lock();
        let (Some(app), Some(channel)) = (joins.app.clone(), joins.first.clone()) else {
            return; // joined nothing: relays nothing
        };
        drop(joins);
        let limits = app.limits();
        if message.args.text().len() > limits.max_message_bytes {
            let text = format!("Message too large: at most {} bytes", limits.max_message_bytes);
            let _ = socket.emit("error", &message_args(&text));
            return;
        }
        if !conn.0.lock().relays.as_mut().is_some_and(|b| b.take(limits.client_events_per_second)) {
            let text = format!("Too many messages: at most {} a second", limits.client_events_per_second);
            let _ = socket.emit("error", &message_args(&text));
            return;
        }
        (app, channel)
    };
    if !message.args.attachments().is_empty() {
        let _ = socket.emit("error", &message_args("Binary messages are not relayed"));
        return;
    }
    // Push-Alt relayed its handler's one argument, as it came; none is `null`.
    let data = match message.args.first::<Box<RawValue>>() {
        Ok(raw) => Data::json_from_raw(raw.get()),
        Err(_) => Data::Json("null".into()),
    };
    let event = Event {
        channel: Some(channel),
        name: format!("{}message", events::SOCKETIO_ONLY).into(),
        data,
        user_id: None,
        except: None,
    };
    metrics::published("client");
    if let Err(e) = deps.realtime.publish_or_here(&app.id, event) {
        // SPEC §9: relays still reach this node's sockets while the broker is down.
        tracing::debug!(error = %e, "relay delivered on this node only");
    }
}

/// `error {message}`, then the server's disconnect (socket.io-client: `io server disconnect`).
fn refuse(socket: &Socket, text: &str) {
    let _ = socket.emit("error", &message_args(text));
    socket.disconnect();
}

/// `{message: text}` as the one argument.
fn message_args(text: &str) -> Args {
    Args::json(&serde_json::json!({ "message": text })).unwrap_or_default()
}

fn client(socket: &Socket) -> IpAddr {
    socket.handshake().client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// `workspace:<n>:<channel>:<event>`, `<n>` the app's number: what Push-Alt's clients listen
/// for. One app lookup per broadcast, never per socket.
pub fn channel_naming(apps: AppCache) -> Naming {
    Arc::new(move |app_id: &str, event: &Event| {
        let channel = event.channel.as_ref().map_or("", |c| c.as_str());
        match apps.by_id(app_id) {
            Some(app) => event_name(app.number, channel, &event.name),
            // Gone meanwhile: its sockets are being closed; the event keeps its own name.
            None => event.name.to_string(),
        }
    })
}

/// The name a Push-Alt client listens for.
pub fn event_name(number: i64, channel: &str, event: &str) -> String {
    format!("workspace:{number}:{channel}:{event}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_named_by_workspace_and_channel() {
        assert_eq!(event_name(7, "orders", "message"), "workspace:7:orders:message");
    }

    #[test]
    fn only_an_object_with_a_string_token_is_a_join() {
        let args = |text: &str| Args::from_parts(text, Vec::new());
        assert_eq!(
            token_of(&args(r#"{"token":"abc","channel_name":"orders"}"#)),
            Some(("abc".into(), Some("orders".into())))
        );
        assert_eq!(token_of(&args(r#"{"token":"abc"}"#)), Some(("abc".into(), None)));
        for bad in ["", "null", r#""abc""#, "[1]", r#"{"token":{"$ne":null}}"#, r#"{"channel_name":"x"}"#] {
            assert_eq!(token_of(&args(bad)), None, "{bad}");
        }
    }
}
