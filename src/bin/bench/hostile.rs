//! The `hostile` scenario: one of the floods an outside probe used against the server (issue 14),
//! with the server's RSS and threads sampled and `/health` probed all along. It reports the
//! issue's targets: a flood leaves less than 50 MiB of RSS behind once it stops, and `/health`
//! answers within 100 ms throughout. Probes and sampler run on a thread of their own, so that the
//! flood's work on the generator's runtime never delays a probe. Every flood request goes out on
//! a connection of its own, bound to one of the source addresses 127.0.0.2 … 127.0.0.(1+N):
//! per-address limits must not be what stops a flood, as they did not stop the probe. Sizes in
//! `_mb` are MiB.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::ReadHalf;
use tokio::net::{TcpSocket, TcpStream};

use crate::prober::{Mem, Watched, Watcher, mib};
use crate::stats::Histogram;
use crate::subs::Ctx;
use crate::sys::{CpuWindow, r1, r3};
use crate::ws::find;

/// RSS a flood may leave behind once it stops and the server settled (MiB).
const RETAINED_TARGET_MB: f64 = 50.0;
/// Slowest acceptable `/health` answer (ms).
const HEALTH_TARGET_MS: f64 = 100.0;
/// Probing before the flood, so that the first probes measure a quiet server.
const LEAD_IN: Duration = Duration::from_secs(1);
const WRITE_CHUNK: usize = 64 * 1024;
const LOGIN: &str = "/auth/login";
const REGISTER: &str = "/auth/register";
const BROADCAST: &str = "/api/broadcast";
const WRONG_PASSWORD: &str = "wrong-password";

/// The floods of issue 14.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flood {
    /// Failed logins with unique 1.9 MB names, 30 per source address: state kept per name.
    LoginNames,
    /// Hundreds of failed logins at once: password hashing on every one of them.
    Argon,
    /// Unauthenticated 2 MB `/api/broadcast` bodies that stall before their last byte.
    Bodies,
    /// 2 MB JSON arrays of small objects to login and register: parse trees before any check.
    Amplification,
}

impl Flood {
    fn name(self) -> &'static str {
        match self {
            Flood::LoginNames => "login-names",
            Flood::Argon => "argon",
            Flood::Bodies => "bodies",
            Flood::Amplification => "amplification",
        }
    }
}

/// The options of `bench hostile`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// The flood to send.
    #[arg(long, value_enum)]
    pub flood: Flood,
    /// Seconds: `amplification` floods this long; the other floods end when all their requests
    /// have, and are cut here otherwise [default: 20 amplification, 120 login-names and argon,
    /// hold + 15 bodies].
    #[arg(long)]
    pub duration: Option<u64>,
    /// Seconds after the flood, the prober still running, before RSS is read again.
    #[arg(long, default_value_t = 10)]
    pub settle: u64,
    /// Source addresses 127.0.0.2 … 127.0.0.(1+N) the flood is spread over [default: 12
    /// login-names, 10 otherwise].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub sources: Option<u8>,
    /// Requests in flight [default: 4 login-names, 300 argon, 8 amplification]; `argon` sends this
    /// many in all, `bodies` opens `--connections` at once instead.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// login-names: attempts from each source address (30: the old limit per address and minute).
    #[arg(long, default_value_t = 30)]
    pub per_source: u64,
    /// login-names: bytes of each login name.
    #[arg(long, default_value_t = 1_900_000)]
    pub name_bytes: usize,
    /// bodies: connections opened at once.
    #[arg(long, default_value_t = 600)]
    pub connections: usize,
    /// bodies: the Content-Length declared (one byte less is sent); amplification: the body size.
    #[arg(long, default_value_t = 2_000_000)]
    pub body_bytes: usize,
    /// Seconds a request waits for an answer or a close before it counts as held.
    #[arg(long, default_value_t = 35)]
    pub hold: u64,
}

impl Opts {
    fn sources(&self) -> u8 {
        self.sources.unwrap_or(if self.flood == Flood::LoginNames { 12 } else { 10 })
    }

