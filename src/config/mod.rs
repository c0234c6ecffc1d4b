//! Configuration: typed sections with documented defaults, layered as SPEC §2 says:
//! built-in defaults → `switchboard.toml` (or `--config FILE`) → environment → flags.
//!
//! Everything is validated once, before anything starts; an unknown key or an unparsable value is
//! a [`ConfigError`] naming the setting as the operator gave it: the flag, the file and line, or
//! the environment variable ([`Sources`] remembers which). The binary exits with code 2. Only
//! this module reads the process environment.

mod data_dir;
mod env;
mod push;
mod sources;
mod uploads;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use env::{ENV_VARS, Setter};
pub use push::PushConfig;
pub use sources::{Source, Sources};
pub use uploads::UploadsConfig;

/// A bad setting: one line naming it, for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A secret that never shows up in logs or `Debug` output.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The whole configuration, immutable after start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub default_app: DefaultAppConfig,
    pub pusher: PusherConfig,
    pub connection: ConnectionConfig,
    pub auth: AuthConfig,
    pub metrics: MetricsConfig,
    pub socketio: SocketIoConfig,
    pub chat: ChatConfig,
    pub push: PushConfig,
    pub uploads: UploadsConfig,
    /// Which layer set each setting, for error messages; not a setting itself.
    #[serde(skip)]
    pub sources: Sources,
}

/// Listening socket, data directory and HTTP-level limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind. Default `0.0.0.0`. Env `SWITCHBOARD_BIND` (or Notif's `SERVER_ADDR`).
    pub bind: IpAddr,
    /// TCP port; 0 picks a free one (tests). Default 6001. Env `PORT`.
    pub port: u16,
    /// Where SQLite, uploads and generated secrets live. Default `./switchboard-data`.
    pub data_dir: PathBuf,
    /// Time a client gets to send its request headers (and finish a WebSocket upgrade), in
    /// milliseconds. Default 10 000 (SPEC §10).
    pub handshake_timeout_ms: u64,
    /// Largest request head accepted, in bytes. Default 16 384 (SPEC §10).
    pub max_header_bytes: usize,
    /// Time a request gets from its head to its answer, body included, in milliseconds: a body
    /// that trickles in (or never comes) cannot hold a connection longer. Default 30 000.
    pub request_timeout_ms: u64,
    /// TCP connections one client address may hold open at once (WebSockets included); more
    /// get a 429 and are closed. 0 = no limit (the default: behind a reverse proxy every client
    /// has the proxy's address).
    pub max_connections_per_ip: u32,
    /// HTTP requests (WebSocket upgrades included) one client address may make per second;
    /// more get a 429 with `Retry-After`. 0 = no limit (the default, for the same reason).
    pub requests_per_ip_per_second: u32,
    /// Proxies (addresses or CIDR networks) whose forwarding header names the client address,
    /// for per-address limits and logs. Default none: the TCP peer is the client.
    /// Env `SWITCHBOARD_TRUSTED_PROXIES` (comma-separated).
    pub trusted_proxies: Vec<ProxyNet>,
    /// The one header trusted proxies name the client in: `x-forwarded-for` (the default; what
    /// nginx, HAProxy and cloud balancers set) or `forwarded` (RFC 7239). The other is ignored,
    /// since a proxy passes through whatever the client put there. Env
    /// `SWITCHBOARD_FORWARDED_HEADER`.
    pub forwarded_header: ForwardedHeader,
    /// Open connections (HTTP and WebSocket) the server holds at most; past it a new one gets
    /// 503 at once. 0 = as many as the process's descriptor limit allows, less a reserve (the
    /// default). Env `SWITCHBOARD_MAX_CONNECTIONS`.
    pub max_connections: u64,
    /// How long shutdown waits for in-flight requests, in milliseconds. Default 10 000.
    pub shutdown_grace_ms: u64,
    /// How often the app cache and the global CORS list check the database for changes made
    /// elsewhere (the CLI, another node), in milliseconds. Default 500, so a change takes effect
    /// within a second.
    pub app_refresh_ms: u64,
    /// Origins (`[scheme://]host[:port]`, `*.domain`) that browsers may call the Push-Alt API
    /// from (and, with the Socket.IO transport, open handshakes from), besides the stored CORS
    /// list and every enabled app's allowed origins but `*` (SPEC §5). Default none: when the
    /// whole list is empty, any origin may. Env `CORS_ORIGINS` (comma-separated).
    pub cors_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 6001,
            data_dir: PathBuf::from("./switchboard-data"),
            handshake_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
            request_timeout_ms: 30_000,
            max_connections_per_ip: 0,
            requests_per_ip_per_second: 0,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            max_connections: 0,
            shutdown_grace_ms: 10_000,
            app_refresh_ms: 500,
            cors_origins: Vec::new(),
        }
    }
}

