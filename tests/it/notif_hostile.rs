//! Hostile input on the Notif surface (SPEC §10): every bad frame gets a `pusher:error` and the
//! socket stays usable; oversize frames close with 1009; limits answer 4100; huge and
//! SQL-looking strings in every field are only data.

use futures_util::SinkExt;
use hyper::Method;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::notif_client::{Frame, Notif, broadcast, notif_auth};
use crate::support::{APP_ID, spawn_server, update_app};

const SQL: &str = "'; DROP TABLE apps; -- \" OR 1=1 /*";

#[tokio::test]
async fn bad_frames_get_4300_and_the_socket_stays_usable() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    let nasties = [
        "{".to_owned(),
        "null".into(),
        "[]".into(),
        "\"str\"".into(),
        "12".into(),
        r#"{"event":null}"#.into(),
        r#"{"event":{"a":1}}"#.into(),
        r#"{"event":"subscribe"}"#.into(),
        r#"{"event":"subscribe","data":"{\"channel\":"}"#.into(),
        r#"{"event":"subscribe","data":{"channel":""}}"#.into(),
        r#"{"event":"subscribe","data":{"channel":12}}"#.into(),
        r#"{"event":"subscribe","data":{"channel":"a b"}}"#.into(),
        r#"{"event":"subscribe","data":{"channel":"a","auth":{}}}"#.into(),
        r#"{"event":"unsubscribe","data":{}}"#.into(),
        r#"{"event":"whatever","data":{}}"#.into(),
        r#"{"event":"pusher_internal:subscription_succeeded","channel":"x"}"#.into(),
        r#"{"event":"pusher:signin","data":{}}"#.into(),
        r#"{"event":"client-x","data":{}}"#.into(),
        json!({"event": "subscribe", "data": {"channel": SQL}}).to_string(),
        json!({"event": SQL, "data": {"channel": SQL}}).to_string(),
        json!({"event": "subscribe", "data": {"channel": "a".repeat(165)}}).to_string(),
        json!({"event": "x".repeat(5000), "data": {}}).to_string(),
        json!({"event": format!("client-{}", "x".repeat(300)), "channel": "private-a"}).to_string(),
    ];
    for nasty in &nasties {
        ws.send_text(nasty).await;
        let err = ws.expect_error(4300).await;
        let shown = err.to_string();
        assert!(shown.len() < 400, "errors never echo huge input: {shown}");
    }
    ws.inner.send(Message::binary(vec![0u8, 159, 146, 150])).await.unwrap();
    ws.expect_error(4300).await;
    ws.assert_alive().await;
    let mut fresh = Notif::connect(&server).await;
    fresh.assert_alive().await;
}

#[tokio::test]
async fn oversize_frame_closes_with_1009_and_others_are_unaffected() {
    let server = spawn_server().await;
    let mut bystander = Notif::connect(&server).await;
    bystander.subscribe("news").await;
    let mut ws = Notif::connect(&server).await;
    let big = json!({"event": "client-x", "channel": "private-a", "data": "x".repeat(64 * 1024)}).to_string();
    let _ = ws.inner.send(Message::text(big)).await;
    loop {
        match ws.next().await {
            Frame::Json(_) => continue,
            Frame::Close(Some((code, _))) => {
                assert_eq!(code, 1009);
                break;
            }
            other => panic!("expected close 1009, got {other:?}"),
        }
    }
    bystander.assert_alive().await;
    broadcast(&server, json!({"channel": "news", "event": "e", "data": 1})).await;
    assert_eq!(bystander.recv().await["data"], 1);
}

#[tokio::test]
async fn a_thousand_subscribes_hit_the_channel_limit_and_the_socket_stays_usable() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    for i in 0..1000 {
        ws.send_json(json!({"event": "subscribe", "data": {"channel": format!("ch-{i}")}})).await;
    }
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..1000 {
        let v = ws.recv().await;
        match v["event"].as_str() {
            Some("pusher_internal:subscription_succeeded") => ok += 1,
            Some("pusher:error") => {
                assert_eq!(v["data"]["code"], 4100, "{v}");
                assert!(v["channel"].is_string(), "{v}");
                limited += 1;
            }
            _ => panic!("{v}"),
        }
    }
    assert_eq!((ok, limited), (100, 900));
    ws.assert_alive().await;
    // Already-held channels still deliver, and freeing one lets another in.
    broadcast(&server, json!({"channel": "ch-5", "event": "e", "data": 5})).await;
    assert_eq!(ws.recv().await["data"], 5);
    ws.send_json(json!({"event": "unsubscribe", "data": {"channel": "ch-5"}})).await;
    assert_eq!(ws.subscribe("ch-999").await["event"], "pusher_internal:subscription_succeeded");
}

