//! Running the built `switchboard` binary as an operator would: a clean environment (none of the
//! variables Switchboard reads leaks in from the test run), its own working directory, a shell's
//! `ulimit` when asked, and a server child whose log is read line by line. Servers are killed
//! by PID when dropped.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{APP_ID, APP_KEY};

/// The pinned app's secret for a binary started by [`serve`] (pinned secrets need 16
/// characters; the in-process servers keep [`super::APP_SECRET`]).
pub const BINARY_APP_SECRET: &str = "binary-secret-0123456789";

/// How long a server gets to print a line waited for (its listening line first).
const LINE_WAIT: Duration = Duration::from_secs(30);

/// `switchboard ARGS` in `dir`, with no Switchboard variable from the test environment.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args).current_dir(dir);
    for (name, _, _) in switchboard::config::ENV_VARS {
        cmd.env_remove(name);
    }
    cmd.env_remove("SWITCHBOARD_ADMIN_PASSWORD");
    cmd
}

/// `switchboard serve` on a free loopback port with its data in `dir`, the test app pinned and
/// the log at `info`; `extra` flags after.
pub fn serve(dir: &Path, extra: &[&str]) -> Command {
    let data_dir = dir.to_str().unwrap();
    let mut args = vec!["serve", "--port", "0", "--bind", "127.0.0.1", "--data-dir", data_dir];
    args.extend_from_slice(extra);
    let mut cmd = command(dir, &args);
    cmd.env("LOG_LEVEL", "info")
        .env("SWITCHBOARD_APP_ID", APP_ID)
        .env("SWITCHBOARD_APP_KEY", APP_KEY)
        .env("SWITCHBOARD_APP_SECRET", BINARY_APP_SECRET);
    cmd
}

/// `cmd` run by `sh` after `ulimit` settings (`"-n 256"`, `"-Sn 256 -Hn 2048"`), as a login
/// shell or a service manager would start it.
pub fn with_ulimit(cmd: &Command, limits: &str) -> Command {
    let parts: Vec<&str> = limits.split_whitespace().collect();
    let script: String = parts.chunks(2).map(|pair| format!("ulimit {} && ", pair.join(" "))).collect();
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!("{script}exec \"$@\"")).arg("sh").arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => sh.env(name, value),
            None => sh.env_remove(name),
        };
    }
    sh
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The one line a refused start or a failed command prints, without the `switchboard: `
    /// prefix; fails when there is more than one.
    pub fn error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected exactly one line on stderr, got:\n{}", self.stderr);
        lines[0].strip_prefix("switchboard: ").unwrap_or(lines[0])
    }
}

/// Runs a command to its end.
pub fn run(cmd: &mut Command) -> Finished {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A server started from the binary, killed when dropped.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
    /// Its stderr (the log), line by line, as it comes.
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Option<std::thread::JoinHandle<()>>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Starts `cmd` (a `serve` command) and waits for the line that says where it listens.
    pub fn start(cmd: &mut Command) -> Self {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let sink = lines.clone();
        let stderr = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().push(line);
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        let mut running = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            stderr: Some(stderr),
            stdout: Some(stdout),
        };
        let line = running.wait_for("listening on http://");
        running.addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| c == '"' || c.is_whitespace()).next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        running
    }

    /// The first log line containing `needle`, waiting for it (at most 30 s; fails at once if
    /// the server exits first).
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LINE_WAIT;
        loop {
            if let Some(line) = self.lines.lock().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // The reader may still hold the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!("switchboard exited ({status}) before logging {needle:?}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?} within {LINE_WAIT:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log line so far.
    pub fn log(&self) -> String {
        self.lines.lock().join("\n")
    }

    /// Stops the server and returns everything it printed: (stdout, stderr lines).
    pub fn stop(mut self) -> (String, Vec<String>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.stderr.take() {
            let _ = reader.join();
        }
        let lines = std::mem::take(&mut *self.lines.lock());
        let stdout = self.stdout.take().map(|t| t.join().unwrap()).unwrap_or_default();
        (stdout, lines)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
