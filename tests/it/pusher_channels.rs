//! Subscriptions: public, private, presence, encrypted and cache channels; client events.

use serde_json::{Value, json};

use crate::support::ws::{assert_subscription_error, data};
use crate::support::{APP_ID, auth, presence_auth, spawn_server, update_app};

#[tokio::test]
async fn public_channel_receives_triggers_with_string_data() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let ok = ws.subscribe("my-channel").await;
    // `data` is the JSON string "{}", not an object and not absent.
    assert_eq!(ok, json!({"event": "pusher_internal:subscription_succeeded", "channel": "my-channel", "data": "{}"}));
    let (status, body) =
        server.http().trigger(json!({"name": "my-event", "channel": "my-channel", "data": "{\"a\":1}"})).await;
    assert_eq!((status, body), (200, json!({})));
    let ev = ws.recv().await;
    assert_eq!(ev, json!({"event": "my-event", "channel": "my-channel", "data": "{\"a\":1}"}));
    // JSON (non-string) data from an API caller reaches Pusher clients encoded as a string.
    let (status, _) = server.http().trigger(json!({"name": "e2", "channel": "my-channel", "data": {"b": 2}})).await;
    assert_eq!(status, 200);
    let ev = ws.recv().await;
    assert_eq!(ev["data"], "{\"b\":2}");
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    assert_eq!(ws.subscribe("c1").await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(ws.subscribe("other").await["event"], "pusher_internal:subscription_succeeded");
    ws.send_json(json!({"event": "pusher:unsubscribe", "data": {"channel": "c1"}})).await;
    // No reply: the pong to a later ping is the very next frame.
    ws.assert_next_is_pong().await;
    // The channel has nobody left, and an event there reaches nobody: the next frame is a
    // later event on a channel still held.
    let (status, body) =
        server.http().trigger(json!({"name": "e", "channel": "c1", "data": "x", "info": "subscription_count"})).await;
    assert_eq!((status, body), (200, json!({"channels": {"c1": {"subscription_count": 0}}})));
    server.assert_next_is_marker(&mut ws, "other").await;
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
        assert_subscription_error(&err, "private-a", "AuthError", 401);
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
    // No member_added for u2 reached b.
    server.assert_next_is_marker(&mut b, "presence-dbl").await;
    assert_eq!(a.recv().await["event"], "marker");
    a.send_json(json!({"event": "client-hi", "channel": "presence-dbl", "data": {}})).await;
    assert_eq!(b.recv().await["user_id"], "u1");
    let (_, users) =
        server.http().signed(hyper::Method::GET, &format!("/apps/{APP_ID}/channels/presence-dbl/users"), "", &[]).await;
    assert_eq!(users, json!({"users": [{"id": "u1"}, {"id": "watcher"}]}));
}

#[tokio::test]
async fn a_repeated_public_subscribe_is_confirmed_and_delivers_once() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    for _ in 0..2 {
        let ok = ws.subscribe("twice").await;
        assert_eq!(ok, json!({"event": "pusher_internal:subscription_succeeded", "channel": "twice", "data": "{}"}));
    }
    let (status, body) = server
        .http()
        .trigger(json!({"name": "e", "channel": "twice", "data": "x", "info": "subscription_count"}))
        .await;
    assert_eq!((status, body), (200, json!({"channels": {"twice": {"subscription_count": 1}}})));
    assert_eq!(ws.recv().await["event"], "e");
    server.assert_next_is_marker(&mut ws, "twice").await;
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
    assert_eq!(added["channel"], "presence-room");
    assert_eq!(data(&added), json!({"user_id": "bob", "user_info": {"name": "Bob"}}));
    // Only the others are told: bob gets no member_added about himself.
    server.assert_next_is_marker(&mut b, "presence-room").await;
    assert_eq!(a.recv().await["event"], "marker");

    // A second connection of bob is the same member: no member_added, count stays 2.
    let mut b2 = server.connect().await;
    let ok = b2.subscribe_presence("presence-room", "bob", json!({"name": "Bob"})).await;
    assert_eq!(data(&ok)["presence"]["count"], 2);
    server.assert_next_is_marker(&mut a, "presence-room").await;
    assert_eq!(b.recv().await["event"], "marker");
    assert_eq!(b2.recv().await["event"], "marker");
    let (_, users) = server
        .http()
        .signed(hyper::Method::GET, &format!("/apps/{APP_ID}/channels/presence-room/users"), "", &[])
        .await;
    assert_eq!(users, json!({"users": [{"id": "alice"}, {"id": "bob"}]}));

    // Only the last of bob's connections leaving removes him (close waits until the server
    // has let the connection go).
    b.close().await;
    server.assert_next_is_marker(&mut a, "presence-room").await;
    b2.recv().await;
    b2.close().await;
    let removed = a.recv().await;
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    assert_eq!(removed["channel"], "presence-room");
    assert_eq!(data(&removed), json!({"user_id": "bob"}));
}

