//! Keyed token-bucket rate limits (per app, per IP, per account): one implementation for every
//! surface. A refused call says how long to wait, for `Retry-After`.
//!
//! Keys come from strangers (addresses, login names), so a [`RateLimiter`] is bounded by
//! construction, as nginx's `limit_req` zones are: a key is stored as a 64-bit keyed hash (a
//! 2 MB login name costs 8 bytes), at most `capacity` buckets are kept (the least recently used
//! are evicted when it is full), and [`RateLimiter::sweep`] forgets buckets that have refilled,
//! since a full bucket is the same as none.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The key a client address is limited under: an IPv4 address as it is, an IPv6 address by its
/// /64, since one end site holds a whole /64 and would otherwise have 2^64 fresh buckets.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

/// Whole seconds to put in `Retry-After` for a wait: rounded up, at least 1, so a client that
/// waits that long finds a token.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// Buckets one limiter keeps by default: 64 Ki entries of ~48 bytes, about 3 MB at most.
pub const DEFAULT_CAPACITY: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f32,
    per_second: f32,
    burst: f32,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f32();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.at = now;
    }

    fn is_full(&self, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f32() * self.per_second >= self.burst
    }

    fn wait(&self) -> Duration {
        Duration::from_secs_f32(((1.0 - self.tokens) / self.per_second.max(f32::MIN_POSITIVE)).clamp(0.0, 86_400.0))
    }
}

/// One connection's bucket (client events): owned by its task, no lock.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f32,
    at: tokio::time::Instant,
}

impl TokenBucket {
    /// A full bucket for `per_second`.
    pub fn full(per_second: u32) -> Self {
        Self { tokens: per_second as f32, at: tokio::time::Instant::now() }
    }

    /// Takes a token if there is one; the bucket holds `per_second` tokens (at least one) and
    /// refills that many a second.
    pub fn take(&mut self, per_second: u32) -> bool {
        let rate = per_second as f32;
        let now = tokio::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f32() * rate).min(rate.max(1.0));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Buckets by key, bounded in entries and bytes; cheap to share behind an `Arc`.
pub struct RateLimiter {
    /// Keyed per process, so nobody can aim keys at one bucket.
    hasher: RandomState,
    capacity: usize,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl RateLimiter {
    /// A limiter that keeps at most `capacity` buckets (at least 16).
    pub fn new(capacity: usize) -> Self {
        Self { hasher: RandomState::new(), capacity: capacity.max(16), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token from `key`'s bucket, which holds `burst` tokens and refills `per_second`.
    /// `Err` carries the wait until a token is available.
    pub fn check<K: Hash + ?Sized>(&self, key: &K, per_second: f64, burst: f64) -> Result<(), Duration> {
        self.with_bucket(key, per_second, burst, |b| {
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                Ok(())
            } else {
                Err(b.wait())
            }
        })
    }

    /// Drops `key`'s bucket (a success that resets a failure count).
    pub fn forget<K: Hash + ?Sized>(&self, key: &K) {
        let id = self.hasher.hash_one(key);
        self.buckets.lock().remove(&id);
    }

    /// A per-second limit whose burst is one second's worth; 0 means unlimited. `Err` carries
    /// the wait in whole seconds (at least 1), as `Retry-After` wants it.
    pub fn per_second<K: Hash + ?Sized>(&self, key: &K, rate: u32) -> Result<(), u64> {
        if rate == 0 {
            return Ok(());
        }
        self.check(key, f64::from(rate), f64::from(rate)).map_err(retry_after_secs)
    }

    /// Forgets buckets that have refilled (called periodically, so keys do not pile up).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.buckets.lock().retain(|_, b| !b.is_full(now));
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.buckets.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with_bucket<K: Hash + ?Sized, T>(
        &self,
        key: &K,
        per_second: f64,
        burst: f64,
        f: impl FnOnce(&mut Bucket) -> T,
    ) -> T {
        let id = self.hasher.hash_one(key);
        let now = Instant::now();
        let (per_second, burst) = (per_second as f32, burst as f32);
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(&id) && buckets.len() >= self.capacity {
            evict(&mut buckets, now, self.capacity);
        }
        let bucket = buckets.entry(id).or_insert(Bucket { tokens: burst, per_second, burst, at: now });
        // Limits are per call (an app's API rate can change); the bucket follows them.
        bucket.per_second = per_second;
        bucket.burst = burst;
        bucket.refill(now);
        f(bucket)
    }
}

/// Makes room: refilled buckets go first; if that frees less than a tenth, the least recently
/// used tenth goes too (one sort per tenth of the capacity, so inserts stay cheap on average).
fn evict(buckets: &mut HashMap<u64, Bucket>, now: Instant, capacity: usize) {
    buckets.retain(|_, b| !b.is_full(now));
    let target = capacity - capacity / 10;
    if buckets.len() <= target {
        return;
    }
    let mut ages: Vec<(Instant, u64)> = buckets.iter().map(|(k, b)| (b.at, *k)).collect();
    let excess = buckets.len() - target;
    ages.select_nth_unstable(excess - 1);
    for (_, key) in &ages[..excess] {
        buckets.remove(key);
    }
}

/// Lets a repeated log line through at most once per interval and counts what it held back, so
/// a flood of refusals costs one line a second, not one per refusal.
pub struct LogThrottle {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogThrottle {
    pub const fn new(every: Duration) -> Self {
        Self { every, state: Mutex::new((None, 0)) }
    }

    /// `Some(held back since the last line)` when a line may be written now.
    pub fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.state.lock();
        match state.0 {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                let held = std::mem::take(&mut state.1);
                state.0 = Some(now);
                Some(held)
            }
        }
    }
}

/// Lets one caller through at most once per period: chores that ride on requests (deleting
/// expired tokens while new ones are issued) run once, not once per concurrent request.
pub struct OncePer {
    period_ms: i64,
    /// When a caller was last let through, in ms since the epoch.
    last: AtomicI64,
}

impl OncePer {
    pub const fn new(period: Duration) -> Self {
        Self { period_ms: period.as_millis() as i64, last: AtomicI64::new(i64::MIN) }
    }

