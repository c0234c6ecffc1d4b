//! Descriptors (issue 14, item 8): the binary started under a low `ulimit -n`, as from a login
//! shell or a systemd unit, raises its soft limit to the hard one, says what capacity results,
//! refuses connections past it at once (503, counted in /metrics), keeps answering /health, and
//! recovers by itself when connections close.

use std::time::Duration;

use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::support::binary::{Running, serve, with_ulimit};
use crate::support::{APP_KEY, Http};

fn capacity_in(line: &str) -> u64 {
    line.split("connection capacity: ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn at_capacity_new_connections_are_refused_at_once_health_answers_and_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut bin = Running::start(&mut with_ulimit(&serve(dir.path(), &[]), "-n 256"));
    let capacity = capacity_in(&bin.wait_for("connection capacity: "));
    assert!((16..256).contains(&capacity), "capacity {capacity} under a limit of 256");
    let url = format!("ws://{}/app/{APP_KEY}?protocol=7&client=test&version=1", bin.addr);
    let mut open = Vec::new();
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(10), connect_async(&url)).await {
            Ok(Ok((ws, _))) => open.push(ws),
            Ok(Err(WsError::Http(response))) => break response.status().as_u16(),
            Ok(Err(e)) => panic!("after {} connections: {e}", open.len()),
            Err(_) => panic!("connection {} hung instead of being refused", open.len() + 1),
        }
        assert!(open.len() as u64 <= capacity, "more connections than the announced capacity");
    };
    assert_eq!(status, 503);
    assert_eq!(open.len() as u64, capacity, "every slot was usable");
    // At capacity the port still answers probes.
    let http = Http::new(bin.addr);
    let (status, body) = http.get("/health").await;
    assert_eq!((status, &body["status"]), (200, &serde_json::json!("ok")));
    let (status, metrics) = http.get("/metrics").await;
    assert_eq!(status, 200);
    let refused = metrics
        .as_str()
        .unwrap()
        .lines()
        .find(|l| l.starts_with("switchboard_connections_refused_total{reason=\"capacity\"}"))
        .unwrap_or_else(|| panic!("no refusal counter in {metrics}"));
    let count: f64 = refused.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{refused}");
    bin.wait_for("at connection capacity: refusing new connections");
    // Connections close: capacity comes back without a restart.
    open.truncate(open.len() - 5);
    let mut recovered = false;
    for _ in 0..50 {
        if let Ok(Ok((ws, _))) = tokio::time::timeout(Duration::from_secs(5), connect_async(&url)).await {
            open.push(ws);
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "no connection admitted after five closed");
}

#[test]
fn the_soft_limit_is_raised_to_the_hard_one_and_a_larger_maximum_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve(dir.path(), &[]);
    cmd.env("SWITCHBOARD_MAX_CONNECTIONS", "100000");
    let mut bin = Running::start(&mut with_ulimit(&cmd, "-Sn 256 -Hn 2048"));
    let line = bin.wait_for("connection capacity: ");
    assert!(line.contains("descriptor_limit=2048"), "{line}");
    assert!(capacity_in(&line) > 256, "{line}");
    let warning = bin.wait_for("server.max_connections is above");
    assert!(warning.contains("max_connections=100000"), "{warning}");
}
