//! Calls to the publish routes (the signed Pusher trigger, Push-Alt's emit, the Node app's emit)
//! and `/health` probes, over one keep-alive HTTP/1.1 connection each.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use switchboard::auth::pusher::sign_query;

/// Where and as whom to call the API.
#[derive(Debug, Clone)]
pub struct Creds {
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

/// Signs `POST /apps/ID/events` requests; with a fixed body the query is reused within a second.
pub struct Signer {
    creds: Creds,
    path: String,
    cached: Option<(i64, String)>,
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Signer {
    pub fn new(creds: &Creds) -> Self {
        Self { path: format!("/apps/{}/events", creds.app_id), creds: creds.clone(), cached: None }
    }

    /// Path and signed query for this body.
    pub fn uri(&self, body: &[u8]) -> String {
        let q = sign_query(&self.creds.key, &self.creds.secret, "POST", &self.path, body, &[], unix_now());
        format!("{}?{q}", self.path)
    }

    /// Like [`Signer::uri`] for a body that never changes (signature recomputed once a second).
    pub fn uri_fixed(&mut self, body: &[u8]) -> String {
        let now = unix_now();
        match &self.cached {
            Some((at, uri)) if *at == now => uri.clone(),
            _ => {
                let q = sign_query(&self.creds.key, &self.creds.secret, "POST", &self.path, body, &[], now);
                let uri = format!("{}?{q}", self.path);
                self.cached = Some((now, uri.clone()));
                uri
            }
        }
    }
}

/// The route events are published on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Publish {
    /// The signed Pusher trigger, `POST /apps/ID/events`.
    Trigger,
    /// Push-Alt's `POST /api/message/emit` with `app_key` (the app secret); event `message`.
    Emit,
    /// The Node app's `POST /emit?room=CHANNEL` (bench/node-socketio), the data as the body.
    Node,
}

impl Publish {
    pub fn name(self) -> &'static str {
        match self {
            Publish::Trigger => "trigger",
            Publish::Emit => "emit",
            Publish::Node => "node",
        }
    }
}

/// How a run publishes: the route, and the event name a trigger carries.
#[derive(Debug, Clone)]
pub struct Publishing {
    pub via: Publish,
    pub event: String,
}

/// Builds one publisher's requests (a trigger's signature cached a second for a fixed body).
pub struct Requests {
    via: Publish,
    event: String,
    creds: Creds,
    channel: String,
    signer: Signer,
    /// The route of `emit` and `node` (unsigned: the same for every request).
    path: String,
}

impl Requests {
    pub fn new(publishing: &Publishing, creds: &Creds, channel: &str) -> Self {
        let path = match publishing.via {
            Publish::Node => format!("/emit?room={}", query_value(channel)),
            _ => "/api/message/emit".to_owned(),
        };
        Self {
            via: publishing.via,
            event: publishing.event.clone(),
            creds: creds.clone(),
            channel: channel.to_owned(),
            signer: Signer::new(creds),
            path,
        }
    }

    /// The body publishing `data` (a JSON string) to the channel.
    pub fn body(&self, data: &str) -> Bytes {
        let body = match self.via {
            Publish::Trigger => json!({"name": self.event, "channel": self.channel, "data": data}),
            Publish::Emit => json!({
                "app_id": self.creds.app_id,
                "app_key": self.creds.secret,
                "channel_name": self.channel,
                "body": data,
            }),
            Publish::Node => json!(data),
        };
        Bytes::from(body.to_string())
    }

    /// The path and query for this body.
    pub fn uri(&self, body: &[u8]) -> String {
        match self.via {
            Publish::Trigger => self.signer.uri(body),
            _ => self.path.clone(),
        }
    }

    /// Like [`Requests::uri`] for a body that never changes.
    pub fn uri_fixed(&mut self, body: &[u8]) -> String {
        match self.via {
            Publish::Trigger => self.signer.uri_fixed(body),
            _ => self.path.clone(),
        }
    }
}

/// One HTTP/1.1 keep-alive connection.
pub struct Api {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Api {
    pub async fn connect(addr: SocketAddr, authority: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP handshake")?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Self { sender, authority: authority.to_owned() })
    }

