//! Push-Alt's Socket.IO side on the real server (SPEC §5, CONTRACTS §1.3), through raw Engine.IO
//! clients at `/ws`: `join_channel` → `joined`, several channels, every refusal (`error`, then
//! the server's DISCONNECT), the core's limits at join, emits named
//! `workspace:<n>:<channel>:message`, and the `message` relay (first channel only, sender
//! included, Socket.IO sockets only) with its size and rate limits.

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::notif_client::{Notif, url};
use crate::pushalt_admin::call;
use crate::pushalt_channel::channel_auth;
use crate::support::sio::{SioPoll, SioWs};
use crate::support::{APP_ID, APP_KEY, APP_SECRET, TestServer, create_app, spawn_server, update_app};

const PATH: &str = "/ws";
const INVALID: &str = "Invalid token or channel";

/// A Socket.IO socket in the main namespace of `/ws`, over WebSocket.
async fn socket(server: &TestServer) -> SioWs {
    let (ws, answer) = SioWs::connect_nsp(server.addr, PATH, "/", "").await;
    assert!(answer.starts_with("40{"), "{answer}");
    ws
}

/// The same, its handshake sent with `Origin: origin`.
async fn socket_from(server: &TestServer, origin: &str) -> SioWs {
    let mut req = format!("ws://{}{PATH}?EIO=4&transport=websocket", server.addr).into_client_request().unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let (inner, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = SioWs { inner, handshake: Value::Null };
    assert!(ws.text().await.starts_with('0'), "an open packet");
    assert!(ws.join("/", "").await.starts_with("40{"));
    ws
}

/// A token for `channel` of app `app` (secret `secret`), valid `ttl` seconds.
async fn token(server: &TestServer, app: &str, secret: &str, channel: &str, ttl: u64) -> String {
    let body = json!({"app_id": app, "app_key": secret, "channel_name": channel, "expires_in_seconds": ttl});
    let (status, v) = channel_auth(server, body).await;
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

async fn default_token(server: &TestServer, channel: &str) -> String {
    token(server, APP_ID, APP_SECRET, channel, 120).await
}

fn number(server: &TestServer, app: &str) -> i64 {
    server.state.apps.by_id(app).unwrap().number
}

fn join_packet(token: &str, channel: &str) -> String {
    format!(r#"42["join_channel",{}]"#, json!({"token": token, "channel_name": channel}))
}

fn joined(channel: &str, n: i64) -> String {
    format!(r#"42["joined",{{"message":"Connected to {channel} in workspace {n}"}}]"#)
}

fn error(message: &str) -> String {
    format!(r#"42["error",{}]"#, json!({ "message": message }))
}

/// Joins with `token` and returns the answer.
async fn join(ws: &mut SioWs, token: &str) -> String {
    ws.send(&join_packet(token, "ignored")).await;
    ws.text().await
}

/// `error {message}`, then the server's DISCONNECT of the namespace.
async fn expect_refused(ws: &mut SioWs, message: &str) {
    assert_eq!(ws.text().await, error(message));
    assert_eq!(ws.text().await, "41", "the server disconnects the socket");
}

async fn emit(server: &TestServer, channel: &str, body: Value) {
    let body = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": channel, "body": body});
    let (status, v) = call(server, Method::POST, "/api/message/emit", Some(body), None).await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn a_socket_joins_with_a_token_and_gets_emits_named_by_workspace() {
    let server = spawn_server().await;
    let n = number(&server, APP_ID);
    let mut ws = socket(&server).await;
    let token = default_token(&server, "orders").await;
    // `channel_name` is ignored: the token names the channel.
    ws.send(&join_packet(&token, "something-else")).await;
    assert_eq!(ws.text().await, joined("orders", n));
    emit(&server, "orders", json!({"order": 7})).await;
    assert_eq!(ws.text().await, format!(r#"42["workspace:{n}:orders:message",{{"order":7}}]"#));
    // A string body stays a string; the same token works again (clients rejoin on reconnect).
    emit(&server, "orders", json!("7")).await;
    assert_eq!(ws.text().await, format!(r#"42["workspace:{n}:orders:message","7"]"#));
    let mut again = socket(&server).await;
    assert_eq!(join(&mut again, &token).await, joined("orders", n));
    server.stop().await;
}

#[tokio::test]
async fn a_polling_socket_joins_and_receives() {
    let server = spawn_server().await;
    let n = number(&server, APP_ID);
    let poll = SioPoll::connect(server.addr, PATH).await;
    assert_eq!(poll.post(&["40"]).await, 200);
    assert!(poll.packets(1).await[0].starts_with("40{"));
    let token = default_token(&server, "orders").await;
    assert_eq!(poll.post(&[&join_packet(&token, "orders")]).await, 200);
    assert_eq!(poll.packets(1).await, vec![joined("orders", n)]);
    emit(&server, "orders", json!([1, 2])).await;
    assert_eq!(poll.packets(1).await, vec![format!(r#"42["workspace:{n}:orders:message",[1,2]]"#)]);
    server.stop().await;
}

#[tokio::test]
async fn one_socket_joins_several_channels_each_once() {
    let server = spawn_server().await;
    let n = number(&server, APP_ID);
    let mut ws = socket(&server).await;
    let (a, b) = (default_token(&server, "a").await, default_token(&server, "b").await);
    assert_eq!(join(&mut ws, &a).await, joined("a", n));
    assert_eq!(join(&mut ws, &b).await, joined("b", n));
    // Joining again is answered again, and the socket still gets each event once.
    assert_eq!(join(&mut ws, &a).await, joined("a", n));
    emit(&server, "a", json!(1)).await;
    emit(&server, "b", json!(2)).await;
    assert_eq!(ws.text().await, format!(r#"42["workspace:{n}:a:message",1]"#));
    assert_eq!(ws.text().await, format!(r#"42["workspace:{n}:b:message",2]"#));
    ws.expect_silence(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn forged_malformed_and_missing_tokens_are_refused_then_disconnected() {
    let server = spawn_server().await;
    let forged = "f".repeat(64);
    for payload in [
        format!(r#"42["join_channel",{{"token":"{forged}"}}]"#),
        r#"42["join_channel",{"token":""}]"#.to_owned(),
        r#"42["join_channel",{"token":{"$ne":null}}]"#.to_owned(),
        r#"42["join_channel",{"channel_name":"orders"}]"#.to_owned(),
        r#"42["join_channel",null]"#.to_owned(),
        r#"42["join_channel","a token as a string"]"#.to_owned(),
        r#"42["join_channel"]"#.to_owned(),
    ] {
        let mut ws = socket(&server).await;
        ws.send(&payload).await;
        expect_refused(&mut ws, INVALID).await;
    }
    // The server is fine, and a good token still joins.
    let mut ws = socket(&server).await;
    let good = default_token(&server, "orders").await;
    assert_eq!(join(&mut ws, &good).await, joined("orders", number(&server, APP_ID)));
    server.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused_to_the_second() {
    let server = spawn_server().await;
    let token = token(&server, APP_ID, APP_SECRET, "soon", 1).await;
    let mut early = socket(&server).await;
    assert_eq!(join(&mut early, &token).await, joined("soon", number(&server, APP_ID)));
    // Valid to the second: one second, rounded up to a whole one, then refused.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut late = socket(&server).await;
    late.send(&join_packet(&token, "soon")).await;
    expect_refused(&mut late, INVALID).await;
    server.stop().await;
}

#[tokio::test]
async fn a_deactivated_workspace_refuses_joins_and_closes_its_sockets() {
    let server = spawn_server().await;
    let token = default_token(&server, "orders").await;
    let mut member = socket(&server).await;
    assert_eq!(join(&mut member, &token).await, joined("orders", number(&server, APP_ID)));
    switchboard::apps::set_enabled(&server.state.store, APP_ID, false).await.unwrap();
    server.refresh_apps().await;
    member.expect_closed().await;
    let mut ws = socket(&server).await;
    ws.send(&join_packet(&token, "orders")).await;
    expect_refused(&mut ws, INVALID).await;
    server.stop().await;
}

#[tokio::test]
async fn one_socket_one_workspace() {
    let server = spawn_server().await;
    create_app(&server, "app-2", "key-2", "secret-2-of-the-tests").await;
    let mut ws = socket(&server).await;
    let mine = default_token(&server, "orders").await;
    let theirs = token(&server, "app-2", "secret-2-of-the-tests", "orders", 120).await;
    assert_eq!(join(&mut ws, &mine).await, joined("orders", number(&server, APP_ID)));
    ws.send(&join_packet(&theirs, "orders")).await;
    expect_refused(&mut ws, "This socket has joined channels of another workspace: open one socket per workspace")
        .await;
    // Another socket joins app-2's channel, which is not app-1's `orders`.
    let mut other = socket(&server).await;
    assert_eq!(join(&mut other, &theirs).await, joined("orders", number(&server, "app-2")));
    emit(&server, "orders", json!("app-1 only")).await;
    other.expect_silence(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn the_token_app_s_own_origins_are_checked_at_join() {
    let server = spawn_server().await;
    create_app(&server, "app-2", "key-2", "secret-2-of-the-tests").await;
    update_app(&server, APP_ID, |s| s.allowed_origins = vec!["https://one.example".into()]).await;
    update_app(&server, "app-2", |s| s.allowed_origins = vec!["https://two.example".into()]).await;
    let token = default_token(&server, "orders").await;
    // Both origins are in the global list (every app's origins); only one is app-1's.
    let mut foreign = socket_from(&server, "https://two.example").await;
    foreign.send(&join_packet(&token, "orders")).await;
    expect_refused(&mut foreign, INVALID).await;
    let mut own = socket_from(&server, "https://one.example").await;
    assert_eq!(join(&mut own, &token).await, joined("orders", number(&server, APP_ID)));
    // An app with a list of its own wants a listed Origin, as its Pusher sockets do (a native
    // client sends none; the global handshake check lets it through, the app's does not).
    let mut native = socket(&server).await;
    native.send(&join_packet(&token, "orders")).await;
    expect_refused(&mut native, INVALID).await;
    server.stop().await;
}

#[tokio::test]
async fn the_app_s_channel_limit_and_connection_quota_apply_at_join() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| {
        s.limits.max_channels_per_connection = 1;
        s.limits.max_connections = 1;
    })
    .await;
    let n = number(&server, APP_ID);
    let mut ws = socket(&server).await;
    assert_eq!(join(&mut ws, &default_token(&server, "a").await).await, joined("a", n));
    let b = default_token(&server, "b").await;
    ws.send(&join_packet(&b, "b")).await;
    expect_refused(&mut ws, "Too many channels on this socket (at most 1)").await;
    // The first socket still holds app-1's one connection: the next is over the quota.
    let mut second = socket(&server).await;
    second.send(&join_packet(&b, "b")).await;
    expect_refused(&mut second, "Workspace is over its connection quota").await;
    server.stop().await;
}

#[tokio::test]
async fn message_is_relayed_to_the_first_channel_s_socket_io_sockets_only() {
    let server = spawn_server().await;
    let n = number(&server, APP_ID);
    let (room, elsewhere) = (default_token(&server, "room").await, default_token(&server, "elsewhere").await);
    let mut a = socket(&server).await;
    let b = SioPoll::connect(server.addr, PATH).await;
    let mut c = socket(&server).await;
    assert_eq!(join(&mut a, &room).await, joined("room", n));
    assert_eq!(join(&mut a, &elsewhere).await, joined("elsewhere", n));
    assert_eq!(b.post(&["40", &join_packet(&room, "room")]).await, 200);
    let got = b.packets(2).await;
    assert_eq!(got[1], joined("room", n));
    assert_eq!(join(&mut c, &elsewhere).await, joined("elsewhere", n));
    // A Pusher and a Notif subscriber of the same channel.
    let mut pusher = server.connect().await;
    pusher.subscribe("room").await;
    let mut notif = Notif::connect_url(&url(&server, &format!("?api_key={APP_KEY}")), &[]).await;
    notif.subscribe("room").await;

    a.send(r#"42["message",{"text":"hi","n":1}]"#).await;
    let relay = r#"42["message",{"text":"hi","n":1}]"#;
    assert_eq!(a.text().await, relay, "the sender gets its own relay");
    assert_eq!(b.packets(1).await, vec![relay.to_owned()]);
    c.expect_silence(Duration::from_millis(200)).await;
    // The relay came before these markers, had it reached them.
    server.assert_next_is_marker(&mut pusher, "room").await;
    notif.assert_next_is_marker(&server, "room").await;
    for _ in 0..2 {
        assert_eq!(a.text().await, format!(r#"42["workspace:{n}:room:marker","m"]"#));
    }
    // Only the first argument travels, as Push-Alt's handler took it; none is null.
    a.send(r#"42["message"]"#).await;
    assert_eq!(a.text().await, r#"42["message",null]"#);
    server.stop().await;
}

#[tokio::test]
async fn a_socket_that_joined_nothing_relays_nothing() {
    let server = spawn_server().await;
    let mut lonely = socket(&server).await;
    lonely.send(r#"42["message","to nobody"]"#).await;
    lonely.expect_silence(Duration::from_millis(200)).await;
    let token = default_token(&server, "orders").await;
    assert_eq!(join(&mut lonely, &token).await, joined("orders", number(&server, APP_ID)));
    server.stop().await;
}

#[tokio::test]
async fn a_relay_over_10_kb_gets_error_and_the_socket_stays() {
    let server = spawn_server().await;
    let token = default_token(&server, "big").await;
    let (mut a, mut b) = (socket(&server).await, socket(&server).await);
    for ws in [&mut a, &mut b] {
        assert_eq!(join(ws, &token).await, joined("big", number(&server, APP_ID)));
    }
    a.send(&format!(r#"42["message","{}"]"#, "x".repeat(11 * 1024))).await;
    assert_eq!(a.text().await, error("Message too large: at most 10240 bytes"));
    b.expect_silence(Duration::from_millis(200)).await;
    a.send(r#"42["message","small"]"#).await;
    assert_eq!(a.text().await, r#"42["message","small"]"#);
    assert_eq!(b.text().await, r#"42["message","small"]"#);
    server.stop().await;
}

#[tokio::test]
async fn relays_past_10_a_second_get_error_and_the_next_second_has_room() {
    let server = spawn_server().await;
    let token = default_token(&server, "rate").await;
    let mut a = socket(&server).await;
    assert_eq!(join(&mut a, &token).await, joined("rate", number(&server, APP_ID)));
    for i in 0..25 {
        a.send(&format!(r#"42["message",{i}]"#)).await;
    }
    let (mut relayed, mut refused) = (Vec::new(), 0);
    while relayed.len() + refused < 25 {
        let text = a.text().await;
        if text == error("Too many messages: at most 10 a second") {
            refused += 1;
        } else {
            let v: Value = serde_json::from_str(text.strip_prefix("42").unwrap()).unwrap();
            assert_eq!(v[0], "message", "{text}");
            relayed.push(v[1].as_u64().unwrap());
        }
    }
    assert!((10..=11).contains(&relayed.len()), "relayed {relayed:?}");
    assert!(relayed.is_sorted(), "in order: {relayed:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.send(r#"42["message","later"]"#).await;
    assert_eq!(a.text().await, r#"42["message","later"]"#);
    server.stop().await;
}

#[tokio::test]
async fn relays_go_through_the_broker_and_stay_on_this_node_while_it_is_down() {
    let server = spawn_server().await;
    let token = default_token(&server, "room").await;
    let (mut a, mut b) = (socket(&server).await, socket(&server).await);
    for ws in [&mut a, &mut b] {
        assert_eq!(join(ws, &token).await, joined("room", number(&server, APP_ID)));
    }
    server.broker.set_down(true);
    a.send(r#"42["message","while down"]"#).await;
    assert_eq!(a.text().await, r#"42["message","while down"]"#);
    assert_eq!(b.text().await, r#"42["message","while down"]"#);
    // An emit (HTTP) is refused meanwhile: the broker is the path every publish takes.
    let body = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "room", "body": 1});
    let (status, _) = call(&server, Method::POST, "/api/message/emit", Some(body), None).await;
    assert_eq!(status, 503);
    server.broker.set_down(false);
    a.send(r#"42["message","back"]"#).await;
    assert_eq!(b.text().await, r#"42["message","back"]"#);
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_joins_is_bounded_and_the_socket_stays() {
    let server = spawn_server().await;
    let token = default_token(&server, "orders").await;
    let mut ws = socket(&server).await;
    for _ in 0..30 {
        ws.send(&join_packet(&token, "orders")).await;
    }
    let (mut joins, mut refused) = (0, 0);
    while joins + refused < 30 {
        let text = ws.text().await;
        if text == joined("orders", number(&server, APP_ID)) {
            joins += 1;
        } else {
            let v: Value = serde_json::from_str(text.strip_prefix("42").unwrap()).unwrap();
            assert_eq!(v[0], "error", "{text}");
            let message = v[1]["message"].as_str().unwrap();
            assert!(message.starts_with("Too many joins"), "{message}");
            refused += 1;
        }
    }
    assert!((1..=11).contains(&joins), "{joins} joins answered");
    // Still joined: it gets the channel's emits.
    emit(&server, "orders", json!("still here")).await;
    assert_eq!(ws.text().await, format!(r#"42["workspace:{}:orders:message","still here"]"#, number(&server, APP_ID)));
    server.stop().await;
}

/// The join limits are the connection's: leaving the namespace and connecting again gives a
/// new socket, not new room for token checks (each a store lookup) or relays.
#[tokio::test]
async fn reconnecting_the_namespace_does_not_reset_the_join_limits() {
    let server = spawn_server().await;
    let token = default_token(&server, "orders").await;
    let mut ws = socket(&server).await;
    ws.send("41").await;
    for _ in 0..30 {
        ws.send("40").await;
        ws.send(&join_packet(&token, "orders")).await;
        ws.send("41").await;
    }
    let (mut connects, mut refused) = (0, 0);
    while connects < 30 {
        let text = ws.text().await;
        if text.starts_with("40{") {
            connects += 1;
        } else if text == joined("orders", number(&server, APP_ID)) || text == "41" {
            // A check that finished before its socket left.
        } else {
            let v: Value = serde_json::from_str(text.strip_prefix("42").unwrap()).unwrap();
            assert_eq!(v[0], "error", "{text}");
            assert!(v[1]["message"].as_str().unwrap().starts_with("Too many joins"), "{text}");
            refused += 1;
        }
    }
    assert!(refused >= 15, "only {refused} of 30 joins refused");
    server.stop().await;
}
