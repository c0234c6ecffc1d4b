//! A Socket.IO socket: one client's membership of one namespace, over one Engine.IO connection
//! (a core [`ConnHandle`]). The handle is cheap to clone and usable from any task: emits go
//! straight into the connection's bounded outbox, channels are the core's.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::args::Args;
use super::codec::{self, AckId, MAX_ACK_ID};
use super::handshake::HandshakeInfo;
use crate::core::{ChannelName, ChannelRules, ConnHandle, Dialect, Joined, MoveError, Realtime, SubscribeError};
use crate::transport::engineio::{binary_frame, message_frame};

/// Acks a socket may await at once: past it [`Socket::emit_with_ack`] refuses rather than
/// keep callbacks for a client that never answers.
pub const MAX_PENDING_ACKS: usize = 64;
/// Packets a connect handler may emit before the client has its CONNECT answer.
const MAX_QUEUED: usize = 16;

/// An emit that did not go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("the socket is disconnected")]
    Disconnected,
    #[error("the connection's outbox is full")]
    OutboxFull,
    #[error("too many acks pending")]
    TooManyPendingAcks,
}

/// A join that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    #[error("channels are not enabled in this namespace")]
    NotEnabled,
    #[error("another namespace of this connection holds its channels")]
    OtherNamespace,
    #[error("the socket is disconnected")]
    Disconnected,
}

/// The answer a client gave to an event we sent with an ack.
pub type AckResult = Result<Args, AckError>;
/// Called once with the client's answer.
pub type AckCallback = Box<dyn FnOnce(AckResult) + Send>;

/// Why an awaited ack will not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("the socket disconnected before it answered")]
    Disconnected,
}

/// Why a socket left its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT.
    ClientNamespaceDisconnect,
    /// The server called [`Socket::disconnect`].
    ServerNamespaceDisconnect,
    /// The connection ended (closed, timed out, refused a packet, server shutdown).
    TransportClose,
}

impl DisconnectReason {
    /// The reference server's names for these reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::TransportClose => "transport close",
        }
    }
}

/// The handler a namespace runs when one of its sockets leaves it.
pub(crate) type DisconnectFn = dyn Fn(&Socket, DisconnectReason) + Send + Sync;

/// What the sockets of one Engine.IO connection share.
pub(crate) struct Shared {
    pub conn: ConnHandle,
    pub realtime: Realtime,
    /// The app's channel limits; they change with the app ([`Socket::move_to_app`]).
    rules: Mutex<ChannelRules>,
    pub handshake: HandshakeInfo,
    /// The namespace whose socket joined channels: a connection's channel events are encoded
    /// in one dialect, so one namespace per connection holds channels.
    channel_owner: Mutex<Option<Arc<str>>>,
    /// When the connection opened or a socket last left its namespace: the connect timeout
    /// runs from there while no namespace is joined.
    idle_since: Mutex<Instant>,
    /// [`Socket::connection_data`].
    data: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Shared {
    pub fn new(conn: ConnHandle, realtime: Realtime, rules: ChannelRules, handshake: HandshakeInfo) -> Arc<Self> {
        Arc::new(Self {
            conn,
            realtime,
            rules: Mutex::new(rules),
            handshake,
            channel_owner: Mutex::new(None),
            idle_since: Mutex::new(Instant::now()),
            data: OnceLock::new(),
        })
    }

    /// See the field of that name.
    pub fn idle_since(&self) -> Instant {
        *self.idle_since.lock()
    }

    /// A socket of this connection left its namespace, maybe from another task: the
    /// connection's task is woken to see its connect timeout again.
    fn left(&self) {
        *self.idle_since.lock() = Instant::now();
        self.conn.nudge();
    }

    /// The channel limits of the connection's app.
    pub fn rules(&self) -> ChannelRules {
        *self.rules.lock()
    }
}

/// What the sockets of one namespace share, as the server registered it. The program's other
/// handlers stay with the server: a socket itself only calls the one for leaving.
pub(crate) struct NsShared {
    pub name: Arc<str>,
    /// How its channel events are encoded; `None`: it joins no channels.
    pub dialect: Option<Dialect>,
    pub on_disconnect: Option<Arc<DisconnectFn>>,
}

enum State {
    /// The connect handler runs (`accepted: false`), or ran and the CONNECT answer is out
    /// (`accepted: true`): what the socket emits meanwhile waits in `queue` for
    /// [`Socket::release`]. `leaving`: the handler disconnected the socket, which leaves once its
    /// queue is out.
    Pending {
        queue: Vec<Vec<Bytes>>,
        accepted: bool,
        leaving: bool,
    },
    Connected,
    Closed,
}

/// How an accepted socket continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// In its namespace; nothing waits.
    Connected,
    /// What the connect handler emitted waits for [`Socket::release`].
    Pending,
    /// The connection's outbox refused the answer.
    Failed,
}

