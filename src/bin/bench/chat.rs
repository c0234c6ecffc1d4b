//! The chat scenarios (Hestia's surface, SPEC §6): users registered and befriended over REST, then
//! online on `/socket.io/` with their token, as chat clients are. Each scenario measures one of the
//! targets of BENCHMARKS.md's chat section:
//!
//! - `dm`: `users` online, half of them each sending DMs to a friend in the other half, `rate`
//!   messages a second in all; latency from `sendDM` to the recipient's `newDM`, and no loss:
//!   what was sent, what the senders got back (their own `newDM`, the only acknowledgement Hestia
//!   has), what the recipients got, and what history holds afterwards must all agree;
//! - `group`: one group of `members`, all online; its admin sends `rate` group messages a second;
//!   latency from `sendGroupMessage` to every member's `newGroupMessage`;
//! - `history`: `getDMHistory` pages (`limit`, `before` at random) on a conversation seeded with
//!   `messages` DMs (the server must run with the message rate limit raised for the seeding);
//! - `idle`: `users` × `sockets_per_user` authenticated chat sockets held open; server RSS each.
//!
//! Messages carry the usual `~SB<seq>.<sent_us>~` stamp as their content; deliveries are
//! recognised by their event's byte prefix, as everywhere in this tool.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Subcommand;
use futures_util::future::join_all;
use hyper::Method;
use serde_json::{Value, json};

use crate::api::Api;
use crate::stats::{Histogram, now_us};
use crate::subs::Ctx;
use crate::sys::{self, CpuWindow, r1, r3};
use crate::tally::{parse_stamp, shorten};
use crate::ws::{OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, WsConn, describe_close};

/// Where the chat's Socket.IO endpoint is, WebSocket straight away.
const SOCKET_PATH: &str = "/socket.io/?EIO=4&transport=websocket";
const NEW_DM: &[u8] = br#"42["newDM","#;
const NEW_GROUP_MESSAGE: &[u8] = br#"42["newGroupMessage","#;
const ERROR_EVENT: &[u8] = br#"42["error","#;

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    pub mode: Mode,
    /// REST requests in flight while setting up (registrations hash passwords).
    #[arg(long, default_value_t = 8)]
    pub setup_concurrency: usize,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// DMs between friends: `users` online, half of them sending, `rate` messages/s in all.
    Dm {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds of sending before the measured run, not counted.
        #[arg(long, default_value_t = 3)]
        warmup: u64,
    },
    /// One group of `members`, all online; its admin sends `rate` messages/s.
    Group {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value_t = 2)]
        warmup: u64,
    },
    /// History pages of a conversation seeded with `messages` DMs.
    History {
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long, default_value_t = 1000)]
        queries: usize,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Sockets of the sender that seed the conversation.
        #[arg(long, default_value_t = 8)]
        seeders: usize,
        /// DMs in flight per seeding socket.
        #[arg(long, default_value_t = 8)]
        window: u64,
    },
    /// Idle authenticated chat sockets.
    Idle {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 10)]
        sockets_per_user: usize,
        #[arg(long, default_value_t = 5)]
        settle: u64,
    },
}

impl Mode {
    pub fn connections(&self) -> usize {
        match self {
            Mode::Dm { users, .. } => *users,
            Mode::Group { members, .. } => *members,
            Mode::History { seeders, .. } => seeders + 1,
            Mode::Idle { users, sockets_per_user, .. } => users * sockets_per_user,
        }
    }

    pub fn default_timeout(&self) -> u64 {
        // Registrations hash a password each: allow ~20 ms apiece on top of the run.
        let setup = self.connections().min(10_000) as u64 / 50 + 60;
        match self {
            Mode::Dm { duration, warmup, .. } | Mode::Group { duration, warmup, .. } => setup + duration + warmup + 60,
            Mode::History { messages, queries, .. } => setup + messages / 2_000 + *queries as u64 / 10 + 60,
            Mode::Idle { settle, .. } => setup + settle + 60,
        }
    }
}

