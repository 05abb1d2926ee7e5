//! What the controller measures about itself: reconciles, failures and how long they take.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// At most this many latencies are kept between two resets.
const MAX_SAMPLES: usize = 1_000_000;

/// Reconcile counters and latencies, shared with whoever asked for them
/// ([`crate::Controller::metrics`]).
#[derive(Debug, Default)]
pub struct Metrics {
    reconciles: AtomicU64,
    errors: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

impl Metrics {
    pub(crate) fn record(&self, took: Duration, ok: bool) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let mut l = self.latencies_us.lock().unwrap_or_else(|p| p.into_inner());
        if l.len() < MAX_SAMPLES {
            l.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// Reconciles finished since the start (or the last reset).
    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }

    /// Reconciles that ended in an error.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The `q` quantile (0.5 for the median, 0.99) of reconcile latency; `None` before any.
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        let mut l = self
            .latencies_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if l.is_empty() {
            return None;
        }
        l.sort_unstable();
        let q = q.clamp(0.0, 1.0);
        let i = ((l.len() - 1) as f64 * q).round() as usize;
        l.get(i).map(|us| Duration::from_micros(*us))
    }

    /// Start counting again.
    pub fn reset(&self) {
        self.reconciles.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.latencies_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let m = Metrics::default();
        assert_eq!(m.latency_quantile(0.5), None);
        for ms in 1..=100 {
            m.record(Duration::from_millis(ms), ms != 7);
        }
        assert_eq!(m.reconciles(), 100);
        assert_eq!(m.errors(), 1);
        assert_eq!(m.latency_quantile(0.5), Some(Duration::from_millis(51)));
        assert_eq!(m.latency_quantile(0.99), Some(Duration::from_millis(99)));
        m.reset();
        assert_eq!(m.reconciles(), 0);
    }
}
