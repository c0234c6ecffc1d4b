//! Limits of SPEC §3 and §10 on the WebSocket: names, sizes, counts.

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::ws::{Frame, assert_subscription_error, data};
use crate::support::{APP_ID, presence_auth, spawn_server, update_app};

#[tokio::test]
async fn channel_names() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let ok = ws.subscribe(&"a".repeat(164)).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    for bad in ["a".repeat(165), String::new(), "has space".into(), "slash/no".into(), "é".into(), "a#b".into()] {
        let err = ws.subscribe(&bad).await;
        assert_subscription_error(&err, &bad, "InvalidChannel", 400);
    }
    for good in ["A-Za-z0_9", "-_=@,.;", "private-x"] {
        let ok = if good.starts_with("private-") { ws.subscribe_private(good).await } else { ws.subscribe(good).await };
        assert_eq!(ok["event"], "pusher_internal:subscription_succeeded", "{good}: {ok}");
    }
    // A channel that is not a string is a protocol error, and the connection stays usable.
    let err = ws.subscribe_with(json!({"channel": 5})).await;
    assert_eq!(err["event"], "pusher:error", "{err}");
    assert_eq!(err["data"]["code"], 4300, "{err}");
    ws.assert_next_is_pong().await;
}

#[tokio::test]
async fn default_limit_is_100_channels_per_connection() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    for i in 0..100 {
        assert_eq!(ws.subscribe(&format!("c{i}")).await["event"], "pusher_internal:subscription_succeeded");
    }
    let err = ws.subscribe("c100").await;
    assert_subscription_error(&err, "c100", "LimitReached", 400);
    // Subscribing again to one already held is not a new channel.
    assert_eq!(ws.subscribe("c5").await["event"], "pusher_internal:subscription_succeeded");
    ws.send_json(json!({"event": "pusher:unsubscribe", "data": {"channel": "c0"}})).await;
    assert_eq!(ws.subscribe("c100").await["event"], "pusher_internal:subscription_succeeded");
    assert_subscription_error(&ws.subscribe("c101").await, "c101", "LimitReached", 400);
}

#[tokio::test]
async fn per_app_channel_limit() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.max_channels_per_connection = 2).await;
    let mut ws = server.connect().await;
    for ch in ["a", "b"] {
        assert_eq!(ws.subscribe(ch).await["event"], "pusher_internal:subscription_succeeded");
    }
    assert_subscription_error(&ws.subscribe("c").await, "c", "LimitReached", 400);
    // Another connection has its own two.
    let mut other = server.connect().await;
    for ch in ["c", "d"] {
        assert_eq!(other.subscribe(ch).await["event"], "pusher_internal:subscription_succeeded");
    }
    assert_subscription_error(&other.subscribe("e").await, "e", "LimitReached", 400);
}

#[tokio::test]
async fn presence_user_id_and_user_info_limits() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let sid = ws.socket_id.clone();
    let ch = "presence-limits";
    // user_id: 128 characters (not bytes); user_info: 1 KB as JSON. A JSON string of n
    // characters is n + 2 bytes.
    for cd in [
        json!({"user_id": "é".repeat(129)}).to_string(),
        json!({"user_id": "u", "user_info": "x".repeat(1023)}).to_string(),
    ] {
        let err =
            ws.subscribe_with(json!({"channel": ch, "auth": presence_auth(&sid, ch, &cd), "channel_data": cd})).await;
        assert_subscription_error(&err, ch, "InvalidChannelData", 400);
    }
    let ok = ws.subscribe_presence(ch, &"é".repeat(128), json!("x".repeat(1022))).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded", "{ok}");
    assert_eq!(data(&ok)["presence"]["hash"]["é".repeat(128)], json!("x".repeat(1022)));
}

#[tokio::test]
async fn client_event_name_and_size_limits() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe_private("private-big").await;
    b.subscribe_private("private-big").await;
    // Event names: 200 characters, counted as characters.
    let long_name = format!("client-{}", "é".repeat(194));
    a.send_json(json!({"event": long_name, "channel": "private-big", "data": {}})).await;
    a.expect_error(4300).await;
    // Data: the app's 10 KB.
    a.send_json(json!({"event": "client-big", "channel": "private-big", "data": "x".repeat(10 * 1024 + 1)})).await;
    a.expect_error(4300).await;
    server.assert_next_is_marker(&mut b, "private-big").await;
    assert_eq!(a.recv().await["event"], "marker");
    let name = format!("client-{}", "é".repeat(193));
    a.send_json(json!({"event": name, "channel": "private-big", "data": "x".repeat(10 * 1024)})).await;
    let got = b.recv().await;
    assert_eq!((got["event"].as_str(), got["data"].as_str().map(str::len)), (Some(name.as_str()), Some(10 * 1024)));
    a.assert_next_is_pong().await;
}

#[tokio::test]
async fn oversize_frame_closes_with_1009_and_others_are_unaffected() {
    let server = spawn_server().await;
    let mut other = server.connect().await;
    let mut ws = server.connect().await;
    // The app's 10 KB message limit plus the 4 KB envelope: 64 KB is far over it. The server
    // may stop reading before the whole frame is written, so the write's own result is moot.
    let _ = ws.inner.send(Message::text("x".repeat(64 * 1024))).await;
    loop {
        match ws.next().await {
            Frame::Json(_) => continue,
            Frame::Close(c) => {
                assert_eq!(c.map(|c| c.0), Some(1009), "a close frame with 1009");
                break;
            }
            other => panic!("expected a close frame with 1009, got {other:?}"),
        }
    }
    other.assert_next_is_pong().await;
    let mut again = server.connect().await;
    again.assert_next_is_pong().await;
}
