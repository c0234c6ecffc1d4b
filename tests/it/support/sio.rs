//! Raw Engine.IO v4 clients for Socket.IO tests: one over WebSocket, one over HTTP long-polling.
//! They speak packets as text, answer pings, and let a test send anything, malformed included.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use super::ws::WAIT;

/// The Engine.IO packet separator of a polling payload.
pub const SEP: char = '\x1e';

/// What a WebSocket Engine.IO client saw.
#[derive(Debug, PartialEq)]
pub enum Got {
    /// A text message (an Engine.IO packet, e.g. `42["a"]`).
    Text(String),
    Binary(Vec<u8>),
    /// The server closed the connection (close frame or end of stream).
    Closed,
}

/// An Engine.IO client over WebSocket.
pub struct SioWs {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The Engine.IO handshake (`0{…}` parsed).
    pub handshake: Value,
}

impl SioWs {
    /// Opens `ws://addr{path}?EIO=4&transport=websocket` and reads the handshake.
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        Self::connect_with_query(addr, path, "").await
    }

    /// [`SioWs::connect`] with more query parameters (`&token=…`).
    pub async fn connect_with_query(addr: SocketAddr, path: &str, extra: &str) -> Self {
        let url = format!("ws://{addr}{path}?EIO=4&transport=websocket{extra}");
        let (inner, _) = connect_async(url).await.unwrap();
        let mut ws = Self { inner, handshake: Value::Null };
        let Got::Text(open) = ws.recv().await else { panic!("no handshake") };
        ws.handshake = serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
        ws
    }

    /// Connects and joins namespace `nsp` (`/` or `/name`) with `auth` (JSON text or empty);
    /// returns the CONNECT answer's packet.
    pub async fn connect_nsp(addr: SocketAddr, path: &str, nsp: &str, auth: &str) -> (Self, String) {
        let mut ws = Self::connect(addr, path).await;
        let answer = ws.join(nsp, auth).await;
        (ws, answer)
    }

    /// Sends CONNECT for `nsp` and returns the answer (`40…` or `44…`).
    pub async fn join(&mut self, nsp: &str, auth: &str) -> String {
        let nsp = if nsp == "/" { String::new() } else { format!("{nsp},") };
        self.send(&format!("40{nsp}{auth}")).await;
        self.text().await
    }

    pub async fn send(&mut self, text: &str) {
        self.inner.send(Message::text(text.to_owned())).await.unwrap();
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.inner.send(Message::binary(data.to_vec())).await.unwrap();
    }

    /// The next message within [`WAIT`], pings answered and skipped.
    pub async fn recv(&mut self) -> Got {
        self.recv_within(WAIT).await.expect("nothing within the wait")
    }

    pub async fn recv_within(&mut self, wait: Duration) -> Option<Got> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(Got::Closed),
                Ok(Some(Ok(msg))) => msg,
            };
            match msg {
                Message::Text(t) if t.as_str() == "2" => {
                    let _ = self.inner.send(Message::text("3")).await;
                }
                Message::Text(t) => return Some(Got::Text(t.as_str().to_owned())),
                Message::Binary(b) => return Some(Got::Binary(b.to_vec())),
                Message::Close(_) => return Some(Got::Closed),
                _ => {}
            }
        }
    }

    /// The next text message; panics on anything else.
    pub async fn text(&mut self) -> String {
        match self.recv().await {
            Got::Text(t) => t,
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// Waits for the server to close the connection.
    pub async fn expect_closed(&mut self) {
        loop {
            match self.recv().await {
                Got::Closed => return,
                Got::Text(_) | Got::Binary(_) => {}
            }
        }
    }

    /// Nothing arrives within `wait` (pings aside).
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(got) = self.recv_within(wait).await {
            panic!("expected nothing, got {got:?}");
        }
    }
}

/// An Engine.IO client over HTTP long-polling.
pub struct SioPoll {
    addr: SocketAddr,
    path: String,
    client: Client<HttpConnector, Full<Bytes>>,
    pub sid: String,
    pub handshake: Value,
}

impl SioPoll {
    /// Opens a polling session at `path` and reads the handshake.
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let mut poll = Self { addr, path: path.to_owned(), client, sid: String::new(), handshake: Value::Null };
        let (status, body) = poll.request(Method::GET, "?EIO=4&transport=polling", "").await;
        assert_eq!(status, 200, "{body}");
        poll.handshake = serde_json::from_str(body.strip_prefix('0').expect("an open packet")).unwrap();
        poll.sid = poll.handshake["sid"].as_str().unwrap().to_owned();
        poll
    }

    /// Any request to the endpoint; `query` starts with `?`.
    pub async fn request(&self, method: Method, query: &str, body: &str) -> (u16, String) {
        let uri = format!("http://{}{}{}", self.addr, self.path, query);
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "text/plain;charset=UTF-8")
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .unwrap();
        let res = tokio::time::timeout(WAIT, self.client.request(req)).await.expect("no answer").unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn query(&self) -> String {
        format!("?EIO=4&transport=polling&sid={}", self.sid)
    }

    /// POSTs packets (joined with the separator); returns the status.
    pub async fn post(&self, packets: &[&str]) -> u16 {
        let body = packets.join(&SEP.to_string());
        self.request(Method::POST, &self.query(), &body).await.0
    }

    /// One GET: the packets it carried (pings answered and left out).
    pub async fn poll(&self) -> (u16, Vec<String>) {
        let (status, body) = self.request(Method::GET, &self.query(), "").await;
        if status != 200 {
            return (status, vec![body]);
        }
        let mut packets = Vec::new();
        for packet in body.split(SEP) {
            if packet == "2" {
                assert_eq!(self.post(&["3"]).await, 200);
            } else {
                packets.push(packet.to_owned());
            }
        }
        (status, packets)
    }

    /// Polls until at least `n` packets (pings aside) arrived.
    pub async fn packets(&self, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        while got.len() < n {
            let (status, packets) = self.poll().await;
            assert_eq!(status, 200, "{packets:?}");
            got.extend(packets);
        }
        got
    }
}
