//! Engine.IO over WebSocket, on the shared loop (`transport::ws::run`): one packet per message,
//! the session's frames written by the core's flush queues like every other socket's. Direct
//! sessions send the open packet first; upgrading ones answer the probe on the new socket, have
//! the pending poll answered with `6`, and take the session over at `5`.

use std::borrow::Cow;
use std::sync::{Arc, Weak};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::time::{Instant, timeout_at};

use super::packet::{self, Packet};
use super::session::Live;
use super::state::Inner;
use super::table::{Phase, Polled};
use super::{CloseReason, ConnHandle, Disconnect, EioError, Replies};
use crate::transport::ws::{self, Closing, Flow, Probe, Socket, WsUpgrade};

/// A session on its WebSocket.
struct EioSocket {
    live: Live,
    conn: ConnHandle,
    /// The open packet, for a direct session's first message.
    open: Option<String>,
    /// Why the session ends, once known.
    end: Option<CloseReason>,
    /// An upgraded session's entry in the polling table, dropped when the socket ends.
    upgraded_from: Option<(Weak<Inner>, Arc<str>)>,
}

impl EioSocket {
    fn replies(out: &mut Replies, into: &mut ws::Replies) {
        for frame in out.take() {
            into.framed(frame);
        }
    }

    fn after(&mut self, result: Result<(), CloseReason>) -> Flow {
        match result {
            Ok(()) => Flow::Continue,
            Err(reason) => {
                self.end = Some(reason);
                Flow::Close(Closing { last_frame: None, code: 1000, reason: "" })
            }
        }
    }

    fn packet(&mut self, packet: Packet<'_>, out: &mut ws::Replies) -> Flow {
        let mut replies = Replies::default();
        let result = self.live.on_packet(packet, Instant::now(), &mut replies);
        Self::replies(&mut replies, out);
        self.after(result)
    }
}

impl ws::Session for EioSocket {
    fn conn(&self) -> &ConnHandle {
        &self.conn
    }

    fn on_open(&mut self, out: &mut ws::Replies) {
        if let Some(open) = self.open.take() {
            out.text(Bytes::from(open));
        }
        let mut replies = Replies::default();
        self.live.upper.on_open(&mut replies);
        Self::replies(&mut replies, out);
    }

    fn on_text(&mut self, text: &str, out: &mut ws::Replies) -> Flow {
        match packet::parse(text, false) {
            Ok(packet) => self.packet(packet, out),
            Err(e) => {
                tracing::debug!(error = %e, "engine.io parse error");
                self.after(Err(CloseReason::ParseError))
            }
        }
    }

    fn on_binary(&mut self, _out: &mut ws::Replies) -> Flow {
        Flow::Continue
    }

    fn on_binary_data(&mut self, data: &[u8], out: &mut ws::Replies) -> Flow {
        self.packet(Packet::Binary(Cow::Borrowed(data)), out)
    }

    fn on_activity(&mut self, _now: Instant) {}

    fn deadline(&self) -> Instant {
        self.live.deadline()
    }

    fn on_timer(&mut self, now: Instant, out: &mut ws::Replies) -> Flow {
        let mut replies = Replies::default();
        let result = self.live.tick(now, &mut replies);
        Self::replies(&mut replies, out);
        self.after(result)
    }

    fn closing_for(&self, reason: Disconnect) -> Closing {
        let last_frame = self.live.upper.last_words(reason).map(|words| {
            let mut packet = Vec::with_capacity(words.len() + 1);
            packet.push(b'4');
            packet.extend_from_slice(&words);
            Bytes::from(packet)
        });
        let (code, reason) = match reason {
            Disconnect::Shutdown => (1001, "server shutting down"),
            Disconnect::SlowConsumer => (1008, "slow consumer"),
            Disconnect::AppDisabled | Disconnect::Terminated => (1000, ""),
        };
        Closing { last_frame, code, reason }
    }

    fn finish(&mut self) {
        let reason =
            self.end.or_else(|| self.conn.closing().map(CloseReason::Core)).unwrap_or(CloseReason::TransportClose);
        self.live.close(reason);
        if let Some((endpoint, sid)) = self.upgraded_from.take()
            && let Some(inner) = endpoint.upgrade()
        {
            inner.table.remove(&sid);
        }
    }
}

/// A direct WebSocket session: 101, then the open packet and the loop.
pub(crate) fn direct(inner: &Arc<Inner>, ws: WsUpgrade, live: Live, open: String) -> Response {
    let shutdown = inner.shutdown.clone();
    let conn = live.upper.conn().clone();
    ws.max_message_size(inner.options.max_payload).on_upgrade(move |socket| async move {
        let session = EioSocket { live, conn, open: Some(open), end: None, upgraded_from: None };
        ws::run(socket, session, shutdown).await;
    })
}

/// An upgrade attempt that did not finish puts the session back to plain polling, so the
/// client may try again.
struct Attempt {
    polled: Arc<Polled>,
    done: bool,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.polled.state.lock();
            if state.phase == Phase::Upgrading {
                state.phase = Phase::Polling;
            }
        }
    }
}

/// `transport=websocket&sid=…`: an upgrade of a polling session (one at a time, once).
pub(crate) fn upgrade(inner: &Arc<Inner>, polled: Arc<Polled>, ws: WsUpgrade) -> Response {
    {
        let mut state = polled.state.lock();
        match state.phase {
            Phase::Polling => state.phase = Phase::Upgrading,
            // As Node: the second socket is accepted, then closed at once.
            Phase::Upgrading | Phase::Upgraded => {
                return ws.on_upgrade(|socket| {
                    ws::refuse(socket, Closing { last_frame: None, code: 1008, reason: "session already upgrading" })
                });
            }
            Phase::Ended => return EioError::UnknownSid.into_response(),
        }
    }
    let attempt = Attempt { polled, done: false };
    let endpoint = Arc::downgrade(inner);
    let deadline = Instant::now() + inner.options.upgrade_timeout;
    let shutdown = inner.shutdown.clone();
    ws.max_message_size(inner.options.max_payload)
        .on_upgrade(move |socket| probe(socket, attempt, endpoint, deadline, shutdown))
}

/// The probe: `2probe` → `3probe` (and `6` for the pending poll), then `5` hands the session to
/// this socket. Anything else, or nothing before the deadline, abandons the upgrade.
async fn probe(
    mut socket: Socket,
    mut attempt: Attempt,
    endpoint: Weak<Inner>,
    deadline: Instant,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let text = match timeout_at(deadline, socket.recv_direct()).await {
            Ok(Probe::Text(text)) => text,
            _ => return,
        };
        match text.as_str() {
            "2probe" => {
                if !socket.write_direct(&packet::control_frame("3probe")).await {
                    return;
                }
                let polled = &attempt.polled;
                polled.state.lock().noop_due = true;
                polled.kick.notify_one();
            }
            "5" => break,
            _ => return,
        }
    }
    let polled = attempt.polled.clone();
    let live = {
        let mut state = polled.state.lock();
        if state.phase != Phase::Upgrading {
            return;
        }
        let Some(live) = state.live.take() else { return };
        state.phase = Phase::Upgraded;
        state.noop_due = false;
        // The socket's own TCP connection counts from now on.
        state.slot = None;
        live
    };
    attempt.done = true;
    // A poll still pending ends with a noop: the client paused polling for the upgrade.
    polled.kick.notify_one();
    let session = EioSocket {
        live,
        conn: polled.conn.clone(),
        open: None,
        end: None,
        upgraded_from: Some((endpoint, polled.sid.clone())),
    };
    ws::run(socket, session, shutdown).await;
}
