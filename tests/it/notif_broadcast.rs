//! `POST /api/broadcast` (SPEC §4): secret or Pusher signature, the public key refused unless
//! `legacy_key_publish`, JSON errors only; one channel space across Pusher and Notif clients
//! (SPEC §1); and `/notifmoo.js` being served.

use hyper::Method;
use serde_json::{Value, json};

use crate::notif_client::{Notif, broadcast};
use crate::support::ws::data;
use crate::support::{APP_ID, APP_KEY, APP_SECRET, TestServer, create_app, spawn_server, update_app};

async fn post(server: &TestServer, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    server.http().request(Method::POST, "/api/broadcast", body.as_bytes(), headers).await
}

const BODY: &str = r#"{"channel":"news","event":"e","data":{"a":1}}"#;

#[tokio::test]
async fn secret_publishes_and_counts_subscribed_sockets() {
    let server = spawn_server().await;
    let mut a = Notif::connect(&server).await;
    let mut b = Notif::connect(&server).await;
    let mut p = server.connect().await;
    a.subscribe("news").await;
    b.subscribe("news").await;
    p.subscribe("news").await;
    let (status, body) = post(&server, BODY, &[("x-app-key", APP_SECRET)]).await;
    assert_eq!((status, body), (200, json!({"ok": true, "channel": "news", "event": "e", "subscriber_count": 3})));
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.recv().await, json!({"event": "e", "channel": "news", "data": {"a": 1}}));
    }
    assert_eq!(data(&p.expect_event("e").await), json!({"a": 1}));
    // Another app's subscribers are not counted or reached.
    create_app(&server, "app-2", "key-2", "secret-2").await;
    let (status, body) = post(&server, BODY, &[("x-app-key", "secret-2")]).await;
    assert_eq!((status, &body["subscriber_count"]), (200, &json!(0)), "{body}");
    a.assert_next_is_marker(&server, "news").await;
}

#[tokio::test]
async fn key_refusals() {
    let server = spawn_server().await;
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[], "invalid or missing x-app-key"),
        (&[("x-app-key", "")], "invalid or missing x-app-key"),
        (&[("x-app-key", "nope")], "invalid or inactive x-app-key"),
        (&[("x-app-key", "' OR '1'='1")], "invalid or inactive x-app-key"),
        (&[("x-app-key", APP_KEY)], "x-app-key must be the app secret; the public key cannot publish"),
    ];
    for (headers, error) in cases {
        assert_eq!(post(&server, BODY, headers).await, (401, json!({"error": error})), "{headers:?}");
    }
    switchboard::apps::set_enabled(&server.state.store, APP_ID, false).await.unwrap();
    server.refresh_apps().await;
    assert_eq!(
        post(&server, BODY, &[("x-app-key", APP_SECRET)]).await,
        (401, json!({"error": "invalid or inactive x-app-key"}))
    );
}

#[tokio::test]
async fn public_key_publishes_only_with_legacy_key_publish() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    ws.subscribe("news").await;
    update_app(&server, APP_ID, |s| s.switches.legacy_key_publish = true).await;
    let (status, body) = post(&server, BODY, &[("x-app-key", APP_KEY)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subscriber_count"], 1);
    assert_eq!(ws.recv().await["data"], json!({"a": 1}));
}

#[tokio::test]
async fn pusher_signed_requests_publish() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    ws.subscribe("news").await;
    let (status, body) = server.http().signed(Method::POST, "/api/broadcast", BODY, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ws.recv().await["data"], json!({"a": 1}));
    let now = crate::support::http::now();
    let (status, body) =
        server.http().signed_as(APP_KEY, "wrong", Method::POST, "/api/broadcast", BODY, &[], now).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string());
    let (status, body) =
        server.http().signed_as("nope", APP_SECRET, Method::POST, "/api/broadcast", BODY, &[], now).await;
    assert_eq!((status, body), (401, json!({"error": "invalid or inactive auth_key"})));
    let (status, _) =
        server.http().signed_as(APP_KEY, APP_SECRET, Method::POST, "/api/broadcast", BODY, &[], now - 3600).await;
    assert_eq!(status, 401, "stale timestamp");
}

