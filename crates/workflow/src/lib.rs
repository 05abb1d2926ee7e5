//! The workflow engine.
//!
//! A workflow is a list of steps run StepByStep or as a DAG. The engine is a state machine over
//! the Application's `status.workflow`: [`Engine::advance`] looks at the status, runs every step
//! that is ready (one in StepByStep mode, all whose dependencies succeeded in DAG mode) through a
//! [`StepRunner`], records the outcomes in the status and returns. The caller writes the status
//! before it calls `advance` again, so a step's outcome is stored before the next step starts and
//! a restarted controller resumes where the status says it stopped.
//!
//! The engine knows nothing of clusters or CUE: what a step *does* is the runner's business.

mod engine;
mod plan;
pub mod schedule;
pub mod task;

pub use engine::{
    Engine, MAX_RETRIES, Progress, RETRYABLE, Retries, StepOutcome, StepRunner, backoff,
    evaluate_if, run_start, wait_backoff,
};
pub use plan::{Plan, PlannedStep, plan};

/// A Go-style duration as workflows write them: `30s`, `10m`, `1h30m`, `500ms`, `2h`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = std::time::Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => std::time::Duration::from_millis(n),
            "s" => std::time::Duration::from_secs(n),
            "m" | "min" => std::time::Duration::from_secs(n.checked_mul(60)?),
            "h" => std::time::Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
    }
    Some(total)
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration as d;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(d("30s"), Some(Duration::from_secs(30)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("2min"), Some(Duration::from_secs(120)));
        for bad in ["", "soon", "10", "m5", "5x"] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
    }
}
