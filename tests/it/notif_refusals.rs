//! `/ws` refusals: HTTP 401 JSON before upgrading (SPEC §4), and origin matching (SPEC §1) over
//! real upgrades, spoofs included.

use serde_json::json;

use crate::notif_client::{Notif, try_connect, url};
use crate::support::{APP_ID, APP_KEY, APP_SECRET, TestServer, create_app, spawn_server, update_app};

async fn refused(server: &TestServer, query: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    match try_connect(&url(server, query), headers).await {
        Ok(_) => panic!("{query} {headers:?} was upgraded"),
        Err(r) => r,
    }
}

#[tokio::test]
async fn key_refusals_are_401_json() {
    let server = spawn_server().await;
    let required = json!({"error": "api_key required"});
    assert_eq!(refused(&server, "", &[]).await, (401, required.clone()));
    assert_eq!(refused(&server, "?api_key=", &[]).await, (401, required.clone()));
    assert_eq!(refused(&server, "", &[("x-app-key", "  ")]).await, (401, required));
    let invalid = json!({"error": "Invalid or inactive API key"});
    assert_eq!(refused(&server, "?api_key=nope", &[]).await, (401, invalid.clone()));
    assert_eq!(refused(&server, "", &[("x-app-key", "nope")]).await, (401, invalid.clone()));
    let sql = "?api_key=%27%20OR%201%3D1%3B%20--";
    assert_eq!(refused(&server, sql, &[]).await, (401, invalid.clone()));
    let huge = format!("?api_key={}", "k".repeat(8000));
    assert_eq!(refused(&server, &huge, &[]).await, (401, invalid.clone()));
    // The secret is not a key.
    assert_eq!(refused(&server, &format!("?api_key={APP_SECRET}"), &[]).await, (401, invalid.clone()));

    switchboard::apps::set_enabled(&server.state.store, APP_ID, false).await.unwrap();
    server.refresh_apps().await;
    assert_eq!(refused(&server, &format!("?api_key={APP_KEY}"), &[]).await, (401, invalid));
}

#[tokio::test]
async fn engine_io_clients_go_to_engine_io_and_plain_gets_get_400() {
    let server = spawn_server().await;
    let http = server.http();
    let (status, body) = http.get("/ws?EIO=4&transport=polling").await;
    assert_eq!(status, 200, "{body}");
    // An Engine.IO error, not Notif's: the request went to Engine.IO.
    assert_eq!(
        http.get("/ws?EIO=3&transport=polling").await,
        (400, json!({"code": 5, "message": "Unsupported protocol version"}))
    );
    let (status, body) = http.get(&format!("/ws?api_key={APP_KEY}")).await;
    assert_eq!(status, 400);
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(http.get("/ws").await, (401, json!({"error": "api_key required"})));
}

/// An app with `allowed` as its only origin, key `okey`.
async fn app_with_origin(server: &TestServer, id: &str, key: &str, allowed: &str) {
    create_app(server, id, key, "osecret").await;
    update_app(server, id, |s| s.allowed_origins = vec![allowed.into()]).await;
}

#[tokio::test]
async fn origins_match_with_a_dot_boundary_port_and_scheme() {
    let server = spawn_server().await;
    app_with_origin(&server, "wild", "wild-key", "*.example.com").await;
    app_with_origin(&server, "port", "port-key", "example.com:8443").await;
    let mismatch = json!({"error": "Origin does not match domain for this key"});
    let cases = [
        ("wild-key", "https://example.com", true),
        ("wild-key", "https://app.example.com", true),
        ("wild-key", "http://a.b.example.com", true),
        ("wild-key", "HTTPS://APP.EXAMPLE.COM", true),
        ("wild-key", "https://evilexample.com", false),
        ("wild-key", "https://example.com.evil.com", false),
        ("wild-key", "https://app.example.com:8443", false),
        ("wild-key", "ftp://app.example.com", false),
        ("wild-key", "null", false),
        ("wild-key", "https://example.com@evil.com", false),
        ("port-key", "https://example.com:8443", true),
        ("port-key", "http://EXAMPLE.com:8443", true),
        ("port-key", "https://example.com", false),
        ("port-key", "https://example.com:8444", false),
        ("port-key", "https://sub.example.com:8443", false),
        ("port-key", "https://evilexample.com:8443", false),
    ];
    for (key, origin, allowed) in cases {
        let query = format!("?api_key={key}");
        if allowed {
            let mut ws = Notif::connect_url(&url(&server, &query), &[("origin", origin)]).await;
            ws.assert_alive().await;
        } else {
            assert_eq!(
                refused(&server, &query, &[("origin", origin)]).await,
                (401, mismatch.clone()),
                "{key} {origin}"
            );
        }
    }
    let required = json!({"error": "Origin required and must match domain"});
    assert_eq!(refused(&server, "?api_key=wild-key", &[]).await, (401, required));
    // Apps without origins take any origin, or none.
    let mut ws =
        Notif::connect_url(&url(&server, &format!("?api_key={APP_KEY}")), &[("origin", "https://x.test")]).await;
    ws.assert_alive().await;
}
