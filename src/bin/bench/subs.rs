//! Subscribers: the ramp that opens them (bounded concurrency), their setup handshake, and the
//! receive loop that timestamps deliveries into the shared step statistics. A subscriber speaks
//! the Pusher protocol, Notif's, or Socket.IO over WebSocket or long-polling (sio.rs,
//! polling.rs); `--protocol mixed` splits a run's subscribers over the three.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::api::{Creds, Publishing};
use crate::polling::PollSession;
use crate::sio::{self, Target, Transport};
use crate::stats::{Histogram, now_us};
use crate::sys::r3;
use crate::ws::{OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, WsConn, describe_close, find};

const PONG: &[u8] = br#"{"event":"pusher:pong","data":{}}"#;
/// Marks a bench payload: `~SB<seq>.<send µs>~`.
pub const STAMP: &[u8] = b"~SB";
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_NOTES: usize = 50;

/// The protocol the subscribers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Pusher Channels over WebSocket, `/app/KEY`.
    Pusher,
    /// Notif over WebSocket, `/ws?api_key=KEY`.
    Notif,
    /// Socket.IO v5 over `--transport`, as `--flavour` serves it.
    Socketio,
    /// A third each of Pusher, Notif and Socket.IO (Switchboard only), all on one channel.
    Mixed,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Pusher => "pusher",
            Protocol::Notif => "notif",
            Protocol::Socketio => "socketio",
            Protocol::Mixed => "mixed",
        }
    }

    /// How many subscribers of each [`Kind`] make `n` of this protocol.
    pub fn split(self, n: usize) -> [usize; KINDS] {
        match self {
            Protocol::Pusher => [n, 0, 0],
            Protocol::Notif => [0, n, 0],
            Protocol::Socketio => [0, 0, n],
            Protocol::Mixed => [n.div_ceil(3), (n + 1) / 3, n / 3],
        }
    }
}

/// The kinds of subscriber, indexing per-kind counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pusher = 0,
    Notif = 1,
    Socketio = 2,
}

pub const KINDS: usize = 3;
const ALL_KINDS: [Kind; KINDS] = [Kind::Pusher, Kind::Notif, Kind::Socketio];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pusher => "pusher",
            Kind::Notif => "notif",
            Kind::Socketio => "socketio",
        }
    }
}

