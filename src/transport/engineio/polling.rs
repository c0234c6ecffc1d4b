//! HTTP long-polling without a task per session. A session is an entry in a capped, sharded
//! table keyed by sid; its packets wait in its connection's outbox (the core's, bounded in bytes
//! and frames), which a GET drains and answers joined with `\x1e`. A GET with nothing to take is
//! answered at once with a body that completes when a packet comes (the heartbeat's ping at the
//! latest); a POST feeds the session. One timer task per
//! endpoint runs every session's heartbeat from a heap of deadlines.

use std::cmp::Reverse;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use super::packet::{self, Packet};
use super::session::Live;
use super::state::{Inner, Refused};
use super::table::{Phase, PollState, Polled, Timers};
use super::{CloseReason, EioError, Handshake, Replies};

/// Sessions ticked between two yields of the timer task.
const YIELD_EVERY: usize = 256;

/// Puts `polled`'s next deadline in the heap if it is earlier than the one there.
fn schedule(inner: &Arc<Inner>, polled: &Polled, state: &mut PollState) {
    let Some(live) = &state.live else { return };
    let at = live.deadline();
    if state.scheduled.is_some_and(|s| s <= at) {
        return;
    }
    state.scheduled = Some(at);
    let timers = &inner.table.timers;
    let earliest = {
        let mut heap = timers.heap.lock();
        heap.push(Reverse((at, polled.sid.clone())));
        heap.peek().is_some_and(|Reverse((first, _))| *first == at)
    };
    if !timers.started.swap(true, Ordering::AcqRel) {
        tokio::spawn(run_timers(Arc::downgrade(inner), timers.clone()));
    } else if earliest {
        timers.notify.notify_one();
    }
}

/// The endpoint's timer task: pings, ping timeouts and the upper layers' timers of every
/// polling session; on shutdown, ends them all. Ends with the endpoint.
async fn run_timers(endpoint: Weak<Inner>, timers: Arc<Timers>) {
    loop {
        let next = timers.heap.lock().peek().map(|Reverse((at, _))| *at);
        let shutdown = match endpoint.upgrade() {
            Some(inner) => inner.shutdown.clone(),
            None => return,
        };
        tokio::select! {
            _ = timers.notify.notified() => {}
            _ = sleep_until(next.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600))), if next.is_some() => {}
            _ = shutdown.cancelled() => {
                if let Some(inner) = endpoint.upgrade() {
                    for polled in inner.table.all() {
                        let mut state = polled.state.lock();
                        end(&inner, &polled, &mut state, CloseReason::Core(super::Disconnect::Shutdown), "1");
                    }
                }
                return;
            }
        }
        if timers.stopped.load(Ordering::Acquire) {
            return;
        }
        let Some(inner) = endpoint.upgrade() else { return };
        let now = Instant::now();
        let mut ticked = 0usize;
        loop {
            let due = {
                let mut heap = timers.heap.lock();
                match heap.peek() {
                    Some(Reverse((at, _))) if *at <= now => heap.pop().map(|Reverse(entry)| entry),
                    _ => None,
                }
            };
            let Some((at, sid)) = due else { break };
            if let Some(polled) = inner.table.get(&sid) {
                tick(&inner, &polled, at, now);
            }
            ticked += 1;
            // Many sessions due at once (pings come in waves): let requests and reads run.
            if ticked.is_multiple_of(YIELD_EVERY) {
                tokio::task::yield_now().await;
            }
        }
        {
            let mut heap = timers.heap.lock();
            if heap.capacity() > 4 * YIELD_EVERY && heap.len() < YIELD_EVERY {
                heap.shrink_to(YIELD_EVERY);
            }
        }
    }
}

/// A deadline of `polled` passed.
fn tick(inner: &Arc<Inner>, polled: &Polled, at: Instant, now: Instant) {
    let mut state = polled.state.lock();
    if state.scheduled != Some(at) {
        return;
    }
    state.scheduled = None;
    if state.phase == Phase::Ended {
        inner.table.remove(&polled.sid);
        return;
    }
    if let Some(reason) = polled.conn.closing() {
        return end_for_core(inner, polled, &mut state, reason);
    }
    let Some(live) = state.live.as_mut() else { return };
    let mut out = Replies::default();
    let ticked = live.tick(now, &mut out);
    send(polled, &mut out);
    match ticked {
        Ok(()) => schedule(inner, polled, &mut state),
        Err(reason) => end(inner, polled, &mut state, reason, "1"),
    }
}

/// Queues a session's replies on its connection (waking a pending GET).
fn send(polled: &Polled, out: &mut Replies) {
    for frame in out.take() {
        if !polled.conn.try_send(frame) {
            // Full or closing: the pending or next GET ends the session.
            break;
        }
    }
}

