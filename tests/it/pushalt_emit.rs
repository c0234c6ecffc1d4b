//! `POST /api/message/emit` (SPEC §5): with `app_key`, with a Pusher signature, without either
//! (401 unless `legacy_open_emit`), for a deactivated app; the event `message` reaching a
//! pusher-js-protocol subscriber and a Notif socket on the same channel, each once and in its
//! own form (SPEC §1); every bad input a clear 4xx with the server still serving.

use hyper::Method;
use serde_json::{Value, json};

use crate::notif_client::Notif;
use crate::pushalt_admin::refused;
use crate::support::ws::data;
use crate::support::{APP_ID, APP_KEY, APP_SECRET, TestServer, create_app, spawn_server, update_app};

pub async fn emit(server: &TestServer, body: Value) -> (u16, Value) {
    server.http().json(Method::POST, "/api/message/emit", Some(body), None).await
}

const EMITTED: (u16, &str) = (200, "Message emitted to connected clients");

fn emitted(got: (u16, Value)) {
    assert_eq!(got, (EMITTED.0, json!({"success": true, "message": EMITTED.1})));
}

#[tokio::test]
async fn an_emit_reaches_pusher_and_notif_subscribers_of_the_channel_once_each() {
    let server = spawn_server().await;
    let mut pusher = server.connect().await;
    let mut notif = Notif::connect(&server).await;
    pusher.subscribe("orders").await;
    notif.subscribe("orders").await;
    let body = json!({"text": "Hello, world!", "n": [1, 2]});
    emitted(
        emit(&server, json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "orders", "body": body})).await,
    );
    // Pusher clients get `data` as a JSON string, Notif clients the value.
    let frame = pusher.expect_event("message").await;
    assert_eq!((&frame["channel"], data(&frame)), (&json!("orders"), body.clone()));
    assert!(frame["data"].is_string(), "{frame}");
    assert_eq!(notif.recv().await, json!({"event": "message", "channel": "orders", "data": body}));
    // A string body stays a string.
    emitted(
        emit(&server, json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "orders", "body": "plain"}))
            .await,
    );
    assert_eq!(notif.recv().await["data"], "plain");
    assert_eq!(data(&pusher.expect_event("message").await), "plain");
    // Each got each emit once: the next frame on both is a marker published after them.
    server.assert_next_is_marker(&mut pusher, "orders").await;
    assert_eq!(notif.recv().await, json!({"event": "marker", "channel": "orders", "data": "m"}));
    // Another channel's and another app's subscribers get nothing.
    create_app(&server, "app-2", "key-2", "secret-2").await;
    emitted(
        emit(&server, json!({"app_id": "app-2", "app_key": "secret-2", "channel_name": "orders", "body": 1})).await,
    );
    emitted(emit(&server, json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "other", "body": 1})).await);
    server.assert_next_is_marker(&mut pusher, "orders").await;
    assert_eq!(notif.recv().await, json!({"event": "marker", "channel": "orders", "data": "m"}));
    server.stop().await;
}

#[tokio::test]
async fn a_pusher_signature_emits_too() {
    let server = spawn_server().await;
    let mut notif = Notif::connect(&server).await;
    notif.subscribe("signed").await;
    let body = json!({"app_id": APP_ID, "channel_name": "signed", "body": {"via": "signature"}}).to_string();
    let (status, v) = server.http().signed(Method::POST, "/api/message/emit", &body, &[]).await;
    assert_eq!((status, &v["message"]), (200, &json!(EMITTED.1)), "{v}");
    assert_eq!(notif.recv().await["data"], json!({"via": "signature"}));
    let now = crate::support::http::now();
    let wrong = server.http().signed_as(APP_KEY, "wrong", Method::POST, "/api/message/emit", &body, &[], now).await;
    refused(wrong, 401, "Invalid workspace or credentials");
    let stale =
        server.http().signed_as(APP_KEY, APP_SECRET, Method::POST, "/api/message/emit", &body, &[], now - 3600).await;
    refused(stale, 401, "Invalid workspace or credentials");
    let unknown = server.http().signed_as("nope", APP_SECRET, Method::POST, "/api/message/emit", &body, &[], now).await;
    refused(unknown, 401, "Invalid workspace or credentials");
    // The signature covers the body: another body under the same query is refused.
    let q = switchboard::auth::pusher::sign_query(
        APP_KEY,
        APP_SECRET,
        "POST",
        "/api/message/emit",
        body.as_bytes(),
        &[],
        now,
    );
    let tampered = json!({"app_id": APP_ID, "channel_name": "signed", "body": {"via": "forgery"}}).to_string();
    let got = server.http().request(Method::POST, &format!("/api/message/emit?{q}"), tampered.as_bytes(), &[]).await;
    refused(got, 401, "Invalid workspace or credentials");
    // Signed by one app for another's channel.
    create_app(&server, "app-2", "key-2", "secret-2").await;
    let other = json!({"app_id": "app-2", "channel_name": "signed", "body": 1}).to_string();
    refused(
        server.http().signed(Method::POST, "/api/message/emit", &other, &[]).await,
        401,
        "Invalid workspace or credentials",
    );
    notif.assert_next_is_marker(&server, "signed").await;
    server.stop().await;
}