/// What every scenario knows about the server under test.
pub struct Ctx {
    pub addr: SocketAddr,
    pub authority: String,
    /// The Pusher subscribers' WebSocket path.
    pub ws_path: String,
    /// The Notif subscribers' WebSocket path.
    pub notif_path: String,
    pub protocol: Protocol,
    /// Set when some subscribers speak Socket.IO.
    pub sio: Option<Target>,
    /// How events are published (fanout) and which route `http` drives.
    pub publishing: Publishing,
    pub creds: Creds,
    pub channel: String,
    pub ramp_concurrency: u32,
    pub server_pid: Option<u32>,
    /// The report so far, printed if the overall timeout strikes.
    pub partial: RefCell<Value>,
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

/// What a Pusher or Notif text frame is.
#[inline]
fn pusher_frame(data: &[u8]) -> Seen {
    if let Some((seq, sent)) = parse_stamp(data) {
        Seen::Delivery(seq, sent)
    } else if find(data, b"\"pusher:ping\"").is_some() {
        Seen::Reply(PONG)
    } else if find(data, b"pusher:error").is_some() {
        Seen::Note(format!("pusher:error {}", shorten(data)))
    } else {
        Seen::Nothing
    }
}

/// Connects, waits for `connection_established` (Pusher's or Notif's), subscribes, waits for the
/// acknowledgement.
async fn setup_pusher(ctx: &Ctx, path: &str) -> anyhow::Result<WsConn> {
    let mut conn = WsConn::connect(ctx.addr, &ctx.authority, path).await?;
    let first = conn.next_text().await?;
    if !first.contains("connection_established") {
        bail!("unexpected first message: {}", shorten(first.as_bytes()));
    }
    let subscribe = json!({"event": "pusher:subscribe", "data": {"channel": ctx.channel}}).to_string();
    conn.send(OP_TEXT, subscribe.as_bytes()).await?;
    loop {
        let msg = conn.next_text().await?;
        if msg.contains("pusher_internal:subscription_succeeded") {
            return Ok(conn);
        }
        if msg.contains("\"pusher:ping\"") {
            conn.send(OP_TEXT, PONG).await?;
        } else if msg.contains("pusher:error") || msg.contains("subscription_error") {
            bail!("subscription refused: {}", shorten(msg.as_bytes()));
        }
    }
}

/// Opens a Socket.IO session over WebSocket and joins the channel.
async fn setup_sio_ws(ctx: &Ctx, target: &Target) -> anyhow::Result<WsConn> {
    let mut conn = WsConn::connect(ctx.addr, &ctx.authority, &target.base).await?;
    let mut handshake = sio::Handshake::new(target);
    let mut out = Vec::new();
    loop {
        let msg = conn.next_text().await?;
        let joined = handshake.on_packet(msg.as_bytes(), &mut out)?;
        for packet in out.drain(..) {
            conn.send(OP_TEXT, &packet).await?;
        }
        if joined {
            return Ok(conn);
        }
    }
}

/// A subscriber that has joined the channel.
enum Sub {
    /// Pusher or Notif.
    Pusher(WsConn),
    SioWs(WsConn),
    SioPolling(PollSession),
}

async fn setup(ctx: &Ctx, kind: Kind) -> anyhow::Result<Sub> {
    Ok(match (kind, &ctx.sio) {
        (Kind::Pusher, _) => Sub::Pusher(setup_pusher(ctx, &ctx.ws_path).await?),
        (Kind::Notif, _) => Sub::Pusher(setup_pusher(ctx, &ctx.notif_path).await?),
        (Kind::Socketio, None) => bail!("no Socket.IO target"),
        (Kind::Socketio, Some(t)) if t.transport == Transport::Websocket => Sub::SioWs(setup_sio_ws(ctx, t).await?),
        (Kind::Socketio, Some(t)) => Sub::SioPolling(PollSession::setup(ctx.addr, &ctx.authority, t).await?),
    })
}

/// Runs a subscriber until its connection ends; returns why.
async fn receive(ctx: &Ctx, sub: Sub, shared: &Shared) -> String {
    match (sub, &ctx.sio) {
        (Sub::Pusher(conn), _) => receive_ws(conn, shared, pusher_frame).await,
        (Sub::SioWs(conn), Some(t)) => receive_ws(conn, shared, |data| t.classify(data)).await,
        (Sub::SioPolling(session), Some(t)) => session.receive(t, shared).await,
        (_, None) => "no Socket.IO target".to_owned(),
    }
}

/// The WebSocket receive loop; `frame` tells what each text frame is. Returns why it ended.
async fn receive_ws(mut conn: WsConn, shared: &Shared, frame: impl Fn(&[u8]) -> Seen) -> String {
    let mut last = (0u64, 0u64);
    let mut replies: Vec<(u8, Vec<u8>)> = Vec::new();
    loop {
        // One clock reading per read batch: the frames in it arrived together.
        let now = now_us();
        loop {
            let (op, loc) = match conn.poll_msg() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => return format!("protocol error: {e}"),
            };
            let data = conn.bytes(loc);
            match op {
                OP_TEXT => match frame(data) {
                    Seen::Delivery(seq, sent) => shared.delivered(seq, sent, now, &mut last),
                    Seen::Reply(answer) => {
                        shared.pings.set(shared.pings.get() + 1);
                        replies.push((OP_TEXT, answer.to_vec()));
                    }
                    Seen::End(why) => return why,
                    Seen::Note(what) => shared.note(what),
                    Seen::Nothing => {}
                },
                OP_PING => replies.push((OP_PONG, data.to_vec())),
                OP_CLOSE => return format!("closed by server: {}", describe_close(data)),
                _ => {}
            }
        }
        for (op, payload) in replies.drain(..) {
            if let Err(e) = conn.send(op, &payload).await {
                return format!("write error: {e}");
            }
        }
        match conn.fill().await {
            Ok(0) => return "connection closed without a close frame".to_owned(),
            Err(e) => return format!("read error: {e}"),
            Ok(_) => {}
        }
    }
}

