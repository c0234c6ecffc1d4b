//! Switchboard as a library (SPEC §5 "Library use"): examples/embed.rs's server, started with
//! the builder on an ephemeral port, its routes ahead of the built-in ones, publishes from the
//! handle reaching real Pusher and Notif clients, and the graceful shutdown; then the builder's
//! refusals and the publish errors.

use std::sync::Arc;

use serde_json::json;
use switchboard::config::ConfigError;
use switchboard::{PublishError, Server};

use crate::notif_client::Notif;
use crate::support::ws::Ws;
use crate::support::{APP_ID, APP_KEY, Http, SwitchBroker, test_config};

#[allow(dead_code)]
#[path = "../../examples/embed.rs"]
mod example;

fn pusher_url(addr: std::net::SocketAddr, key: &str) -> String {
    format!("ws://{addr}/app/{key}?protocol=7&client=rust-test&version=1.0")
}

#[tokio::test]
async fn the_example_routes_first_publishes_to_every_transport_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let server = example::start(0, dir.path().to_path_buf()).await.unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "the bound port is told");

    // The program's routes first, the built-in ones behind them.
    let http = Http::new(addr);
    assert_eq!(http.get("/health").await, (200, json!(example::HEALTH)));
    let (status, body) = http.get("/no-such-route").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].is_string(), "the built-in JSON 404: {body}");

    // A Pusher client and a Notif client on one channel, through the built-in routes.
    let mut pusher = Ws::connect_established(&pusher_url(addr, example::APP_KEY)).await;
    assert_eq!(pusher.subscribe("orders").await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(pusher.subscribe("greetings").await["event"], "pusher_internal:subscription_succeeded");
    let mut notif = Notif::connect_url(&format!("ws://{addr}/ws?api_key={}", example::APP_KEY), &[]).await;
    assert_eq!(notif.subscribe("orders").await["event"], "pusher_internal:subscription_succeeded");

    // From Rust: JSON data, then a string through a cloned publisher; each arrives once, in
    // each transport's own form.
    server.publish(example::APP_ID, "orders", "created", json!({"id": 7})).unwrap();
    let publisher = server.publisher();
    publisher.publish(example::APP_ID, "orders", "note", "plain text").unwrap();
    assert_eq!(pusher.recv().await, json!({"event": "created", "channel": "orders", "data": "{\"id\":7}"}));
    assert_eq!(pusher.recv().await, json!({"event": "note", "channel": "orders", "data": "plain text"}));
    assert_eq!(notif.recv().await, json!({"event": "created", "channel": "orders", "data": {"id": 7}}));
    assert_eq!(notif.recv().await, json!({"event": "note", "channel": "orders", "data": "plain text"}));
    // A program route publishing with the publisher `routes_with` gave it.
    assert_eq!(http.get("/hello").await, (200, json!("hello from the program")));
    assert_eq!(pusher.recv().await, json!({"event": "hello", "channel": "greetings", "data": "someone said hello"}));
    pusher.assert_next_is_pong().await;
    notif.assert_next_is_pong().await;
    let (_, metrics) = http.get("/metrics").await;
    assert!(metrics.as_str().unwrap().contains("route=\"/hello\""), "the program's routes are counted by template");

    // Graceful shutdown: both clients told to reconnect, the port closed once it returns.
    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(pusher.expect_close().await, 4200);
    assert_eq!(notif.expect_close().await, 4200);
    stopping.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
    // A publisher outliving its server says so.
    let late = publisher.publish(example::APP_ID, "orders", "late", "x");
    assert!(matches!(late, Err(PublishError::ShuttingDown)), "{late:?}");
}

#[tokio::test]
async fn run_until_shuts_down_when_its_future_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder().config(test_config(dir.path())).start().await.unwrap();
    let addr = server.local_addr();
    let mut ws = Ws::connect_established(&pusher_url(addr, APP_KEY)).await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until(async {
        let _ = rx.await;
    }));
    ws.assert_alive().await;
    tx.send(()).unwrap();
    assert_eq!(ws.expect_close().await, 4200);
    running.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder().config(test_config(dir.path())).start().await.unwrap();
    let addr = server.local_addr();
    let mut ws = Ws::connect_established(&pusher_url(addr, APP_KEY)).await;
    drop(server);
    assert_eq!(ws.expect_close().await, 4200);
}

