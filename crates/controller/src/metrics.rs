//! What the controller measures about itself: reconciles, failures and how long they take.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets of workflow and step durations, in seconds: from a tenth of a second (a message) to
/// twelve hours (an approval that waited overnight).
const DURATION_BUCKETS: [f64; 15] = [
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0,
    43200.0,
];

type Labels = Vec<(String, String)>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The Prometheus side: durations of finished workflow steps (by type and phase) and of
/// finished workflows (by phase).
pub(crate) struct Durations {
    registry: Registry,
    steps: Family<Labels, Histogram, fn() -> Histogram>,
    workflows: Family<Labels, Histogram, fn() -> Histogram>,
}

impl std::fmt::Debug for Durations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Durations")
    }
}

impl Default for Durations {
    fn default() -> Durations {
        let mut registry = Registry::with_prefix("sailplane");
        let steps: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let workflows: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "workflow_step_duration_seconds",
            "Time from a workflow step's first run to its end, by step type and phase",
            steps.clone(),
        );
        registry.register(
            "workflow_duration_seconds",
            "Time from a workflow's start to its end, by phase",
            workflows.clone(),
        );
        Durations {
            registry,
            steps,
            workflows,
        }
    }
}

/// At most this many latencies are kept between two resets.
const MAX_SAMPLES: usize = 1_000_000;

/// Reconcile counters and latencies, shared with whoever asked for them
/// ([`crate::Controller::metrics`]).
#[derive(Debug, Default)]
pub struct Metrics {
    reconciles: AtomicU64,
    errors: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    durations: Durations,
}

impl Metrics {
    /// A workflow step ended (`phase`: succeeded, failed, skipped) after `seconds`.
    pub(crate) fn step_finished(&self, type_: &str, phase: &str, seconds: f64) {
        self.durations
            .steps
            .get_or_create(&vec![
                ("type".to_string(), type_.to_string()),
                ("phase".to_string(), phase.to_string()),
            ])
            .observe(seconds.max(0.0));
    }

    /// A workflow ended (`phase`: succeeded, failed, terminated) after `seconds`.
    pub(crate) fn workflow_finished(&self, phase: &str, seconds: f64) {
        self.durations
            .workflows
            .get_or_create(&vec![("phase".to_string(), phase.to_string())])
            .observe(seconds.max(0.0));
    }

    /// Everything in the Prometheus text format, for `/metrics`.
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.durations.registry).is_err() {
            out.clear();
        }
        out
    }

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

    #[test]
    fn durations_in_prometheus_text() {
        let m = Metrics::default();
        m.step_finished("deploy", "succeeded", 42.0);
        m.step_finished("suspend", "succeeded", 5400.0);
        m.workflow_finished("succeeded", 5500.0);
        let text = m.prometheus_text();
        assert!(
            text.contains(
                "sailplane_workflow_step_duration_seconds_count{type=\"deploy\",phase=\"succeeded\"} 1"
            ),
            "{text}"
        );
        // An approval that took an hour and a half falls in the two-hour bucket, not +Inf.
        assert!(
            text.contains(
                "sailplane_workflow_step_duration_seconds_bucket{le=\"7200.0\",type=\"suspend\",phase=\"succeeded\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("sailplane_workflow_duration_seconds_sum{phase=\"succeeded\"} 5500.0"),
            "{text}"
        );
    }
}