pub async fn run(ctx: &Rc<Ctx>, opts: &Opts) -> anyhow::Result<Value> {
    let setup = Setup { ctx: ctx.clone(), concurrency: opts.setup_concurrency.max(1), run: run_id() };
    match opts.mode {
        Mode::Dm { users, rate, duration, warmup } => {
            dm(&setup, users, rate, Duration::from_secs(duration), Duration::from_secs(warmup)).await
        }
        Mode::Group { members, rate, duration, warmup } => {
            group(&setup, members, rate, Duration::from_secs(duration), Duration::from_secs(warmup)).await
        }
        Mode::History { messages, queries, limit, seeders, window } => {
            history(&setup, messages, queries, limit, seeders, window).await
        }
        Mode::Idle { users, sockets_per_user, settle } => {
            idle(&setup, users, sockets_per_user, Duration::from_secs(settle)).await
        }
    }
}

/// A few letters that make this run's usernames its own.
fn run_id() -> String {
    (0..6).map(|_| char::from(b'a' + rand::random_range(0..26u8))).collect()
}

// ---------------------------------------------------------------------------------------- setup

#[derive(Debug, Clone)]
struct User {
    id: i64,
    token: String,
}

struct Setup {
    ctx: Rc<Ctx>,
    concurrency: usize,
    run: String,
}

impl Setup {
    async fn api(&self) -> anyhow::Result<Api> {
        Api::connect(self.ctx.addr, &self.ctx.authority).await
    }

    /// Registers `n` users (concurrently, each worker on its own keep-alive connection).
    async fn users(&self, n: usize) -> anyhow::Result<Vec<User>> {
        let next = Cell::new(0usize);
        let out = RefCell::new(vec![None; n]);
        let worker = || async {
            let mut api = self.api().await?;
            loop {
                let i = next.get();
                if i >= n {
                    return anyhow::Ok(());
                }
                next.set(i + 1);
                let body = json!({"username": format!("b{}{i}", self.run), "password": "bench-password"});
                let v = call(&mut api, Method::POST, "/auth/register", Some(body), None, 201).await?;
                let (Some(id), Some(token)) = (v["user"]["id"].as_i64(), v["token"].as_str()) else {
                    bail!("POST /auth/register: no user id or token in {v}");
                };
                out.borrow_mut()[i] = Some(User { id, token: token.to_owned() });
            }
        };
        for r in join_all((0..self.concurrency.min(n.max(1))).map(|_| worker())).await {
            r?;
        }
        out.into_inner().into_iter().map(|u| u.context("a registration did not finish")).collect()
    }

    /// Makes each pair friends: the first asks, the second accepts.
    async fn befriend(&self, pairs: &[(User, User)]) -> anyhow::Result<()> {
        let next = Cell::new(0usize);
        let worker = || async {
            let mut api = self.api().await?;
            loop {
                let i = next.get();
                let Some((a, b)) = pairs.get(i) else { return anyhow::Ok(()) };
                next.set(i + 1);
                call(&mut api, Method::POST, &format!("/friends/request/{}", b.id), None, Some(&a.token), 200).await?;
                call(&mut api, Method::POST, &format!("/friends/accept/{}", a.id), None, Some(&b.token), 200).await?;
            }
        };
        for r in join_all((0..self.concurrency).map(|_| worker())).await {
            r?;
        }
        Ok(())
    }

    /// A chat socket signed in as `user`, its CONNECT answered.
    async fn socket(&self, user: &User) -> anyhow::Result<WsConn> {
        let mut ws = WsConn::connect(self.ctx.addr, &self.ctx.authority, SOCKET_PATH).await?;
        let open = ws.next_text().await?;
        if !open.starts_with('0') {
            bail!("expected the Engine.IO open packet, got {}", shorten(open.as_bytes()));
        }
        ws.send(OP_TEXT, format!("40{}", json!({"token": user.token})).as_bytes()).await?;
        loop {
            let packet = ws.next_text().await?;
            match packet.as_bytes() {
                [b'4', b'0', ..] => return Ok(ws),
                b"2" => ws.send(OP_TEXT, b"3").await?,
                p if p.starts_with(b"44") || p.starts_with(ERROR_EVENT) => {
                    bail!("chat socket refused: {}", shorten(p))
                }
                _ => {}
            }
        }
    }

    /// Sockets for `users`, `ramp` handshakes at a time.
    async fn sockets(&self, users: &[&User]) -> anyhow::Result<Vec<WsConn>> {
        let ramp = usize::try_from(self.ctx.ramp_concurrency).unwrap_or(200).max(1);
        let mut out = Vec::with_capacity(users.len());
        for chunk in users.chunks(ramp) {
            for r in join_all(chunk.iter().map(|u| self.socket(u))).await {
                out.push(r?);
            }
        }
        Ok(out)
    }
}

