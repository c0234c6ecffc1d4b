//! Limits of SPEC §3 and §10 on the WebSocket: names, sizes, counts.

use serde_json::{Value, json};

use crate::support::ws::Frame;
use crate::support::{APP_ID, presence_auth, spawn_server, update_app};

#[tokio::test]
async fn channel_names() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let ok = ws.subscribe(&"a".repeat(164)).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    for bad in ["a".repeat(165), String::new(), "has space".into(), "slash/no".into(), "é".into()] {
        let err = ws.subscribe(&bad).await;
        assert_eq!(err["event"], "pusher:subscription_error", "{bad:?}");
        assert_eq!(err["data"]["status"], 400);
    }
    // A channel that is not a string is a protocol error, and the connection stays usable.
    ws.subscribe_with(json!({"channel": 5})).await;
    ws.assert_alive().await;
}

#[tokio::test]
async fn default_limit_is_100_channels_per_connection() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    for i in 0..100 {
        assert_eq!(ws.subscribe(&format!("c{i}")).await["event"], "pusher_internal:subscription_succeeded");
    }
    let err = ws.subscribe("c100").await;
    assert_eq!(err["event"], "pusher:subscription_error");
    assert_eq!(err["data"]["type"], "LimitReached");
    // Subscribing again to one already held is not a new channel.
    assert_eq!(ws.subscribe("c5").await["event"], "pusher_internal:subscription_succeeded");
    ws.send_json(json!({"event": "pusher:unsubscribe", "data": {"channel": "c0"}})).await;
    assert_eq!(ws.subscribe("c100").await["event"], "pusher_internal:subscription_succeeded");
}

#[tokio::test]
async fn per_app_channel_limit() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.max_channels_per_connection = 2).await;
    let mut ws = server.connect().await;
    ws.subscribe("a").await;
    ws.subscribe("b").await;
    assert_eq!(ws.subscribe("c").await["event"], "pusher:subscription_error");
}

#[tokio::test]
async fn presence_user_id_and_user_info_limits() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let sid = ws.socket_id.clone();
    let ch = "presence-limits";
    for cd in [
        json!({"user_id": "u".repeat(129)}).to_string(),
        json!({"user_id": "u", "user_info": {"bio": "x".repeat(1100)}}).to_string(),
    ] {
        let err =
            ws.subscribe_with(json!({"channel": ch, "auth": presence_auth(&sid, ch, &cd), "channel_data": cd})).await;
        assert_eq!(err["event"], "pusher:subscription_error");
        assert_eq!(err["data"]["status"], 400);
    }
    let ok = ws.subscribe_presence(ch, &"u".repeat(128), json!({"bio": "x".repeat(900)})).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
}

#[tokio::test]
async fn client_event_name_and_size_limits() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe_private("private-big").await;
    b.subscribe_private("private-big").await;
    let long_name = format!("client-{}", "x".repeat(200));
    a.send_json(json!({"event": long_name, "channel": "private-big", "data": {}})).await;
    assert_eq!(a.recv().await["event"], "pusher:error");
    a.send_json(json!({"event": "client-big", "channel": "private-big", "data": "x".repeat(10 * 1024 + 1)})).await;
    assert_eq!(a.recv().await["event"], "pusher:error");
    b.assert_silent(200).await;
    a.send_json(json!({"event": "client-big", "channel": "private-big", "data": "x".repeat(10 * 1024)})).await;
    assert_eq!(b.recv().await["event"], "client-big");
}

#[tokio::test]
async fn oversize_frame_closes_with_1009_and_others_are_unaffected() {
    let server = spawn_server().await;
    let mut other = server.connect().await;
    let mut ws = server.connect().await;
    ws.send_text(&"x".repeat(64 * 1024)).await;
    loop {
        match ws.next().await {
            Frame::Json(_) => continue,
            Frame::Close(c) => {
                assert_eq!(c.map(|c| c.0), Some(1009));
                break;
            }
            Frame::Ended | Frame::Error(_) => break,
        }
    }
    other.assert_alive().await;
    let mut again = server.connect().await;
    again.assert_alive().await;
    let _ = Value::Null;
}