/// The outcome of opening a batch of subscribers.
pub struct Ramp {
    pub requested: usize,
    pub connected: usize,
    pub failed: usize,
    pub secs: f64,
    pub first_error: Option<String>,
}

impl Ramp {
    pub fn to_json(&self) -> Value {
        json!({
            "requested": self.requested,
            "connected": self.connected,
            "failed": self.failed,
            "secs": r3(self.secs),
            "connections_per_sec": r3(self.connected as f64 / self.secs.max(1e-9)),
            "first_error": self.first_error,
        })
    }
}

/// Opens `counts[kind]` subscribers of each kind, interleaved, at most `ctx.ramp_concurrency`
/// handshakes in flight; returns once every attempt has succeeded or failed. The subscribers keep
/// running on the local task set.
pub async fn open(ctx: &Rc<Ctx>, shared: &Rc<Shared>, counts: [usize; KINDS]) -> Ramp {
    let count: usize = counts.iter().sum();
    let most = counts.iter().copied().max().unwrap_or(0);
    let order = (0..most).flat_map(|i| ALL_KINDS.into_iter().filter(move |k| i < counts[*k as usize]));
    let started = Instant::now();
    let limit = ctx.ramp_concurrency.max(1);
    let gate = Arc::new(Semaphore::new(limit as usize));
    let connected = Rc::new(Cell::new(0usize));
    let failed = Rc::new(Cell::new(0usize));
    let first_error: Rc<RefCell<Option<String>>> = Rc::default();
    let give_up = (count / 20).max(50);
    for kind in order {
        if failed.get() > give_up {
            break;
        }
        let Ok(permit) = gate.clone().acquire_owned().await else { break };
        let (ctx, shared) = (ctx.clone(), shared.clone());
        let (connected, failed, first_error) = (connected.clone(), failed.clone(), first_error.clone());
        tokio::task::spawn_local(async move {
            let result = match tokio::time::timeout(SETUP_TIMEOUT, setup(&ctx, kind)).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("setup timed out after {SETUP_TIMEOUT:?}")),
            };
            match result {
                Ok(sub) => {
                    connected.set(connected.get() + 1);
                    let by_kind = &shared.alive_by_kind[kind as usize];
                    shared.alive.set(shared.alive.get() + 1);
                    by_kind.set(by_kind.get() + 1);
                    drop(permit);
                    let why = receive(&ctx, sub, &shared).await;
                    shared.alive.set(shared.alive.get() - 1);
                    by_kind.set(by_kind.get() - 1);
                    shared.disconnects.set(shared.disconnects.get() + 1);
                    shared.note(why);
                }
                Err(e) => {
                    failed.set(failed.get() + 1);
                    first_error.borrow_mut().get_or_insert_with(|| format!("{}: {e:#}", kind.name()));
                    drop(permit);
                }
            }
        });
    }
    // Every permit back: no attempt still in flight.
    let _ = gate.acquire_many(limit).await;
    let first_error = first_error.borrow().clone();
    Ramp {
        requested: count,
        connected: connected.get(),
        failed: failed.get(),
        secs: started.elapsed().as_secs_f64(),
        first_error,
    }
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
    fn mixed_runs_split_in_thirds() {
        for n in [0, 1, 2, 3, 1000, 1001] {
            let split = Protocol::Mixed.split(n);
            assert_eq!(split.iter().sum::<usize>(), n);
            assert!(split.iter().max().unwrap() - split.iter().min().unwrap() <= 1, "{split:?}");
        }
        assert_eq!(Protocol::Mixed.split(1000), [334, 333, 333]);
        assert_eq!(Protocol::Socketio.split(7), [0, 0, 7]);
    }

    #[test]
    fn stamps() {
        let frame = br#"{"event":"e","channel":"bench","data":"~SB42.123456~xx"}"#;
        assert_eq!(parse_stamp(frame), Some((42, 123456)));
        assert_eq!(parse_stamp(br#"{"data":"~SB42~"}"#), None);
        assert_eq!(parse_stamp(br#"{"event":"pusher:ping"}"#), None);
    }
}