#[tokio::test]
async fn presence_channel_data_must_be_given_and_valid() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    let sid = ws.socket_id.clone();
    let ch = "presence-x";
    // Missing, null, non-string or unsigned channel_data is an AuthError; signed but unusable
    // channel_data is InvalidChannelData.
    for (case, kind, status) in [
        (json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}")}), "AuthError", 401),
        (json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}"), "channel_data": null}), "AuthError", 401),
        (
            json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}"), "channel_data": {"user_id": "a"}}),
            "AuthError",
            401,
        ),
        (
            json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}"), "channel_data": "{\"user_id\":\"other\"}"}),
            "AuthError",
            401,
        ),
        (
            json!({"channel": ch, "auth": presence_auth(&sid, ch, "{}"), "channel_data": "{}"}),
            "InvalidChannelData",
            400,
        ),
        (
            json!({"channel": ch, "auth": presence_auth(&sid, ch, "nope"), "channel_data": "nope"}),
            "InvalidChannelData",
            400,
        ),
    ] {
        let err = ws.subscribe_with(case.clone()).await;
        assert_subscription_error(&err, ch, kind, status);
    }
    // A numeric user_id is accepted and reported as a string.
    let cd = "{\"user_id\":42}";
    let ok = ws.subscribe_with(json!({"channel": ch, "auth": presence_auth(&sid, ch, cd), "channel_data": cd})).await;
    assert_eq!(data(&ok)["presence"]["ids"], json!(["42"]));
}

#[tokio::test]
async fn presence_member_limit() {
    let server = spawn_server().await;
    let default = server.state.apps.by_id(APP_ID).unwrap().limits().max_presence_members;
    assert_eq!(default, 100, "100 members unless the app says otherwise");
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
    // As Pusher: the member limit is LimitReached with status 403 (the channel limit is 400).
    assert_subscription_error(&err, "presence-full", "LimitReached", 403);
    third.assert_next_is_pong().await;
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
    assert_subscription_error(&err, ch, "AuthError", 401);
    let ok = ws.subscribe_private(ch).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let mut other = server.connect().await;
    assert_eq!(other.subscribe_private(ch).await["event"], "pusher_internal:subscription_succeeded");
    let payload = "{\"nonce\":\"bm9uY2U=\",\"ciphertext\":\"Y2lwaGVy\"}";
    let (status, _) = server.http().trigger(json!({"name": "e", "channel": ch, "data": payload})).await;
    assert_eq!(status, 200);
    for ws in [&mut ws, &mut other] {
        assert_eq!(ws.recv().await, json!({"event": "e", "channel": ch, "data": payload}), "relayed byte for byte");
    }
    ws.send_json(json!({"event": "client-x", "channel": ch, "data": {}})).await;
    ws.expect_error(4300).await;
    server.assert_next_is_marker(&mut other, ch).await;
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
        for (name, data) in [("first", "1"), ("last", "2")] {
            let (status, _) = server.http().trigger(json!({"name": name, "channel": ch, "data": data})).await;
            assert_eq!(status, 200);
            assert_eq!(ws.recv().await["event"], name);
        }
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
    assert!(got.get("user_id").is_none(), "user_id only on presence channels: {got}");
    // Never echoed to the sender.
    server.assert_next_is_marker(&mut a, "private-chat").await;
    assert_eq!(b.recv().await["event"], "marker");

    // Public channels refuse client events; so does a channel one is not subscribed to.
    a.send_json(json!({"event": "client-x", "channel": "public-chat", "data": {}})).await;
    a.expect_error(4300).await;
    a.send_json(json!({"event": "client-x", "channel": "private-other", "data": {}})).await;
    a.expect_error(4300).await;
    server.assert_next_is_marker(&mut b, "private-chat").await;
    assert_eq!(a.recv().await["event"], "marker");

    // Presence client events carry the sender's user_id.
    a.subscribe_presence("presence-chat", "alice", Value::Null).await;
    b.subscribe_presence("presence-chat", "bob", Value::Null).await;
    a.expect_event("pusher_internal:member_added").await;
    a.send_json(json!({"event": "client-hi", "channel": "presence-chat", "data": "hello"})).await;
    let got = b.recv().await;
    assert_eq!(got, json!({"event": "client-hi", "channel": "presence-chat", "data": "hello", "user_id": "alice"}));
}

