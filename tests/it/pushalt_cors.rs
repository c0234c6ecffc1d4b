//! CORS on Push-Alt's `/api/*` from the global origin list (SPEC §5): `CORS_ORIGINS` ∪ the
//! stored list (`/api/cors`) ∪ the enabled apps' allowed origins (never an app's `*`); changes
//! made on another node; preflights; refusals before any route runs. And Push-Alt's settings at
//! start: `CORS_ORIGINS`, `DB_TYPE`, `SQLITE_DB_PATH`.

use std::time::Duration;

use hyper::Method;
use serde_json::json;

use crate::pushalt_admin::{ADMIN_EMAIL, ADMIN_PASSWORD, call, login, refused, set_up};
use crate::support::binary::{Finished, Running, command, run, serve};
use crate::support::{APP_ID, APP_SECRET, Http, create_app, spawn_server, spawn_with, update_app};

const ALLOWED: &str = "https://allowed.example";
const EVIL: &str = "https://evil.example";

/// A request from `origin`: (status, `Access-Control-Allow-Origin`, body).
async fn from(
    http: &Http,
    method: Method,
    path: &str,
    origin: &str,
    extra: &[(&str, &str)],
) -> (u16, Option<String>, serde_json::Value) {
    let mut headers = vec![("origin", origin)];
    headers.extend_from_slice(extra);
    let body =
        if method == Method::POST { br#"{"email":"x@example.com","password":"nope nope"}"#.as_slice() } else { b"" };
    let (status, h, v) = http.request_full(method, path, body, &headers).await;
    (status, h.get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned()), v)
}

#[tokio::test]
async fn with_nothing_configured_any_origin_may_call() {
    let server = spawn_server().await;
    let http = server.http();
    let (status, allow, v) = from(&http, Method::POST, "/api/auth/login", "https://anywhere.example", &[]).await;
    assert_eq!((status, allow.as_deref()), (401, Some("https://anywhere.example")), "{v}");
    server.stop().await;
}

