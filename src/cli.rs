//! The command line (clap): `serve`, `apps list|create|delete|rotate-secret|enable|disable`,
//! `migrate`, `setup`. Each command loads the layered configuration, then calls into the library.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::apps::{self, AppSettings, CreateApp};
use crate::config::{Config, LogFormat, Overrides};
use crate::server::{Server, shutdown};
use crate::store::Store;

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
    /// Log filter, e.g. info or switchboard=debug [env: LOG_LEVEL].
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// TCP port; 0 picks a free one [env: PORT; default 6001].
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
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// The password; prefer the environment variable, which stays out of shell history.
        #[arg(long, env = "SWITCHBOARD_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
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
    /// Create an app; unset credentials are generated.
    Create {
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        secret: Option<String>,
        /// Allowed origin, repeatable: host, host:port, scheme://host or scheme://host:port;
        /// *.domain matches subdomains.
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
    },
    /// Delete an app; its live connections close within a second.
    Delete { id: String },
    /// Replace an app's secret; the new one is printed.
    RotateSecret { id: String },
    /// Enable an app.
    Enable { id: String },
    /// Disable an app; its live connections close (Pusher 4003) within a second.
    Disable { id: String },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let (port, bind) = match &cli.command {
        Command::Serve { port, bind } => (*port, *bind),
        _ => (None, None),
    };
    let flags =
        Overrides { port, bind, data_dir: cli.data_dir, database_url: cli.database_url, log_level: cli.log_level };
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
        }
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::build(config).await?;
    server.run_until_stopped(shutdown::signal()).await
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.database_url())
        .await
        .map_err(|e| crate::config::ConfigError(format!("DATABASE_URL: cannot open the database: {e}")).into())
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
        AppsCommand::Create { name, id, key, secret, allowed_origins } => {
            let settings = AppSettings { allowed_origins, ..Default::default() };
            let app = apps::create(store, CreateApp { id, key, secret, name, settings, ..Default::default() }).await?;
            println!("{}", serde_json::to_string_pretty(&app_json(&app))?);
        }
        AppsCommand::Delete { id } => {
            apps::delete(store, &id).await?;
            println!("deleted app {id}");
        }
        AppsCommand::RotateSecret { id } => {
            let app = apps::rotate_secret(store, &id).await?;
            println!("{}", app.secret.0);
        }
        AppsCommand::Enable { id } => {
            apps::set_enabled(store, &id, true).await?;
            println!("enabled app {id}");
        }
        AppsCommand::Disable { id } => {
            apps::set_enabled(store, &id, false).await?;
            println!("disabled app {id}");
        }
    }
    Ok(())
}

fn app_json(a: &apps::App) -> serde_json::Value {
    serde_json::json!({
        "id": &*a.id, "number": a.number, "key": &*a.key, "secret": &a.secret.0, "name": a.name,
        "enabled": a.enabled, "settings": a.settings,
    })
}

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
