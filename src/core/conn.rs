//! Connections as the core sees them: a transport-neutral handle with a socket id, a bounded
//! outbox the fan-out fills without waiting, and a close signal the connection task obeys.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use super::channel::ChannelName;
use super::flush::{Flush, FlushQueue};
use super::signal::Signal;

/// `\d+\.\d+`: a node part (random per process, so ids are unique across nodes) and a
/// sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    pub node: u32,
    pub seq: u64,
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.node, self.seq)
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid socket_id")]
pub struct SocketIdError;

impl FromStr for SocketId {
    type Err = SocketIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (node, seq) = s.split_once('.').ok_or(SocketIdError)?;
        let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(node) || !digits(seq) {
            return Err(SocketIdError);
        }
        Ok(Self { node: node.parse().map_err(|_| SocketIdError)?, seq: seq.parse().map_err(|_| SocketIdError)? })
    }
}

/// The wire protocol a connection speaks; the fan-out encodes once per transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Pusher = 0,
    Notif = 1,
    SocketIo = 2,
}

impl Transport {
    pub const COUNT: usize = 3;
    pub fn label(self) -> &'static str {
        match self {
            Self::Pusher => "pusher",
            Self::Notif => "notif",
            Self::SocketIo => "socketio",
        }
    }
}

/// Which of its transport's encoders a connection takes: Socket.IO surfaces name channel events
/// each their own way (Push-Alt `workspace:<n>:<channel>:<event>`, Hestia its own), and a
/// broadcast is still encoded once per dialect in use, not per subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dialect(u8);

impl Dialect {
    /// How many dialects a transport may have, its default one included.
    pub const COUNT: usize = 4;
    /// The encoder registered with [`crate::core::Realtime::register_encoder`].
    pub const DEFAULT: Self = Self(0);

    pub(crate) fn new(n: u8) -> Option<Self> {
        (usize::from(n) < Self::COUNT).then_some(Self(n))
    }

    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Why the core (not the client) ends a connection. Each surface maps these to its close codes
/// in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// The outbox filled: the client does not read fast enough.
    SlowConsumer,
    /// The app was disabled or deleted.
    AppDisabled,
    /// The app's backend asked for this user's connections to end.
    Terminated,
    /// The server is shutting down; clients should reconnect.
    Shutdown,
}

impl Disconnect {
    /// A bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::SlowConsumer => "slow_consumer",
            Self::AppDisabled => "app_disabled",
            Self::Terminated => "terminated",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Bounds of one outbox.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    pub max_bytes: usize,
    pub max_frames: usize,
}

/// A socket the core may write to without waiting: a transport attaches one to a connection
/// whose frames are ready-made wire bytes, so a flush writes them as they are.
pub trait Wire: Send + Sync {
    /// Writes what fits now; `WouldBlock` when the socket is full.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// The same for several buffers, in order.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

/// How a write attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued is written.
    Done,
    /// The socket is full; the connection task must wait until it drains.
    Stalled,
    /// The socket failed; the connection is over.
    Broken,
}

/// Frames written per system call at most.
const MAX_IOV: usize = 64;

#[derive(Default)]
struct Outbox {
    frames: VecDeque<Bytes>,
    bytes: usize,
    closing: Option<Disconnect>,
    wire: Option<Arc<dyn Wire>>,
    /// Listed in the flush queue: frames queued now leave with that flush.
    listed: bool,
    /// The socket was full: the connection task writes the rest when it drains.
    stalled: bool,
    /// The front frame is partly written; it must be finished before any other byte.
    partial: bool,
    broken: bool,
    /// The connection task is handling a client frame: what the core sends meanwhile (a
    /// subscription count, a member event) waits in `held` and goes out after the task's answers
    /// (`subscription_succeeded` comes first).
    holding: bool,
    held: Vec<Bytes>,
}

impl Outbox {
    fn release(&mut self) {
        self.holding = false;
        let held = std::mem::take(&mut self.held);
        self.frames.extend(held);
    }

    /// Writes queued frames until none are left or the socket is full.
    fn write(&mut self) -> Flushed {
        // Taken out and put back rather than cloned: no reference-count traffic per write.
        let Some(wire) = self.wire.take() else {
            return Flushed::Done;
        };
        let flushed = self.write_to(&*wire);
        self.wire = Some(wire);
        flushed
    }

