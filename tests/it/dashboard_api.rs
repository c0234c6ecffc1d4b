//! The dashboard JSON API: apps per owner, Notif's domain shapes, live views, ownership.

use hyper::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::accounts::account;
use crate::support::ws::Ws;
use crate::support::{APP_ID, TestServer, spawn_server};

async fn get(server: &TestServer, path: &str, token: &str) -> (u16, Value) {
    server.http().json(Method::GET, path, None, Some(token)).await
}

#[tokio::test]
async fn every_endpoint_needs_a_token() {
    let server = spawn_server().await;
    let http = server.http();
    for (method, path) in [
        (Method::GET, "/dashboard/apps"),
        (Method::POST, "/dashboard/apps"),
        (Method::GET, "/dashboard/apps/app-1"),
        (Method::PATCH, "/dashboard/apps/app-1"),
        (Method::DELETE, "/dashboard/apps/app-1"),
        (Method::POST, "/dashboard/apps/app-1/rotate-secret"),
        (Method::GET, "/dashboard/user"),
        (Method::GET, "/dashboard/domains"),
        (Method::POST, "/dashboard/domains"),
        (Method::PATCH, "/dashboard/domains/x"),
        (Method::DELETE, "/dashboard/domains/x"),
        (Method::GET, "/dashboard/channels"),
        (Method::GET, "/dashboard/ws-status"),
    ] {
        for token in [None, Some("garbage"), Some("a.b.c")] {
            let (s, b) = http.json(method.clone(), path, Some(json!({})), token).await;
            assert_eq!(s, 401, "{method} {path} {token:?}");
            assert!(b["error"].is_string());
        }
    }
}

#[tokio::test]
async fn apps_belong_to_their_owner() {
    let server = spawn_server().await;
    let http = server.http();
    let x = account(&http, "owner_x").await;
    let y = account(&http, "owner_y").await;

    let (s, app) = http
        .json(
            Method::POST,
            "/dashboard/apps",
            Some(json!({"name": "X app", "allowed_origins": ["example.com"]})),
            Some(&x),
        )
        .await;
    assert_eq!(s, 201, "{app}");
    let id = app["id"].as_str().unwrap().to_owned();
    assert!(app["secret"].is_string() && app["key"].is_string());
    assert_eq!(app["limits"]["max_message_bytes"], 10240);
    assert_eq!(app["switches"]["subscription_count"], false);

    let (_, list) = get(&server, "/dashboard/apps", &x).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "the pinned default app has no owner yet, so X sees only its own");
    let (_, list) = get(&server, "/dashboard/apps", &y).await;
    assert_eq!(list, json!([]));

    // Y can neither read, change, rotate nor delete X's app.
    let path = format!("/dashboard/apps/{id}");
    assert_eq!(get(&server, &path, &y).await.0, 404);
    assert_eq!(http.json(Method::PATCH, &path, Some(json!({"name": "mine"})), Some(&y)).await.0, 404);
    assert_eq!(http.json(Method::POST, &format!("{path}/rotate-secret"), None, Some(&y)).await.0, 404);
    assert_eq!(http.json(Method::DELETE, &path, None, Some(&y)).await.0, 404);
    assert_eq!(get(&server, &path, &x).await.1["name"], "X app", "unchanged");
    // Nor the default app (ownerless until setup, then the admin's).
    assert_eq!(get(&server, &format!("/dashboard/apps/{APP_ID}"), &y).await.0, 404);

    // X updates limits and switches partially; unknown keys are refused.
    let (s, upd) = http
        .json(
            Method::PATCH,
            &path,
            Some(json!({"limits": {"max_connections": 5}, "switches": {"subscription_count": true}})),
            Some(&x),
        )
        .await;
    assert_eq!(s, 200, "{upd}");
    assert_eq!(upd["limits"]["max_connections"], 5);
    assert_eq!(upd["limits"]["max_message_bytes"], 10240);
    assert_eq!(upd["switches"]["subscription_count"], true);
    for bad in [
        json!({"limits": {"nope": 1}}),
        json!({"bogus": 1}),
        json!({"allowed_origins": ["bad origin!"]}),
        json!({"enabled": "yes"}),
    ] {
        let (s, b) = http.json(Method::PATCH, &path, Some(bad.clone()), Some(&x)).await;
        assert_eq!(s, 400, "{bad} -> {b}");
    }

    // Rotating gives a new secret that signs; the old one stops.
    let old = upd["secret"].as_str().unwrap().to_owned();
    let (_, rotated) = http.json(Method::POST, &format!("{path}/rotate-secret"), None, Some(&x)).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    let key = rotated["key"].as_str().unwrap().to_owned();
    let body = json!({"name": "e", "channel": "c", "data": "d"}).to_string();
    let now = crate::support::http::now();
    let events = format!("/apps/{id}/events");
    assert_eq!(http.signed_as(&key, &old, Method::POST, &events, &body, &[], now).await.0, 401);
    assert_eq!(http.signed_as(&key, &new, Method::POST, &events, &body, &[], now).await.0, 200);

    assert_eq!(http.json(Method::DELETE, &path, None, Some(&x)).await, (200, json!({"ok": true})));
    assert_eq!(get(&server, &path, &x).await.0, 404);
}