/// One REST call; fails unless the status is `want`.
async fn call(
    api: &mut Api,
    method: Method,
    uri: &str,
    body: Option<Value>,
    bearer: Option<&str>,
    want: u16,
) -> anyhow::Result<Value> {
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let (status, reply) =
        api.request(method.clone(), uri, body, bearer).await.with_context(|| format!("{method} {uri}"))?;
    if status != want {
        bail!("{method} {uri}: {status} {}", String::from_utf8_lossy(&reply));
    }
    if reply.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&reply).with_context(|| format!("{method} {uri}: not JSON"))
}

// ------------------------------------------------------------------------------------- receivers

/// What the receivers of a run count. Deliveries of messages sent before `measure_from` (the
/// warm-up) are counted apart and not timed.
#[derive(Default)]
struct Tally {
    measure_from: Cell<u64>,
    latency: RefCell<Histogram>,
    delivered: Cell<u64>,
    delivered_warmup: Cell<u64>,
    /// Senders' own copies: the acknowledgement of a stored message.
    acked: Cell<u64>,
    errors: Cell<u64>,
    first_error: RefCell<Option<String>>,
    closed: Cell<u64>,
}

impl Tally {
    fn delivery(&self, packet: &[u8]) {
        let Some((seq, sent)) = parse_stamp(packet) else { return };
        if seq < self.measure_from.get() {
            self.delivered_warmup.set(self.delivered_warmup.get() + 1);
            return;
        }
        self.delivered.set(self.delivered.get() + 1);
        self.latency.borrow_mut().record(now_us().saturating_sub(sent));
    }

    fn error(&self, packet: &[u8]) {
        self.errors.set(self.errors.get() + 1);
        self.first_error.borrow_mut().get_or_insert_with(|| shorten(packet));
    }

    fn to_json(&self) -> Value {
        json!({
            "delivered": self.delivered.get(),
            "delivered_during_warmup": self.delivered_warmup.get(),
            "acknowledged": self.acked.get(),
            "error_events": self.errors.get(),
            "first_error": *self.first_error.borrow(),
            "sockets_closed": self.closed.get(),
            "latency_ms": self.latency.borrow().to_json_ms(),
        })
    }
}

/// What a socket's packets are to its role in a run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Its `prefix` deliveries are timed.
    Receiver(&'static [u8]),
    /// Its `prefix` deliveries are its own messages coming back: acknowledgements.
    Sender(&'static [u8]),
    Idle,
}

/// Handles every complete message in `ws`'s buffer; false once the socket is closed.
async fn drain(ws: &mut WsConn, role: Role, tally: &Tally) -> anyhow::Result<bool> {
    while let Some((op, loc)) = ws.poll_msg()? {
        match op {
            OP_TEXT => {
                let packet = ws.bytes(loc);
                match (role, packet) {
                    (_, b"2") => ws.send(OP_TEXT, b"3").await?,
                    (Role::Receiver(prefix), p) if p.starts_with(prefix) => tally.delivery(p),
                    (Role::Sender(prefix), p) if p.starts_with(prefix) => tally.acked.set(tally.acked.get() + 1),
                    (_, p) if p.starts_with(ERROR_EVENT) => tally.error(p),
                    (_, p) if p.starts_with(b"41") || p == b"1" => return Ok(false),
                    _ => {}
                }
            }
            OP_PING => {
                let payload = ws.bytes(loc).to_vec();
                ws.send(OP_PONG, &payload).await?;
            }
            OP_CLOSE => {
                let why = describe_close(ws.bytes(loc));
                tally.error(why.as_bytes());
                return Ok(false);
            }
            _ => {}
        }
    }
    Ok(true)
}

/// What a run's tasks share: the tally, the stop flag, the next sequence number.
#[derive(Default)]
struct RunState {
    tally: Tally,
    stop: Cell<bool>,
    seq: Cell<u64>,
}

impl RunState {
    fn new() -> Rc<Self> {
        let run = Self::default();
        run.seq.set(1);
        // Until the measured part starts, everything is warm-up.
        run.tally.measure_from.set(u64::MAX);
        Rc::new(run)
    }

    /// Starts the measured part: later sequence numbers are timed.
    fn measure(&self) -> u64 {
        let first = self.seq.get();
        self.tally.measure_from.set(first);
        self.tally.latency.borrow_mut().clear();
        first
    }
}

/// Reads a socket until it closes or the run stops.
async fn receive(mut ws: WsConn, role: Role, run: Rc<RunState>) -> WsConn {
    let (tally, stop) = (&run.tally, &run.stop);
    loop {
        match tokio::time::timeout(Duration::from_millis(200), ws.fill()).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) if stop.get() => return ws,
            Err(_) => continue,
        }
        if !matches!(drain(&mut ws, role, tally).await, Ok(true)) {
            break;
        }
    }
    tally.closed.set(tally.closed.get() + 1);
    ws
}

