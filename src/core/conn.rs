//! Connections as the core sees them: a transport-neutral handle with a socket id, a bounded
//! outbox the fan-out fills without waiting, and a close signal the connection task obeys.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

use super::channel::ChannelName;

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

struct Outbox {
    frames: VecDeque<Bytes>,
    bytes: usize,
    closing: Option<Disconnect>,
}

/// What the core keeps about a connection's membership.
#[derive(Default)]
pub(crate) struct Membership {
    pub channels: Vec<ChannelName>,
    pub user: Option<Arc<str>>,
    pub watching: Vec<Arc<str>>,
}

/// One live connection on any transport.
pub struct Conn {
    pub socket_id: SocketId,
    pub transport: Transport,
    pub app: Arc<str>,
    /// Milliseconds since the Unix epoch.
    pub connected_at: i64,
    limits: OutboxLimits,
    outbox: Mutex<Outbox>,
    /// Set when frames were queued or a close asked for; cleared when the connection task takes the
    /// wake-up. With `task` this is a `Notify` for one waiter: only the connection task waits, and
    /// the fan-out wakes thousands of them per event, so `Notify`'s locked waiter list cost more.
    pending: AtomicBool,
    task: AtomicWaker,
    closed: AtomicBool,
    pub(crate) membership: Mutex<Membership>,
}

/// Shared by the connection task and every channel the connection is in.
pub type ConnHandle = Arc<Conn>;

impl Conn {
    pub(crate) fn new(socket_id: SocketId, transport: Transport, app: Arc<str>, limits: OutboxLimits) -> ConnHandle {
        Arc::new(Self {
            socket_id,
            transport,
            app,
            connected_at: super::now_ms(),
            limits,
            outbox: Mutex::new(Outbox { frames: VecDeque::new(), bytes: 0, closing: None }),
            pending: AtomicBool::new(false),
            task: AtomicWaker::new(),
            closed: AtomicBool::new(false),
            membership: Mutex::default(),
        })
    }

    /// Queues a frame without waiting. A full outbox marks the connection as a slow consumer
    /// and returns false; so does a closing one.
    pub fn try_send(&self, frame: Bytes) -> bool {
        let mut out = self.outbox.lock();
        if out.closing.is_some() {
            return false;
        }
        if out.frames.len() >= self.limits.max_frames || out.bytes + frame.len() > self.limits.max_bytes {
            out.closing = Some(Disconnect::SlowConsumer);
            drop(out);
            self.wake();
            return false;
        }
        out.bytes += frame.len();
        out.frames.push_back(frame);
        let first = out.frames.len() == 1;
        drop(out);
        // Only the first frame of a batch needs to wake the task; it drains them all.
        if first {
            self.wake();
        }
        true
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

    /// Moves every queued frame into `batch`; returns the close reason once one is set.
    pub fn drain(&self, batch: &mut Vec<Bytes>) -> Option<Disconnect> {
        let mut out = self.outbox.lock();
        batch.extend(out.frames.drain(..));
        out.bytes = 0;
        if out.frames.capacity() > 64 {
            // Keep idle connections small after a burst.
            out.frames.shrink_to(8);
        }
        out.closing
    }

    /// The close reason, if one is set.
    pub fn closing(&self) -> Option<Disconnect> {
        self.outbox.lock().closing
    }

    /// Resolves when frames were queued or a close was asked for since the last call.
    /// Cancel-safe: a notification is never lost. Only the connection's own task may wait here
    /// (one waker slot).
    pub async fn woken(&self) {
        poll_fn(|cx| {
            if self.pending.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            self.task.register(cx.waker());
            if self.pending.swap(false, Ordering::AcqRel) { Poll::Ready(()) } else { Poll::Pending }
        })
        .await
    }

    fn wake(&self) {
        self.pending.store(true, Ordering::Release);
        self.task.wake();
    }

    /// Whether the core has already removed this connection.
    pub(crate) fn mark_closed(&self) -> bool {
        self.closed.swap(true, Ordering::AcqRel)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn outbox_bounds_evict() {
        let c = Conn::new(
            SocketId { node: 1, seq: 1 },
            Transport::Pusher,
            "a".into(),
            OutboxLimits { max_bytes: 10, max_frames: 2 },
        );
        assert!(c.try_send(Bytes::from_static(b"12345")));
        assert!(c.try_send(Bytes::from_static(b"12345")));
        assert!(!c.try_send(Bytes::from_static(b"1")));
        let mut batch = Vec::new();
        assert_eq!(c.drain(&mut batch), Some(Disconnect::SlowConsumer));
        assert_eq!(batch.len(), 2);
    }

    #[tokio::test]
    async fn wake_before_wait_is_kept_once() {
        let c = Conn::new(
            SocketId { node: 1, seq: 1 },
            Transport::Pusher,
            "a".into(),
            OutboxLimits { max_bytes: 100, max_frames: 10 },
        );
        assert!(c.try_send(Bytes::from_static(b"1")));
        assert!(c.try_send(Bytes::from_static(b"2")));
        let wait = std::time::Duration::from_millis(50);
        assert!(tokio::time::timeout(wait, c.woken()).await.is_ok());
        // The second frame joined the first one's batch: no second wake-up.
        assert!(tokio::time::timeout(wait, c.woken()).await.is_err());
        c.close(Disconnect::Shutdown);
        assert!(tokio::time::timeout(wait, c.woken()).await.is_ok());
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
