//! Push through the chat: users register devices with Hestia's routes, and a message reaches
//! the local FCM receiver and Web Push endpoint (decrypted there with the subscription's keys)
//! when its recipient has no live socket, and not when the recipient is online or
//! `do_not_disturb`; the sender is never notified; gone devices are removed and a failing
//! service is retried. (A socket here is a core connection in the user's room, which is what
//! "online" means; the JavaScript suite does the same with socket.io-client.)

use hyper::Method;
use serde_json::{Value, json};
use switchboard::chat::rooms;
use switchboard::core::{ChannelRules, ConnHandle, Transport};

use crate::support::push::{Browser, Received, Receiver};
use crate::support::{Http, TestServer, spawn_with};

const RULES: ChannelRules = ChannelRules { max_members: 100, max_channels: 100, subscription_count: false };

struct U {
    id: i64,
    token: String,
}

async fn register(http: &Http, username: &str) -> U {
    let body = json!({"username": username, "password": "password-123"});
    let (s, b) = http.json(Method::POST, "/auth/register", Some(body), None).await;
    assert_eq!(s, 201, "{b}");
    U { id: b["user"]["id"].as_i64().unwrap(), token: b["token"].as_str().unwrap().to_owned() }
}

async fn call(http: &Http, method: Method, path: &str, body: Option<Value>, who: &U) -> (u16, Value) {
    http.json(method, path, body, Some(&who.token)).await
}

async fn befriend(http: &Http, a: &U, b: &U) {
    assert_eq!(call(http, Method::POST, &format!("/friends/request/{}", b.id), None, a).await.0, 200);
    assert_eq!(call(http, Method::POST, &format!("/friends/accept/{}", a.id), None, b).await.0, 200);
}

async fn server_with(receiver: &Receiver) -> TestServer {
    let service_account = receiver.service_account();
    let base = receiver.base_url();
    spawn_with(move |c| {
        c.push.fcm_service_account = Some(switchboard::config::Secret(service_account));
        c.push.fcm_base_url = base;
        c.push.allow_loopback_http = true;
        c.push.retry_base_ms = 50;
    })
    .await
}

/// Registers an FCM token and a Web Push subscription (at `/wp/{name}`) for `who`.
async fn devices(http: &Http, receiver: &Receiver, who: &U, name: &str) -> Browser {
    let (s, b) =
        call(http, Method::PATCH, "/users/fcm-token", Some(json!({"token": format!("{name}-device")})), who).await;
    assert_eq!((s, &b), (200, &json!({"success": true})));
    let browser = Browser::new();
    let sub = json!({
        "endpoint": receiver.endpoint(name),
        "expirationTime": null,
        "keys": {"p256dh": browser.p256dh(), "auth": browser.auth()},
    });
    let (s, b) = call(http, Method::PATCH, "/users/web-push", Some(sub), who).await;
    assert_eq!((s, &b), (200, &json!({"success": true})));
    browser
}

