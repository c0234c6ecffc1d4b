//! User authentication (`pusher:signin`), `#server-to-user-{id}`, terminate_connections and
//! watchlist events.

use hyper::Method;
use serde_json::json;

use crate::support::ws::{assert_subscription_error, data};
use crate::support::{APP_ID, spawn_server, update_app, user_auth};

async fn sign_in(ws: &mut crate::support::Ws, user_data: &str) -> serde_json::Value {
    let auth = user_auth(&ws.socket_id, user_data);
    ws.send_json(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    ws.recv().await
}

#[tokio::test]
async fn signin_send_to_user_and_terminate() {
    let server = spawn_server().await;
    let user = "{\"id\":\"u-1\",\"user_info\":{\"name\":\"U\"}}";
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    let mut other = server.connect().await;
    for ws in [&mut a, &mut b] {
        let ok = sign_in(ws, user).await;
        assert_eq!(ok["event"], "pusher:signin_success");
        assert_eq!(data(&ok)["user_data"], user);
    }
    assert_eq!(sign_in(&mut other, "{\"id\":\"u-2\"}").await["event"], "pusher:signin_success");

    let (status, _) =
        server.http().trigger(json!({"name": "notice", "channel": "#server-to-user-u-1", "data": "hi"})).await;
    assert_eq!(status, 200);
    for ws in [&mut a, &mut b] {
        let ev = ws.recv().await;
        assert_eq!(ev, json!({"event": "notice", "channel": "#server-to-user-u-1", "data": "hi"}));
    }
    // Not u-2's: its next frame is an event sent to it later.
    let (status, _) =
        server.http().trigger(json!({"name": "marker", "channel": "#server-to-user-u-2", "data": "m"})).await;
    assert_eq!(status, 200);
    assert_eq!(other.recv().await, json!({"event": "marker", "channel": "#server-to-user-u-2", "data": "m"}));

    // The user itself may subscribe to its own channel (pusher-js does after signin): that is
    // confirmed, and only confirms (events still arrive once). Another signed-in user, or a
    // connection not signed in, is refused.
    let ok = a.subscribe("#server-to-user-u-1").await;
    assert_eq!(
        ok,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "#server-to-user-u-1", "data": "{}"})
    );
    let err = other.subscribe("#server-to-user-u-1").await;
    assert_subscription_error(&err, "#server-to-user-u-1", "AuthError", 401);
    let mut unsigned = server.connect().await;
    let err = unsigned.subscribe("#server-to-user-u-1").await;
    assert_subscription_error(&err, "#server-to-user-u-1", "AuthError", 401);
    for (name, ch) in [("once", "#server-to-user-u-1"), ("then", "#server-to-user-u-1"), ("own", "#server-to-user-u-2")]
    {
        let (status, _) = server.http().trigger(json!({"name": name, "channel": ch, "data": "x"})).await;
        assert_eq!(status, 200);
    }
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.recv().await["event"], "once");
        assert_eq!(ws.recv().await["event"], "then", "no second copy of the first");
    }
    assert_eq!(other.recv().await["event"], "own", "the refused subscription gave nothing");

    let (status, body) =
        server.http().signed(Method::POST, &format!("/apps/{APP_ID}/users/u-1/terminate_connections"), "{}", &[]).await;
    assert_eq!((status, body), (200, json!({})));
    for ws in [&mut a, &mut b] {
        ws.expect_error_and_close(4009).await;
    }
    other.assert_next_is_pong().await;
}

#[tokio::test]
async fn terminate_connections_at_the_python_sdk_path() {
    // pusher-http-python 3.x posts to /users/{id}/terminate_connections (no /apps/{id}) and
    // signs that path: the app is the one whose key signed it.
    let server = spawn_server().await;
    let mut a = server.connect().await;
    sign_in(&mut a, "{\"id\":\"u-7\"}").await;
    let mut other = server.connect().await;
    sign_in(&mut other, "{\"id\":\"u-8\"}").await;
    let http = server.http();
    let (status, body) = http.signed(Method::POST, "/users/u-7/terminate_connections", "{}", &[]).await;
    assert_eq!((status, body), (200, json!({})));
    a.expect_error_and_close(4009).await;
    other.assert_next_is_pong().await;

    // Signed for another path, or with a key no app has: 401.
    let q = switchboard::auth::pusher::sign_query(
        crate::support::APP_KEY,
        crate::support::APP_SECRET,
        "POST",
        &format!("/apps/{APP_ID}/users/u-8/terminate_connections"),
        b"",
        &[],
        crate::support::http::now(),
    );
    let (status, _) = http.request(Method::POST, &format!("/users/u-8/terminate_connections?{q}"), b"", &[]).await;
    assert_eq!(status, 401);
    let (status, err) = http
        .signed_as(
            "no-such-key",
            "x",
            Method::POST,
            "/users/u-8/terminate_connections",
            "",
            &[],
            crate::support::http::now(),
        )
        .await;
    assert_eq!(status, 401, "{err}");
    other.assert_alive().await;
}

