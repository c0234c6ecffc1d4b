//! The WebSocket upgrade and connection loop shared by the Pusher and Notif surfaces.
//!
//! Writing: every byte a connection sends goes through its outbox in the core, as ready-made
//! WebSocket frames (server frames are unmasked, so a fanned-out frame is the same bytes for
//! every subscriber and is framed once). The core's flush queue writes fanned-out frames straight
//! to the socket; this loop writes the session's answers the same way and takes over when the
//! socket is full. Reading: tungstenite's frame codec over the non-blocking socket, only when the
//! socket says it is readable. One task per connection runs the reads, the timer and the close.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tungstenite::error::ProtocolError;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as WsError, Message};

use super::server_io::ServerIo;
use crate::core::{ConnHandle, Disconnect, Flushed, Wire};
use crate::metrics;

/// How long a closing connection waits to send its close frame (a slow consumer's may sit
/// behind a partly written frame). Bounded, so a dead peer costs a few seconds of one task at
/// most.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long the server then waits for the client's close frame (or, after a protocol error,
/// for it to close TCP) before it cuts the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The read buffer a connection starts with; tungstenite grows it for larger frames. Small,
/// because idle connections are most connections.
const READ_BUFFER: usize = 1024;
/// Messages handled in one turn before the task yields, so a client that floods frames cannot
/// keep the others waiting.
const READS_PER_TURN: usize = 64;

/// A server text frame (RFC 6455 §5.2: FIN, opcode 1, no mask) around `payload`.
pub fn text_frame(payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x81);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out.into()
}

/// A server Ping with no payload.
const PING_FRAME: &[u8] = &[0x89, 0x00];

/// What the loop does after a session callback.
#[derive(Debug)]
pub enum Flow {
    Continue,
    Close(Closing),
}

/// How to end a connection: an optional last text frame (Pusher's `pusher:error`), then a
/// close frame.
#[derive(Debug, Clone)]
pub struct Closing {
    pub last_frame: Option<Bytes>,
    pub code: u16,
    pub reason: &'static str,
}

/// Frames a session wants written, in order (already framed).
#[derive(Default)]
pub struct Replies {
    frames: Vec<Bytes>,
}

impl Replies {
    /// Queues a text frame (valid UTF-8 JSON built by the surface).
    pub fn text(&mut self, frame: Bytes) {
        self.frames.push(text_frame(&frame));
    }

    /// Queues a WebSocket Ping.
    pub fn ping(&mut self) {
        self.frames.push(Bytes::from_static(PING_FRAME));
    }

    /// Queues a frame the session framed itself (a binary frame, a shared fanned-out frame).
    pub fn framed(&mut self, frame: Bytes) {
        self.frames.push(frame);
    }
}

/// A server binary frame (RFC 6455 §5.2: FIN, opcode 2, no mask) around `payload`.
pub fn binary_frame(payload: &[u8]) -> Bytes {
    let mut frame = Vec::from(text_frame(payload));
    frame[0] = 0x82;
    frame.into()
}

/// The payload of one server frame made by [`text_frame`] or [`binary_frame`], and whether it
/// is binary; `None` for anything else. Lets a transport that is not WebSocket (Engine.IO's
/// long-polling) reuse the frames the fan-out already encoded instead of encoding again.
pub fn frame_payload(frame: &[u8]) -> Option<(bool, &[u8])> {
    match split_frame(frame)? {
        (binary, payload, []) => Some((binary, payload)),
        _ => None,
    }
}

/// The first of several server frames queued back to back in one buffer (as [`frame_payload`]):
/// whether it is binary, its payload, and the rest of the buffer.
pub fn split_frame(frame: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let binary = match frame.first()? {
        0x81 => false,
        0x82 => true,
        _ => return None,
    };
    let (len, at): (usize, usize) = match *frame.get(1)? {
        126 => (usize::from(u16::from_be_bytes([*frame.get(2)?, *frame.get(3)?])), 4),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(frame.get(2..10)?);
            (usize::try_from(u64::from_be_bytes(n)).ok()?, 10)
        }
        n if n < 126 => (usize::from(n), 2),
        _ => return None,
    };
    let end = at.checked_add(len)?;
    Some((binary, frame.get(at..end)?, frame.get(end..)?))
}

