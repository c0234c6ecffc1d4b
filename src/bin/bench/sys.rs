//! What the tool reads from /proc: CPU time and RSS of the server and of itself, the open-files
//! limit (raised through `prlimit(1)` since the crate forbids `unsafe` and has no libc binding).

use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::{Value, json};

/// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`, 100 when that fails).
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

fn proc_path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

/// User + system CPU seconds of a process (`None`: this process).
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(proc_path(pid, "stat")).ok()?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state(3) ppid(4) … utime(14) stime(15), i.e. indices 11 and 12 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// The kernel's softirq threads: network processing deferred to them is nobody's process time.
fn ksoftirqd_pids() -> &'static [u32] {
    static PIDS: OnceLock<Vec<u32>> = OnceLock::new();
    PIDS.get_or_init(|| {
        let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("ksoftirqd/"))
            })
            .collect()
    })
}

fn ksoftirqd_secs() -> f64 {
    ksoftirqd_pids().iter().filter_map(|p| cpu_secs(Some(*p))).sum()
}

/// Busy and stolen CPU seconds of the whole machine (all cores), from /proc/stat.
fn machine_secs() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal …
    let busy = v.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, x)| x).sum::<f64>();
    Some((busy / clk_tck(), v.get(7).copied().unwrap_or(0.0) / clk_tck()))
}

/// A `Name:   value kB` line of /proc/PID/status, as a number.
fn status_field(pid: Option<u32>, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(proc_path(pid, "status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(|v| v.trim().to_owned()))
}

/// Resident set size in KiB.
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    status_field(pid, "VmRSS")?.split_whitespace().next()?.parse().ok()
}

/// The CPUs a process may run on (shows whether `taskset` pinning took effect).
pub fn cpus_allowed(pid: Option<u32>) -> Option<String> {
    status_field(pid, "Cpus_allowed_list")
}

/// Number of threads of a process.
pub fn threads(pid: Option<u32>) -> Option<u64> {
    status_field(pid, "Threads")?.parse().ok()
}

fn nofile_limits() -> Option<(u64, Option<u64>)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut it = line["Max open files".len()..].split_whitespace();
    let parse = |s: &str| if s == "unlimited" { Some(None) } else { s.parse().ok().map(Some) };
    let soft = parse(it.next()?)?.unwrap_or(u64::MAX);
    let hard = parse(it.next()?)?;
    Some((soft, hard))
}

/// Makes sure this process may open `want` files, raising the soft limit up to the hard one.
/// Returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> Option<u64> {
    let (soft, hard) = nofile_limits()?;
    if soft >= want {
        return Some(soft);
    }
    let target = hard.map_or(want.max(65_536), |h| h.min(want.max(65_536)));
    let hard_s = hard.map_or_else(|| "unlimited".to_owned(), |h| h.to_string());
    let arg = format!("--nofile={target}:{hard_s}");
    let pid = std::process::id().to_string();
    let _ = Command::new("prlimit").args(["--pid", &pid, &arg]).output();
    let (soft, _) = nofile_limits()?;
    if soft < want {
        eprintln!("bench: warning: open-files limit is {soft}, {want} wanted (raise it with `ulimit -n`)");
    }
    Some(soft)
}

/// CPU time of the server and of this process over a window of wall time.
pub struct CpuWindow {
    started: Instant,
    server_pid: Option<u32>,
    server0: Option<f64>,
    client0: Option<f64>,
    machine0: Option<(f64, f64)>,
    softirqd0: f64,
}

/// The result of a [`CpuWindow`].
#[derive(Debug, Clone, Copy)]
pub struct CpuUsage {
    pub wall_secs: f64,
    pub server_secs: Option<f64>,
    pub client_secs: Option<f64>,
    /// Busy CPU seconds of the whole machine (all cores) and the part of it stolen by the hypervisor.
    pub machine_secs: Option<(f64, f64)>,
    /// CPU seconds of the ksoftirqd threads (deferred network processing).
    pub ksoftirqd_secs: f64,
}

