//! `bench`: a load generator for Pusher-protocol servers (Switchboard or any other) and for
//! Socket.IO servers (Switchboard's Push-Alt surface, or the Node app in bench/node-socketio). It
//! drives the server over WebSocket (or Engine.IO long-polling) and its HTTP publish route, reads
//! the server's CPU time and RSS from /proc/PID when given `--server-pid`, and prints one JSON
//! report on stdout (a one-line summary goes to stderr). It runs on a single-threaded runtime so that it can be pinned to one core and
//! its own CPU use (reported, with `client_bound` set at ≥ 90 % of a core) stays interpretable.
//!
//! ```text
//! bench --url http://127.0.0.1:6001 --app-id ID --key KEY --secret SECRET --server-pid PID idle --connections 10000
//! bench … fanout --subscribers 1000 --rate 10 --duration 10
//! bench … fanout-max --subscribers 1000
//! bench … http --concurrency 32 --duration 10
//! bench --protocol socketio --transport polling --flavour node … fanout --subscribers 1000 --rate 5
//! bench --protocol mixed … fanout --subscribers 1000   # a third each: Pusher, Notif, Socket.IO
//! bench … hostile --flood argon         # login-names | argon | bodies | amplification
//! bench … chat dm --users 1000 --rate 2000   # also: chat group | chat history | chat idle
//! bench floor-server --listen 127.0.0.1:0     # the yardstick server for the latency scenarios
//! ```
//! See BENCHMARKS.md for what each scenario measures.