#[tokio::test]
async fn changes_reach_live_connections() {
    let server = spawn_server().await;
    let http = server.http();
    let x = account(&http, "live_owner").await;
    let (_, app) = http.json(Method::POST, "/dashboard/apps", Some(json!({"name": "live"})), Some(&x)).await;
    let id = app["id"].as_str().unwrap().to_owned();
    let key = app["key"].as_str().unwrap().to_owned();
    let path = format!("/dashboard/apps/{id}");

    // Restricting origins refuses new upgrades from elsewhere.
    let (s, upd) =
        http.json(Method::PATCH, &path, Some(json!({"allowed_origins": ["https://good.example"]})), Some(&x)).await;
    assert_eq!((s, &upd["allowed_origins"]), (200, &json!(["https://good.example"])), "{upd}");
    let connect = |origin: &'static str| {
        let mut req = server.ws_url(&key).into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        async move { Ws { inner: tokio_tungstenite::connect_async(req).await.unwrap().0, socket_id: String::new() } }
    };
    connect("https://evil.example").await.expect_refusal(4009).await;
    let mut live = connect("https://good.example").await;
    live.expect_event("pusher:connection_established").await;

    // Disabling closes live connections with 4003, at once.
    let (s, _) = http.json(Method::PATCH, &path, Some(json!({"enabled": false})), Some(&x)).await;
    assert_eq!(s, 200);
    live.expect_error_and_close(4003).await;
}