#[tokio::test]
async fn publish_refusals_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Arc::new(SwitchBroker::default());
    let server = Server::builder().config(test_config(dir.path())).broker(broker.clone()).start().await.unwrap();
    let app = APP_ID;
    let err = server.publish("nope", "orders", "e", "d").unwrap_err();
    assert!(matches!(err, PublishError::UnknownApp(ref id) if id == "nope"), "{err}");
    let err = server.publish(app, "bad channel!", "e", "d").unwrap_err();
    assert!(matches!(err, PublishError::Channel { .. }), "{err}");
    assert!(err.to_string().starts_with("invalid channel \"bad channel!\""), "{err}");
    assert!(matches!(server.publish(app, "orders", "", "d"), Err(PublishError::EventName)));
    assert!(matches!(server.publish(app, "orders", &"e".repeat(201), "d"), Err(PublishError::EventName)));
    for reserved in ["pusher:subscribe", "pusher_internal:member_added"] {
        assert!(matches!(server.publish(app, "orders", reserved, "d"), Err(PublishError::ReservedEvent)), "{reserved}");
    }
    let limit = server.state().apps.by_id(app).unwrap().limits().max_message_bytes;
    let err = server.publish(app, "orders", "e", "x".repeat(limit + 1)).unwrap_err();
    assert!(matches!(err, PublishError::TooLarge { size, limit: l } if size == limit + 1 && l == limit), "{err}");
    broker.set_down(true);
    let err = server.publish(app, "orders", "e", "d").unwrap_err();
    assert!(matches!(err, PublishError::Broker(_)), "{err}");
    broker.set_down(false);

    // None of it hurt: a subscriber still gets the next event.
    let addr = server.local_addr();
    let mut ws = Ws::connect_established(&pusher_url(addr, APP_KEY)).await;
    ws.subscribe("orders").await;
    server.publish(app, "orders", "e", "d").unwrap();
    assert_eq!(ws.recv().await, json!({"event": "e", "channel": "orders", "data": "d"}));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_migrations_a_schema_that_is_behind_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = Server::builder().config(test_config(dir.path())).run_migrations(false).start().await.err().unwrap();
    assert!(err.to_string().contains("lacks migration 1 (apps)"), "{err:#}");
    assert!(err.to_string().contains("switchboard migrate"), "{err:#}");

    // Migrated once, a start without migrating serves.
    let server = Server::builder().config(test_config(dir.path())).start().await.unwrap();
    server.shutdown().await.unwrap();
    let server = Server::builder().config(test_config(dir.path())).run_migrations(false).start().await.unwrap();
    server.publish(APP_ID, "orders", "e", "d").unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_setting_names_the_builder_call() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Server::builder().config(test_config(dir.path())).port(port).start().await.err().unwrap();
    assert!(err.downcast_ref::<ConfigError>().is_some(), "a configuration error: {err:#}");
    assert_eq!(
        err.to_string(),
        format!("ServerBuilder::port({port}): cannot listen on 127.0.0.1:{port}: address in use")
    );

    let err =
        Server::builder().config(test_config(dir.path())).cors_origins(["ftp://x y"]).start().await.err().unwrap();
    assert!(err.downcast_ref::<ConfigError>().is_some(), "a configuration error: {err:#}");
    assert!(err.to_string().starts_with("ServerBuilder::cors_origins([\"ftp://x y\"]): "), "{err}");

    // Validated before anything starts, the setters applied over the given configuration
    // whatever their order.
    let err =
        Server::builder().database_url("libsql://remote").config(test_config(dir.path())).start().await.err().unwrap();
    assert!(err.to_string().starts_with("ServerBuilder::database_url(..): libSQL is not supported"), "{err}");
}
