//! Nothing acknowledged is lost (SPEC §6): a burst of DMs over the chat socket, the server
//! process SIGKILLed in the middle of it, then started again on the same data directory. Every
//! message whose `newDM` reached its sender is in the history, in the order sent, once; the
//! history holds nothing but a prefix of what was sent. Tokens sockets bring are never logged.

use std::time::Duration;

use serde_json::json;

use crate::support::Http;
use crate::support::binary::{Running, serve};
use crate::support::chat::{ChatSocket, befriend, register};
use crate::support::sio::Got;

/// Messages sent in the burst (within the per-account burst of 200, so none is rate-limited).
const BURST: usize = 150;
/// `newDM`s the sender reads before the kill.
const KILL_AFTER: usize = 40;

#[tokio::test]
async fn dms_acknowledged_before_a_sigkill_survive_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(&mut serve(dir.path(), &[]));
    let http = Http::new(server.addr);
    let (sender, recipient) = (register(&http, "durable").await, register(&http, "reader").await);
    befriend(&http, &sender, &recipient).await;
    let mut socket = ChatSocket::of(server.addr, &sender).await;

    for i in 0..BURST {
        socket.emit("sendDM", json!({"toId": recipient.id, "content": format!("m{i}")})).await;
    }
    let mut acknowledged = Vec::new();
    while acknowledged.len() < KILL_AFTER {
        let data = socket.expect("newDM").await;
        acknowledged.push(data["content"].as_str().unwrap().to_owned());
    }
    let (_, log) = server.stop(); // SIGKILL: no shutdown, no flush
    // What reached the sender's socket before it saw the connection end.
    loop {
        match socket.ws.recv_within(Duration::from_secs(5)).await {
            Some(Got::Text(text)) if text.starts_with("42[\"newDM\"") => {
                let args: serde_json::Value = serde_json::from_str(&text[2..]).unwrap();
                acknowledged.push(args[1]["content"].as_str().unwrap().to_owned());
            }
            Some(Got::Text(_) | Got::Binary(_)) => {}
            Some(Got::Closed) | None => break,
        }
    }
    assert!(acknowledged.len() < BURST, "the kill came after the whole burst: make it larger\n{}", log.join("\n"));

    // Restarted with the log at debug: the tokens sockets bring are never in it.
    let server = Running::start(serve(dir.path(), &[]).env("LOG_LEVEL", "debug"));
    let mut socket = ChatSocket::of(server.addr, &sender).await;
    let mut by_query = ChatSocket::connect_with(server.addr, "", &format!("&token={}", recipient.token)).await;
    assert!(by_query.ask("getDMHistory", json!({"otherId": sender.id})).await.is_array());
    let mut bad = ChatSocket::connect_with(server.addr, r#"{"token":"not-a-jwt-but-secret"}"#, "").await;
    assert_eq!(bad.expect_error().await, "Authentication failed");
    let history = socket.ask("getDMHistory", json!({"otherId": recipient.id})).await;
    let stored: Vec<String> =
        history.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect();
    eprintln!("acknowledged {} of {BURST}, stored {}", acknowledged.len(), stored.len());
    let sent: Vec<String> = (0..stored.len()).map(|i| format!("m{i}")).collect();
    assert_eq!(stored, sent, "the history is what was sent, in order, each once, up to some point");
    assert!(
        acknowledged.len() <= stored.len() && stored[..acknowledged.len()] == acknowledged[..],
        "every acknowledged message is stored: acknowledged {acknowledged:?}, stored {stored:?}"
    );
    let (_, log) = server.stop();
    for secret in [&sender.token, &recipient.token, "not-a-jwt-but-secret"] {
        assert!(!log.iter().any(|line| line.contains(secret)), "a token was logged:\n{}", log.join("\n"));
    }
}
