//! The push service against local FCM and Web Push receivers: registration rules, delivery
//! (the Web Push payload decrypted with the subscription's keys), removal of devices their
//! service calls gone, retries after a 500, and a bad service account stopping the start.

use serde_json::json;
use switchboard::push::{Notification, PushError, Subscription};
use switchboard::store::accounts::NewAccount;

use crate::support::push::{Browser, Received, Receiver};
use crate::support::{TestServer, spawn_with};

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

async fn account(server: &TestServer, name: &str) -> i64 {
    let new = NewAccount {
        username: Some(name.into()),
        email: None,
        name: name.into(),
        password_hash: "h".into(),
        is_admin: false,
    };
    server.state.store.insert_account(new).await.unwrap().id
}

fn note(body: &str) -> Notification {
    Notification { title: "ann".into(), body: body.into(), data: json!({"type": "dm", "senderId": 7}) }
}

#[tokio::test]
async fn delivers_to_fcm_and_web_push() {
    let mut receiver = Receiver::start().await;
    let server = server_with(&receiver).await;
    let push = server.state.push.clone();
    assert!(push.fcm_enabled());
    let bob = account(&server, "bob").await;
    push.register_fcm(bob, "device-token-1").await.unwrap();
    let browser = Browser::new();
    let sub = Subscription { endpoint: receiver.endpoint("bob-1"), p256dh: browser.p256dh(), auth: browser.auth() };
    push.register_web_push(bob, &sub).await.unwrap();

    push.notify(vec![bob], note("hello bob"));
    let (mut fcm, mut web) = (None, None);
    for _ in 0..2 {
        match receiver.next().await {
            Received::Fcm(message) => fcm = Some(message),
            Received::WebPush { id, headers, body } => web = Some((id, headers, body)),
        }
    }
    let fcm = fcm.unwrap();
    assert_eq!(fcm["token"], "device-token-1");
    assert_eq!(fcm["notification"], json!({"title": "ann", "body": "hello bob"}));
    assert_eq!(fcm["data"], json!({"type": "dm", "senderId": "7"}));
    let (id, headers, body) = web.unwrap();
    assert_eq!(id, "bob-1");
    assert_eq!(headers["ttl"], "86400");
    assert_eq!(
        browser.decrypt(&body),
        json!({"title": "ann", "body": "hello bob", "data": {"type": "dm", "senderId": 7}}),
        "decrypted with the subscription's keys"
    );
    // The access token is cached: a second notification buys no new one.
    push.notify(vec![bob], note("again"));
    receiver.next().await;
    receiver.next().await;
    assert_eq!(receiver.token_calls(), 1);
    // Nobody else's devices.
    let carl = account(&server, "carl").await;
    push.notify(vec![carl], note("to carl"));
    receiver.assert_quiet(300).await;
    server.stop().await;
}

#[tokio::test]
async fn gone_devices_are_forgotten_and_failures_retried() {
    let mut receiver = Receiver::start().await;
    let server = server_with(&receiver).await;
    let push = server.state.push.clone();
    let bob = account(&server, "bob").await;
    push.register_fcm(bob, "gone-token").await.unwrap();
    push.register_fcm(bob, "flaky-token").await.unwrap();
    let (b1, b2) = (Browser::new(), Browser::new());
    for (id, b) in [("gone-sub", &b1), ("flaky-sub", &b2)] {
        let sub = Subscription { endpoint: receiver.endpoint(id), p256dh: b.p256dh(), auth: b.auth() };
        push.register_web_push(bob, &sub).await.unwrap();
    }
    push.notify(vec![bob], note("x"));
    let mut got = Vec::new();
    for _ in 0..2 {
        match receiver.next().await {
            Received::Fcm(m) => got.push(m["token"].as_str().unwrap().to_owned()),
            Received::WebPush { id, body, .. } => {
                assert_eq!(b2.decrypt(&body)["body"], "x");
                got.push(id);
            }
        }
    }
    got.sort();
    assert_eq!(got, ["flaky-sub", "flaky-token"], "delivered on the second try");
    receiver.assert_quiet(300).await;
    let store = &server.state.store;
    let tokens: Vec<String> = store.fcm_tokens_of(&[bob]).await.unwrap().into_iter().map(|r| r.token).collect();
    assert_eq!(tokens, ["flaky-token"], "the unregistered token is deleted");
    let subs: Vec<String> = store.web_push_of(&[bob]).await.unwrap().into_iter().map(|r| r.endpoint).collect();
    assert_eq!(subs, [receiver.endpoint("flaky-sub")], "the 410 subscription is deleted");
    server.stop().await;
}

