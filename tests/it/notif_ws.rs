//! The Notif WebSocket `/ws` (SPEC §4), following the Notif README flow: connect with
//! `?api_key=`, `connection_established`, subscribe public / private / presence in the README's
//! message shapes, receive a `POST /api/broadcast`, ping. Then the details around it.

use serde_json::{Value, json};

use crate::notif_client::{Notif, broadcast, notif_auth, url};
use crate::support::{APP_ID, APP_KEY, spawn_server, update_app};

#[tokio::test]
async fn readme_flow_public_private_presence_broadcast_ping() {
    let server = spawn_server().await;
    let mut ws = Notif::connect_url(&url(&server, &format!("?api_key={APP_KEY}")), &[]).await;
    let (a, b) = ws.socket_id.split_once('.').unwrap();
    assert!(a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()), "{}", ws.socket_id);

    // Public.
    ws.send_text(r#"{"event":"subscribe","data":{"channel":"chat.room1"}}"#).await;
    let ok = ws.recv().await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(ok["channel"], "chat.room1");
    assert!(ok["data"].is_object(), "{ok}");

    // Private, bare hex as Notif signs it.
    let auth = notif_auth(&ws.socket_id, "private-user.123", None);
    ws.send_json(json!({"event": "subscribe", "data": {"channel": "private-user.123", "auth": auth}})).await;
    let ok = ws.recv().await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded", "{ok}");
    assert_eq!(ok["channel"], "private-user.123");

    // Presence, channel_data as an object.
    let cd = json!({"user_id": "u1", "user_info": {"name": "Ana"}});
    let auth = notif_auth(&ws.socket_id, "presence-room", Some(&cd.to_string()));
    ws.send_json(json!({"event": "subscribe", "data": {"channel": "presence-room", "auth": auth, "channel_data": cd}}))
        .await;
    let ok = ws.recv().await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded", "{ok}");
    assert_eq!(ok["data"]["presence"], json!({"ids": ["u1"], "hash": {"u1": {"name": "Ana"}}, "count": 1}));

    // Broadcast from the backend.
    let (status, body) =
        broadcast(&server, json!({"channel": "chat.room1", "event": "new-message", "data": {"text": "hi", "n": 1}}))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"ok": true, "channel": "chat.room1", "event": "new-message", "subscriber_count": 1}));
    let msg = ws.recv().await;
    assert_eq!(msg, json!({"event": "new-message", "channel": "chat.room1", "data": {"text": "hi", "n": 1}}));

    // Ping.
    ws.send_text(r#"{"event":"ping"}"#).await;
    assert_eq!(ws.recv().await, json!({"event": "pusher:pong", "data": {}}));
}

#[tokio::test]
async fn key_from_header_and_pusher_prefixed_frames() {
    let server = spawn_server().await;
    let mut ws = Notif::connect_url(&url(&server, ""), &[("x-app-key", APP_KEY)]).await;
    let ok = ws.subscribe_with_event("pusher:subscribe", json!({"channel": "news"})).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    ws.send_json(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(ws.recv().await["event"], "pusher:pong");
    // A `key:hex` auth (Pusher's form) is accepted too; another key's prefix is not.
    let hex = notif_auth(&ws.socket_id, "private-a", None);
    let ok = ws.subscribe_with(json!({"channel": "private-a", "auth": format!("{APP_KEY}:{hex}")})).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded", "{ok}");
    let err = ws.subscribe_with(json!({"channel": "private-b", "auth": format!("other:{hex}")})).await;
    assert_eq!(err["data"]["code"], 4009, "{err}");
}

#[tokio::test]
async fn forged_or_missing_auth_is_4009_and_the_socket_stays_open() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    let other = Notif::connect(&server).await;
    let cases = [
        json!({"channel": "private-a"}),
        json!({"channel": "private-a", "auth": null}),
        json!({"channel": "private-a", "auth": "00"}),
        json!({"channel": "private-a", "auth": notif_auth(&other.socket_id, "private-a", None)}),
        json!({"channel": "private-a", "auth": notif_auth(&ws.socket_id, "private-b", None)}),
        json!({"channel": "presence-a", "auth": notif_auth(&ws.socket_id, "presence-a", None), "channel_data": {"user_id": "x"}}),
        json!({"channel": "private-a", "auth": "'; DROP TABLE apps; --"}),
    ];
    for data in cases {
        let err = ws.subscribe_with(data.clone()).await;
        assert_eq!(err["event"], "pusher:error", "{data}: {err}");
        assert_eq!(err["data"]["code"], 4009, "{err}");
        assert_eq!(err["data"]["message"], "Auth failed for channel");
    }
    ws.assert_alive().await;
    assert_eq!(ws.subscribe_private("private-a").await["event"], "pusher_internal:subscription_succeeded");
}

