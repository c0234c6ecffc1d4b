//! Who may reach what (issue 14, items 11–13), with the binary started as an operator would:
//! forwarding headers believed only from `trusted_proxies`, probes never rate-limited, closed
//! registration, `/metrics` behind a token or on its own address, and the audit lines security
//! refusals and app changes leave in the log.

use hyper::Method;
use serde_json::json;

use std::path::Path;

use crate::support::Http;
use crate::support::binary::{Running, command, run, serve};

/// The server with extra environment variables, its data in `dir`.
fn start(dir: &Path, env: &[(&str, &str)]) -> Running {
    let mut cmd = serve(dir, &[]);
    cmd.envs(env.iter().copied());
    Running::start(&mut cmd)
}

/// `switchboard ARGS` on the server's data dir; (success, stdout, stderr).
fn cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = command(dir, args);
    cmd.arg("--data-dir").arg(dir).env("LOG_LEVEL", "warn").envs(env.iter().copied());
    let out = run(&mut cmd);
    (out.code == Some(0), out.stdout, out.stderr)
}

async fn get_from(http: &Http, path: &str, forwarded_for: &str) -> u16 {
    http.request(Method::GET, path, b"", &[("x-forwarded-for", forwarded_for)]).await.0
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_an_untrusted_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let env =
        [("SWITCHBOARD_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"), ("SWITCHBOARD_REQUESTS_PER_IP_PER_SECOND", "2")];
    let mut bin = start(dir.path(), &env);
    let http = Http::new(bin.addr);
    // Each forwarded client has its own budget.
    assert_eq!(get_from(&http, "/notifmoo.js", "203.0.113.1").await, 200);
    assert_eq!(get_from(&http, "/notifmoo.js", "203.0.113.1").await, 200);
    assert_eq!(get_from(&http, "/notifmoo.js", "203.0.113.1").await, 429);
    assert_eq!(get_from(&http, "/notifmoo.js", "198.51.100.7, 10.1.1.1").await, 200, "another client, via two proxies");
    // A `Forwarded` the client forged (the proxy passes it on) is not read: still 203.0.113.1.
    let forged = [("x-forwarded-for", "203.0.113.1"), ("forwarded", "for=6.6.6.6")];
    assert_eq!(http.request(Method::GET, "/notifmoo.js", b"", &forged).await.0, 429);
    // A load balancer's probes are never limited.
    for _ in 0..5 {
        assert_eq!(get_from(&http, "/health", "203.0.113.1").await, 200);
        assert_eq!(get_from(&http, "/metrics", "203.0.113.1").await, 200);
    }
    // The log names the forwarded client, not the proxy.
    let line = bin.wait_for("refused: rate_limited");
    assert!(line.contains("client=203.0.113.1"), "{line}");

    // The same headers from a peer that is not a trusted proxy are ignored: one budget.
    let dir = tempfile::tempdir().unwrap();
    let env = [("SWITCHBOARD_TRUSTED_PROXIES", "10.0.0.0/8"), ("SWITCHBOARD_REQUESTS_PER_IP_PER_SECOND", "2")];
    let bin = start(dir.path(), &env);
    let http = Http::new(bin.addr);
    assert_eq!(get_from(&http, "/notifmoo.js", "203.0.113.1").await, 200);
    assert_eq!(get_from(&http, "/notifmoo.js", "203.0.113.2").await, 200);
    assert_eq!(get_from(&http, "/notifmoo.js", "203.0.113.3").await, 429, "a client picked its own address");
}