#[derive(Default)]
struct Acks {
    next: AckId,
    pending: Vec<(AckId, AckCallback)>,
}

struct Inner {
    id: Box<str>,
    ns: Arc<NsShared>,
    shared: Arc<Shared>,
    state: Mutex<State>,
    acks: Mutex<Acks>,
    data: OnceLock<Arc<dyn Any + Send + Sync>>,
}

/// One client's socket in one namespace.
#[derive(Clone)]
pub struct Socket(Arc<Inner>);

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket").field("id", &self.0.id).field("nsp", &self.0.ns.name).finish_non_exhaustive()
    }
}

impl Socket {
    pub(crate) fn new(ns: Arc<NsShared>, shared: Arc<Shared>) -> Self {
        let id = hex::encode(rand::random::<[u8; 12]>()).into_boxed_str();
        Self(Arc::new(Inner {
            id,
            ns,
            shared,
            state: Mutex::new(State::Pending { queue: Vec::new(), accepted: false, leaving: false }),
            acks: Mutex::default(),
            data: OnceLock::new(),
        }))
    }

    /// The socket's id in its namespace (random; the client learns it from the CONNECT answer).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The namespace, e.g. `/` or `/custom`.
    pub fn namespace(&self) -> &str {
        &self.0.ns.name
    }

    /// The Engine.IO handshake's query and client address.
    pub fn handshake(&self) -> &HandshakeInfo {
        &self.0.shared.handshake
    }

    /// The core connection under it (its app, socket id and transport).
    pub fn conn(&self) -> &ConnHandle {
        &self.0.shared.conn
    }

    /// Whether the socket is in its namespace (accepted, not disconnected).
    pub fn is_connected(&self) -> bool {
        matches!(*self.0.state.lock(), State::Connected | State::Pending { accepted: true, leaving: false, .. })
    }

    /// Keeps a value with the socket (the first one set stays); see [`Socket::data`].
    pub fn set_data<T: Any + Send + Sync>(&self, value: T) -> bool {
        self.0.data.set(Arc::new(value)).is_ok()
    }

