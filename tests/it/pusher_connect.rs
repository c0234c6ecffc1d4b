//! Connecting: connection_established, every refusal close code, ping/pong, activity timeout.

use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::ws::{Frame, Ws, data};
use crate::support::{APP_ID, APP_KEY, spawn_server, spawn_with, update_app};

#[tokio::test]
async fn connection_established_carries_socket_id_and_activity_timeout() {
    let server = spawn_server().await;
    let mut ws = Ws::connect_raw(&server.ws_url(APP_KEY)).await;
    let msg = ws.recv().await;
    assert_eq!(msg["event"], "pusher:connection_established");
    assert!(msg["data"].is_string(), "data is a JSON-encoded string, as Pusher sends it");
    let d = data(&msg);
    assert_eq!(d.as_object().map(|o| o.len()), Some(2), "socket_id and activity_timeout only: {d}");
    let socket_id = d["socket_id"].as_str().unwrap();
    let (a, b) = socket_id.split_once('.').unwrap();
    assert!(a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()), "{socket_id}");
    assert_eq!(d["activity_timeout"], 120);
    let other = server.connect().await;
    assert_ne!(other.socket_id, socket_id, "socket ids are unique");
}

#[tokio::test]
async fn unknown_key_gets_4001() {
    let server = spawn_server().await;
    let mut ws = Ws::connect_raw(&server.ws_url("nope")).await;
    ws.expect_refusal(4001).await;
}

#[tokio::test]
async fn protocol_version_checks() {
    let server = spawn_server().await;
    for (query, code) in [
        ("", 4008),
        ("?client=js&version=8", 4008),
        ("?protocol=abc", 4006),
        ("?protocol=", 4006),
        ("?protocol=3", 4007),
        ("?protocol=8", 4007),
        ("?protocol=99", 4007),
    ] {
        let mut ws = Ws::connect_raw(&format!("ws://{}/app/{APP_KEY}{query}", server.addr)).await;
        ws.expect_refusal(code).await;
    }
    // Protocols 4 to 7 are served.
    for v in [4, 5, 6, 7] {
        let mut ws = Ws::connect_established(&format!("ws://{}/app/{APP_KEY}?protocol={v}", server.addr)).await;
        ws.assert_next_is_pong().await;
    }
}

#[tokio::test]
async fn unknown_path_gets_4005() {
    let server = spawn_server().await;
    for path in [
        format!("/app/{APP_KEY}/extra"),
        format!("/app/{APP_KEY}/extra/more"),
        format!("/app/{APP_KEY}/"),
        "/app".to_owned(),
        "/app/".to_owned(),
    ] {
        let mut ws = Ws::connect_raw(&format!("ws://{}{path}?protocol=7", server.addr)).await;
        ws.expect_refusal(4005).await;
    }
}

#[tokio::test]
async fn disabled_app_gets_4003_and_live_connections_close() {
    let server = spawn_server().await;
    let mut live = server.connect().await;
    switchboard::apps::set_enabled(&server.state.store, APP_ID, false).await.unwrap();
    server.refresh_apps().await;
    live.expect_error_and_close(4003).await;
    let mut ws = Ws::connect_raw(&server.ws_url(APP_KEY)).await;
    ws.expect_refusal(4003).await;
}

#[tokio::test]
async fn over_quota_gets_4004() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.max_connections = 2).await;
    let _a = server.connect().await;
    let b = server.connect().await;
    let mut c = Ws::connect_raw(&server.ws_url(APP_KEY)).await;
    c.expect_refusal(4004).await;
    // A slot frees when a connection leaves (close returns once the server let it go), and
    // only that one.
    b.close().await;
    let mut d = Ws::connect_raw(&server.ws_url(APP_KEY)).await;
    assert_eq!(d.recv().await["event"], "pusher:connection_established", "a freed slot admits a new connection");
    Ws::connect_raw(&server.ws_url(APP_KEY)).await.expect_refusal(4004).await;
}

#[tokio::test]
async fn origin_not_allowed_gets_4009() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.allowed_origins = vec!["*.example.com".into()]).await;
    let connect_from = |origin: Option<&'static str>| {
        let mut req = server.ws_url(APP_KEY).into_client_request().unwrap();
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        async move { tokio_tungstenite::connect_async(req).await.unwrap().0 }
    };
    for bad in [None, Some("https://evilexample.com"), Some("https://example.com.evil.com")] {
        let inner = connect_from(bad).await;
        let mut ws = Ws { inner, socket_id: String::new() };
        ws.expect_refusal(4009).await;
    }
    for good in ["https://example.com", "http://app.example.com"] {
        let inner = connect_from(Some(good)).await;
        let mut ws = Ws { inner, socket_id: String::new() };
        assert_eq!(ws.recv().await["event"], "pusher:connection_established");
    }
}

#[tokio::test]
async fn ping_pong() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    ws.send_json(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(ws.recv().await, json!({"event": "pusher:pong", "data": {}}), "data is an object, as documented");
}

#[tokio::test]
async fn idle_connection_is_pinged_then_closed_with_4201() {
    let defaults = switchboard::config::Config::default();
    assert_eq!((defaults.pusher.activity_timeout_secs, defaults.pusher.pong_timeout_secs), (120, 30));
    let server = spawn_with(|c| {
        c.pusher.activity_timeout_secs = 1;
        c.pusher.pong_timeout_secs = 1;
    })
    .await;
    let mut ws = server.connect().await;
    // The client answers the first ping and stays connected. The server's ping carries an
    // object, as the protocol document shows it.
    let ping = ws.recv().await;
    assert_eq!(ping, json!({"event": "pusher:ping", "data": {}}));
    ws.send_json(json!({"event": "pusher:pong", "data": {}})).await;
    // ...then stays silent: pinged again, and closed with 4201.
    assert_eq!(ws.recv().await, json!({"event": "pusher:ping", "data": {}}));
    match ws.next().await {
        Frame::Close(Some((code, _))) => assert_eq!(code, 4201),
        other => panic!("expected a close with 4201, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_http_get_on_the_websocket_path_is_a_json_400() {
    let server = spawn_server().await;
    let (status, body) = server.http().get(&format!("/app/{APP_KEY}?protocol=7")).await;
    assert_eq!(status, 400);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn client_close_is_answered() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    use futures_util::SinkExt;
    ws.inner
        .send(tokio_tungstenite::tungstenite::Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame { code: 1000.into(), reason: "bye".into() },
        )))
        .await
        .unwrap();
    match ws.next().await {
        Frame::Close(Some((code, _))) => assert_eq!(code, 1000),
        other => panic!("expected the server's close reply, got {other:?}"),
    }
}
