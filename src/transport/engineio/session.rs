//! One Engine.IO session's state, whatever its transport: the upper protocol's session and the
//! heartbeat, and what each client packet and each timer tick does to them. The transports
//! (polling, WebSocket) only move packets in and frames out.

use tokio::time::Instant;

use super::heartbeat::{Beat, Heartbeat};
use super::packet::{self, Packet};
use super::{CloseReason, Flow, Message, Options, Replies, Session};

pub(crate) struct Live {
    pub upper: Box<dyn Session>,
    pub heartbeat: Heartbeat,
    /// `on_close` ran.
    closed: bool,
}

impl Live {
    pub fn new(upper: Box<dyn Session>, options: &Options, now: Instant) -> Self {
        Self { upper, heartbeat: Heartbeat::new(now, options.ping_interval, options.ping_timeout), closed: false }
    }

    /// Handles one client packet; `Err` ends the session for that reason. `Upgrade` is only
    /// meaningful on an upgrading WebSocket (handled there), and is ignored here, as Node does.
    pub fn on_packet(&mut self, packet: Packet<'_>, now: Instant, out: &mut Replies) -> Result<(), CloseReason> {
        let flow = match packet {
            Packet::Close => return Err(CloseReason::ClientClose),
            // In v4 the server pings; a client's ping is an error ("invalid heartbeat
            // direction" in Node's server), which ends the session rather than have a POST of
            // pings turn into as many pongs. An upgrade's `2probe` never comes here.
            Packet::Ping(_) => return Err(CloseReason::ParseError),
            Packet::Pong(_) => {
                self.heartbeat.pong(now);
                Flow::Continue
            }
            Packet::Message(text) => self.upper.on_message(Message::Text(text), out),
            Packet::Binary(data) => self.upper.on_message(Message::Binary(&data), out),
            Packet::Upgrade | Packet::Noop => Flow::Continue,
        };
        match flow {
            Flow::Continue => Ok(()),
            Flow::Close => Err(CloseReason::ServerClose),
        }
    }

    /// When [`Live::tick`] should run next.
    pub fn deadline(&self) -> Instant {
        let beat = self.heartbeat.deadline();
        self.upper.deadline().map_or(beat, |upper| upper.min(beat))
    }

    /// Runs what is due: a ping, a ping timeout, the upper layer's timer.
    pub fn tick(&mut self, now: Instant, out: &mut Replies) -> Result<(), CloseReason> {
        match self.heartbeat.tick(now) {
            Beat::Dead => return Err(CloseReason::PingTimeout),
            Beat::Ping => out.frame(packet::control_frame("2")),
            Beat::Wait => {}
        }
        if self.upper.deadline().is_some_and(|at| at <= now) && self.upper.on_timer(now, out) == Flow::Close {
            return Err(CloseReason::ServerClose);
        }
        Ok(())
    }

    /// Ends the upper session (once).
    pub fn close(&mut self, reason: CloseReason) {
        if !std::mem::replace(&mut self.closed, true) {
            self.upper.on_close(reason);
        }
    }
}

impl Drop for Live {
    /// A session dropped without an explicit end (its task was cancelled) still leaves
    /// everything it joined.
    fn drop(&mut self) {
        self.close(CloseReason::TransportClose);
    }
}