    fn concurrency(&self) -> usize {
        match self.flood {
            Flood::LoginNames => self.concurrency.unwrap_or(4),
            Flood::Argon => self.concurrency.unwrap_or(300),
            Flood::Bodies => self.connections,
            Flood::Amplification => self.concurrency.unwrap_or(8),
        }
        .max(1)
    }

    fn duration(&self) -> Duration {
        Duration::from_secs(self.duration.unwrap_or(match self.flood {
            Flood::Amplification => 20,
            Flood::LoginNames | Flood::Argon => 120,
            Flood::Bodies => self.hold + 15,
        }))
    }

    /// Connections open at once (for the open-files limit).
    pub fn connections_held(&self) -> usize {
        self.concurrency() + 16
    }

    /// The scenario's time limit when `--timeout` is not given: the flood, the settling, slack.
    pub fn default_timeout(&self) -> u64 {
        LEAD_IN.as_secs() + self.duration().as_secs() + self.settle + 30
    }

    fn to_json(&self) -> Value {
        json!({
            "flood": self.flood.name(),
            "sources": self.sources(),
            "concurrency": self.concurrency(),
            "per_source": (self.flood == Flood::LoginNames).then_some(self.per_source),
            "name_bytes": (self.flood == Flood::LoginNames).then_some(self.name_bytes),
            "connections": (self.flood == Flood::Bodies).then_some(self.connections),
            "body_bytes": matches!(self.flood, Flood::Bodies | Flood::Amplification).then_some(self.body_bytes),
            "hold_secs": self.hold,
            "duration_secs": self.duration().as_secs(),
            "settle_secs": self.settle,
        })
    }
}

// ------------------------------------------------------------------------------------ scenario

/// Measures the server's RSS and threads, probes `/health` while it sends the flood and for
/// `--settle` seconds after, and reports both against the targets.
pub async fn run(ctx: &Ctx, opts: &Opts) -> anyhow::Result<Value> {
    let pid = ctx.server_pid.context("hostile measures the server's memory: --server-pid is required")?;
    let sources = Sources::new(ctx.addr, opts.sources())?;
    let baseline = Mem::read(pid).with_context(|| format!("reading /proc/{pid}/status"))?;
    *ctx.partial.borrow_mut() = json!({"options": opts.to_json(), "baseline": baseline.to_json()});
    let cpu = CpuWindow::start(Some(pid));
    let t0 = Instant::now();
    let watcher = Watcher::start(ctx, pid, t0)?;
    tokio::time::sleep(LEAD_IN).await;

    let flood_started = t0.elapsed();
    let deadline = Instant::now() + opts.duration();
    let plan =
        Plan { sources: &sources, concurrency: opts.concurrency(), deadline, hold: Duration::from_secs(opts.hold) };
    let flood = send_flood(ctx, opts, &plan).await;
    let flood_ended = t0.elapsed();
    eprintln!(
        "bench: hostile {}: flood over after {:.1} s; settling {} s",
        opts.flood.name(),
        (flood_ended - flood_started).as_secs_f64(),
        opts.settle
    );
    tokio::time::sleep(Duration::from_secs(opts.settle)).await;
    let after = Mem::read(pid);
    let watched = watcher.stop().await?;
    let usage = cpu.finish();
    let report = Report { opts, baseline, after, flood: &flood, watched: &watched };
    eprintln!("bench: hostile {}", report.summary());
    let mut json = report.to_json();
    json["flood_started_secs"] = json!(r3(flood_started.as_secs_f64()));
    json["flood_ended_secs"] = json!(r3(flood_ended.as_secs_f64()));
    json["cpu"] = usage.to_json();
    Ok(json)
}

