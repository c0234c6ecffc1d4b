//! One accepted TCP connection, handed to hyper only while it has requests: hyper gets it when
//! its first byte arrives and gives it back (at a message boundary) [`PARK_AFTER`] after its
//! last answer, so an idle keep-alive connection (a polling client's POST connection between
//! pongs, a browser's spare connection) holds no HTTP state: hyper's read and write buffers
//! (8 KiB each) and its connection state are freed until the client speaks again, as nginx
//! frees its buffers on an idle keep-alive connection. The limits stay: a connection that sends
//! no request head is closed at the header timeout (from its last answer, or its accept); a
//! head that trickles in stays with hyper, whose header timeout runs; shutdown closes a waiting
//! connection at once.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tower::Service;

use super::{ClientAddr, OverCapacity, TrustedProxies};
use crate::transport::server_io::ServerIo;
use crate::transport::ws;

/// Idle time after an answer before the connection leaves hyper: a client's back-to-back
/// requests (an API client's loop, a poll's next GET) stay on one hyper connection; leaving
/// after every answer cost ~1.5 us of server CPU per request (emit at c=32: 8.6 -> 10.3 us).
const PARK_AFTER: Duration = Duration::from_millis(10);

/// What every connection task shares.
#[derive(Clone)]
pub(super) struct ConnectionContext {
    pub router: Router,
    pub token: CancellationToken,
    pub trusted: Arc<TrustedProxies>,
    /// How long a connection may sit without sending a request head (hyper's header timeout).
    pub idle_limit: Duration,
}

/// What one accepted connection is.
pub(super) struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub held: ws::HeldForConnection,
    /// Accepted over capacity: one request, then closed (never parked).
    pub overflow: bool,
}

/// Serves a connection until it closes, upgrades or the server shuts down.
pub(super) async fn serve(http: http1::Builder, accepted: Accepted, ctx: ConnectionContext) {
    let Accepted { mut stream, peer, held, overflow } = accepted;
    let mut read_ahead = Bytes::new();
    let mut idle_since = Instant::now();
    loop {
        // A connection over capacity goes to hyper at once (its short header timeout, one
        // request); others wait for their first byte, closed at the idle limit.
        if !overflow
            && read_ahead.is_empty()
            && !wait_for_request(&stream, idle_since + ctx.idle_limit, &ctx.token).await
        {
            return;
        }
        let activity = Arc::new(Activity::new());
        let keep_open = Arc::new(AtomicBool::new(false));
        let svc = {
            let (router, trusted, held, activity) =
                (ctx.router.clone(), ctx.trusted.clone(), held.clone(), activity.clone());
            hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                // Without trusted proxies the client is the peer, which `ClientAddr` falls back to.
                let client = (!trusted.is_empty()).then(|| trusted.client(peer.ip(), req.headers()));
                let extensions = req.extensions_mut();
                extensions.insert(ConnectInfo(peer));
                if let Some(client) = client {
                    extensions.insert(ClientAddr(client));
                    if trusted.trusts(peer.ip()) {
                        extensions.insert(super::forwarded::FromTrustedProxy);
                    }
                }
                extensions.insert(held.clone());
                if overflow {
                    extensions.insert(OverCapacity);
                }
                activity.begin();
                let req = req.map(|body| Tracked::request(body, activity.clone()));
                let answer = Tracked::answer(activity.clone());
                let mut router = router.clone();
                async move {
                    let response = router.call(req).await?;
                    Ok::<_, std::convert::Infallible>(response.map(|body| answer.wrap(body)))
                }
            })
        };
        let io = ServerIo::new(stream, std::mem::take(&mut read_ahead), keep_open.clone());
        // Boxed: a parked connection's task holds no room for hyper's state.
        let mut conn = Box::pin(http.serve_connection(TokioIo::new(io), svc).with_upgrades());
        let ended = loop {
            tokio::select! {
                res = conn.as_mut() => break res,
                _ = ctx.token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                    return;
                }
                _ = activity.idle(PARK_AFTER), if !overflow && !keep_open.load(Ordering::Acquire) => {
                    // hyper closes an idle connection at once on a graceful shutdown; with
                    // `keep_open` its shutdown of the stream is skipped.
                    keep_open.store(true, Ordering::Release);
                    conn.as_mut().graceful_shutdown();
                }
            }
        };
        if let Err(e) = ended {
            tracing::debug!(error = %e, %peer, "http connection ended with an error");
            return;
        }
        // Ended on its own (the client closed, `Connection: close`), or upgraded.
        if !keep_open.load(Ordering::Acquire) {
            return;
        }
        let Some(parts) = Pin::into_inner(conn).into_parts() else { return };
        if activity.left_body_unread() {
            // Dropped after its answer (a task kept it): not a message boundary to resume at.
            return;
        }
        idle_since = activity.idle_since();
        (stream, read_ahead) = parts.io.into_inner().into_parts(parts.read_buf);
    }
}