#[tokio::test]
async fn the_configured_list_rules_requests_and_preflights() {
    let server = spawn_with(|c| c.server.cors_origins = vec![ALLOWED.into()]).await;
    let http = server.http();
    // Allowed: the answer carries the origin, whatever the route answered.
    let (status, allow, _) = from(&http, Method::POST, "/api/auth/login", ALLOWED, &[]).await;
    assert_eq!((status, allow.as_deref()), (401, Some(ALLOWED)));
    let preflight =
        [("access-control-request-method", "PUT"), ("access-control-request-headers", "authorization, content-type")];
    let (status, headers, _) = http
        .request_full(Method::OPTIONS, "/api/workspaces/1", b"", &[&[("origin", ALLOWED)], &preflight[..]].concat())
        .await;
    assert_eq!(status, 204);
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert_eq!(header("access-control-allow-origin"), ALLOWED);
    assert!(header("access-control-allow-methods").contains("PUT"));
    assert!(header("access-control-allow-headers").to_lowercase().contains("authorization"));
    assert!(header("vary").contains("Origin"));
    // Refused: 403 in Push-Alt's envelope, before the route runs, without CORS headers.
    let (status, allow, v) = from(&http, Method::POST, "/api/auth/login", EVIL, &[]).await;
    assert_eq!((status, allow, v), (403, None, json!({"success": false, "message": "Origin not allowed"})));
    let (status, allow, _) = from(&http, Method::OPTIONS, "/api/workspaces", EVIL, &preflight).await;
    assert_eq!((status, allow), (403, None));
    // A refused origin's emit is not published.
    let body = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "c", "body": 1}).to_string();
    let (status, _, _) =
        http.request_full(Method::POST, "/api/message/emit", body.as_bytes(), &[("origin", EVIL)]).await;
    assert_eq!(status, 403);
    for evil in
        ["https://evilallowed.example", "http://allowed.example:8080", "null", "https://allowed.example.evil.example"]
    {
        assert_eq!(from(&http, Method::GET, "/api/setup/complete", evil, &[]).await.0, 403, "{evil}");
    }
    // No Origin: a backend, never refused here.
    assert_eq!(http.request(Method::POST, "/api/message/emit", body.as_bytes(), &[]).await.0, 200);
    // Only Push-Alt's routes: Notif's broadcast and the Pusher API are not ruled by it.
    assert_eq!(from(&http, Method::GET, "/health", EVIL, &[]).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn the_stored_list_and_apps_origins_join_the_configured_one() {
    let server = spawn_with(|c| c.server.cors_origins = vec![ALLOWED.into()]).await;
    set_up(&server).await;
    let (admin, _) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let http = server.http();
    let stored = "https://stored.example";
    assert_eq!(from(&http, Method::GET, "/api/setup/complete", stored, &[]).await.0, 403);
    let (status, v) =
        call(&server, Method::POST, "/api/cors", Some(json!({"url": "HTTPS://Stored.Example/"})), Some(&admin)).await;
    assert_eq!(
        (status, &v["message"], &v["data"]["url"]),
        (200, &json!("CORS entry added successfully"), &json!(stored)),
        "{v}"
    );
    let id = v["data"]["id"].as_i64().unwrap();
    assert_eq!(from(&http, Method::GET, "/api/setup/complete", stored, &[]).await.0, 200, "in force at once");
    refused(
        call(&server, Method::POST, "/api/cors", Some(json!({"url": stored})), Some(&admin)).await,
        409,
        "URL already exists",
    );
    for bad in [
        json!("ftp://x.example"),
        json!("stored.example"),
        json!("https://x.example/path"),
        json!(""),
        json!(5),
        json!("https://*"),
    ] {
        let (status, v) = call(&server, Method::POST, "/api/cors", Some(json!({"url": bad})), Some(&admin)).await;
        assert_eq!((status, &v["success"]), (400, &json!(false)), "{bad}: {v}");
    }
    let (_, v) = call(&server, Method::GET, "/api/cors", None, Some(&admin)).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["created_at"].as_str().unwrap().len(), 19);
    // Edit it to another origin, then delete it.
    let path = format!("/api/cors/{id}");
    let (_, v) = call(&server, Method::PUT, &path, Some(json!({"url": "https://*.moved.example"})), Some(&admin)).await;
    assert_eq!(v, json!({"success": true, "message": "CORS entry updated successfully"}));
    assert_eq!(from(&http, Method::GET, "/api/setup/complete", stored, &[]).await.0, 403);
    assert_eq!(from(&http, Method::GET, "/api/setup/complete", "https://a.moved.example", &[]).await.0, 200);
    assert_eq!(
        call(&server, Method::DELETE, &path, None, Some(&admin)).await,
        (200, json!({"success": true, "message": "CORS entry deleted successfully"}))
    );
    refused(call(&server, Method::DELETE, &path, None, Some(&admin)).await, 404, "CORS entry not found");
    refused(
        call(&server, Method::PUT, &path, Some(json!({"url": stored})), Some(&admin)).await,
        404,
        "CORS entry not found",
    );
    assert_eq!(from(&http, Method::GET, "/api/setup/complete", "https://a.moved.example", &[]).await.0, 403);
    // An app's allowed origins are in the list too.
    update_app(&server, APP_ID, |s| s.allowed_origins = vec!["https://app.example".into()]).await;
    assert_eq!(from(&http, Method::GET, "/api/setup/complete", "https://app.example", &[]).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn only_enabled_apps_origins_join_and_an_apps_star_never_does() {
    let server = spawn_with(|c| c.server.cors_origins = vec![ALLOWED.into()]).await;
    let http = server.http();
    let status = async |origin: &str| from(&http, Method::GET, "/api/setup/complete", origin, &[]).await.0;
    // A self-registered owner's `*` would open the list for every app: it adds nothing.
    update_app(&server, APP_ID, |s| s.allowed_origins = vec!["*".into()]).await;
    assert_eq!(status(EVIL).await, 403);
    create_app(&server, "second", "second-key", "second-secret").await;
    update_app(&server, "second", |s| s.allowed_origins = vec!["https://second.example".into()]).await;
    assert_eq!(status("https://second.example").await, 200);
    let disabled = switchboard::apps::set_enabled(&server.state.store, "second", false).await.unwrap();
    server.state.apps.catch_up(disabled.revision).await.unwrap();
    assert_eq!(status("https://second.example").await, 403, "a disabled app's origins leave the list");
    assert_eq!(status(ALLOWED).await, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_change_made_on_another_node_takes_effect_without_a_local_write() {
    let server = spawn_with(|c| c.server.cors_origins = vec![ALLOWED.into()]).await;
    let http = server.http();
    let other = "https://other-node.example";
    assert_eq!(from(&http, Method::GET, "/api/setup/complete", other, &[]).await.0, 403);
    // Another node writes the shared table: this node's refresh task (not a request, which a
    // client or the deadline may break off) reads it.
    server.state.store.insert_cors_origin(other, switchboard::origins::MAX_STORED).await.unwrap().unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while from(&http, Method::GET, "/api/setup/complete", other, &[]).await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(seen.is_ok(), "the change made elsewhere never took effect");
    server.stop().await;
}

fn refused_start(env: &[(&str, &str)]) -> Finished {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path(), &["serve", "--port", "0", "--data-dir", dir.path().to_str().unwrap()]);
    cmd.envs(env.iter().copied());
    let out = run(&mut cmd);
    assert_eq!(out.code, Some(2), "expected exit code 2:\n{}", out.stderr);
    out
}

#[test]
fn push_alt_settings_that_cannot_work_stop_the_start_with_one_line() {
    let out = refused_start(&[("DB_TYPE", "libsql")]);
    assert!(out.error_line().starts_with("DB_TYPE=\"libsql\": libSQL is not supported"), "{}", out.stderr);
    let out = refused_start(&[("DATABASE_URL", "libsql://db.example.turso.io")]);
    assert!(out.error_line().contains("libSQL is not supported"), "{}", out.stderr);
    let out = refused_start(&[("CORS_ORIGINS", "https://ok.example,not an origin")]);
    assert!(
        out.error_line().starts_with("CORS_ORIGINS=\"https://ok.example,not an origin\": invalid origin"),
        "{}",
        out.stderr
    );
    let out = refused_start(&[("SQLITE_DB_PATH", "./local.db")]);
    assert!(out.error_line().contains("read only with DB_TYPE=sqlite"), "{}", out.stderr);
}

#[tokio::test]
async fn db_type_sqlite_with_sqlite_db_path_is_where_the_data_goes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("local.db");
    let mut cmd = serve(dir.path(), &[]);
    cmd.env("DB_TYPE", "sqlite").env("SQLITE_DB_PATH", file.to_str().unwrap()).env("CORS_ORIGINS", ALLOWED);
    let server = Running::start(&mut cmd);
    let http = Http::new(server.addr);
    assert_eq!(from(&http, Method::GET, "/api/setup/complete", ALLOWED, &[]).await.0, 200);
    assert_eq!(from(&http, Method::GET, "/api/setup/complete", EVIL, &[]).await.0, 403);
    server.stop();
    assert!(file.is_file(), "the database is at SQLITE_DB_PATH");
    assert!(!dir.path().join("switchboard.db").exists());
}

#[tokio::test]
async fn an_app_with_legacy_open_emit_is_warned_about_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let app =
        run(command(dir.path(), &["apps", "create", "--id", "open-app", "--data-dir", data]).env("LOG_LEVEL", "warn"));
    assert_eq!(app.code, Some(0), "{}", app.stderr);
    let args = ["apps", "update", "open-app", "--switch", "legacy_open_emit=on", "--data-dir", data];
    assert_eq!(run(&mut command(dir.path(), &args)).code, Some(0));
    let mut server = Running::start(&mut serve(dir.path(), &[]));
    let line = server.wait_for("legacy_open_emit is on");
    assert!(line.contains("open-app"), "{line}");
}