/// Sends the flood `opts` names; request `i` is built when its turn comes.
async fn send_flood(ctx: &Ctx, opts: &Opts, plan: &Plan<'_>) -> FloodStats {
    let tag = format!("{:08x}", rand::random::<u32>());
    match opts.flood {
        Flood::LoginNames => {
            let total = opts.per_source * u64::from(opts.sources());
            plan.drive(Some(total), |i| {
                let name = long_name(&tag, i, opts.name_bytes);
                Request::post(LOGIN, &ctx.authority, login_body(&name))
            })
            .await
        }
        Flood::Argon => {
            plan.drive(Some(opts.concurrency() as u64), |i| {
                Request::post(LOGIN, &ctx.authority, login_body(&format!("argon-{tag}-{i}")))
            })
            .await
        }
        Flood::Bodies => {
            let body = Bytes::from(stalled_body(opts.body_bytes));
            let head = Bytes::from(http_head(BROADCAST, &ctx.authority, opts.body_bytes));
            plan.drive(Some(opts.connections as u64), |_| Request {
                route: BROADCAST,
                head: head.clone(),
                body: body.clone(),
            })
            .await
        }
        Flood::Amplification => {
            let body = Bytes::from(amplification_body(opts.body_bytes));
            plan.drive(None, |i| Request::post(if i % 2 == 0 { LOGIN } else { REGISTER }, &ctx.authority, body.clone()))
                .await
        }
    }
}

/// Everything measured, and the targets judged from it.
struct Report<'a> {
    opts: &'a Opts,
    baseline: Mem,
    after: Option<Mem>,
    flood: &'a FloodStats,
    watched: &'a Watched,
}

impl Report<'_> {
    fn retained_mb(&self) -> Option<f64> {
        self.after.map(|a| mib(a.rss_kib) - mib(self.baseline.rss_kib))
    }

    fn peak(&self) -> Mem {
        let m = &self.watched.memory;
        Mem { rss_kib: m.peak_rss_kib.max(self.baseline.rss_kib), threads: m.peak_threads.max(self.baseline.threads) }
    }

    fn health_ok(&self) -> bool {
        let p = &self.watched.probes;
        p.all.count() > 0 && ms(p.all.max()) < HEALTH_TARGET_MS && p.non_200 == 0 && p.timed_out == 0 && p.errors == 0
    }

    fn to_json(&self) -> Value {
        let p = &self.watched.probes;
        let m = &self.watched.memory;
        let retained = self.retained_mb();
        json!({
            "options": self.opts.to_json(),
            "baseline": self.baseline.to_json(),
            "peak": self.peak().to_json(),
            "after": self.after.map(Mem::to_json),
            "retained_mb": retained.map(r1),
            "server_gone_at_secs": m.gone_at_secs,
            "health": {
                "probes": p.all.count(),
                "p50_ms": ms(p.all.quantile(0.5)),
                "p99_ms": ms(p.all.quantile(0.99)),
                "max_ms": ms(p.all.max()),
                "statuses": p.statuses,
                "non_200": p.non_200,
                "timed_out": p.timed_out,
                "errors": p.errors,
                "incidents": p.incidents,
                "keepalive_ms": p.keepalive.to_json_ms(),
                "fresh_connection_ms": p.fresh.to_json_ms(),
            },
            "flood": self.flood.to_json(),
            "targets_met": {
                "retained_under_50_mb": retained.map(|r| r < RETAINED_TARGET_MB),
                "health_under_100_ms": self.health_ok(),
                "all": retained.is_some_and(|r| r < RETAINED_TARGET_MB) && self.health_ok(),
            },
            "rss_timeline": m.timeline,
        })
    }

    /// One line for stderr.
    fn summary(&self) -> String {
        let p = &self.watched.probes;
        format!(
            "{}: RSS {:.0} → peak {:.0} → after {} MiB (retained {}), threads peak {}, /health p99 {:.1} ms, \
             max {:.1} ms, {} timed out, {} errors, {} non-200; flood {}",
            self.opts.flood.name(),
            mib(self.baseline.rss_kib),
            mib(self.peak().rss_kib),
            self.after.map_or("?".to_owned(), |a| format!("{:.0}", mib(a.rss_kib))),
            self.retained_mb().map_or("?".to_owned(), |r| format!("{r:.1}")),
            self.peak().threads,
            ms(p.all.quantile(0.99)),
            ms(p.all.max()),
            p.timed_out,
            p.errors,
            p.non_200,
            serde_json::to_string(&self.flood.totals()).unwrap_or_default(),
        )
    }
}

fn ms(us: u64) -> f64 {
    r3(us as f64 / 1000.0)
}

// ------------------------------------------------------------------------------ flood requests

/// Client source addresses 127.0.0.2 … 127.0.0.(1+count); request `i` goes out from `i % count`.
struct Sources {
    server: SocketAddr,
    count: u8,
}

