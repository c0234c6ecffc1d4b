//! The WebSocket connection loop shared by the Pusher and Notif surfaces.
//!
//! One task per connection, the only writer to its socket. Each turn it writes what the session
//! answered and everything the fan-out queued, as one batch and one flush (so frames queued for
//! a connection go out in one write), then waits for the next frame, wake-up, timer or
//! shutdown. A connection marked slow is closed even while a write is stuck.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::core::{ConnHandle, Disconnect};
use crate::metrics;

/// How long a closing connection waits to send its close frame (a slow consumer's may sit
/// behind unsent data) and then for the client's close frame. Bounded, so a dead peer costs a
/// few seconds of one task at most.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

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

/// Frames a session wants written, in order.
#[derive(Default)]
pub struct Replies {
    frames: Vec<Out>,
}

enum Out {
    Text(Bytes),
    Ping,
}

impl Replies {
    /// Queues a text frame (valid UTF-8 JSON built by the surface).
    pub fn text(&mut self, frame: Bytes) {
        self.frames.push(Out::Text(frame));
    }

    /// Queues a WebSocket Ping.
    pub fn ping(&mut self) {
        self.frames.push(Out::Ping);
    }
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
    /// Any frame arrived, control frames included.
    fn on_activity(&mut self, now: Instant);
    /// When [`Session::on_timer`] should run next.
    fn deadline(&self) -> Instant;
    /// The deadline passed.
    fn on_timer(&mut self, now: Instant, out: &mut Replies) -> Flow;
    /// Drops queued fan-out frames this connection must not get, before they are written (Notif
    /// leaves out Pusher-protocol extras unless the client asked for them). Default: keep all.
    fn filter_outgoing(&self, _batch: &mut Vec<Bytes>) {}
    /// How this surface closes for a reason the core gave.
    fn closing_for(&self, reason: Disconnect) -> Closing;
    /// Closing for a frame over the size cap (RFC 6455 1009).
    fn closing_too_big(&self) -> Closing {
        Closing { last_frame: None, code: 1009, reason: "message too big" }
    }
    /// The connection ended, however it ended: leave everything joined.
    fn finish(&mut self);
}

/// Runs a session on a socket until either side ends it.
pub async fn run<S: Session>(mut socket: WebSocket, mut session: S, shutdown: CancellationToken) {
    let conn = session.conn().clone();
    let mut replies = Replies::default();
    let mut batch: Vec<Bytes> = Vec::new();
    session.on_open(&mut replies);
    // Shutdown reaches live connections through `Realtime::close_all` (their close signal), so
    // the loop does not wait on the token: a connection admitted after that sweep sees it here.
    if shutdown.is_cancelled() {
        conn.close(Disconnect::Shutdown);
    }
    // One timer for the connection's life, moved only when the session's deadline moves: a
    // fresh timer per turn would cost a timer-wheel insert and removal per delivered batch.
    let timer = sleep_until(session.deadline());
    tokio::pin!(timer);
    let gate = ReadGate::new();
    let end: Option<Closing> = loop {
        let closing = conn.drain(&mut batch);
        session.filter_outgoing(&mut batch);
        if !(replies.frames.is_empty() && batch.is_empty()) {
            match write_batch(&mut socket, &conn, &mut replies, &mut batch).await {
                Written::Done => {}
                Written::SocketGone => break None,
                Written::Evicted(reason) => break Some(session.closing_for(reason)),
            }
        }
        if let Some(reason) = closing {
            break Some(session.closing_for(reason));
        }
        let deadline = session.deadline();
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        let flow = tokio::select! {
            biased;
            _ = conn.woken() => Flow::Continue,
            msg = gate.recv(&mut socket) => {
                session.on_activity(Instant::now());
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        metrics::message_in(conn.transport);
                        session.on_text(text.as_str(), &mut replies)
                    }
                    Some(Ok(Message::Binary(_))) => session.on_binary(&mut replies),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    Some(Ok(Message::Close(_))) => {
                        // Answer the client's close (RFC 6455 §5.5.1): tungstenite queued the
                        // reply; a flush sends it.
                        session.finish();
                        let _ = timeout(CLOSE_GRACE, socket.flush()).await;
                        return;
                    }
                    None => break None,
                    Some(Err(err)) => {
                        if is_capacity(&err) {
                            break Some(session.closing_too_big());
                        }
                        tracing::debug!(error = %err, "websocket read failed");
                        break None;
                    }
                }
            }
            _ = &mut timer => session.on_timer(Instant::now(), &mut replies),
        };
        if let Flow::Close(closing) = flow {
            // Answers produced before the close still go out (e.g. a pusher:error).
            if !replies.frames.is_empty() {
                write_batch(&mut socket, &conn, &mut replies, &mut batch).await;
            }
            break Some(closing);
        }
    };
    // Leave channels before the close handshake, so nobody waits on a peer that is gone.
    session.finish();
    if let Some(closing) = end {
        close(&mut socket, closing).await;
    }
}

