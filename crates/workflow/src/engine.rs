//! Advancing a workflow one round at a time.

use crate::plan::{Plan, PlannedStep};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use oam::{WorkflowMode, WorkflowRunPhase, WorkflowStatus, WorkflowStepPhase, WorkflowStepStatus};
use std::future::Future;

/// What running a step once gave.
#[derive(Clone, Debug, PartialEq)]
pub enum StepOutcome {
    /// Done; the workflow may go on.
    Succeeded { message: String },
    /// Not done yet (waiting for health, a duration, …); run the step again later.
    Running { message: String },
    /// Waiting for a person: `sail workflow resume`.
    Suspended { message: String },
    /// Failed; the workflow stops.
    Failed { reason: String, message: String },
}

/// What a step does. The controller implements it with render and fleet.
pub trait StepRunner {
    fn run(&self, step: &PlannedStep) -> impl Future<Output = StepOutcome> + Send;
}

/// Where the workflow stands after a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Every step succeeded (or was skipped).
    Succeeded,
    /// Steps are running or waiting; call again later.
    Running,
    /// A step waits to be resumed.
    Suspended,
    /// A step failed; nothing more runs until the application changes or is restarted.
    Failed,
    /// Stopped by `sail workflow terminate`.
    Terminated,
}

pub struct Engine;

impl Engine {
    /// A fresh status for a new revision of the application.
    pub fn start(plan: &Plan, app_revision: &str, now: Time) -> WorkflowStatus {
        WorkflowStatus {
            app_revision: Some(app_revision.to_string()),
            mode: plan.mode.as_str().to_string(),
            phase: Some(WorkflowRunPhase::Initializing),
            steps: plan
                .steps
                .iter()
                .map(|s| WorkflowStepStatus {
                    id: step_id(&s.name),
                    name: Some(s.name.clone()),
                    type_: Some(s.type_.clone()),
                    phase: Some(WorkflowStepPhase::Pending),
                    ..WorkflowStepStatus::default()
                })
                .collect(),
            start_time: Some(now),
            ..WorkflowStatus::default()
        }
    }

    /// Run every ready step once and record the outcomes in `status`.
    pub async fn advance<R: StepRunner>(
        plan: &Plan,
        status: &mut WorkflowStatus,
        runner: &R,
        now: impl Fn() -> Time,
    ) -> Progress {
        if status.terminated {
            status.phase = Some(WorkflowRunPhase::Terminated);
            return Progress::Terminated;
        }
        if status.finished {
            return finished_progress(status);
        }
        // Resume: a suspended step counts as done once the user cleared `suspend`.
        if !status.suspend {
            for s in status.steps.iter_mut() {
                if s.phase == Some(WorkflowStepPhase::Suspending) {
                    s.phase = Some(WorkflowStepPhase::Succeeded);
                    s.message = Some("resumed".into());
                    s.last_execute_time = Some(now());
                }
            }
        } else {
            status.phase = Some(WorkflowRunPhase::Suspending);
            return Progress::Suspended;
        }
        let ready = ready_steps(plan, status);
        if ready.is_empty() {
            return settle(status, &now);
        }
        status.phase = Some(WorkflowRunPhase::Executing);
        let runs = ready.iter().map(|s| runner.run(s));
        let outcomes = futures::future::join_all(runs).await;
        for (step, outcome) in ready.iter().zip(outcomes) {
            let Some(st) = status
                .steps
                .iter_mut()
                .find(|x| x.name.as_deref() == Some(&step.name))
            else {
                continue;
            };
            let t = now();
            if st.first_execute_time.is_none() {
                st.first_execute_time = Some(t.clone());
            }
            st.last_execute_time = Some(t);
            match outcome {
                StepOutcome::Succeeded { message } => {
                    st.phase = Some(WorkflowStepPhase::Succeeded);
                    st.message = non_empty(message);
                    st.reason = None;
                }
                StepOutcome::Running { message } => {
                    st.phase = Some(WorkflowStepPhase::Running);
                    st.message = non_empty(message);
                    st.reason = Some("Wait".into());
                }
                StepOutcome::Suspended { message } => {
                    st.phase = Some(WorkflowStepPhase::Suspending);
                    st.message = non_empty(message);
                    status.suspend = true;
                }
                StepOutcome::Failed { reason, message } => {
                    st.phase = Some(WorkflowStepPhase::Failed);
                    st.message = non_empty(message);
                    st.reason = Some(reason);
                }
            }
        }
        if status.suspend {
            status.phase = Some(WorkflowRunPhase::Suspending);
            return Progress::Suspended;
        }
        settle(status, &now)
    }
}

fn settle(status: &mut WorkflowStatus, now: &impl Fn() -> Time) -> Progress {
    let phases: Vec<Option<&WorkflowStepPhase>> =
        status.steps.iter().map(|s| s.phase.as_ref()).collect();
    if phases.contains(&Some(&WorkflowStepPhase::Failed)) {
        status.phase = Some(WorkflowRunPhase::Failed);
        status.finished = true;
        status.end_time = Some(now());
        status.message = status
            .steps
            .iter()
            .find(|s| s.phase == Some(WorkflowStepPhase::Failed))
            .map(|s| {
                format!(
                    "step {}: {}",
                    s.name.as_deref().unwrap_or(""),
                    s.message.as_deref().unwrap_or("failed")
                )
            });
        return Progress::Failed;
    }
    let done = phases.iter().all(|p| {
        matches!(
            p,
            Some(WorkflowStepPhase::Succeeded | WorkflowStepPhase::Skipped)
        )
    });
    if done {
        status.phase = Some(WorkflowRunPhase::Succeeded);
        status.finished = true;
        status.message = None;
        status.end_time = Some(now());
        return Progress::Succeeded;
    }
    status.phase = Some(WorkflowRunPhase::Executing);
    Progress::Running
}

