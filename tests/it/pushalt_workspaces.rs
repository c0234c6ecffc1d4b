//! `/api/workspaces` (SPEC §5): workspaces are apps; ids are numbers; the client chooses
//! `app_id` (409 when taken) and `app_key` (the secret; a PUT with one replaces it); answers
//! show the public key and never a secret; accounts that are not admins see their own only.
//! Changes take effect at once: a deactivated workspace's connections close.

use hyper::Method;
use serde_json::{Value, json};

use crate::pushalt_admin::{add_user, admin_server, call, refused};
use crate::pushalt_channel::channel_auth;
use crate::pushalt_emit::emit;
use crate::support::{APP_ID, APP_SECRET, Ws};

fn workspace(name: &str, app_id: &str, app_key: &str) -> Value {
    json!({"name": name, "description": "for tests", "app_id": app_id, "app_key": app_key})
}

#[tokio::test]
async fn create_read_update_delete() {
    let (server, admin) = admin_server().await;
    let c = |method: Method, path: &str, body: Option<Value>| {
        let (server, admin, path) = (&server, admin.clone(), path.to_owned());
        async move { call(server, method, &path, body, Some(&admin)).await }
    };
    let (status, v) = c(Method::POST, "/api/workspaces", Some(workspace("Shop", "shop-app", "shop-secret"))).await;
    assert_eq!((status, &v["success"], &v["message"]), (200, &json!(true), &json!("Workspace created")), "{v}");
    let ws = v["data"].clone();
    let number = ws["id"].as_i64().unwrap();
    let app = server.state.apps.by_id("shop-app").expect("in force before the answer");
    assert_eq!(app.number, number);
    assert_eq!(
        ws,
        json!({
            "id": number, "name": "Shop", "app_id": "shop-app", "key": &*app.key, "description": "for tests",
            "status": "active", "created_at": ws["created_at"], "updated_at": ws["updated_at"],
        })
    );
    assert!(ws["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(!v.to_string().contains("shop-secret"), "never the secret");
    // The app_key is the secret: channel auth and emit take it.
    let auth = json!({"app_id": "shop-app", "app_key": "shop-secret", "channel_name": "c"});
    assert_eq!(channel_auth(&server, auth).await.0, 200);
    // app_id is the client's to choose, once.
    refused(
        c(Method::POST, "/api/workspaces", Some(workspace("Again", "shop-app", "x"))).await,
        409,
        "app_id shop-app is already taken",
    );
    refused(c(Method::POST, "/api/workspaces", Some(json!({"app_key": "k"}))).await, 400, "name is required");
    refused(c(Method::POST, "/api/workspaces", Some(json!({"name": "n"}))).await, 400, "app_key is required");
    refused(
        c(Method::POST, "/api/workspaces", Some(json!({"name": "n", "app_key": "k", "status": "paused"}))).await,
        400,
        "status must be active or deactivated",
    );
    let (status, v) =
        c(Method::POST, "/api/workspaces", Some(json!({"name": "n", "app_key": "k", "app_id": "bad id!"}))).await;
    assert_eq!((status, &v["success"]), (400, &json!(false)), "{v}");
    assert_eq!(v["message"], "app_id must be 1–64 characters of A-Z a-z 0-9 _ . -", "as the migration guide says");
    // Without app_id one is made; a number as app_id is its text.
    let (_, v) = c(Method::POST, "/api/workspaces", Some(json!({"name": "Gen", "app_key": "gen-secret"}))).await;
    assert!(v["data"]["app_id"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
    let (_, v) = c(Method::POST, "/api/workspaces", Some(json!({"name": "Num", "app_key": "k", "app_id": 4242}))).await;
    assert_eq!(v["data"]["app_id"], "4242");

    let (status, v) = c(Method::GET, &format!("/api/workspaces/{number}"), None).await;
    assert_eq!((status, &v["message"], &v["data"]), (200, &json!("Workspace retrieved"), &ws));
    refused(c(Method::GET, "/api/workspaces/99999", None).await, 404, "Workspace not found");

    // Update: fields change, the key rotates, app_id stays.
    let update = json!({"name": "Shop 2", "description": null, "app_key": "new-secret", "app_id": "shop-app"});
    let (status, v) = c(Method::PUT, &format!("/api/workspaces/{number}"), Some(update)).await;
    assert_eq!((status, &v["message"]), (200, &json!("Workspace updated")), "{v}");
    assert_eq!(
        (&v["data"]["name"], &v["data"]["description"], &v["data"]["key"]),
        (&json!("Shop 2"), &Value::Null, &ws["key"])
    );
    let old = json!({"app_id": "shop-app", "app_key": "shop-secret", "channel_name": "c"});
    refused(channel_auth(&server, old).await, 401, "Invalid workspace or credentials");
    let new = json!({"app_id": "shop-app", "app_key": "new-secret", "channel_name": "c"});
    assert_eq!(channel_auth(&server, new).await.0, 200);
    refused(
        c(Method::PUT, &format!("/api/workspaces/{number}"), Some(json!({"app_id": "renamed"}))).await,
        400,
        "app_id cannot be changed",
    );
    refused(c(Method::PUT, "/api/workspaces/99999", Some(json!({"name": "x"}))).await, 404, "Workspace not found");

    // The list: newest updated first.
    let (_, v) = c(Method::GET, "/api/workspaces", None).await;
    assert_eq!(v["message"], "Workspaces retrieved");
    let listed: Vec<_> = v["data"].as_array().unwrap().iter().map(|w| w["app_id"].clone()).collect();
    assert_eq!(listed[0], "shop-app", "{listed:?}");
    assert!(listed.contains(&json!(APP_ID)), "admins see every workspace");
    assert!(!v.to_string().contains(APP_SECRET));

    // Delete: ids as numbers or numeric strings; others' and unknown ones are passed over.
    for bad in [
        json!({}),
        json!({"ids": []}),
        json!({"ids": "1"}),
        json!({"ids": [1.5]}),
        json!({"ids": (1..=101).collect::<Vec<_>>()}),
    ] {
        refused(c(Method::DELETE, "/api/workspaces", Some(bad)).await, 400, "Invalid or empty IDs");
    }
    let (status, v) = c(Method::DELETE, "/api/workspaces", Some(json!({"ids": [number.to_string(), 99999]}))).await;
    assert_eq!((status, v), (200, json!({"success": true, "message": "Workspaces deleted", "data": []})));
    assert!(server.state.apps.by_id("shop-app").is_none());
    refused(c(Method::GET, &format!("/api/workspaces/{number}"), None).await, 404, "Workspace not found");
    server.stop().await;
}

#[tokio::test]
async fn accounts_that_are_not_admins_see_and_touch_their_own_only() {
    let (server, admin) = admin_server().await;
    let (_, ann) = add_user(&server, &admin, "ann@example.com").await;
    let (_, bob) = add_user(&server, &admin, "bob@example.com").await;
    let (status, v) =
        call(&server, Method::POST, "/api/workspaces", Some(workspace("Ann's", "ann-app", "ann-secret")), Some(&ann))
            .await;
    assert_eq!(status, 200, "{v}");
    let number = v["data"]["id"].as_i64().unwrap();
    let (_, v) = call(&server, Method::GET, "/api/workspaces", None, Some(&ann)).await;
    assert_eq!(
        v["data"].as_array().unwrap().iter().map(|w| w["app_id"].clone()).collect::<Vec<_>>(),
        vec![json!("ann-app")]
    );
    let (_, v) = call(&server, Method::GET, "/api/workspaces", None, Some(&bob)).await;
    assert_eq!(v["data"], json!([]));
    let path = format!("/api/workspaces/{number}");
    refused(call(&server, Method::GET, &path, None, Some(&bob)).await, 404, "Workspace not found");
    refused(
        call(&server, Method::PUT, &path, Some(json!({"name": "mine"})), Some(&bob)).await,
        404,
        "Workspace not found",
    );
    let (_, v) = call(&server, Method::DELETE, "/api/workspaces", Some(json!({"ids": [number]})), Some(&bob)).await;
    assert_eq!(v["success"], true);
    assert!(server.state.apps.by_id("ann-app").is_some(), "not Bob's to delete");
    // The default app is the admin's, not Ann's.
    let default = server.state.apps.by_id(APP_ID).unwrap().number;
    refused(
        call(&server, Method::GET, &format!("/api/workspaces/{default}"), None, Some(&ann)).await,
        404,
        "Workspace not found",
    );
    assert_eq!(call(&server, Method::GET, &format!("/api/workspaces/{default}"), None, Some(&admin)).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn deactivating_a_workspace_closes_its_connections_and_stops_its_emits() {
    let (server, admin) = admin_server().await;
    let (_, v) = call(
        &server,
        Method::POST,
        "/api/workspaces",
        Some(workspace("Live", "live-app", "live-secret")),
        Some(&admin),
    )
    .await;
    let number = v["data"]["id"].as_i64().unwrap();
    let key = v["data"]["key"].as_str().unwrap().to_owned();
    let mut ws = Ws::connect_established(&server.ws_url(&key)).await;
    ws.subscribe("c").await;
    let path = format!("/api/workspaces/{number}");
    let (_, v) = call(&server, Method::PUT, &path, Some(json!({"status": "deactivated"})), Some(&admin)).await;
    assert_eq!(v["data"]["status"], "deactivated");
    assert_eq!(ws.expect_close().await, 4003, "closed at once, as a disabled app's");
    refused(
        emit(&server, json!({"app_id": "live-app", "app_key": "live-secret", "channel_name": "c", "body": 1})).await,
        401,
        "Workspace Deactivated",
    );
    call(&server, Method::PUT, &path, Some(json!({"status": "active"})), Some(&admin)).await;
    let ok =
        emit(&server, json!({"app_id": "live-app", "app_key": "live-secret", "channel_name": "c", "body": 1})).await;
    assert_eq!(ok.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn created_deactivated_and_a_description_too_long() {
    let (server, admin) = admin_server().await;
    let body = json!({"name": "Off", "app_key": "k", "app_id": "off-app", "status": "deactivated"});
    let (_, v) = call(&server, Method::POST, "/api/workspaces", Some(body), Some(&admin)).await;
    assert_eq!(v["data"]["status"], "deactivated");
    assert!(!server.state.apps.by_id("off-app").unwrap().enabled);
    let long = json!({"name": "Long", "app_key": "k", "description": "d".repeat(1025)});
    refused(
        call(&server, Method::POST, "/api/workspaces", Some(long), Some(&admin)).await,
        400,
        "description must be at most 1024 characters",
    );
    let big = json!({"name": "Big", "app_key": "k", "description": "d".repeat(40_000)});
    let (status, v) = call(&server, Method::POST, "/api/workspaces", Some(big), Some(&admin)).await;
    assert_eq!((status, &v["success"]), (413, &json!(false)), "{v}");
    server.stop().await;
}