/// Polls the socket's read side only when it can make progress. Each delivery wakes the task,
/// and polling `recv` on every turn costs a trip through tokio-tungstenite, tungstenite (which
/// zero-fills its read buffer before each read) and hyper for nothing. The read side gets its own
/// waker, which records that the socket woke the task; until it does, `recv` stays unpolled.
struct ReadGate {
    flag: Arc<ReadFlag>,
    waker: Waker,
}

struct ReadFlag {
    /// Set when the read side woke us, or when the last read returned a message (more may be
    /// buffered); cleared before each read attempt.
    ready: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl ReadGate {
    fn new() -> Self {
        let flag = Arc::new(ReadFlag { ready: AtomicBool::new(true), task: AtomicWaker::new() });
        let waker = Waker::from(flag.clone());
        Self { flag, waker }
    }

    /// Like `socket.recv()`, and as cancel-safe: a message is returned from the poll that read it.
    async fn recv(&self, socket: &mut WebSocket) -> Option<Result<Message, axum::Error>> {
        poll_fn(|cx| {
            self.flag.task.register(cx.waker());
            if !self.flag.ready.swap(false, Ordering::AcqRel) {
                return Poll::Pending;
            }
            match socket.poll_next_unpin(&mut Context::from_waker(&self.waker)) {
                Poll::Ready(msg) => {
                    self.flag.ready.store(true, Ordering::Release);
                    Poll::Ready(msg)
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// How a batch write ended.
enum Written {
    Done,
    SocketGone,
    /// The connection was told to close while the write was stuck (a slow consumer).
    Evicted(Disconnect),
}

/// Writes replies then queued frames with one flush.
async fn write_batch(
    socket: &mut WebSocket,
    conn: &ConnHandle,
    replies: &mut Replies,
    batch: &mut Vec<Bytes>,
) -> Written {
    let frames = replies.frames.drain(..).chain(batch.drain(..).map(Out::Text));
    for frame in frames {
        let msg = match frame {
            Out::Text(bytes) => match Utf8Bytes::try_from(bytes) {
                Ok(text) => Message::Text(text),
                Err(_) => continue,
            },
            Out::Ping => Message::Ping(Bytes::new()),
        };
        if socket.feed(msg).await.is_err() {
            return Written::SocketGone;
        }
    }
    if batch.capacity() > 256 {
        batch.shrink_to(16);
    }
    loop {
        tokio::select! {
            // Flush first: it usually completes at once, and then `woken` is never polled (a waker
            // registration per delivery saved).
            biased;
            res = socket.flush() => return if res.is_ok() { Written::Done } else { Written::SocketGone },
            _ = conn.woken() => {
                // Woken mid-write: only a close matters here; new frames wait for the next turn.
                if let Some(reason) = conn.closing() {
                    return Written::Evicted(reason);
                }
            }
        }
    }
}

async fn close(socket: &mut WebSocket, closing: Closing) {
    if let Some(frame) = closing.last_frame
        && let Ok(text) = Utf8Bytes::try_from(frame)
    {
        let _ = timeout(CLOSE_GRACE, socket.feed(Message::Text(text))).await;
    }
    let frame = CloseFrame { code: closing.code, reason: Utf8Bytes::from_static(closing.reason) };
    if timeout(CLOSE_GRACE, socket.send(Message::Close(Some(frame)))).await.is_err() {
        return;
    }
    // Wait briefly for the client's close so the socket ends cleanly rather than with a reset.
    let _ = timeout(CLOSE_GRACE, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

fn is_capacity(err: &axum::Error) -> bool {
    let text = err.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("Message too long")
}

/// Ends a socket that was never admitted (a refused upgrade): the last frame, then the close.
pub async fn refuse(mut socket: WebSocket, closing: Closing) {
    close(&mut socket, closing).await;
}