#[tokio::test]
async fn presence_channel_data_forms_and_user_ids() {
    let server = spawn_server().await;
    let ch = "presence-forms";
    // A string channel_data, signed raw.
    let mut a = Notif::connect(&server).await;
    let cd = r#"{"user_id":"s1","user_info":{"k":1}}"#;
    let auth = notif_auth(&a.socket_id, ch, Some(cd));
    let ok = a.subscribe_with(json!({"channel": ch, "auth": auth, "channel_data": cd})).await;
    assert_eq!(ok["data"]["presence"]["ids"], json!(["s1"]), "{ok}");

    // The same string signed in its JSON-quoted form, as Notif signed it.
    let mut b = Notif::connect(&server).await;
    let cd = r#"{"user_id":"s2"}"#;
    let auth = notif_auth(&b.socket_id, ch, Some(&Value::from(cd).to_string()));
    let ok = b.subscribe_with(json!({"channel": ch, "auth": auth, "channel_data": cd})).await;
    assert_eq!(ok["data"]["presence"]["count"], 2, "{ok}");

    // An object signed as compact JSON with sorted keys, a numeric user id.
    let mut c = Notif::connect(&server).await;
    let auth = notif_auth(&c.socket_id, ch, Some(r#"{"user_id":42,"user_info":{"a":1,"b":2}}"#));
    let ok = c
        .subscribe_with(
            json!({"channel": ch, "auth": auth, "channel_data": {"user_info": {"b": 2, "a": 1}, "user_id": 42}}),
        )
        .await;
    assert_eq!(ok["data"]["presence"]["ids"], json!(["s1", "s2", "42"]), "{ok}");
    assert_eq!(ok["data"]["presence"]["hash"]["42"], json!({"a": 1, "b": 2}));

    // No user_id: the socket id stands in, so two anonymous sockets are two members.
    let mut d = Notif::connect(&server).await;
    let ok = d.subscribe_presence(ch, json!({"user_info": {}})).await;
    assert!(ok["data"]["presence"]["ids"].as_array().unwrap().contains(&Value::from(d.socket_id.clone())), "{ok}");
    let mut e = Notif::connect(&server).await;
    let auth = notif_auth(&e.socket_id, ch, None);
    let ok = e.subscribe_with(json!({"channel": ch, "auth": auth})).await;
    assert_eq!(ok["data"]["presence"]["count"], 5, "{ok}");

    // A second socket of user s1 is the same member.
    let mut f = Notif::connect(&server).await;
    let ok = f.subscribe_presence(ch, json!({"user_id": "s1"})).await;
    assert_eq!(ok["data"]["presence"]["count"], 5, "counted by user: {ok}");
}

#[tokio::test]
async fn member_events_and_cache_misses_only_with_extra_events() {
    let server = spawn_server().await;
    let mut plain = Notif::connect(&server).await;
    let mut extra = Notif::connect_extra(&server).await;
    plain.subscribe_presence("presence-x", json!({"user_id": "plain"})).await;
    extra.subscribe_presence("presence-x", json!({"user_id": "extra"})).await;
    let mut third = Notif::connect(&server).await;
    third.subscribe_presence("presence-x", json!({"user_id": "third"})).await;

    let added = extra.recv().await;
    assert_eq!(added["event"], "pusher_internal:member_added", "{added}");
    assert_eq!(added["channel"], "presence-x");
    assert_eq!(added["data"]["user_id"], "third", "data is an object: {added}");
    third.close().await;
    let removed = extra.recv().await;
    assert_eq!(removed["event"], "pusher_internal:member_removed", "{removed}");
    assert_eq!(removed["data"], json!({"user_id": "third"}));
    // A plain socket got neither member event.
    plain.assert_next_is_marker(&server, "presence-x").await;
    assert_eq!(extra.recv().await["event"], "marker");

    // Cache channels: a miss is announced only with extra events; a hit replays to everyone.
    assert_eq!(plain.subscribe("cache-c").await["event"], "pusher_internal:subscription_succeeded");
    plain.assert_next_is_pong().await;
    let ok = extra.subscribe("cache-c").await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(extra.recv().await["event"], "pusher:cache_miss");
    broadcast(&server, json!({"channel": "cache-c", "event": "e", "data": [1]})).await;
    assert_eq!(plain.recv().await["data"], json!([1]));
    let mut late = Notif::connect(&server).await;
    late.subscribe("cache-c").await;
    assert_eq!(late.recv().await, json!({"event": "e", "channel": "cache-c", "data": [1]}));
}

#[tokio::test]
async fn signin_only_with_extra_events() {
    let server = spawn_server().await;
    let mut plain = Notif::connect(&server).await;
    let user_data = r#"{"id":"u7"}"#;
    let auth = crate::support::user_auth(&plain.socket_id, user_data);
    plain.send_json(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    plain.expect_error(4300).await;

    let mut extra = Notif::connect_extra(&server).await;
    let auth = crate::support::user_auth(&extra.socket_id, user_data);
    extra.send_json(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    let ok = extra.recv().await;
    assert_eq!(ok, json!({"event": "pusher:signin_success", "data": {"user_data": user_data}}));
    extra.send_json(json!({"event": "pusher:signin", "data": {"auth": "key-1:00", "user_data": user_data}})).await;
    extra.expect_error(4009).await;
    extra.assert_alive().await;
}

#[tokio::test]
async fn unsubscribe_has_no_reply_and_stops_delivery_at_once() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    assert_eq!(ws.subscribe("news").await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(ws.subscribe("other").await["event"], "pusher_internal:subscription_succeeded");
    ws.send_json(json!({"event": "unsubscribe", "data": {"channel": "news"}})).await;
    // No reply: the pong to a later ping is the very next frame.
    ws.assert_next_is_pong().await;
    let (status, body) = broadcast(&server, json!({"channel": "news", "event": "e", "data": 1})).await;
    assert_eq!((status, &body["subscriber_count"]), (200, &json!(0)), "{body}");
    ws.assert_next_is_marker(&server, "other").await;
    // Subscribing again delivers once, not twice (Notif added a second forwarder).
    for _ in 0..2 {
        assert_eq!(ws.subscribe("news").await["event"], "pusher_internal:subscription_succeeded");
    }
    let (status, body) = broadcast(&server, json!({"channel": "news", "event": "e", "data": 2})).await;
    assert_eq!((status, &body["subscriber_count"]), (200, &json!(1)), "{body}");
    assert_eq!(ws.recv().await, json!({"event": "e", "channel": "news", "data": 2}));
    ws.assert_next_is_marker(&server, "news").await;
}

#[tokio::test]
async fn client_events_as_in_pusher() {
    let server = spawn_server().await;
    const RATE: u32 = 3;
    update_app(&server, APP_ID, |s| s.limits.client_events_per_second = RATE).await;
    let mut a = Notif::connect(&server).await;
    let mut b = Notif::connect(&server).await;
    let mut p = server.connect().await;
    a.subscribe_private("private-chat").await;
    b.subscribe_private("private-chat").await;
    assert_eq!(p.subscribe_private("private-chat").await["event"], "pusher_internal:subscription_succeeded");

    a.send_json(json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "a"}})).await;
    assert_eq!(b.recv().await, json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "a"}}));
    let on_pusher = p.recv().await;
    assert_eq!(on_pusher["event"], "client-typing");
    assert_eq!(crate::support::ws::data(&on_pusher), json!({"who": "a"}), "Pusher gets the value JSON-encoded");
    // Not echoed to the sender.
    a.assert_next_is_marker(&server, "private-chat").await;
    assert_eq!(b.recv().await["event"], "marker");
    assert_eq!(p.recv().await["event"], "marker");

    // Public channels and unsubscribed channels refuse client events.
    a.subscribe("public").await;
    a.send_json(json!({"event": "client-x", "channel": "public", "data": {}})).await;
    a.expect_error(4300).await;
    a.send_json(json!({"event": "client-x", "channel": "private-other", "data": {}})).await;
    a.expect_error(4300).await;
    b.assert_next_is_marker(&server, "private-chat").await;

    // Rate limited with the app's limit: a fresh socket's full bucket admits RATE, then 4301.
    let mut r = Notif::connect(&server).await;
    r.subscribe_private("private-chat").await;
    const SENT: usize = 8;
    let started = std::time::Instant::now();
    for i in 0..SENT {
        r.send_json(json!({"event": "client-burst", "channel": "private-chat", "data": i})).await;
    }
    r.send_json(json!({"event": "ping"})).await;
    let mut refused = 0;
    loop {
        let v = r.recv().await;
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
    let (status, _) = broadcast(&server, json!({"channel": "private-chat", "event": "marker", "data": "m"})).await;
    assert_eq!(status, 200);
    let mut got = Vec::new();
    loop {
        let v = b.recv().await;
        if v["event"] == "marker" {
            break;
        }
        assert_eq!(v["event"], "client-burst", "{v}");
        got.push(v["data"].as_u64().unwrap());
    }
    assert_eq!(got.len(), admitted, "{got:?}");
    assert_eq!(got[..RATE as usize], [0, 1, 2]);
}

#[tokio::test]
async fn app_disabled_closes_live_sockets() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    switchboard::apps::set_enabled(&server.state.store, APP_ID, false).await.unwrap();
    server.refresh_apps().await;
    assert_eq!(ws.expect_close().await, 4003);
}

#[tokio::test]
async fn connection_quota_is_4100() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.max_connections = 1).await;
    let _one = Notif::connect(&server).await;
    let mut two = crate::notif_client::try_connect(&url(&server, &format!("?api_key={APP_KEY}")), &[]).await.unwrap();
    two.expect_error(4100).await;
    assert_eq!(two.expect_close().await, 4100);
}

#[tokio::test]
async fn shutdown_closes_with_4200() {
    let server = spawn_server().await;
    let mut ws = Notif::connect(&server).await;
    server.state.shutdown.trigger();
    assert_eq!(ws.expect_close().await, 4200);
}

impl Notif {
    async fn subscribe_with_event(&mut self, event: &str, data: Value) -> Value {
        self.send_json(json!({"event": event, "data": data})).await;
        self.recv().await
    }
}
