//! Hostile input: arbitrary frames and requests never hurt the connection or the server.

use hyper::Method;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::support::{APP_ID, spawn_server};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("pusher:subscribe"),
            Just("pusher:unsubscribe"),
            Just("pusher:signin"),
            Just("pusher:ping"),
            Just("client-x"),
            Just("pusher_internal:member_added"),
            Just("private-a"),
            Just("presence-a"),
            Just("channel"),
            Just("auth"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("event".to_owned()),
                    Just("data".to_owned()),
                    Just("channel".to_owned()),
                    Just("auth".to_owned()),
                    Just("channel_data".to_owned()),
                    ".{0,8}".prop_map(|s| s)
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Frames shaped like Pusher messages, with arbitrary parts.
fn arb_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        arb_json().prop_map(|v| v.to_string()),
        (
            prop_oneof![
                Just("pusher:subscribe".to_owned()),
                Just("pusher:signin".to_owned()),
                Just("client-a".to_owned()),
                Just("pusher:unsubscribe".to_owned()),
                ".{0,20}"
            ],
            arb_json(),
            arb_json()
        )
            .prop_map(|(e, d, c)| json!({"event": e, "data": d, "channel": c}).to_string()),
    ]
}

#[tokio::test]
async fn arbitrary_frames_get_errors_and_leave_the_connection_usable() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_frame();
    for _ in 0..400 {
        let frame = strategy.new_tree(&mut runner).unwrap().current();
        ws.send_text(&frame).await;
    }
    ws.assert_alive().await;
    // Fixed nasties too.
    for nasty in [
        "{",
        "null",
        "[]",
        "\"str\"",
        "{\"event\":null}",
        "{\"event\":\"pusher:subscribe\"}",
        "{\"event\":\"pusher:subscribe\",\"data\":\"{\\\"channel\\\":\"}",
    ] {
        ws.send_text(nasty).await;
        let reply = ws.recv().await;
        assert_eq!(reply["event"], "pusher:error", "{nasty}");
        assert!(reply["data"]["message"].is_string());
    }
    ws.assert_alive().await;
    let mut fresh = server.connect().await;
    fresh.assert_alive().await;
}

#[tokio::test]
async fn binary_and_unknown_frames() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    use futures_util::SinkExt;
    ws.inner.send(tokio_tungstenite::tungstenite::Message::binary(vec![0u8, 159, 146, 150])).await.unwrap();
    assert_eq!(ws.recv().await["event"], "pusher:error");
    ws.send_json(json!({"event": "pusher_internal:subscription_succeeded", "channel": "x"})).await;
    assert_eq!(ws.recv().await["event"], "pusher:error");
    ws.send_json(json!({"event": "whatever", "data": {}})).await;
    assert_eq!(ws.recv().await["event"], "pusher:error");
    ws.assert_alive().await;
}

#[tokio::test]
async fn arbitrary_api_requests_never_get_a_server_error() {
    let server = spawn_server().await;
    let http = server.http();
    let mut runner = TestRunner::deterministic();
    let bodies = prop_oneof![".{0,300}", arb_json().prop_map(|v| v.to_string())];
    let queries =
        prop_oneof![".{0,100}", Just("auth_key=key-1&auth_timestamp=1&auth_version=1.0&auth_signature=00".to_owned())];
    for i in 0..150 {
        let body = bodies.new_tree(&mut runner).unwrap().current();
        let query: String = queries.new_tree(&mut runner).unwrap().current();
        let query: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let path = match i % 4 {
            0 => format!("/apps/{APP_ID}/events?{query}"),
            1 => format!("/apps/{APP_ID}/batch_events?x={query}"),
            2 => format!("/apps/{APP_ID}/channels?{query}"),
            _ => format!("/apps/{query}/events"),
        };
        let method = if i % 4 == 2 { Method::GET } else { Method::POST };
        let (status, body) = http.request(method, &path, body.as_bytes(), &[]).await;
        assert!((400..500).contains(&status), "{path} -> {status}");
        assert!(body["error"].is_string(), "{path} -> {body}");
    }
    // Signed but hostile bodies.
    for _ in 0..150 {
        let body = bodies.new_tree(&mut runner).unwrap().current();
        let (status, res) = http.signed(Method::POST, &format!("/apps/{APP_ID}/events"), &body, &[]).await;
        assert!(status == 200 || (400..500).contains(&status), "{body} -> {status}");
        assert!(res.is_object(), "{res}");
    }
    assert_eq!(http.get("/health").await.0, 200);
}
