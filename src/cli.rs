//! The command line (clap): `serve`, `apps list|show|create|update|delete|rotate-secret|enable|
//! disable`, `migrate`, `setup`, `backup`. Each command loads the layered configuration, then
//! calls into the library. Errors say what they are about (`app "x" not found`) and map to the
//! exit codes of [`exit_code`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};

use crate::apps::{self, AppLimits, AppSettings, CreateApp, Switches, UpdateApp};
use crate::config::{Config, ConfigError, LogFormat, Overrides};
use crate::server::{Server, shutdown};
use crate::store::{self, Dialect, Store};

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Self-hosted real-time messaging server (Pusher Channels compatible)")]
pub struct Cli {
    /// Configuration file [default: ./switchboard.toml when it exists].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, generated secrets) [env: SWITCHBOARD_DATA_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://…, postgres://… or mysql://… [env: DATABASE_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log filter: a level (trace, debug, info, warn, error, off) or target=level list, e.g.
    /// info,switchboard=debug [env: LOG_LEVEL; default info].
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format: text or json [env: SWITCHBOARD_LOG_FORMAT; default text].
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// TCP port; 0 picks a free one [env: PORT or SWITCHBOARD_PORT; default 6001].
        #[arg(long)]
        port: Option<u16>,
        /// Address to bind [env: SWITCHBOARD_BIND; default 0.0.0.0].
        #[arg(long)]
        bind: Option<IpAddr>,
    },
    /// Manage apps.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Apply database migrations and exit.
    Migrate,
    /// Create the first admin account (once). It takes over the apps pinned by configuration.
    Setup {
        /// The admin's email address (an email, a username or both).
        #[arg(long)]
        email: Option<String>,
        /// The admin's username.
        #[arg(long)]
        username: Option<String>,
        /// The admin's display name.
        #[arg(long)]
        name: Option<String>,
        /// The password; prefer the environment variable, which stays out of shell history.
        #[arg(long, env = "SWITCHBOARD_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Copy the SQLite database consistently while the server runs, and the generated JWT
    /// secret beside it (PostgreSQL and MySQL: use pg_dump or mysqldump).
    Backup {
        /// The file to write the database to; it must not exist. The JWT secret goes to
        /// FILE.jwt_secret.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// List apps (secrets included: this is the operator's console).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one app as JSON: credentials, origins, limits and switches.
    Show {
        /// The app's id.
        id: String,
    },
    /// Create an app; unset credentials are generated.
    Create {
        /// Display name [default: "app ID"].
        #[arg(long, default_value = "")]
        name: String,
        /// The app id (1–64 of A-Z a-z 0-9 _ . -) [default: 7 random digits].
        #[arg(long)]
        id: Option<String>,
        /// The public key clients connect with (1–128 of A-Z a-z 0-9 _ . -) [default: random].
        #[arg(long)]
        key: Option<String>,
        /// The secret backends sign with [default: random].
        #[arg(long)]
        secret: Option<String>,
        /// Allowed origin, repeatable: host, host:port, scheme://host or scheme://host:port;
        /// *.domain matches subdomains. None: any origin.
        #[arg(long = "allowed-origin", value_name = "ORIGIN")]
        allowed_origins: Vec<String>,
    },
    /// Change an app's name, allowed origins, limits or switches; prints the app.
    Update {
        /// The app's id.
        id: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Allowed origin, repeatable; the given list replaces the app's (see `apps create`).
        #[arg(long = "allowed-origin", value_name = "ORIGIN", conflicts_with = "clear_origins")]
        allowed_origins: Vec<String>,
        /// Remove every allowed origin, so that any origin may connect.
        #[arg(long)]
        clear_origins: bool,
        /// Set a limit, repeatable: NAME=NUMBER, NAME one of max_connections, max_message_bytes,
        /// client_events_per_second, max_presence_members, max_channels_per_connection,
        /// api_requests_per_second.
        #[arg(long = "limit", value_name = "NAME=NUMBER", value_parser = parse_limit)]
        limits: Vec<(String, u64)>,
        /// Turn a switch on or off, repeatable: NAME=on|off, NAME one of subscription_count,
        /// watchlist_events, legacy_key_publish, legacy_open_emit.
        #[arg(long = "switch", value_name = "NAME=on|off", value_parser = parse_switch)]
        switches: Vec<(String, bool)>,
    },
    /// Delete an app; its live connections close within a second.
    Delete {
        /// The app's id.
        id: String,
    },
    /// Replace an app's secret; the new one is printed.
    RotateSecret {
        /// The app's id.
        id: String,
    },
    /// Enable an app.
    Enable {
        /// The app's id.
        id: String,
    },
    /// Disable an app; its live connections close (Pusher 4003) within a second.
    Disable {
        /// The app's id.
        id: String,
    },
}

/// A command used wrongly (an invalid app id, nothing to change): exit code 2, like clap's own
/// usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error [`run`] returned (README, "Exit codes"): 2 for bad configuration
/// or usage, 1 for a failure while running (not found, conflict, database gone). Success is 0.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<ConfigError>().is_some() || err.downcast_ref::<UsageError>().is_some() { 2 } else { 1 }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let (port, bind) = match &cli.command {
        Command::Serve { port, bind } => (*port, *bind),
        _ => (None, None),
    };
    let flags = Overrides {
        port,
        bind,
        data_dir: cli.data_dir,
        database_url: cli.database_url,
        log_level: cli.log_level,
        log_format: cli.log_format,
    };
    let config = Config::load(cli.config.as_deref(), &flags)?;
    init_tracing(&config);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve(config).await,
            Command::Migrate => {
                let store = open_store(&config).await?;
                store.migrate().await?;
                println!("migrations applied");
                Ok(())
            }
            Command::Setup { email, username, name, password } => {
                config.prepare_data_dir()?;
                let store = open_store(&config).await?;
                store.migrate().await?;
                let secret = crate::auth::jwt::load_or_create_secret(
                    config.auth.jwt_secret.as_ref().map(|s| s.0.as_str()),
                    &config.server.data_dir,
                )?;
                let accounts = crate::accounts::Accounts::new(store, &secret, config.auth.clone());
                let reg = crate::accounts::Registration { name, username, email, password: Some(password) };
                let admin = accounts.setup_admin(reg).await?;
                println!("admin account {} created", admin.id);
                Ok(())
            }
            Command::Apps(cmd) => {
                let store = open_store(&config).await?;
                store.migrate().await?;
                run_apps(&store, cmd).await
            }
            Command::Backup { to } => backup(&config, &to).await,
        }
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::builder().config(config).start().await?;
    server.run_until(shutdown::signal()).await
}