mod api;
mod chat;
mod floor;
mod hostile;
mod polling;
mod prober;
mod scenarios;
mod sio;
mod stats;
mod subs;
mod sys;
mod tally;
mod ws;

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::api::{Api, Creds, Publish, Publishing};
use crate::scenarios::{FanoutOpts, MaxOpts};
use crate::sio::{Flavour, Target, Transport};
use crate::subs::{Ctx, Protocol};
use crate::tally::Kind;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Load generator for Pusher Channels-compatible and Socket.IO servers; prints a JSON report"
)]
struct Args {
    /// Server base URL (http:// or ws://; TLS is not supported).
    #[arg(long, global = true, default_value = "http://127.0.0.1:6001")]
    url: String,
    #[arg(long, global = true, default_value = "bench")]
    app_id: String,
    #[arg(long, global = true, default_value = "bench-key")]
    key: String,
    #[arg(long, global = true, default_value = "bench-secret")]
    secret: String,
    /// PID of the server process: its CPU time and RSS are read from /proc/PID.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Channel the subscribers join and the events go to.
    #[arg(long, global = true, default_value = "bench")]
    channel: String,
    /// What the subscribers speak (`mixed`: a third each of Pusher, Notif and Socket.IO).
    #[arg(long, global = true, value_enum, default_value_t = Protocol::Pusher)]
    protocol: Protocol,
    /// Socket.IO subscribers' transport.
    #[arg(long, global = true, value_enum, default_value_t = Transport::Websocket)]
    transport: Transport,
    /// The Socket.IO server measured: Switchboard (token, `join_channel`) or the Node app.
    #[arg(long, global = true, value_enum, default_value_t = Flavour::Switchboard)]
    flavour: Flavour,
    /// Socket.IO path [default: `/ws/` for Switchboard, `/socket.io/` for Node].
    #[arg(long, global = true)]
    sio_path: Option<String>,
    /// How events are published (and what `http` drives) [default: `node` for the Node flavour,
    /// `emit` for Switchboard's Socket.IO, `trigger` otherwise].
    #[arg(long, global = true, value_enum)]
    publish: Option<Publish>,
    /// Event name of a trigger [default: `e` with `--protocol pusher`, else `message`, the
    /// name Socket.IO subscribers listen to].
    #[arg(long, global = true)]
    event: Option<String>,
    /// WebSocket handshakes in flight while opening connections.
    #[arg(long, global = true, default_value_t = 200)]
    ramp_concurrency: u32,
    /// Overall time limit in seconds [default: depends on the scenario].
    #[arg(long, global = true)]
    timeout: Option<u64>,
    /// Print the report on one line.
    #[arg(long, global = true)]
    compact: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Open N idle subscribed connections; report server RSS per connection.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Seconds to wait after the ramp before the final RSS reading.
        #[arg(long, default_value_t = 5)]
        settle: u64,
    },
    /// N subscribers on one channel, publish at a fixed rate; latency, losses, CPU per delivery.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Publishes per second.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Seconds of publishing.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds of publishing at the same rate before the measured run, not counted: each new
        /// connection starts in the kernel's quick-ACK mode, which over loopback charges every
        /// ACK of the generator to the server's core until it settles.
        #[arg(long, default_value_t = 5)]
        warmup: u64,
        /// Write every measured delivery to this file, one `seq sent_us received_us` line each
        /// (microseconds on the generator's monotonic clock), to see latency per event.
        #[arg(long)]
        latency_log: Option<std::path::PathBuf>,
        /// Most publish requests in flight (a pool of keep-alive connections; the schedule is open loop).
        #[arg(long, default_value_t = 64)]
        publishers: usize,
        /// Padding added to each event's data.
        #[arg(long, default_value_t = 0)]
        payload_bytes: usize,
    },
    /// Search for the highest publish rate sustained with no loss and a bounded p99.
    FanoutMax {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// First rate tried [default: 10,000 deliveries/s worth].
        #[arg(long)]
        start_rate: Option<f64>,
        /// Seconds of publishing per step.
        #[arg(long, default_value_t = 5)]
        step_duration: u64,
        /// A step fails when its delivery p99 exceeds this.
        #[arg(long, default_value_t = 1000.0)]
        max_p99_ms: f64,
        /// A step fails when fewer than this share of the target publishes were accepted.
        #[arg(long, default_value_t = 0.95)]
        min_achieved: f64,
        /// Most steps (a step disturbed by foreign CPU load is repeated once and counts twice).
        #[arg(long, default_value_t = 14)]
        max_steps: usize,
        /// Most publish requests in flight.
        #[arg(long, default_value_t = 64)]
        publishers: usize,
        #[arg(long, default_value_t = 0)]
        payload_bytes: usize,
    },
    /// Publishes back to back over keep-alive connections, one per worker, on the `--publish`
    /// route (signed triggers, Push-Alt emits or the Node app's emits).
    Http {
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds run before measuring.
        #[arg(long, default_value_t = 1)]
        warmup: u64,
    },
    /// One hostile flood (issue 14) with `/health` probed and the server's RSS sampled
    /// throughout; reports RSS retained after it and the slowest `/health` answer.
    Hostile(hostile::Opts),
    /// Hestia's chat (issue 16): DMs, a group, history pages, idle chat sockets.
    Chat(chat::Opts),
    /// Not a scenario: serve as the floor server (one blocking `write` per delivery, nothing
    /// else) that the latency scenarios can be run against for comparison. See BENCHMARKS.md.
    FloorServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::Idle { .. } => "idle",
            Scenario::Fanout { .. } => "fanout",
            Scenario::FanoutMax { .. } => "fanout-max",
            Scenario::Http { .. } => "http",
            Scenario::Hostile(_) => "hostile",
            Scenario::Chat(_) => "chat",
            Scenario::FloorServer { .. } => "floor-server",
        }
    }

    /// Subscribers or connections the scenario holds open.
    fn connections(&self) -> usize {
        match self {
            Scenario::Idle { connections, .. } => *connections,
            Scenario::Fanout { subscribers, publishers, .. } | Scenario::FanoutMax { subscribers, publishers, .. } => {
                subscribers + publishers
            }
            Scenario::Http { concurrency, .. } => *concurrency,
            Scenario::Hostile(opts) => opts.connections_held(),
            Scenario::Chat(opts) => opts.mode.connections() + opts.setup_concurrency,
            Scenario::FloorServer { .. } => 65_536,
        }
    }

    /// Sockets the scenario holds open (for the open-files limit): a polling session holds two.
    fn sockets(&self, transport: Transport) -> usize {
        match (self, transport) {
            (Scenario::Idle { .. } | Scenario::Fanout { .. } | Scenario::FanoutMax { .. }, Transport::Polling) => {
                self.connections() * 2
            }
            _ => self.connections(),
        }
    }

    fn default_timeout(&self) -> u64 {
        let ramp = self.connections() as u64 / 100 + 30;
        match self {
            Scenario::Idle { settle, .. } => ramp + settle + 30,
            Scenario::Fanout { duration, warmup, .. } => ramp + warmup * 2 + duration * 2 + 30,
            Scenario::FanoutMax { .. } => ramp + 200,
            Scenario::Http { duration, warmup, .. } => duration + warmup + 30,
            Scenario::Hostile(opts) => opts.default_timeout(),
            Scenario::Chat(opts) => opts.mode.default_timeout(),
            Scenario::FloorServer { .. } => 0,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Scenario::FloorServer { listen } = &args.scenario {
        sys::raise_nofile(args.scenario.connections() as u64);
        return match floor::run(listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench floor-server: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    stats::now_us(); // fixes the clock's origin
    let compact = args.compact;
    let scenario = args.scenario.name();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .and_then(|rt| tokio::task::LocalSet::new().block_on(&rt, run(args)));
    let (report, code) = match outcome {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("bench: {e:#}");
            (json!({"scenario": scenario, "error": format!("{e:#}")}), ExitCode::from(1))
        }
    };
    let text = if compact { report.to_string() } else { serde_json::to_string_pretty(&report).unwrap_or_default() };
    println!("{text}");
    code
}

async fn run(args: Args) -> anyhow::Result<(Value, ExitCode)> {
    let uri: hyper::Uri = args.url.parse().with_context(|| format!("--url {}", args.url))?;
    match uri.scheme_str() {
        Some("http" | "ws") | None => {}
        Some(other) => bail!("--url: scheme {other} is not supported (plain http/ws only)"),
    }
    let host = uri.host().context("--url has no host")?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} resolves to no address"))?;
    let authority = uri.authority().map_or_else(|| format!("{host}:{port}"), |a| a.to_string());

    let nofile = sys::raise_nofile(args.scenario.sockets(args.transport) as u64 + 256);
    let limit = Duration::from_secs(args.timeout.unwrap_or_else(|| args.scenario.default_timeout()));
    let creds = Creds { app_id: args.app_id.clone(), key: args.key.clone(), secret: args.secret.clone() };
    let publishing = publishing(&args)?;
    let sio = match args.protocol.split(3)[Kind::Socketio as usize] {
        0 => None,
        _ => Some(sio_target(&args, addr, &authority, &creds).await?),
    };
    let ctx = Rc::new(Ctx {
        addr,
        authority,
        ws_path: format!("/app/{}?protocol=7&client=bench&version=1", args.key),
        notif_path: format!("/ws?api_key={}", api::query_value(&args.key)),
        protocol: args.protocol,
        sio,
        publishing,
        creds,
        channel: args.channel.clone(),
        ramp_concurrency: args.ramp_concurrency,
        server_pid: args.server_pid,
        partial: RefCell::new(Value::Null),
    });
    let started_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut head = json!({
        "scenario": args.scenario.name(),
        "url": args.url,
        "started_at_unix": started_at,
        "timeout_secs": limit.as_secs(),
        "open_files_limit": nofile,
        "protocol": ctx.protocol.name(),
        "socketio": ctx.sio.as_ref().map(|t| json!({
            "flavour": t.flavour.name(),
            "transport": t.transport.name(),
            "url_path": t.base,
            "event": t.listen_name,
        })),
        "publish": {"via": ctx.publishing.via.name(), "event": ctx.publishing.event},
        "environment": sys::environment(args.server_pid),
    });

    let work = run_scenario(&ctx, &args.scenario, limit);
    let (body, code) = match tokio::time::timeout(limit, work).await {
        Ok(Ok(body)) => (body, ExitCode::SUCCESS),
        Ok(Err(e)) => {
            eprintln!("bench: {e:#}");
            (json!({"error": format!("{e:#}"), "partial": ctx.partial.borrow().clone()}), ExitCode::from(1))
        }
        Err(_) => {
            eprintln!("bench: overall timeout of {}s reached", limit.as_secs());
            let error = format!("overall timeout of {}s reached", limit.as_secs());
            (json!({"error": error, "partial": ctx.partial.borrow().clone()}), ExitCode::from(2))
        }
    };
    if let (Some(h), Value::Object(b)) = (head.as_object_mut(), body) {
        h.extend(b);
    }
    head["server_rss_end_kib"] = json!(args.server_pid.and_then(|p| sys::rss_kib(Some(p))));
    Ok((head, code))
}

/// The publish route and event name the options ask for, checked against the protocol.
fn publishing(args: &Args) -> anyhow::Result<Publishing> {
    let sio = args.protocol == Protocol::Socketio;
    let node = sio && args.flavour == Flavour::Node;
    if args.flavour == Flavour::Node && !sio {
        bail!("--flavour node needs --protocol socketio (the Node app speaks nothing else)");
    }
    if args.transport == Transport::Polling && !matches!(args.protocol, Protocol::Socketio | Protocol::Mixed) {
        bail!("--transport polling is for Socket.IO subscribers (--protocol socketio or mixed)");
    }
    let via = args.publish.unwrap_or(if node {
        Publish::Node
    } else if sio {
        Publish::Emit
    } else {
        Publish::Trigger
    });
    if node != (via == Publish::Node) {
        bail!("--publish node goes with --flavour node and the other routes with Switchboard");
    }
    let event = match (&args.event, args.protocol) {
        (Some(e), _) => e.clone(),
        (None, Protocol::Pusher) => "e".to_owned(),
        (None, _) => "message".to_owned(),
    };
    if via == Publish::Emit && event != "message" {
        bail!("--event: an emit's event is always `message`");
    }
    Ok(Publishing { via, event })
}

/// The Socket.IO server's flavour, path and join; for Switchboard, a channel token first.
async fn sio_target(args: &Args, addr: std::net::SocketAddr, authority: &str, creds: &Creds) -> anyhow::Result<Target> {
    let path = args.sio_path.as_deref().unwrap_or(args.flavour.default_path());
    Ok(match args.flavour {
        Flavour::Node => Target::node(path, args.transport, &args.channel),
        Flavour::Switchboard => {
            let mut api = Api::connect(addr, authority).await?;
            let (token, listen_name) = api::fetch_token(&mut api, creds, &args.channel).await?;
            Target::switchboard(path, args.transport, &args.channel, &token, &listen_name)
        }
    })
}

async fn run_scenario(ctx: &Rc<Ctx>, scenario: &Scenario, limit: Duration) -> anyhow::Result<Value> {
    match *scenario {
        Scenario::Idle { connections, settle } => {
            let report = scenarios::idle(ctx, connections, Duration::from_secs(settle)).await?;
            eprintln!(
                "bench: idle: {} connections, server RSS {} KiB/connection",
                report["alive_after_settle"], report["server_kib_per_connection"]
            );
            Ok(report)
        }
        Scenario::Fanout { subscribers, rate, duration, warmup, ref latency_log, publishers, payload_bytes } => {
            let opts = FanoutOpts { subscribers, latency_log: latency_log.clone(), publishers, payload_bytes };
            scenarios::fanout(ctx, &opts, rate, Duration::from_secs(duration), Duration::from_secs(warmup)).await
        }
        Scenario::FanoutMax {
            subscribers,
            start_rate,
            step_duration,
            max_p99_ms,
            min_achieved,
            max_steps,
            publishers,
            payload_bytes,
        } => {
            let opts = FanoutOpts { subscribers, latency_log: None, publishers, payload_bytes };
            let max = MaxOpts {
                start_rate,
                step_duration: Duration::from_secs(step_duration),
                max_p99_ms,
                max_steps,
                min_achieved,
            };
            scenarios::fanout_max(ctx, &opts, &max, limit).await
        }
        Scenario::Http { concurrency, duration, warmup } => {
            scenarios::http(ctx, concurrency, Duration::from_secs(duration), Duration::from_secs(warmup)).await
        }
        Scenario::Hostile(ref opts) => hostile::run(ctx, opts).await,
        Scenario::Chat(ref opts) => chat::run(ctx, opts).await,
        Scenario::FloorServer { .. } => bail!("floor-server is a server, not a scenario"),
    }
}