impl ServerConfig {
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
    pub fn app_refresh(&self) -> Duration {
        Duration::from_millis(self.app_refresh_ms)
    }
}

/// A proxy address or network in `server.trusted_proxies`: `10.0.0.1`, `::1`, `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProxyNet(pub ipnet::IpNet);

impl std::str::FromStr for ProxyNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        s.parse::<ipnet::IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map(Self)
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))
    }
}

impl TryFrom<String> for ProxyNet {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ProxyNet> for String {
    fn from(net: ProxyNet) -> Self {
        net.0.to_string()
    }
}

/// The header trusted proxies name the client in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    Forwarded,
}

/// Where data lives.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH`, `postgres://…` or `mysql://…`. Default: SQLite in the data dir.
    /// Env `DATABASE_URL`.
    pub url: Option<String>,
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `switchboard=debug`. Default `info`. Env `LOG_LEVEL`.
    pub level: String,
    /// `text` or `json`. Default `text`. Env `SWITCHBOARD_LOG_FORMAT`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("must be text or json".into()),
        }
    }
}

/// The levels a log filter may name; anything else bare (`loud`) is a mistake, which `tracing`
/// would take for a target name and so silence every log line, the listening line included.
const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// Checks a log filter: a level, or a comma-separated list of `target=level` directives and at
/// most one bare level, as `tracing_subscriber::EnvFilter` reads them.
fn check_log_filter(filter: &str) -> Result<(), String> {
    const NOT_A_LEVEL: &str = "not a log level (use trace, debug, info, warn, error, off, or target=level)";
    let parts: Vec<&str> = filter.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(NOT_A_LEVEL.into());
    }
    for part in parts {
        if !part.contains('=') && !LOG_LEVELS.iter().any(|level| level.eq_ignore_ascii_case(part)) {
            return Err(NOT_A_LEVEL.into());
        }
    }
    tracing_subscriber::EnvFilter::try_new(filter).map(drop).map_err(|e| format!("not a log filter: {e}"))
}

/// The app created on first start. Setting id, key or secret pins it: it is created or updated
/// to match at every start. Env `SWITCHBOARD_APP_{ID,KEY,SECRET,NAME}` (Notif's `APP_KEY`,
/// `APP_SECRET` too).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefaultAppConfig {
    pub id: Option<String>,
    pub key: Option<String>,
    pub secret: Option<Secret>,
    pub name: Option<String>,
}

impl DefaultAppConfig {
    /// Whether configuration pins the default app.
    pub fn is_pinned(&self) -> bool {
        self.id.is_some() || self.key.is_some() || self.secret.is_some()
    }
}

/// Pusher protocol timers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PusherConfig {
    /// Seconds of silence before the server pings a connection; also announced to clients as
    /// `activity_timeout`. Default 120. Env `SWITCHBOARD_ACTIVITY_TIMEOUT`.
    pub activity_timeout_secs: u64,
    /// Seconds a pinged connection has to answer before it is closed with 4201. Default 30.
    /// Env `SWITCHBOARD_PONG_TIMEOUT`.
    pub pong_timeout_secs: u64,
}

impl Default for PusherConfig {
    fn default() -> Self {
        Self { activity_timeout_secs: 120, pong_timeout_secs: 30 }
    }
}

/// Per-connection resources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionConfig {
    /// Bytes of frames queued for one connection before it counts as a slow consumer and is
    /// disconnected (Pusher 4100). Default 1 MiB. Env `SWITCHBOARD_OUTBOX_MAX_BYTES`.
    pub outbox_max_bytes: usize,
    /// Frames queued for one connection before the same happens. Default 4096.
    pub outbox_max_frames: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self { outbox_max_bytes: 1024 * 1024, outbox_max_frames: 4096 }
    }
}

