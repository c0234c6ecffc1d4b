//! The real `switchboard serve` binary, started as a user would (environment, flags, a shell's
//! `ulimit`), on an ephemeral port read from its `listening on http://…` log line. Stopped by
//! PID when dropped.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{APP_ID, APP_KEY, APP_SECRET};

pub struct Binary {
    child: Child,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

/// How the binary is started.
#[derive(Default)]
pub struct Start<'a> {
    /// Extra environment variables.
    pub env: Vec<(&'a str, &'a str)>,
    /// Extra arguments after `serve --port 0 --bind 127.0.0.1 --data-dir DIR`.
    pub args: Vec<&'a str>,
    /// A `ulimit` line run by the shell first (`-n 256`, `-Hn 4096 -Sn 256`...).
    pub ulimit: Option<&'a str>,
}

impl Binary {
    pub async fn start(start: Start<'_>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = env!("CARGO_BIN_EXE_switchboard");
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let mut serve = vec![bin, "serve", "--port", "0", "--bind", "127.0.0.1", "--data-dir", &data_dir];
        serve.extend(start.args.iter().copied());
        let mut cmd = match start.ulimit {
            Some(limits) => {
                let mut cmd = Command::new("sh");
                let script = limits
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .chunks(2)
                    .fold(String::new(), |s, pair| format!("{s}ulimit {} && ", pair.join(" ")));
                cmd.arg("-c").arg(format!("{script}exec \"$@\"")).arg("sh").args(&serve);
                cmd
            }
            None => {
                let mut cmd = Command::new(serve[0]);
                cmd.args(&serve[1..]);
                cmd
            }
        };
        cmd.env("LOG_LEVEL", "info")
            .env("SWITCHBOARD_LOG_FORMAT", "text")
            .env("SWITCHBOARD_APP_ID", APP_ID)
            .env("SWITCHBOARD_APP_KEY", APP_KEY)
            .env("SWITCHBOARD_APP_SECRET", APP_SECRET)
            .env_remove("DATABASE_URL")
            .env_remove("PORT")
            .env_remove("SWITCHBOARD_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &start.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(collect(BufReader::new(stderr), lines.clone()));
        }
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(collect(BufReader::new(stdout), lines.clone()));
        }
        let mut binary = Self { child, addr: "127.0.0.1:0".parse().unwrap(), lines, dir };
        let line = binary.wait_for("listening on http://").await;
        let addr = line.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap();
        binary.addr = addr.trim_end_matches('"').parse().unwrap();
        binary
    }

    /// Waits (at most 30 s) for a log line containing `needle`.
    pub async fn wait_for(&mut self, needle: &str) -> String {
        for _ in 0..300 {
            if let Some(line) = self.lines.lock().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("switchboard exited ({status}) before logging {needle:?}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no log line with {needle:?} within 30 s:\n{}", self.log());
    }

    /// Every line logged so far.
    pub fn log(&self) -> String {
        self.lines.lock().join("\n")
    }

    /// The server's data directory (SQLite, the JWT secret), for the CLI to share.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Runs `switchboard ARGS` on the same data directory; (success, stdout, stderr).
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.args(args).arg("--data-dir").arg(self.data_dir()).env("LOG_LEVEL", "warn").env_remove("DATABASE_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

async fn collect<R: tokio::io::AsyncRead + Unpin>(reader: BufReader<R>, lines: Arc<Mutex<Vec<String>>>) {
    let mut reader = reader.lines();
    while let Ok(Some(line)) = reader.next_line().await {
        lines.lock().push(line);
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