/// A 429's `Retry-After` is waited out (the backoff here would retry after ~50 ms).
#[tokio::test]
async fn retry_after_is_honoured() {
    let mut receiver = Receiver::start().await;
    let server = server_with(&receiver).await;
    let push = server.state.push.clone();
    let bob = account(&server, "bob").await;
    push.register_fcm(bob, "busy-token").await.unwrap();
    let started = std::time::Instant::now();
    push.notify(vec![bob], note("later"));
    let Received::Fcm(message) = receiver.next().await else { panic!("an FCM message") };
    assert_eq!(message["token"], "busy-token");
    assert!(started.elapsed() >= std::time::Duration::from_millis(950), "retried after {:?}", started.elapsed());
    server.stop().await;
}

#[tokio::test]
async fn registrations_are_checked() {
    let receiver = Receiver::start().await;
    let server = server_with(&receiver).await;
    let push = server.state.push.clone();
    let bob = account(&server, "bob").await;
    for bad in ["", "   ", "has space", "tab\there", &"x".repeat(513), "é"] {
        assert!(matches!(push.register_fcm(bob, bad).await, Err(PushError::Invalid(_))), "{bad:?}");
    }
    let b = Browser::new();
    let sub = |endpoint: &str, p256dh: &str, auth: &str| Subscription {
        endpoint: endpoint.into(),
        p256dh: p256dh.into(),
        auth: auth.into(),
    };
    for endpoint in ["http://push.example.com/x", "javascript:alert(1)", "https://10.0.0.1/x", "ftp://x/y", ""] {
        let err = push.register_web_push(bob, &sub(endpoint, &b.p256dh(), &b.auth())).await.unwrap_err();
        assert!(matches!(err, PushError::Invalid(_)), "{endpoint}: {err}");
    }
    let endpoint = receiver.endpoint("ok");
    assert!(matches!(push.register_web_push(bob, &sub(&endpoint, "AAAA", &b.auth())).await, Err(PushError::Keys(_))));
    assert!(matches!(push.register_web_push(bob, &sub(&endpoint, &b.p256dh(), "AAAA")).await, Err(PushError::Keys(_))));
    push.register_web_push(bob, &sub(&endpoint, &b.p256dh(), &b.auth())).await.unwrap();
    // The VAPID key is made once and kept in the data dir.
    let key = std::fs::read_to_string(server.dir.path().join("vapid_private_key")).unwrap();
    assert_eq!(key.len(), 43);
    assert_eq!(push.vapid_public_key().len(), 87);
    server.stop().await;
}

#[tokio::test]
async fn loopback_http_needs_the_switch() {
    let server = spawn_with(|_| {}).await;
    let bob = account(&server, "bob").await;
    let b = Browser::new();
    let sub = Subscription { endpoint: "http://127.0.0.1:9/wp/x".into(), p256dh: b.p256dh(), auth: b.auth() };
    assert!(matches!(server.state.push.register_web_push(bob, &sub).await, Err(PushError::Invalid(_))));
    assert!(!server.state.push.fcm_enabled());
    server.stop().await;
}

/// A service account that cannot be read or used stops start-up with one line (exit 2) that
/// names the setting and not the key.
#[test]
fn a_bad_service_account_stops_the_start() {
    use crate::support::binary::{command, run};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = |value: &str| {
        let mut cmd = command(dir.path(), &["serve", "--bind", "127.0.0.1", "--port", "0", "--data-dir"]);
        cmd.arg(&data).env("SWITCHBOARD_PUSH_FCM_SERVICE_ACCOUNT", value);
        let out = run(&mut cmd);
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(!out.stdout.contains("secret="), "no credentials printed by a refused start");
        out.error_line().to_owned()
    };
    let missing = dir.path().join("missing.json");
    let line = start(missing.to_str().unwrap());
    assert!(
        line.starts_with(&format!("SWITCHBOARD_PUSH_FCM_SERVICE_ACCOUNT: cannot read {}", missing.display())),
        "{line}"
    );
    let secret_part = "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu";
    let bad = json!({"client_email": "a@b", "project_id": "p", "private_key": format!("-----BEGIN PRIVATE KEY-----\n{secret_part}\n-----END PRIVATE KEY-----\n")});
    let line = start(&bad.to_string());
    assert_eq!(line, "SWITCHBOARD_PUSH_FCM_SERVICE_ACCOUNT: private_key is not a PEM RSA private key");
    assert!(!line.contains(secret_part));
}
