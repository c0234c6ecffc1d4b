//! The realtime core: the transport-neutral engine every surface calls. Channels,
//! subscriptions, presence, cache channels, signed-in users and fan-out live here.
//!
//! The core knows a connection as a [`ConnHandle`] with a [`Transport`] id and encodes events
//! with the encoder its surface registered. It imports no axum, socketioxide, sqlx or surface
//! type, and gets app limits as values ([`ChannelRules`]). Every publish goes through the
//! [`Broker`]; what the broker hands back is delivered to local subscribers.

pub mod channel;
pub mod conn;
mod fanout;
mod flush;
mod presence;
mod registry;
mod signal;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{RwLock, RwLockWriteGuard};

pub use crate::broker::wire::Data;
use crate::broker::{self, Broker, Envelope, wire};
use crate::metrics;
pub use channel::{ChannelKind, ChannelName, ChannelNameError};
pub use conn::{Conn, ConnHandle, Dialect, Disconnect, Flushed, OutboxLimits, SocketId, Transport, Wire};
pub use fanout::Encoder;
use fanout::Encoders;
use flush::FlushQueue;
pub use presence::PresenceSnapshot;
use registry::{AppSpace, Cached, Channel, Subscriber};

/// Longest user id, in characters (SPEC §3).
pub const MAX_USER_ID_LEN: usize = 128;
/// Longest event name, in characters (SPEC §3, as Pusher).
pub const MAX_EVENT_NAME: usize = 200;
/// How long a cache channel keeps its last event (as Pusher: 30 minutes).
pub const CACHE_TTL: Duration = Duration::from_secs(30 * 60);
/// Most users one watchlist may hold (SPEC §3).
pub const MAX_WATCHLIST: usize = 100;

/// Whether `s` has at most `max` characters: Pusher's limits (and its SDKs' checks) count
/// characters, not UTF-8 bytes.
pub fn fits_chars(s: &str, max: usize) -> bool {
    s.len() <= max || (s.len() <= 4 * max && s.chars().count() <= max)
}

/// Internal event names the core raises.
pub mod events {
    pub const MEMBER_ADDED: &str = "pusher_internal:member_added";
    pub const MEMBER_REMOVED: &str = "pusher_internal:member_removed";
    pub const SUBSCRIPTION_COUNT: &str = "pusher_internal:subscription_count";
    pub const WATCHLIST_EVENTS: &str = "pusher_internal:watchlist_events";
    /// Prefix of events only Socket.IO connections get, named by the rest (Push-Alt's
    /// `message` relay: SPEC §5 sends it "to every Socket.IO socket" of the channel). In the
    /// reserved `pusher_internal:` space, so no publisher can send one; every Socket.IO
    /// connection takes them, protocol extras or not.
    pub const SOCKETIO_ONLY: &str = "pusher_internal:socketio:";
}

/// An event on its way to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `None` for messages addressed to one connection (watchlist events).
    pub channel: Option<ChannelName>,
    pub name: Arc<str>,
    pub data: Data,
    /// For client events on presence channels: the sender's user id.
    pub user_id: Option<Arc<str>>,
    /// A connection that must not get it (the publisher's own, as Pusher's `socket_id`).
    pub except: Option<SocketId>,
}

impl Event {
    /// Internal events (`pusher:`, `pusher_internal:`) are never cached or counted as messages.
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("pusher_internal:") || self.name.starts_with("pusher:")
    }

    /// Pusher-protocol extras the core fans out (member events, subscription counts,
    /// watchlists), which some connections leave out.
    pub fn is_protocol_extra(&self) -> bool {
        self.name.starts_with("pusher_internal:")
    }

    /// For Socket.IO connections only ([`events::SOCKETIO_ONLY`]).
    pub fn is_socketio_only(&self) -> bool {
        self.name.starts_with(events::SOCKETIO_ONLY)
    }
}

/// App limits and switches that matter to a subscription, passed as values.
#[derive(Debug, Clone, Copy)]
pub struct ChannelRules {
    pub max_members: usize,
    pub max_channels: usize,
    pub subscription_count: bool,
}

/// A presence member as a subscriber declares it.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: Arc<str>,
    /// `user_info` as compact JSON text.
    pub user_info: Option<Arc<str>>,
}

/// What a new subscriber is told.
#[derive(Debug, Clone)]
pub struct Joined {
    pub presence: Option<PresenceSnapshot>,
    pub cache: CacheReplay,
}

/// For cache channels: the event to replay, or a miss.
#[derive(Debug, Clone)]
pub enum CacheReplay {
    NotCache,
    Miss,
    Hit(Event),
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("connection is subscribed to too many channels")]
    ChannelLimit,
    #[error("presence channel has reached its member limit")]
    MemberLimit,
    #[error("presence channels need channel_data with a user_id")]
    MemberRequired,
    #[error("connection is closed")]
    Closed,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("app is over its connection quota")]
    OverQuota,
}

/// Why a connection did not move to another app.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    #[error("the connection has already joined channels of its app")]
    Joined,
    #[error("app is over its connection quota")]
    OverQuota,
    #[error("connection is closed")]
    Closed,
}