#[tokio::test]
async fn without_credentials_only_with_legacy_open_emit() {
    let server = spawn_server().await;
    let mut notif = Notif::connect(&server).await;
    notif.subscribe("open").await;
    let open = json!({"app_id": APP_ID, "channel_name": "open", "body": {"anyone": true}});
    refused(emit(&server, open.clone()).await, 401, "app_key required: send the workspace app_key");
    refused(
        emit(&server, json!({"app_id": APP_ID, "app_key": "", "channel_name": "open", "body": 1})).await,
        401,
        "app_key required: send the workspace app_key",
    );
    refused(
        emit(&server, json!({"app_id": APP_ID, "app_key": "wrong", "channel_name": "open", "body": 1})).await,
        401,
        "Invalid workspace or credentials",
    );
    refused(
        emit(&server, json!({"app_id": APP_ID, "app_key": APP_KEY, "channel_name": "open", "body": 1})).await,
        401,
        "Invalid workspace or credentials",
    );
    update_app(&server, APP_ID, |s| s.switches.legacy_open_emit = true).await;
    emitted(emit(&server, open).await);
    assert_eq!(notif.recv().await["data"], json!({"anyone": true}));
    // A wrong key is still wrong with the switch on.
    refused(
        emit(&server, json!({"app_id": APP_ID, "app_key": "wrong", "channel_name": "open", "body": 1})).await,
        401,
        "Invalid workspace or credentials",
    );
    notif.assert_next_is_marker(&server, "open").await;
    server.stop().await;
}

#[tokio::test]
async fn a_deactivated_workspace_emits_nothing() {
    let server = spawn_server().await;
    let body = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "c", "body": 1});
    switchboard::apps::set_enabled(&server.state.store, APP_ID, false).await.unwrap();
    server.refresh_apps().await;
    refused(emit(&server, body.clone()).await, 401, "Workspace Deactivated");
    let signed = server.http().signed(Method::POST, "/api/message/emit", &body.to_string(), &[]).await;
    refused(signed, 401, "Workspace Deactivated");
    switchboard::apps::set_enabled(&server.state.store, APP_ID, true).await.unwrap();
    server.refresh_apps().await;
    emitted(emit(&server, body).await);
    server.stop().await;
}

#[tokio::test]
async fn bad_emits_are_clear_errors_and_the_server_keeps_serving() {
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.max_message_bytes = 1000).await;
    let mut notif = Notif::connect(&server).await;
    notif.subscribe("c").await;
    let required = "app_id, channel_name, and body are required";
    let with = |extra: Value| {
        let mut b = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "c", "body": 1});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    // Push-Alt took a falsy body for a missing one.
    for body in [json!(null), json!(false), json!(0), json!("")] {
        refused(emit(&server, with(json!({"body": body}))).await, 400, required);
    }
    refused(emit(&server, json!({"app_id": APP_ID, "app_key": APP_SECRET, "body": 1})).await, 400, required);
    refused(emit(&server, json!({"channel_name": "c", "body": 1})).await, 400, required);
    refused(emit(&server, with(json!({"app_id": "nope"}))).await, 404, "Workspace not found");
    refused(emit(&server, with(json!({"app_id": "' OR '1'='1"}))).await, 404, "Workspace not found");
    for channel in ["has space", "'; DROP TABLE apps; --", "a/b"] {
        let (status, v) = emit(&server, with(json!({"channel_name": channel}))).await;
        assert_eq!((status, &v["success"]), (400, &json!(false)), "{channel}: {v}");
    }
    let (status, v) = emit(&server, with(json!({"body": "x".repeat(2000)}))).await;
    assert_eq!((status, &v["success"]), (413, &json!(false)), "{v}");
    for raw in ["", "not json", "[1,2]", "{\"app_id\":", "{\"app_id\": {\"a\": 1}}"] {
        let (status, v) = server.http().request(Method::POST, "/api/message/emit", raw.as_bytes(), &[]).await;
        assert_eq!((status, &v["success"]), (400, &json!(false)), "{raw}: {v}");
    }
    // An unsigned body past the server's bound is refused before it is read, and the
    // connection closed.
    let huge = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "c", "body": "x".repeat(200_000)});
    let (status, headers, v) =
        server.http().request_full(Method::POST, "/api/message/emit", huge.to_string().as_bytes(), &[]).await;
    assert_eq!((status, &v["success"]), (413, &json!(false)), "{v}");
    assert_eq!(headers.get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    // Another method: 405 in Push-Alt's envelope, with Allow.
    let (status, headers, v) = server.http().request_full(Method::GET, "/api/message/emit", b"", &[]).await;
    assert_eq!((status, v), (405, json!({"success": false, "message": "Method not allowed"})));
    assert_eq!(headers.get("allow").map(|v| v.to_str().unwrap()), Some("POST"));
    // Nothing of that reached the subscriber, and the server still emits.
    notif.assert_next_is_marker(&server, "c").await;
    emitted(emit(&server, with(json!({}))).await);
    assert_eq!(notif.recv().await["data"], 1);
    server.stop().await;
}

