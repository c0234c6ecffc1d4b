//! Socket.IO v5 on the real server, through raw Engine.IO clients over WebSocket and polling:
//! namespaces, auth, the connect timeout, events, acks both ways, binary attachments both ways,
//! disconnects, channel events from the core, and malformed packets (each closes only the
//! connection that sent it; the server stays healthy).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::core::{ChannelName, Data, Event};
use switchboard::transport::socketio::{Args, ConnectRefusal, Namespace, Socket, SocketIo};

use crate::support::sio::{Got, SioPoll, SioWs};
use crate::support::{TestServer, spawn_socketio};

const PATH: &str = "/socket.io/";

/// The conformance setup (`/` and `/custom`, `auth` emitted back, `message` echoed as
/// `message-back`, `message-with-ack` acked), plus what these tests need: a refusing
/// connect, channel joins, acks we ask for.
fn setup() -> SocketIo {
    let ns = || {
        Namespace::new()
            .on_connect(|socket, auth| {
                let auth: Value = serde_json::from_str(auth).unwrap_or(Value::Null);
                if auth["token"] == "refuse" {
                    return Err(ConnectRefusal::new("Not authorized").with_data(&json!({"code": 7})));
                }
                socket.emit("auth", &Args::json(&auth).unwrap()).unwrap();
                Ok(())
            })
            .on("message", |socket, m| socket.emit("message-back", &m.args).unwrap())
            .on("message-with-ack", |_, m| m.ack.unwrap().send(&m.args).unwrap())
            .on("join", |socket: &Socket, m| {
                let name: String = m.args.first().unwrap();
                socket.join(&ChannelName::parse(&name).unwrap()).unwrap();
                if let Some(ack) = m.ack {
                    ack.send(&Args::json(&"joined").unwrap()).unwrap();
                }
            })
            .on("leave", |socket: &Socket, _| socket.disconnect())
            .on("leave-later", |socket: &Socket, _| {
                // From another task, as a surface that checks something first does.
                let socket = socket.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    socket.disconnect();
                });
            })
            .on("ask", |socket: &Socket, _| {
                let socket2 = socket.clone();
                socket
                    .emit_with_ack("question", &Args::json(&"?").unwrap(), move |answer| {
                        let args = answer.unwrap();
                        socket2.emit("answered", &args).unwrap();
                    })
                    .unwrap();
            })
    };
    SocketIo::new().connect_timeout(Duration::from_millis(500)).namespace("/", ns()).namespace("/custom", ns())
}

async fn server() -> TestServer {
    spawn_socketio(PATH, setup()).await
}

fn sid(answer: &str, prefix: &str) -> String {
    let v: Value = serde_json::from_str(answer.strip_prefix(prefix).unwrap_or_else(|| panic!("{answer}"))).unwrap();
    v["sid"].as_str().unwrap().to_owned()
}

