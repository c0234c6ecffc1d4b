//! Subscriptions: public, private, presence, encrypted and cache channels; client events.

use serde_json::{Value, json};

use crate::support::ws::data;
use crate::support::{APP_ID, auth, presence_auth, spawn_server, update_app};

#[tokio::test]
async fn public_channel_receives_triggers_with_string_data() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let ok = ws.subscribe("my-channel").await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(ok["channel"], "my-channel");
    let (status, body) =
        server.http().trigger(json!({"name": "my-event", "channel": "my-channel", "data": "{\"a\":1}"})).await;
    assert_eq!((status, body), (200, json!({})));
    let ev = ws.recv().await;
    assert_eq!(ev, json!({"event": "my-event", "channel": "my-channel", "data": "{\"a\":1}"}));
    // JSON (non-string) data from an API caller reaches Pusher clients encoded as a string.
    server.http().trigger(json!({"name": "e2", "channel": "my-channel", "data": {"b": 2}})).await;
    let ev = ws.recv().await;
    assert_eq!(ev["data"], "{\"b\":2}");
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    ws.subscribe("c1").await;
    ws.send_json(json!({"event": "pusher:unsubscribe", "data": {"channel": "c1"}})).await;
    ws.assert_alive().await;
    server.http().trigger(json!({"name": "e", "channel": "c1", "data": "x"})).await;
    ws.assert_silent(300).await;
}

#[tokio::test]
async fn private_channel_auth_failures_are_subscription_errors() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let sid = ws.socket_id.clone();
    let cases = [
        json!({"channel": "private-a"}),
        json!({"channel": "private-a", "auth": null}),
        json!({"channel": "private-a", "auth": 42}),
        json!({"channel": "private-a", "auth": ["x"]}),
        json!({"channel": "private-a", "auth": "key-1:deadbeef"}),
        json!({"channel": "private-a", "auth": "not-even-a-pair"}),
        json!({"channel": "private-a", "auth": auth(&sid, "private-b")}),
        json!({"channel": "private-a", "auth": auth("1.1", "private-a")}),
        json!({"channel": "private-a", "auth": format!("wrong-key:{}", auth(&sid, "private-a").split_once(':').unwrap().1)}),
    ];
    for case in cases {
        let err = ws.subscribe_with(case.clone()).await;
        assert_eq!(err["event"], "pusher:subscription_error", "{case}");
        assert_eq!(err["channel"], "private-a");
        assert_eq!(err["data"]["type"], "AuthError");
        assert_eq!(err["data"]["status"], 401);
        assert!(err["data"]["error"].is_string());
    }
    let ok = ws.subscribe_private("private-a").await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
}

#[tokio::test]
async fn a_repeated_presence_subscribe_keeps_the_first_identity() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe_presence("presence-dbl", "u1", Value::Null).await;
    b.subscribe_presence("presence-dbl", "watcher", Value::Null).await;
    a.expect_event("pusher_internal:member_added").await;
    // The same socket subscribes again, validly signed for another user: it stays u1.
    let again = a.subscribe_presence("presence-dbl", "u2", Value::Null).await;
    assert_eq!(again["event"], "pusher_internal:subscription_succeeded");
    b.assert_silent(100).await;
    a.send_json(json!({"event": "client-hi", "channel": "presence-dbl", "data": {}})).await;
    assert_eq!(b.expect_event("client-hi").await["user_id"], "u1");
    let (_, users) =
        server.http().signed(hyper::Method::GET, &format!("/apps/{APP_ID}/channels/presence-dbl/users"), "", &[]).await;
    assert_eq!(users, json!({"users": [{"id": "u1"}, {"id": "watcher"}]}));
}

