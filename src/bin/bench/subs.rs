//! Subscribers: the ramp that opens them (bounded concurrency), their setup handshake, and the
//! receive loop that timestamps deliveries into the shared step statistics. A subscriber speaks
//! the Pusher protocol, Notif's, or Socket.IO over WebSocket or long-polling (sio.rs,
//! polling.rs); `--protocol mixed` splits a run's subscribers over the three.

use std::cell::{Cell, RefCell};
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
use crate::stats::now_us;
use crate::sys::r3;
use crate::tally::{ALL_KINDS, KINDS, Kind, Seen, Shared, parse_stamp, shorten};
use crate::ws::{OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, WsConn, describe_close, find};

const PONG: &[u8] = br#"{"event":"pusher:pong","data":{}}"#;
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);

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
    fn mixed_runs_split_in_thirds() {
        for n in [0, 1, 2, 3, 1000, 1001] {
            let split = Protocol::Mixed.split(n);
            assert_eq!(split.iter().sum::<usize>(), n);
            assert!(split.iter().max().unwrap() - split.iter().min().unwrap() <= 1, "{split:?}");
        }
        assert_eq!(Protocol::Mixed.split(1000), [334, 333, 333]);
        assert_eq!(Protocol::Socketio.split(7), [0, 0, 7]);
    }
}