    /// The value kept with [`Socket::set_data`], if it is a `T`.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.data.get().cloned().and_then(|d| d.downcast::<T>().ok())
    }

    /// A value kept with the connection rather than the socket: shared by every socket of the
    /// connection, and by the sockets that replace them when the client leaves a namespace and
    /// connects again (limits that reconnecting must not reset). Made with `T::default()` on
    /// first use; `None` if the connection already keeps a value of another type.
    pub fn connection_data<T: Any + Send + Sync + Default>(&self) -> Option<Arc<T>> {
        let data = self.0.shared.data.get_or_init(|| Arc::new(T::default()));
        data.clone().downcast::<T>().ok()
    }

    /// Sends the event `name` with `args`.
    pub fn emit(&self, name: &str, args: &Args) -> Result<(), EmitError> {
        let mut packet = Vec::with_capacity(16 + name.len() + args.text().len());
        codec::write_event(&mut packet, self.namespace(), name, args.text(), args.attachments().len(), None);
        self.send(&packet, args.attachments())
    }

    /// Sends the event `name` with `args` and calls `on_ack` with the client's answer (or
    /// [`AckError::Disconnected`] if the socket leaves first).
    pub fn emit_with_ack(
        &self,
        name: &str,
        args: &Args,
        on_ack: impl FnOnce(AckResult) + Send + 'static,
    ) -> Result<(), EmitError> {
        let id = {
            let mut acks = self.0.acks.lock();
            if acks.pending.len() >= MAX_PENDING_ACKS {
                return Err(EmitError::TooManyPendingAcks);
            }
            let id = acks.next;
            acks.next = if id >= MAX_ACK_ID { 0 } else { id + 1 };
            acks.pending.push((id, Box::new(on_ack)));
            id
        };
        let mut packet = Vec::with_capacity(32 + name.len() + args.text().len());
        codec::write_event(&mut packet, self.namespace(), name, args.text(), args.attachments().len(), Some(id));
        let sent = self.send(&packet, args.attachments());
        if sent.is_err() {
            self.0.acks.lock().pending.retain(|(pending, _)| *pending != id);
        }
        sent
    }

    /// Subscribes the connection to a core channel: every event published to it, by any
    /// surface on any node, reaches this socket named as its namespace says. Allowed in the
    /// connect handler too (the client library holds events until its CONNECT answer).
    pub fn join(&self, channel: &ChannelName) -> Result<Joined, JoinError> {
        let Some(dialect) = self.0.ns.dialect else {
            return Err(JoinError::NotEnabled);
        };
        // Held to the end: a close on another task (the client's DISCONNECT while a surface's
        // check finished) either comes first, or comes after and leaves this channel too.
        let state = self.0.state.lock();
        if !matches!(*state, State::Connected | State::Pending { leaving: false, .. }) {
            return Err(JoinError::Disconnected);
        }
        let shared = &self.0.shared;
        {
            let mut owner = shared.channel_owner.lock();
            match &*owner {
                Some(nsp) if **nsp != *self.0.ns.name => return Err(JoinError::OtherNamespace),
                Some(_) => {}
                None => {
                    shared.conn.set_dialect(dialect);
                    *owner = Some(self.0.ns.name.clone());
                }
            }
        }
        let joined = shared.realtime.subscribe(&shared.conn, channel, None, &shared.rules());
        drop(state);
        Ok(joined?)
    }

    /// Moves the connection to the core app `app` under its `rules`, counted against its
    /// `max_connections` (0: none), before it joins any channel: for a surface that learns the
    /// app from what the client sends after connecting (Push-Alt's channel tokens).
    pub fn move_to_app(&self, app: &Arc<str>, rules: ChannelRules, max_connections: u64) -> Result<(), MoveError> {
        let shared = &self.0.shared;
        shared.realtime.move_to_app(&shared.conn, app, max_connections)?;
        *shared.rules.lock() = rules;
        Ok(())
    }

    /// Leaves a core channel; false when the socket was not in it.
    pub fn leave(&self, channel: &ChannelName) -> bool {
        self.owns_channels() && self.0.shared.realtime.unsubscribe(&self.0.shared.conn, channel, &self.0.shared.rules())
    }

    /// The core channels this socket joined.
    pub fn channels(&self) -> Vec<ChannelName> {
        if self.owns_channels() { self.0.shared.conn.channels() } else { Vec::new() }
    }

    /// Ends the socket's membership of its namespace (the client is told with DISCONNECT); the
    /// connection stays for its other namespaces.
    pub fn disconnect(&self) {
        if let State::Pending { leaving, accepted: false, .. } = &mut *self.0.state.lock() {
            // Still in the connect handler: the client gets its CONNECT answer first.
            *leaving = true;
            return;
        }
        self.release();
        let mut packet = Vec::new();
        codec::write_disconnect(&mut packet, self.namespace());
        let _ = self.send(&packet, &[]);
        self.close(DisconnectReason::ServerNamespaceDisconnect);
    }

    fn owns_channels(&self) -> bool {
        self.0.shared.channel_owner.lock().as_deref() == Some(&*self.0.ns.name)
    }

    /// Queues one packet and its attachments, together.
    fn send(&self, packet: &[u8], attachments: &[Bytes]) -> Result<(), EmitError> {
        let mut frames = Vec::with_capacity(1 + attachments.len());
        frames.push(message_frame(packet));
        frames.extend(attachments.iter().map(|a| binary_frame(a)));
        let mut state = self.0.state.lock();
        match &mut *state {
            State::Pending { leaving: true, .. } => Err(EmitError::Disconnected),
            State::Pending { queue, .. } if queue.len() < MAX_QUEUED => {
                queue.push(frames);
                Ok(())
            }
            State::Pending { .. } => Err(EmitError::OutboxFull),
            State::Connected if self.0.shared.conn.try_send_all(frames) => Ok(()),
            State::Connected => Err(EmitError::OutboxFull),
            State::Closed => Err(EmitError::Disconnected),
        }
    }

    /// Accepts the socket: the CONNECT answer goes out now; what the connect handler emitted
    /// (and the DISCONNECT, if it also disconnected the socket) waits for [`Socket::release`].
    pub(crate) fn accept(&self) -> Accepted {
        let mut answer = Vec::new();
        codec::write_connect(&mut answer, self.namespace(), self.id());
        let mut state = self.0.state.lock();
        let State::Pending { queue, accepted: false, leaving } = std::mem::replace(&mut *state, State::Closed) else {
            return Accepted::Failed;
        };
        if !self.0.shared.conn.try_send(message_frame(&answer)) {
            return Accepted::Failed;
        }
        if queue.is_empty() && !leaving {
            *state = State::Connected;
            return Accepted::Connected;
        }
        *state = State::Pending { queue, accepted: true, leaving };
        Accepted::Pending
    }

    /// Sends what waited since the CONNECT answer, in order; then the socket is in its
    /// namespace (or out of it, if its connect handler disconnected it).
    pub(crate) fn release(&self) {
        let mut state = self.0.state.lock();
        let State::Pending { queue, accepted: true, leaving } = &mut *state else {
            return;
        };
        let mut frames: Vec<Bytes> = std::mem::take(queue).into_iter().flatten().collect();
        let leaving = *leaving;
        if leaving {
            let mut packet = Vec::new();
            codec::write_disconnect(&mut packet, self.namespace());
            frames.push(message_frame(&packet));
        }
        *state = if leaving { State::Closed } else { State::Connected };
        if leaving {
            self.0.shared.left();
        }
        if !frames.is_empty() {
            self.0.shared.conn.try_send_all(frames);
        }
    }

    /// Marks a socket that was never accepted as closed (what it queued is dropped), and
    /// leaves the channels its connect handler joined.
    pub(crate) fn refuse(&self) {
        *self.0.state.lock() = State::Closed;
        self.leave_channels();
    }

    /// Leaves the core channels this socket holds for its connection.
    fn leave_channels(&self) {
        if self.owns_channels() {
            let shared = &self.0.shared;
            for channel in shared.conn.channels() {
                shared.realtime.unsubscribe(&shared.conn, &channel, &shared.rules());
            }
            *shared.channel_owner.lock() = None;
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        matches!(*self.0.state.lock(), State::Closed)
    }

    /// The client's answer to one of our acks.
    pub(crate) fn acked(&self, id: AckId, args: Args) {
        let callback = {
            let mut acks = self.0.acks.lock();
            let Some(at) = acks.pending.iter().position(|(pending, _)| *pending == id) else {
                return;
            };
            acks.pending.swap_remove(at).1
        };
        callback(Ok(args));
    }

    /// The socket leaves its namespace: its channels, its pending acks, then its disconnect
    /// handler, once.
    pub(crate) fn close(&self, reason: DisconnectReason) {
        let was = std::mem::replace(&mut *self.0.state.lock(), State::Closed);
        if !matches!(was, State::Connected | State::Pending { accepted: true, leaving: false, .. }) {
            return;
        }
        self.0.shared.left();
        self.leave_channels();
        let pending = std::mem::take(&mut self.0.acks.lock().pending);
        for (_, callback) in pending {
            callback(Err(AckError::Disconnected));
        }
        if let Some(handler) = &self.0.ns.on_disconnect {
            handler(self, reason);
        }
    }
}

/// Answers a client's event that asked for an ack; dropping it answers nothing.
pub struct AckSender {
    socket: Socket,
    id: AckId,
}

impl fmt::Debug for AckSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckSender").field("id", &self.id).finish_non_exhaustive()
    }
}

impl AckSender {
    pub(crate) fn new(socket: Socket, id: AckId) -> Self {
        Self { socket, id }
    }

    /// Sends the ack with `args`.
    pub fn send(self, args: &Args) -> Result<(), EmitError> {
        let mut packet = Vec::with_capacity(16 + args.text().len());
        codec::write_ack(&mut packet, self.socket.namespace(), self.id, args.text(), args.attachments().len());
        self.socket.send(&packet, args.attachments())
    }
}