#[tokio::test]
async fn a_client_event_before_the_subscription_succeeded_is_refused() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    assert_eq!(b.subscribe_private("private-early").await["event"], "pusher_internal:subscription_succeeded");
    // A refused subscription does not count.
    let err = a.subscribe_with(json!({"channel": "private-early", "auth": "key-1:00"})).await;
    assert_subscription_error(&err, "private-early", "AuthError", 401);
    a.send_json(json!({"event": "client-x", "channel": "private-early", "data": {}})).await;
    a.expect_error(4300).await;
    server.assert_next_is_marker(&mut b, "private-early").await;
}

#[tokio::test]
async fn reserved_events_get_4300_and_are_never_relayed() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    for (ws, user) in [(&mut a, "ua"), (&mut b, "ub")] {
        assert_eq!(ws.subscribe_private("private-room").await["event"], "pusher_internal:subscription_succeeded");
        ws.subscribe_presence("presence-room", user, Value::Null).await;
    }
    a.expect_event("pusher_internal:member_added").await;
    for event in [
        "pusher:member_added",
        "pusher:cache_miss",
        "pusher:error",
        "pusher:signin_success",
        "pusher_internal:subscription_succeeded",
        "pusher_internal:member_added",
        "pusher_internal:member_removed",
        "pusher_internal:subscription_count",
        "whatever",
    ] {
        for channel in ["private-room", "presence-room"] {
            a.send_json(json!({"event": event, "channel": channel, "data": {"user_id": "forged"}})).await;
            let err = a.expect_error(4300).await;
            assert!(err["data"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
        }
    }
    // None reached the other subscriber, whose next frames are later events.
    server.assert_next_is_marker(&mut b, "private-room").await;
    server.assert_next_is_marker(&mut b, "presence-room").await;
    for channel in ["private-room", "presence-room"] {
        assert_eq!(a.recv().await["channel"], channel);
    }
    a.assert_next_is_pong().await;
}

#[tokio::test]
async fn client_event_rate_limit_is_4301() {
    const RATE: u32 = 3;
    const SENT: usize = 8;
    let server = spawn_server().await;
    let default = server.state.apps.by_id(APP_ID).unwrap().limits().client_events_per_second;
    assert_eq!(default, 10, "Pusher's 10 a second unless the app says otherwise");
    update_app(&server, APP_ID, |s| s.limits.client_events_per_second = RATE).await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe_private("private-r").await;
    b.subscribe_private("private-r").await;

    let started = std::time::Instant::now();
    for i in 0..SENT {
        a.send_json(json!({"event": "client-n", "channel": "private-r", "data": {"i": i}})).await;
    }
    // Each refused event gets one 4301, in order, before the pong to a later ping.
    a.send_json(json!({"event": "pusher:ping", "data": {}})).await;
    let mut refused = 0;
    loop {
        let v = a.recv().await;
        if v["event"] == "pusher:pong" {
            break;
        }
        assert_eq!(v["event"], "pusher:error", "{v}");
        assert_eq!(v["data"]["code"], 4301, "{v}");
        refused += 1;
    }
    let admitted = SENT - refused;
    let window = crate::support::bucket_admits(RATE, RATE, started.elapsed());
    assert!(window.contains(&admitted), "admitted {admitted} of {SENT}, the bucket allows {window:?}");

    // The other subscriber got exactly the admitted ones, in order, the first RATE among them.
    let (status, _) = server.http().trigger(json!({"name": "marker", "channel": "private-r", "data": "m"})).await;
    assert_eq!(status, 200);
    let mut got = Vec::new();
    loop {
        let v = b.recv().await;
        if v["event"] == "marker" {
            break;
        }
        assert_eq!(v["event"], "client-n", "{v}");
        got.push(data(&v)["i"].as_u64().unwrap());
    }
    assert_eq!(got.len(), admitted, "{got:?}");
    assert_eq!(got[..RATE as usize], [0, 1, 2]);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert_eq!(a.recv().await["event"], "marker", "client events are not echoed");
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
    // Presence channels have user counts instead: no subscription_count there.
    a.subscribe_presence("presence-counted", "u", Value::Null).await;
    let mut p = server.connect().await;
    p.subscribe_presence("presence-counted", "v", Value::Null).await;
    assert_eq!(a.recv().await["event"], "pusher_internal:member_added");
    server.assert_next_is_marker(&mut a, "presence-counted").await;
}

#[tokio::test]
async fn subscription_count_is_off_by_default() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    a.subscribe("quiet").await;
    let mut b = server.connect().await;
    b.subscribe("quiet").await;
    server.assert_next_is_marker(&mut a, "quiet").await;
}