/// A sender's schedule: `packet(seq)` every `period`, starting `phase` from now.
struct Schedule {
    period: Duration,
    phase: Duration,
    packet: Rc<dyn Fn(u64) -> String>,
}

/// Sends on `schedule` until `stop`, reading its own socket in between; the socket and how many
/// it sent.
async fn send_loop(mut ws: WsConn, schedule: Schedule, role: Role, run: Rc<RunState>) -> (WsConn, u64) {
    let Schedule { period, phase, packet } = schedule;
    let (tally, stop, seq) = (&run.tally, &run.stop, &run.seq);
    let mut sent = 0u64;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if stop.get() {
                    break;
                }
                let n = seq.get();
                seq.set(n + 1);
                if ws.send(OP_TEXT, packet(n).as_bytes()).await.is_err() {
                    break;
                }
                sent += 1;
            }
            read = ws.fill() => {
                if !matches!(read, Ok(n) if n > 0) || !matches!(drain(&mut ws, role, tally).await, Ok(true)) {
                    tally.closed.set(tally.closed.get() + 1);
                    break;
                }
            }
        }
    }
    (ws, sent)
}

fn stamp(seq: u64) -> String {
    format!("~SB{seq}.{}~", now_us())
}

// ------------------------------------------------------------------------------------------ dm

async fn dm(setup: &Setup, users: usize, rate: f64, duration: Duration, warmup: Duration) -> anyhow::Result<Value> {
    let pairs_n = users / 2;
    if pairs_n == 0 || rate <= 0.0 {
        bail!("dm needs at least 2 users and a positive rate");
    }
    let all = setup.users(pairs_n * 2).await?;
    let pairs: Vec<(User, User)> = (0..pairs_n).map(|i| (all[i].clone(), all[pairs_n + i].clone())).collect();
    setup.befriend(&pairs).await?;
    let senders = setup.sockets(&pairs.iter().map(|p| &p.0).collect::<Vec<_>>()).await?;
    let recipients = setup.sockets(&pairs.iter().map(|p| &p.1).collect::<Vec<_>>()).await?;
    let rss_online = sys::rss_kib(setup.ctx.server_pid);

    let run = RunState::new();
    let receivers: Vec<_> = recipients
        .into_iter()
        .map(|ws| tokio::task::spawn_local(receive(ws, Role::Receiver(NEW_DM), run.clone())))
        .collect();
    let period = Duration::from_secs_f64(pairs_n as f64 / rate);
    let sending: Vec<_> = senders
        .into_iter()
        .zip(&pairs)
        .enumerate()
        .map(|(i, (ws, (_, to)))| {
            let to = to.id;
            let packet: Rc<dyn Fn(u64) -> String> =
                Rc::new(move |n| format!("42{}", json!(["sendDM", {"toId": to, "content": stamp(n)}])));
            let schedule = Schedule { period, phase: period.mul_f64(i as f64 / pairs_n as f64), packet };
            tokio::task::spawn_local(send_loop(ws, schedule, Role::Sender(NEW_DM), run.clone()))
        })
        .collect();

    tokio::time::sleep(warmup).await;
    let first_measured = run.measure();
    let cpu = CpuWindow::start(setup.ctx.server_pid);
    tokio::time::sleep(duration).await;
    let sent_measured = run.seq.get() - first_measured;
    let usage = cpu.finish();
    run.stop.set(true);
    let tally = &run.tally;
    // In-flight messages land; then every socket stops reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut sender_socks = Vec::new();
    let mut sent_total = 0;
    for s in join_all(sending).await {
        let (ws, n) = s.context("a sender task failed")?;
        sender_socks.push(ws);
        sent_total += n;
    }
    for r in join_all(receivers).await {
        r.context("a receiver task failed")?;
    }
    let stored = stored_dms(&mut sender_socks, &pairs).await?;
    let delivered_total = tally.delivered.get() + tally.delivered_warmup.get();
    let secs = usage.wall_secs.max(f64::EPSILON);
    Ok(json!({
        "users": pairs_n * 2,
        "senders": pairs_n,
        "target_rate": rate,
        "measured": {
            "sent": sent_measured,
            "achieved_rate": r1(sent_measured as f64 / secs),
            "delivered": tally.delivered.get(),
            "lost": sent_measured.saturating_sub(tally.delivered.get()),
            "server_cpu": usage.to_json(),
            "server_cpu_us_per_message": usage.server_secs.map(|s| r3(s * 1e6 / sent_measured.max(1) as f64)),
        },
        "totals": {
            "sent": sent_total,
            "acknowledged": tally.acked.get(),
            "delivered": delivered_total,
            "in_history": stored,
            "lost": sent_total.saturating_sub(delivered_total.min(stored)),
        },
        "receivers": tally.to_json(),
        "server_rss_online_kib": rss_online,
    }))
}