/// Ends a session: the upper layer leaves, the slot is given back, the sid forgotten, and a
/// pending GET answered with `farewell`.
pub(crate) fn end(inner: &Inner, polled: &Polled, state: &mut PollState, reason: CloseReason, farewell: &'static str) {
    if matches!(state.phase, Phase::Ended | Phase::Upgraded) {
        return;
    }
    state.phase = Phase::Ended;
    if let Some(mut live) = state.live.take() {
        live.close(reason);
    }
    state.slot = None;
    state.farewell = Some(farewell);
    if state.getting {
        polled.kick.notify_one();
    } else if reason == CloseReason::ClientClose {
        // The client's poll may be on its way (it sent `1` and polled at once): that poll gets
        // the noop, then the sid is gone. Kept for one ping timeout at most.
        let at = Instant::now() + inner.options.ping_timeout;
        state.scheduled = Some(at);
        inner.table.timers.heap.lock().push(Reverse((at, polled.sid.clone())));
        inner.table.timers.notify.notify_one();
        return;
    }
    inner.table.remove(&polled.sid);
}

/// The core closed the connection: the upper layer's last words and `1`.
fn end_for_core(inner: &Inner, polled: &Polled, state: &mut PollState, reason: super::Disconnect) {
    if let Some(words) = state.live.as_ref().and_then(|l| l.upper.last_words(reason)) {
        // Past the outbox bounds on purpose: one last message, like a WebSocket's close frame.
        state.last_words = Some(packet::message_frame(&words));
    }
    end(inner, polled, state, CloseReason::Core(reason), "1");
}

/// A polling handshake: the session opens and the GET gets the open packet.
pub(crate) async fn open(inner: &Arc<Inner>, handshake: &Handshake<'_>) -> Response {
    let slot = match inner.admission.get() {
        Some(admission) => match admission.admit_polling(handshake.client) {
            Ok(slot) => Some(slot),
            Err(refused) => return refused.into_response(),
        },
        None => None,
    };
    if inner.table.len() >= inner.table.max {
        return at_capacity();
    }
    let upper = match inner.protocol.open(handshake) {
        Ok(upper) => upper,
        Err(e) => return e.into_response(),
    };
    let options = &inner.options;
    let mut live = Live::new(upper, options, Instant::now());
    let mut body = packet::open(handshake.sid, true, options.ping_interval, options.ping_timeout, options.max_payload)
        .into_bytes();
    let mut out = Replies::default();
    live.upper.on_open(&mut out);
    for frame in out.take() {
        packet::append_polling(&mut body, &frame);
    }
    let polled = Arc::new(Polled {
        sid: handshake.sid.into(),
        conn: live.upper.conn().clone(),
        state: Mutex::new(PollState {
            live: Some(live),
            phase: Phase::Polling,
            getting: false,
            posting: false,
            noop_due: false,
            farewell: None,
            last_words: None,
            scheduled: None,
            slot,
        }),
        kick: Notify::new(),
    });
    if !inner.table.insert(polled.clone()) {
        // `live` ends with the entry.
        return at_capacity();
    }
    schedule(inner, &polled, &mut polled.state.lock());
    payload_response(body)
}

/// Resets a request flag however the request ends (the client may hang up mid-poll).
struct Busy {
    polled: Arc<Polled>,
    getting: bool,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.polled.state.lock();
        if self.getting {
            state.getting = false;
        } else {
            state.posting = false;
        }
    }
}

/// A GET: what is queued, else an answer whose head goes out now and whose payload follows
/// when a packet comes (the heartbeat's ping at the latest: held at most `pingInterval +
/// pingTimeout`). Answering the head at once lets the request's layers and handler finish: a
/// waiting poll holds only its small body (Arc handles, the wait), not their futures (~8 KiB
/// per idle polling session, measured).
pub(crate) fn get(inner: &Arc<Inner>, polled: Arc<Polled>) -> Response {
    {
        let mut state = polled.state.lock();
        if state.phase == Phase::Ended
            && let Some(last) = state.farewell.take()
        {
            inner.table.remove(&polled.sid);
            return payload_response(last.as_bytes().to_vec());
        }
        if !matches!(state.phase, Phase::Polling | Phase::Upgrading) {
            return EioError::BadRequest.into_response();
        }
        if state.getting {
            // Two polls at once: the protocol is broken; the first gets `1`, this one 400.
            end(inner, &polled, &mut state, CloseReason::TransportClose, "1");
            return EioError::BadRequest.into_response();
        }
        state.getting = true;
    }
    let busy = Busy { polled: polled.clone(), getting: true };
    let mut body = Vec::new();
    if gather(inner, &polled, &mut body) {
        return payload_response(body);
    }
    let hold_until = Instant::now() + inner.options.ping_interval + inner.options.ping_timeout;
    let inner = inner.clone();
    let payload = async move {
        let _busy = busy;
        loop {
            tokio::select! {
                _ = polled.conn.woken() => {}
                _ = polled.kick.notified() => {}
                _ = sleep_until(hold_until) => {
                    append_packet(&mut body, "6");
                    return body;
                }
            }
            if gather(&inner, &polled, &mut body) {
                return body;
            }
        }
    };
    held_response(payload)
}

