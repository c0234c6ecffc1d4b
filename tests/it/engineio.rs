//! Engine.IO v4 over raw HTTP long-polling and raw WebSocket against the real server: the
//! handshake's fields, the upgrade, the heartbeat, each of Node's HTTP errors, malformed
//! packets, maxPayload, overlapping polls, unknown sids, a second upgrade, refused origins, and
//! polling sessions counted against the per-address limit. The server's `/socket.io/` is a bare
//! Engine.IO echo here (the builder's `engineio`): these tests exchange Engine.IO messages, not
//! Socket.IO packets.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::support::ws::WAIT;
use crate::support::*;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server with the echo at `/socket.io/`.
async fn spawn_server() -> TestServer {
    spawn_with(|_| {}).await
}

/// [`spawn_server`] with a configuration change.
async fn spawn_with(tweak: impl FnOnce(&mut switchboard::config::Config)) -> TestServer {
    spawn_engineio_echo(tweak).await
}

/// A response read off a fresh connection: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.body))
    }
}

/// One request on its own TCP connection (closed after), so nothing is pooled or reused.
async fn raw(server: &TestServer, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await.expect("answered in time").unwrap();
    parse(&String::from_utf8_lossy(&out))
}

/// A whole response as read to the end of its connection.
fn parse(text: &str) -> Answer {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    // A poll that had to wait is answered chunked (its head went out before its payload).
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Answer { status, headers, body }
}

/// The payload of a complete chunked body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").expect("a chunk ends with CRLF");
    }
}

const PATH: &str = "/socket.io/";

async fn get(server: &TestServer, query: &str) -> Answer {
    raw(server, "GET", &format!("{PATH}?{query}"), b"", &[]).await
}

async fn poll(server: &TestServer, sid: &str) -> Answer {
    get(server, &format!("EIO=4&transport=polling&sid={sid}")).await
}

async fn post(server: &TestServer, sid: &str, body: &[u8]) -> Answer {
    raw(server, "POST", &format!("{PATH}?EIO=4&transport=polling&sid={sid}"), body, &[]).await
}

/// A polling handshake: the sid.
async fn open_polling(server: &TestServer) -> String {
    let answer = get(server, "EIO=4&transport=polling").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let open: Value = serde_json::from_str(answer.body.strip_prefix('0').expect("an open packet")).unwrap();
    open["sid"].as_str().unwrap().to_owned()
}

fn eio_error(code: u8, message: &str) -> Value {
    json!({"code": code, "message": message})
}

/// Short heartbeats, as the protocol suite uses.
async fn quick_server() -> TestServer {
    spawn_with(|c| {
        c.socketio.ping_interval_ms = 300;
        c.socketio.ping_timeout_ms = 200;
    })
    .await
}

async fn ws_connect(server: &TestServer, query: &str) -> Socket {
    let (ws, _) = connect_async(format!("ws://{}{PATH}?{query}", server.addr)).await.unwrap();
    ws
}

/// The next data message (text or binary), skipping control frames; `None` once closed.
async fn next(ws: &mut Socket) -> Option<Message> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a message in time") {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return Some(m),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn next_text(ws: &mut Socket) -> String {
    match next(ws).await {
        Some(Message::Text(t)) => t.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test]
async fn a_polling_handshake_has_every_field_and_the_first_ping_comes_one_interval_later() {
    let server = quick_server().await;
    let answer = get(&server, "EIO=4&transport=polling").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("text/plain; charset=UTF-8"));
    let open: Value = serde_json::from_str(answer.body.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!((open["pingInterval"].as_u64(), open["pingTimeout"].as_u64()), (Some(300), Some(200)));
    assert_eq!(open["maxPayload"], json!(1_000_000));
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(open.as_object().unwrap().len(), 5, "{open}");

    // The poll is held for the ping, which comes one interval after the handshake, not at once.
    let started = tokio::time::Instant::now();
    let ping = poll(&server, sid).await;
    assert_eq!((ping.status, ping.body.as_str()), (200, "2"));
    assert!(started.elapsed() >= Duration::from_millis(200), "the ping came at once");
    let pong = post(&server, sid, b"3").await;
    assert_eq!((pong.status, pong.body.as_str(), pong.header("content-type")), (200, "ok", Some("text/html")));
    assert_eq!(poll(&server, sid).await.body, "2", "the next ping after the pong");
}

