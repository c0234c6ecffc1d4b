//! A Pusher-protocol WebSocket client for tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub const WAIT: Duration = Duration::from_secs(5);

pub struct Ws {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub socket_id: String,
}

/// What `next` saw.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Close(Option<(u16, String)>),
    /// The stream ended cleanly, after the close handshake or without one.
    Ended,
    /// Reading failed (a reset, a protocol error): not a close the server chose to send.
    Error(String),
}

impl Ws {
    /// Connects without reading anything.
    pub async fn connect_raw(url: &str) -> Self {
        let (inner, _) = connect_async(url).await.unwrap();
        Self { inner, socket_id: String::new() }
    }

    /// Connects and reads `pusher:connection_established`.
    pub async fn connect_established(url: &str) -> Self {
        let mut ws = Self::connect_raw(url).await;
        let msg = ws.expect_event("pusher:connection_established").await;
        let data: Value = serde_json::from_str(msg["data"].as_str().unwrap()).unwrap();
        ws.socket_id = data["socket_id"].as_str().unwrap().to_owned();
        ws
    }

    pub async fn send_json(&mut self, v: Value) {
        self.inner.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_text(&mut self, s: &str) {
        self.inner.send(Message::text(s.to_owned())).await.unwrap();
    }

    /// The next JSON frame, close or end, within `WAIT`.
    pub async fn next(&mut self) -> Frame {
        self.next_within(WAIT).await.expect("no frame within the wait")
    }

    pub async fn next_within(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Frame::Ended),
                Ok(Some(Err(e))) => return Some(Frame::Error(e.to_string())),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => {
                    return Some(Frame::Json(serde_json::from_str(&t).expect("server sent invalid JSON")));
                }
                Message::Close(c) => return Some(Frame::Close(c.map(|c| (u16::from(c.code), c.reason.to_string())))),
                _ => continue,
            }
        }
    }

    /// The next JSON frame; panics on close.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Frame::Json(v) => v,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Skips frames until one named `event`.
    pub async fn expect_event(&mut self, event: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["event"] == event {
                return v;
            }
        }
    }

    /// Reads until the close frame; returns its code.
    pub async fn expect_close(&mut self) -> u16 {
        loop {
            match self.next().await {
                Frame::Json(_) => continue,
                Frame::Close(Some((code, _))) => return code,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// `pusher:error` with `code`, then a close with the same code.
    pub async fn expect_error_and_close(&mut self, code: u16) {
        let err = self.expect_event("pusher:error").await;
        assert_eq!(err["data"]["code"], code, "{err}");
        assert_eq!(self.expect_close().await, code);
    }

    /// A refused connection: its first frame is `pusher:error` with `code` and a message (no
    /// `connection_established` before it), and the next is a close with the same code.
    pub async fn expect_refusal(&mut self, code: u16) {
        let err = self.recv().await;
        assert_eq!(err["event"], "pusher:error", "{err}");
        assert_eq!(err["data"]["code"], code, "{err}");
        assert!(err["data"]["message"].is_string(), "{err}");
        match self.next().await {
            Frame::Close(Some((got, _))) => assert_eq!(got, code, "close code"),
            other => panic!("expected a close with {code}, got {other:?}"),
        }
    }

    /// The next frame is `pusher:error` with `code` and a message; returns it.
    pub async fn expect_error(&mut self, code: u16) -> Value {
        let err = self.recv().await;
        assert_eq!(err["event"], "pusher:error", "{err}");
        assert_eq!(err["data"]["code"], code, "{err}");
        assert!(err["data"]["message"].is_string(), "{err}");
        err
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send_json(json!({"event": "pusher:subscribe", "data": {"channel": channel}})).await;
        self.recv().await
    }

    pub async fn subscribe_with(&mut self, data: Value) -> Value {
        self.send_json(json!({"event": "pusher:subscribe", "data": data})).await;
        self.recv().await
    }

    /// Subscribes to a private channel with a valid signature.
    pub async fn subscribe_private(&mut self, channel: &str) -> Value {
        let auth = super::auth(&self.socket_id, channel);
        self.subscribe_with(json!({"channel": channel, "auth": auth})).await
    }

    /// Subscribes to a presence channel as `user_id` with a valid signature.
    pub async fn subscribe_presence(&mut self, channel: &str, user_id: &str, info: Value) -> Value {
        let data = json!({"user_id": user_id, "user_info": info}).to_string();
        let auth = super::presence_auth(&self.socket_id, channel, &data);
        self.subscribe_with(json!({"channel": channel, "auth": auth, "channel_data": data})).await
    }

    /// Sends `pusher:ping` and expects `pusher:pong`, skipping whatever comes before it: the
    /// connection is healthy. Use [`Ws::assert_next_is_pong`] to show nothing else was sent.
    pub async fn assert_alive(&mut self) {
        self.send_json(json!({"event": "pusher:ping", "data": {}})).await;
        self.expect_event("pusher:pong").await;
    }

    /// Sends `pusher:ping` and requires the very next frame to be the pong. The server answers a
    /// connection's frames in order, so a reply to any earlier frame would come first: this
    /// observes that there was none.
    pub async fn assert_next_is_pong(&mut self) {
        self.send_json(json!({"event": "pusher:ping", "data": {}})).await;
        let next = self.recv().await;
        assert_eq!(next, json!({"event": "pusher:pong", "data": {}}), "a frame came before the pong");
    }

    /// Closes and waits for the server's answering close. The server leaves the connection's
    /// channels before it answers, so once this returns the departure has been announced.
    pub async fn close(mut self) {
        let _ = self
            .inner
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
        loop {
            match self.next().await {
                Frame::Json(_) => continue,
                Frame::Close(_) | Frame::Ended => return,
                Frame::Error(e) => panic!("the server did not answer the close: {e}"),
            }
        }
    }
}

/// Asserts `v` is `pusher:subscription_error` for `channel` with `{type, error, status}`.
pub fn assert_subscription_error(v: &Value, channel: &str, kind: &str, status: u16) {
    assert_eq!(v["event"], "pusher:subscription_error", "{v}");
    assert_eq!(v["channel"], channel, "{v}");
    assert_eq!(v["data"]["type"], kind, "{v}");
    assert_eq!(v["data"]["status"], status, "{v}");
    assert!(v["data"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
}

/// Parses a frame's string `data`.
pub fn data(v: &Value) -> Value {
    match &v["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        other => other.clone(),
    }
}