/// The server still serves a new connection end to end.
async fn assert_healthy(s: &TestServer) {
    let (mut ws, answer) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    sid(&answer, "40");
    assert_eq!(ws.text().await, r#"42["auth",{}]"#);
    ws.send(r#"42["message","still here"]"#).await;
    assert_eq!(ws.text().await, r#"42["message-back","still here"]"#);
}

#[tokio::test]
async fn connects_to_namespaces_with_auth_over_websocket() {
    let s = server().await;
    let mut ws = SioWs::connect(s.addr, PATH).await;
    let main = ws.join("/", "").await;
    assert_eq!(ws.text().await, r#"42["auth",{}]"#);
    let custom = ws.join("/custom", r#"{"token":"abc"}"#).await;
    assert_eq!(ws.text().await, r#"42/custom,["auth",{"token":"abc"}]"#);
    assert_ne!(sid(&main, "40"), sid(&custom, "40/custom,"));
    assert_eq!(ws.join("/random", "").await, r#"44/random,{"message":"Invalid namespace"}"#);
    // Still connected to both namespaces.
    ws.send(r#"42/custom,["message",1]"#).await;
    assert_eq!(ws.text().await, r#"42/custom,["message-back",1]"#);
    ws.send(r#"42["message",2]"#).await;
    assert_eq!(ws.text().await, r#"42["message-back",2]"#);
    // A connect handler refuses with data; the client may try again.
    let mut other = SioWs::connect(s.addr, PATH).await;
    assert_eq!(other.join("/", r#"{"token":"refuse"}"#).await, r#"44{"message":"Not authorized","data":{"code":7}}"#);
    sid(&other.join("/", r#"{"token":"ok"}"#).await, "40");
    assert_eq!(other.text().await, r#"42["auth",{"token":"ok"}]"#);
}

#[tokio::test]
async fn connects_events_and_acks_over_polling() {
    let s = server().await;
    let poll = SioPoll::connect(s.addr, PATH).await;
    assert_eq!(poll.post(&[r#"40{"token":"p"}"#]).await, 200);
    let got = poll.packets(2).await;
    sid(&got[0], "40");
    assert_eq!(got[1], r#"42["auth",{"token":"p"}]"#);
    assert_eq!(poll.post(&[r#"42["message",1,"2",{"3":[true]}]"#, r#"4212["message-with-ack",false]"#]).await, 200);
    assert_eq!(poll.packets(2).await, [r#"42["message-back",1,"2",{"3":[true]}]"#, "4312[false]"]);
}

#[tokio::test]
async fn a_connection_that_never_connects_is_closed_after_the_timeout() {
    let s = server().await;
    let mut ws = SioWs::connect(s.addr, PATH).await;
    ws.expect_closed().await;
    // Connected in time: it stays.
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    ws.expect_silence(Duration::from_millis(800)).await;
}

/// A connection that is in a namespace no more (left by the client, disconnected by a handler
/// or from another task, then refused) gets the connect timeout again, as a fresh one.
#[tokio::test]
async fn a_connection_left_in_no_namespace_is_closed_after_the_timeout() {
    let s = server().await;
    let timeout = Duration::from_millis(500);
    for leave in [None, Some(r#"42["leave"]"#), Some(r#"42["leave-later"]"#)] {
        let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
        ws.text().await;
        // Longer than the timeout in the namespace: it stays.
        ws.expect_silence(timeout + Duration::from_millis(200)).await;
        match leave {
            None => ws.send("41").await,
            Some(event) => {
                ws.send(event).await;
                assert_eq!(ws.text().await, "41", "{event}");
            }
        }
        let left = tokio::time::Instant::now();
        ws.expect_closed().await;
        assert!(left.elapsed() >= timeout - Duration::from_millis(50), "{leave:?}: closed after {:?}", left.elapsed());
    }
    // A refused CONNECT after leaving does not restart the timeout.
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    ws.send("41").await;
    assert_eq!(ws.join("/", r#"{"token":"refuse"}"#).await, r#"44{"message":"Not authorized","data":{"code":7}}"#);
    ws.expect_closed().await;
    // Back in a namespace within the timeout: it stays.
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    ws.send("41").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    ws.join("/custom", "").await;
    ws.text().await;
    ws.expect_silence(Duration::from_millis(800)).await;
    // Polling, disconnected from another task while a GET waits.
    let poll = SioPoll::connect(s.addr, PATH).await;
    assert_eq!(poll.post(&["40"]).await, 200);
    poll.packets(2).await;
    assert_eq!(poll.post(&[r#"42["leave-later"]"#]).await, 200);
    assert_eq!(poll.packets(1).await, ["41"]);
    let left = tokio::time::Instant::now();
    let (status, packets) = poll.poll().await;
    assert_eq!((status, packets), (200, vec!["1".to_owned()]));
    assert!(left.elapsed() >= timeout - Duration::from_millis(50), "closed after {:?}", left.elapsed());
    assert_eq!(poll.poll().await.0, 400);
    assert_healthy(&s).await;
}

#[tokio::test]
async fn events_and_acks_both_ways() {
    let s = server().await;
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    ws.send(r#"42["message",1,"2",{"3":[true]}]"#).await;
    assert_eq!(ws.text().await, r#"42["message-back",1,"2",{"3":[true]}]"#);
    ws.send(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#).await;
    assert_eq!(ws.text().await, r#"43456[1,"2",{"3":[false]}]"#);
    // The server asks, the client answers, the server's callback gets the answer.
    ws.send(r#"42["ask"]"#).await;
    let question = ws.text().await;
    let id = question.strip_prefix("42").unwrap().split('[').next().unwrap().to_owned();
    assert_eq!(question, format!(r#"42{id}["question","?"]"#));
    ws.send(&format!(r#"43{id}["yes",2]"#)).await;
    assert_eq!(ws.text().await, r#"42["answered","yes",2]"#);
}

#[tokio::test]
async fn binary_attachments_both_ways() {
    let s = server().await;
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    let two = r#"{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}"#;
    ws.send(&format!(r#"452-["message",{two}]"#)).await;
    ws.send_binary(&[1, 2, 3]).await;
    ws.send_binary(&[4, 5, 6]).await;
    assert_eq!(ws.recv().await, Got::Text(format!(r#"452-["message-back",{two}]"#)));
    assert_eq!(ws.recv().await, Got::Binary(vec![1, 2, 3]));
    assert_eq!(ws.recv().await, Got::Binary(vec![4, 5, 6]));
    ws.send(&format!(r#"452-789["message-with-ack",{two}]"#)).await;
    ws.send_binary(&[7]).await;
    ws.send_binary(&[8]).await;
    assert_eq!(ws.recv().await, Got::Text(format!("462-789[{two}]")));
    assert_eq!(ws.recv().await, Got::Binary(vec![7]));
    assert_eq!(ws.recv().await, Got::Binary(vec![8]));
}

#[tokio::test]
async fn binary_attachments_over_polling_travel_as_base64() {
    let s = server().await;
    let poll = SioPoll::connect(s.addr, PATH).await;
    poll.post(&["40"]).await;
    poll.packets(2).await;
    // [1,2,3] is AQID in base64.
    assert_eq!(poll.post(&[r#"451-["message",{"_placeholder":true,"num":0}]"#, "bAQID"]).await, 200);
    assert_eq!(poll.packets(2).await, [r#"451-["message-back",{"_placeholder":true,"num":0}]"#, "bAQID"]);
}

#[tokio::test]
async fn disconnect_leaves_one_namespace_and_the_connection_stays() {
    let s = server().await;
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    ws.join("/custom", "").await;
    ws.text().await;
    ws.send("41/custom,").await;
    ws.send(r#"42["message","to main"]"#).await;
    assert_eq!(ws.text().await, r#"42["message-back","to main"]"#);
    ws.send("41").await;
    // Out of every namespace, the Engine.IO connection is still there: it may connect again.
    ws.join("/", "").await;
    assert_eq!(ws.text().await, r#"42["auth",{}]"#);
}

#[tokio::test]
async fn channel_events_reach_websocket_and_polling_sockets_alike() {
    let s = server().await;
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    ws.send(r#"421["join","orders"]"#).await;
    assert_eq!(ws.text().await, r#"431["joined"]"#);
    let poll = SioPoll::connect(s.addr, PATH).await;
    poll.post(&["40"]).await;
    poll.packets(2).await;
    poll.post(&[r#"422["join","orders"]"#]).await;
    assert_eq!(poll.packets(1).await, [r#"432["joined"]"#]);
    let app: Arc<str> = crate::support::APP_ID.into();
    let event = Event {
        channel: Some(ChannelName::parse("orders").unwrap()),
        name: "placed".into(),
        data: Data::Json(r#"{"id":1}"#.into()),
        user_id: None,
        except: None,
    };
    s.state.realtime.publish(&app, event).unwrap();
    assert_eq!(ws.text().await, r#"42["placed",{"id":1}]"#);
    assert_eq!(poll.packets(1).await, [r#"42["placed",{"id":1}]"#]);
    // A Pusher trigger on the same channel reaches them too.
    let (status, body) = s.http().trigger(json!({"name": "shipped", "channel": "orders", "data": "box"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ws.text().await, r#"42["shipped","box"]"#);
    assert_eq!(poll.packets(1).await, [r#"42["shipped","box"]"#]);
}

/// Each malformed packet closes the connection that sent it, and only that one.
#[tokio::test]
async fn malformed_packets_close_their_connection_and_the_server_stays_healthy() {
    let s = server().await;
    let (mut bystander, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    bystander.text().await;
    let deep = format!(r#"42["message",{}{}]"#, "[".repeat(10_000), "]".repeat(10_000));
    let bomb = format!(r#"451000000-["message",{}]"#, r#"{"_placeholder":true,"num":0}"#);
    let cases: Vec<(&str, String)> = vec![
        ("unknown packet type", "4abc".into()),
        ("unknown packet type 9", "49".into()),
        ("non-array event payload", "42{}".into()),
        ("string event payload", r#"42"message""#.into()),
        ("bad ack id", r#"42abc["message-with-ack",1]"#.into()),
        ("ack id too large", r#"4299999999999999999["message-with-ack",1]"#.into()),
        ("attachment count mismatch", r#"452-["message",{"_placeholder":true,"num":0}]"#.into()),
        ("placeholder out of range", r#"451-["message",{"_placeholder":true,"num":5}]"#.into()),
        ("placeholder bomb", bomb),
        ("nesting 10,000 deep", deep),
        ("event in a namespace not joined", r#"42/custom,["message"]"#.into()),
    ];
    for (what, packet) in cases {
        let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
        ws.text().await;
        ws.send(&packet).await;
        match tokio::time::timeout(Duration::from_secs(5), ws.expect_closed()).await {
            Ok(()) => {}
            Err(_) => panic!("{what}: the connection stayed open"),
        }
    }
    // A binary frame nobody announced.
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    ws.send_binary(&[1]).await;
    ws.expect_closed().await;
    bystander.send(r#"42["message","alive"]"#).await;
    assert_eq!(bystander.text().await, r#"42["message-back","alive"]"#);
    assert_healthy(&s).await;
}

#[tokio::test]
async fn malformed_packets_over_polling_end_the_session() {
    let s = server().await;
    let poll = SioPoll::connect(s.addr, PATH).await;
    poll.post(&["40"]).await;
    poll.packets(2).await;
    poll.post(&["42{}"]).await;
    // The session is gone: the next poll is refused (or gets the close).
    let (status, packets) = poll.poll().await;
    assert!(status == 400 || packets.iter().any(|p| p == "1"), "{status} {packets:?}");
    assert_healthy(&s).await;
}

/// A handler that panics ends its own connection; the others and the server go on.
#[tokio::test]
async fn a_panicking_handler_closes_only_its_connection() {
    let ns = Namespace::new()
        .on("boom", |_, _| panic!("a bug in the program's handler"))
        .on("message", |socket, m| socket.emit("message-back", &m.args).unwrap());
    let s = spawn_socketio(PATH, SocketIo::new().namespace("/", ns)).await;
    let (mut other, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.send(r#"42["boom"]"#).await;
    ws.expect_closed().await;
    other.send(r#"42["message","fine"]"#).await;
    assert_eq!(other.text().await, r#"42["message-back","fine"]"#);
    let (mut again, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    again.send(r#"42["message",1]"#).await;
    assert_eq!(again.text().await, r#"42["message-back",1]"#);
}

/// A disabled app's sockets are told DISCONNECT (the client library does not reconnect after
/// it); a server going away closes the transport only, so clients reconnect.
#[tokio::test]
async fn an_app_disabled_disconnects_and_a_shutdown_only_closes() {
    let s = server().await;
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    s.state.realtime.close_app(crate::support::APP_ID, switchboard::core::Disconnect::AppDisabled);
    assert_eq!(ws.recv().await, Got::Text("41".into()));
    ws.expect_closed().await;
    let (mut ws, _) = SioWs::connect_nsp(s.addr, PATH, "/", "").await;
    ws.text().await;
    let stopping = tokio::spawn(s.stop());
    assert_eq!(ws.recv().await, Got::Closed);
    stopping.await.unwrap();
}

/// A connect handler sees the handshake's own query parameters (Hestia's `query.token`), not
/// Engine.IO's.
#[tokio::test]
async fn connect_handlers_see_the_handshake_query() {
    let ns = Namespace::new().on_connect(|socket, _| {
        let seen: Vec<_> = socket.handshake().query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        socket.emit("query", &Args::json(&seen).unwrap()).unwrap();
        Ok(())
    });
    let s = spawn_socketio(PATH, SocketIo::new().namespace("/", ns)).await;
    let mut ws = SioWs::connect_with_query(s.addr, PATH, "&token=a%20b&t=Nx1").await;
    sid(&ws.join("/", "").await, "40");
    assert_eq!(ws.text().await, r#"42["query",["token=a b"]]"#);
}