/// Occupancy of one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub subscription_count: usize,
    /// Presence channels only.
    pub user_count: Option<usize>,
    /// When the channel became occupied (ms since the epoch); 0 when it is not.
    pub occupied_since: i64,
}

/// A live connection, for operators' views.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub socket_id: SocketId,
    pub transport: Transport,
    pub connected_at: i64,
    pub channels: Vec<ChannelName>,
    pub user: Option<Arc<str>>,
}

/// The engine handle: cheap to clone.
#[derive(Clone)]
pub struct Realtime(Arc<Inner>);

struct Inner {
    node: u32,
    seq: AtomicU64,
    spaces: RwLock<HashMap<Arc<str>, Arc<AppSpace>>>,
    broker: Arc<dyn Broker>,
    encoders: Encoders,
    outbox: OutboxLimits,
    /// One flush queue per core: connections are spread over them by sequence number.
    flush: Vec<Arc<FlushQueue<ConnHandle>>>,
}

/// What the broker calls back into; weak so the broker does not keep the core alive.
struct SinkRef(Weak<Inner>);

impl broker::Sink for SinkRef {
    fn deliver(&self, envelope: Envelope) {
        if let Some(inner) = self.0.upgrade() {
            inner.deliver(envelope);
        }
    }
}

impl Realtime {
    /// Builds the engine on a broker; each connection gets an outbox bounded by `outbox`.
    pub fn new(broker: Arc<dyn Broker>, outbox: OutboxLimits) -> Self {
        let node = loop {
            let n: u32 = rand::random();
            if n > 0 {
                break n;
            }
        };
        let inner = Arc::new(Inner {
            node,
            seq: AtomicU64::new(1),
            spaces: RwLock::default(),
            broker: broker.clone(),
            encoders: Encoders::default(),
            outbox,
            flush: (0..std::thread::available_parallelism().map_or(1, usize::from))
                .map(|_| Arc::new(FlushQueue::default()))
                .collect(),
        });
        broker.attach(Arc::new(SinkRef(Arc::downgrade(&inner))));
        Self(inner)
    }

    /// Registers the frame encoder of a transport (once, at start).
    pub fn register_encoder(&self, transport: Transport, encoder: impl Fn(&Event) -> Bytes + Send + Sync + 'static) {
        self.0.encoders.register(transport, Arc::new(move |_: &str, e: &Event| encoder(e)));
    }

    /// Registers another way of encoding a transport's events (Socket.IO surfaces name channel
    /// events each their own way) and returns it for [`Conn::set_dialect`]; `None` when all
    /// [`Dialect::COUNT`] are taken. Each dialect in use costs a broadcast one encoding.
    pub fn register_dialect(&self, transport: Transport, encoder: Encoder) -> Option<Dialect> {
        self.0.encoders.add_dialect(transport, encoder)
    }

    pub fn broker_healthy(&self) -> bool {
        self.0.broker.healthy()
    }