/// A surface's protocol on one connection.
pub trait Session: Send {
    /// The connection, for the loop's outbox and close signal.
    fn conn(&self) -> &ConnHandle;
    /// Called once before the loop starts (e.g. `connection_established`).
    fn on_open(&mut self, out: &mut Replies);
    /// A text frame arrived.
    fn on_text(&mut self, text: &str, out: &mut Replies) -> Flow;
    /// A binary frame arrived (neither surface speaks binary).
    fn on_binary(&mut self, out: &mut Replies) -> Flow;
    /// A binary frame arrived, with its payload (Engine.IO's binary messages); by default the
    /// payload is ignored and [`Session::on_binary`] decides.
    fn on_binary_data(&mut self, _data: &[u8], out: &mut Replies) -> Flow {
        self.on_binary(out)
    }
    /// Any frame arrived, control frames included.
    fn on_activity(&mut self, now: Instant);
    /// When [`Session::on_timer`] should run next.
    fn deadline(&self) -> Instant;
    /// The deadline passed.
    fn on_timer(&mut self, now: Instant, out: &mut Replies) -> Flow;
    /// How this surface closes for a reason the core gave.
    fn closing_for(&self, reason: Disconnect) -> Closing;
    /// Closing for a frame over the size cap (RFC 6455 1009).
    fn closing_too_big(&self) -> Closing {
        Closing { last_frame: None, code: 1009, reason: "message too big" }
    }
    /// The connection ended, however it ended: leave everything joined.
    fn finish(&mut self);
}

/// The socket is the core's [`Wire`]: the flush queue writes to it without waiting.
impl Wire for TcpStream {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, buf)
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        TcpStream::try_write_vectored(self, bufs)
    }
}

/// An upgraded WebSocket: the TCP stream (shared with the core, which writes to it) and
/// tungstenite's protocol state for reading.
pub struct Socket {
    stream: Arc<TcpStream>,
    ctx: WebSocketContext,
    /// Bytes tungstenite wrote (Pong answers, the close reply), waiting to join the outbox.
    control: Vec<u8>,
    /// A read failed (over-size or malformed frame): tungstenite's read state is undefined
    /// after that (reading again trips an assertion in it), so later reads bypass it.
    failed: bool,
}

/// The result of one non-blocking read.
enum Read1 {
    Message(Message),
    WouldBlock,
    TooBig,
    /// The peer broke RFC 6455 (an unmasked frame, a bad opcode, invalid UTF-8): the close code
    /// and reason to fail the connection with (§7.1.7).
    Violation(u16, &'static str),
    /// The peer went away.
    Gone,
}

/// tungstenite's view of the socket for one call: reads are non-blocking, writes are collected.
struct Io<'a> {
    stream: &'a TcpStream,
    out: &'a mut Vec<u8>,
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.try_read(buf)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket {
    fn new(stream: TcpStream, read_ahead: Bytes, config: WebSocketConfig) -> Self {
        let ctx = if read_ahead.is_empty() {
            WebSocketContext::new(Role::Server, Some(config))
        } else {
            // Frames the client sent right behind its upgrade request, read by the HTTP layer.
            WebSocketContext::from_partially_read(read_ahead.to_vec(), Role::Server, Some(config))
        };
        Self { stream: Arc::new(stream), ctx, control: Vec::new(), failed: false }
    }

    fn io(&mut self) -> (&mut WebSocketContext, Io<'_>) {
        (&mut self.ctx, Io { stream: &self.stream, out: &mut self.control })
    }

    fn try_read(&mut self) -> Read1 {
        if self.failed {
            return Read1::Gone;
        }
        let read = {
            let (ctx, mut io) = self.io();
            Self::classify(ctx.read(&mut io))
        };
        if matches!(read, Read1::TooBig | Read1::Violation(..) | Read1::Gone) {
            self.failed = true;
        }
        read
    }

    fn classify(read: Result<Message, WsError>) -> Read1 {
        match read {
            Ok(msg) => Read1::Message(msg),
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Read1::WouldBlock,
            Err(WsError::Capacity(_)) => Read1::TooBig,
            Err(WsError::Utf8(_)) => Read1::Violation(1007, "invalid UTF-8"),
            Err(WsError::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
                | ProtocolError::ReceivedAfterClosing
                | ProtocolError::SendAfterClosing,
            )) => Read1::Gone,
            Err(WsError::Protocol(err)) => {
                tracing::debug!(error = %err, "websocket protocol violation");
                Read1::Violation(1002, "protocol error")
            }
            Err(err) => {
                tracing::debug!(error = %err, "websocket read failed");
                Read1::Gone
            }
        }
    }

    /// tungstenite's pending replies (the answer to a close), collected.
    fn flush_replies(&mut self) {
        let (ctx, mut io) = self.io();
        let _ = ctx.flush(&mut io);
    }

