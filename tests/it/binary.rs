//! Running the built `switchboard` binary as an operator would: a clean environment (none of the
//! variables Switchboard reads leaks in from the test run), its own working directory, and a
//! server child read line by line until it listens.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// How long a server gets to print its listening line.
const START_WAIT: Duration = Duration::from_secs(30);

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
    stderr: Receiver<String>,
    seen: Vec<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Starts `cmd` (a `serve` command) and waits for the line that says where it listens.
    pub fn start(cmd: &mut Command) -> Self {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, stderr) = channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        let mut seen = Vec::new();
        let addr = loop {
            let line = stderr.recv_timeout(START_WAIT).unwrap_or_else(|_| {
                panic!("no listening line within {START_WAIT:?}; stderr so far:\n{}", seen.join("\n"))
            });
            let found = line
                .split("listening on http://")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| c == '"' || c.is_whitespace()).next())
                .and_then(|addr| addr.parse().ok());
            seen.push(line);
            if let Some(addr) = found {
                break addr;
            }
        };
        Self { child, addr, stderr, seen, stdout: Some(stdout) }
    }

    /// Stops the server and returns everything it printed: (stdout, stderr lines).
    pub fn stop(mut self) -> (String, Vec<String>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut lines = std::mem::take(&mut self.seen);
        // The reader thread ends at EOF, which closes the channel.
        lines.extend(self.stderr.iter());
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