    /// The server closed the connection (idle keep-alive connections are closed by servers).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// POSTs a JSON body; the status and the response body.
    pub async fn post(&mut self, uri: &str, body: Bytes) -> anyhow::Result<(u16, Bytes)> {
        self.send(Method::POST, uri, body).await
    }

    /// GETs `uri`; the status and the response body.
    pub async fn get(&mut self, uri: &str) -> anyhow::Result<(u16, Bytes)> {
        self.send(Method::GET, uri, Bytes::new()).await
    }

    async fn send(&mut self, method: Method, uri: &str, body: Bytes) -> anyhow::Result<(u16, Bytes)> {
        self.request(method, uri, body, None).await
    }

    /// Any method, with a JSON body when there is one and a bearer token when given.
    pub async fn request(
        &mut self,
        method: Method,
        uri: &str,
        body: Bytes,
        bearer: Option<&str>,
    ) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await.map_err(|e| anyhow::Error::new(NotSent(e.to_string())))?;
        let mut request = Request::builder().method(method.clone()).uri(uri).header(header::HOST, &self.authority);
        if !body.is_empty() || method == Method::POST {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(body)).context("building the request")?;
        let response = self.sender.send_request(request).await.map_err(|e| {
            // Canceled: the connection went away before the request was written; safe to resend.
            if e.is_canceled() { anyhow::Error::new(NotSent(e.to_string())) } else { anyhow::Error::new(e) }
        })?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.context("reading the response")?.to_bytes();
        Ok((status, body))
    }
}

/// The request never left: the connection was closed before it could be written.
#[derive(Debug)]
pub struct NotSent(String);

impl std::fmt::Display for NotSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection closed before the request was sent: {}", self.0)
    }
}

impl std::error::Error for NotSent {}

/// Asks Switchboard's `POST /api/channel/auth` for a token to `channel`: (token, event name). One
/// token serves every subscriber of the run: tokens are reusable until they expire (SPEC §5), and
/// a token per socket would measure the token store during the ramp, not the transport.
pub async fn fetch_token(api: &mut Api, creds: &Creds, channel: &str) -> anyhow::Result<(String, String)> {
    let body = json!({"app_id": creds.app_id, "app_key": creds.secret, "channel_name": channel}).to_string();
    let (status, reply) = api.post("/api/channel/auth", Bytes::from(body)).await.context("POST /api/channel/auth")?;
    if status != 200 {
        bail!("POST /api/channel/auth: {status}: {}", String::from_utf8_lossy(&reply));
    }
    let v: Value = serde_json::from_slice(&reply).context("POST /api/channel/auth: not JSON")?;
    let (Some(token), Some(name)) = (v["token"].as_str(), v["message_listen_name"].as_str()) else {
        bail!("POST /api/channel/auth: no token or message_listen_name in {v}");
    };
    Ok((token.to_owned(), name.to_owned()))
}

/// Percent-encodes a query value (session ids are URL-safe in both servers; this keeps it so).
pub fn query_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(via: Publish, event: &str) -> Requests {
        let creds = Creds { app_id: "7".into(), key: "k".into(), secret: "s3cret".into() };
        Requests::new(&Publishing { via, event: event.into() }, &creds, "orders@x")
    }

    fn json_of(body: &Bytes) -> serde_json::Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn each_route_carries_the_data_its_way() {
        let r = requests(Publish::Trigger, "message");
        let body = r.body("~SB1.2~");
        assert_eq!(json_of(&body), json!({"name": "message", "channel": "orders@x", "data": "~SB1.2~"}));
        assert!(r.uri(&body).starts_with("/apps/7/events?auth_key=k&"), "{}", r.uri(&body));

        let r = requests(Publish::Emit, "message");
        let body = r.body("~SB1.2~");
        let want = json!({"app_id": "7", "app_key": "s3cret", "channel_name": "orders@x", "body": "~SB1.2~"});
        assert_eq!((json_of(&body), r.uri(&body)), (want, "/api/message/emit".to_owned()));

        let mut r = requests(Publish::Node, "message");
        let body = r.body("~SB1.2~");
        assert_eq!((json_of(&body), r.uri_fixed(&body)), (json!("~SB1.2~"), "/emit?room=orders%40x".to_owned()));
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_value("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(query_value("a+b/c=&"), "a%2Bb%2Fc%3D%26");
    }
}