/// What history holds for every pair, asked over the senders' own sockets.
async fn stored_dms(socks: &mut [WsConn], pairs: &[(User, User)]) -> anyhow::Result<u64> {
    let mut total = 0;
    for (ws, (_, to)) in socks.iter_mut().zip(pairs) {
        let mut before: Option<i64> = None;
        loop {
            let mut query = json!({"otherId": to.id, "limit": 1000});
            if let Some(b) = before {
                query["before"] = json!(b);
            }
            let page = ack(ws, 1, "getDMHistory", query).await?;
            let page = page.as_array().with_context(|| format!("getDMHistory answered {page}"))?;
            total += page.len() as u64;
            if page.len() < 1000 {
                break;
            }
            before = page.first().and_then(|m| m["id"].as_i64());
        }
    }
    Ok(total)
}

/// Emits `event` with an acknowledgement id and returns the acknowledgement's first argument.
async fn ack(ws: &mut WsConn, id: u64, event: &str, arg: Value) -> anyhow::Result<Value> {
    ws.send(OP_TEXT, format!("42{id}{}", json!([event, arg])).as_bytes()).await?;
    let prefix = format!("43{id}[");
    loop {
        let packet = tokio::time::timeout(Duration::from_secs(10), ws.next_text())
            .await
            .with_context(|| format!("no answer to {event} in 10 s"))??;
        if packet == "2" {
            ws.send(OP_TEXT, b"3").await?;
        } else if let Some(rest) = packet.strip_prefix(&prefix) {
            let args: Value = serde_json::from_str(&format!("[{rest}")).context("the acknowledgement is not JSON")?;
            return Ok(args[0].clone());
        }
    }
}

// --------------------------------------------------------------------------------------- group