/// Opens the configured database; the default SQLite file needs its data dir checked first.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if config.database.url.is_none() {
        config.prepare_data_dir()?;
    }
    Store::connect(&config.database_url())
        .await
        .map_err(|e| config.invalid("database.url", format!("cannot open the database: {e}")).into())
}

async fn run_apps(store: &Store, cmd: AppsCommand) -> anyhow::Result<()> {
    match cmd {
        AppsCommand::List { json } => {
            let list = apps::list(store).await?;
            if json {
                let rows: Vec<_> = list.iter().map(app_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{:<12} {:<24} {:<36} {:<8} NAME", "ID", "KEY", "SECRET", "ENABLED");
                for a in &list {
                    println!("{:<12} {:<24} {:<36} {:<8} {}", a.id, a.key, a.secret.0, a.enabled, a.name);
                }
            }
        }
        AppsCommand::Show { id } => {
            let app = find_app(store, &id).await?;
            println!("{}", serde_json::to_string_pretty(&app_json(&app))?);
        }
        AppsCommand::Create { name, id, key, secret, allowed_origins } => {
            let settings = AppSettings { allowed_origins, ..Default::default() };
            let (wanted_id, wanted_key) = (id.clone(), key.clone());
            let app = apps::create(store, CreateApp { id, key, secret, name, settings, ..Default::default() })
                .await
                .map_err(|e| app_error(e, wanted_id.as_deref(), wanted_key.as_deref()))?;
            println!("{}", serde_json::to_string_pretty(&app_json(&app))?);
        }
        AppsCommand::Update { id, name, allowed_origins, clear_origins, limits, switches } => {
            if name.is_none()
                && allowed_origins.is_empty()
                && !clear_origins
                && limits.is_empty()
                && switches.is_empty()
            {
                return Err(UsageError(
                    "apps update: nothing to change (give --name, --allowed-origin, --clear-origins, --limit or \
                     --switch)"
                        .into(),
                )
                .into());
            }
            let mut settings = find_app(store, &id).await?.settings.clone();
            if clear_origins || !allowed_origins.is_empty() {
                settings.allowed_origins = allowed_origins;
            }
            settings.limits = with_named(&settings.limits, &limits, "--limit")?;
            settings.switches = with_named(&settings.switches, &switches, "--switch")?;
            let changes = UpdateApp { name, settings: Some(settings), ..Default::default() };
            let app = apps::update(store, &id, changes).await.map_err(|e| app_error(e, Some(&id), None))?;
            println!("{}", serde_json::to_string_pretty(&app_json(&app))?);
        }
        AppsCommand::Delete { id } => {
            apps::delete(store, &id).await.map_err(|e| app_error(e, Some(&id), None))?;
            println!("deleted app {id}");
        }
        AppsCommand::RotateSecret { id } => {
            let app = apps::rotate_secret(store, &id).await.map_err(|e| app_error(e, Some(&id), None))?;
            println!("{}", app.secret.0);
        }
        AppsCommand::Enable { id } => {
            apps::set_enabled(store, &id, true).await.map_err(|e| app_error(e, Some(&id), None))?;
            println!("enabled app {id}");
        }
        AppsCommand::Disable { id } => {
            apps::set_enabled(store, &id, false).await.map_err(|e| app_error(e, Some(&id), None))?;
            println!("disabled app {id}");
        }
    }
    Ok(())
}

async fn find_app(store: &Store, id: &str) -> anyhow::Result<apps::App> {
    apps::list(store).await?.into_iter().find(|a| &*a.id == id).ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> anyhow::Error {
    anyhow!("app {id:?} not found")
}

/// Names the app an error is about, by the id and key the command gave.
fn app_error(err: apps::Error, id: Option<&str>, key: Option<&str>) -> anyhow::Error {
    match err {
        apps::Error::Store(store::Error::NotFound) => not_found(id.unwrap_or_default()),
        // The store does not say which unique column clashed, so both asked-for values are named.
        apps::Error::Store(store::Error::Conflict(_)) => {
            let asked: Vec<String> =
                [id.map(|i| format!("id {i}")), key.map(|k| format!("key {k}"))].into_iter().flatten().collect();
            if asked.is_empty() {
                anyhow!("an app with that id or key already exists")
            } else {
                anyhow!("an app with that id or key already exists ({})", asked.join(", "))
            }
        }
        apps::Error::Invalid { .. } => UsageError(err.to_string()).into(),
        other => other.into(),
    }
}

/// The field names of a settings struct (its serialized keys), so that the CLI accepts exactly
/// the limits and switches the apps service knows.
fn field_names<T: serde::Serialize + Default>() -> Vec<String> {
    match serde_json::to_value(T::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn split_named<'a>(raw: &'a str, kind: &str, known: &[String]) -> Result<(&'a str, &'a str), String> {
    let (name, value) = raw.split_once('=').ok_or_else(|| format!("expected NAME=VALUE, e.g. {}=1", known[0]))?;
    let name = name.trim();
    if !known.iter().any(|k| k == name) {
        return Err(format!("unknown {kind} {name:?} (known: {})", known.join(", ")));
    }
    Ok((name, value.trim()))
}

fn parse_limit(raw: &str) -> Result<(String, u64), String> {
    let (name, value) = split_named(raw, "limit", &field_names::<AppLimits>())?;
    let value = value.parse().map_err(|_| format!("{name}: {value:?} is not a whole number"))?;
    Ok((name.to_owned(), value))
}

fn parse_switch(raw: &str) -> Result<(String, bool), String> {
    let (name, value) = split_named(raw, "switch", &field_names::<Switches>())?;
    let on = match value {
        "on" | "true" => true,
        "off" | "false" => false,
        _ => return Err(format!("{name}: {value:?} is not on or off")),
    };
    Ok((name.to_owned(), on))
}

/// `current` with the named fields replaced (names were checked by the flag's parser).
fn with_named<T, V>(current: &T, changes: &[(String, V)], flag: &str) -> anyhow::Result<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    V: serde::Serialize,
{
    let mut tree = serde_json::to_value(current)?;
    for (name, value) in changes {
        tree[name.as_str()] = serde_json::to_value(value)?;
    }
    serde_json::from_value(tree).map_err(|e| UsageError(format!("{flag}: {e}")).into())
}

/// `switchboard backup`: SQLite's own consistent copy, then the generated JWT secret, which
/// signs account tokens (a restore without it signs every account out), and the generated VAPID
/// key (a restore without it breaks every browser's Web Push subscription).
async fn backup(config: &Config, to: &Path) -> anyhow::Result<()> {
    let url = config.database_url();
    let Some(db) = Dialect::sqlite_path(&url) else {
        let tool = if Dialect::from_url(&url) == Some(Dialect::Postgres) { "pg_dump" } else { "mysqldump" };
        return Err(config
            .invalid("database.url", format!("switchboard backup copies SQLite only; use {tool} (docs/operations.md)"))
            .into());
    };
    if !db.is_file() {
        return Err(anyhow!("no database at {}: nothing to back up (check --data-dir or DATABASE_URL)", db.display()));
    }
    // Generated into the data dir when configuration does not set them: the JWT secret
    // (auth::jwt::load_or_create_secret) and the VAPID key (push::webpush::Vapid), which every
    // browser's Web Push subscription is bound to.
    let generated = [
        ("JWT secret", crate::auth::jwt::SECRET_FILE, config.auth.jwt_secret.is_some(), "JWT_SECRET"),
        (
            "VAPID key",
            crate::push::webpush::VAPID_FILE,
            config.push.vapid_private_key.is_some(),
            "SWITCHBOARD_PUSH_VAPID_PRIVATE_KEY",
        ),
    ];
    let copies: Vec<(&str, PathBuf, PathBuf)> = generated
        .iter()
        .filter(|(_, file, configured, _)| !configured && config.server.data_dir.join(file).is_file())
        .map(|(what, file, _, _)| {
            (*what, config.server.data_dir.join(file), PathBuf::from(format!("{}.{file}", to.display())))
        })
        .collect();
    for target in std::iter::once(to).chain(copies.iter().map(|(_, _, to)| to.as_path())) {
        if target.exists() {
            return Err(anyhow!("{}: already exists; a backup never overwrites a file", target.display()));
        }
    }
    let store = open_store(config).await?;
    store.backup_into(to).await.with_context(|| format!("backing up to {}", to.display()))?;
    store.close().await;
    println!("database copied to {}", to.display());
    for (what, from, to) in &copies {
        copy_private(from, to)?;
        println!("{what} copied to {}", to.display());
    }
    for (what, _, configured, variable) in generated {
        if configured {
            println!("{what}: set by configuration ({variable}); keep it with your configuration");
        }
    }
    Ok(())
}

/// Copies a secret into a new file readable by its owner only.
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(to).with_context(|| format!("writing {}", to.display()))?;
    file.write_all(&bytes).with_context(|| format!("writing {}", to.display()))?;
    Ok(())
}

fn app_json(a: &apps::App) -> serde_json::Value {
    serde_json::json!({
        "id": &*a.id, "number": a.number, "key": &*a.key, "secret": &a.secret.0, "name": a.name,
        "enabled": a.enabled, "settings": a.settings,
    })
}

/// Installs the log subscriber; the filter was checked by [`Config::validate`].
fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every flag and positional of every command explains itself in `--help`.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "switchboard", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    #[test]
    fn limit_and_switch_names_come_from_the_settings() {
        assert_eq!(parse_limit("max_connections=5"), Ok(("max_connections".into(), 5)));
        let err = parse_limit("max_conections=5").unwrap_err();
        assert!(err.starts_with("unknown limit \"max_conections\" (known: ") && err.contains("max_connections"));
        assert!(parse_limit("max_connections=lots").unwrap_err().contains("not a whole number"));
        assert_eq!(parse_switch("subscription_count=on"), Ok(("subscription_count".into(), true)));
        assert!(parse_switch("nope=on").unwrap_err().starts_with("unknown switch \"nope\""));
        assert!(parse_switch("subscription_count=maybe").is_err());
        // The help text lists every name the settings have.
        let mut cli = Cli::command();
        let update = cli.find_subcommand_mut("apps").unwrap().find_subcommand_mut("update").unwrap();
        let text = update.render_long_help().to_string();
        for name in field_names::<AppLimits>().iter().chain(&field_names::<Switches>()) {
            assert!(text.contains(name.as_str()), "apps update --help does not mention {name}");
        }
    }

    #[test]
    fn named_fields_are_replaced() {
        let limits = with_named(&AppLimits::default(), &[("max_connections".to_owned(), 7u64)], "--limit").unwrap();
        assert_eq!(limits.max_connections, 7);
        let err = with_named(&AppLimits::default(), &[("client_events_per_second".to_owned(), u64::MAX)], "--limit");
        assert_eq!(exit_code(&err.unwrap_err()), 2);
    }
}
