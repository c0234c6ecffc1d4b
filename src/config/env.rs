//! The environment-variable table: seed names (PORT, DATABASE_URL, Notif's aliases) and
//! `SWITCHBOARD_*`. The one place that knows which variable sets which field.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use super::sources::{self, Source};
use super::{Config, ConfigError, ForwardedHeader, Registration, Secret};

/// Sets a field from a variable's text, or says why the text is not a valid value.
pub type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// Every variable Switchboard reads: its name, the setting it sets (the TOML key, which is how
/// errors trace a value back to the variable) and the setter, in the order they are applied
/// (later wins: `SWITCHBOARD_PORT` over `PORT`, both over `SERVER_ADDR`'s port).
pub const ENV_VARS: &[(&str, &str, Setter)] = &[
    // Notif's alias first so that PORT and SWITCHBOARD_BIND win over it.
    ("SERVER_ADDR", "server.bind", |c, v| {
        let (host, port) = split_host_port(v)?;
        c.server.bind = host;
        if let Some(port) = port {
            c.server.port = port;
        }
        Ok(())
    }),
    ("PORT", "server.port", |c, v| parse_into(&mut c.server.port, v)),
    ("SWITCHBOARD_PORT", "server.port", |c, v| parse_into(&mut c.server.port, v)),
    ("SWITCHBOARD_BIND", "server.bind", |c, v| parse_into(&mut c.server.bind, v)),
    ("SWITCHBOARD_DATA_DIR", "server.data_dir", |c, v| {
        c.server.data_dir = PathBuf::from(v);
        Ok(())
    }),
    ("SWITCHBOARD_HANDSHAKE_TIMEOUT_MS", "server.handshake_timeout_ms", |c, v| {
        parse_into(&mut c.server.handshake_timeout_ms, v)
    }),
    ("SWITCHBOARD_MAX_HEADER_BYTES", "server.max_header_bytes", |c, v| parse_into(&mut c.server.max_header_bytes, v)),
    ("SWITCHBOARD_REQUEST_TIMEOUT_MS", "server.request_timeout_ms", |c, v| {
        parse_into(&mut c.server.request_timeout_ms, v)
    }),
    ("SWITCHBOARD_MAX_CONNECTIONS_PER_IP", "server.max_connections_per_ip", |c, v| {
        parse_into(&mut c.server.max_connections_per_ip, v)
    }),
    ("SWITCHBOARD_REQUESTS_PER_IP_PER_SECOND", "server.requests_per_ip_per_second", |c, v| {
        parse_into(&mut c.server.requests_per_ip_per_second, v)
    }),
    ("SWITCHBOARD_TRUSTED_PROXIES", "server.trusted_proxies", |c, v| {
        c.server.trusted_proxies =
            v.split(',').filter(|e| !e.trim().is_empty()).map(str::parse).collect::<Result<_, _>>()?;
        Ok(())
    }),
    ("SWITCHBOARD_FORWARDED_HEADER", "server.forwarded_header", |c, v| {
        c.server.forwarded_header = match v.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => ForwardedHeader::XForwardedFor,
            "forwarded" => ForwardedHeader::Forwarded,
            _ => return Err("must be x-forwarded-for or forwarded".into()),
        };
        Ok(())
    }),
    ("SWITCHBOARD_MAX_CONNECTIONS", "server.max_connections", |c, v| parse_into(&mut c.server.max_connections, v)),
    ("SWITCHBOARD_SHUTDOWN_GRACE_MS", "server.shutdown_grace_ms", |c, v| {
        parse_into(&mut c.server.shutdown_grace_ms, v)
    }),
    ("SWITCHBOARD_APP_REFRESH_MS", "server.app_refresh_ms", |c, v| parse_into(&mut c.server.app_refresh_ms, v)),
    ("CORS_ORIGINS", "server.cors_origins", |c, v| {
        c.server.cors_origins = v.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect();
        Ok(())
    }),
    ("DATABASE_URL", "database.url", |c, v| {
        c.database.url = Some(v.to_owned());
        Ok(())
    }),
    // Push-Alt's pair, after DATABASE_URL: with DB_TYPE=sqlite, Push-Alt read SQLITE_DB_PATH and
    // ignored DATABASE_URL (its libSQL URL).
    ("DB_TYPE", "database.url", |c, v| match v.trim() {
        "sqlite" => match c.database.url.as_deref().map(|u| u.split("://").next().unwrap_or_default()) {
            None | Some("sqlite") => Ok(()),
            Some("libsql" | "http" | "https" | "ws" | "wss") => {
                c.database.url = None;
                Ok(())
            }
            Some(_) => Err("DB_TYPE=sqlite contradicts DATABASE_URL; unset one of them".into()),
        },
        "libsql" => Err(LIBSQL_REFUSED.into()),
        _ => Err("must be sqlite (Push-Alt's DB_TYPE; libSQL is not supported)".into()),
    }),
    ("SQLITE_DB_PATH", "database.url", |c, v| {
        let with_db_type = matches!(c.sources.get("database.url"), Source::Env { name: "DB_TYPE", .. });
        if !with_db_type {
            return Err("read only with DB_TYPE=sqlite, as Push-Alt did (or set DATABASE_URL=sqlite://PATH)".into());
        }
        if v.trim().is_empty() {
            return Err("must be a file path".into());
        }
        c.database.url = Some(format!("sqlite://{}", v.trim()));
        Ok(())
    }),
    ("LOG_LEVEL", "log.level", |c, v| {
        c.log.level = v.to_owned();
        Ok(())
    }),
    ("SWITCHBOARD_LOG_FORMAT", "log.format", |c, v| {
        c.log.format = v.parse()?;
        Ok(())
    }),
    ("APP_KEY", "default_app.key", |c, v| {
        c.default_app.key = Some(v.to_owned());
        Ok(())
    }),
    ("APP_SECRET", "default_app.secret", |c, v| {
        c.default_app.secret = Some(Secret(v.to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_APP_ID", "default_app.id", |c, v| {
        c.default_app.id = Some(v.to_owned());
        Ok(())
    }),
    ("SWITCHBOARD_APP_KEY", "default_app.key", |c, v| {
        c.default_app.key = Some(v.to_owned());
        Ok(())
    }),
    ("SWITCHBOARD_APP_SECRET", "default_app.secret", |c, v| {
        c.default_app.secret = Some(Secret(v.to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_APP_NAME", "default_app.name", |c, v| {
        c.default_app.name = Some(v.to_owned());
        Ok(())
    }),
    ("SWITCHBOARD_ACTIVITY_TIMEOUT", "pusher.activity_timeout_secs", |c, v| {
        parse_into(&mut c.pusher.activity_timeout_secs, v)
    }),
    ("SWITCHBOARD_PONG_TIMEOUT", "pusher.pong_timeout_secs", |c, v| parse_into(&mut c.pusher.pong_timeout_secs, v)),
    ("JWT_SECRET", "auth.jwt_secret", |c, v| {
        c.auth.jwt_secret = Some(Secret(v.to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_TOKEN_TTL_SECS", "auth.token_ttl_secs", |c, v| parse_into(&mut c.auth.token_ttl_secs, v)),
    ("SWITCHBOARD_AUTH_REQUESTS_PER_IP", "auth.requests_per_ip", |c, v| parse_into(&mut c.auth.requests_per_ip, v)),
    ("SWITCHBOARD_FAILED_LOGINS_PER_ACCOUNT", "auth.failed_logins_per_account", |c, v| {
        parse_into(&mut c.auth.failed_logins_per_account, v)
    }),
    ("SWITCHBOARD_AUTH_WINDOW_SECS", "auth.window_secs", |c, v| parse_into(&mut c.auth.window_secs, v)),
    ("SWITCHBOARD_PUBLIC_URL", "chat.public_url", |c, v| {
        c.chat.public_url = Some(v.trim().trim_end_matches('/').to_owned()).filter(|u| !u.is_empty());
        Ok(())
    }),
    ("ENCRYPTION_KEY", "chat.encryption_key", |c, v| {
        c.chat.encryption_key = Some(Secret(v.trim().to_owned())).filter(|k| !k.0.is_empty());
        Ok(())
    }),
    ("SWITCHBOARD_CHAT_MESSAGES_PER_SECOND", "chat.messages_per_second", |c, v| {
        parse_into(&mut c.chat.messages_per_second, v)
    }),
    ("SWITCHBOARD_CHAT_MESSAGE_BURST", "chat.message_burst", |c, v| parse_into(&mut c.chat.message_burst, v)),
    ("SWITCHBOARD_REGISTRATION", "auth.registration", |c, v| {
        c.auth.registration = match v.trim() {
            "open" => Registration::Open,
            "closed" => Registration::Closed,
            _ => return Err("must be open or closed".into()),
        };
        Ok(())
    }),
    ("SWITCHBOARD_METRICS_TOKEN", "metrics.token", |c, v| {
        c.metrics.token = Some(Secret(v.to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_METRICS_ADDR", "metrics.listen", |c, v| {
        c.metrics.listen = Some(v.trim().parse().map_err(|_| "not an address such as 127.0.0.1:9100".to_owned())?);
        Ok(())
    }),
    ("SWITCHBOARD_OUTBOX_MAX_BYTES", "connection.outbox_max_bytes", |c, v| {
        parse_into(&mut c.connection.outbox_max_bytes, v)
    }),
    ("SWITCHBOARD_OUTBOX_MAX_FRAMES", "connection.outbox_max_frames", |c, v| {
        parse_into(&mut c.connection.outbox_max_frames, v)
    }),
    ("SWITCHBOARD_SOCKETIO_PING_INTERVAL_MS", "socketio.ping_interval_ms", |c, v| {
        parse_into(&mut c.socketio.ping_interval_ms, v)
    }),
    ("SWITCHBOARD_SOCKETIO_PING_TIMEOUT_MS", "socketio.ping_timeout_ms", |c, v| {
        parse_into(&mut c.socketio.ping_timeout_ms, v)
    }),
    ("SWITCHBOARD_SOCKETIO_MAX_PAYLOAD", "socketio.max_payload", |c, v| parse_into(&mut c.socketio.max_payload, v)),
    ("SWITCHBOARD_SOCKETIO_CONNECT_TIMEOUT_MS", "socketio.connect_timeout_ms", |c, v| {
        parse_into(&mut c.socketio.connect_timeout_ms, v)
    }),
    ("SWITCHBOARD_SOCKETIO_MAX_POLLING_SESSIONS", "socketio.max_polling_sessions", |c, v| {
        parse_into(&mut c.socketio.max_polling_sessions, v)
    }),
    ("SWITCHBOARD_PUSH_FCM_SERVICE_ACCOUNT", "push.fcm_service_account", |c, v| {
        c.push.fcm_service_account = Some(Secret(v.to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_PUSH_FCM_BASE_URL", "push.fcm_base_url", |c, v| {
        c.push.fcm_base_url = v.trim().to_owned();
        Ok(())
    }),
    ("SWITCHBOARD_PUSH_FCM_TOKEN_URL", "push.fcm_token_url", |c, v| {
        c.push.fcm_token_url = Some(v.trim().to_owned());
        Ok(())
    }),
    ("SWITCHBOARD_PUSH_VAPID_PRIVATE_KEY", "push.vapid_private_key", |c, v| {
        c.push.vapid_private_key = Some(Secret(v.trim().to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_PUSH_VAPID_SUBJECT", "push.vapid_subject", |c, v| {
        c.push.vapid_subject = v.trim().to_owned();
        Ok(())
    }),
    ("SWITCHBOARD_PUSH_ALLOW_LOOPBACK_HTTP", "push.allow_loopback_http", |c, v| {
        parse_into(&mut c.push.allow_loopback_http, v)
    }),
    ("SWITCHBOARD_UPLOADS_AVATAR_MAX_BYTES", "uploads.avatar_max_bytes", |c, v| {
        parse_into(&mut c.uploads.avatar_max_bytes, v)
    }),
    ("SWITCHBOARD_UPLOADS_BANNER_MAX_BYTES", "uploads.banner_max_bytes", |c, v| {
        parse_into(&mut c.uploads.banner_max_bytes, v)
    }),
    ("SWITCHBOARD_UPLOADS_PER_MINUTE", "uploads.per_account_per_minute", |c, v| {
        parse_into(&mut c.uploads.per_account_per_minute, v)
    }),
];

/// Push-Alt's `DB_TYPE=libsql` (its default): one line, exit 2 (SPEC §2).
const LIBSQL_REFUSED: &str = "libSQL is not supported; use DB_TYPE=sqlite with SQLITE_DB_PATH, or \
                              DATABASE_URL=sqlite://, postgres:// or mysql://";

/// Applies every variable `get` knows, naming the first bad one, and records which settings
/// each one set.
pub(super) fn apply(config: &mut Config, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    for (name, key, set) in ENV_VARS {
        if let Some(value) = get(name) {
            let before = config.snapshot();
            set(config, &value).map_err(|why| {
                // Secrets and URLs (which may carry a password) are never echoed back.
                let shown = if sources::shows_value(name) { format!("{value:?}") } else { "<redacted>".to_owned() };
                ConfigError(format!("{name}={shown}: {why}"))
            })?;
            let source = Source::Env { name, value };
            config.sources.set(key, source.clone());
            // SERVER_ADDR sets the port too, when it has one.
            let after = config.snapshot();
            config.sources.record_changes(&before, &after, &source);
        }
    }
    Ok(())
}

fn parse_into<T: FromStr>(field: &mut T, value: &str) -> Result<(), String> {
    *field = value.trim().parse().map_err(|_| describe::<T>())?;
    Ok(())
}

fn describe<T>() -> String {
    let ty = std::any::type_name::<T>();
    if ty.ends_with("IpAddr") {
        "not an IP address".into()
    } else if ty == "u16" {
        "not a port number (0–65535)".into()
    } else {
        "not a number".into()
    }
}

/// `HOST:PORT`, `HOST` or `[V6]:PORT`, as Notif's `SERVER_ADDR` took.
fn split_host_port(v: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(addr) = v.parse::<std::net::SocketAddr>() {
        return Ok((addr.ip(), Some(addr.port())));
    }
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    if let Some((host, port)) = v.rsplit_once(':')
        && host == "localhost"
    {
        let port = port.parse().map_err(|_| "not HOST:PORT".to_owned())?;
        return Ok((IpAddr::from([127, 0, 0, 1]), Some(port)));
    }
    Err("not HOST:PORT".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut c = Config::default();
        apply(&mut c, |n| map.get(n).cloned())?;
        Ok(c)
    }

    #[test]
    fn bad_number_names_the_variable() {
        let err = load(&[("PORT", "ten")]).unwrap_err();
        assert_eq!(err.0, "PORT=\"ten\": not a port number (0–65535)");
    }

    #[test]
    fn port_wins_over_server_addr() {
        let c = load(&[("SERVER_ADDR", "127.0.0.1:3000"), ("PORT", "4000")]).unwrap();
        assert_eq!(c.server.port, 4000);
        assert_eq!(c.server.bind, IpAddr::from([127, 0, 0, 1]));
    }

    #[test]
    fn each_setting_remembers_its_variable() {
        let c = load(&[("SERVER_ADDR", "127.0.0.1:3000"), ("SWITCHBOARD_PORT", "6001")]).unwrap();
        assert_eq!(c.sources.get("server.port"), &Source::Env { name: "SWITCHBOARD_PORT", value: "6001".into() });
        assert_eq!(c.sources.get("server.bind"), &Source::Env { name: "SERVER_ADDR", value: "127.0.0.1:3000".into() });
        assert_eq!(c.sources.get("log.level"), &Source::Default);
    }

    #[test]
    fn every_variable_names_a_real_setting() {
        let snapshot = Config::default().snapshot();
        for (name, key, _) in ENV_VARS {
            assert!(sources::lookup(&snapshot, key).is_some(), "{name} sets {key}, which is not a setting");
        }
    }

    #[test]
    fn push_alt_database_variables() {
        let c = load(&[("DB_TYPE", "sqlite"), ("SQLITE_DB_PATH", "./local.db")]).unwrap();
        assert_eq!(c.database.url.as_deref(), Some("sqlite://./local.db"));
        assert_eq!(c.sources.get("database.url"), &Source::Env { name: "SQLITE_DB_PATH", value: "./local.db".into() });
        // Push-Alt's libSQL URL beside DB_TYPE=sqlite is ignored, as Push-Alt ignored it.
        let c =
            load(&[("DATABASE_URL", "http://libsql-server:8080"), ("DB_TYPE", "sqlite"), ("SQLITE_DB_PATH", "x.db")])
                .unwrap();
        assert_eq!(c.database.url.as_deref(), Some("sqlite://x.db"));
        let c = load(&[("DATABASE_URL", "http://libsql-server:8080"), ("DB_TYPE", "sqlite")]).unwrap();
        assert_eq!(c.database.url, None, "Switchboard's own SQLite file");
        let c = load(&[("DB_TYPE", "sqlite")]).unwrap();
        assert_eq!(c.database.url, None);
        let err = load(&[("DB_TYPE", "libsql")]).unwrap_err().0;
        assert!(err.starts_with("DB_TYPE=\"libsql\": libSQL is not supported"), "{err}");
        assert!(load(&[("DB_TYPE", "mongo")]).unwrap_err().0.starts_with("DB_TYPE=\"mongo\": must be sqlite"));
        let err = load(&[("DATABASE_URL", "postgres://h/db"), ("DB_TYPE", "sqlite")]).unwrap_err().0;
        assert!(err.contains("contradicts DATABASE_URL"), "{err}");
        let err = load(&[("SQLITE_DB_PATH", "./local.db")]).unwrap_err().0;
        assert!(err.starts_with("SQLITE_DB_PATH=\"./local.db\": read only with DB_TYPE=sqlite"), "{err}");
    }

    #[test]
    fn cors_origins_are_a_comma_separated_list() {
        let c = load(&[("CORS_ORIGINS", "https://a.example, http://localhost:5173,,")]).unwrap();
        assert_eq!(c.server.cors_origins, vec!["https://a.example".to_owned(), "http://localhost:5173".to_owned()]);
    }

    #[test]
    fn secrets_are_not_echoed() {
        let c = load(&[("SWITCHBOARD_APP_SECRET", "s3cret")]).unwrap();
        assert_eq!(format!("{:?}", c.default_app.secret), "Some(<redacted>)");
    }
}
