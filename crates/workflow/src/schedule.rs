//! Scheduled restarts of a workflow: the `app.oam.dev/restart-workflow` annotation (written by
//! the user or by the `restart-workflow` step) and `status.workflowRestartScheduledAt`, as
//! KubeVela has them.
//!
//! - `true`: restart now, once; an RFC 3339 time: restart at that time, once. The controller
//!   moves the time into the status and removes the annotation.
//! - a duration (`30s`, `5m`, `24h`): restart that long after each run finished; the annotation
//!   stays and the next time is worked out again after every run.
//!
//! A restart happens only once the time has come, the workflow has finished (succeeded, failed
//! or terminated), and the time is after the end of the last run: a one-off time already past
//! when a run ended is spent, not a loop.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use oam::WorkflowStatus;

/// What the annotation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// Once, at this time (`true` is now).
    Once(Timestamp),
    /// Every this long after a run finished.
    Every(std::time::Duration),
}

impl Restart {
    /// Read the annotation's value; the error says what was expected.
    pub fn parse(value: &str, now: Timestamp) -> Result<Restart, String> {
        let v = value.trim();
        if v == "true" {
            return Ok(Restart::Once(now));
        }
        if let Ok(t) = v.parse::<Timestamp>() {
            return Ok(Restart::Once(t));
        }
        match crate::parse_duration(v) {
            Some(d) if !d.is_zero() => Ok(Restart::Every(d)),
            _ => Err(format!(
                "app.oam.dev/restart-workflow is {value:?}; expected \"true\", an RFC 3339 time (2025-01-15T14:30:00Z) or a duration (30s, 5m, 24h)"
            )),
        }
    }

    /// Whether the annotation is spent once its time is in the status.
    pub fn once(&self) -> bool {
        matches!(self, Restart::Once(_))
    }

    /// When the workflow is to restart: the time itself, or the interval after the end of the
    /// last finished run (after now while it runs or has never finished).
    pub fn due_at(&self, wf: Option<&WorkflowStatus>, now: Timestamp) -> Timestamp {
        match self {
            Restart::Once(t) => *t,
            Restart::Every(d) => {
                let base = wf
                    .filter(|w| w.finished)
                    .and_then(|w| w.end_time.as_ref())
                    .map(|t| t.0)
                    .unwrap_or(now);
                base.checked_add(SignedDuration::try_from(*d).unwrap_or(SignedDuration::MAX))
                    .unwrap_or(Timestamp::MAX)
            }
        }
    }
}

/// What to do about a scheduled restart at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Restart the workflow now (and clear the schedule).
    Now,
    /// Not yet: look again in this long.
    Later(std::time::Duration),
    /// The workflow is still running: look again when it finishes.
    AfterRun,
    /// The time is not after the end of the last run: spent (clear the schedule).
    Spent,
}

/// Whether the restart scheduled at `at` is due.
pub fn due(at: &Time, wf: Option<&WorkflowStatus>, now: Timestamp) -> Due {
    if now < at.0 {
        let wait = now.duration_until(at.0);
        return Due::Later(std::time::Duration::try_from(wait).unwrap_or_default());
    }
    let Some(wf) = wf.filter(|w| w.finished) else {
        return Due::AfterRun;
    };
    match &wf.end_time {
        Some(end) if at.0 <= end.0 => Due::Spent,
        _ => Due::Now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn finished_at(end: &str) -> WorkflowStatus {
        WorkflowStatus {
            finished: true,
            end_time: Some(Time(ts(end))),
            ..WorkflowStatus::default()
        }
    }

    #[test]
    fn the_three_forms_and_bad_ones() {
        let now = ts("2026-01-01T00:00:00Z");
        assert_eq!(Restart::parse("true", now), Ok(Restart::Once(now)));
        assert_eq!(
            Restart::parse("2026-02-01T10:00:00Z", now),
            Ok(Restart::Once(ts("2026-02-01T10:00:00Z")))
        );
        assert_eq!(
            Restart::parse("24h", now),
            Ok(Restart::Every(std::time::Duration::from_secs(86400)))
        );
        for bad in ["", "soon", "0s", "yes", "2026-13-01"] {
            let e = Restart::parse(bad, now).unwrap_err();
            assert!(e.contains("expected"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn every_counts_from_the_end_of_the_last_run() {
        let now = ts("2026-01-01T00:10:00Z");
        let every = Restart::Every(std::time::Duration::from_secs(300));
        let wf = finished_at("2026-01-01T00:08:00Z");
        assert_eq!(every.due_at(Some(&wf), now), ts("2026-01-01T00:13:00Z"));
        // Still running: from now.
        let running = WorkflowStatus::default();
        assert_eq!(
            every.due_at(Some(&running), now),
            ts("2026-01-01T00:15:00Z")
        );
        assert!(!every.once());
        assert!(Restart::Once(now).once());
    }

    #[test]
    fn due_only_after_the_time_and_a_finished_run_that_ended_before_it() {
        let at = Time(ts("2026-01-01T00:10:00Z"));
        let ended_before = finished_at("2026-01-01T00:05:00Z");
        assert_eq!(
            due(&at, Some(&ended_before), ts("2026-01-01T00:09:30Z")),
            Due::Later(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            due(&at, Some(&ended_before), ts("2026-01-01T00:10:00Z")),
            Due::Now
        );
        let running = WorkflowStatus::default();
        assert_eq!(
            due(&at, Some(&running), ts("2026-01-01T00:11:00Z")),
            Due::AfterRun
        );
        assert_eq!(due(&at, None, ts("2026-01-01T00:11:00Z")), Due::AfterRun);
        let ended_after = finished_at("2026-01-01T00:10:30Z");
        assert_eq!(
            due(&at, Some(&ended_after), ts("2026-01-01T00:11:00Z")),
            Due::Spent
        );
    }
}