#[tokio::test]
async fn bad_bodies_are_json_errors() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.max_message_bytes = 1000).await;
    let key = [("x-app-key", APP_SECRET)];
    let cases = [
        ("", 400),
        ("not json", 400),
        ("[1,2]", 400),
        (r#"{"event":"e","data":1}"#, 400),
        (r#"{"channel":"news","data":1}"#, 400),
        (r#"{"channel":5,"event":"e"}"#, 400),
        (r#"{"channel":"news","event":5}"#, 400),
        (r#"{"channel":"bad channel","event":"e"}"#, 400),
        (r#"{"channel":"news","event":""}"#, 400),
        (r#"{"channel":"news","event":"pusher_internal:member_added","data":{}}"#, 400),
        (r#"{"channel":"'; DROP TABLE apps; --","event":"e"}"#, 400),
    ];
    for (body, want) in cases {
        let (status, v) = post(&server, body, &key).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(v["error"].is_string(), "{body}: {v}");
    }
    let long_channel = json!({"channel": "a".repeat(165), "event": "e"}).to_string();
    assert_eq!(post(&server, &long_channel, &key).await.0, 400);
    let long_event = json!({"channel": "news", "event": "e".repeat(201)}).to_string();
    assert_eq!(post(&server, &long_event, &key).await.0, 400);
    let big = json!({"channel": "news", "event": "e", "data": "x".repeat(2000)}).to_string();
    let (status, v) = post(&server, &big, &key).await;
    assert_eq!(status, 413, "{v}");
    assert!(v["error"].is_string());
    // Missing data is null; a SQL-looking payload is only data.
    let (status, _) = post(&server, r#"{"channel":"news","event":"e"}"#, &key).await;
    assert_eq!(status, 200);
    let sql = json!({"channel": "news", "event": "'; DROP TABLE apps; --", "data": "' OR 1=1"}).to_string();
    assert_eq!(post(&server, &sql, &key).await.0, 200);
    let (status, v) = server.http().get("/api/broadcast").await;
    assert_eq!(status, 405);
    assert!(v["error"].is_string(), "{v}");
}

#[tokio::test]
async fn broker_down_is_503_json() {
    let server = spawn_server().await;
    server.broker.set_down(true);
    let (status, v) = post(&server, BODY, &[("x-app-key", APP_SECRET)]).await;
    assert_eq!(status, 503);
    assert!(v["error"].is_string(), "{v}");
    server.broker.set_down(false);
    assert_eq!(post(&server, BODY, &[("x-app-key", APP_SECRET)]).await.0, 200);
}

#[tokio::test]
async fn rate_limited_with_the_apps_api_limit() {
    const RATE: u32 = 2;
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.api_requests_per_second = RATE).await;
    let http = server.http();
    let started = std::time::Instant::now();
    let mut admitted = 0;
    let (headers, body) = loop {
        assert!(admitted <= 10 * RATE as usize, "never refused after {admitted} requests");
        let (status, headers, body) =
            http.request_full(Method::POST, "/api/broadcast", BODY.as_bytes(), &[("x-app-key", APP_SECRET)]).await;
        match status {
            200 => admitted += 1,
            429 => break (headers, body),
            other => panic!("{other} {body}"),
        }
    };
    let window = crate::support::bucket_admits(RATE, RATE, started.elapsed());
    assert!(window.contains(&admitted), "admitted {admitted}, the bucket allows {window:?}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("Too many requests")), "{body}");
    // A token comes back within 1/RATE s: the wait in whole seconds is 1.
    assert_eq!(crate::support::retry_after(&headers), 1);
}

/// One channel space across transports (SPEC §1), each client in its own data form.
#[tokio::test]
async fn one_publish_reaches_pusher_and_notif_clients_in_their_forms() {
    let server = spawn_server().await;
    let mut n = Notif::connect(&server).await;
    let mut p = server.connect().await;
    n.subscribe("shared").await;
    p.subscribe("shared").await;

    // /api/broadcast: Notif gets the value, Pusher the value JSON-encoded in a string.
    let (_, body) = broadcast(&server, json!({"channel": "shared", "event": "b", "data": {"x": [1, "two"]}})).await;
    assert_eq!(body["subscriber_count"], 2);
    assert_eq!(n.recv().await, json!({"event": "b", "channel": "shared", "data": {"x": [1, "two"]}}));
    let f = p.expect_event("b").await;
    assert!(f["data"].is_string(), "{f}");
    assert_eq!(data(&f), json!({"x": [1, "two"]}));
    // A JSON string stays a string for Notif.
    broadcast(&server, json!({"channel": "shared", "event": "s", "data": "123"})).await;
    assert_eq!(n.recv().await["data"], "123");
    assert_eq!(data(&p.expect_event("s").await), "123");

    // A Pusher trigger: the string is parsed for Notif when it parses, else sent as a string.
    let (status, _) = server.http().trigger(json!({"name": "t", "channel": "shared", "data": "{\"k\":true}"})).await;
    assert_eq!(status, 200);
    assert_eq!(n.recv().await, json!({"event": "t", "channel": "shared", "data": {"k": true}}));
    assert_eq!(p.expect_event("t").await["data"], "{\"k\":true}");
    server.http().trigger(json!({"name": "t", "channel": "shared", "data": "plain text"})).await;
    assert_eq!(n.recv().await["data"], "plain text");
    assert_eq!(p.expect_event("t").await["data"], "plain text");
}

#[tokio::test]
async fn notifmoo_js_is_served_as_javascript() {
    let server = spawn_server().await;
    let (status, body) = server.http().get("/notifmoo.js").await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap();
    assert!(text.contains("NotifMoo") && text.contains("/ws?api_key="), "{}", &text[..200]);
    let (parts, _) = raw_get(&server, "/notifmoo.js").await;
    assert!(parts.starts_with("application/javascript"), "{parts}");
}

async fn raw_get(server: &TestServer, path: &str) -> (String, u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let content_type = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_owned))
        .unwrap_or_default();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (content_type, status)
}