#[tokio::test]
async fn presence_member_limit_is_4100() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.max_presence_members = 1).await;
    let mut a = Notif::connect(&server).await;
    a.subscribe_presence("presence-full", json!({"user_id": "a"})).await;
    let mut b = Notif::connect(&server).await;
    let err = b.subscribe_presence("presence-full", json!({"user_id": "b"})).await;
    assert_eq!(err["data"]["code"], 4100, "{err}");
    assert_eq!(err["channel"], "presence-full");
    b.assert_alive().await;
    let err = b.subscribe_presence("presence-x", json!({"user_id": "b", "user_info": "i".repeat(2000)})).await;
    assert_eq!(err["data"]["code"], 4100, "{err}");
    let err = b.subscribe_presence("presence-x", json!({"user_id": "u".repeat(200)})).await;
    assert_eq!(err["data"]["code"], 4300, "{err}");
}

#[tokio::test]
async fn huge_and_sql_looking_strings_are_only_data() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    let channel = "private-x";
    let cd = json!({"user_id": SQL, "user_info": {SQL: SQL}});
    let auth = notif_auth(&ws.socket_id, "presence-sql", Some(&cd.to_string()));
    let ok = ws.subscribe_with(json!({"channel": "presence-sql", "auth": auth, "channel_data": cd})).await;
    assert_eq!(ok["data"]["presence"]["ids"], json!([SQL]), "{ok}");
    let err = ws.subscribe_with(json!({"channel": channel, "auth": SQL, "channel_data": SQL})).await;
    assert_eq!(err["data"]["code"], 4009);
    let err = ws.subscribe_with(json!({"channel": channel, "auth": "f".repeat(9000)})).await;
    assert_eq!(err["data"]["code"], 4009);
    ws.subscribe("news").await;
    let (status, _) = broadcast(&server, json!({"channel": "news", "event": SQL, "data": {SQL: [SQL]}})).await;
    assert_eq!(status, 200);
    assert_eq!(ws.recv().await, json!({"event": SQL, "channel": "news", "data": {SQL: [SQL]}}));
    let (status, body) = server
        .http()
        .request(
            Method::POST,
            "/api/broadcast",
            json!({"channel": "news"}).to_string().as_bytes(),
            &[("x-app-key", SQL)],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    ws.assert_alive().await;
    // The app is untouched.
    assert!(server.state.apps.by_id(APP_ID).is_some());
    assert_eq!(broadcast(&server, json!({"channel": "news", "event": "e"})).await.0, 200);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop_oneof![Just("subscribe"), Just("private-a"), Just("presence-a"), Just("client-x"), Just(SQL)]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("event".to_owned()),
                    Just("data".to_owned()),
                    Just("channel".to_owned()),
                    Just("auth".to_owned()),
                    Just("channel_data".to_owned()),
                    ".{0,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[tokio::test]
async fn arbitrary_frames_never_hurt_the_socket() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    let mut runner = TestRunner::deterministic();
    let strategy = prop_oneof![
        ".{0,200}",
        arb_json().prop_map(|v| v.to_string()),
        (
            prop_oneof![
                Just("subscribe".to_owned()),
                Just("unsubscribe".to_owned()),
                Just("pusher:subscribe".to_owned()),
                Just("client-a".to_owned()),
                Just("ping".to_owned()),
                ".{0,20}"
            ],
            arb_json(),
            arb_json()
        )
            .prop_map(|(e, d, c)| json!({"event": e, "data": d, "channel": c}).to_string()),
    ];
    let pong = json!({"event": "pusher:pong", "data": {}});
    for _ in 0..400 {
        let frame = strategy.new_tree(&mut runner).unwrap().current();
        ws.send_text(&frame).await;
        // Everything the frame caused comes before the pong to a ping sent after it.
        ws.send_json(json!({"event": "ping"})).await;
        let parsed: Option<Value> = serde_json::from_str(&frame).ok();
        let event = parsed.as_ref().and_then(|v| v.as_object()).map(|o| o.get("event").and_then(Value::as_str));
        let mut got = Vec::new();
        if matches!(event, Some(Some("ping" | "pusher:ping"))) {
            assert_eq!(ws.recv().await, pong, "{frame}");
        }
        loop {
            let v = ws.recv().await;
            if v == pong {
                break;
            }
            got.push(v);
        }
        match (event, got.as_slice()) {
            // Not a JSON object, or no event: one 4300.
            (None | Some(None), [v]) => {
                assert!(v["event"] == "pusher:error" && v["data"]["code"] == 4300, "{frame}: {v}")
            }
            (None | Some(None), _) => panic!("{frame}: expected one 4300, got {got:?}"),
            (Some(Some("pong" | "pusher:pong")), got) => assert!(got.is_empty(), "{frame}: {got:?}"),
            (Some(Some(_)), []) => {}
            (Some(Some(_)), [v]) if v["event"] == "pusher:error" => {
                assert!([4009, 4100, 4300, 4301].contains(&v["data"]["code"].as_u64().unwrap_or(0)), "{frame}: {v}");
                assert!(v["data"]["message"].as_str().is_some_and(|m| m.len() < 400), "{frame}: {v}");
            }
            (Some(Some(_)), [v]) => {
                assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{frame}: {v}");
                assert!(v["channel"].is_string(), "{frame}: {v}");
            }
            _ => panic!("{frame}: one reply at most, got {got:?}"),
        }
    }
    ws.assert_next_is_pong().await;
    let mut fresh = Notif::connect(&server).await;
    fresh.assert_next_is_pong().await;
}