    /// Whether the caller at `now_ms` (ms since the epoch) is the one to run the chore: the
    /// period since the last run is over, and no concurrent caller took the turn first.
    pub fn claim(&self, now_ms: i64) -> bool {
        let last = self.last.load(Ordering::Acquire);
        now_ms.saturating_sub(last) >= self.period_ms
            && self.last.compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_wait() {
        let l = RateLimiter::default();
        assert!(l.check("a", 1.0, 2.0).is_ok());
        assert!(l.check("a", 1.0, 2.0).is_ok());
        let wait = l.check("a", 1.0, 2.0).unwrap_err();
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1));
        assert!(l.check("b", 1.0, 2.0).is_ok(), "keys are independent");
    }

    #[test]
    fn entries_are_capped_and_the_least_recently_used_go_first() {
        let l = RateLimiter::new(100);
        // A key that is in use (and empty: it is limiting someone) stays through the churn.
        for _ in 0..5 {
            let _ = l.check("busy", 0.001, 5.0);
        }
        for i in 0..10_000 {
            assert!(l.check(&format!("stranger-{i}"), 0.001, 5.0).is_ok());
            let _ = l.check("busy", 0.001, 5.0);
            assert!(l.len() <= 100, "{} buckets", l.len());
        }
        assert!(l.check("busy", 0.001, 5.0).is_err(), "the busy key kept its empty bucket");
    }

    #[test]
    fn long_keys_cost_no_more_than_short_ones() {
        let l = RateLimiter::new(16);
        let huge = "x".repeat(2 * 1024 * 1024);
        assert!(l.check(huge.as_str(), 1.0, 1.0).is_ok());
        assert!(l.check(huge.as_str(), 1.0, 1.0).is_err(), "the same long key is the same bucket");
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn sweep_forgets_refilled_buckets_only() {
        let l = RateLimiter::default();
        l.check("fast", 1_000_000.0, 1.0).unwrap();
        l.check("slow", 0.001, 1.0).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        l.sweep();
        assert_eq!(l.len(), 1, "the refilled bucket is gone, the empty one stays");
        assert!(l.check("slow", 0.001, 1.0).is_err());
    }

    #[test]
    fn forget_resets() {
        let l = RateLimiter::default();
        assert!(l.check("k", 0.001, 1.0).is_ok());
        assert!(l.check("k", 0.001, 1.0).is_err());
        l.forget("k");
        assert!(l.check("k", 0.001, 1.0).is_ok());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        assert_eq!(address_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(address_key("10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(retry_after_secs(Duration::from_millis(1900)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn per_second_rounds_the_wait_up_to_whole_seconds() {
        let l = RateLimiter::default();
        assert!(l.per_second("k", 1).is_ok());
        assert_eq!(l.per_second("k", 1), Err(1));
        assert_eq!(l.per_second("k", 0), Ok(()), "0 is unlimited");
    }

    #[test]
    fn log_throttle_counts_what_it_held_back() {
        let t = LogThrottle::new(Duration::from_secs(3600));
        assert_eq!(t.allow(), Some(0));
        assert_eq!(t.allow(), None);
        assert_eq!(t.allow(), None);
        let t = LogThrottle::new(Duration::ZERO);
        assert_eq!(t.allow(), Some(0));
        assert_eq!(t.allow(), Some(0));
    }

    #[test]
    fn once_per_lets_one_caller_through_per_period() {
        let chore = OncePer::new(Duration::from_secs(60));
        assert!(chore.claim(1_000), "the first call runs it");
        assert!(!chore.claim(1_000), "the same instant: already taken");
        assert!(!chore.claim(60_999), "within the period");
        assert!(chore.claim(61_000), "a period later");
        assert!(!chore.claim(0), "a clock that went back waits for the period");
    }
}