/// Engine.IO and Socket.IO (Push-Alt at `/ws`, Hestia at `/socket.io/`); the defaults are
/// socket.io 4's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocketIoConfig {
    /// Time between the server's pings, in milliseconds (`pingInterval`); the first one goes
    /// out one interval after the handshake. Default 25 000. Env `SWITCHBOARD_SOCKETIO_PING_INTERVAL_MS`.
    pub ping_interval_ms: u64,
    /// Time a client has to answer a ping, in milliseconds (`pingTimeout`); a polling client
    /// that stops polling is dropped after interval + timeout. Default 20 000.
    /// Env `SWITCHBOARD_SOCKETIO_PING_TIMEOUT_MS`.
    pub ping_timeout_ms: u64,
    /// Largest message (and long-polling POST body), in bytes (`maxPayload`); larger closes the
    /// WebSocket with 1009 or answers the POST 413, and ends the session. Default 1 000 000.
    /// Env `SWITCHBOARD_SOCKETIO_MAX_PAYLOAD`.
    pub max_payload: usize,
    /// Time a new Socket.IO connection has to CONNECT to a namespace, in milliseconds
    /// (`connectTimeout`). Default 10 000 (SPEC §10; the reference server's is 45 000).
    /// Env `SWITCHBOARD_SOCKETIO_CONNECT_TIMEOUT_MS`.
    pub connect_timeout_ms: u64,
    /// Long-polling sessions held at once per endpoint; past it a polling handshake gets 503.
    /// Default 100 000. Env `SWITCHBOARD_SOCKETIO_MAX_POLLING_SESSIONS`.
    pub max_polling_sessions: usize,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            max_payload: 1_000_000,
            connect_timeout_ms: 10_000,
            max_polling_sessions: 100_000,
        }
    }
}

impl SocketIoConfig {
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

/// Accounts and their tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 secret for account tokens. Default: generated once and kept in
    /// `<data_dir>/jwt_secret`. Env `JWT_SECRET`.
    pub jwt_secret: Option<Secret>,
    /// Token lifetime in seconds. Default 604 800 (7 days, as Notif and Hestia).
    pub token_ttl_secs: u64,
    /// Auth requests (registrations and logins, on every surface) per IP address per
    /// `window_secs`. Default 300 (SPEC §6). Env `SWITCHBOARD_AUTH_REQUESTS_PER_IP`.
    pub requests_per_ip: u32,
    /// Failed logins per login name per `window_secs`; a success resets the name. Default 10
    /// (SPEC §6). Env `SWITCHBOARD_FAILED_LOGINS_PER_ACCOUNT`.
    pub failed_logins_per_account: u32,
    /// The window of both limits, in seconds: each bucket holds its whole allowance and refills
    /// it evenly over the window. Default 900 (15 minutes). Env `SWITCHBOARD_AUTH_WINDOW_SECS`.
    pub window_secs: u64,
    /// Whether anyone may create an account with `POST /auth/register` (`open`, the default) or
    /// only a signed-in admin (`closed`); `switchboard setup` works either way.
    /// Env `SWITCHBOARD_REGISTRATION`.
    pub registration: Registration,
}

/// The Hestia chat (SPEC §6).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// The server's public base URL (`https://chat.example.com`), which uploaded pictures'
    /// URLs start with. Default none: taken from each request's `Host` (and
    /// `X-Forwarded-Proto` from a trusted proxy). Env `SWITCHBOARD_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// AES-256-GCM key for message contents at rest: 64 hex characters. Default none (stored as
    /// text). Env `ENCRYPTION_KEY`.
    pub encryption_key: Option<Secret>,
    /// Messages an account may send per second, sustained (a token bucket's refill). Default 20.
    /// Env `SWITCHBOARD_CHAT_MESSAGES_PER_SECOND`.
    pub messages_per_second: u32,
    /// Messages an account may send at once (the bucket's size). Default 200.
    /// Env `SWITCHBOARD_CHAT_MESSAGE_BURST`.
    pub message_burst: u32,
    /// Most messages one database transaction of the group-commit writer stores. Default 512.
    pub write_batch: usize,
    /// Messages waiting for the writer at most; senders past it wait. Default 16 384.
    pub write_queue: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            encryption_key: None,
            messages_per_second: 20,
            message_burst: 200,
            write_batch: 512,
            write_queue: 16 * 1024,
        }
    }
}