#[tokio::test]
async fn notif_domains_have_notifs_shapes() {
    let server = spawn_server().await;
    let http = server.http();
    let x = account(&http, "domain_x").await;
    let y = account(&http, "domain_y").await;

    let (s, user) = get(&server, "/dashboard/user", &x).await;
    assert_eq!(s, 200);
    assert!(user["id"].is_i64() && user["created_at"].as_str().unwrap().contains('T'));
    assert_eq!(user["is_admin"], false, "registered accounts are not admins");

    for bad in [json!({}), json!({"domain_name": ""}), json!({"domain_name": "   "}), json!({"domain_name": 5})] {
        let (s, b) = http.json(Method::POST, "/dashboard/domains", Some(bad), Some(&x)).await;
        assert_eq!((s, b), (400, json!({"error": "domain_name required"})));
    }
    let (s, d) = http
        .json(Method::POST, "/dashboard/domains", Some(json!({"domain_name": "  Shop.Example.com "})), Some(&x))
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["domain_name"], "shop.example.com");
    assert!(d["key"].as_str().unwrap().starts_with("nk_"));
    assert!(d["secret"].is_string(), "the secret is shown once, at creation");
    assert_eq!(d["is_active"], true);
    let id = d["id"].as_str().unwrap().to_owned();
    let (s, b) =
        http.json(Method::POST, "/dashboard/domains", Some(json!({"domain_name": "shop.example.com"})), Some(&x)).await;
    assert_eq!((s, b), (400, json!({"error": "Domain already exists for this user"})));

    let (_, list) = get(&server, "/dashboard/domains", &x).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].as_object().unwrap().keys().cloned().collect::<Vec<_>>(),
        ["created_at", "domain_name", "id", "is_active", "key"]
    );
    assert_eq!(get(&server, "/dashboard/domains", &y).await.1, json!([]));

    // Y cannot touch it; a missing one is the same 404.
    let path = format!("/dashboard/domains/{id}");
    for target in [path.as_str(), "/dashboard/domains/does-not-exist"] {
        let (s, b) = http.json(Method::PATCH, target, Some(json!({"is_active": false})), Some(&y)).await;
        assert_eq!((s, b), (404, json!({"error": "Domain not found"})));
        let (s, _) = http.json(Method::DELETE, target, None, Some(&y)).await;
        assert_eq!(s, 404);
    }
    let (s, _) = http.json(Method::PATCH, &path, Some(json!({"is_active": "no"})), Some(&x)).await;
    assert_eq!(s, 400);
    assert_eq!(
        http.json(Method::PATCH, &path, Some(json!({"is_active": false})), Some(&x)).await,
        (200, json!({"ok": true}))
    );
    assert_eq!(get(&server, "/dashboard/domains", &x).await.1[0]["is_active"], false);
    // The domain's key is an app key: disabled, it refuses Pusher connections.
    let key = d["key"].as_str().unwrap();
    Ws::connect_raw(&server.ws_url(key)).await.expect_refusal(4003).await;
    assert_eq!(http.json(Method::DELETE, &path, None, Some(&x)).await, (200, json!({"ok": true})));
    assert_eq!(get(&server, "/dashboard/domains", &x).await.1, json!([]));
}

#[tokio::test]
async fn live_channels_and_connections() {
    let server = spawn_server().await;
    let http = server.http();
    let x = account(&http, "watcher").await;
    let y = account(&http, "stranger").await;
    let (_, d) =
        http.json(Method::POST, "/dashboard/domains", Some(json!({"domain_name": "localhost"})), Some(&x)).await;
    let key = d["key"].as_str().unwrap().to_owned();
    let mut req = server.ws_url(&key).into_client_request().unwrap();
    req.headers_mut().insert("origin", "http://localhost".parse().unwrap());
    let mut ws = Ws { inner: tokio_tungstenite::connect_async(req).await.unwrap().0, socket_id: String::new() };
    let est = ws.expect_event("pusher:connection_established").await;
    let socket_id = crate::support::ws::data(&est)["socket_id"].as_str().unwrap().to_owned();
    ws.subscribe("room-1").await;
    ws.subscribe("room-2").await;

    let (s, channels) = get(&server, "/dashboard/channels", &x).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = channels.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["room-1", "room-2"]);
    assert_eq!(channels[0]["domain_id"], d["id"]);

    let (_, status) = get(&server, "/dashboard/ws-status", &x).await;
    assert_eq!(
        status["by_channel"],
        json!([{"channel_name": "room-1", "connection_count": 1}, {"channel_name": "room-2", "connection_count": 1}])
    );
    let rows = status["connections"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["socket_id"], socket_id);
    assert_eq!(rows[0]["status"], "connected");
    // Another account sees none of it.
    assert_eq!(get(&server, "/dashboard/channels", &y).await.1, json!([]));
    assert_eq!(get(&server, "/dashboard/ws-status", &y).await.1, json!({"by_channel": [], "connections": []}));
    ws.close().await;
}

