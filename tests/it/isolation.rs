//! Cross-app isolation: one app's credentials can neither read nor publish to another's
//! channels, nor see them listed.

use hyper::Method;
use serde_json::json;

use crate::support::http::now;
use crate::support::ws::assert_subscription_error;
use crate::support::{APP_ID, APP_KEY, APP_SECRET, Ws, channel_auth, create_app, spawn_server};

#[tokio::test]
async fn apps_do_not_see_each_other() {
    let server = spawn_server().await;
    create_app(&server, "app-b", "key-b", "secret-b").await;
    let http = server.http();

    let mut a = server.connect().await;
    a.subscribe("shared-name").await;
    let mut b = Ws::connect_established(&server.ws_url("key-b")).await;
    b.subscribe("shared-name").await;
    b.subscribe("only-b").await;

    // Publishing to app B with app A's credentials fails; with B's it reaches only B.
    let body = json!({"name": "e", "channel": "shared-name", "data": "for-b"}).to_string();
    let (s, _) = http.signed_as(APP_KEY, APP_SECRET, Method::POST, "/apps/app-b/events", &body, &[], now()).await;
    assert_eq!(s, 401);
    let (s, _) = http.signed_as("key-b", "secret-b", Method::POST, "/apps/app-b/events", &body, &[], now()).await;
    assert_eq!(s, 200);
    assert_eq!(b.recv().await["data"], "for-b");
    server.assert_next_is_marker(&mut a, "shared-name").await;
    // ...and A's marker did not reach B: B's next frame is B's own later event.
    let later = json!({"name": "later", "channel": "shared-name", "data": "b"}).to_string();
    let (s, _) = http.signed_as("key-b", "secret-b", Method::POST, "/apps/app-b/events", &later, &[], now()).await;
    assert_eq!(s, 200);
    assert_eq!(b.recv().await["event"], "later");

    // A's channel list shows A's channels only; B's listing needs B's credentials.
    let (_, list) = http.signed(Method::GET, &format!("/apps/{APP_ID}/channels"), "", &[]).await;
    assert_eq!(list, json!({"channels": {"shared-name": {}}}));
    let (s, _) = http.signed_as(APP_KEY, APP_SECRET, Method::GET, "/apps/app-b/channels", "", &[], now()).await;
    assert_eq!(s, 401);
    let (_, one) = http.signed(Method::GET, &format!("/apps/{APP_ID}/channels/only-b"), "", &[]).await;
    assert_eq!(one, json!({"occupied": false}));

    // A private-channel signature made with A's secret does not open B's channel.
    let auth = channel_auth("key-b", APP_SECRET, &b.socket_id, "private-b", None);
    let err = b.subscribe_with(json!({"channel": "private-b", "auth": auth})).await;
    assert_subscription_error(&err, "private-b", "AuthError", 401);
    let auth = channel_auth(APP_KEY, APP_SECRET, &b.socket_id, "private-b", None);
    let err = b.subscribe_with(json!({"channel": "private-b", "auth": auth})).await;
    assert_subscription_error(&err, "private-b", "AuthError", 401);
    let auth = channel_auth("key-b", "secret-b", &b.socket_id, "private-b", None);
    assert_eq!(
        b.subscribe_with(json!({"channel": "private-b", "auth": auth})).await["event"],
        "pusher_internal:subscription_succeeded"
    );
}