#[tokio::test]
async fn messages_round_trip_over_polling_text_and_binary() {
    let server = spawn_server().await;
    let sid = open_polling(&server).await;
    assert_eq!(post(&server, &sid, "4hello\x1e4héllo\x1ebAQIDBA==".as_bytes()).await.body, "ok");
    assert_eq!(poll(&server, &sid).await.body, "4hello\x1e4héllo\x1ebAQIDBA==");
}

#[tokio::test]
async fn a_websocket_handshake_opens_with_no_upgrades_and_echoes() {
    let server = quick_server().await;
    let mut ws = ws_connect(&server, "EIO=4&transport=websocket").await;
    let open: Value = serde_json::from_str(next_text(&mut ws).await.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(open["pingInterval"], json!(300));
    ws.send(Message::text("4hello")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4hello");
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::binary(vec![1u8, 2, 3])));
    // Heartbeat: a ping, answered, then the next one.
    assert_eq!(next_text(&mut ws).await, "2");
    ws.send(Message::text("3")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "2");
}

#[tokio::test]
async fn the_heartbeat_drops_silent_clients_on_both_transports() {
    let server = quick_server().await;
    // WebSocket: pings unanswered → closed after interval + timeout.
    let mut ws = ws_connect(&server, "EIO=4&transport=websocket").await;
    assert!(next_text(&mut ws).await.starts_with('0'));
    assert_eq!(next_text(&mut ws).await, "2");
    assert_eq!(next(&mut ws).await, None, "closed after the ping timeout");

    // Polling: a client that stops polling is dropped after interval + timeout.
    let sid = open_polling(&server).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    // (A poll that finds it still there, on a slow machine, gets the ping; no pong follows.)
    let deadline = tokio::time::Instant::now() + WAIT;
    let gone = loop {
        let answer = poll(&server, &sid).await;
        if answer.status != 200 || tokio::time::Instant::now() > deadline {
            break answer;
        }
    };
    assert_eq!((gone.status, gone.json()), (400, eio_error(1, "Session ID unknown")));
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.state.realtime.total_connections() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the sessions left the core");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_http_error_is_answered_as_node_answers_it() {
    let server = spawn_server().await;
    for (query, code, message) in [
        ("EIO=4", 0, "Transport unknown"),
        ("EIO=4&transport=tobi", 0, "Transport unknown"),
        ("EIO=4&transport=polling&sid=nope", 1, "Session ID unknown"),
        ("EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", 1, "Session ID unknown"),
        ("EIO=4&transport=websocket", 3, "Bad request"),
        ("EIO=3&transport=polling", 5, "Unsupported protocol version"),
        ("EIO=abc&transport=polling", 5, "Unsupported protocol version"),
        ("transport=polling", 5, "Unsupported protocol version"),
    ] {
        let answer = get(&server, query).await;
        assert_eq!((answer.status, answer.json()), (400, eio_error(code, message)), "{query}");
        assert_eq!(answer.header("content-type"), Some("application/json"), "{query}");
    }
    let post_handshake = raw(&server, "POST", &format!("{PATH}?EIO=4&transport=polling"), b"4x", &[]).await;
    assert_eq!((post_handshake.status, post_handshake.json()), (400, eio_error(2, "Bad handshake method")));
    let put = raw(&server, "PUT", &format!("{PATH}?EIO=4&transport=polling"), b"", &[]).await;
    assert_eq!((put.status, put.json()), (400, eio_error(2, "Bad handshake method")));
    let unknown_post = post(&server, "AAAAAAAAAAAAAAAAAAAA", b"4x").await;
    assert_eq!((unknown_post.status, unknown_post.json()), (400, eio_error(1, "Session ID unknown")));
    // The same paths at /ws (with EIO=) and /ws/.
    let ws = raw(&server, "GET", "/ws?EIO=3&transport=polling", b"", &[]).await;
    assert_eq!((ws.status, ws.json()), (400, eio_error(5, "Unsupported protocol version")));
    let slash = raw(&server, "GET", "/ws/?EIO=4&transport=polling", b"", &[]).await;
    assert_eq!(slash.status, 200);
    assert!(slash.body.starts_with("0{"), "{}", slash.body);
}

