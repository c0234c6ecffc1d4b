//! Engine.IO v4, server side: the handshake, HTTP long-polling, WebSocket (direct and by
//! upgrade), the heartbeat and `maxPayload`. An upper protocol (Socket.IO) plugs in through two
//! traits and writes through the core's outbox; nothing here knows Socket.IO.
//!
//! # API for the upper layer
//!
//! - Implement [`Protocol`] once per endpoint: [`Protocol::origin_allowed`] (the handshake's
//!   `Origin`, polling and WebSocket alike; refused: 403 `{"code":4,"message":"Forbidden"}`) and
//!   [`Protocol::open`], which gets the [`Handshake`] and returns the session's [`Session`] (or an
//!   [`EioError`] to refuse it). `open` makes the session's [`ConnHandle`] (usually
//!   `Realtime::connect(app, Transport::SocketIo, quota)`): that connection's outbox is the
//!   session's only way out, on both transports.
//! - A [`Session`] gets each message ([`Message::Text`] is the payload after Engine.IO's `4`,
//!   [`Message::Binary`] the bytes) and answers through [`Replies`]; its timer
//!   ([`Session::deadline`], [`Session::on_timer`]) serves e.g. Socket.IO's `connectTimeout`.
//!   Returning [`Flow::Close`] ends the session; [`Session::on_close`] runs exactly once however it
//!   ends, and must leave everything the session joined (`Realtime::disconnect`).
//! - Sending from elsewhere (the fan-out, a task that finished a lookup): queue
//!   [`message_frame`]`(payload)` (or [`binary_frame`]) on the [`ConnHandle`] with `try_send`. Its
//!   encoder for the core is `|event| message_frame(&encode(event))`: one WebSocket frame per
//!   event, shared by every subscriber; the polling side takes the packet out of that same frame.
//!   Closing from elsewhere: `ConnHandle::close(reason)`; [`Session::last_words`] may add a final
//!   message.
//! - Serving: [`Endpoint::new`]`(options, protocol)` then [`Endpoint::serve`] for every request
//!   on its path (GET and POST; WebSocket upgrades included), or [`Endpoint::router`].
//!
//! # How it runs
//!
//! WebSocket sessions run on the shared loop (`transport::ws::run`): one Engine.IO packet per
//! WebSocket message, written by the core's flush queues like every other socket. Polling
//! sessions have no task: they live in a capped, sharded table keyed by sid; GET drains the
//! connection's outbox (bounded in bytes and frames: a client that does not keep up is a slow
//! consumer and is dropped), POST feeds the session, and one timer task per endpoint runs every
//! polling session's heartbeat.

mod endpoint;
mod heartbeat;
pub mod packet;
mod polling;
mod session;
mod state;
mod table;
mod websocket;

pub mod echo;

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::time::Instant;

pub use crate::core::{ConnHandle, Disconnect};
pub use endpoint::Endpoint;
pub use packet::{binary_frame, message_frame};
pub use state::{Admission, Refused};

/// Engine.IO settings of one endpoint.
#[derive(Debug, Clone)]
pub struct Options {
    /// Time between the server's pings (`pingInterval`); the first goes out one interval after
    /// the handshake. Socket.IO's default 25 s.
    pub ping_interval: Duration,
    /// Time a client has to answer a ping (`pingTimeout`). Socket.IO's default 20 s.
    pub ping_timeout: Duration,
    /// Largest message, and largest long-polling POST body, in bytes (`maxPayload`). Larger:
    /// WebSocket closes with 1009, a POST gets 413; either ends the session. Default 1 000 000.
    pub max_payload: usize,
    /// Polling sessions held at once (the sid table's cap); past it a handshake gets 503.
    pub max_polling_sessions: usize,
    /// Time an upgrading WebSocket has to send its probe and `5`. Default 10 s (as Node).
    pub upgrade_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            max_polling_sessions: 100_000,
            upgrade_timeout: Duration::from_secs(10),
        }
    }
}

/// The transport a request or a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Polling,
    WebSocket,
}

impl TransportKind {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "polling" => Some(Self::Polling),
            "websocket" => Some(Self::WebSocket),
            _ => None,
        }
    }
}

/// What [`Protocol::open`] is told about a new session.
pub struct Handshake<'a> {
    /// The session id the client will be given.
    pub sid: &'a str,
    pub transport: TransportKind,
    /// The handshake's query pairs (decoded), e.g. a token some surfaces take there.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    /// The client's address (as the server's trusted-proxy rules see it), when known.
    pub client: Option<IpAddr>,
}