/// Generator CPU at or above this share of one core marks a result as client bound.
pub const CLIENT_BOUND_PERCENT: f64 = 90.0;

impl CpuWindow {
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            started: Instant::now(),
            server_pid,
            server0: server_pid.and_then(|p| cpu_secs(Some(p))),
            client0: cpu_secs(None),
            machine0: machine_secs(),
            softirqd0: ksoftirqd_secs(),
        }
    }

    pub fn finish(&self) -> CpuUsage {
        let wall_secs = self.started.elapsed().as_secs_f64();
        let server1 = self.server_pid.and_then(|p| cpu_secs(Some(p)));
        let client1 = cpu_secs(None);
        CpuUsage {
            wall_secs,
            server_secs: server1.zip(self.server0).map(|(b, a)| b - a),
            client_secs: client1.zip(self.client0).map(|(b, a)| b - a),
            machine_secs: machine_secs().zip(self.machine0).map(|(b, a)| (b.0 - a.0, b.1 - a.1)),
            ksoftirqd_secs: ksoftirqd_secs() - self.softirqd0,
        }
    }
}

impl CpuUsage {
    pub fn server_percent(&self) -> Option<f64> {
        self.server_secs.map(|s| 100.0 * s / self.wall_secs.max(1e-9))
    }

    pub fn client_percent(&self) -> Option<f64> {
        self.client_secs.map(|s| 100.0 * s / self.wall_secs.max(1e-9))
    }

    pub fn client_bound(&self) -> bool {
        self.client_percent().is_some_and(|p| p >= CLIENT_BOUND_PERCENT)
    }

    /// Server CPU microseconds per unit of work (delivery, request).
    pub fn server_us_per(&self, units: u64) -> Option<f64> {
        if units == 0 {
            return None;
        }
        self.server_secs.map(|s| s * 1e6 / units as f64)
    }

    /// Machine CPU used by neither the server, this tool nor ksoftirqd (other load), % of one core.
    pub fn other_percent(&self) -> Option<f64> {
        let (busy, _) = self.machine_secs?;
        let other = busy - self.server_secs.unwrap_or(0.0) - self.client_secs.unwrap_or(0.0) - self.ksoftirqd_secs;
        Some(100.0 * other.max(0.0) / self.wall_secs.max(1e-9))
    }

    pub fn to_json(self) -> Value {
        json!({
            "other_cpu_percent": self.other_percent().map(r1),
            "ksoftirqd_cpu_percent": r1(100.0 * self.ksoftirqd_secs / self.wall_secs.max(1e-9)),
            "steal_cpu_percent": self.machine_secs.map(|(_, st)| r1(100.0 * st / self.wall_secs.max(1e-9))),
            "window_secs": r3(self.wall_secs),
            "server_cpu_secs": self.server_secs.map(r3),
            "server_cpu_percent": self.server_percent().map(r1),
            "client_cpu_secs": self.client_secs.map(r3),
            "client_cpu_percent": self.client_percent().map(r1),
            "client_bound": self.client_bound(),
        })
    }
}

/// Rounds to 3 decimals (JSON readability).
pub fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Rounds to 1 decimal.
pub fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Facts about the machine and the two processes, recorded with every report.
pub fn environment(server_pid: Option<u32>) -> Value {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines().find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
    });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned());
    json!({
        "cpus_online": std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .map(|c| c.lines().filter(|l| l.starts_with("processor")).count()),
        "cpu_model": cpu_model,
        "kernel": kernel,
        "loadavg": std::fs::read_to_string("/proc/loadavg").ok().map(|s| s.trim().to_owned()),
        "client_cpus_allowed": cpus_allowed(None),
        "server_pid": server_pid,
        "server_cpus_allowed": server_pid.and_then(|p| cpus_allowed(Some(p))),
        "server_threads": server_pid.and_then(|p| threads(Some(p))),
    })
}
