//! The CLI changing apps while the server runs (shared SQLite file), and start-up errors.

use std::process::Command;
use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};

use crate::support::http::now;
use crate::support::{APP_ID, APP_KEY, APP_SECRET, TestServer, Ws, spawn_server};

fn cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .arg("--data-dir")
        .arg(server.dir.path())
        .env("LOG_LEVEL", "warn")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..40 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the change did not take effect within 4 s");
}

#[tokio::test]
async fn cli_changes_take_effect_on_the_running_server() {
    let server = spawn_server().await;
    let http = server.http();
    let body = json!({"name": "e", "channel": "c", "data": "d"}).to_string();
    let path = format!("/apps/{APP_ID}/events");

    // rotate-secret: the old secret stops working, the printed one works.
    let (ok, new_secret, err) = cli(&server, &["apps", "rotate-secret", APP_ID]);
    assert!(ok, "{err}");
    let new_secret = new_secret.trim().to_owned();
    assert_ne!(new_secret, APP_SECRET);
    eventually(async || http.signed_as(APP_KEY, APP_SECRET, Method::POST, &path, &body, &[], now()).await.0 == 401)
        .await;
    assert_eq!(http.signed_as(APP_KEY, &new_secret, Method::POST, &path, &body, &[], now()).await.0, 200);

    // create: the new key connects.
    let (ok, out, err) = cli(&server, &["apps", "create", "--id", "cli-app", "--key", "cli-key", "--name", "From CLI"]);
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["key"], "cli-key");
    let url = server.ws_url("cli-key");
    eventually(async || {
        let mut ws = Ws::connect_raw(&url).await;
        matches!(ws.next().await, crate::support::ws::Frame::Json(v) if v["event"] == "pusher:connection_established")
    })
    .await;

    // list shows both.
    let (ok, out, _) = cli(&server, &["apps", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);

    // disable: live connections close with 4003 at the next refresh of the app cache (every
    // 500 ms by default, so within a second); new ones are refused.
    assert_eq!(switchboard::config::Config::default().server.app_refresh_ms, 500);
    let mut live = server.connect().await;
    let (ok, _, err) = cli(&server, &["apps", "disable", APP_ID]);
    assert!(ok, "{err}");
    live.expect_error_and_close(4003).await;
    Ws::connect_raw(&server.ws_url(APP_KEY)).await.expect_refusal(4003).await;
    let (ok, _, _) = cli(&server, &["apps", "enable", APP_ID]);
    assert!(ok);
    eventually(async || {
        let mut ws = Ws::connect_raw(&server.ws_url(APP_KEY)).await;
        matches!(ws.next().await, crate::support::ws::Frame::Json(v) if v["event"] == "pusher:connection_established")
    })
    .await;

    // delete: connections of the deleted app close; its key is unknown afterwards.
    let mut doomed = Ws::connect_established(&url).await;
    let (ok, _, err) = cli(&server, &["apps", "delete", "cli-app"]);
    assert!(ok, "{err}");
    doomed.expect_error_and_close(4003).await;
    let mut ws = Ws::connect_raw(&url).await;
    ws.expect_refusal(4001).await;

    // Errors are one line on stderr with a failing exit status.
    let (ok, _, err) = cli(&server, &["apps", "delete", "no-such-app"]);
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");
}

fn serve_exit(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("serve").args(args).arg("--data-dir").arg(dir.path()).env_remove("DATABASE_URL").env_remove("PORT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_settings_stop_startup_with_exit_code_2_and_one_line() {
    for (env, needle) in [
        (vec![("PORT", "ten")], "PORT"),
        (vec![("SWITCHBOARD_BIND", "nowhere")], "SWITCHBOARD_BIND"),
        (vec![("DATABASE_URL", "libsql://db.example")], "libSQL"),
        (vec![("DATABASE_URL", "oracle://x")], "DATABASE_URL"),
        (vec![("LOG_LEVEL", "[[[")], "LOG_LEVEL"),
        (vec![("SWITCHBOARD_ACTIVITY_TIMEOUT", "-1")], "SWITCHBOARD_ACTIVITY_TIMEOUT"),
    ] {
        let (code, stderr) = serve_exit(&env, &[]);
        assert_eq!(code, Some(2), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nprot = 1\n").unwrap();
    let (code, stderr) = serve_exit(&[], &["--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("prot"), "{stderr}");
}
