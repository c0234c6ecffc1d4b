//! Operations: /health, /metrics, graceful shutdown.

use serde_json::json;

use crate::support::spawn_server;

#[tokio::test]
async fn health_reports_ok() {
    let server = spawn_server().await;
    let (status, body) = server.http().get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["service"], "switchboard");
    assert!(body["timestamp"].as_str().unwrap().contains('T'));
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn health_is_degraded_when_the_broker_is_down() {
    let server = spawn_server().await;
    server.broker.set_down(true);
    let (status, body) = server.http().get("/health").await;
    assert_eq!((status, &body["status"]), (200, &json!("degraded")));
    server.broker.set_down(false);
}

#[tokio::test]
async fn metrics_in_prometheus_format() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    ws.subscribe("m").await;
    server.http().trigger(json!({"name": "e", "channel": "m", "data": "x"})).await;
    ws.recv().await;
    let (status, body) = server.http().get("/metrics").await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap();
    for name in [
        "switchboard_connections",
        "switchboard_subscriptions",
        "switchboard_messages_in_total",
        "switchboard_messages_out_total",
        "switchboard_fanout_seconds_bucket",
        "switchboard_http_requests_total",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
    assert!(text.contains("route=\"/apps/{app_id}/events\""), "routes are labelled by template");
}

#[tokio::test]
async fn shutdown_tells_websocket_clients_to_reconnect() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    b.subscribe("x").await;
    let addr = server.addr;
    let stop = tokio::spawn(server.stop());
    assert_eq!(a.expect_close().await, 4200);
    assert_eq!(b.expect_close().await, 4200);
    stop.await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}