async fn group(
    setup: &Setup,
    members: usize,
    rate: f64,
    duration: Duration,
    warmup: Duration,
) -> anyhow::Result<Value> {
    if members == 0 || rate <= 0.0 {
        bail!("group needs members and a positive rate");
    }
    let users = setup.users(members).await?;
    let admin = &users[0];
    let mut api = setup.api().await?;
    let name = format!("bench {}", setup.run);
    let g = call(&mut api, Method::POST, "/groups", Some(json!({"name": name})), Some(&admin.token), 201).await?;
    let gid = g["id"].as_i64().with_context(|| format!("POST /groups answered {g}"))?;
    let next = Cell::new(1usize);
    let worker = || async {
        let mut api = setup.api().await?;
        loop {
            let i = next.get();
            let Some(u) = users.get(i) else { return anyhow::Ok(()) };
            next.set(i + 1);
            call(&mut api, Method::POST, &format!("/groups/{gid}/members/{}", u.id), None, Some(&admin.token), 201)
                .await?;
        }
    };
    for r in join_all((0..setup.concurrency).map(|_| worker())).await {
        r?;
    }
    let mut socks = setup.sockets(&users.iter().collect::<Vec<_>>()).await?;
    let admin_ws = socks.remove(0);

    let run = RunState::new();
    let receivers: Vec<_> = socks
        .into_iter()
        .map(|ws| tokio::task::spawn_local(receive(ws, Role::Receiver(NEW_GROUP_MESSAGE), run.clone())))
        .collect();
    let packet: Rc<dyn Fn(u64) -> String> =
        Rc::new(move |n| format!("42{}", json!(["sendGroupMessage", {"groupId": gid, "content": stamp(n)}])));
    let schedule = Schedule { period: Duration::from_secs_f64(1.0 / rate), phase: Duration::ZERO, packet };
    // The admin's own copy is a delivery too: it is timed like every member's.
    let sender =
        tokio::task::spawn_local(send_loop(admin_ws, schedule, Role::Receiver(NEW_GROUP_MESSAGE), run.clone()));
    tokio::time::sleep(warmup).await;
    let first = run.measure();
    let cpu = CpuWindow::start(setup.ctx.server_pid);
    tokio::time::sleep(duration).await;
    let sent = run.seq.get() - first;
    let usage = cpu.finish();
    run.stop.set(true);
    let tally = &run.tally;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sender.await.context("the sender task failed")?;
    for r in join_all(receivers).await {
        r.context("a receiver task failed")?;
    }
    let expected = sent * members as u64;
    Ok(json!({
        "members": members,
        "target_rate": rate,
        "sent": sent,
        "expected_deliveries": expected,
        "lost": expected.saturating_sub(tally.delivered.get()),
        "server_cpu": usage.to_json(),
        "server_cpu_us_per_delivery": usage.server_secs.map(|s| r3(s * 1e6 / expected.max(1) as f64)),
        "receivers": tally.to_json(),
    }))
}

// ------------------------------------------------------------------------------------- history

async fn history(
    setup: &Setup,
    messages: u64,
    queries: usize,
    limit: u32,
    seeders: usize,
    window: u64,
) -> anyhow::Result<Value> {
    let users = setup.users(2).await?;
    let pair = (users[0].clone(), users[1].clone());
    setup.befriend(std::slice::from_ref(&pair)).await?;
    // A socket's events are handled in order, each DM once committed: the seeding spreads over
    // several sockets of the sender so that the writer can batch them.
    let seeders = setup.sockets(&vec![&pair.0; seeders.max(1)]).await?;
    let n = seeders.len() as u64;
    let started = now_us();
    let seeded = join_all(seeders.into_iter().enumerate().map(|(i, ws)| {
        let share = messages / n + u64::from((i as u64) < messages % n);
        seed(ws, i, pair.1.id, share, window.max(1))
    }))
    .await;
    let mut sockets = Vec::new();
    for s in seeded {
        sockets.push(s?);
    }
    let mut ws = sockets.swap_remove(0);
    let seed_secs = (now_us() - started) as f64 / 1e6;
    let newest = ack(&mut ws, 1, "getDMHistory", json!({"otherId": pair.1.id, "limit": 1})).await?;
    let top = newest[0]["id"].as_i64().with_context(|| format!("getDMHistory answered {newest}"))?;
    let cpu = CpuWindow::start(setup.ctx.server_pid);
    let mut latency = Histogram::default();
    let mut shortest = usize::MAX;
    for q in 0..queries {
        // Anywhere in the conversation: ids of the seeded DMs are the `messages` ids up to `top`.
        let before = top - rand::random_range(0..messages.max(1) as i64);
        let t = now_us();
        let page =
            ack(&mut ws, q as u64 + 2, "getDMHistory", json!({"otherId": pair.1.id, "limit": limit, "before": before}))
                .await?;
        latency.record(now_us() - t);
        shortest = shortest.min(page.as_array().map_or(0, Vec::len));
    }
    let usage = cpu.finish();
    Ok(json!({
        "messages": messages,
        "seeding": {"secs": r1(seed_secs), "rate": r1(messages as f64 / seed_secs.max(f64::EPSILON))},
        "queries": queries,
        "limit": limit,
        "shortest_page": shortest,
        "latency_ms": latency.to_json_ms(),
        "server_cpu": usage.to_json(),
    }))
}