/// Parked: waits for the client's next byte with no HTTP state. False: close the connection
/// (the client closed it, the idle limit passed, or the server is shutting down).
async fn wait_for_request(stream: &TcpStream, close_at: Instant, token: &CancellationToken) -> bool {
    tokio::select! {
        // Readable: bytes, or the end of the stream, which hyper then reads and closes on.
        ready = stream.readable() => ready.is_ok(),
        _ = sleep_until(close_at) => false,
        _ = token.cancelled() => false,
    }
}

/// Requests under way on one hyper connection, and since when it has been idle.
struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    /// A request was served in this round.
    served: bool,
    idle_since: Instant,
    /// A request's body was dropped before its end.
    unread_body: bool,
}

impl Activity {
    fn new() -> Self {
        let state = ActivityState { in_flight: 0, served: false, idle_since: Instant::now(), unread_body: false };
        Self { state: Mutex::new(state), changed: Notify::new() }
    }

    fn begin(&self) {
        let mut state = self.state.lock();
        state.in_flight += 1;
        state.served = true;
    }

    fn end(&self) {
        let idle = {
            let mut state = self.state.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            state.idle_since = Instant::now();
            state.in_flight == 0
        };
        if idle {
            self.changed.notify_waiters();
        }
    }

    fn idle_since(&self) -> Instant {
        self.state.lock().idle_since
    }

    fn left_body_unread(&self) -> bool {
        self.state.lock().unread_body
    }

    /// Resolves once this round served a request and none has been under way for `period`.
    /// (A head that never completes is never served: hyper's header timeout closes the
    /// connection.) A request body can only be left unread before its answer ends, so that
    /// answer's wake-up sees it.
    async fn idle(&self, period: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let at = {
                let state = self.state.lock();
                // A request body left unread is hyper's to drain or close on: that round stays
                // with hyper.
                (state.in_flight == 0 && state.served && !state.unread_body).then_some(state.idle_since + period)
            };
            match at {
                Some(at) if at <= Instant::now() => return,
                // A request meanwhile only moves the moment later: looked at again then (no
                // wake-up per request on a busy connection).
                Some(at) => sleep_until(at).await,
                // Woken by the last answer's end.
                None => changed.await,
            }
        }
    }
}

/// A request or response body, unchanged, that tells [`Activity`] how it ended: a request body
/// dropped before its end marks the connection, an answer dropped (written, or the connection
/// gone) ends its request.
struct Tracked<B> {
    body: B,
    activity: Option<Arc<Activity>>,
    /// Request side: the body reached its end.
    ended: bool,
    answer: bool,
}

impl<B: Body + Unpin> Tracked<B> {
    fn request(body: B, activity: Arc<Activity>) -> Self {
        let ended = body.is_end_stream();
        Self { body, activity: Some(activity), ended, answer: false }
    }
}

impl Tracked<()> {
    /// The end of a request, to be attached to its answer (ends the request if dropped unused).
    fn answer(activity: Arc<Activity>) -> Self {
        Self { body: (), activity: Some(activity), ended: false, answer: true }
    }

    fn wrap<B>(mut self, body: B) -> Tracked<B> {
        Tracked { body, activity: self.activity.take(), ended: false, answer: true }
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        let Some(activity) = self.activity.take() else { return };
        if self.answer {
            activity.end();
        } else if !self.ended {
            activity.state.lock().unread_body = true;
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_a_served_request_its_answer_and_the_period() {
        let activity = Arc::new(Activity::new());
        let waiting = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle(Duration::from_secs(1)).await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiting.is_finished(), "nothing served yet");
        activity.begin();
        activity.begin();
        activity.end();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiting.is_finished(), "a request is under way");
        activity.end();
        let ended = Instant::now();
        waiting.await.unwrap();
        assert_eq!(Instant::now() - ended, Duration::from_secs(1));
    }

    #[test]
    fn a_request_body_dropped_before_its_end_marks_the_connection() {
        let activity = Arc::new(Activity::new());
        drop(Tracked::request(http_body_util::Full::new(Bytes::from_static(b"x")), activity.clone()));
        assert!(activity.left_body_unread());
        let clean = Arc::new(Activity::new());
        drop(Tracked::request(http_body_util::Empty::<Bytes>::new(), clean.clone()));
        assert!(!clean.left_body_unread(), "an empty body is at its end");
    }
}