fn finished_progress(status: &WorkflowStatus) -> Progress {
    match status.phase {
        Some(WorkflowRunPhase::Failed) => Progress::Failed,
        Some(WorkflowRunPhase::Terminated) => Progress::Terminated,
        _ => Progress::Succeeded,
    }
}

/// The steps to run now.
fn ready_steps(plan: &Plan, status: &WorkflowStatus) -> Vec<PlannedStep> {
    let phase_of = |name: &str| {
        status
            .steps
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
            .and_then(|s| s.phase.clone())
    };
    let pending = |p: Option<WorkflowStepPhase>| {
        matches!(
            p,
            None | Some(WorkflowStepPhase::Pending | WorkflowStepPhase::Running)
        )
    };
    match plan.mode {
        WorkflowMode::StepByStep => plan
            .steps
            .iter()
            .find(|s| {
                phase_of(&s.name) != Some(WorkflowStepPhase::Succeeded)
                    && phase_of(&s.name) != Some(WorkflowStepPhase::Skipped)
            })
            .filter(|s| pending(phase_of(&s.name)))
            .cloned()
            .into_iter()
            .collect(),
        _ => plan
            .steps
            .iter()
            .filter(|s| pending(phase_of(&s.name)))
            .filter(|s| {
                s.depends_on
                    .iter()
                    .all(|d| phase_of(d) == Some(WorkflowStepPhase::Succeeded))
            })
            .cloned()
            .collect(),
    }
}

fn step_id(name: &str) -> String {
    // Stable across controller restarts: derived from the name, not random.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, PlannedStep};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A runner whose outcomes are scripted per step; it records what ran.
    struct Script {
        outcomes: HashMap<&'static str, StepOutcome>,
        ran: Mutex<Vec<String>>,
    }

    impl StepRunner for Script {
        async fn run(&self, step: &PlannedStep) -> StepOutcome {
            self.ran.lock().expect("lock").push(step.name.clone());
            self.outcomes
                .get(step.name.as_str())
                .cloned()
                .unwrap_or(StepOutcome::Succeeded {
                    message: String::new(),
                })
        }
    }

    fn step(name: &str, deps: &[&str]) -> PlannedStep {
        PlannedStep {
            name: name.into(),
            type_: "apply-component".into(),
            properties: serde_json::json!({}),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            timeout: None,
        }
    }

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    fn script(outcomes: &[(&'static str, StepOutcome)]) -> Script {
        Script {
            outcomes: outcomes.iter().cloned().collect(),
            ran: Mutex::default(),
        }
    }

    fn phase(st: &WorkflowStatus, name: &str) -> Option<WorkflowStepPhase> {
        st.steps
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
            .and_then(|s| s.phase.clone())
    }

    #[tokio::test]
    async fn step_by_step_runs_one_step_per_round() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![step("a", &[]), step("b", &[])],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Running
        );
        assert_eq!(phase(&st, "a"), Some(WorkflowStepPhase::Succeeded));
        assert_eq!(phase(&st, "b"), Some(WorkflowStepPhase::Pending));
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Succeeded
        );
        assert!(st.finished);
        assert_eq!(*r.ran.lock().expect("lock"), vec!["a", "b"]);
        // A finished workflow runs nothing more.
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Succeeded
        );
        assert_eq!(r.ran.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn dag_runs_what_is_ready_and_waits_for_dependencies() {
        let plan = Plan {
            mode: WorkflowMode::Dag,
            steps: vec![
                step("db", &[]),
                step("cache", &[]),
                step("web", &["db", "cache"]),
            ],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[(
            "cache",
            StepOutcome::Running {
                message: "waiting".into(),
            },
        )]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Running
        );
        assert_eq!(*r.ran.lock().expect("lock"), vec!["db", "cache"]);
        assert_eq!(phase(&st, "cache"), Some(WorkflowStepPhase::Running));
        // web waits while cache is still running
        Engine::advance(&plan, &mut st, &r, now).await;
        assert!(!r.ran.lock().expect("lock").contains(&"web".to_string()));
    }

    #[tokio::test]
    async fn suspend_waits_for_resume() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![
                step("staging", &[]),
                step("approve", &[]),
                step("prod", &[]),
            ],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[(
            "approve",
            StepOutcome::Suspended {
                message: "approve?".into(),
            },
        )]);
        Engine::advance(&plan, &mut st, &r, now).await;
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Suspended
        );
        assert!(st.suspend);
        // still suspended: nothing runs
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Suspended
        );
        assert_eq!(r.ran.lock().expect("lock").len(), 2);
        // resume: the suspend step counts as done, prod runs
        st.suspend = false;
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Succeeded
        );
        assert_eq!(phase(&st, "approve"), Some(WorkflowStepPhase::Succeeded));
        assert_eq!(phase(&st, "prod"), Some(WorkflowStepPhase::Succeeded));
    }

    #[tokio::test]
    async fn a_failed_step_fails_the_workflow_with_its_message() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![step("a", &[]), step("b", &[])],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[(
            "a",
            StepOutcome::Failed {
                reason: "RenderFailed".into(),
                message: "bad parameter".into(),
            },
        )]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Failed
        );
        assert_eq!(st.message.as_deref(), Some("step a: bad parameter"));
        assert_eq!(phase(&st, "b"), Some(WorkflowStepPhase::Pending));
        assert!(st.finished);
    }

    #[tokio::test]
    async fn terminate_stops_everything() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![step("a", &[])],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        st.terminated = true;
        let r = script(&[]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Terminated
        );
        assert_eq!(st.phase, Some(WorkflowRunPhase::Terminated));
        assert!(r.ran.lock().expect("lock").is_empty());
    }
}