/// The next `n` pushes, as (device, title, body, data): FCM by token, Web Push by endpoint id
/// and decrypted with the browser of that id.
async fn pushes(receiver: &mut Receiver, n: usize, browsers: &[(&str, &Browser)]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for _ in 0..n {
        match receiver.next().await {
            Received::Fcm(m) => out.push((m["token"].as_str().unwrap().to_owned(), m)),
            Received::WebPush { id, body, .. } => {
                let browser = browsers.iter().find(|(name, _)| *name == id).unwrap().1;
                out.push((id, browser.decrypt(&body)));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn online(server: &TestServer, user: i64) -> ConnHandle {
    let rt = &server.state.realtime;
    let app: std::sync::Arc<str> = switchboard::chat::APP.into();
    let conn = rt.connect(&app, Transport::SocketIo, 0).unwrap();
    rt.subscribe(&conn, &rooms::user(user), None, &RULES).unwrap();
    conn
}

#[tokio::test]
async fn offline_recipients_get_push_and_online_or_busy_ones_do_not() {
    let mut receiver = Receiver::start().await;
    let server = server_with(&receiver).await;
    let http = server.http();
    let (ann, bob, carl) = (register(&http, "ann").await, register(&http, "bob").await, register(&http, "carl").await);
    befriend(&http, &ann, &bob).await;
    let ann_browser = devices(&http, &receiver, &ann, "ann").await;
    let bob_browser = devices(&http, &receiver, &bob, "bob").await;
    let carl_browser = devices(&http, &receiver, &carl, "carl").await;
    let browsers = [("ann", &ann_browser), ("bob", &bob_browser), ("carl", &carl_browser)];
    let chat = &server.state.chat;

    // A DM to bob, who has no socket: his phone and his browser hear of it; ann's do not.
    let sent = chat.send_dm(ann.id, bob.id, "hello bob").await.unwrap();
    let got = pushes(&mut receiver, 2, &browsers).await;
    assert_eq!(got[0].0, "bob");
    assert_eq!(
        got[0].1,
        json!({"title": "ann", "body": "hello bob", "data": {
            "type": "dm", "messageId": sent.id, "senderId": ann.id, "senderUsername": "ann", "recipientId": bob.id,
        }}),
        "the Web Push payload, decrypted with bob's subscription keys"
    );
    assert_eq!(got[1].0, "bob-device");
    assert_eq!(got[1].1["notification"], json!({"title": "ann", "body": "hello bob"}));
    assert_eq!(got[1].1["data"]["senderId"], ann.id.to_string(), "FCM data values are strings");
    receiver.assert_quiet(300).await;

    // Online: the socket has it, no push.
    let socket = online(&server, bob.id);
    assert!(chat.is_online(bob.id));
    chat.send_dm(ann.id, bob.id, "you are here").await.unwrap();
    receiver.assert_quiet(500).await;
    server.state.realtime.disconnect(&socket, &RULES);
    assert!(!chat.is_online(bob.id));

    // Do not disturb: no push, with or without a socket.
    let dnd = json!({"status": "do_not_disturb"});
    assert_eq!(call(&http, Method::PATCH, "/users/status", Some(dnd), &bob).await.0, 200);
    chat.send_dm(ann.id, bob.id, "shh").await.unwrap();
    receiver.assert_quiet(500).await;
    let back = json!({"status": "offline"});
    assert_eq!(call(&http, Method::PATCH, "/users/status", Some(back), &bob).await.0, 200);

    // A group message over REST: the other members without a socket (bob, carl), not the
    // sender (ann), and not a member who is online.
    let (s, g) = call(&http, Method::POST, "/groups", Some(json!({"name": "Hearth"})), &ann).await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_i64().unwrap();
    for who in [&bob, &carl] {
        let (s, b) = call(&http, Method::POST, &format!("/groups/{gid}/members/{}", who.id), None, &ann).await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, m) =
        call(&http, Method::POST, &format!("/groups/{gid}/messages"), Some(json!({"content": "hi all"})), &ann).await;
    assert_eq!(s, 201, "{m}");
    let got = pushes(&mut receiver, 4, &browsers).await;
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["bob", "bob-device", "carl", "carl-device"]);
    assert_eq!(got[2].1["title"], "ann in Hearth");
    assert_eq!(got[2].1["body"], "hi all");
    assert_eq!(got[2].1["data"]["groupId"], gid);
    assert_eq!(got[3].1["data"]["type"], "group");
    receiver.assert_quiet(300).await;
    let socket = online(&server, carl.id);
    let (s, _) =
        call(&http, Method::POST, &format!("/groups/{gid}/messages"), Some(json!({"content": "again"})), &ann).await;
    assert_eq!(s, 201);
    let names: Vec<String> = pushes(&mut receiver, 2, &browsers).await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["bob", "bob-device"], "carl is online");
    receiver.assert_quiet(300).await;
    server.state.realtime.disconnect(&socket, &RULES);
    server.stop().await;
}

#[tokio::test]
async fn gone_devices_are_removed_and_failures_retried() {
    let mut receiver = Receiver::start().await;
    let server = server_with(&receiver).await;
    let http = server.http();
    let (ann, bob) = (register(&http, "ann").await, register(&http, "bob").await);
    befriend(&http, &ann, &bob).await;
    let gone = devices(&http, &receiver, &bob, "gone").await;
    let flaky = devices(&http, &receiver, &bob, "flaky").await;
    server.state.chat.send_dm(ann.id, bob.id, "ping").await.unwrap();
    let got = pushes(&mut receiver, 2, &[("gone", &gone), ("flaky", &flaky)]).await;
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["flaky", "flaky-device"], "each accepted on the second try");
    receiver.assert_quiet(300).await;
    let store = &server.state.store;
    let tokens: Vec<String> = store.fcm_tokens_of(&[bob.id]).await.unwrap().into_iter().map(|r| r.token).collect();
    assert_eq!(tokens, ["flaky-device"], "the token FCM called unregistered is deleted");
    let subs: Vec<String> = store.web_push_of(&[bob.id]).await.unwrap().into_iter().map(|r| r.endpoint).collect();
    assert_eq!(subs, [receiver.endpoint("flaky")], "the subscription answered 410 is deleted");
    // Deleting the account deletes the rest.
    assert_eq!(call(&http, Method::DELETE, "/users/me", None, &bob).await.0, 204);
    assert!(store.web_push_of(&[bob.id]).await.unwrap().is_empty());
    assert!(store.fcm_tokens_of(&[bob.id]).await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn registration_routes_refuse_bad_input_in_hestias_format() {
    let receiver = Receiver::start().await;
    let server = server_with(&receiver).await;
    let http = server.http();
    let ann = register(&http, "ann").await;
    let browser = Browser::new();
    let keys = json!({"p256dh": browser.p256dh(), "auth": browser.auth()});

    let (s, b) = http.json(Method::PATCH, "/users/fcm-token", Some(json!({"token": "t"})), None).await;
    assert_eq!((s, b), (401, json!({"error": "No token provided"})));
    let (s, b) = http.json(Method::PATCH, "/users/web-push", Some(json!({})), Some("forged")).await;
    assert_eq!((s, b), (403, json!({"error": "Invalid or expired token"})));

    let fcm = |body: Value| call(&http, Method::PATCH, "/users/fcm-token", Some(body), &ann);
    assert_eq!(fcm(json!({})).await, (400, json!({"error": "Missing userId or token"})));
    assert_eq!(fcm(json!({"token": 5})).await, (400, json!({"error": "Missing userId or token"})));
    let (s, b) = fcm(json!({"token": "has space"})).await;
    assert_eq!((s, b["error"].as_str().unwrap()), (400, "token must be 1–512 printable ASCII characters"));
    let (s, b) = fcm(json!({"token": "x".repeat(513)})).await;
    assert_eq!(s, 400, "{b}");

    let web = |body: Value| call(&http, Method::PATCH, "/users/web-push", Some(body), &ann);
    assert_eq!(
        web(json!({"endpoint": "https://p.example/x"})).await,
        (400, json!({"error": "Missing endpoint or keys"}))
    );
    assert_eq!(web(json!({"keys": keys})).await, (400, json!({"error": "Missing endpoint or keys"})));
    let (s, b) = web(json!({"endpoint": "http://push.example.com/x", "keys": keys})).await;
    assert_eq!((s, b), (400, json!({"error": "endpoint must be an https URL of at most 2048 bytes"})));
    let (s, b) = web(json!({"endpoint": "javascript:alert(1)", "keys": keys})).await;
    assert_eq!(s, 400, "{b}");
    let long = format!("https://push.example.com/{}", "a".repeat(2048));
    assert_eq!(web(json!({"endpoint": long, "keys": keys})).await.0, 400);
    let bad_keys = json!({"p256dh": "AAAA", "auth": browser.auth()});
    let (s, b) = web(json!({"endpoint": "https://push.example.com/x", "keys": bad_keys})).await;
    assert_eq!(
        (s, b["error"].as_str().unwrap()),
        (400, "keys.p256dh must be an uncompressed P-256 public key in base64url")
    );
    let bad_auth = json!({"p256dh": browser.p256dh(), "auth": "AAAA"});
    let (s, b) = web(json!({"endpoint": "https://push.example.com/x", "keys": bad_auth})).await;
    assert_eq!((s, b["error"].as_str().unwrap()), (400, "keys.auth must be 16 bytes in base64url"));
    let (s, b) = http
        .request(Method::PATCH, "/users/web-push", b"{not json", &[("authorization", &format!("Bearer {}", ann.token))])
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"].is_string());
    let (s, b) = web(json!({"endpoint": "https://push.example.com/x", "keys": keys})).await;
    assert_eq!((s, b), (200, json!({"success": true})));

    // The key a web client subscribes with, public, and the same as the one that signs.
    let (s, b) = http.json(Method::GET, "/users/web-push/vapid-public-key", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(b["publicKey"], server.state.push.vapid_public_key());
    assert_eq!(b["publicKey"].as_str().unwrap().len(), 87);
    server.stop().await;
}