#[tokio::test]
async fn presence_members_join_and_leave() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    let ok = a.subscribe_presence("presence-room", "alice", json!({"name": "Alice"})).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let p = data(&ok)["presence"].clone();
    assert_eq!(p, json!({"ids": ["alice"], "hash": {"alice": {"name": "Alice"}}, "count": 1}));

    let mut b = server.connect().await;
    let ok = b.subscribe_presence("presence-room", "bob", json!({"name": "Bob"})).await;
    let p = data(&ok)["presence"].clone();
    assert_eq!(p["count"], 2);
    assert_eq!(p["ids"], json!(["alice", "bob"]));
    let added = a.recv().await;
    assert_eq!(added["event"], "pusher_internal:member_added");
    assert_eq!(data(&added), json!({"user_id": "bob", "user_info": {"name": "Bob"}}));

    // A second connection of bob is the same member: no member_added, count stays 2.
    let mut b2 = server.connect().await;
    let ok = b2.subscribe_presence("presence-room", "bob", json!({"name": "Bob"})).await;
    assert_eq!(data(&ok)["presence"]["count"], 2);
    a.assert_silent(200).await;
    let (_, users) = server
        .http()
        .signed(hyper::Method::GET, &format!("/apps/{APP_ID}/channels/presence-room/users"), "", &[])
        .await;
    assert_eq!(users, json!({"users": [{"id": "alice"}, {"id": "bob"}]}));

    // Only the last of bob's connections leaving removes him.
    b.close().await;
    a.assert_silent(300).await;
    b2.close().await;
    let removed = a.expect_event("pusher_internal:member_removed").await;
    assert_eq!(data(&removed), json!({"user_id": "bob"}));
}

#[tokio::test]
async fn presence_channel_data_must_be_given_and_valid() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let sid = ws.socket_id.clone();
    let ch = "presence-x";
    for (case, status) in [
        (json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}")}), 401),
        (json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}"), "channel_data": null}), 401),
        (json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}"), "channel_data": {"user_id": "a"}}), 401),
        (json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}"), "channel_data": "{\"user_id\":\"other\"}"}), 401),
        (json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}"), "channel_data": "{}"}), 400),
        (json!({"channel": ch, "auth": presence_auth(&sid, ch, "nope"), "channel_data": "nope"}), 400),
    ] {
        let err = ws.subscribe_with(case.clone()).await;
        assert_eq!(err["event"], "pusher:subscription_error", "{case}");
        assert_eq!(err["data"]["status"], status, "{case}");
    }
    // A numeric user_id is accepted and reported as a string.
    let cd = "{\"user_id\":42}";
    let ok = ws.subscribe_with(json!({"channel": ch, "auth": presence_auth(&sid, ch, cd), "channel_data": cd})).await;
    assert_eq!(data(&ok)["presence"]["ids"], json!(["42"]));
}

#[tokio::test]
async fn presence_member_limit() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.max_presence_members = 2).await;
    let mut conns = Vec::new();
    for user in ["u1", "u2"] {
        let mut ws = server.connect().await;
        let ok = ws.subscribe_presence("presence-full", user, Value::Null).await;
        assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
        conns.push(ws);
    }
    let mut third = server.connect().await;
    let err = third.subscribe_presence("presence-full", "u3", Value::Null).await;
    assert_eq!(err["event"], "pusher:subscription_error");
    assert_eq!(err["data"]["type"], "LimitReached");
    // An existing member may still add a connection.
    let mut again = server.connect().await;
    let ok = again.subscribe_presence("presence-full", "u1", Value::Null).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
}

#[tokio::test]
async fn encrypted_channel_is_relayed_and_refuses_client_events() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let ch = "private-encrypted-secret";
    let err = ws.subscribe(ch).await;
    assert_eq!(err["event"], "pusher:subscription_error", "encrypted channels need auth");
    let ok = ws.subscribe_private(ch).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let payload = "{\"nonce\":\"bm9uY2U=\",\"ciphertext\":\"Y2lwaGVy\"}";
    server.http().trigger(json!({"name": "e", "channel": ch, "data": payload})).await;
    assert_eq!(ws.recv().await["data"], payload);
    ws.send_json(json!({"event": "client-x", "channel": ch, "data": {}})).await;
    assert_eq!(ws.recv().await["event"], "pusher:error");
}