    fn take_control(&mut self) -> Option<Bytes> {
        (!self.control.is_empty()).then(|| Bytes::from(std::mem::take(&mut self.control)))
    }

    /// The close frame, through tungstenite so that it expects the client's answer.
    fn close_frame(&mut self, code: u16, reason: &'static str) -> Option<Bytes> {
        let frame = CloseFrame { code: code.into(), reason: reason.into() };
        let (ctx, mut io) = self.io();
        let _ = ctx.close(&mut io, Some(frame));
        self.take_control()
    }

    /// Waits (bounded) for the client's close frame, so the socket ends cleanly rather than
    /// with a reset; the caller then drops the socket, which closes TCP at once (RFC 6455
    /// §7.1.1: the server closes first).
    async fn await_close(&mut self) {
        if self.failed {
            // After a protocol error the frames can no longer be parsed, so the client's close
            // frame cannot be told from the rest: the connection is failed (§7.1.7). FIN right
            // behind our close frame, then what the client still sends is read and dropped until
            // it closes too, so that our close frame is not lost to a reset.
            let stream = self.stream.clone();
            let _ = socket2::SockRef::from(&*stream).shutdown(std::net::Shutdown::Write);
            let _ = timeout(CLOSE_WAIT, async {
                // On the heap: an array here would be part of every connection task's future
                // (4 KiB each, measured), not only of the few that end this way.
                let mut scratch = vec![0u8; 4096];
                loop {
                    match stream.try_read(&mut scratch) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if stream.readable().await.is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            })
            .await;
            return;
        }
        let _ = timeout(CLOSE_WAIT, async {
            loop {
                match self.try_read() {
                    Read1::Message(Message::Close(_)) | Read1::Gone | Read1::TooBig | Read1::Violation(..) => break,
                    Read1::Message(_) => {}
                    Read1::WouldBlock => {
                        if self.stream.readable().await.is_err() {
                            break;
                        }
                    }
                }
            }
        })
        .await;
    }
}

/// A message read before the socket joins a connection (Engine.IO's upgrade probe).
#[derive(Debug)]
pub enum Probe {
    Text(String),
    Binary(Bytes),
    /// The peer closed, broke the protocol or sent a message over the size cap.
    Gone,
}

impl Socket {
    /// Waits for the next data message, for a socket that has not joined a connection yet
    /// (control frames are answered with the next [`Socket::write_direct`]).
    pub async fn recv_direct(&mut self) -> Probe {
        loop {
            match self.try_read() {
                Read1::Message(Message::Text(text)) => return Probe::Text(text.as_str().to_owned()),
                Read1::Message(Message::Binary(data)) => return Probe::Binary(data),
                Read1::Message(Message::Close(_)) => return Probe::Gone,
                Read1::Message(_) => {}
                Read1::WouldBlock => {
                    if self.stream.readable().await.is_err() {
                        return Probe::Gone;
                    }
                }
                Read1::TooBig | Read1::Violation(..) | Read1::Gone => return Probe::Gone,
            }
        }
    }