/// Sends `count` DMs to `to` over `ws`, at most `window` unacknowledged; the socket afterwards.
/// Every socket of the sender gets every `newDM` of the pair: a seeder knows its own by the tag
/// in their content.
async fn seed(mut ws: WsConn, tag: usize, to: i64, count: u64, window: u64) -> anyhow::Result<WsConn> {
    let mine = format!(r#""content":"seed {tag}."#).into_bytes();
    let (mut sent, mut acked) = (0u64, 0u64);
    while acked < count {
        while sent < count && sent - acked < window {
            let packet = format!("42{}", json!(["sendDM", {"toId": to, "content": format!("seed {tag}.{sent}")}]));
            ws.send(OP_TEXT, packet.as_bytes()).await?;
            sent += 1;
        }
        if tokio::time::timeout(Duration::from_secs(10), ws.fill()).await.context("seeding stalled for 10 s")?? == 0 {
            bail!("the server closed the socket while seeding");
        }
        while let Some((op, loc)) = ws.poll_msg()? {
            let packet = ws.bytes(loc);
            match op {
                OP_TEXT if packet == b"2" => ws.send(OP_TEXT, b"3").await?,
                OP_TEXT if packet.starts_with(NEW_DM) && crate::ws::find(packet, &mine).is_some() => acked += 1,
                OP_TEXT if packet.starts_with(ERROR_EVENT) => {
                    bail!("seeding refused (is the message rate limit raised?): {}", shorten(packet))
                }
                OP_TEXT if packet.starts_with(b"41") => bail!("the server disconnected the socket while seeding"),
                OP_CLOSE => bail!("the server closed the socket while seeding: {}", describe_close(packet)),
                _ => {}
            }
        }
    }
    Ok(ws)
}

// ---------------------------------------------------------------------------------------- idle

async fn idle(setup: &Setup, users: usize, per_user: usize, settle: Duration) -> anyhow::Result<Value> {
    let accounts = setup.users(users).await?;
    let rss_before = sys::rss_kib(setup.ctx.server_pid);
    let wanted: Vec<&User> = accounts.iter().flat_map(|u| std::iter::repeat_n(u, per_user)).collect();
    let socks = setup.sockets(&wanted).await?;
    let rss_after = sys::rss_kib(setup.ctx.server_pid);
    let run = RunState::new();
    let n = socks.len();
    let readers: Vec<_> =
        socks.into_iter().map(|ws| tokio::task::spawn_local(receive(ws, Role::Idle, run.clone()))).collect();
    tokio::time::sleep(settle).await;
    let rss_settled = sys::rss_kib(setup.ctx.server_pid);
    run.stop.set(true);
    let tally = &run.tally;
    let alive = n as u64 - tally.closed.get();
    let per = |after: Option<u64>| after.zip(rss_before).map(|(a, b)| r3((a as f64 - b as f64) / alive.max(1) as f64));
    let report = json!({
        "users": users,
        "sockets": n,
        "alive_after_settle": alive,
        "server_rss_before_kib": rss_before,
        "server_rss_after_ramp_kib": rss_after,
        "server_rss_settled_kib": rss_settled,
        "server_kib_per_socket_after_ramp": per(rss_after),
        "server_kib_per_socket": per(rss_settled),
        "receivers": tally.to_json(),
    });
    join_all(readers).await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_deliveries_are_counted_apart_and_not_timed() {
        let run = RunState::new();
        let packet = |seq: u64| format!(r#"42["newDM",{{"id":1,"content":"~SB{seq}.{}~","userId":2}}]"#, now_us());
        run.tally.delivery(packet(1).as_bytes());
        run.seq.set(5);
        assert_eq!(run.measure(), 5);
        run.tally.delivery(packet(4).as_bytes());
        run.tally.delivery(packet(5).as_bytes());
        run.tally.delivery(br#"42["newDM",{"content":"no stamp"}]"#);
        assert_eq!((run.tally.delivered_warmup.get(), run.tally.delivered.get()), (2, 1));
        assert_eq!(run.tally.latency.borrow().count(), 1);
    }

    #[test]
    fn a_stamp_survives_being_a_message_content() {
        let content = stamp(42);
        let packet = format!("42{}", json!(["newGroupMessage", {"id": 9, "content": content, "groupId": 3}]));
        assert!(packet.as_bytes().starts_with(NEW_GROUP_MESSAGE));
        assert_eq!(parse_stamp(packet.as_bytes()).map(|(seq, _)| seq), Some(42));
    }
}