/// Takes what a poll answers with into `body`: the queued packets, the last words and the
/// farewell of an ended session, the noop of an upgrade. Whether the poll is to be answered now.
fn gather(inner: &Arc<Inner>, polled: &Polled, body: &mut Vec<u8>) -> bool {
    let mut batch = Vec::new();
    let closing = polled.conn.drain(&mut batch);
    for frame in batch {
        if !packet::append_polling(body, &frame) {
            tracing::debug!("a frame Engine.IO did not make was left out of a poll");
        }
    }
    let mut state = polled.state.lock();
    if let Some(reason) = closing {
        end_for_core(inner, polled, &mut state, reason);
    }
    // What another task sent may have moved the upper layer's deadline earlier (a socket
    // disconnected from its last namespace starts the connect timeout).
    schedule(inner, polled, &mut state);
    if let Some(words) = state.last_words.take() {
        packet::append_polling(body, &words);
    }
    if let Some(last) = state.farewell.take() {
        append_packet(body, last);
        return true;
    }
    // A probe arrived, or the WebSocket took over: the client is to stop polling.
    if std::mem::take(&mut state.noop_due) || state.phase == Phase::Upgraded {
        append_packet(body, "6");
    }
    !body.is_empty()
}

/// A 200 polling answer whose payload is still to come: sent chunked once `payload` resolves.
fn held_response(payload: impl Future<Output = Vec<u8>> + Send + 'static) -> Response {
    let frames = futures_util::stream::once(async move { Ok::<_, Infallible>(payload.await) });
    let mut response = (StatusCode::OK, Body::from_stream(frames)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
    response
}

fn append_packet(body: &mut Vec<u8>, packet: &str) {
    if !body.is_empty() {
        body.push(packet::SEPARATOR);
    }
    body.extend_from_slice(packet.as_bytes());
}

/// A POST: the body's packets, in order, to the session → `ok`.
pub(crate) async fn post(inner: &Arc<Inner>, polled: Arc<Polled>, headers: &HeaderMap, body: Body) -> Response {
    {
        let mut state = polled.state.lock();
        if !matches!(state.phase, Phase::Polling | Phase::Upgrading) {
            return EioError::BadRequest.into_response();
        }
        if state.posting {
            end(inner, &polled, &mut state, CloseReason::TransportClose, "1");
            return EioError::BadRequest.into_response();
        }
        state.posting = true;
    }
    let _busy = Busy { polled: polled.clone(), getting: false };
    let max = inner.options.max_payload;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        let mut state = polled.state.lock();
        end(inner, &polled, &mut state, CloseReason::ParseError, "1");
        StatusCode::PAYLOAD_TOO_LARGE.into_response()
    };
    // Checked before the body is read: a declared size over the cap is refused unread.
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let bytes = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return too_large(),
        Err(_) => {
            // The client went away mid-body.
            let mut state = polled.state.lock();
            end(inner, &polled, &mut state, CloseReason::TransportClose, "1");
            return EioError::BadRequest.into_response();
        }
    };
    let mut state = polled.state.lock();
    let now = Instant::now();
    let mut out = Replies::default();
    let mut ended = None;
    for packet in packet::parse_payload(&bytes) {
        let Some(live) = state.live.as_mut() else {
            // Ended meanwhile (ping timeout, upgrade): nothing to feed.
            return EioError::BadRequest.into_response();
        };
        let result = match packet {
            Err(e) => {
                tracing::debug!(error = %e, "engine.io parse error");
                send(&polled, &mut out);
                end(inner, &polled, &mut state, CloseReason::ParseError, "1");
                return EioError::BadRequest.into_response();
            }
            Ok(Packet::Close) => Err((CloseReason::ClientClose, "6")),
            Ok(packet) => live.on_packet(packet, now, &mut out).map_err(|reason| (reason, "1")),
        };
        if let Err(reason) = result {
            ended = Some(reason);
            break;
        }
    }
    send(&polled, &mut out);
    match ended {
        Some((reason, farewell)) => end(inner, &polled, &mut state, reason, farewell),
        None => schedule(inner, &polled, &mut state),
    }
    ok_response()
}

/// A 200 with a polling body (`text/plain; charset=UTF-8`, as Node).
fn payload_response(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
    response
}

/// The answer to a POST (`ok`, `text/html`, as Node).
fn ok_response() -> Response {
    let mut response = (StatusCode::OK, "ok").into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

/// 503 for a handshake past the polling table's cap.
fn at_capacity() -> Response {
    Refused::AtCapacity.into_response()
}
