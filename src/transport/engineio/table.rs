//! Polling sessions' ids and the table that holds them: capped, sharded, keyed by sid, with the
//! record of each session and the deadlines its timer task serves. The polling requests, the
//! WebSocket upgrade and the endpoint all look sessions up here, so it lives below them.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::ConnHandle;
use super::session::Live;

const SHARDS: usize = 16;
/// Random bytes in a session id (20 characters of URL-safe base64).
const SID_BYTES: usize = 15;
pub(crate) const SID_LEN: usize = 20;

/// A fresh session id: 120 random bits, URL-safe.
pub(crate) fn new_sid() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; SID_BYTES]>())
}

/// The sid table.
pub(crate) struct Table {
    shards: Vec<Mutex<HashMap<Arc<str>, Arc<Polled>>>>,
    hasher: RandomState,
    len: AtomicUsize,
    pub max: usize,
    pub timers: Arc<Timers>,
}

/// Where a polling session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Polling,
    /// A WebSocket is probing; polling goes on until it sends `5`.
    Upgrading,
    /// The WebSocket took over; polling requests get 400.
    Upgraded,
    Ended,
}

/// One polling session.
pub(crate) struct Polled {
    pub sid: Arc<str>,
    pub conn: ConnHandle,
    pub state: Mutex<PollState>,
    /// Wakes the pending GET for what is not in the outbox (an end, a noop).
    pub kick: Notify,
}

pub(crate) struct PollState {
    /// `None` once the session ended or moved to its WebSocket.
    pub live: Option<Live>,
    pub phase: Phase,
    pub getting: bool,
    pub posting: bool,
    /// A probe arrived: the next (or pending) GET gets `6` so the client stops polling.
    pub noop_due: bool,
    /// The last packet for the pending GET once the session ended (`1`, or `6`).
    pub farewell: Option<&'static str>,
    /// The upper layer's last message when the core closed the connection.
    pub last_words: Option<bytes::Bytes>,
    /// The deadline the timer heap holds for this session.
    pub scheduled: Option<Instant>,
    /// The server's admission slot, held while polling.
    pub slot: Option<Box<dyn Any + Send + Sync>>,
}

impl Table {
    pub fn new(max: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            len: AtomicUsize::new(0),
            max,
            timers: Arc::default(),
        }
    }

    fn shard(&self, sid: &str) -> &Mutex<HashMap<Arc<str>, Arc<Polled>>> {
        &self.shards[self.hasher.hash_one(sid) as usize % SHARDS]
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// The session `sid` names; a sid of the wrong length is not looked up.
    pub fn get(&self, sid: &str) -> Option<Arc<Polled>> {
        if sid.len() != SID_LEN {
            return None;
        }
        self.shard(sid).lock().get(sid).cloned()
    }

    pub fn insert(&self, polled: Arc<Polled>) -> bool {
        if self.len.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        self.shard(&polled.sid).lock().insert(polled.sid.clone(), polled);
        true
    }

    pub fn remove(&self, sid: &str) {
        if self.shard(sid).lock().remove(sid).is_some() {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub fn all(&self) -> Vec<Arc<Polled>> {
        self.shards.iter().flat_map(|s| s.lock().values().cloned().collect::<Vec<_>>()).collect()
    }

    pub fn stop_timers(&self) {
        self.timers.stopped.store(true, Ordering::Release);
        self.timers.notify.notify_one();
    }
}

/// Deadlines of polling sessions, earliest first. An entry whose session has since been
/// scheduled otherwise is stale and skipped; a session only adds one when its deadline moves
/// earlier, so the heap holds a few entries per session at most.
pub(crate) type Deadlines = BinaryHeap<Reverse<(Instant, Arc<str>)>>;

/// The polling sessions' deadlines and the wake-up of the endpoint's timer task, which
/// polling.rs runs.
#[derive(Default)]
pub(crate) struct Timers {
    pub heap: Mutex<Deadlines>,
    pub notify: Notify,
    pub started: AtomicBool,
    pub stopped: AtomicBool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_url_safe_and_fixed_length() {
        let a = new_sid();
        assert_eq!(a.len(), SID_LEN);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, new_sid());
    }
}
