//! What the subscribers' receive loops see and count, whatever their protocol: the stamp of a
//! bench payload, what a frame or packet is to a subscriber ([`Seen`]), and the step counters
//! they share ([`Shared`]). Every transport's loop uses these, so they live below them.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::stats::Histogram;
use crate::ws::find;

/// Marks a bench payload: `~SB<seq>.<send µs>~`.
pub const STAMP: &[u8] = b"~SB";
const MAX_NOTES: usize = 50;

/// The kinds of subscriber, indexing per-kind counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pusher = 0,
    Notif = 1,
    Socketio = 2,
}

pub const KINDS: usize = 3;
pub const ALL_KINDS: [Kind; KINDS] = [Kind::Pusher, Kind::Notif, Kind::Socketio];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pusher => "pusher",
            Kind::Notif => "notif",
            Kind::Socketio => "socketio",
        }
    }
}

/// Counters the receive loops update (single-threaded runtime: plain cells).
#[derive(Default)]
pub struct Shared {
    /// Deliveries of sequence numbers below this belong to an earlier step.
    step_lo: Cell<u64>,
    pub received: Cell<u64>,
    pub stale: Cell<u64>,
    /// Deliveries that came after a later event although that event was published only after
    /// this one's publish had been answered (the server broke publish order), or twice.
    pub out_of_order: Cell<u64>,
    /// Deliveries that came after a later event published while this one was still in flight:
    /// concurrent publishes may reach the server in either order, so this is not an error.
    pub overtaken: Cell<u64>,
    /// When (µs) the generator had the 200 for each sequence number; 0 until then.
    acked_us: RefCell<Vec<u64>>,
    pub last_recv_us: Cell<u64>,
    pub latency: RefCell<Histogram>,
    pub alive: Cell<usize>,
    /// Subscribers alive by [`Kind`].
    pub alive_by_kind: [Cell<usize>; KINDS],
    pub disconnects: Cell<u64>,
    pub pings: Cell<u64>,
    notes: RefCell<BTreeMap<String, u64>>,
    /// Every counted delivery as (sequence, sent µs, received µs), when `--latency-log` asks.
    pub log: RefCell<Option<Vec<(u64, u64, u64)>>>,
}

impl Shared {
    /// Starts counting a new step whose sequence numbers start at `lo`.
    pub fn begin_step(&self, lo: u64) {
        self.step_lo.set(lo);
        self.received.set(0);
        self.out_of_order.set(0);
        self.overtaken.set(0);
        self.last_recv_us.set(0);
        self.latency.borrow_mut().clear();
    }

    /// Books the publisher's 200 for `seq`.
    pub fn acked(&self, seq: u64, at_us: u64) {
        let mut acked = self.acked_us.borrow_mut();
        let i = seq as usize;
        if acked.len() <= i {
            acked.resize(i + 1, 0);
        }
        acked[i] = at_us;
    }

    /// `last` is the subscriber's highest sequence so far and when it was published.
    #[inline]
    pub fn delivered(&self, seq: u64, sent_us: u64, now: u64, last: &mut (u64, u64)) {
        if seq > last.0 {
            *last = (seq, sent_us);
        } else {
            let acked = self.acked_us.borrow().get(seq as usize).copied().unwrap_or(0);
            if seq == last.0 || (acked != 0 && acked <= last.1) {
                self.out_of_order.set(self.out_of_order.get() + 1);
            } else {
                self.overtaken.set(self.overtaken.get() + 1);
            }
        }
        if seq < self.step_lo.get() {
            self.stale.set(self.stale.get() + 1);
            return;
        }
        self.received.set(self.received.get() + 1);
        self.latency.borrow_mut().record(now.saturating_sub(sent_us));
        if let Some(log) = self.log.borrow_mut().as_mut() {
            log.push((seq, sent_us, now));
        }
        if now > self.last_recv_us.get() {
            self.last_recv_us.set(now);
        }
    }

    /// Counts an unusual event (close reason, pusher:error), keeping the set of kinds bounded.
    pub fn note(&self, what: String) {
        let mut notes = self.notes.borrow_mut();
        let key = if notes.len() < MAX_NOTES || notes.contains_key(&what) { what } else { "other".to_owned() };
        *notes.entry(key).or_default() += 1;
    }

    /// Subscribers alive now, by kind (those of the run's protocol).
    pub fn alive_json(&self) -> Value {
        let by_kind = ALL_KINDS.iter().map(|k| (k.name().to_owned(), json!(self.alive_by_kind[*k as usize].get())));
        Value::Object(by_kind.collect())
    }

    pub fn notes_json(&self) -> Value {
        json!(self.notes.borrow().clone())
    }
}

/// Parses `~SB<seq>.<µs>~` out of a frame.
#[inline]
pub fn parse_stamp(frame: &[u8]) -> Option<(u64, u64)> {
    let at = find(frame, STAMP)? + STAMP.len();
    let (seq, n) = parse_u64(&frame[at..])?;
    let rest = &frame[at + n..];
    if rest.first() != Some(&b'.') {
        return None;
    }
    let (sent, _) = parse_u64(&rest[1..])?;
    Some((seq, sent))
}

#[inline]
fn parse_u64(s: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut n = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        n += 1;
    }
    (n > 0).then_some((v, n))
}

/// The start of some bytes, for a note or an error.
pub fn shorten(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    s.chars().take(160).collect()
}

/// What a text frame (or polling packet) is to a subscriber that has joined.
pub enum Seen {
    /// A stamped event: (sequence, sent µs).
    Delivery(u64, u64),
    /// Answer with this (a ping's pong).
    Reply(&'static [u8]),
    /// The server ended the session.
    End(String),
    /// Something unusual, counted in the report's notes.
    Note(String),
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_check_tells_broken_order_from_concurrent_publishes() {
        let shared = Shared::default();
        let mut last = (0, 0);
        // 1 was answered (t=100) before 2 was sent (t=150): 2 before 1 breaks publish order.
        shared.acked(1, 100);
        shared.delivered(2, 150, 200, &mut last);
        shared.delivered(1, 90, 210, &mut last);
        assert_eq!((shared.out_of_order.get(), shared.overtaken.get()), (1, 0));
        // 4 was sent (t=250) while 3, sent at 240, was still in flight: either order is fine.
        let mut last = (0, 0);
        shared.acked(3, 400);
        shared.delivered(4, 250, 350, &mut last);
        shared.delivered(3, 240, 360, &mut last);
        assert_eq!((shared.out_of_order.get(), shared.overtaken.get()), (1, 1));
        // A duplicate is always out of order.
        shared.delivered(4, 250, 370, &mut last);
        assert_eq!(shared.out_of_order.get(), 2);
        assert_eq!(last, (4, 250));
    }

    #[test]
    fn stamps() {
        let frame = br#"{"event":"e","channel":"bench","data":"~SB42.123456~xx"}"#;
        assert_eq!(parse_stamp(frame), Some((42, 123456)));
        assert_eq!(parse_stamp(br#"{"data":"~SB42~"}"#), None);
        assert_eq!(parse_stamp(br#"{"event":"pusher:ping"}"#), None);
    }
}