impl Sources {
    fn new(server: SocketAddr, count: u8) -> anyhow::Result<Self> {
        match server.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => Ok(Self { server, count: count.clamp(1, 254) }),
            other => {
                bail!("hostile binds its clients to 127.0.0.2 and up: --url must be a 127.x.x.x address, not {other}")
            }
        }
    }

    fn ip(&self, i: u64) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, 2 + (i % u64::from(self.count)) as u8)
    }

    async fn connect(&self, i: u64) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(self.ip(i)), 0))?;
        socket.connect(self.server).await
    }
}

/// One flood request: the route it is counted under, its head, and the body bytes sent.
struct Request {
    route: &'static str,
    head: Bytes,
    body: Bytes,
}

impl Request {
    fn post(route: &'static str, authority: &str, body: Bytes) -> Self {
        Self { route, head: Bytes::from(http_head(route, authority, body.len())), body }
    }
}

fn http_head(route: &str, authority: &str, content_length: usize) -> String {
    format!(
        "POST {route} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
    )
}

/// A login name of `bytes` bytes (at least its unique prefix) that no other request uses.
fn long_name(tag: &str, i: u64, bytes: usize) -> String {
    let mut name = format!("flood-{tag}-{i}-");
    let pad = bytes.saturating_sub(name.len());
    name.extend(std::iter::repeat_n('n', pad));
    name
}

fn login_body(name: &str) -> Bytes {
    Bytes::from(json!({"username": name, "password": WRONG_PASSWORD}).to_string())
}

/// `{"x":[{"a":0},{"a":0},…]}` of exactly `bytes` bytes (at least 8; spaces pad the end): small
/// on the wire, one map per 8 bytes for a server that parses it into a generic JSON tree.
fn amplification_body(bytes: usize) -> Vec<u8> {
    const OPEN: &[u8] = br#"{"x":["#;
    const ITEM: &[u8] = br#"{"a":0}"#;
    const CLOSE: &[u8] = b"]}";
    let room = bytes.saturating_sub(OPEN.len() + CLOSE.len());
    // n items and their commas take 8n - 1 bytes.
    let items = (room + 1) / (ITEM.len() + 1);
    let mut body = Vec::with_capacity(bytes.max(OPEN.len() + CLOSE.len()));
    body.extend_from_slice(OPEN);
    for k in 0..items {
        if k > 0 {
            body.push(b',');
        }
        body.extend_from_slice(ITEM);
    }
    body.resize(bytes.saturating_sub(CLOSE.len()).max(body.len()), b' ');
    body.extend_from_slice(CLOSE);
    body
}

/// The start of a JSON body `declared` bytes long, one byte short of it: the server waits for
/// the last byte (or should not wait at all).
fn stalled_body(declared: usize) -> Vec<u8> {
    let mut body = br#"{"name":"e","channel":"c","data":""#.to_vec();
    body.resize(declared.saturating_sub(1), b'x');
    body.truncate(declared.saturating_sub(1));
    body
}

/// How one flood request ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The server answered with this status.
    Answered(u16),
    /// The server closed the connection without answering.
    Closed,
    /// The connection was reset (or the pipe broken) before an answer.
    Reset,
    /// No answer and no close within `--hold`.
    Held,
    ConnectFailed(String),
    Failed(String),
}

impl Outcome {
    fn key(&self) -> String {
        match self {
            Outcome::Answered(status) => status.to_string(),
            Outcome::Closed => "closed".to_owned(),
            Outcome::Reset => "reset".to_owned(),
            Outcome::Held => "held".to_owned(),
            Outcome::ConnectFailed(_) => "connect_error".to_owned(),
            Outcome::Failed(_) => "error".to_owned(),
        }
    }
}

