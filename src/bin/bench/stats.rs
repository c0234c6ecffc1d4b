//! A log-linear latency histogram (exact below 256 µs, < 0.8 % error above) and the process clock
//! every timestamp of the tool is read from.

use std::sync::OnceLock;
use std::time::Instant;

use serde_json::{Value, json};

/// Microseconds since the first call (the one clock publishers and receivers share).
pub fn now_us() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_micros() as u64
}

const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
const LINEAR: u64 = 2 * SUB;
const BUCKETS: usize = (LINEAR + (64 - (SUB_BITS as u64 + 1)) * SUB) as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], total: 0, sum: 0, max: 0 }
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - SUB_BITS)) - SUB;
    (LINEAR + u64::from(e - (SUB_BITS + 1)) * SUB + sub) as usize
}

/// The middle of a bucket's range.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let k = i - LINEAR;
    let e = k / SUB + u64::from(SUB_BITS) + 1;
    let width = 1u64 << (e - u64::from(SUB_BITS));
    ((SUB + k % SUB) << (e - u64::from(SUB_BITS))) + width / 2
}

impl Histogram {
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest sample (exact, not a bucket's middle).
    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.sum = 0;
        self.max = 0;
    }

    /// The value under which a share `q` (0..=1) of the samples lie.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(i).min(self.max);
            }
        }
        self.max
    }

    /// p50/p90/p99/p99.9/max/mean in milliseconds (samples are microseconds).
    pub fn to_json_ms(&self) -> Value {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        let mean = if self.total == 0 { 0.0 } else { self.sum as f64 / self.total as f64 / 1000.0 };
        json!({
            "samples": self.total,
            "p50": ms(self.quantile(0.50)),
            "p90": ms(self.quantile(0.90)),
            "p99": ms(self.quantile(0.99)),
            "p999": ms(self.quantile(0.999)),
            "max": ms(self.max),
            "mean": (mean * 1000.0).round() / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for v in (0..2_000_000u64).step_by(7) {
            let i = index(v);
            assert!(i >= last);
            last = i;
            let back = value_of(i);
            assert!(back.abs_diff(v) as f64 <= (v as f64 * 0.008).max(0.0), "{v} -> {back}");
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        assert!(h.quantile(0.5).abs_diff(500) <= 2);
        assert_eq!(h.quantile(0.1), 100);
        assert!(h.quantile(0.99).abs_diff(990) <= 8);
        assert_eq!(h.quantile(1.0), 1000);
    }
}
