//! The `hostile` scenario's watch on the server, on a thread of its own so that the flood's work
//! on the generator's runtime never delays it: `/health` probed on a keep-alive connection and on
//! a fresh one, the server's RSS and threads sampled, all handed back when the flood is over.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use crate::api::{Api, NotSent};
use crate::stats::Histogram;
use crate::subs::Ctx;
use crate::sys::{self, r1, r3};

const KEEPALIVE_EVERY: Duration = Duration::from_millis(50);
/// A server out of descriptors, or with a stuck accept loop, shows on new connections only.
const FRESH_EVERY: Duration = Duration::from_millis(500);
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// One RSS sample in this many goes into the report's timeline.
const TIMELINE_EVERY: u64 = 10;
/// A probe not answered within this counts as timed out.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Probe incidents (non-200, timeout, error) listed in the report; all of them are counted.
const MAX_INCIDENTS: usize = 20;

/// The server's resident memory and threads at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mem {
    pub(crate) rss_kib: u64,
    pub(crate) threads: u64,
}

impl Mem {
    /// `None` once the process is gone.
    pub(crate) fn read(pid: u32) -> Option<Self> {
        Some(Self { rss_kib: sys::rss_kib(Some(pid))?, threads: sys::threads(Some(pid))? })
    }

    pub(crate) fn to_json(self) -> Value {
        json!({"rss_kib": self.rss_kib, "rss_mb": r1(mib(self.rss_kib)), "threads": self.threads})
    }
}

/// Kibibytes as mebibytes.
pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// What the prober thread needs to know.
struct Target {
    addr: SocketAddr,
    authority: String,
    pid: u32,
    t0: Instant,
}

/// `/health` probes by kind, and every probe that was not a 200 in time.
#[derive(Default)]
pub(crate) struct Probes {
    pub(crate) all: Histogram,
    pub(crate) keepalive: Histogram,
    pub(crate) fresh: Histogram,
    pub(crate) statuses: BTreeMap<String, u64>,
    pub(crate) non_200: u64,
    pub(crate) timed_out: u64,
    pub(crate) errors: u64,
    pub(crate) incidents: Vec<Value>,
}

#[derive(Clone, Copy)]
enum ProbeKind {
    KeepAlive,
    Fresh,
}

impl Probes {
    fn record(
        &mut self,
        kind: ProbeKind,
        at: Duration,
        elapsed: Duration,
        outcome: Result<anyhow::Result<u16>, tokio::time::error::Elapsed>,
    ) {
        let kind_name = match kind {
            ProbeKind::KeepAlive => "keepalive",
            ProbeKind::Fresh => "fresh",
        };
        let incident = match outcome {
            Ok(Ok(status)) => {
                let us = elapsed.as_micros() as u64;
                self.all.record(us);
                match kind {
                    ProbeKind::KeepAlive => self.keepalive.record(us),
                    ProbeKind::Fresh => self.fresh.record(us),
                }
                *self.statuses.entry(status.to_string()).or_default() += 1;
                if status == 200 {
                    return;
                }
                self.non_200 += 1;
                json!({"status": status})
            }
            Ok(Err(e)) => {
                self.errors += 1;
                json!({"error": format!("{e:#}")})
            }
            Err(_) => {
                self.timed_out += 1;
                json!({"error": format!("no answer within {} s", PROBE_TIMEOUT.as_secs())})
            }
        };
        if self.incidents.len() < MAX_INCIDENTS {
            let mut incident = incident;
            incident["at_secs"] = json!(r3(at.as_secs_f64()));
            incident["probe"] = json!(kind_name);
            incident["after_ms"] = json!(r3(elapsed.as_secs_f64() * 1000.0));
            self.incidents.push(incident);
        }
    }
}

/// Peak and timeline of the server's memory.
#[derive(Default)]
pub(crate) struct Memory {
    pub(crate) peak_rss_kib: u64,
    pub(crate) peak_threads: u64,
    pub(crate) samples: u64,
    /// `[seconds, RSS MiB, threads]` every `TIMELINE_EVERY` samples.
    pub(crate) timeline: Vec<Value>,
    pub(crate) gone_at_secs: Option<f64>,
}

pub(crate) struct Watched {
    pub(crate) probes: Probes,
    pub(crate) memory: Memory,
}

