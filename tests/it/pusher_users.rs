//! User authentication (`pusher:signin`), `#server-to-user-{id}`, terminate_connections and
//! watchlist events.

use hyper::Method;
use serde_json::json;

use crate::support::ws::{Frame, data};
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
    sign_in(&mut other, "{\"id\":\"u-2\"}").await;

    let (status, _) =
        server.http().trigger(json!({"name": "notice", "channel": "#server-to-user-u-1", "data": "hi"})).await;
    assert_eq!(status, 200);
    for ws in [&mut a, &mut b] {
        let ev = ws.recv().await;
        assert_eq!(ev["event"], "notice");
        assert_eq!(ev["channel"], "#server-to-user-u-1");
    }
    other.assert_silent(200).await;

    // Another user cannot subscribe to this user's channel; the user itself may (pusher-js
    // does after signin), which only confirms.
    let err = other.subscribe("#server-to-user-u-1").await;
    assert_eq!(err["event"], "pusher:subscription_error");
    let ok = a.subscribe("#server-to-user-u-1").await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let unsigned = server.connect().await;
    let mut unsigned = unsigned;
    assert_eq!(unsigned.subscribe("#server-to-user-u-1").await["event"], "pusher:subscription_error");

    let (status, body) =
        server.http().signed(Method::POST, &format!("/apps/{APP_ID}/users/u-1/terminate_connections"), "{}", &[]).await;
    assert_eq!((status, body), (200, json!({})));
    for ws in [&mut a, &mut b] {
        let code = ws.expect_close().await;
        assert_eq!(code, 4009);
    }
    other.assert_alive().await;
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
    assert_eq!(a.expect_close().await, 4009);
    other.assert_alive().await;

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
    assert_eq!(ws.recv().await["event"], "pusher:error");
    ws.assert_alive().await;
    // user_data without an id is refused even when signed.
    let ok = sign_in(&mut ws, "{\"name\":\"no id\"}").await;
    assert_eq!(ok["event"], "pusher:error");
    let long = format!("{{\"id\":\"{}\"}}", "x".repeat(129));
    assert_eq!(sign_in(&mut ws, &long).await["event"], "pusher:error");
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

    let too_many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let mut eve = server.connect().await;
    let ud = json!({"id": "eve", "watchlist": too_many}).to_string();
    let err = sign_in(&mut eve, &ud).await;
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["code"], 4302);
}

#[tokio::test]
async fn watchlist_is_off_by_default() {
    let server = spawn_server().await;
    let mut alice = server.connect().await;
    let ok = sign_in(&mut alice, "{\"id\":\"alice\",\"watchlist\":[\"bob\"]}").await;
    assert_eq!(ok["event"], "pusher:signin_success");
    if let Some(Frame::Json(v)) = alice.next_within(std::time::Duration::from_millis(300)).await {
        panic!("unexpected {v}");
    }
}
