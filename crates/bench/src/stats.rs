//! Latency samples and their percentiles, and the seeded key generator.

use std::time::Duration;

/// Latency samples kept in memory at most (8 bytes each).
pub const SAMPLES_MAX: usize = 20_000_000;

/// Latencies in nanoseconds, in the order they were taken.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    nanos: Vec<u64>,
}

impl Latencies {
    /// Adds one sample; returns false (and keeps nothing) once [`SAMPLES_MAX`] are held.
    pub fn push(&mut self, d: Duration) -> bool {
        if self.nanos.len() >= SAMPLES_MAX {
            return false;
        }
        self.nanos.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        true
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// The `q`-quantile (0 < q <= 1) by nearest rank, in milliseconds; None without samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        assert!(q > 0.0 && q <= 1.0, "quantile {q} out of (0, 1]");
        if self.nanos.is_empty() {
            return None;
        }
        let mut sorted = self.nanos.clone();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Some(sorted[rank - 1] as f64 / 1e6)
    }
}

/// xorshift64: the same seed gives both databases the same keys in the same order.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> XorShift {
        assert!(seed != 0, "xorshift needs a non-zero seed");
        XorShift(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in 1..=n.
    pub fn key(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile_ms(0.5), None);
        for ms in 1..=100 {
            l.push(Duration::from_millis(ms));
        }
        assert_eq!(l.quantile_ms(0.5), Some(50.0));
        assert_eq!(l.quantile_ms(0.99), Some(99.0));
        assert_eq!(l.quantile_ms(1.0), Some(100.0));
    }

    #[test]
    fn keys_stay_in_range_and_repeat_by_seed() {
        let (mut a, mut b) = (XorShift::new(7), XorShift::new(7));
        for _ in 0..1000 {
            let k = a.key(10);
            assert!((1..=10).contains(&k));
            assert_eq!(k, b.key(10));
        }
    }
}
