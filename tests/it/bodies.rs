//! Request bodies (issue 14, items 4, 5, 7): credentials carried in the head are checked before
//! a byte of the body is read; each route reads at most what its valid requests need and answers
//! 413 JSON (closing the connection) as soon as `Content-Length` or the stream goes past it; the
//! framework's own rejections are JSON too.

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::http::now;
use crate::support::{APP_ID, APP_KEY, APP_SECRET, TestServer, spawn_server};

/// A response read off a raw socket: status, lowercased head, body.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Value,
}

/// Reads one response (head, then `Content-Length` bytes of body) within 5 s.
pub async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if buf.len() >= end + 4 + len {
                    let body = serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or(Value::Null);
                    let status = head[9..12].parse().unwrap();
                    return Answer { status, head, body };
                }
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before a full answer: {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.expect("no answer: the server is waiting for the body")
}

/// Sends a request head (and `body_start`), never the rest of the body it declares.
pub async fn head_only(server: &TestServer, head: &str, body_start: &[u8]) -> (Answer, TcpStream) {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_start).await.unwrap();
    let answer = read_answer(&mut stream).await;
    (answer, stream)
}

async fn token(server: &TestServer, name: &str) -> String {
    let body = json!({"username": name, "password": "password-123"});
    let (s, b) = server.http().json(Method::POST, "/auth/register", Some(body), None).await;
    assert_eq!(s, 201, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn credentials_are_checked_before_the_body_is_read() {
    let server = spawn_server().await;
    // Each declares 2 MB and sends none of it: an answer at all proves the body was not awaited.
    let cases = [
        ("POST /api/broadcast", "", 401, "invalid or missing x-app-key"),
        ("POST /api/broadcast", "x-app-key: not-a-secret\r\n", 401, "invalid or inactive x-app-key"),
        ("POST /apps/app-1/events", "", 401, "missing auth_key parameter"),
        ("POST /apps/app-1/events?auth_key=key-1&auth_timestamp=1&auth_version=1.0&auth_signature=00", "", 401, ""),
        ("POST /apps/nosuch/events", "", 404, "Unknown app"),
        ("POST /apps/app-1/batch_events", "", 401, "missing auth_key parameter"),
        ("POST /dashboard/apps", "", 401, "Missing bearer token"),
        ("POST /dashboard/apps", "authorization: Bearer nope\r\n", 401, "Invalid or expired token"),
        ("POST /dashboard/domains", "", 401, "Missing bearer token"),
    ];
    for (line, extra, status, message) in cases {
        let head = format!(
            "{line} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2000000\r\n{extra}\r\n"
        );
        let (answer, _) = head_only(&server, &head, b"{").await;
        assert_eq!(answer.status, status, "{line} {extra:?}: {}", answer.head);
        if !message.is_empty() {
            assert_eq!(answer.body["error"], message, "{line}");
        }
    }
    assert_eq!(server.http().get("/health").await.0, 200);
}

#[tokio::test]
async fn bodies_over_a_routes_limit_get_413_json_before_they_are_read() {
    let server = spawn_server().await;
    let owner = token(&server, "big-bodies").await;
    let bearer = format!("authorization: Bearer {owner}\r\n");
    let (s, app) =
        server.http().json(Method::POST, "/dashboard/apps", Some(json!({"name": "mine"})), Some(&owner)).await;
    assert_eq!(s, 201, "{app}");
    let patch = format!("PATCH /dashboard/apps/{}", app["id"].as_str().unwrap());
    let secret = format!("x-app-key: {APP_SECRET}\r\n");
    // A signature over a body_md5 of a body that never comes: the head checks out, the
    // declared length does not.
    let signed = switchboard::auth::pusher::sign_query(
        APP_KEY,
        APP_SECRET,
        "POST",
        &format!("/apps/{APP_ID}/events"),
        b"",
        &[("body_md5", "0123456789abcdef0123456789abcdef")],
        now(),
    );
    let events = format!("POST /apps/{APP_ID}/events?{signed}");
    // (request line, headers, declared length): each just past what the route reads.
    let cases: Vec<(String, String, usize)> = vec![
        ("POST /auth/login".into(), String::new(), 8 * 1024 + 1),
        ("POST /auth/register".into(), String::new(), 8 * 1024 + 1),
        ("POST /login".into(), String::new(), 8 * 1024 + 1),
        ("POST /dashboard/apps".into(), bearer.clone(), 64 * 1024 + 1),
        (patch, bearer.clone(), 64 * 1024 + 1),
        ("POST /dashboard/domains".into(), bearer.clone(), 64 * 1024 + 1),
        ("POST /api/broadcast".into(), secret, 6 * 10 * 1024 + 24 * 1024 + 1),
        (events, String::new(), 6 * 10 * 1024 + 24 * 1024 + 1),
    ];
    for (line, extra, length) in cases {
        let head = format!(
            "{line} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n{extra}\r\n"
        );
        let (answer, mut stream) = head_only(&server, &head, b"{").await;
        assert_eq!(answer.status, 413, "{line}: {}", answer.head);
        assert!(answer.head.contains("content-type: application/json"), "{line}: {}", answer.head);
        assert!(answer.head.contains("connection: close"), "{line}: {}", answer.head);
        assert!(answer.body["error"].as_str().unwrap().contains("larger than this endpoint accepts"), "{line}");
        // The connection ends with the answer: nothing more of the body is waited for.
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "{line}: the connection stayed open");
    }
    // One byte under the limit is read and answered on its merits.
    let body = format!(r#"{{"username":"nobody","password":"whatever-123","pad":"{}"}}"#, "x".repeat(8 * 1024 - 60));
    assert!(body.len() <= 8 * 1024);
    let (s, b) = server.http().request(Method::POST, "/auth/login", body.as_bytes(), &[]).await;
    assert_eq!((s, b), (401, json!({"error": "Invalid credentials."})));
}

#[tokio::test]
async fn a_body_streamed_past_the_limit_is_refused_as_it_crosses_it() {
    let server = spawn_server().await;
    let head =
        "POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    // 9 KiB in 1 KiB chunks, and never the last chunk: the 413 comes anyway.
    let mut chunks = Vec::new();
    for _ in 0..9 {
        chunks.extend_from_slice(format!("400\r\n{}\r\n", "a".repeat(1024)).as_bytes());
    }
    let (answer, _) = head_only(&server, head, &chunks).await;
    assert_eq!(answer.status, 413, "{}", answer.head);
    assert!(answer.body["error"].is_string());
}

#[tokio::test]
async fn unknown_fields_are_skipped_unread() {
    let server = spawn_server().await;
    // Shaped like the probe's amplification body, within the limit: the typed request ignores
    // `x` without building it, and the login is judged on its fields.
    let items = vec![json!({"a": 0}); 700];
    let body = json!({"x": items, "username": "nobody", "password": "whatever-123"}).to_string();
    let (s, b) = server.http().request(Method::POST, "/auth/login", body.as_bytes(), &[]).await;
    assert_eq!((s, b), (401, json!({"error": "Invalid credentials."})));
    let (s, b) = server.http().request(Method::POST, "/auth/login", b"[1,2]", &[]).await;
    assert_eq!((s, b), (400, json!({"error": "Body must be a JSON object."})));
    let (s, b) = server.http().request(Method::POST, "/auth/login", br#"{"username":1,"password":"x"}"#, &[]).await;
    assert_eq!((s, b), (400, json!({"error": "Fields must be strings."})));
}

#[tokio::test]
async fn the_frameworks_own_rejections_are_json() {
    let server = spawn_server().await;
    let bearer = format!("Bearer {}", token(&server, "rejections").await);
    let http = server.http();
    // A path segment that is not UTF-8 once decoded: axum's Path rejection, as JSON.
    for (path, headers) in
        [("/dashboard/apps/%FF", vec![("authorization", bearer.as_str())]), ("/apps/%FF/channels", vec![])]
    {
        let (status, h, body) = http.request_full(Method::GET, path, b"", &headers).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(h["content-type"], "application/json", "{path}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {body}");
    }
    let (status, h, body) = http.request_full(Method::DELETE, "/auth/login", b"", &[]).await;
    assert_eq!((status, &body), (405, &json!({"error": "method not allowed"})));
    assert!(h.contains_key("allow"));
    let (status, body) = http.get("/no/such/path").await;
    assert_eq!((status, body), (404, json!({"error": "not found"})));
}