#[tokio::test]
async fn setup_creates_the_first_admin_who_owns_the_pinned_app() {
    let server = spawn_server().await;
    let http = server.http();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("setup")
            .args(args)
            .arg("--data-dir")
            .arg(server.dir.path())
            .env("LOG_LEVEL", "warn")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = run(&["--username", "admin", "--password", "admin-password-1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = run(&["--username", "admin2", "--password", "admin-password-1"]);
    assert!(!again.status.success(), "setup runs once");

    let (_, login) = http
        .json(Method::POST, "/auth/login", Some(json!({"username": "admin", "password": "admin-password-1"})), None)
        .await;
    let admin = login["token"].as_str().unwrap().to_owned();
    assert_eq!(get(&server, "/dashboard/user", &admin).await.1["is_admin"], true);
    server.refresh_apps().await;
    let (_, apps) = get(&server, "/dashboard/apps", &admin).await;
    assert!(
        apps.as_array().unwrap().iter().any(|a| a["id"] == APP_ID && a["owner_id"] == login["user"]["id"]),
        "{apps}"
    );
    // Admins see everyone's apps.
    let x = account(&http, "someone").await;
    http.json(Method::POST, "/dashboard/apps", Some(json!({"name": "theirs"})), Some(&x)).await;
    let (_, apps) = get(&server, "/dashboard/apps", &admin).await;
    assert_eq!(apps.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn hostile_fields_get_clear_errors() {
    let server = spawn_server().await;
    let http = server.http();
    let x = account(&http, "hostile").await;
    let sql = "'; DROP TABLE apps; --";
    // Each field just past its limit (small bodies: this is about the fields, not body size).
    for (body, status) in [
        (json!({"name": "n".repeat(256)}), 400),
        (json!({"name": "n".repeat(255)}), 201),
        (json!({"name": sql}), 201),
        (json!({"name": "x", "id": sql}), 400),
        (json!({"id": "i".repeat(65)}), 400),
        (json!({"id": "i".repeat(64)}), 201),
        (json!({"key": "a b"}), 400),
        (json!({"key": "k".repeat(129)}), 400),
        (json!({"allowed_origins": [sql]}), 400),
        (json!({"allowed_origins": "https://a.example"}), 400),
        (json!({"limits": {"max_message_bytes": -1}}), 400),
        (json!({"limits": {"max_message_bytes": 0}}), 400),
        (json!({"limits": {"max_message_bytes": 1024 * 1024 + 1}}), 400),
        (json!({"limits": {"max_channels_per_connection": 0}}), 400),
        (json!({"switches": "on"}), 400),
        (json!({"switches": {"nope": true}}), 400),
        (json!([]), 400),
    ] {
        let shown = &body.to_string()[..body.to_string().len().min(80)];
        let (s, b) = http.json(Method::POST, "/dashboard/apps", Some(body.clone()), Some(&x)).await;
        assert_eq!(s, status, "{shown} -> {b}");
        if status == 201 {
            assert_eq!(b["name"], body.get("name").cloned().unwrap_or(b["name"].clone()), "stored verbatim");
        } else {
            assert!(b["error"].as_str().is_some_and(|e| e.len() < 400), "a short JSON error: {b}");
        }
    }
    // The SQL-looking name was stored verbatim, nothing was dropped.
    let (_, apps) = get(&server, "/dashboard/apps", &x).await;
    assert!(apps.as_array().unwrap().iter().any(|a| a["name"] == sql));
    assert_eq!(apps.as_array().unwrap().len(), 3, "only the three accepted apps were created");

    for body in [
        json!({"username": sql, "password": "password-123"}),
        json!({"email": format!("{}@example.com", "e".repeat(250)), "password": "password-123"}),
        json!({"username": "ok_name", "password": "p".repeat(129)}),
    ] {
        let (s, b) = http.json(Method::POST, "/auth/register", Some(body.clone()), None).await;
        assert_eq!(s, 400, "{body} -> {b}");
        assert!(b["error"].is_string(), "{b}");
    }
    let (s, b) = http.json(Method::POST, "/auth/login", Some(json!({"username": sql, "password": sql})), None).await;
    assert_eq!((s, b), (401, json!({"error": "Invalid credentials."})));
    let (s, b) =
        http.json(Method::POST, "/dashboard/domains", Some(json!({"domain_name": "d".repeat(256)})), Some(&x)).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"].is_string(), "{b}");
    assert_eq!(
        http.json(
            Method::PATCH,
            &format!("/dashboard/domains/{}", form_urlencoded::byte_serialize(sql.as_bytes()).collect::<String>()),
            Some(json!({"is_active": true})),
            Some(&x)
        )
        .await,
        (404, json!({"error": "Domain not found"}))
    );
    assert_eq!(server.http().get("/health").await.0, 200);
}