/// The upper protocol of one endpoint (Socket.IO): decides who may open a session, and opens
/// it. Shared by every request to the endpoint.
pub trait Protocol: Send + Sync + 'static {
    /// Whether a handshake with this `Origin` header may open a session (`None`: no header,
    /// which non-browser clients send). A header that is not text arrives as `Some("")`.
    fn origin_allowed(&self, _origin: Option<&str>) -> bool {
        true
    }

    /// Opens a session, or refuses it (the error is answered as Engine.IO's HTTP error).
    fn open(&self, handshake: &Handshake<'_>) -> Result<Box<dyn Session>, EioError>;
}

/// A message the client sent (`4…` or binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// The text after Engine.IO's `4`.
    Text(&'a str),
    Binary(&'a [u8]),
}

/// What the transport does after a session callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// End the session (the replies queued with it still go out first).
    Close,
}

/// Why a session ended, for the upper layer (Socket.IO's disconnect reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent `1` (or closed its WebSocket cleanly).
    ClientClose,
    /// The connection dropped, or polling broke the protocol (two GETs at once).
    TransportClose,
    /// The client sent a packet that does not parse, or one over `maxPayload`.
    ParseError,
    /// No pong within `pingTimeout`.
    PingTimeout,
    /// The upper layer returned [`Flow::Close`].
    ServerClose,
    /// The core closed the connection (slow consumer, app disabled, shutdown, …).
    Core(Disconnect),
}

impl CloseReason {
    /// Socket.IO's name for it (its `disconnect` reason), also a bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::ClientClose => "client namespace disconnect",
            Self::TransportClose => "transport close",
            Self::ParseError => "parse error",
            Self::PingTimeout => "ping timeout",
            Self::ServerClose => "server namespace disconnect",
            Self::Core(Disconnect::Shutdown) => "server shutting down",
            Self::Core(_) => "forced server close",
        }
    }
}

/// The upper protocol's state on one Engine.IO session. Lives in the session's WebSocket task,
/// or in the polling table (then each call runs under that session's lock, briefly: never wait
/// here; hand slow work to a task and answer through the connection's outbox).
pub trait Session: Send + 'static {
    /// The connection whose outbox carries this session's packets.
    fn conn(&self) -> &ConnHandle;

    /// Right after the open packet (Socket.IO sends nothing here; the client speaks first).
    fn on_open(&mut self, _out: &mut Replies) {}

    /// A message arrived.
    fn on_message(&mut self, message: Message<'_>, out: &mut Replies) -> Flow;

    /// When [`Session::on_timer`] should run next; `None`: no timer.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// The deadline passed.
    fn on_timer(&mut self, _now: Instant, _out: &mut Replies) -> Flow {
        Flow::Continue
    }

    /// A last message (the payload after `4`) to send when the core closes the connection for
    /// `reason`, e.g. Socket.IO's DISCONNECT packet.
    fn last_words(&self, _reason: Disconnect) -> Option<Bytes> {
        None
    }

    /// The session ended (called once): leave everything it joined.
    fn on_close(&mut self, reason: CloseReason);
}

/// Messages a session answers with, in order, as ready-made WebSocket frames.
#[derive(Default)]
pub struct Replies {
    frames: Vec<Bytes>,
}

impl Replies {
    /// Queues a text message (`4` + `payload`).
    pub fn message(&mut self, payload: impl AsRef<[u8]>) {
        self.frames.push(message_frame(payload.as_ref()));
    }

    /// Queues a binary message.
    pub fn binary(&mut self, payload: impl AsRef<[u8]>) {
        self.frames.push(binary_frame(payload.as_ref()));
    }

    /// Queues a frame made with [`message_frame`] or [`binary_frame`] (e.g. shared by several
    /// sessions).
    pub fn frame(&mut self, frame: Bytes) {
        self.frames.push(frame);
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn take(&mut self) -> std::vec::Drain<'_, Bytes> {
        self.frames.drain(..)
    }
}

/// Engine.IO's HTTP errors, answered as the Node reference server does: status and
/// `{"code","message"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EioError {
    #[error("Transport unknown")]
    UnknownTransport,
    #[error("Session ID unknown")]
    UnknownSid,
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    #[error("Bad request")]
    BadRequest,
    #[error("Forbidden")]
    Forbidden,
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
}

impl EioError {
    /// The `code` field of the answer (Node's `Server.errors`).
    pub fn code(self) -> u8 {
        match self {
            Self::UnknownTransport => 0,
            Self::UnknownSid => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest => 3,
            Self::Forbidden => 4,
            Self::UnsupportedProtocolVersion => 5,
        }
    }

    /// The HTTP status: 403 for [`EioError::Forbidden`], else 400 (as Node).
    pub fn status(self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for EioError {
    fn into_response(self) -> Response {
        let body = format!(r#"{{"code":{},"message":"{self}"}}"#, self.code());
        let mut response = (self.status(), body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}
