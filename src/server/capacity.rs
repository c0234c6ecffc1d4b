//! Descriptors are a budget (SPEC §10). At start the soft `RLIMIT_NOFILE` is raised to the hard
//! limit (as Go's runtime does for Centrifugo); the connection capacity is that limit less a
//! reserve for what the process itself opens (the database pool, files) and for `/health`. At
//! capacity a new connection is still accepted, into a small overflow that answers `/health`
//! and `/metrics` and gives everything else 503 at once; each refusal is counted in `/metrics`
//! and warned about at most once a second, with a count. Capacity comes back as connections
//! close: nothing has to be restarted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics;
use crate::ratelimit::LogThrottle;

/// Descriptors kept back beyond those open at start: database connections opened later, files,
/// the overflow below, and slack.
const RESERVE: u64 = 64;
/// Connections over capacity served at once (to answer `/health` and say 503).
const OVERFLOW: u64 = 16;

/// Open connections against the budget.
pub struct Capacity {
    max: u64,
    open: AtomicU64,
    overflow: AtomicU64,
    warn: LogThrottle,
}

/// Whether a new connection fits.
pub enum Admission {
    /// Served normally.
    Admitted(Slot),
    /// Over capacity: answers `/health` and `/metrics`, 503 to the rest, then closes.
    Overflow(Slot),
    /// Not even the overflow has room: closed at once.
    Refused,
}

/// One counted connection; dropping it gives the descriptor back.
pub struct Slot {
    capacity: Arc<Capacity>,
    overflow: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let counter = if self.overflow { &self.capacity.overflow } else { &self.capacity.open };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Capacity {
    /// Raises the descriptor limit, works out the capacity and says what it is. `configured` is
    /// `server.max_connections` (0: as many as descriptors allow).
    pub fn at_start(configured: u64) -> Arc<Self> {
        let limit = raise_nofile_limit();
        let open_now = open_descriptors();
        let by_descriptors = limit.map(|l| l.saturating_sub(open_now + RESERVE + OVERFLOW).max(1));
        let max = match (configured, by_descriptors) {
            (0, Some(fit)) => fit,
            (0, None) => u64::MAX,
            (want, Some(fit)) if want > fit => {
                tracing::warn!(
                    max_connections = want,
                    capacity = fit,
                    descriptor_limit = limit,
                    "server.max_connections is above what the descriptor limit allows; raise it (ulimit -n, \
                     LimitNOFILE=) or the server refuses connections past {fit}"
                );
                fit
            }
            (want, _) => want,
        };
        match limit {
            Some(limit) => tracing::info!(capacity = max, descriptor_limit = limit, "connection capacity: {max}"),
            None => tracing::info!(capacity = max, "connection capacity: {max}"),
        }
        Self::with_max(max)
    }

    /// A budget of exactly `max` connections (tests).
    pub fn with_max(max: u64) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: AtomicU64::new(0),
            overflow: AtomicU64::new(0),
            warn: LogThrottle::new(Duration::from_secs(1)),
        })
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Counts a connection just accepted.
    pub fn admit(self: &Arc<Self>) -> Admission {
        if take(&self.open, self.max) {
            return Admission::Admitted(Slot { capacity: self.clone(), overflow: false });
        }
        self.refused();
        if take(&self.overflow, OVERFLOW) {
            Admission::Overflow(Slot { capacity: self.clone(), overflow: true })
        } else {
            Admission::Refused
        }
    }

    /// Records a connection refused for lack of descriptors (also when `accept` itself failed).
    pub fn refused(&self) {
        metrics::connection_refused("capacity");
        if let Some(held_back) = self.warn.allow() {
            tracing::warn!(
                capacity = self.max,
                refused_since_last_warning = held_back + 1,
                "at connection capacity: refusing new connections"
            );
        }
    }
}

/// Increments `counter` unless it is at `max`.
fn take(counter: &AtomicU64, max: u64) -> bool {
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
}

/// Raises the soft descriptor limit to the hard one; the soft limit in force after, if known.
fn raise_nofile_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

/// Descriptors open now (Linux; elsewhere a guess).
fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(32, |dir| dir.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_overflow_and_recovery() {
        let capacity = Capacity::with_max(2);
        let a = capacity.admit();
        let b = capacity.admit();
        assert!(matches!(a, Admission::Admitted(_)) && matches!(b, Admission::Admitted(_)));
        let overflow: Vec<_> = (0..OVERFLOW).map(|_| capacity.admit()).collect();
        assert!(overflow.iter().all(|o| matches!(o, Admission::Overflow(_))));
        assert!(matches!(capacity.admit(), Admission::Refused), "the overflow is bounded too");
        drop(a);
        assert!(matches!(capacity.admit(), Admission::Admitted(_)), "a closed connection frees its slot");
        drop(overflow);
        assert_eq!(capacity.overflow.load(Ordering::Acquire), 0);
    }
}