#[tokio::test]
async fn signin_with_a_bad_signature_is_refused_and_closed() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    ws.send_json(json!({"event": "pusher:signin", "data": {"auth": "key-1:00", "user_data": "{\"id\":\"x\"}"}})).await;
    ws.expect_error_and_close(4009).await;
    let mut ws = server.connect().await;
    ws.send_json(json!({"event": "pusher:signin", "data": {"auth": 1}})).await;
    ws.expect_error(4300).await;
    ws.assert_next_is_pong().await;
    // user_data without an id, or with one over 128 characters, is refused even when signed.
    for user_data in [
        "{\"name\":\"no id\"}".to_owned(),
        "{\"id\":\"\"}".to_owned(),
        "{\"id\":7}".to_owned(),
        json!({"id": "é".repeat(129)}).to_string(),
    ] {
        let err = sign_in(&mut ws, &user_data).await;
        assert_eq!(err["event"], "pusher:error", "{user_data}: {err}");
        assert_eq!(err["data"]["code"], 4300, "{user_data}: {err}");
    }
    let longest = json!({"id": "é".repeat(128)}).to_string();
    assert_eq!(
        sign_in(&mut ws, &longest).await,
        json!({"event": "pusher:signin_success", "data": json!({"user_data": longest}).to_string()})
    );
}

#[tokio::test]
async fn watchlist_online_and_offline() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.switches.watchlist_events = true).await;
    let mut bob = server.connect().await;
    sign_in(&mut bob, "{\"id\":\"bob\"}").await;
    bob.expect_event("pusher_internal:watchlist_events").await;

    let mut alice = server.connect().await;
    let ok = sign_in(&mut alice, "{\"id\":\"alice\",\"watchlist\":[\"bob\",\"carol\"]}").await;
    assert_eq!(ok["event"], "pusher:signin_success");
    let initial = alice.expect_event("pusher_internal:watchlist_events").await;
    assert_eq!(data(&initial), json!({"events": [{"name": "online", "user_ids": ["bob"]}]}));

    let mut carol = server.connect().await;
    sign_in(&mut carol, "{\"id\":\"carol\"}").await;
    let ev = alice.expect_event("pusher_internal:watchlist_events").await;
    assert_eq!(data(&ev), json!({"events": [{"name": "online", "user_ids": ["carol"]}]}));

    bob.close().await;
    let ev = alice.expect_event("pusher_internal:watchlist_events").await;
    assert_eq!(data(&ev), json!({"events": [{"name": "offline", "user_ids": ["bob"]}]}));

    // At most 100 watched ids.
    let hundred: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    let mut dan = server.connect().await;
    let ok = sign_in(&mut dan, &json!({"id": "dan", "watchlist": hundred}).to_string()).await;
    assert_eq!(ok["event"], "pusher:signin_success");
    let too_many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let mut eve = server.connect().await;
    let ud = json!({"id": "eve", "watchlist": too_many}).to_string();
    let err = sign_in(&mut eve, &ud).await;
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["code"], 4302);
    eve.assert_next_is_pong().await;
}

#[tokio::test]
async fn watchlist_is_off_by_default() {
    let server = spawn_server().await;
    let mut alice = server.connect().await;
    let mut bob = server.connect().await;
    assert_eq!(sign_in(&mut bob, "{\"id\":\"bob\"}").await["event"], "pusher:signin_success");
    let ok = sign_in(&mut alice, "{\"id\":\"alice\",\"watchlist\":[\"bob\",\"carol\"]}").await;
    assert_eq!(ok["event"], "pusher:signin_success");
    // No initial watchlist_events (bob is online), and none as carol comes and bob goes.
    let mut carol = server.connect().await;
    assert_eq!(sign_in(&mut carol, "{\"id\":\"carol\"}").await["event"], "pusher:signin_success");
    bob.close().await;
    let (status, _) =
        server.http().trigger(json!({"name": "marker", "channel": "#server-to-user-alice", "data": "m"})).await;
    assert_eq!(status, 200);
    assert_eq!(alice.recv().await["event"], "marker");
}