#[tokio::test]
async fn closed_registration_leaves_account_creation_to_setup_and_admins() {
    let dir = tempfile::tempdir().unwrap();
    let bin = start(dir.path(), &[("SWITCHBOARD_REGISTRATION", "closed")]);
    let http = Http::new(bin.addr);
    let newcomer = json!({"username": "newcomer", "password": "password-123"});
    let (s, b) = http.json(Method::POST, "/auth/register", Some(newcomer.clone()), None).await;
    assert_eq!((s, b), (403, json!({"error": "Registration is closed; an administrator creates accounts."})));
    assert_eq!(http.json(Method::POST, "/register", Some(newcomer.clone()), None).await.0, 403);
    // Setup still creates the first admin, who can create accounts.
    let (ok, _, err) =
        cli(dir.path(), &["setup", "--username", "root"], &[("SWITCHBOARD_ADMIN_PASSWORD", "admin-password-1")]);
    assert!(ok, "{err}");
    let login = json!({"username": "root", "password": "admin-password-1"});
    let (s, b) = http.json(Method::POST, "/auth/login", Some(login), None).await;
    assert_eq!(s, 200, "{b}");
    let admin = b["token"].as_str().unwrap().to_owned();
    let (s, b) = http.json(Method::POST, "/auth/register", Some(newcomer.clone()), Some(&admin)).await;
    assert_eq!(s, 201, "{b}");
    // An account that is not an admin cannot.
    let user = b["token"].as_str().unwrap().to_owned();
    let other = json!({"username": "another", "password": "password-123"});
    assert_eq!(http.json(Method::POST, "/auth/register", Some(other), Some(&user)).await.0, 403);
    let (s, _) = http.json(Method::POST, "/auth/login", Some(newcomer), None).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn metrics_behind_a_token_or_on_their_own_address() {
    let token = "metrics-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let bin = start(dir.path(), &[("SWITCHBOARD_METRICS_TOKEN", token)]);
    let http = Http::new(bin.addr);
    let (s, h, b) = http.request_full(Method::GET, "/metrics", b"", &[]).await;
    assert_eq!((s, b), (401, json!({"error": "metrics need the bearer token"})));
    assert_eq!(h["www-authenticate"], "Bearer");
    let wrong = http.request(Method::GET, "/metrics", b"", &[("authorization", "Bearer nope")]).await;
    assert_eq!(wrong.0, 401);
    let bearer = format!("Bearer {token}");
    let (s, b) = http.request(Method::GET, "/metrics", b"", &[("authorization", &bearer)]).await;
    assert_eq!(s, 200);
    assert!(b.as_str().unwrap().contains("switchboard_http_requests_total"));

    let other = tempfile::tempdir().unwrap();
    let mut bin = start(other.path(), &[("SWITCHBOARD_METRICS_ADDR", "127.0.0.1:0")]);
    let line = bin.wait_for("metrics on http://");
    let addr = line.split("metrics on http://").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();
    assert_eq!(Http::new(bin.addr).get("/metrics").await.0, 404, "not on the public port");
    let (s, b) = Http::new(addr).get("/metrics").await;
    assert_eq!(s, 200);
    assert!(b.as_str().unwrap().contains("switchboard_"));
    assert_eq!(Http::new(addr).get("/health").await.0, 404, "the metrics address serves metrics only");
}

#[tokio::test]
async fn security_refusals_and_app_changes_are_logged_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut bin = start(dir.path(), &[]);
    let http = Http::new(bin.addr);
    let (s, _) = http
        .json(Method::POST, "/auth/login", Some(json!({"username": "mallory", "password": "guess-123"})), None)
        .await;
    assert_eq!(s, 401);
    let line = bin.wait_for("refused: failed_login");
    assert!(line.contains("client=127.0.0.1") && line.contains("mallory"), "{line}");
    assert!(!line.contains("guess-123"), "a password in the log: {line}");
    let (s, _) = http
        .request(
            Method::POST,
            "/apps/app-1/events?auth_key=key-1&auth_timestamp=1&auth_version=1.0&auth_signature=00",
            b"",
            &[],
        )
        .await;
    assert_eq!(s, 401);
    let line = bin.wait_for("refused: bad_signature");
    assert!(line.contains("app-1"), "{line}");
    let (s, _) = http.request(Method::POST, "/api/broadcast", b"{}", &[("x-app-key", "not-the-secret")]).await;
    assert_eq!(s, 401);
    let line = bin.wait_for("refused: unknown_key");
    assert!(!line.contains("not-the-secret"), "a presented secret in the log: {line}");
    let (ok, out, err) = cli(dir.path(), &["apps", "create", "--id", "logged-app"], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("logged-app"));
    let (ok, _, err) = cli(dir.path(), &["apps", "rotate-secret", "logged-app"], &[]);
    assert!(ok, "{err}");
    // The CLI's own log carries the change (its stderr); the server's shows it was refreshed.
    let (ok, _, err) = cli(dir.path(), &["apps", "delete", "logged-app"], &[("LOG_LEVEL", "info")]);
    assert!(ok, "{err}");
    assert!(err.contains("app deleted") && err.contains("logged-app"), "{err}");
}
