//! Engine.IO v4's heartbeat, as the reference server keeps it: the server sends `2` one
//! `pingInterval` after the handshake (not at once), expects `3` within `pingTimeout`, and
//! schedules the next ping one interval after the pong. Pure timing, shared by both transports:
//! a polling client that stops polling never answers, so it is dropped after
//! `pingInterval + pingTimeout` by the same rule.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    /// When the next ping goes out; `None` while one waits for its pong.
    next_ping: Option<Instant>,
    /// When the ping in flight times out.
    pong_due: Option<Instant>,
}

/// What the heartbeat wants now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    Wait,
    /// Send `2`.
    Ping,
    /// No pong in time: the session is over ("ping timeout").
    Dead,
}

impl Heartbeat {
    pub fn new(now: Instant, interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout, next_ping: Some(now + interval), pong_due: None }
    }

    pub fn deadline(&self) -> Instant {
        match (self.next_ping, self.pong_due) {
            (Some(ping), _) => ping,
            (None, Some(due)) => due,
            // Not reachable (one of the two is always set); a far deadline keeps it harmless.
            (None, None) => Instant::now() + self.interval,
        }
    }

    pub fn tick(&mut self, now: Instant) -> Beat {
        if let Some(due) = self.pong_due
            && now >= due
        {
            return Beat::Dead;
        }
        match self.next_ping {
            Some(at) if now >= at => {
                self.next_ping = None;
                self.pong_due = Some(now + self.timeout);
                Beat::Ping
            }
            _ => Beat::Wait,
        }
    }

    /// The client answered: the next ping one interval from now. A pong nobody asked for
    /// changes nothing (a client cannot postpone pings by sending them).
    pub fn pong(&mut self, now: Instant) {
        if self.pong_due.take().is_some() {
            self.next_ping = Some(now + self.interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_ping_after_one_interval_then_timeout() {
        let t0 = Instant::now();
        let (i, t) = (Duration::from_millis(300), Duration::from_millis(200));
        let mut hb = Heartbeat::new(t0, i, t);
        assert_eq!(hb.tick(t0), Beat::Wait, "no ping at once");
        assert_eq!(hb.deadline(), t0 + i);
        assert_eq!(hb.tick(t0 + i), Beat::Ping);
        assert_eq!(hb.deadline(), t0 + i + t);
        assert_eq!(hb.tick(t0 + i + t - Duration::from_millis(1)), Beat::Wait);
        assert_eq!(hb.tick(t0 + i + t), Beat::Dead);
    }

    #[test]
    fn a_pong_schedules_the_next_ping() {
        let t0 = Instant::now();
        let (i, t) = (Duration::from_millis(300), Duration::from_millis(200));
        let mut hb = Heartbeat::new(t0, i, t);
        hb.pong(t0 + Duration::from_millis(10));
        assert_eq!(hb.deadline(), t0 + i, "an unasked pong does not move the ping");
        assert_eq!(hb.tick(t0 + i), Beat::Ping);
        let answered = t0 + i + Duration::from_millis(50);
        hb.pong(answered);
        assert_eq!(hb.deadline(), answered + i);
        assert_eq!(hb.tick(answered + i + t), Beat::Ping, "the next ping, not a timeout");
    }
}