/// Who may register accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    #[default]
    Open,
    Closed,
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// When set, `/metrics` wants `Authorization: Bearer <token>` (else 401). Default none
    /// (open). Env `SWITCHBOARD_METRICS_TOKEN`.
    pub token: Option<Secret>,
    /// When set, `/metrics` is served only on this address (e.g. `127.0.0.1:9100`), not on the
    /// main port. Default none. Env `SWITCHBOARD_METRICS_ADDR`.
    pub listen: Option<std::net::SocketAddr>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            token_ttl_secs: 7 * 24 * 3600,
            requests_per_ip: 300,
            failed_logins_per_account: 10,
            window_secs: 900,
            registration: Registration::Open,
        }
    }
}

/// Command-line flags: the last layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub port: Option<u16>,
    pub bind: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
}

/// File looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "switchboard.toml";

impl Config {
    /// Builds the configuration from every layer and validates it.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None if Path::new(DEFAULT_FILE).exists() => Self::from_file(Path::new(DEFAULT_FILE))?,
            None => Self::default(),
        };
        env::apply(&mut config, |name| std::env::var(name).ok())?;
        config.apply_flags(flags);
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML file; unknown keys are errors. Every key it sets is remembered with its line.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
        let mut config = Self::parse_toml(&text, &format!("config file {}, ", path.display()))?;
        config.sources.record_file(path, &text);
        Ok(config)
    }

    /// Parses TOML text; unknown keys are errors.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::parse_toml(text, "")
    }

    /// Parses TOML; an error names the line and, when it is about one, the key.
    fn parse_toml(text: &str, prefix: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace('\n', " ");
            let Some(span) = e.span() else {
                return ConfigError(format!("{prefix}{message}"));
            };
            let line = sources::line_of(text, span.start);
            let entries = sources::toml_entries(text);
            match entries.iter().find(|k| k.key_start <= span.start && span.start < k.value.end.max(k.key_start + 1)) {
                Some(entry) => ConfigError(format!("{prefix}line {line}: {}: {message}", entry.key)),
                None => ConfigError(format!("{prefix}line {line}: {message}")),
            }
        })
    }

    fn apply_flags(&mut self, flags: &Overrides) {
        if let Some(port) = flags.port {
            self.server.port = port;
            self.sources.set("server.port", Source::Flag("--port"));
        }
        if let Some(bind) = flags.bind {
            self.server.bind = bind;
            self.sources.set("server.bind", Source::Flag("--bind"));
        }
        if let Some(dir) = &flags.data_dir {
            self.server.data_dir = dir.clone();
            self.sources.set("server.data_dir", Source::Flag("--data-dir"));
        }
        if let Some(url) = &flags.database_url {
            self.database.url = Some(url.clone());
            self.sources.set("database.url", Source::Flag("--database-url"));
        }
        if let Some(level) = &flags.log_level {
            self.log.level = level.clone();
            self.sources.set("log.level", Source::Flag("--log-level"));
        }
        if let Some(format) = flags.log_format {
            self.log.format = format;
            self.sources.set("log.format", Source::Flag("--log-format"));
        }
    }

    /// Records that the embedding program set `key` with the builder method `method`, so that
    /// an error about it names the call the program made (`ServerBuilder::port(80)`).
    pub fn set_by_builder(&mut self, key: &str, method: &'static str) {
        self.sources.set(key, Source::Builder(method));
    }

    /// The error for a bad value of setting `key` (its TOML name, e.g. `server.port`): one line
    /// that names the setting as the operator gave it, then `why`.
    pub fn invalid(&self, key: &str, why: impl fmt::Display) -> ConfigError {
        let snapshot = self.snapshot();
        let named = sources::Named { key, source: self.sources.get(key), value: sources::lookup(&snapshot, key) };
        ConfigError(format!("{named}: {why}"))
    }

    /// The configuration as a JSON tree, which is how settings are looked up by key.
    fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.data_dir.as_os_str().is_empty() {
            return Err(self.invalid("server.data_dir", "must not be empty"));
        }
        let url = self.database_url();
        let scheme = url.split("://").next().unwrap_or_default();
        match scheme {
            "sqlite" => {}
            "postgres" | "postgresql" if cfg!(feature = "postgres") => {}
            "mysql" | "mariadb" if cfg!(feature = "mysql") => {}
            "libsql" | "http" | "https" | "ws" | "wss" => {
                return Err(self.invalid(
                    "database.url",
                    format!("libSQL is not supported ({scheme}://); use sqlite://, postgres:// or mysql://"),
                ));
            }
            _ => {
                return Err(self.invalid(
                    "database.url",
                    format!("unsupported scheme {scheme:?}; use sqlite://, postgres:// or mysql://"),
                ));
            }
        }
        if self.server.handshake_timeout_ms == 0 {
            return Err(self.invalid("server.handshake_timeout_ms", "must be at least 1"));
        }
        if self.server.request_timeout_ms == 0 {
            return Err(self.invalid("server.request_timeout_ms", "must be at least 1"));
        }
        if self.pusher.activity_timeout_secs == 0 {
            return Err(self.invalid("pusher.activity_timeout_secs", "must be at least 1 second"));
        }
        if self.connection.outbox_max_bytes < 16 * 1024 {
            return Err(self.invalid("connection.outbox_max_bytes", "must be at least 16384"));
        }
        let sio = &self.socketio;
        for (key, ms) in [
            ("socketio.ping_interval_ms", sio.ping_interval_ms),
            ("socketio.ping_timeout_ms", sio.ping_timeout_ms),
            ("socketio.connect_timeout_ms", sio.connect_timeout_ms),
        ] {
            if ms == 0 {
                return Err(self.invalid(key, "must be at least 1"));
            }
        }
        if sio.max_payload < 1024 {
            return Err(self.invalid("socketio.max_payload", "must be at least 1024"));
        }
        if sio.max_polling_sessions == 0 {
            return Err(self.invalid("socketio.max_polling_sessions", "must be at least 1"));
        }
        for (key, bytes) in [
            ("uploads.avatar_max_bytes", self.uploads.avatar_max_bytes),
            ("uploads.banner_max_bytes", self.uploads.banner_max_bytes),
        ] {
            if bytes < 1024 {
                return Err(self.invalid(key, "must be at least 1024"));
            }
        }
        if self.metrics.token.as_ref().is_some_and(|s| s.0.len() < 16) {
            return Err(self.invalid("metrics.token", "must be at least 16 characters"));
        }
        for (key, n) in [
            ("auth.requests_per_ip", u64::from(self.auth.requests_per_ip)),
            ("auth.failed_logins_per_account", u64::from(self.auth.failed_logins_per_account)),
            ("auth.window_secs", self.auth.window_secs),
        ] {
            if n == 0 {
                return Err(self.invalid(key, "must be at least 1"));
            }
        }
        if self.auth.jwt_secret.as_ref().is_some_and(|s| s.0.len() < 16) {
            return Err(self.invalid("auth.jwt_secret", "must be at least 16 characters"));
        }
        self.validate_chat()?;
        self.validate_default_app()?;
        self.validate_push()?;
        check_log_filter(&self.log.level).map_err(|why| self.invalid("log.level", why))?;
        Ok(())
    }

    fn validate_chat(&self) -> Result<(), ConfigError> {
        let chat = &self.chat;
        if let Some(key) = &chat.encryption_key
            && (key.0.len() != 64 || !key.0.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(self.invalid("chat.encryption_key", "must be 64 hex characters (a 256-bit key)"));
        }
        if let Some(url) = &chat.public_url {
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
                return Err(self.invalid("chat.public_url", "must be an http:// or https:// base URL"));
            }
        }
        for (key, n) in [
            ("chat.messages_per_second", chat.messages_per_second as usize),
            ("chat.message_burst", chat.message_burst as usize),
            ("chat.write_batch", chat.write_batch),
            ("chat.write_queue", chat.write_queue),
        ] {
            if n == 0 {
                return Err(self.invalid(key, "must be at least 1"));
            }
        }
        Ok(())
    }

    /// The pinned default app follows the rules an app created through the API or the CLI
    /// follows, checked here so that nothing is written when they are broken.
    fn validate_default_app(&self) -> Result<(), ConfigError> {
        let app = &self.default_app;
        if let Some(id) = &app.id {
            check_app_token(id, 64).map_err(|why| self.invalid("default_app.id", why))?;
        }
        if let Some(key) = &app.key {
            check_app_token(key, 128).map_err(|why| self.invalid("default_app.key", why))?;
        }
        if let Some(secret) = &app.secret {
            let len = secret.0.chars().count();
            if len < 16 {
                return Err(self.invalid("default_app.secret", "must be at least 16 characters"));
            }
            if secret.0.len() > 255 {
                return Err(self.invalid("default_app.secret", "must be at most 255 bytes"));
            }
        }
        if app.name.as_ref().is_some_and(|n| n.chars().count() > 255) {
            return Err(self.invalid("default_app.name", "must be at most 255 characters"));
        }
        Ok(())
    }

    /// The database URL in force: the configured one, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.server.data_dir.join("switchboard.db").display()),
        }
    }
}