#[tokio::test]
async fn a_handshake_from_a_refused_origin_is_403_on_polling_and_websocket() {
    let server = spawn_with(|c| c.server.cors_origins = vec!["https://good.example".into()]).await;
    let refused = raw(&server, "GET", "/ws/?EIO=4&transport=polling", b"", &[("origin", "https://evil.example")]).await;
    assert_eq!((refused.status, refused.json()), (403, eio_error(4, "Forbidden")));
    let allowed = raw(&server, "GET", "/ws/?EIO=4&transport=polling", b"", &[("origin", "https://good.example")]).await;
    assert_eq!(allowed.status, 200);
    // A page on an allowed origin may read its polls (cross-origin XHR).
    assert_eq!(allowed.header("access-control-allow-origin"), Some("https://good.example"));
    assert_eq!(allowed.header("access-control-allow-credentials"), Some("true"));
    let preflight =
        raw(&server, "OPTIONS", "/ws/?EIO=4&transport=polling", b"", &[("origin", "https://good.example")]).await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("https://good.example"));
    let no_origin = raw(&server, "GET", "/ws/?EIO=4&transport=polling", b"", &[]).await;
    assert_eq!(no_origin.status, 200, "a missing Origin is fine");

    let mut req = format!("ws://{}/ws?EIO=4&transport=websocket", server.addr).into_client_request().unwrap();
    req.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    match connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 403);
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body, eio_error(4, "Forbidden"));
        }
        other => panic!("a refused origin was upgraded: {:?}", other.map(|_| ())),
    }
    let mut req = format!("ws://{}/ws?EIO=4&transport=websocket", server.addr).into_client_request().unwrap();
    req.headers_mut().insert("origin", "https://good.example".parse().unwrap());
    let (mut ws, _) = connect_async(req).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with('0'));
}

#[tokio::test]
async fn malformed_packets_close_the_session_and_the_server_stays_healthy() {
    let server = spawn_server().await;
    for bad in [&b"abc"[..], b"", b"7", b"0{}", b"4ok\x1e", b"b!!notbase64", b"4\xff\xfe"] {
        let sid = open_polling(&server).await;
        let answer = post(&server, &sid, bad).await;
        assert_eq!((answer.status, answer.json()), (400, eio_error(3, "Bad request")), "{bad:?}");
        assert_eq!(poll(&server, &sid).await.status, 400, "{bad:?}: the session is closed");
    }
    for bad in ["abc", "", "9", "b AQID"] {
        let mut ws = ws_connect(&server, "EIO=4&transport=websocket").await;
        assert!(next_text(&mut ws).await.starts_with('0'));
        ws.send(Message::text(bad)).await.unwrap();
        assert_eq!(next(&mut ws).await, None, "{bad:?} closes the socket");
    }
    let sid = open_polling(&server).await;
    assert_eq!(post(&server, &sid, b"4still fine").await.body, "ok");
    assert_eq!(poll(&server, &sid).await.body, "4still fine");
}

/// In v4 the server pings: a client's ping is the wrong heartbeat direction and ends the session,
/// as Node's server does (so a POST of half a million pings is not half a million pongs).
#[tokio::test]
async fn a_ping_from_the_client_ends_the_session() {
    let server = spawn_server().await;
    let sid = open_polling(&server).await;
    let pings = vec!["2"; 1000].join("\x1e");
    let answer = post(&server, &sid, pings.as_bytes()).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    assert_eq!(poll(&server, &sid).await.status, 400, "the session is closed");
    let mut ws = ws_connect(&server, "EIO=4&transport=websocket").await;
    assert!(next_text(&mut ws).await.starts_with('0'));
    ws.send(Message::text("2")).await.unwrap();
    assert_eq!(next(&mut ws).await, None, "a ping closes the socket");
    let sid = open_polling(&server).await;
    assert_eq!(post(&server, &sid, b"4still fine").await.body, "ok");
    assert_eq!(poll(&server, &sid).await.body, "4still fine");
}

