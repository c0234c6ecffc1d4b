//! Push-Alt's routes and request bodies (STYLE, "Bounded by construction"): a Bearer token or a
//! signature in the head is checked before a byte of the body is read; each route reads at
//! most what its valid requests need and answers 413 in Push-Alt's envelope (closing the
//! connection) past it; a path that does not decode is a 400 in the same envelope.

use std::time::Duration;

use hyper::Method;
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::bodies::head_only;
use crate::pushalt_admin::admin_server;
use crate::support::{APP_KEY, spawn_server};

#[tokio::test]
async fn credentials_in_the_head_are_checked_before_the_body_is_read() {
    let server = spawn_server().await;
    let bad_signature = "auth_key=key-1&auth_timestamp=1&auth_version=1.0&auth_signature=00";
    let cases = [
        ("POST /api/workspaces".to_owned(), "", 401, "No token provided"),
        ("PUT /api/workspaces/1".to_owned(), "authorization: Bearer nope\r\n", 401, "Invalid token"),
        ("POST /api/admin/add".to_owned(), "", 401, "No token provided"),
        ("POST /api/cors".to_owned(), "", 401, "No token provided"),
        ("POST /api/setting/update_form_setting".to_owned(), "", 401, "No token provided"),
        ("PUT /api/auth/profile/update".to_owned(), "", 401, "No token provided"),
        (format!("POST /api/message/emit?{bad_signature}"), "", 401, "Invalid workspace or credentials"),
        (format!("POST /api/channel/auth?{bad_signature}"), "", 401, "Invalid workspace or credentials"),
        ("POST /api/message/emit?auth_key=nope".to_owned(), "", 401, "Invalid workspace or credentials"),
    ];
    for (line, extra, status, message) in cases {
        let head = format!(
            "{line} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2000000\r\n{extra}\r\n"
        );
        let (answer, _) = head_only(&server, &head, b"{").await;
        assert_eq!(answer.status, status, "{line}: {}", answer.head);
        assert_eq!(answer.body, json!({"success": false, "message": message}), "{line}");
    }
    assert_eq!(server.http().get("/health").await.0, 200);
}

#[tokio::test]
async fn bodies_past_a_routes_limit_are_413_before_they_are_read() {
    let (server, admin) = admin_server().await;
    let bearer = format!("authorization: Bearer {admin}\r\n");
    let signed = switchboard::auth::pusher::sign_query(
        APP_KEY,
        crate::support::APP_SECRET,
        "POST",
        "/api/message/emit",
        b"",
        &[("body_md5", "0123456789abcdef0123456789abcdef")],
        crate::support::http::now(),
    );
    // Unsigned: the server's bound, from the default 10 KB message limit (six times that for
    // JSON escapes, and the envelope); signed: the default app's own, the same here.
    let emit_limit = 6 * 10 * 1024 + 24 * 1024;
    let cases: Vec<(String, String, usize)> = vec![
        ("POST /api/auth/login".into(), String::new(), 8 * 1024 + 1),
        ("POST /api/auth/refresh".into(), String::new(), 8 * 1024 + 1),
        ("POST /api/channel/auth".into(), String::new(), 8 * 1024 + 1),
        (format!("POST /api/message/emit?{signed}"), String::new(), emit_limit + 1),
        ("POST /api/workspaces".into(), bearer.clone(), 16 * 1024 + 1),
        ("POST /api/admin/add".into(), bearer.clone(), 8 * 1024 + 1),
        ("POST /api/setting/update_form_setting".into(), bearer.clone(), 64 * 1024 + 1),
    ];
    for (line, extra, length) in cases {
        let head = format!(
            "{line} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n{extra}\r\n"
        );
        let (answer, mut stream) = head_only(&server, &head, b"{").await;
        assert_eq!(answer.status, 413, "{line}: {}", answer.head);
        assert!(answer.head.contains("connection: close"), "{line}: {}", answer.head);
        assert_eq!(answer.body, json!({"success": false, "message": "Request body is too large"}), "{line}");
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "{line}: the connection stayed open");
    }
    // An unsigned emit says why, and how to send more.
    let head = format!("POST /api/message/emit HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n", emit_limit + 1);
    let (answer, _) = head_only(&server, &head, b"{").await;
    assert_eq!((answer.status, answer.head.contains("connection: close")), (413, true), "{}", answer.head);
    let why = format!(
        "Request body is too large: an emit without a Pusher signature is read up to {emit_limit} bytes; sign larger ones"
    );
    assert_eq!(answer.body, json!({"success": false, "message": why}));
    // Setup reads a small body too (once an admin exists it answers before reading).
    let fresh = spawn_server().await;
    let head = "POST /api/setup/complete HTTP/1.1\r\nhost: x\r\ncontent-length: 8193\r\n\r\n";
    assert_eq!(head_only(&fresh, head, b"{").await.0.status, 413);
    // A path segment that does not decode to text.
    let http = server.http();
    let auth = format!("Bearer {admin}");
    for path in ["/api/workspaces/%FF", "/api/setting/%FF/view", "/api/admin/%FF/view"] {
        let (status, v) = http.request(Method::GET, path, b"", &[("authorization", &auth)]).await;
        assert_eq!((status, &v["success"]), (400, &json!(false)), "{path}: {v}");
    }
    server.stop().await;
}