#[tokio::test]
async fn an_unsigned_emit_is_read_up_to_the_servers_bound_whatever_an_app_allows() {
    let server = spawn_server().await;
    // Any account can raise its own app's limit; strangers must not get to send that much
    // before a credential is checked.
    update_app(&server, APP_ID, |s| s.limits.max_message_bytes = 1024 * 1024).await;
    let mut notif = Notif::connect(&server).await;
    notif.subscribe("big").await;
    let data = "x".repeat(200_000);
    let body = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "big", "body": data}).to_string();
    let (status, headers, v) =
        server.http().request_full(Method::POST, "/api/message/emit", body.as_bytes(), &[]).await;
    assert_eq!(status, 413, "{v}");
    assert!(v["message"].as_str().unwrap().contains("sign larger ones"), "{v}");
    assert_eq!(headers.get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    // Signed, the app and its secret are known before the read: its own limit applies.
    let signed = json!({"app_id": APP_ID, "channel_name": "big", "body": data}).to_string();
    let (status, v) = server.http().signed(Method::POST, "/api/message/emit", &signed, &[]).await;
    assert_eq!((status, &v["message"]), (200, &json!(EMITTED.1)), "{v}");
    assert_eq!(notif.recv().await["data"], json!(data));
    // Within the server's bound an unsigned emit may still use the app's larger limit.
    let medium = "y".repeat(50_000);
    emitted(
        emit(&server, json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "big", "body": medium})).await,
    );
    assert_eq!(notif.recv().await["data"], json!(medium));
    server.stop().await;
}

#[tokio::test]
async fn broker_down_is_503_and_nothing_is_emitted() {
    let server = spawn_server().await;
    let body = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "c", "body": 1});
    server.broker.set_down(true);
    let (status, headers, v) =
        server.http().request_full(Method::POST, "/api/message/emit", body.to_string().as_bytes(), &[]).await;
    assert_eq!((status, &v["success"]), (503, &json!(false)), "{v}");
    assert_eq!(headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    server.broker.set_down(false);
    emitted(emit(&server, body).await);
    server.stop().await;
}

#[tokio::test]
async fn the_apps_api_rate_limit_applies() {
    const RATE: u32 = 2;
    let server = spawn_server().await;
    update_app(&server, APP_ID, |s| s.limits.api_requests_per_second = RATE).await;
    let body = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "c", "body": 1}).to_string();
    let started = std::time::Instant::now();
    let mut admitted = 0;
    let (headers, v) = loop {
        assert!(admitted <= 10 * RATE as usize, "never refused after {admitted} emits");
        let (status, headers, v) =
            server.http().request_full(Method::POST, "/api/message/emit", body.as_bytes(), &[]).await;
        match status {
            200 => admitted += 1,
            429 => break (headers, v),
            other => panic!("{other} {v}"),
        }
    };
    let window = crate::support::bucket_admits(RATE, RATE, started.elapsed());
    assert!(window.contains(&admitted), "admitted {admitted}, the bucket allows {window:?}");
    assert_eq!(v, json!({"success": false, "message": "Too many requests, please try again later."}));
    assert_eq!(crate::support::retry_after(&headers), 1);
    server.stop().await;
}