    fn write_to(&mut self, wire: &dyn Wire) -> Flushed {
        while let Some(front) = self.frames.front() {
            // One frame (the usual case at low rates) goes out with `send`, which is cheaper in
            // the kernel than `writev`; a backlog goes out in one vectored write.
            let res = if self.frames.len() == 1 {
                wire.try_write(front)
            } else {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let mut n = 0;
                for (slot, frame) in iov.iter_mut().zip(self.frames.iter()) {
                    *slot = IoSlice::new(frame);
                    n += 1;
                }
                wire.try_write_vectored(&iov[..n])
            };
            match res {
                Ok(0) => return self.broke(),
                Ok(mut written) => {
                    self.bytes = self.bytes.saturating_sub(written);
                    while let Some(front) = self.frames.front_mut() {
                        if written < front.len() {
                            let _ = front.split_to(written);
                            self.partial = written > 0 || self.partial;
                            break;
                        }
                        written -= front.len();
                        self.frames.pop_front();
                        self.partial = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stalled = true;
                    return Flushed::Stalled;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.broke(),
            }
        }
        self.stalled = false;
        self.trim();
        Flushed::Done
    }

    /// Keeps an emptied queue small after a burst (idle connections are most connections).
    fn trim(&mut self) {
        if self.frames.capacity() > 64 {
            self.frames.shrink_to(8);
        }
    }

    fn broke(&mut self) -> Flushed {
        self.broken = true;
        self.frames.clear();
        self.bytes = 0;
        Flushed::Broken
    }

    fn over(&self, len: usize, limits: &OutboxLimits) -> bool {
        self.over_by(1, len, limits)
    }

    fn over_by(&self, count: usize, len: usize, limits: &OutboxLimits) -> bool {
        self.frames.len() + self.held.len() + count > limits.max_frames || self.bytes + len > limits.max_bytes
    }
}

/// What the core keeps about a connection's membership.
pub(crate) struct Membership {
    pub channels: Vec<ChannelName>,
    pub user: Option<Arc<str>>,
    pub watching: Vec<Arc<str>>,
    /// The channel limit its last subscription was made under: a subscription the server
    /// makes for it later ([`crate::core::Realtime::attach`]) respects it too.
    pub max_channels: usize,
}

impl Default for Membership {
    fn default() -> Self {
        Self { channels: Vec::new(), user: None, watching: Vec::new(), max_channels: usize::MAX }
    }
}

/// One live connection on any transport.
pub struct Conn {
    pub socket_id: SocketId,
    pub transport: Transport,
    /// Its app; a connection that has joined nothing may move to another
    /// ([`crate::core::Realtime::move_to_app`]).
    app: parking_lot::RwLock<Arc<str>>,
    /// Milliseconds since the Unix epoch.
    pub connected_at: i64,
    limits: OutboxLimits,
    outbox: Mutex<Outbox>,
    flush: Arc<FlushQueue<ConnHandle>>,
    /// Wakes the connection task when it has something to do: frames for a connection without a
    /// wire, a full socket, a close.
    signal: Signal,
    closed: AtomicBool,
    /// Pusher-protocol extras (`pusher_internal:` events) are not sent to this connection.
    skip_extras: AtomicBool,
    /// The [`Dialect`] its events are encoded in.
    dialect: AtomicU8,
    pub(crate) membership: Mutex<Membership>,
}

/// Shared by the connection task and every channel the connection is in.
pub type ConnHandle = Arc<Conn>;

impl Conn {
    pub(crate) fn new(
        socket_id: SocketId,
        transport: Transport,
        app: Arc<str>,
        limits: OutboxLimits,
        flush: Arc<FlushQueue<ConnHandle>>,
    ) -> ConnHandle {
        Arc::new(Self {
            socket_id,
            transport,
            app: parking_lot::RwLock::new(app),
            connected_at: super::now_ms(),
            limits,
            outbox: Mutex::default(),
            flush,
            signal: Signal::default(),
            closed: AtomicBool::new(false),
            skip_extras: AtomicBool::new(false),
            dialect: AtomicU8::new(0),
            membership: Mutex::default(),
        })
    }

    /// Lets the core write this connection's frames straight to its socket. Frames are then
    /// wire bytes, written as they are.
    pub fn attach_wire(&self, wire: Arc<dyn Wire>) {
        self.outbox.lock().wire = Some(wire);
    }

    /// Lets go of the socket (the connection task is done with it) and of anything unsent.
    pub fn detach_wire(&self) {
        let mut out = self.outbox.lock();
        out.wire = None;
        out.frames.clear();
        out.bytes = 0;
    }

    /// Leaves `pusher_internal:` events out of what this connection gets (Notif clients that
    /// did not ask for them).
    pub fn skip_extras(&self) {
        self.skip_extras.store(true, Ordering::Relaxed);
    }

    /// Encodes what the core sends this connection in `dialect` (set before it subscribes).
    pub fn set_dialect(&self, dialect: Dialect) {
        self.dialect.store(dialect.0, Ordering::Relaxed);
    }

    pub fn dialect(&self) -> Dialect {
        Dialect(self.dialect.load(Ordering::Relaxed))
    }

    /// The app the connection belongs to.
    pub fn app(&self) -> Arc<str> {
        self.app.read().clone()
    }

    pub(crate) fn set_app(&self, app: Arc<str>) {
        *self.app.write() = app;
    }

    /// Whether this connection takes this fanned-out event.
    pub(crate) fn wants(&self, event: &super::Event) -> bool {
        if event.is_socketio_only() {
            return self.transport == Transport::SocketIo;
        }
        !(self.skip_extras.load(Ordering::Relaxed) && event.is_protocol_extra())
    }

    /// Queues a frame without waiting and arranges its write. A full outbox marks the
    /// connection as a slow consumer and returns false; so does a closing one.
    pub fn try_send(self: &Arc<Self>, frame: Bytes) -> bool {
        let len = frame.len();
        self.enqueue(std::iter::once(frame), 1, len)
    }

    /// Queues frames that must stay together (a Socket.IO packet and its binary attachments):
    /// all of them or none, and no other sender's frame between them.
    pub fn try_send_all(self: &Arc<Self>, frames: Vec<Bytes>) -> bool {
        let len = frames.iter().map(Bytes::len).sum();
        let count = frames.len();
        self.enqueue(frames.into_iter(), count, len)
    }

    fn enqueue(self: &Arc<Self>, frames: impl Iterator<Item = Bytes>, count: usize, len: usize) -> bool {
        let mut out = self.outbox.lock();
        if out.closing.is_some() || out.broken {
            return false;
        }
        if out.over_by(count, len, &self.limits) {
            out.closing = Some(Disconnect::SlowConsumer);
            drop(out);
            self.wake();
            return false;
        }
        out.bytes += len;
        if out.holding {
            out.held.extend(frames);
            return true;
        }
        out.frames.extend(frames);
        if out.wire.is_none() {
            let first = out.frames.len() == count;
            drop(out);
            // Only the first frame of a batch needs to wake the task; it drains them all.
            if first {
                self.wake();
            }
            return true;
        }
        if out.listed || out.stalled {
            return true;
        }
        out.listed = true;
        drop(out);
        if !self.flush.push(self.clone()) {
            self.outbox.lock().listed = false;
            self.wake();
        }
        true
    }

    /// Holds what the core sends to this connection until the next [`Conn::send_now`], so that
    /// the answers to the frame being handled go out first.
    pub fn hold(&self) {
        self.outbox.lock().holding = true;
    }

    /// Queues the connection's own frames (answers, pings), then what was held, and writes at
    /// once what the socket takes. The outbox bounds apply: a client that sends requests but
    /// never reads the answers is a slow consumer too.
    pub fn send_now(&self, frames: impl IntoIterator<Item = Bytes>) -> Flushed {
        let mut out = self.outbox.lock();
        if out.broken {
            return Flushed::Broken;
        }
        for frame in frames {
            if out.over(frame.len(), &self.limits) {
                out.closing.get_or_insert(Disconnect::SlowConsumer);
                break;
            }
            out.bytes += frame.len();
            out.frames.push_back(frame);
        }
        out.release();
        if out.stalled { Flushed::Stalled } else { out.write() }
    }

    /// Writes what is queued (after the socket drained, or to finish before a close).
    pub fn flush_now(&self) -> Flushed {
        let mut out = self.outbox.lock();
        if out.broken {
            return Flushed::Broken;
        }
        out.stalled = false;
        out.write()
    }

    /// Ends the stream of frames before a close: a slow consumer's backlog is dropped (all but
    /// a partly written frame, which must finish), everyone else's still goes out. Then `last`
    /// frames are queued whatever the bounds. Returns whether anything is left to write.
    pub fn queue_last(&self, last: impl IntoIterator<Item = Bytes>) -> bool {
        let mut out = self.outbox.lock();
        out.release();
        if out.closing == Some(Disconnect::SlowConsumer) {
            let keep = usize::from(out.partial).min(out.frames.len());
            out.frames.truncate(keep);
            out.bytes = out.frames.iter().map(Bytes::len).sum();
        }
        for frame in last {
            out.bytes += frame.len();
            out.frames.push_back(frame);
        }
        !out.frames.is_empty() && !out.broken
    }

    /// Whether the socket was full at the last write (the connection task waits for it).
    pub fn stalled(&self) -> bool {
        self.outbox.lock().stalled
    }

    /// Asks the connection task to close (the first reason wins).
    pub fn close(&self, reason: Disconnect) {
        let mut out = self.outbox.lock();
        if out.closing.is_none() {
            out.closing = Some(reason);
        }
        drop(out);
        self.wake();
    }

    /// Moves every queued frame into `batch` (for a transport without a wire); returns the close
    /// reason once one is set.
    pub fn drain(&self, batch: &mut Vec<Bytes>) -> Option<Disconnect> {
        let mut out = self.outbox.lock();
        if out.wire.is_none() {
            batch.extend(out.frames.drain(..));
            out.bytes = 0;
            out.trim();
        }
        out.closing
    }

    /// The close reason, if one is set.
    pub fn closing(&self) -> Option<Disconnect> {
        self.outbox.lock().closing
    }

    /// Resolves when the connection task has something to do since the last call.
    /// Cancel-safe: a notification is never lost. Only the connection's own task may wait here
    /// (one waker slot).
    pub async fn woken(&self) {
        self.signal.wait().await
    }

    fn wake(&self) {
        self.signal.notify();
    }

    /// Wakes the connection's task with nothing queued, so that it looks at its session's
    /// timers again (a transport whose deadline another task moved).
    pub fn nudge(&self) {
        self.wake();
    }

    /// Whether the core has already removed this connection.
    pub(crate) fn mark_closed(&self) -> bool {
        self.closed.swap(true, Ordering::AcqRel)
    }

    /// Whether [`crate::core::Realtime::disconnect`] has begun.
    pub(crate) fn is_marked_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The channels the connection is subscribed to.
    pub fn channels(&self) -> Vec<ChannelName> {
        self.membership.lock().channels.clone()
    }

    pub fn is_subscribed(&self, channel: &ChannelName) -> bool {
        self.membership.lock().channels.contains(channel)
    }

    pub fn channel_count(&self) -> usize {
        self.membership.lock().channels.len()
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<Arc<str>> {
        self.membership.lock().user.clone()
    }
}

impl Flush for ConnHandle {
    /// The flush queue's turn for this connection.
    fn flush_listed(&self) {
        let mut out = self.outbox.lock();
        out.listed = false;
        if out.stalled || out.broken {
            return;
        }
        if out.write() != Flushed::Done {
            drop(out);
            self.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn test_conn(max_bytes: usize, max_frames: usize) -> ConnHandle {
        let limits = OutboxLimits { max_bytes, max_frames };
        Conn::new(SocketId { node: 1, seq: 1 }, Transport::Pusher, "a".into(), limits, Arc::default())
    }

    #[test]
    fn outbox_bounds_evict() {
        let c = test_conn(10, 2);
        assert!(c.try_send(Bytes::from_static(b"12345")));
        assert!(c.try_send(Bytes::from_static(b"12345")));
        assert!(!c.try_send(Bytes::from_static(b"1")));
        let mut batch = Vec::new();
        assert_eq!(c.drain(&mut batch), Some(Disconnect::SlowConsumer));
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn frames_sent_together_are_queued_together_or_not_at_all() {
        let c = test_conn(100, 4);
        assert!(c.try_send(Bytes::from_static(b"a")));
        assert!(c.try_send_all(vec![Bytes::from_static(b"b"), Bytes::from_static(b"c")]));
        let mut batch = Vec::new();
        assert_eq!(c.drain(&mut batch), None);
        assert_eq!(batch, [&b"a"[..], b"b", b"c"]);
        assert!(c.try_send(Bytes::from_static(b"d")));
        // Three more would make five frames: none of them is queued, and the reader is slow.
        assert!(!c.try_send_all(vec![Bytes::from_static(b"e"); 4]));
        batch.clear();
        assert_eq!(c.drain(&mut batch), Some(Disconnect::SlowConsumer));
        assert_eq!(batch, [&b"d"[..]]);
    }

    #[tokio::test]
    async fn wake_before_wait_is_kept_once() {
        let c = test_conn(100, 10);
        assert!(c.try_send(Bytes::from_static(b"1")));
        assert!(c.try_send(Bytes::from_static(b"2")));
        let wait = std::time::Duration::from_millis(50);
        assert!(tokio::time::timeout(wait, c.woken()).await.is_ok());
        // The second frame joined the first one's batch: no second wake-up.
        assert!(tokio::time::timeout(wait, c.woken()).await.is_err());
        c.close(Disconnect::Shutdown);
        assert!(tokio::time::timeout(wait, c.woken()).await.is_ok());
    }

    /// A socket that takes `room` more bytes, then reports itself full.
    struct TestWire {
        room: Mutex<usize>,
        got: Mutex<Vec<u8>>,
    }

    impl Wire for TestWire {
        fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            self.try_write_vectored(&[IoSlice::new(buf)])
        }

        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut room = self.room.lock();
            if *room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(*room - n);
                self.got.lock().extend_from_slice(&buf[..take]);
                n += take;
                if n == *room {
                    break;
                }
            }
            *room -= n;
            Ok(n)
        }
    }

    #[tokio::test]
    async fn a_full_socket_stalls_and_resumes_in_order() {
        let c = test_conn(100, 10);
        let wire = Arc::new(TestWire { room: Mutex::new(4), got: Mutex::default() });
        c.attach_wire(wire.clone());
        assert_eq!(c.send_now([Bytes::from_static(b"abc"), Bytes::from_static(b"def")]), Flushed::Stalled);
        assert!(c.stalled());
        // Queued behind the stalled socket, not listed for the flusher.
        assert!(c.try_send(Bytes::from_static(b"ghi")));
        assert_eq!(&*wire.got.lock(), b"abcd");
        // A close keeps the partly written frame so the stream stays well-formed.
        c.close(Disconnect::SlowConsumer);
        assert!(c.queue_last([Bytes::from_static(b"!")]));
        *wire.room.lock() = 100;
        assert_eq!(c.flush_now(), Flushed::Done);
        assert_eq!(&*wire.got.lock(), b"abcdef!");
    }

    #[tokio::test]
    async fn the_flush_queue_writes_fanned_out_frames() {
        let c = test_conn(100, 10);
        let wire = Arc::new(TestWire { room: Mutex::new(100), got: Mutex::default() });
        c.attach_wire(wire.clone());
        assert!(c.try_send(Bytes::from_static(b"one")));
        assert!(c.try_send(Bytes::from_static(b"two")));
        for _ in 0..100 {
            if wire.got.lock().len() == 6 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(&*wire.got.lock(), b"onetwo");
        // Written by the flush queue: the connection task was never needed.
        let wait = std::time::Duration::from_millis(20);
        assert!(tokio::time::timeout(wait, c.woken()).await.is_err());
    }

    proptest! {
        #[test]
        fn socket_id_round_trips(node: u32, seq: u64) {
            let id = SocketId { node, seq };
            prop_assert_eq!(id.to_string().parse::<SocketId>(), Ok(id));
        }

        #[test]
        fn socket_id_parse_never_panics(s in ".{0,50}") {
            let _ = s.parse::<SocketId>();
        }
    }
}