#[tokio::test]
async fn a_payload_over_max_payload_is_413_on_polling_and_1009_on_websocket() {
    let server = spawn_with(|c| c.socketio.max_payload = 2048).await;
    let sid = open_polling(&server).await;
    let big = format!("4{}", "x".repeat(3000));
    let answer = post(&server, &sid, big.as_bytes()).await;
    assert_eq!(answer.status, 413);
    assert_eq!(poll(&server, &sid).await.status, 400, "the session is closed");
    let sid = open_polling(&server).await;
    assert_eq!(post(&server, &sid, format!("4{}", "x".repeat(2000)).as_bytes()).await.body, "ok");

    let mut ws = ws_connect(&server, "EIO=4&transport=websocket").await;
    assert!(next_text(&mut ws).await.starts_with('0'));
    ws.send(Message::text(big)).await.unwrap();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1009);
                break;
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => panic!("closed without 1009"),
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn two_polls_at_once_close_the_session() {
    let server = spawn_server().await;
    let sid = open_polling(&server).await;
    let first = poll(&server, &sid);
    let second = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        poll(&server, &sid).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!((first.status, first.body.as_str()), (200, "1"), "the first poll is told the session closed");
    assert_eq!((second.status, second.json()), (400, eio_error(3, "Bad request")));
    assert_eq!(poll(&server, &sid).await.status, 400);
}

#[tokio::test]
async fn a_client_close_ends_the_pending_poll_with_a_noop() {
    let server = spawn_server().await;
    let sid = open_polling(&server).await;
    let pending = poll(&server, &sid);
    let close = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        post(&server, &sid, b"1").await
    };
    let (pending, close) = tokio::join!(pending, close);
    assert_eq!(close.body, "ok");
    assert_eq!((pending.status, pending.body.as_str()), (200, "6"));
    assert_eq!(poll(&server, &sid).await.status, 400);
}

