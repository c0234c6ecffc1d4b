//! The environment-variable table: seed names (PORT, DATABASE_URL, Notif's aliases) and
//! `SWITCHBOARD_*`. The one place that knows which variable sets which field.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use super::{Config, ConfigError, LogFormat, Registration, Secret};

type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// Every variable Switchboard reads, in the order they are applied (later wins).
pub const ENV_VARS: &[(&str, Setter)] = &[
    // Notif's alias first so that PORT and SWITCHBOARD_BIND win over it.
    ("SERVER_ADDR", |c, v| {
        let (host, port) = split_host_port(v)?;
        c.server.bind = host;
        if let Some(port) = port {
            c.server.port = port;
        }
        Ok(())
    }),
    ("PORT", |c, v| parse_into(&mut c.server.port, v)),
    ("SWITCHBOARD_PORT", |c, v| parse_into(&mut c.server.port, v)),
    ("SWITCHBOARD_BIND", |c, v| parse_into(&mut c.server.bind, v)),
    ("SWITCHBOARD_DATA_DIR", |c, v| {
        c.server.data_dir = PathBuf::from(v);
        Ok(())
    }),
    ("SWITCHBOARD_HANDSHAKE_TIMEOUT_MS", |c, v| parse_into(&mut c.server.handshake_timeout_ms, v)),
    ("SWITCHBOARD_MAX_HEADER_BYTES", |c, v| parse_into(&mut c.server.max_header_bytes, v)),
    ("SWITCHBOARD_REQUEST_TIMEOUT_MS", |c, v| parse_into(&mut c.server.request_timeout_ms, v)),
    ("SWITCHBOARD_MAX_CONNECTIONS_PER_IP", |c, v| parse_into(&mut c.server.max_connections_per_ip, v)),
    ("SWITCHBOARD_REQUESTS_PER_IP_PER_SECOND", |c, v| parse_into(&mut c.server.requests_per_ip_per_second, v)),
    ("SWITCHBOARD_TRUSTED_PROXIES", |c, v| {
        c.server.trusted_proxies = v.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
        Ok(())
    }),
    ("SWITCHBOARD_MAX_CONNECTIONS", |c, v| parse_into(&mut c.server.max_connections, v)),
    ("SWITCHBOARD_SHUTDOWN_GRACE_MS", |c, v| parse_into(&mut c.server.shutdown_grace_ms, v)),
    ("SWITCHBOARD_APP_REFRESH_MS", |c, v| parse_into(&mut c.server.app_refresh_ms, v)),
    ("DATABASE_URL", |c, v| {
        c.database.url = Some(v.to_owned());
        Ok(())
    }),
    ("LOG_LEVEL", |c, v| {
        c.log.level = v.to_owned();
        Ok(())
    }),
    ("SWITCHBOARD_LOG_FORMAT", |c, v| {
        c.log.format = match v {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err("must be text or json".into()),
        };
        Ok(())
    }),
    ("APP_KEY", |c, v| {
        c.default_app.key = Some(v.to_owned());
        Ok(())
    }),
    ("APP_SECRET", |c, v| {
        c.default_app.secret = Some(Secret(v.to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_APP_ID", |c, v| {
        c.default_app.id = Some(v.to_owned());
        Ok(())
    }),
    ("SWITCHBOARD_APP_KEY", |c, v| {
        c.default_app.key = Some(v.to_owned());
        Ok(())
    }),
    ("SWITCHBOARD_APP_SECRET", |c, v| {
        c.default_app.secret = Some(Secret(v.to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_APP_NAME", |c, v| {
        c.default_app.name = Some(v.to_owned());
        Ok(())
    }),
    ("SWITCHBOARD_ACTIVITY_TIMEOUT", |c, v| parse_into(&mut c.pusher.activity_timeout_secs, v)),
    ("SWITCHBOARD_PONG_TIMEOUT", |c, v| parse_into(&mut c.pusher.pong_timeout_secs, v)),
    ("JWT_SECRET", |c, v| {
        c.auth.jwt_secret = Some(Secret(v.to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_TOKEN_TTL_SECS", |c, v| parse_into(&mut c.auth.token_ttl_secs, v)),
    ("SWITCHBOARD_LOGIN_PER_MINUTE", |c, v| parse_into(&mut c.auth.login_per_minute, v)),
    ("SWITCHBOARD_REGISTER_PER_MINUTE", |c, v| parse_into(&mut c.auth.register_per_minute, v)),
    ("SWITCHBOARD_REGISTRATION", |c, v| {
        c.auth.registration = match v.trim() {
            "open" => Registration::Open,
            "closed" => Registration::Closed,
            _ => return Err("must be open or closed".into()),
        };
        Ok(())
    }),
    ("SWITCHBOARD_METRICS_TOKEN", |c, v| {
        c.metrics.token = Some(Secret(v.to_owned()));
        Ok(())
    }),
    ("SWITCHBOARD_METRICS_ADDR", |c, v| {
        c.metrics.listen = Some(v.trim().parse().map_err(|_| "not an address such as 127.0.0.1:9100".to_owned())?);
        Ok(())
    }),
    ("SWITCHBOARD_OUTBOX_MAX_BYTES", |c, v| parse_into(&mut c.connection.outbox_max_bytes, v)),
    ("SWITCHBOARD_OUTBOX_MAX_FRAMES", |c, v| parse_into(&mut c.connection.outbox_max_frames, v)),
];

/// Applies every variable `get` knows, naming the first bad one.
pub(super) fn apply(config: &mut Config, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    for (name, set) in ENV_VARS {
        if let Some(value) = get(name) {
            set(config, &value).map_err(|why| {
                // Secrets are never echoed back.
                let shown = if name.contains("SECRET") || name.contains("TOKEN") {
                    "<redacted>".to_owned()
                } else {
                    format!("{value:?}")
                };
                ConfigError(format!("{name}={shown}: {why}"))
            })?;
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
    fn secrets_are_not_echoed() {
        let c = load(&[("SWITCHBOARD_APP_SECRET", "s3cret")]).unwrap();
        assert_eq!(format!("{:?}", c.default_app.secret), "Some(<redacted>)");
    }
}