/// The syntax of app ids and keys, which travel in URLs: `[A-Za-z0-9_.-]`, 1 to `max`
/// characters. The one definition: the apps service checks created apps with it too.
pub fn check_app_token(value: &str, max: usize) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok { Ok(()) } else { Err(format!("must be 1–{max} characters of A-Z a-z 0-9 _ . -")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_toml_key_is_an_error() {
        let err = Config::from_toml("[server]\nprot = 1\n").unwrap_err();
        assert!(err.0.contains("prot"), "{}", err.0);
    }

    #[test]
    fn toml_overrides_defaults() {
        let c = Config::from_toml("[server]\nport = 7000\n[pusher]\nactivity_timeout_secs = 5\n").unwrap();
        assert_eq!(c.server.port, 7000);
        assert_eq!(c.pusher.activity_timeout_secs, 5);
        assert_eq!(c.pusher.pong_timeout_secs, 30);
    }

    #[test]
    fn libsql_is_refused() {
        let mut c = Config::default();
        c.database.url = Some("libsql://db.example".into());
        assert!(c.validate().unwrap_err().0.contains("libSQL"));
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let mut c = Config::default();
        assert!(c.validate().is_ok());
        c.server.request_timeout_ms = 0;
        assert_eq!(c.validate().unwrap_err().0, "server.request_timeout_ms = 0: must be at least 1");
        c.server.request_timeout_ms = 1;
        c.sources.set(
            "server.handshake_timeout_ms",
            Source::Env { name: "SWITCHBOARD_HANDSHAKE_TIMEOUT_MS", value: "0".into() },
        );
        c.server.handshake_timeout_ms = 0;
        assert_eq!(c.validate().unwrap_err().0, "SWITCHBOARD_HANDSHAKE_TIMEOUT_MS=\"0\": must be at least 1");
    }

    #[test]
    fn log_levels_and_directives_pass_and_bare_words_do_not() {
        for ok in ["info", "DEBUG", "Warn", "off", "switchboard=debug", "info,sqlx=warn", "switchboard=trace,warn"] {
            assert_eq!(check_log_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["loud", "nonsense", "info,loud", "", " , ", "switchboard"] {
            assert!(check_log_filter(bad).unwrap_err().starts_with("not a log level"), "{bad}");
        }
        assert!(check_log_filter("switchboard=loud").is_err());
    }

    #[test]
    fn a_bad_log_level_names_its_source() {
        let mut c = Config::default();
        c.apply_flags(&Overrides { log_level: Some("loud".into()), ..Default::default() });
        assert_eq!(
            c.validate().unwrap_err().0,
            "--log-level \"loud\": not a log level (use trace, debug, info, warn, error, off, or target=level)"
        );
    }

    #[test]
    fn toml_errors_name_the_key_and_its_line() {
        let err = Config::from_toml("# comment\n[server]\nprot = 1\n").unwrap_err();
        assert!(err.0.starts_with("line 3: server.prot: unknown field"), "{}", err.0);
        let err = Config::from_toml("[server]\n\nport = \"x\"\n").unwrap_err();
        assert!(err.0.starts_with("line 3: server.port: invalid type"), "{}", err.0);
    }

    #[test]
    fn pinned_default_app_follows_the_app_rules() {
        let mut c = Config::default();
        c.default_app.id = Some("has space".into());
        assert!(c.validate().unwrap_err().0.starts_with("default_app.id = \"has space\": must be"));
        c.default_app.id = Some("ok-id".into());
        c.default_app.secret = Some(Secret("short".into()));
        let err = c.validate().unwrap_err().0;
        assert!(err.ends_with("must be at least 16 characters") && !err.contains("short"), "{err}");
        c.default_app.secret = Some(Secret("0123456789abcdef".into()));
        c.default_app.key = Some("a/b".into());
        assert!(c.validate().unwrap_err().0.contains("default_app.key"));
    }
}