/// The prober and sampler thread, stopped through a watch channel; it hands back what it saw.
pub(crate) struct Watcher {
    stop: watch::Sender<bool>,
    done: oneshot::Receiver<Watched>,
    thread: std::thread::JoinHandle<()>,
}

impl Watcher {
    pub(crate) fn start(ctx: &Ctx, pid: u32, t0: Instant) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the prober's runtime")?;
        let target = Target { addr: ctx.addr, authority: ctx.authority.clone(), pid, t0 };
        let (stop, stop_rx) = watch::channel(false);
        let (done_tx, done) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("bench-prober".to_owned())
            .spawn(move || {
                let watched = tokio::task::LocalSet::new().block_on(&rt, watch(target, stop_rx));
                let _ = done_tx.send(watched);
            })
            .context("starting the prober thread")?;
        Ok(Self { stop, done, thread })
    }

    pub(crate) async fn stop(self) -> anyhow::Result<Watched> {
        let _ = self.stop.send(true);
        let watched = self.done.await.context("the prober thread ended without its report")?;
        let _ = self.thread.join();
        Ok(watched)
    }
}

async fn watch(target: Target, mut stop: watch::Receiver<bool>) -> Watched {
    let probes = RefCell::new(Probes::default());
    let memory = RefCell::new(Memory::default());
    tokio::select! {
        _ = async { tokio::join!(keepalive(&target, &probes), fresh(&target, &probes), sample(&target, &memory)) } => {}
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
    Watched { probes: probes.into_inner(), memory: memory.into_inner() }
}

fn ticker(every: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(every);
    // A slow probe delays the next one instead of a burst of catch-up probes.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Probes `/health` on one keep-alive connection, reopened when it fails.
async fn keepalive(target: &Target, probes: &RefCell<Probes>) {
    let mut tick = ticker(KEEPALIVE_EVERY);
    let mut api = None;
    loop {
        tick.tick().await;
        let at = target.t0.elapsed();
        let begun = Instant::now();
        let outcome = tokio::time::timeout(PROBE_TIMEOUT, probe_keepalive(target, &mut api)).await;
        probes.borrow_mut().record(ProbeKind::KeepAlive, at, begun.elapsed(), outcome);
    }
}

async fn probe_keepalive(target: &Target, api: &mut Option<Api>) -> anyhow::Result<u16> {
    let reused = api.is_some();
    let mut conn = match api.take() {
        Some(conn) => conn,
        None => Api::connect(target.addr, &target.authority).await?,
    };
    let answer = match conn.get("/health").await {
        // The server closed the idle connection as the probe went out: not the server's failure.
        Err(e) if reused && e.is::<NotSent>() => {
            conn = Api::connect(target.addr, &target.authority).await?;
            conn.get("/health").await
        }
        other => other,
    };
    let (status, _) = answer?;
    if !conn.is_closed() {
        *api = Some(conn);
    }
    Ok(status)
}

/// Probes `/health` on a new connection each time.
async fn fresh(target: &Target, probes: &RefCell<Probes>) {
    let mut tick = ticker(FRESH_EVERY);
    loop {
        tick.tick().await;
        let at = target.t0.elapsed();
        let begun = Instant::now();
        let probe = async {
            let mut conn = Api::connect(target.addr, &target.authority).await?;
            Ok::<_, anyhow::Error>(conn.get("/health").await?.0)
        };
        let outcome = tokio::time::timeout(PROBE_TIMEOUT, probe).await;
        probes.borrow_mut().record(ProbeKind::Fresh, at, begun.elapsed(), outcome);
    }
}

/// Samples the server's RSS and threads.
async fn sample(target: &Target, memory: &RefCell<Memory>) {
    let mut tick = ticker(SAMPLE_EVERY);
    loop {
        tick.tick().await;
        let at = r1(target.t0.elapsed().as_secs_f64());
        let mut m = memory.borrow_mut();
        let Some(now) = Mem::read(target.pid) else {
            m.gone_at_secs.get_or_insert(at);
            continue;
        };
        m.peak_rss_kib = m.peak_rss_kib.max(now.rss_kib);
        m.peak_threads = m.peak_threads.max(now.threads);
        if m.samples.is_multiple_of(TIMELINE_EVERY) {
            m.timeline.push(json!([at, r1(mib(now.rss_kib)), now.threads]));
        }
        m.samples += 1;
    }
}
