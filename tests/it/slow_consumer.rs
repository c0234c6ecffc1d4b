//! A client that stops reading is cut off with 4100 while a fast one on the same channel keeps
//! receiving everything, and the server's queue for it stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::Method;
use serde_json::json;

use crate::support::ws::Frame;
use crate::support::{APP_ID, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_disconnected_with_4100() {
    let defaults = switchboard::config::Config::default().connection;
    assert_eq!((defaults.outbox_max_bytes, defaults.outbox_max_frames), (1024 * 1024, 4096), "1 MiB / 4096 frames");
    // Smaller here, so the test fills them quickly.
    let server = spawn_with(|c| {
        c.connection.outbox_max_bytes = 256 * 1024;
        c.connection.outbox_max_frames = 256;
    })
    .await;
    let mut slow = server.connect().await;
    slow.subscribe("firehose").await;
    let mut fast = server.connect().await;
    fast.subscribe("firehose").await;

    const EVENTS: usize = 1500;
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = progress.clone();
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < EVENTS {
            match fast.next().await {
                Frame::Json(v) if v["event"] == "big" => {
                    got += 1;
                    seen.store(got, Ordering::Release);
                }
                Frame::Json(_) => {}
                other => panic!("fast consumer lost its connection: {other:?}"),
            }
        }
        fast
    });

    let http = server.http();
    let payload = "x".repeat(8 * 1024);
    for chunk in 0..(EVENTS / 5) {
        // Publish no faster than a reading client reads, so only the one that stopped lags.
        for _ in 0..500 {
            if chunk * 5 - progress.load(Ordering::Acquire) <= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let batch: Vec<_> = (0..5)
            .map(|i| json!({"name": "big", "channel": "firehose", "data": format!("{chunk}-{i}-{payload}")}))
            .collect();
        let (s, e) = http
            .signed(Method::POST, &format!("/apps/{APP_ID}/batch_events"), &json!({"batch": batch}).to_string(), &[])
            .await;
        assert_eq!(s, 200, "{e}");
    }
    let mut fast = tokio::time::timeout(Duration::from_secs(30), reader).await.expect("fast consumer kept up").unwrap();
    fast.assert_alive().await;

    // The slow one now reads what was flushed before it was cut off, then the 4100 close.
    let mut received = 0;
    let code = loop {
        match slow.next_within(Duration::from_secs(10)).await {
            Some(Frame::Json(v)) if v["event"] == "big" => received += 1,
            Some(Frame::Json(v)) if v["event"] == "pusher:error" => assert_eq!(v["data"]["code"], 4100),
            Some(Frame::Json(_)) => {}
            Some(Frame::Close(c)) => break c.map(|c| c.0),
            Some(Frame::Ended | Frame::Error(_)) | None => break None,
        }
    };
    assert!(received < EVENTS, "the slow consumer did not get everything ({received})");
    assert_eq!(code, Some(4100), "closed with 4100 after {received} events");
    // It is gone from the channel.
    for _ in 0..50 {
        if server
            .state
            .realtime
            .channel_stats(APP_ID, &switchboard::core::ChannelName::parse("firehose").unwrap())
            .subscription_count
            == 1
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the slow consumer is still subscribed");
}
