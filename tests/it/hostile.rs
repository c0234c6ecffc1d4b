//! Hostile input: arbitrary frames and requests never hurt the connection or the server.

use std::collections::HashSet;

use hyper::Method;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use switchboard::core::ChannelName;
use switchboard::core::channel::USER_PREFIX;

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

/// Channel names of every kind, valid and not.
fn arb_channel() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_=@,.;-]{1,12}",
        "(private-|presence-|private-encrypted-|cache-|private-cache-|#server-to-user-)[a-z0-9]{0,8}",
        ".{0,20}",
        Just("c".repeat(165)),
    ]
}

/// `data` of every shape: arbitrary JSON, subscribe-like objects, and objects sent as a string.
fn arb_data() -> impl Strategy<Value = Value> {
    prop_oneof![
        arb_json(),
        arb_channel().prop_map(|c| json!({"channel": c})),
        (arb_channel(), arb_json(), arb_json())
            .prop_map(|(c, a, d)| json!({"channel": c, "auth": a, "channel_data": d})),
        arb_channel().prop_map(|c| Value::String(json!({"channel": c}).to_string())),
    ]
}

/// Frames shaped like Pusher messages, with arbitrary parts.
fn arb_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => ".{0,200}",
        1 => arb_json().prop_map(|v| v.to_string()),
        4 => (
            prop_oneof![
                Just("pusher:subscribe".to_owned()),
                Just("pusher:subscribe".to_owned()),
                Just("pusher:unsubscribe".to_owned()),
                Just("pusher:signin".to_owned()),
                Just("pusher:ping".to_owned()),
                Just("pusher:pong".to_owned()),
                Just("pusher_internal:member_added".to_owned()),
                Just("client-a".to_owned()),
                ".{0,20}"
            ],
            arb_data(),
            prop_oneof![arb_channel().prop_map(Value::from), arb_json()],
        )
            .prop_map(|(e, d, c)| json!({"event": e, "data": d, "channel": c}).to_string()),
    ]
}

/// What the server must answer one frame with (SPEC §3, §10), given the channels held.
#[derive(Debug)]
enum Answer {
    Nothing,
    Pong,
    Error(u16),
    Subscribed { channel: String, cache_miss: bool },
    Refused { channel: String, kind: &'static str, status: u16 },
}

/// Pusher's rules, applied to a connection that is not signed in and holds only public
/// channels: a random `auth` never matches, so every private, presence and user channel is
/// refused, and client events (allowed only on held private and presence channels) are 4300.
fn answer(frame: &str, held: &mut HashSet<String>) -> Answer {
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(frame) else { return Answer::Error(4300) };
    let Some(Value::String(event)) = msg.get("event") else { return Answer::Error(4300) };
    // Some clients send data as a JSON-encoded string.
    let data = match msg.get("data") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let channel = data.get("channel").and_then(Value::as_str).map(str::to_owned);
    match event.as_str() {
        "pusher:ping" => Answer::Pong,
        "pusher:pong" => Answer::Nothing,
        "pusher:subscribe" => {
            let Some(channel) = channel else { return Answer::Error(4300) };
            let refused = |kind, status| Answer::Refused { channel: channel.clone(), kind, status };
            if channel.starts_with(USER_PREFIX) {
                return refused("AuthError", 401);
            }
            match ChannelName::parse(&channel) {
                Err(_) => refused("InvalidChannel", 400),
                Ok(c) if c.needs_auth() => refused("AuthError", 401),
                Ok(c) if held.contains(&channel) || held.len() < 100 => {
                    held.insert(channel.clone());
                    Answer::Subscribed { channel, cache_miss: c.is_cache() }
                }
                Ok(_) => refused("LimitReached", 400),
            }
        }
        "pusher:unsubscribe" => match channel {
            Some(channel) => {
                held.remove(&channel);
                Answer::Nothing
            }
            None => Answer::Error(4300),
        },
        "pusher:signin" => {
            let strings = ["auth", "user_data"].iter().all(|k| data.get(k).is_some_and(Value::is_string));
            assert!(!strings, "the generator made a signin that would close the connection: {frame}");
            Answer::Error(4300)
        }
        _ => Answer::Error(4300),
    }
}

/// Asserts the frames a random `frame` got are exactly `want`.
fn check(frame: &str, want: &Answer, got: &[Value]) {
    let is_error = |v: &Value, code: u16| {
        v["event"] == "pusher:error" && v["data"]["code"] == code && v["data"]["message"].is_string()
    };
    let ok = match want {
        Answer::Nothing => got.is_empty(),
        Answer::Pong => got == [json!({"event": "pusher:pong", "data": {}})],
        Answer::Error(code) => matches!(got, [v] if is_error(v, *code)),
        Answer::Subscribed { channel, cache_miss } => {
            let succeeded =
                json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"});
            let miss = json!({"event": "pusher:cache_miss", "channel": channel});
            match got {
                [s] => !cache_miss && *s == succeeded,
                [s, m] => *cache_miss && *s == succeeded && *m == miss,
                _ => false,
            }
        }
        Answer::Refused { channel, kind, status } => matches!(got, [v]
            if v["event"] == "pusher:subscription_error"
                && v["channel"] == channel.as_str()
                && v["data"]["type"] == *kind
                && v["data"]["status"] == *status
                && v["data"]["error"].is_string()),
    };
    assert!(ok, "{frame}\n  expected {want:?}\n  got {got:?}");
}

#[tokio::test]
async fn arbitrary_frames_get_errors_and_leave_the_connection_usable() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_frame();
    let mut held = HashSet::new();
    let mut seen = [0; 5];
    for _ in 0..400 {
        let frame = strategy.new_tree(&mut runner).unwrap().current();
        let want = answer(&frame, &mut held);
        ws.send_text(&frame).await;
        // Everything the frame caused comes before the pong to a ping sent after it.
        ws.send_json(json!({"event": "pusher:ping", "data": {}})).await;
        let mut got = Vec::new();
        loop {
            let v = ws.recv().await;
            let pong = v == json!({"event": "pusher:pong", "data": {}});
            // A random pusher:ping is answered first: that pong belongs to the frame.
            if pong && !(matches!(want, Answer::Pong) && got.is_empty()) {
                break;
            }
            got.push(v);
        }
        check(&frame, &want, &got);
        seen[match want {
            Answer::Nothing => 0,
            Answer::Pong => 1,
            Answer::Error(_) => 2,
            Answer::Subscribed { .. } => 3,
            Answer::Refused { .. } => 4,
        }] += 1;
    }
    assert!(seen.iter().all(|&n| n > 0), "the frames no longer reach every kind of answer: {seen:?}");
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
        ws.expect_error(4300).await;
    }
    ws.assert_next_is_pong().await;
    let mut fresh = server.connect().await;
    fresh.assert_next_is_pong().await;
}

#[tokio::test]
async fn binary_and_unknown_frames() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    use futures_util::SinkExt;
    ws.inner.send(tokio_tungstenite::tungstenite::Message::binary(vec![0u8, 159, 146, 150])).await.unwrap();
    ws.expect_error(4300).await;
    ws.send_json(json!({"event": "pusher_internal:subscription_succeeded", "channel": "x"})).await;
    ws.expect_error(4300).await;
    ws.send_json(json!({"event": "whatever", "data": {}})).await;
    ws.expect_error(4300).await;
    ws.assert_next_is_pong().await;
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