#[tokio::test]
async fn cache_channels_replay_the_last_event_or_miss() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    for ch in ["cache-a", "private-cache-a", "presence-cache-a", "private-encrypted-cache-a"] {
        let ok = match ch {
            "cache-a" => ws.subscribe(ch).await,
            c if c.starts_with("presence-") => ws.subscribe_presence(c, "u", Value::Null).await,
            c => ws.subscribe_private(c).await,
        };
        assert_eq!(ok["event"], "pusher_internal:subscription_succeeded", "{ch}");
        let miss = ws.recv().await;
        assert_eq!(miss, json!({"event": "pusher:cache_miss", "channel": ch}));
        server.http().trigger(json!({"name": "first", "channel": ch, "data": "1"})).await;
        server.http().trigger(json!({"name": "last", "channel": ch, "data": "2"})).await;
        ws.expect_event("last").await;
    }
    let mut late = server.connect().await;
    let ok = late.subscribe("cache-a").await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let replay = late.recv().await;
    assert_eq!(replay, json!({"event": "last", "channel": "cache-a", "data": "2"}));
    let ok = late.subscribe_private("private-cache-a").await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(late.recv().await["event"], "last");
}

#[tokio::test]
async fn client_events_follow_the_rules() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe_private("private-chat").await;
    b.subscribe_private("private-chat").await;
    a.subscribe("public-chat").await;

    a.send_json(json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "a"}})).await;
    let got = b.recv().await;
    assert_eq!(got["event"], "client-typing");
    assert_eq!(got["channel"], "private-chat");
    assert_eq!(data(&got), json!({"who": "a"}));
    a.assert_silent(200).await; // never echoed

    // Public channels refuse client events; so does a channel one is not subscribed to.
    a.send_json(json!({"event": "client-x", "channel": "public-chat", "data": {}})).await;
    assert_eq!(a.recv().await["event"], "pusher:error");
    a.send_json(json!({"event": "client-x", "channel": "private-other", "data": {}})).await;
    assert_eq!(a.recv().await["event"], "pusher:error");
    b.assert_silent(200).await;

    // Presence client events carry the sender's user_id.
    a.subscribe_presence("presence-chat", "alice", Value::Null).await;
    b.subscribe_presence("presence-chat", "bob", Value::Null).await;
    a.expect_event("pusher_internal:member_added").await;
    a.send_json(json!({"event": "client-hi", "channel": "presence-chat", "data": "hello"})).await;
    let got = b.expect_event("client-hi").await;
    assert_eq!(got["user_id"], "alice");
    assert_eq!(got["data"], "hello");
}

#[tokio::test]
async fn client_event_rate_limit_is_4301() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.client_events_per_second = 3).await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe_private("private-r").await;
    b.subscribe_private("private-r").await;
    for i in 0..6 {
        a.send_json(json!({"event": "client-n", "channel": "private-r", "data": {"i": i}})).await;
    }
    let err = a.expect_event("pusher:error").await;
    assert_eq!(err["data"]["code"], 4301);
    let mut received = 0;
    while let Some(crate::support::ws::Frame::Json(_)) = b.next_within(std::time::Duration::from_millis(300)).await {
        received += 1;
    }
    assert!((1..=4).contains(&received), "rate limited delivery, got {received}");
    a.assert_alive().await;
}

#[tokio::test]
async fn subscription_count_events_when_switched_on() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.switches.subscription_count = true).await;
    let mut a = server.connect().await;
    a.subscribe("counted").await;
    let c = a.expect_event("pusher_internal:subscription_count").await;
    assert_eq!(data(&c), json!({"subscription_count": 1}));
    let mut b = server.connect().await;
    b.subscribe("counted").await;
    let c = a.expect_event("pusher_internal:subscription_count").await;
    assert_eq!(data(&c), json!({"subscription_count": 2}));
    b.close().await;
    let c = a.expect_event("pusher_internal:subscription_count").await;
    assert_eq!(data(&c), json!({"subscription_count": 1}));
}

#[tokio::test]
async fn subscription_count_is_off_by_default() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    a.subscribe("quiet").await;
    let mut b = server.connect().await;
    b.subscribe("quiet").await;
    a.assert_silent(300).await;
}