    /// Writes `frame` (and any control answer tungstenite queued) straight to the socket, for a
    /// socket that has not joined a connection yet. Bounded by a few seconds; false if the
    /// socket failed or stayed full.
    pub async fn write_direct(&mut self, frame: &[u8]) -> bool {
        let mut bytes = self.take_control().map(Vec::from).unwrap_or_default();
        bytes.extend_from_slice(frame);
        write_all(&self.stream, &bytes).await
    }
}

/// Writes all of `bytes` straight to the socket, waiting for it as needed, for at most
/// [`CLOSE_GRACE`]. False if the socket failed or stayed full.
async fn write_all(stream: &TcpStream, bytes: &[u8]) -> bool {
    let sent = timeout(CLOSE_GRACE, async {
        let mut at = 0;
        while at < bytes.len() {
            match stream.try_write(&bytes[at..]) {
                Ok(0) => return false,
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if stream.writable().await.is_err() {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    })
    .await;
    sent == Ok(true)
}

/// Writes what the connection has queued, waiting for the socket as needed, for at most
/// [`CLOSE_GRACE`]. False if the socket failed or stayed full.
async fn drain(stream: &TcpStream, conn: &ConnHandle) -> bool {
    timeout(CLOSE_GRACE, async {
        loop {
            match conn.flush_now() {
                Flushed::Done => return true,
                Flushed::Broken => return false,
                Flushed::Stalled => {
                    if stream.writable().await.is_err() {
                        return false;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// Runs a session on a socket until either side ends it.
pub async fn run<S: Session>(mut socket: Socket, mut session: S, shutdown: CancellationToken) {
    let conn = session.conn().clone();
    let stream = socket.stream.clone();
    conn.attach_wire(stream.clone());
    let mut replies = Replies::default();
    session.on_open(&mut replies);
    // Shutdown reaches live connections through `Realtime::close_all` (their close signal), so
    // the loop does not wait on the token: a connection admitted after that sweep sees it here.
    if shutdown.is_cancelled() {
        conn.close(Disconnect::Shutdown);
    }
    // One timer for the connection's life, moved only when the session's deadline moves.
    let timer = sleep_until(session.deadline());
    tokio::pin!(timer);
    // Whether the socket may have data: reads stop at `WouldBlock` and wait for readiness.
    let mut readable = true;
    // A full turn of reads ended: let the other tasks run before the next one.
    let mut yield_first = false;
    let end: Option<Closing> = 'conn: loop {
        // Always: this also releases what the core sent while a client frame was handled.
        let control = socket.take_control();
        if conn.send_now(replies.frames.drain(..).chain(control)) == Flushed::Broken {
            break None;
        }
        if std::mem::take(&mut yield_first) {
            tokio::task::yield_now().await;
        }
        if let Some(reason) = conn.closing() {
            break Some(session.closing_for(reason));
        }
        if readable {
            conn.hold();
            let mut handled = 0;
            while handled < READS_PER_TURN {
                let msg = match socket.try_read() {
                    Read1::Message(msg) => msg,
                    Read1::WouldBlock => {
                        readable = false;
                        break;
                    }
                    Read1::TooBig => break 'conn Some(session.closing_too_big()),
                    Read1::Violation(code, reason) => break 'conn Some(Closing { last_frame: None, code, reason }),
                    Read1::Gone => break 'conn None,
                };
                handled += 1;
                session.on_activity(Instant::now());
                let flow = match msg {
                    Message::Text(text) => {
                        metrics::message_in(conn.transport.label());
                        session.on_text(text.as_str(), &mut replies)
                    }
                    Message::Binary(data) => session.on_binary_data(&data, &mut replies),
                    Message::Close(_) => {
                        // Answer the client's close (RFC 6455 §5.5.1) and stop.
                        session.finish();
                        socket.flush_replies();
                        if let Some(reply) = socket.take_control()
                            && conn.queue_last([reply])
                        {
                            drain(&stream, &conn).await;
                        }
                        conn.detach_wire();
                        return;
                    }
                    _ => Flow::Continue,
                };
                if let Flow::Close(closing) = flow {
                    break 'conn Some(closing);
                }
            }
            // Write the answers (and release what was held), then wait or read on.
            yield_first = readable;
            continue;
        }
        let deadline = session.deadline();
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        let stalled = conn.stalled();
        let flow = tokio::select! {
            biased;
            _ = conn.woken() => Flow::Continue,
            res = stream.writable(), if stalled => {
                if res.is_err() || conn.flush_now() == Flushed::Broken {
                    break None;
                }
                Flow::Continue
            }
            res = stream.readable(), if !readable => {
                if res.is_err() {
                    break None;
                }
                readable = true;
                Flow::Continue
            }
            _ = &mut timer => session.on_timer(Instant::now(), &mut replies),
        };
        if let Flow::Close(closing) = flow {
            break Some(closing);
        }
    };
    // Leave channels before the close handshake, so nobody waits on a peer that is gone.
    session.finish();
    if let Some(closing) = end {
        // Answers produced before the close still go out (e.g. a pusher:error).
        let mut last: Vec<Bytes> = replies.frames.drain(..).collect();
        last.extend(closing.last_frame.as_deref().map(text_frame));
        last.extend(socket.close_frame(closing.code, closing.reason));
        if conn.queue_last(last) && drain(&stream, &conn).await {
            socket.await_close().await;
        }
    }
    conn.detach_wire();
}

/// Ends a socket that was never admitted (a refused upgrade): the last frame, then the close.
pub async fn refuse(mut socket: Socket, closing: Closing) {
    let mut bytes = Vec::new();
    if let Some(frame) = &closing.last_frame {
        bytes.extend_from_slice(&text_frame(frame));
    }
    if let Some(close) = socket.close_frame(closing.code, closing.reason) {
        bytes.extend_from_slice(&close);
    }
    if write_all(&socket.stream, &bytes).await {
        socket.await_close().await;
    }
}

/// Something that must live as long as the TCP connection (the server's per-address slot). The
/// server puts it in every request's extensions; an upgrade keeps it for the socket's life,
/// because the HTTP connection's task ends when it hands the socket over.
#[derive(Clone)]
pub struct HeldForConnection(pub Arc<dyn std::any::Any + Send + Sync>);

/// The WebSocket handshake of an HTTP/1.1 request (RFC 6455 §4.2), as an extractor.
pub struct WsUpgrade {
    accept: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
    config: WebSocketConfig,
    held: Option<HeldForConnection>,
}

/// The request is not a WebSocket upgrade we can take; each surface answers it in its own
/// format, through [`NotAnUpgrade::refusal`].
#[derive(Debug)]
pub struct NotAnUpgrade {
    /// An upgrade for another protocol version than 13.
    wrong_version: bool,
}

impl NotAnUpgrade {
    const PLAIN: Self = Self { wrong_version: false };

    /// The surface's error response, adjusted as RFC 6455 §4.4 asks: an upgrade for a version
    /// we do not speak is answered 426 with the version we do, so the client can retry with it.
    pub fn refusal(&self, mut response: Response) -> Response {
        if self.wrong_version {
            *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
            response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        response
    }
}

impl axum::response::IntoResponse for NotAnUpgrade {
    fn into_response(self) -> Response {
        self.refusal((StatusCode::BAD_REQUEST, "expected a WebSocket upgrade").into_response())
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = NotAnUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        if parts.method != Method::GET
            || !has_token(headers, header::CONNECTION, "upgrade")
            || !has_token(headers, header::UPGRADE, "websocket")
        {
            return Err(NotAnUpgrade::PLAIN);
        }
        match headers.get(header::SEC_WEBSOCKET_VERSION) {
            None => return Err(NotAnUpgrade::PLAIN),
            Some(v) if v != "13" => return Err(NotAnUpgrade { wrong_version: true }),
            Some(_) => {}
        }
        let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or(NotAnUpgrade::PLAIN)?;
        let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|_| NotAnUpgrade::PLAIN)?;
        let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>().ok_or(NotAnUpgrade::PLAIN)?;
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER).write_buffer_size(0);
        let held = parts.extensions.get::<HeldForConnection>().cloned();
        Ok(Self { accept, on_upgrade, config, held })
    }
}

impl WsUpgrade {
    /// Caps frames and messages at `bytes` (larger ones close the connection with 1009).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config = self.config.max_message_size(Some(bytes)).max_frame_size(Some(bytes));
        self
    }

    /// Answers 101 and runs `serve` on the socket once the client has it.
    pub fn on_upgrade<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Self { accept, on_upgrade, config, held } = self;
        tokio::spawn(async move {
            let _held = held;
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(error = %err, "websocket upgrade failed");
                    return;
                }
            };
            // Our server hands hyper the TCP stream itself; taking it back lets the core write
            // frames to it directly.
            let Ok(parts) = upgraded.downcast::<TokioIo<ServerIo>>() else {
                tracing::error!("websocket upgrade on an unexpected stream type");
                return;
            };
            let (stream, read) = parts.io.into_inner().into_parts(parts.read_buf);
            serve(Socket::new(stream, read, config)).await;
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client text frame.
    fn client_frame(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x81];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [1u8, 2, 3, 4];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[tokio::test]
    async fn an_over_size_frame_ends_the_socket_without_reading_it_again() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER).max_frame_size(Some(10_000));
        let mut socket = Socket::new(server, Bytes::new(), config.max_message_size(Some(10_000)));
        client.write_all(&client_frame(&vec![b'a'; 20_000])).await.unwrap();
        let read = loop {
            match socket.try_read() {
                Read1::WouldBlock => socket.stream.readable().await.unwrap(),
                other => break other,
            }
        };
        assert!(matches!(read, Read1::TooBig));
        // Reading on (what the close handshake does) used to trip tungstenite's assertion.
        assert!(matches!(socket.try_read(), Read1::Gone));
        drop(client);
        let closing = socket.await_close();
        // Part of every connection task's future: no buffers in it (a 4 KiB array here once
        // cost every idle connection 4 KiB).
        assert!(std::mem::size_of_val(&closing) < 512, "{} bytes", std::mem::size_of_val(&closing));
        closing.await;
    }

    #[test]
    fn frames_carry_rfc6455_lengths() {
        assert_eq!(&text_frame(b"hi")[..], &[0x81, 2, b'h', b'i']);
        let mid = text_frame(&[b'a'; 300]);
        assert_eq!(&mid[..4], &[0x81, 126, 1, 44]);
        assert_eq!(mid.len(), 304);
        let big = text_frame(&vec![b'a'; 70_000]);
        assert_eq!(&big[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }
}
