//! Keyed token-bucket rate limits (per app, per IP, per account): one implementation for every
//! surface. A refused call says how long to wait, for `Retry-After`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
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

/// Buckets by key; cheap to share behind an `Arc`.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket, which holds `burst` tokens and refills `per_second`.
    /// `Err` carries the wait until a token is available.
    pub fn check(&self, key: &str, per_second: f64, burst: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        let bucket = match buckets.get_mut(key) {
            Some(b) => b,
            None => buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, at: now }),
        };
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second.max(f64::MIN_POSITIVE)))
        }
    }

    /// A per-second limit whose burst is one second's worth; 0 means unlimited. `Err` carries
    /// the wait in whole seconds (at least 1), as `Retry-After` wants it.
    pub fn per_second(&self, key: &str, rate: u32) -> Result<(), u64> {
        if rate == 0 {
            return Ok(());
        }
        self.check(key, f64::from(rate), f64::from(rate)).map_err(|wait| wait.as_secs().max(1))
    }

    /// Forgets buckets that have refilled (called periodically so per-IP keys do not pile up).
    pub fn sweep(&self, older_than: Duration) {
        let now = Instant::now();
        self.buckets.lock().retain(|_, b| now.duration_since(b.at) < older_than);
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
}
