//! A Notif-protocol WebSocket client for tests: plain JSON frames, `connection_established`
//! first, `data` as objects; refusals come back as HTTP status and JSON body.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::support::{APP_KEY, APP_SECRET, TestServer};

pub const WAIT: Duration = Duration::from_secs(5);

pub struct Notif {
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

pub fn url(server: &TestServer, query: &str) -> String {
    format!("ws://{}/ws{query}", server.addr)
}

/// Upgrades with extra headers; `Err((status, body))` when the server refused before upgrading.
pub async fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Notif, (u16, Value)> {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    match connect_async(req).await {
        Ok((inner, _)) => Ok(Notif { inner, socket_id: String::new() }),
        Err(Error::Http(res)) => {
            let status = res.status().as_u16();
            let body = res.body().clone().unwrap_or_default();
            let value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("refusal body is not JSON: {:?}", String::from_utf8_lossy(&body)));
            Err((status, value))
        }
        Err(e) => panic!("upgrade failed without an HTTP answer: {e}"),
    }
}

impl Notif {
    /// Connects to `url`, reads `connection_established`.
    pub async fn connect_url(url: &str, headers: &[(&str, &str)]) -> Self {
        let mut ws = match try_connect(url, headers).await {
            Ok(ws) => ws,
            Err(refused) => panic!("refused: {refused:?}"),
        };
        let first = ws.recv().await;
        assert_eq!(first["event"], "connection_established", "{first}");
        assert!(first["data"].is_object(), "control-frame data is an object: {first}");
        ws.socket_id = first["data"]["socket_id"].as_str().unwrap().to_owned();
        ws
    }

    /// `GET /ws?api_key=key-1`, as the Notif README connects.
    pub async fn connect(server: &TestServer) -> Self {
        Self::connect_url(&url(server, &format!("?api_key={APP_KEY}")), &[]).await
    }

    /// With `extra_events=1`.
    pub async fn connect_extra(server: &TestServer) -> Self {
        Self::connect_url(&url(server, &format!("?api_key={APP_KEY}&extra_events=1")), &[]).await
    }

    pub async fn send_json(&mut self, v: Value) {
        self.inner.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_text(&mut self, s: &str) {
        self.inner.send(Message::text(s.to_owned())).await.unwrap();
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

    pub async fn next(&mut self) -> Frame {
        self.next_within(WAIT).await.expect("no frame within the wait")
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

    /// The next frame must be a `pusher:error` with `code`.
    pub async fn expect_error(&mut self, code: u16) -> Value {
        let v = self.recv().await;
        assert_eq!(v["event"], "pusher:error", "{v}");
        assert_eq!(v["data"]["code"], code, "{v}");
        assert!(v["data"]["message"].is_string(), "{v}");
        v
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

    /// `{"event":"subscribe","data":…}` and the next frame.
    pub async fn subscribe_with(&mut self, data: Value) -> Value {
        self.send_json(json!({"event": "subscribe", "data": data})).await;
        self.recv().await
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.subscribe_with(json!({"channel": channel})).await
    }

    /// A private channel with Notif's bare-hex auth.
    pub async fn subscribe_private(&mut self, channel: &str) -> Value {
        let auth = notif_auth(&self.socket_id, channel, None);
        self.subscribe_with(json!({"channel": channel, "auth": auth})).await
    }

    /// A presence channel with an object `channel_data`, signed over its sorted compact JSON.
    pub async fn subscribe_presence(&mut self, channel: &str, channel_data: Value) -> Value {
        let auth = notif_auth(&self.socket_id, channel, Some(&channel_data.to_string()));
        self.subscribe_with(json!({"channel": channel, "auth": auth, "channel_data": channel_data})).await
    }

    /// `{"event":"ping"}` gets `pusher:pong`, skipping whatever comes before it: the socket is
    /// healthy. Use [`Notif::assert_next_is_pong`] to show nothing else was sent.
    pub async fn assert_alive(&mut self) {
        self.send_json(json!({"event": "ping"})).await;
        let pong = self.expect_event("pusher:pong").await;
        assert_eq!(pong["data"], json!({}));
    }

    /// Pings and requires the very next frame to be the pong: a reply to any earlier frame
    /// would have come first, so this observes that there was none.
    pub async fn assert_next_is_pong(&mut self) {
        self.send_json(json!({"event": "ping"})).await;
        let next = self.recv().await;
        assert_eq!(next, json!({"event": "pusher:pong", "data": {}}), "a frame came before the pong");
    }

    /// Broadcasts a `marker` on `channel` (which this socket holds) and requires it to be the
    /// very next frame: events arrive in publish order, so anything published to this socket
    /// before would come first.
    pub async fn assert_next_is_marker(&mut self, server: &TestServer, channel: &str) {
        let (status, body) = broadcast(server, json!({"channel": channel, "event": "marker", "data": "m"})).await;
        assert_eq!(status, 200, "{body}");
        let next = self.recv().await;
        assert_eq!(next, json!({"event": "marker", "channel": channel, "data": "m"}), "a frame came before the marker");
    }

    /// Closes and waits for the server's answering close: by then the server has left this
    /// socket's channels.
    pub async fn close(mut self) {
        let _ = self.inner.close(None).await;
        loop {
            match self.next().await {
                Frame::Json(_) => continue,
                Frame::Close(_) | Frame::Ended => return,
                Frame::Error(e) => panic!("the server did not answer the close: {e}"),
            }
        }
    }
}

/// Notif's auth: bare hex HMAC over `socket_id:channel[:channel_data]` with the app secret.
pub fn notif_auth(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    let mut text = format!("{socket_id}:{channel}");
    if let Some(d) = channel_data {
        text.push(':');
        text.push_str(d);
    }
    switchboard::auth::hmac_hex(APP_SECRET, &text)
}

/// `POST /api/broadcast` with the default app's secret.
pub async fn broadcast(server: &TestServer, body: Value) -> (u16, Value) {
    server
        .http()
        .request(hyper::Method::POST, "/api/broadcast", body.to_string().as_bytes(), &[("x-app-key", APP_SECRET)])
        .await
}