/// Writes the request and reads the answer's status line at the same time: a server may answer
/// (and close) before it has read the body, and that answer is what counts.
async fn exchange(mut stream: TcpStream, head: &[u8], body: &[u8], sent: &Cell<u64>) -> Outcome {
    let (mut rd, mut wr) = stream.split();
    let write = async {
        wr.write_all(head).await?;
        for chunk in body.chunks(WRITE_CHUNK) {
            wr.write_all(chunk).await?;
            sent.set(sent.get() + chunk.len() as u64);
        }
        Ok::<_, std::io::Error>(())
    };
    let read = read_status(&mut rd);
    tokio::pin!(write, read);
    let mut writing = true;
    let mut write_error = None;
    loop {
        tokio::select! {
            w = &mut write, if writing => {
                writing = false;
                write_error = w.err();
            }
            r = &mut read => return match r {
                Ok(Some(status)) => Outcome::Answered(status),
                Ok(None) if write_error.as_ref().is_some_and(is_reset) => Outcome::Reset,
                Ok(None) => Outcome::Closed,
                Err(e) if is_reset(&e) => Outcome::Reset,
                Err(e) => Outcome::Failed(e.to_string()),
            },
        }
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted)
}

/// The status of the answer's first line; `None` when the server closed before sending one.
async fn read_status(rd: &mut ReadHalf<'_>) -> std::io::Result<Option<u16>> {
    let mut buf = Vec::with_capacity(256);
    loop {
        if let Some(end) = find(&buf, b"\r\n") {
            return status_code(&buf[..end])
                .map(Some)
                .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "malformed status line"));
        }
        if buf.len() > 4096 {
            return Err(std::io::Error::new(ErrorKind::InvalidData, "status line too long"));
        }
        buf.reserve(512);
        if rd.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// `HTTP/1.1 401 Unauthorized` → 401.
fn status_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?.get(2..)?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|b| *b != b' ') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Outcomes of a flood.
#[derive(Default)]
struct FloodStats {
    started: u64,
    ended: u64,
    answered: u64,
    /// Requests still in flight when the flood's time was up (dropped then).
    abandoned: u64,
    outcomes: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// From connect to the answer's status line, answered requests only (µs).
    answer: Histogram,
    body_bytes_sent: u64,
    first_failure: Option<String>,
    secs: f64,
}

impl FloodStats {
    fn book(&mut self, route: &'static str, outcome: &Outcome, elapsed: Duration, sent: u64) {
        self.ended += 1;
        self.body_bytes_sent += sent;
        match outcome {
            Outcome::Answered(_) => {
                self.answered += 1;
                self.answer.record(elapsed.as_micros() as u64);
            }
            Outcome::ConnectFailed(e) | Outcome::Failed(e) => {
                self.first_failure.get_or_insert_with(|| e.clone());
            }
            Outcome::Closed | Outcome::Reset | Outcome::Held => {}
        }
        *self.outcomes.entry(route).or_default().entry(outcome.key()).or_default() += 1;
    }

    /// Outcome counts over every route.
    fn totals(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for (key, n) in self.outcomes.values().flatten() {
            *totals.entry(key.clone()).or_default() += n;
        }
        if self.abandoned > 0 {
            totals.insert("abandoned".to_owned(), self.abandoned);
        }
        totals
    }

    fn to_json(&self) -> Value {
        json!({
            "secs": r3(self.secs),
            "requests": self.started,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "totals": self.totals(),
            "by_route": self.outcomes,
            "answer_ms": self.answer.to_json_ms(),
            "body_mb_sent": r1(self.body_bytes_sent as f64 / (1024.0 * 1024.0)),
            "first_failure": self.first_failure,
        })
    }
}

/// How a flood's requests go out.
struct Plan<'a> {
    sources: &'a Sources,
    concurrency: usize,
    deadline: Instant,
    hold: Duration,
}