#[tokio::test]
async fn polling_upgrades_to_websocket_once() {
    let server = quick_server().await;
    let sid = open_polling(&server).await;
    assert_eq!(post(&server, &sid, b"4before").await.body, "ok");
    let mut ws = ws_connect(&server, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3probe");
    // The poll gets what was queued and the noop that ends polling.
    assert_eq!(poll(&server, &sid).await.body, "4before\x1e6");
    ws.send(Message::text("5")).await.unwrap();
    ws.send(Message::text("4after")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4after");

    // Polling is over for this sid, and a second upgrade is accepted then closed.
    let after = poll(&server, &sid).await;
    assert_eq!((after.status, after.json()), (400, eio_error(3, "Bad request")));
    let mut second = ws_connect(&server, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    assert_eq!(next(&mut second).await, None, "the second upgrade is closed");
    // The upgraded session lives on, heartbeat included.
    assert_eq!(next_text(&mut ws).await, "2");
    ws.send(Message::text("3")).await.unwrap();
    ws.send(Message::text("4still")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4still");
    // When it ends, the sid is forgotten.
    ws.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let gone = poll(&server, &sid).await;
        if gone.status == 400 && gone.json()["code"] == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the sid outlived its socket");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn polling_sessions_count_against_the_per_address_limit() {
    let server = spawn_with(|c| c.server.max_connections_per_ip = 3).await;
    // Two sessions hold two slots though their handshakes' connections are closed.
    let a = open_polling(&server).await;
    let _b = open_polling(&server).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    // The third handshake's own connection takes the last slot: its session finds none.
    let refused = loop {
        let answer = get(&server, "EIO=4&transport=polling").await;
        // Engine.IO's refusal, not the accept loop's (a handshake connection still closing
        // may hold a slot for a moment, refusing the next TCP connection itself).
        let engine_io = answer.body.contains(r#""code":3"#);
        if (answer.status == 429 && engine_io) || tokio::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.json(), eio_error(3, "Too many connections from this address"));
    assert_eq!(refused.header("retry-after"), Some("1"));
    // A session that ends gives its slot back.
    assert_eq!(post(&server, &a, b"1").await.body, "ok");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = get(&server, "EIO=4&transport=polling").await;
        if answer.status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the slot came back: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_long_poll_outlives_the_request_deadline() {
    let server = spawn_with(|c| {
        c.server.request_timeout_ms = 200;
        c.socketio.ping_interval_ms = 600;
        c.socketio.ping_timeout_ms = 200;
    })
    .await;
    let sid = open_polling(&server).await;
    let ping = poll(&server, &sid).await;
    assert_eq!((ping.status, ping.body.as_str()), (200, "2"), "held past the 200 ms deadline until the ping");
}

#[tokio::test]
async fn a_polling_client_that_does_not_keep_up_is_disconnected_not_buffered() {
    let server = spawn_with(|c| c.connection.outbox_max_frames = 8).await;
    let sid = open_polling(&server).await;
    // Twenty echoes for a session whose buffer holds eight packets, and no poll to take them.
    let flood: Vec<String> = (0..20).map(|i| format!("4m{i}")).collect();
    assert_eq!(post(&server, &sid, flood.join("\x1e").as_bytes()).await.body, "ok");
    let last = poll(&server, &sid).await;
    assert_eq!(last.status, 200);
    let packets: Vec<&str> = last.body.split('\x1e').collect();
    assert!(packets.len() <= 9, "at most the buffer, then the close: {packets:?}");
    assert_eq!(packets.last(), Some(&"1"), "the session is closed: {packets:?}");
    assert_eq!(poll(&server, &sid).await.status, 400);
    // Other sessions are unaffected.
    let other = open_polling(&server).await;
    assert_eq!(post(&server, &other, b"4fine").await.body, "ok");
    assert_eq!(poll(&server, &other).await.body, "4fine");
}

#[tokio::test]
async fn shutdown_ends_pending_polls_and_websockets() {
    let server = spawn_server().await;
    let sid = open_polling(&server).await;
    let mut ws = ws_connect(&server, "EIO=4&transport=websocket").await;
    assert!(next_text(&mut ws).await.starts_with('0'));
    let pending = tokio::spawn({
        let addr = server.addr;
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let req = format!(
                "GET {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            parse(&String::from_utf8_lossy(&out))
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.state.shutdown.trigger();
    let answer = tokio::time::timeout(WAIT, pending).await.expect("the poll is answered at shutdown").unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "1"));
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("the socket closes") {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1001);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("closed without a close frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn polling_sessions_count_against_the_connection_capacity() {
    let server = spawn_with(|c| c.server.max_connections = 3).await;
    let a = open_polling(&server).await;
    let _b = open_polling(&server).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let refused = loop {
        let answer = get(&server, "EIO=4&transport=polling").await;
        // Engine.IO's refusal, not the accept loop's (a handshake connection still closing
        // may hold a slot for a moment, refusing the next TCP connection itself).
        let engine_io = answer.body.contains(r#""code":3"#);
        if (answer.status == 503 && engine_io) || tokio::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json(), eio_error(3, "Server at capacity"));
    assert_eq!(post(&server, &a, b"1").await.body, "ok");
    let deadline = tokio::time::Instant::now() + WAIT;
    while get(&server, "EIO=4&transport=polling").await.status != 200 {
        assert!(tokio::time::Instant::now() < deadline, "the slot came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_probe_ends_the_pending_poll_with_a_noop_and_upgrades_need_a_known_sid() {
    let server = spawn_server().await;
    let sid = open_polling(&server).await;
    let pending = tokio::spawn({
        let addr = server.addr;
        let sid = sid.clone();
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let req = format!(
                "GET {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            parse(&String::from_utf8_lossy(&out))
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ws = ws_connect(&server, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3probe");
    let answer = tokio::time::timeout(WAIT, pending).await.expect("the pending poll is answered").unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "6"));
    ws.send(Message::text("5")).await.unwrap();
    ws.send(Message::text("4up")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4up");

    match connect_async(format!("ws://{}{PATH}?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA", server.addr)).await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 400);
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body, eio_error(1, "Session ID unknown"));
        }
        other => panic!("an upgrade of an unknown sid was accepted: {:?}", other.map(|_| ())),
    }
}