    pub fn broker_name(&self) -> &'static str {
        self.0.broker.name()
    }

    /// Opens a connection for `app`, counting it against `max_connections` (0 = unlimited).
    pub fn connect(
        &self,
        app: &Arc<str>,
        transport: Transport,
        max_connections: u64,
    ) -> Result<ConnHandle, ConnectError> {
        let space = self.0.space(app);
        let now = space.connection_count.fetch_add(1, Ordering::AcqRel) + 1;
        if max_connections > 0 && now > max_connections {
            space.connection_count.fetch_sub(1, Ordering::AcqRel);
            return Err(ConnectError::OverQuota);
        }
        let socket_id = SocketId { node: self.0.node, seq: self.0.seq.fetch_add(1, Ordering::Relaxed) };
        let flush = self.0.flush[socket_id.seq as usize % self.0.flush.len()].clone();
        let conn = Conn::new(socket_id, transport, app.clone(), self.0.outbox, flush);
        space.conns.lock().insert(socket_id, conn.clone());
        metrics::connection_opened(transport.label());
        Ok(conn)
    }

    /// Moves a connection that has joined nothing to `app`, counting it against that app's
    /// `max_connections` (0 = unlimited) instead of its first app's: for transports whose app
    /// is known only once the client names it (a Push-Alt socket's first channel token).
    pub fn move_to_app(&self, conn: &ConnHandle, app: &Arc<str>, max_connections: u64) -> Result<(), MoveError> {
        let m = conn.membership.lock();
        if !m.channels.is_empty() || m.user.is_some() {
            return Err(MoveError::Joined);
        }
        if conn.is_marked_closed() || conn.closing().is_some() {
            return Err(MoveError::Closed);
        }
        let from = conn.app();
        if from == *app {
            return Ok(());
        }
        let to = self.0.space(app);
        let now = to.connection_count.fetch_add(1, Ordering::AcqRel) + 1;
        if max_connections > 0 && now > max_connections {
            to.connection_count.fetch_sub(1, Ordering::AcqRel);
            return Err(MoveError::OverQuota);
        }
        to.conns.lock().insert(conn.socket_id, conn.clone());
        let old = self.0.space(&from);
        old.conns.lock().remove(&conn.socket_id);
        old.connection_count.fetch_sub(1, Ordering::AcqRel);
        conn.set_app(app.clone());
        drop(m);
        Ok(())
    }

    /// Removes a connection from everything it joined, announcing what that changes. Safe to
    /// call twice.
    pub fn disconnect(&self, conn: &ConnHandle, rules: &ChannelRules) {
        if conn.mark_closed() {
            return;
        }
        for channel in conn.channels() {
            self.unsubscribe(conn, &channel, rules);
        }
        self.sign_out(conn);
        // Read under the membership lock: a move_to_app under way finishes first (and one
        // that has not begun sees the connection closed).
        let app = {
            let _m = conn.membership.lock();
            conn.app()
        };
        let space = self.0.space(&app);
        space.conns.lock().remove(&conn.socket_id);
        space.connection_count.fetch_sub(1, Ordering::AcqRel);
        metrics::connection_closed(conn.transport.label());
    }

    /// Subscribes `conn` to `channel`. Presence channels need `member`.
    pub fn subscribe(
        &self,
        conn: &ConnHandle,
        channel: &ChannelName,
        member: Option<Member>,
        rules: &ChannelRules,
    ) -> Result<Joined, SubscribeError> {
        let presence = channel.kind() == ChannelKind::Presence;
        let member = if presence { Some(member.ok_or(SubscribeError::MemberRequired)?) } else { None };
        {
            let mut m = conn.membership.lock();
            m.max_channels = rules.max_channels;
            if !m.channels.contains(channel) && m.channels.len() >= rules.max_channels {
                return Err(SubscribeError::ChannelLimit);
            }
        }
        if conn.closing().is_some() {
            return Err(SubscribeError::Closed);
        }
        let space = self.0.space(&conn.app());
        let mut shard = space.shard(channel).write();
        let ch = shard.entry(channel.clone()).or_default();
        if ch.subscribers.contains_key(&conn.socket_id) {
            return Ok(Joined { presence: ch.members.as_ref().map(|m| m.snapshot()), cache: replay(channel, ch) });
        }
        let mut new_member = None;
        if let Some(member) = &member {
            let members = ch.members.get_or_insert_with(Default::default);
            if !members.contains(&member.user_id) && members.len() >= rules.max_members {
                if !ch.occupied() && ch.cached.is_none() {
                    shard.remove(channel);
                }
                return Err(SubscribeError::MemberLimit);
            }
            if members.join(&member.user_id, member.user_info.clone()) {
                new_member = Some(member.clone());
            }
        }
        if ch.subscribers.is_empty() {
            ch.occupied_since = now_ms();
        }
        ch.subscribers.insert(conn.socket_id, Subscriber { conn: conn.clone(), user: member.map(|m| m.user_id) });
        let joined = Joined { presence: ch.members.as_ref().map(|m| m.snapshot()), cache: replay(channel, ch) };
        let count = ch.subscribers.len();
        drop(shard);
        conn.membership.lock().channels.push(channel.clone());
        metrics::subscriptions_changed(1);

        if let Some(m) = new_member {
            let data = serde_json::json!({ "user_id": &*m.user_id, "user_info": m.user_info.as_deref().map(raw_json) });
            self.publish_internal(&conn.app(), channel, events::MEMBER_ADDED, data, Some(conn.socket_id));
        }
        if rules.subscription_count && !presence {
            self.publish_count(&conn.app(), channel, count);
        }
        Ok(joined)
    }

    /// Unsubscribes `conn` from `channel`; false when it was not subscribed.
    pub fn unsubscribe(&self, conn: &ConnHandle, channel: &ChannelName, rules: &ChannelRules) -> bool {
        {
            let mut m = conn.membership.lock();
            let Some(pos) = m.channels.iter().position(|c| c == channel) else {
                return false;
            };
            m.channels.swap_remove(pos);
        }
        let space = self.0.space(&conn.app());
        let mut shard = space.shard(channel).write();
        let Some(ch) = shard.get_mut(channel) else {
            return false;
        };
        let Some(sub) = ch.subscribers.remove(&conn.socket_id) else {
            return false;
        };
        let left = match (&mut ch.members, &sub.user) {
            (Some(members), Some(user)) => members.leave(user).then(|| user.clone()),
            _ => None,
        };
        let count = ch.subscribers.len();
        if count == 0 && ch.cached.is_none() {
            shard.remove(channel);
        }
        drop(shard);
        metrics::subscriptions_changed(-1);
        if let Some(user) = left {
            self.publish_internal(
                &conn.app(),
                channel,
                events::MEMBER_REMOVED,
                serde_json::json!({ "user_id": &*user }),
                None,
            );
        }
        if rules.subscription_count && channel.kind() != ChannelKind::Presence && count > 0 {
            self.publish_count(&conn.app(), channel, count);
        }
        true
    }

    /// Publishes an event to every subscriber of its channel, cluster-wide.
    pub fn publish(&self, app: &Arc<str>, event: Event) -> Result<(), broker::Error> {
        let Some(channel) = event.channel else {
            return Ok(());
        };
        self.0.broker.publish(Envelope {
            app: app.clone(),
            message: wire::Message::Event {
                channel: channel.as_arc().clone(),
                name: event.name,
                data: event.data,
                user_id: event.user_id,
                except: event.except.map(|s| s.to_string().into()),
            },
        })
    }

    /// [`Realtime::publish`] for an event raised on this node (a relay, a client event): while
    /// the broker is down it still reaches this node's subscribers (SPEC §9), and the error says
    /// it went no further.
    pub fn publish_or_here(&self, app: &Arc<str>, event: Event) -> Result<(), broker::Error> {
        let here = event.clone();
        self.publish(app, event).inspect_err(|_| {
            self.0.deliver_local(app, &here);
        })
    }

    /// Ends every connection of a signed-in user, cluster-wide.
    pub fn terminate_user(&self, app: &Arc<str>, user_id: &str) -> Result<(), broker::Error> {
        self.0
            .broker
            .publish(Envelope { app: app.clone(), message: wire::Message::TerminateUser { user_id: user_id.into() } })
    }

    /// Every connection, on every node, that is subscribed to `from` also subscribes to `to`
    /// (a user's sockets join a room). A connection at its channel limit is left out, and
    /// presence channels (which need a member) are never attached; no subscription counts
    /// are raised. While the broker is down it still applies on this node, and the error says
    /// it went no further.
    pub fn attach(&self, app: &Arc<str>, from: &ChannelName, to: &ChannelName) -> Result<(), broker::Error> {
        self.cluster_or_here(app, wire::Message::Attach { from: from.as_arc().clone(), to: to.as_arc().clone() })
    }

    /// The reverse of [`Realtime::attach`]: every connection subscribed to `from` leaves `to`.
    pub fn detach(&self, app: &Arc<str>, from: &ChannelName, to: &ChannelName) -> Result<(), broker::Error> {
        self.cluster_or_here(app, wire::Message::Detach { from: from.as_arc().clone(), to: to.as_arc().clone() })
    }

    /// Closes every connection, on every node, subscribed to `channel` (its account is gone),
    /// as [`Disconnect::Terminated`]. Applies on this node while the broker is down.
    pub fn close_subscribers(&self, app: &Arc<str>, channel: &ChannelName) -> Result<(), broker::Error> {
        self.cluster_or_here(app, wire::Message::CloseSubscribers { channel: channel.as_arc().clone() })
    }

    /// Sends a membership change through the broker, or applies it here when the broker is down.
    fn cluster_or_here(&self, app: &Arc<str>, message: wire::Message) -> Result<(), broker::Error> {
        let envelope = Envelope { app: app.clone(), message };
        let here = envelope.clone();
        self.0.broker.publish(envelope).inspect_err(|_| self.0.deliver(here))
    }

    /// Closes every local connection of an app (disabled or deleted).
    pub fn close_app(&self, app: &str, reason: Disconnect) {
        let space = self.0.spaces.read().get(app).cloned();
        if let Some(space) = space {
            let conns: Vec<_> = space.conns.lock().values().cloned().collect();
            for conn in conns {
                conn.close(reason);
            }
        }
    }

    /// Closes every local connection (shutdown).
    pub fn close_all(&self, reason: Disconnect) {
        let spaces: Vec<_> = self.0.spaces.read().values().cloned().collect();
        for space in spaces {
            let conns: Vec<_> = space.conns.lock().values().cloned().collect();
            for conn in conns {
                conn.close(reason);
            }
        }
    }

    /// Local connections of an app.
    pub fn connection_count(&self, app: &str) -> u64 {
        self.0.spaces.read().get(app).map_or(0, |s| s.connection_count.load(Ordering::Acquire))
    }

    /// This node's connections of an app, with what they joined.
    pub fn connections(&self, app: &str) -> Vec<ConnInfo> {
        let Some(space) = self.0.spaces.read().get(app).cloned() else { return Vec::new() };
        let conns: Vec<_> = space.conns.lock().values().cloned().collect();
        let mut out: Vec<ConnInfo> = conns
            .iter()
            .map(|c| {
                let m = c.membership.lock();
                ConnInfo {
                    socket_id: c.socket_id,
                    transport: c.transport,
                    connected_at: c.connected_at,
                    channels: m.channels.clone(),
                    user: m.user.clone(),
                }
            })
            .collect();
        out.sort_by_key(|c| (c.connected_at, c.socket_id));
        out
    }

    /// Local connections across apps.
    pub fn total_connections(&self) -> u64 {
        self.0.spaces.read().values().map(|s| s.connection_count.load(Ordering::Acquire)).sum()
    }

    /// Occupancy of one channel.
    pub fn channel_stats(&self, app: &str, channel: &ChannelName) -> ChannelStats {
        let Some(space) = self.0.spaces.read().get(app).cloned() else {
            return ChannelStats::default();
        };
        let shard = space.shard(channel).read();
        shard.get(channel).map(stats).unwrap_or_default()
    }

    /// The event a cache channel would replay to a subscriber now, and how long it is kept yet.
    pub fn cached_event(&self, app: &str, channel: &ChannelName) -> Option<(Event, Duration)> {
        let space = self.0.spaces.read().get(app).cloned()?;
        let shard = space.shard(channel).read();
        let cached = shard.get(channel)?.cached.as_ref()?;
        let left = CACHE_TTL.checked_sub(cached.at.elapsed())?;
        Some((cached.event.clone(), left))
    }

    /// Occupied channels whose name starts with `prefix`, sorted by name. Per-user channels
    /// are internal and never listed.
    pub fn occupied_channels(&self, app: &str, prefix: &str) -> Vec<(ChannelName, ChannelStats)> {
        let Some(space) = self.0.spaces.read().get(app).cloned() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for shard in space.shards() {
            let shard = shard.read();
            out.extend(
                shard
                    .iter()
                    .filter(|(name, ch)| {
                        ch.occupied() && name.kind() != ChannelKind::User && name.as_str().starts_with(prefix)
                    })
                    .map(|(name, ch)| (name.clone(), stats(ch))),
            );
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// User ids of a presence channel, in join order.
    pub fn presence_users(&self, app: &str, channel: &ChannelName) -> Vec<Arc<str>> {
        let Some(space) = self.0.spaces.read().get(app).cloned() else {
            return Vec::new();
        };
        let shard = space.shard(channel).read();
        shard.get(channel).and_then(|c| c.members.as_ref()).map(|m| m.user_ids()).unwrap_or_default()
    }

    /// Signs a connection in as `user_id`: it joins the user's channel, and with a watchlist
    /// it is told who of those users is online now (returned) and later as they come and go.
    pub fn sign_in(&self, conn: &ConnHandle, user_id: Arc<str>, watchlist: Vec<Arc<str>>) -> Vec<Arc<str>> {
        self.sign_out(conn);
        let space = self.0.space(&conn.app());
        let first = {
            let mut users = space.users.lock();
            let list = users.entry(user_id.clone()).or_default();
            list.push(conn.clone());
            list.len() == 1
        };
        let user_channel = ChannelName::for_user(&user_id);
        space
            .shard(&user_channel)
            .write()
            .entry(user_channel)
            .or_default()
            .subscribers
            .insert(conn.socket_id, Subscriber { conn: conn.clone(), user: Some(user_id.clone()) });
        let online = {
            let users = space.users.lock();
            watchlist.iter().filter(|w| users.contains_key(*w)).cloned().collect()
        };
        {
            let mut watchers = space.watchers.lock();
            for w in &watchlist {
                watchers.entry(w.clone()).or_default().push(conn.clone());
            }
        }
        {
            let mut m = conn.membership.lock();
            m.user = Some(user_id.clone());
            m.watching = watchlist;
        }
        if first {
            self.notify_watchers(&space, &user_id, "online");
        }
        online
    }

    fn sign_out(&self, conn: &ConnHandle) {
        let (user, watching) = {
            let mut m = conn.membership.lock();
            (m.user.take(), std::mem::take(&mut m.watching))
        };
        let Some(user) = user else { return };
        let space = self.0.space(&conn.app());
        let last = {
            let mut users = space.users.lock();
            let mut last = false;
            if let Some(list) = users.get_mut(&user) {
                list.retain(|c| c.socket_id != conn.socket_id);
                if list.is_empty() {
                    users.remove(&user);
                    last = true;
                }
            }
            last
        };
        let user_channel = ChannelName::for_user(&user);
        {
            let mut shard = space.shard(&user_channel).write();
            if let Some(ch) = shard.get_mut(&user_channel) {
                ch.subscribers.remove(&conn.socket_id);
                if ch.subscribers.is_empty() {
                    shard.remove(&user_channel);
                }
            }
        }
        {
            let mut watchers = space.watchers.lock();
            for w in &watching {
                if let Some(list) = watchers.get_mut(w) {
                    list.retain(|c| c.socket_id != conn.socket_id);
                    if list.is_empty() {
                        watchers.remove(w);
                    }
                }
            }
        }
        if last {
            self.notify_watchers(&space, &user, "offline");
        }
    }

    fn notify_watchers(&self, space: &AppSpace, user: &Arc<str>, what: &str) {
        let watchers: Vec<_> = space.watchers.lock().get(user).cloned().unwrap_or_default();
        if watchers.is_empty() {
            return;
        }
        let event = Event {
            channel: None,
            name: events::WATCHLIST_EVENTS.into(),
            data: json_data(serde_json::json!({ "events": [{ "name": what, "user_ids": [&**user] }] })),
            user_id: None,
            except: None,
        };
        for conn in watchers {
            self.send_to(&conn, &event);
        }
    }

    /// Queues an event for one connection only.
    pub fn send_to(&self, conn: &ConnHandle, event: &Event) -> bool {
        if !conn.wants(event) {
            return false;
        }
        match self.0.encoders.encode_for(conn, event) {
            Some(frame) => conn.try_send(frame),
            None => false,
        }
    }

    /// Encodes an event as one connection's transport would receive it.
    pub fn encode_for(&self, conn: &ConnHandle, event: &Event) -> Option<Bytes> {
        self.0.encoders.encode_for(conn, event)
    }

    /// Drops cache-channel events older than [`CACHE_TTL`] and the empty channels they kept.
    pub fn sweep(&self) {
        let spaces: Vec<_> = self.0.spaces.read().values().cloned().collect();
        for space in spaces {
            for shard in space.shards() {
                let mut shard = shard.write();
                shard.retain(|_, ch| {
                    if ch.cached.as_ref().is_some_and(|c| c.at.elapsed() > CACHE_TTL) {
                        ch.cached = None;
                    }
                    ch.occupied() || ch.cached.is_some()
                });
            }
        }
    }

    fn publish_internal(
        &self,
        app: &Arc<str>,
        channel: &ChannelName,
        name: &str,
        data: serde_json::Value,
        except: Option<SocketId>,
    ) {
        let event =
            Event { channel: Some(channel.clone()), name: name.into(), data: json_data(data), user_id: None, except };
        if let Err(e) = self.publish(app, event) {
            tracing::debug!(error = %e, "internal event not published");
        }
    }

    fn publish_count(&self, app: &Arc<str>, channel: &ChannelName, count: usize) {
        self.publish_internal(
            app,
            channel,
            events::SUBSCRIPTION_COUNT,
            serde_json::json!({ "subscription_count": count }),
            None,
        );
    }
}

impl Inner {
    fn space(&self, app: &Arc<str>) -> Arc<AppSpace> {
        if let Some(space) = self.spaces.read().get(app) {
            return space.clone();
        }
        self.spaces.write().entry(app.clone()).or_insert_with(|| Arc::new(AppSpace::new())).clone()
    }

    fn deliver(&self, envelope: Envelope) {
        match envelope.message {
            wire::Message::Event { channel, name, data, user_id, except } => {
                let Ok(channel) = ChannelName::parse_for_publish(&channel) else {
                    return;
                };
                let except = except.and_then(|s| s.parse().ok());
                let event = Event { channel: Some(channel), name, data, user_id, except };
                self.deliver_local(&envelope.app, &event);
            }
            wire::Message::Attach { from, to } => {
                if let (Ok(from), Ok(to)) = (ChannelName::parse_for_publish(&from), ChannelName::parse_for_publish(&to))
                {
                    self.attach_here(&envelope.app, &from, &to);
                }
            }
            wire::Message::Detach { from, to } => {
                if let (Ok(from), Ok(to)) = (ChannelName::parse_for_publish(&from), ChannelName::parse_for_publish(&to))
                {
                    self.detach_here(&envelope.app, &from, &to);
                }
            }
            wire::Message::CloseSubscribers { channel } => {
                if let Ok(channel) = ChannelName::parse_for_publish(&channel) {
                    for conn in self.subscribers(&envelope.app, &channel) {
                        conn.close(Disconnect::Terminated);
                    }
                }
            }
            wire::Message::TerminateUser { user_id } => {
                let space = self.spaces.read().get(&envelope.app).cloned();
                if let Some(space) = space {
                    let conns = space.users.lock().get(&user_id).cloned().unwrap_or_default();
                    for conn in conns {
                        conn.close(Disconnect::Terminated);
                    }
                }
            }
        }
    }

    /// This node's connections subscribed to `channel`.
    fn subscribers(&self, app: &str, channel: &ChannelName) -> Vec<ConnHandle> {
        let Some(space) = self.spaces.read().get(app).cloned() else {
            return Vec::new();
        };
        let shard = space.shard(channel).read();
        shard.get(channel).map(|ch| ch.subscribers.values().map(|s| s.conn.clone()).collect()).unwrap_or_default()
    }

    /// [`Realtime::attach`] on this node. Each connection's membership lock is held while it
    /// joins, so a disconnect under way either sees the new channel or is seen closed.
    fn attach_here(&self, app: &Arc<str>, from: &ChannelName, to: &ChannelName) {
        if to.kind() == ChannelKind::Presence {
            return;
        }
        let conns = self.subscribers(app, from);
        if conns.is_empty() {
            return;
        }
        let space = self.space(app);
        let mut joined = 0;
        for conn in conns {
            let mut m = conn.membership.lock();
            if m.channels.contains(to)
                || m.channels.len() >= m.max_channels
                || conn.is_marked_closed()
                || conn.closing().is_some()
            {
                continue;
            }
            let mut shard = space.shard(to).write();
            let ch = shard.entry(to.clone()).or_default();
            if ch.subscribers.is_empty() {
                ch.occupied_since = now_ms();
            }
            ch.subscribers.insert(conn.socket_id, Subscriber { conn: conn.clone(), user: None });
            drop(shard);
            m.channels.push(to.clone());
            joined += 1;
        }
        metrics::subscriptions_changed(joined);
    }

    /// [`Realtime::detach`] on this node.
    fn detach_here(&self, app: &Arc<str>, from: &ChannelName, to: &ChannelName) {
        if to.kind() == ChannelKind::Presence {
            return;
        }
        let conns = self.subscribers(app, from);
        if conns.is_empty() {
            return;
        }
        let space = self.space(app);
        let mut left = 0;
        for conn in conns {
            let mut m = conn.membership.lock();
            let Some(pos) = m.channels.iter().position(|c| c == to) else { continue };
            m.channels.swap_remove(pos);
            let mut shard = space.shard(to).write();
            if let Some(ch) = shard.get_mut(to) {
                ch.subscribers.remove(&conn.socket_id);
                if ch.subscribers.is_empty() && ch.cached.is_none() {
                    shard.remove(to);
                }
            }
            left -= 1;
        }
        metrics::subscriptions_changed(left);
    }

    /// Hands an event to this node's subscribers; returns how many got it.
    fn deliver_local(&self, app: &Arc<str>, event: &Event) -> usize {
        let Some(channel) = &event.channel else {
            return 0;
        };
        let started = Instant::now();
        let cache = channel.is_cache() && !event.is_internal();
        let delivered = if cache {
            let space = self.space(app);
            let mut shard = space.shard(channel).write();
            let ch = shard.entry(channel.clone()).or_default();
            ch.cached = Some(Cached { event: Event { except: None, ..event.clone() }, at: Instant::now() });
            let shard = RwLockWriteGuard::downgrade(shard);
            shard.get(channel).map_or(0, |ch| fanout::fan_out(&self.encoders, app, ch, event))
        } else {
            let Some(space) = self.spaces.read().get(app).cloned() else {
                return 0;
            };
            let shard = space.shard(channel).read();
            shard.get(channel).map_or(0, |ch| fanout::fan_out(&self.encoders, app, ch, event))
        };
        metrics::fanned_out(delivered, started.elapsed());
        delivered
    }
}

fn replay(channel: &ChannelName, ch: &Channel) -> CacheReplay {
    if !channel.is_cache() {
        return CacheReplay::NotCache;
    }
    match &ch.cached {
        Some(c) if c.at.elapsed() <= CACHE_TTL => CacheReplay::Hit(c.event.clone()),
        _ => CacheReplay::Miss,
    }
}

fn stats(ch: &Channel) -> ChannelStats {
    ChannelStats {
        subscription_count: ch.subscribers.len(),
        user_count: ch.members.as_ref().map(|m| m.len()),
        occupied_since: if ch.occupied() { ch.occupied_since } else { 0 },
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// Wraps a JSON value as event data.
pub fn json_data(value: serde_json::Value) -> Data {
    Data::from(value)
}

/// Embeds stored JSON text in a `serde_json::Value` (it was produced by serde_json, so it
/// parses; anything else becomes null rather than an error on the hot path).
fn raw_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::broker::{MemoryBroker, Sink};

    const RULES: ChannelRules = ChannelRules { max_members: 10, max_channels: 10, subscription_count: false };

    fn core(broker: Arc<dyn Broker>) -> Realtime {
        let rt = Realtime::new(broker, OutboxLimits { max_bytes: 1 << 20, max_frames: 64 });
        rt.register_encoder(Transport::SocketIo, |e| {
            Bytes::from(format!("{}:{}", e.channel.as_ref().unwrap(), e.name))
        });
        rt
    }

    fn name(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    fn event(channel: &str) -> Event {
        Event {
            channel: Some(name(channel)),
            name: "hi".into(),
            data: Data::Text("x".into()),
            user_id: None,
            except: None,
        }
    }

    fn frames(conn: &ConnHandle) -> Vec<String> {
        let mut batch = Vec::new();
        conn.drain(&mut batch);
        batch.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
    }

    /// A broker that is down: nothing goes through.
    struct Down;

    impl Broker for Down {
        fn publish(&self, _: Envelope) -> Result<(), broker::Error> {
            Err(broker::Error::Unavailable)
        }
        fn attach(&self, _: Arc<dyn Sink>) {}
        fn healthy(&self) -> bool {
            false
        }
        fn name(&self) -> &'static str {
            "down"
        }
    }

    /// Two nodes on one bus: every envelope reaches both cores, as a cluster backend would.
    #[derive(Default)]
    struct Bus(Mutex<Vec<Arc<dyn Sink>>>);

    impl Broker for Bus {
        fn publish(&self, envelope: Envelope) -> Result<(), broker::Error> {
            let sinks = self.0.lock().clone();
            for sink in sinks {
                sink.deliver(envelope.clone());
            }
            Ok(())
        }
        fn attach(&self, sink: Arc<dyn Sink>) {
            self.0.lock().push(sink);
        }
        fn healthy(&self) -> bool {
            true
        }
        fn name(&self) -> &'static str {
            "bus"
        }
    }

    #[test]
    fn attach_and_detach_move_every_subscriber_of_a_room() {
        let rt = core(Arc::new(MemoryBroker::new()));
        let app: Arc<str> = "hestia".into();
        let (ua, ub, group) = (name("chat-user-1"), name("chat-user-2"), name("chat-group-9"));
        let a1 = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        let a2 = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        let b = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        rt.subscribe(&a1, &ua, None, &RULES).unwrap();
        rt.subscribe(&a2, &ua, None, &RULES).unwrap();
        rt.subscribe(&b, &ub, None, &RULES).unwrap();

        rt.attach(&app, &ua, &group).unwrap();
        rt.attach(&app, &ua, &group).unwrap();
        assert_eq!(rt.channel_stats("hestia", &group).subscription_count, 2, "attaching twice joins once");
        assert!(a1.is_subscribed(&group) && a2.is_subscribed(&group) && !b.is_subscribed(&group));
        rt.publish(&app, event("chat-group-9")).unwrap();
        assert_eq!(frames(&a1), ["chat-group-9:hi"]);
        assert_eq!(frames(&a2), ["chat-group-9:hi"]);
        assert!(frames(&b).is_empty());

        rt.detach(&app, &ua, &group).unwrap();
        assert_eq!(rt.channel_stats("hestia", &group), ChannelStats::default());
        assert!(!a1.is_subscribed(&group) && a1.is_subscribed(&ua));
        rt.publish(&app, event("chat-group-9")).unwrap();
        assert!(frames(&a1).is_empty());

        // Attached channels are left on disconnect like any other.
        rt.attach(&app, &ub, &group).unwrap();
        rt.disconnect(&b, &RULES);
        assert_eq!(rt.channel_stats("hestia", &group).subscription_count, 0);
        assert_eq!(rt.channel_stats("hestia", &ub).subscription_count, 0);
    }

    #[test]
    fn a_connection_at_its_channel_limit_is_not_attached() {
        let rt = core(Arc::new(MemoryBroker::new()));
        let app: Arc<str> = "hestia".into();
        let one = ChannelRules { max_channels: 1, ..RULES };
        let (user, group) = (name("chat-user-1"), name("chat-group-1"));
        let full = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        let roomy = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        rt.subscribe(&full, &user, None, &one).unwrap();
        rt.subscribe(&roomy, &user, None, &RULES).unwrap();
        rt.attach(&app, &user, &group).unwrap();
        assert!(!full.is_subscribed(&group));
        assert!(roomy.is_subscribed(&group));
        // Presence channels need a member: never attached.
        rt.attach(&app, &user, &name("presence-room")).unwrap();
        assert_eq!(roomy.channel_count(), 2);
    }

    #[test]
    fn close_subscribers_closes_only_that_rooms_connections() {
        let rt = core(Arc::new(MemoryBroker::new()));
        let app: Arc<str> = "hestia".into();
        let a = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        let b = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        rt.subscribe(&a, &name("chat-user-1"), None, &RULES).unwrap();
        rt.subscribe(&b, &name("chat-user-2"), None, &RULES).unwrap();
        rt.close_subscribers(&app, &name("chat-user-1")).unwrap();
        rt.close_subscribers(&"other".into(), &name("chat-user-2")).unwrap();
        assert_eq!(a.closing(), Some(Disconnect::Terminated));
        assert_eq!(b.closing(), None, "another room, and the same room of another app, are untouched");
    }

    #[test]
    fn room_changes_apply_here_while_the_broker_is_down() {
        let rt = core(Arc::new(Down));
        let app: Arc<str> = "hestia".into();
        let (user, group) = (name("chat-user-1"), name("chat-group-1"));
        let a = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        rt.subscribe(&a, &user, None, &RULES).unwrap();
        assert_eq!(rt.attach(&app, &user, &group), Err(broker::Error::Unavailable));
        assert!(a.is_subscribed(&group));
        assert_eq!(rt.detach(&app, &user, &group), Err(broker::Error::Unavailable));
        assert!(!a.is_subscribed(&group));
        assert_eq!(rt.close_subscribers(&app, &user), Err(broker::Error::Unavailable));
        assert_eq!(a.closing(), Some(Disconnect::Terminated));
    }

    #[test]
    fn room_changes_reach_every_node_through_the_broker() {
        let bus = Arc::new(Bus::default());
        let (here, there) = (core(bus.clone()), core(bus));
        let app: Arc<str> = "hestia".into();
        let (user, group) = (name("chat-user-1"), name("chat-group-1"));
        let a = there.connect(&app, Transport::SocketIo, 0).unwrap();
        there.subscribe(&a, &user, None, &RULES).unwrap();
        here.attach(&app, &user, &group).unwrap();
        assert!(a.is_subscribed(&group), "a connection on another node joins");
        here.publish(&app, event("chat-group-1")).unwrap();
        assert_eq!(frames(&a), ["chat-group-1:hi"]);
        here.detach(&app, &user, &group).unwrap();
        assert!(!a.is_subscribed(&group));
        here.close_subscribers(&app, &user).unwrap();
        assert_eq!(a.closing(), Some(Disconnect::Terminated));
    }
}