impl Plan<'_> {
    /// Sends `make(0)`, `make(1)`, … (`total` of them, or until the deadline), `concurrency` at a
    /// time, each on a new connection; what is still in flight at the deadline is dropped.
    async fn drive(&self, total: Option<u64>, make: impl Fn(u64) -> Request) -> FloodStats {
        let started = Instant::now();
        let stats = RefCell::new(FloodStats::default());
        let next = Cell::new(0);
        let workers = join_all((0..self.concurrency).map(|_| self.worker(total, &make, &next, &stats)));
        let _ = tokio::time::timeout_at(self.deadline.into(), workers).await;
        let mut stats = stats.into_inner();
        stats.abandoned = stats.started - stats.ended;
        stats.secs = started.elapsed().as_secs_f64();
        stats
    }

    async fn worker(
        &self,
        total: Option<u64>,
        make: &impl Fn(u64) -> Request,
        next: &Cell<u64>,
        stats: &RefCell<FloodStats>,
    ) {
        loop {
            let i = next.get();
            if total.is_some_and(|t| i >= t) || Instant::now() >= self.deadline {
                return;
            }
            next.set(i + 1);
            let request = make(i);
            stats.borrow_mut().started += 1;
            let sent = Cell::new(0);
            let begun = Instant::now();
            let attempt = async {
                match self.sources.connect(i).await {
                    Ok(stream) => exchange(stream, &request.head, &request.body, &sent).await,
                    Err(e) => Outcome::ConnectFailed(format!("connecting from {}: {e}", self.sources.ip(i))),
                }
            };
            let outcome = tokio::time::timeout(self.hold, attempt).await.unwrap_or(Outcome::Held);
            stats.borrow_mut().book(request.route, &outcome, begun.elapsed(), sent.get());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amplification_body_is_exact_json_of_small_objects() {
        for bytes in [8, 9, 15, 16, 17, 1000, 2_000_000] {
            let body = amplification_body(bytes);
            assert_eq!(body.len(), bytes);
            let v: Value = serde_json::from_slice(&body).unwrap();
            let items = v["x"].as_array().unwrap();
            assert_eq!(items.len(), (bytes - 7) / 8, "{bytes}");
            assert!(items.iter().all(|i| *i == json!({"a": 0})));
        }
        assert_eq!(amplification_body(0), br#"{"x":[]}"#);
    }

    #[test]
    fn stalled_body_is_one_byte_short() {
        assert_eq!(stalled_body(2_000_000).len(), 1_999_999);
        assert_eq!(stalled_body(10).len(), 9);
        assert!(stalled_body(0).is_empty());
        let head = http_head(BROADCAST, "127.0.0.1:1", 2_000_000);
        assert!(head.starts_with("POST /api/broadcast HTTP/1.1\r\n"));
        assert!(head.contains("\r\nContent-Length: 2000000\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
        assert!(!head.to_ascii_lowercase().contains("x-app-key"));
    }

    #[test]
    fn login_names_are_unique_and_sized() {
        let a = long_name("t", 1, 1_900_000);
        let b = long_name("t", 11, 1_900_000);
        assert_eq!(a.len(), 1_900_000);
        assert_ne!(a, b);
        assert_eq!(long_name("t", 5, 0), "flood-t-5-");
        let body: Value = serde_json::from_slice(&login_body(&a)).unwrap();
        assert_eq!(body["username"].as_str().unwrap().len(), 1_900_000);
        assert_eq!(body["password"], WRONG_PASSWORD);
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 401 Unauthorized"), Some(401));
        assert_eq!(status_code(b"HTTP/1.0 503"), Some(503));
        assert_eq!(status_code(b"HTTP/1.1 20 OK"), None);
        assert_eq!(status_code(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(status_code(b"HTTP/2 200"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn sources_spread_round_robin_over_loopback() {
        let s = Sources::new("127.0.0.1:80".parse().unwrap(), 3).unwrap();
        let ips: Vec<_> = (0..4).map(|i| s.ip(i).to_string()).collect();
        assert_eq!(ips, ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2"]);
        assert_eq!(Sources::new("127.0.0.1:80".parse().unwrap(), 254).unwrap().ip(253), Ipv4Addr::new(127, 0, 0, 255));
        assert!(Sources::new("10.0.0.1:80".parse().unwrap(), 3).is_err());
    }

    #[tokio::test]
    async fn exchange_reads_an_answer_sent_before_the_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 64];
            let _ = s.read(&mut head).await.unwrap();
            s.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let sent = Cell::new(0);
        let body = vec![b'x'; 32 << 20];
        let outcome = exchange(stream, b"POST / HTTP/1.1\r\nContent-Length: 33554433\r\n\r\n", &body, &sent).await;
        assert_eq!(outcome, Outcome::Answered(401));
        assert!(sent.get() < body.len() as u64);
        server.await.unwrap();
    }
}
