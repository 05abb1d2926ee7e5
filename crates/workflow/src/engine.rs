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

    /// The outputs earlier steps exported, by name, for `if` conditions that read `inputs`.
    fn variables(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
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
        // A `suspend` step with a duration resumes by itself once the duration has passed.
        if status.suspend {
            resume_elapsed_suspends(plan, status, &now);
        }
        // Resume: a suspended step counts as done once the user cleared `suspend`.
        if !status.suspend {
            for s in status.steps.iter_mut() {
                if s.phase == Some(WorkflowStepPhase::Suspending) {
                    let group = plan
                        .steps
                        .iter()
                        .any(|p| Some(&p.name) == s.name.as_ref() && p.type_ == STEP_GROUP);
                    // A group goes on with its other steps; its suspended sub-step is done.
                    s.phase = Some(if group {
                        WorkflowStepPhase::Running
                    } else {
                        WorkflowStepPhase::Succeeded
                    });
                    s.message = Some("resumed".into());
                    s.last_execute_time = Some(now());
                    for sub in s.sub_steps.iter_mut() {
                        if sub.phase == Some(WorkflowStepPhase::Suspending) {
                            sub.phase = Some(WorkflowStepPhase::Succeeded);
                            sub.message = Some("resumed".into());
                        }
                    }
                }
            }
        } else {
            status.phase = Some(WorkflowRunPhase::Suspending);
            return Progress::Suspended;
        }
        let variables = runner.variables();
        time_out(plan, status, &now);
        skip_gated(plan, status, &variables, &now);
        let ready = ready_steps(plan, status, &now());
        if ready.is_empty() {
            return settle(status, &now);
        }
        status.phase = Some(WorkflowRunPhase::Executing);
        let runs = ready.iter().map(|s| {
            let subs = status
                .step(&s.name)
                .map(|x| x.sub_steps.clone())
                .unwrap_or_default();
            let now = &now;
            async move {
                if s.type_ == STEP_GROUP {
                    let (outcome, subs) = run_group(s, subs, runner, now).await;
                    (outcome, Some(subs))
                } else {
                    (runner.run(s).await, None)
                }
            }
        });
        let outcomes = futures::future::join_all(runs).await;
        for (step, (outcome, subs)) in ready.iter().zip(outcomes) {
            let Some(st) = status
                .steps
                .iter_mut()
                .find(|x| x.name.as_deref() == Some(&step.name))
            else {
                continue;
            };
            if let Some(subs) = subs {
                st.sub_steps = subs;
            }
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
                    let tried = retries_of(st);
                    if reason == RETRYABLE && tried < MAX_RETRIES {
                        // A provider's error (a cluster or URL that did not answer): try again
                        // later, waiting longer each time, and say so.
                        let n = tried + 1;
                        st.phase = Some(WorkflowStepPhase::Running);
                        st.reason = Some(RETRY.into());
                        st.message = Some(format!(
                            "retry {n}/{MAX_RETRIES} in {}: {message}",
                            humanize(backoff(n))
                        ));
                    } else {
                        st.phase = Some(WorkflowStepPhase::Failed);
                        st.message = non_empty(if reason == RETRYABLE {
                            format!("failed after {MAX_RETRIES} retries: {message}")
                        } else {
                            message
                        });
                        st.reason = Some(if reason == RETRYABLE {
                            "FailedAfterRetries".into()
                        } else {
                            reason
                        });
                    }
                }
            }
        }
        time_out(plan, status, &now);
        if status.suspend {
            status.phase = Some(WorkflowRunPhase::Suspending);
            return Progress::Suspended;
        }
        skip_gated(plan, status, &variables, &now);
        settle(status, &now)
    }
}

/// The reason of a failure worth retrying (a provider's error: something did not answer).
pub const RETRYABLE: &str = "Execute";
/// The reason of a step waiting to be retried.
const RETRY: &str = "Retry";
/// How often a step is retried before the workflow fails.
pub const MAX_RETRIES: u32 = 10;

/// The wait before retry `n` (1-based): 5 s doubling, at most 5 minutes.
pub fn backoff(n: u32) -> std::time::Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(16));
    std::time::Duration::from_secs(secs.min(300))
}

/// Retries so far, as the step's status says (`retry N/…`).
fn retries_of(st: &WorkflowStepStatus) -> u32 {
    if st.reason.as_deref() != Some(RETRY) {
        return 0;
    }
    st.message
        .as_deref()
        .and_then(|m| m.strip_prefix("retry "))
        .and_then(|m| m.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Whether a step waiting for a retry may run now.
fn retry_due(st: &WorkflowStepStatus, now: &Time) -> bool {
    let n = retries_of(st);
    if n == 0 {
        return true;
    }
    let Some(last) = st.last_execute_time.as_ref() else {
        return true;
    };
    now.0.duration_since(last.0).as_secs() >= backoff(n).as_secs() as i64
}

/// The type of a step that runs its `subSteps` together.
pub const STEP_GROUP: &str = "step-group";

/// One round of a step group: every sub-step whose dependencies (within the group) are done
/// runs; a sub-step after a failed one is skipped. The group fails with its first failed
/// sub-step, suspends while one is suspended, and succeeds when all are done.
async fn run_group<R: StepRunner>(
    group: &PlannedStep,
    mut subs: Vec<oam::StepStatus>,
    runner: &R,
    now: &impl Fn() -> Time,
) -> (StepOutcome, Vec<oam::StepStatus>) {
    if subs.is_empty() {
        subs = group
            .sub_steps
            .iter()
            .map(|s| oam::StepStatus {
                id: step_id(&format!("{}/{}", group.name, s.name)),
                name: Some(s.name.clone()),
                type_: Some(s.type_.clone()),
                phase: Some(WorkflowStepPhase::Pending),
                ..oam::StepStatus::default()
            })
            .collect();
    }
    let phase_of = |subs: &[oam::StepStatus], name: &str| {
        subs.iter()
            .find(|x| x.name.as_deref() == Some(name))
            .and_then(|x| x.phase.clone())
    };
    // Skip what follows a failure, then run what is ready.
    for s in &group.sub_steps {
        let failed_dep = s.depends_on.iter().any(|d| {
            matches!(
                phase_of(&subs, d),
                Some(WorkflowStepPhase::Failed | WorkflowStepPhase::Skipped)
            )
        });
        if failed_dep
            && is_pending(phase_of(&subs, &s.name).as_ref())
            && let Some(x) = subs.iter_mut().find(|x| x.name.as_deref() == Some(&s.name))
        {
            x.phase = Some(WorkflowStepPhase::Skipped);
            x.reason = Some(SKIPPED_AFTER_FAILURE.into());
            x.message = Some("skipped: a step it depends on failed".into());
        }
    }
    let ready: Vec<&PlannedStep> = group
        .sub_steps
        .iter()
        .filter(|s| is_pending(phase_of(&subs, &s.name).as_ref()))
        .filter(|s| {
            s.depends_on
                .iter()
                .all(|d| is_terminal(phase_of(&subs, d).as_ref()))
        })
        .collect();
    let outcomes = futures::future::join_all(ready.iter().map(|s| runner.run(s))).await;
    for (s, outcome) in ready.iter().zip(outcomes) {
        let Some(x) = subs.iter_mut().find(|x| x.name.as_deref() == Some(&s.name)) else {
            continue;
        };
        let t = now();
        if x.first_execute_time.is_none() {
            x.first_execute_time = Some(t.clone());
        }
        x.last_execute_time = Some(t);
        let (phase, message, reason) = match outcome {
            StepOutcome::Succeeded { message } => (WorkflowStepPhase::Succeeded, message, None),
            StepOutcome::Running { message } => (
                WorkflowStepPhase::Running,
                message,
                Some("Wait".to_string()),
            ),
            StepOutcome::Suspended { message } => (WorkflowStepPhase::Suspending, message, None),
            StepOutcome::Failed { reason, message } => {
                (WorkflowStepPhase::Failed, message, Some(reason))
            }
        };
        x.phase = Some(phase);
        x.message = non_empty(message);
        x.reason = reason;
    }
    let name = |x: &oam::StepStatus| x.name.clone().unwrap_or_default();
    if let Some(f) = subs
        .iter()
        .find(|x| x.phase == Some(WorkflowStepPhase::Failed))
    {
        let outcome = StepOutcome::Failed {
            reason: f.reason.clone().unwrap_or_else(|| "Failed".into()),
            message: format!(
                "sub-step {}: {}",
                name(f),
                f.message.clone().unwrap_or_default()
            ),
        };
        // Nothing else of the group runs after a failure.
        for x in subs.iter_mut() {
            if is_pending(x.phase.as_ref()) {
                x.phase = Some(WorkflowStepPhase::Skipped);
                x.reason = Some(SKIPPED_AFTER_FAILURE.into());
            }
        }
        return (outcome, subs);
    }
    if let Some(s) = subs
        .iter()
        .find(|x| x.phase == Some(WorkflowStepPhase::Suspending))
    {
        return (
            StepOutcome::Suspended {
                message: format!(
                    "sub-step {}: {}",
                    name(s),
                    s.message.clone().unwrap_or_else(|| "suspended".into())
                ),
            },
            subs,
        );
    }
    if subs.iter().all(|x| is_terminal(x.phase.as_ref())) {
        return (
            StepOutcome::Succeeded {
                message: String::new(),
            },
            subs,
        );
    }
    let waiting: Vec<String> = subs
        .iter()
        .filter(|x| !is_terminal(x.phase.as_ref()))
        .map(|x| match &x.message {
            Some(m) => format!("{}: {m}", name(x)),
            None => name(x),
        })
        .collect();
    (
        StepOutcome::Running {
            message: format!("waiting for {}", waiting.join("; ")),
        },
        subs,
    )
}

/// The reason of a step skipped because a step before it failed.
const SKIPPED_AFTER_FAILURE: &str = "SkipAfterFailure";

fn is_terminal(p: Option<&WorkflowStepPhase>) -> bool {
    matches!(
        p,
        Some(WorkflowStepPhase::Succeeded | WorkflowStepPhase::Failed | WorkflowStepPhase::Skipped)
    )
}

fn is_pending(p: Option<&WorkflowStepPhase>) -> bool {
    matches!(
        p,
        None | Some(WorkflowStepPhase::Pending | WorkflowStepPhase::Running)
    )
}

/// Decide the steps whose turn has come but that must not run: one whose `if` is false, or,
/// without `if`, one after a failed or skipped step (StepByStep) or with a dependency that
/// failed or was skipped (DAG). Repeats until nothing changes, since a skip can open the next.
fn skip_gated(
    plan: &Plan,
    status: &mut WorkflowStatus,
    variables: &serde_json::Map<String, serde_json::Value>,
    now: &impl Fn() -> Time,
) {
    loop {
        let mut changed = false;
        for (i, step) in plan.steps.iter().enumerate() {
            let phase = status.step(&step.name).and_then(|s| s.phase.clone());
            // Only steps that have not started: a running step is not judged again.
            if !matches!(phase, None | Some(WorkflowStepPhase::Pending)) {
                continue;
            }
            let before: Vec<&PlannedStep> = match plan.mode {
                WorkflowMode::StepByStep => plan.steps[..i].iter().collect(),
                _ => plan
                    .steps
                    .iter()
                    .filter(|s| step.depends_on.contains(&s.name))
                    .collect(),
            };
            let phases: Vec<Option<WorkflowStepPhase>> = before
                .iter()
                .map(|b| status.step(&b.name).and_then(|s| s.phase.clone()))
                .collect();
            if !phases.iter().all(|p| is_terminal(p.as_ref())) {
                continue;
            }
            // A step skipped by its own `if` is no failure; one skipped because of a failure
            // carries it on (its reason says so).
            let failed_before = before.iter().any(|b| {
                status.step(&b.name).is_some_and(|s| {
                    s.phase == Some(WorkflowStepPhase::Failed)
                        || (s.phase == Some(WorkflowStepPhase::Skipped)
                            && s.reason.as_deref() == Some(SKIPPED_AFTER_FAILURE))
                })
            });
            let (run, why, reason) = match step.if_.as_deref().map(str::trim) {
                None | Some("") => (
                    !failed_before,
                    "skipped: an earlier step failed".to_string(),
                    SKIPPED_AFTER_FAILURE,
                ),
                Some("always") => (true, String::new(), "Skip"),
                Some(expr) => match evaluate_if(expr, status, variables) {
                    Ok(b) => (b, format!("skipped: if {expr:?} is false"), "Skip"),
                    Err(e) => {
                        if let Some(st) = status.step_mut(&step.name) {
                            st.phase = Some(WorkflowStepPhase::Failed);
                            st.reason = Some("InvalidIf".into());
                            st.message = Some(format!("if {expr:?}: {e}"));
                            st.last_execute_time = Some(now());
                        }
                        changed = true;
                        continue;
                    }
                },
            };
            if !run && let Some(st) = status.step_mut(&step.name) {
                st.phase = Some(WorkflowStepPhase::Skipped);
                st.message = Some(why);
                st.reason = Some(reason.into());
                st.last_execute_time = Some(now());
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// Evaluate a step's `if` with `status.<step>` (`phase`, `message`, `reason`) and `inputs`.
pub fn evaluate_if(
    expr: &str,
    status: &WorkflowStatus,
    variables: &serde_json::Map<String, serde_json::Value>,
) -> Result<bool, String> {
    let mut steps = serde_json::Map::new();
    for s in &status.steps {
        let Some(name) = &s.name else { continue };
        let phase = match &s.phase {
            Some(p) => serde_json::to_value(p).unwrap_or_default(),
            None => serde_json::Value::String("pending".into()),
        };
        steps.insert(
            name.clone(),
            serde_json::json!({
                "phase": phase,
                "message": s.message.clone().unwrap_or_default(),
                "reason": s.reason.clone().unwrap_or_default(),
                "succeeded": s.phase == Some(WorkflowStepPhase::Succeeded),
                "failed": s.phase == Some(WorkflowStepPhase::Failed),
                "skipped": s.phase == Some(WorkflowStepPhase::Skipped),
                "timeout": s.reason.as_deref() == Some("Timeout"),
            }),
        );
    }
    let src = format!("__sailplane_if: {expr}\nstatus: _\ninputs: _\n");
    let program = cue::Runtime::new()
        .compile("if", &src)
        .map_err(|e| e.to_string())?;
    let status_json = serde_json::Value::Object(steps);
    let inputs_json = serde_json::Value::Object(variables.clone());
    let v = program
        .eval_with(&[("status", &status_json), ("inputs", &inputs_json)])
        .map_err(|e| e.to_string())?;
    let out = v
        .lookup("__sailplane_if")
        .ok_or_else(|| "no value".to_string())?;
    match out.to_json() {
        Ok(serde_json::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("is {other}, not a bool")),
        Err(e) => Err(e.to_string()),
    }
}

/// Fail every running step that has been running longer than its `timeout`.
fn time_out(plan: &Plan, status: &mut WorkflowStatus, now: &impl Fn() -> Time) {
    let t = now();
    for step in &plan.steps {
        let Some(limit) = step.timeout.as_deref() else {
            continue;
        };
        let Some(st) = status.step_mut(&step.name) else {
            continue;
        };
        if !matches!(
            st.phase,
            Some(WorkflowStepPhase::Running | WorkflowStepPhase::Suspending)
        ) {
            continue;
        }
        let Some(started) = st.first_execute_time.as_ref() else {
            continue;
        };
        let Some(d) = crate::parse_duration(limit) else {
            st.phase = Some(WorkflowStepPhase::Failed);
            st.reason = Some("InvalidTimeout".into());
            st.message = Some(format!(
                "timeout {limit:?} is not a duration (e.g. 30s, 10m, 1h30m)"
            ));
            continue;
        };
        let elapsed = t.0.duration_since(started.0);
        if elapsed.as_secs() >= d.as_secs() as i64 {
            let was = st.message.clone().unwrap_or_default();
            let was_suspended = st.phase == Some(WorkflowStepPhase::Suspending);
            st.phase = Some(WorkflowStepPhase::Failed);
            st.reason = Some("Timeout".into());
            st.message = Some(if was.is_empty() {
                format!("timed out after {limit}")
            } else {
                format!("timed out after {limit} ({was})")
            });
            st.last_execute_time = Some(t.clone());
            if was_suspended {
                status.suspend = false;
            }
        }
    }
}

/// Resume `suspend` steps whose `duration` has passed since they started.
fn resume_elapsed_suspends(plan: &Plan, status: &mut WorkflowStatus, now: &impl Fn() -> Time) {
    let t = now();
    let mut resumed = false;
    for step in &plan.steps {
        let Some(d) = step
            .properties
            .get("duration")
            .and_then(serde_json::Value::as_str)
            .and_then(crate::parse_duration)
        else {
            continue;
        };
        let Some(st) = status.step_mut(&step.name) else {
            continue;
        };
        if st.phase != Some(WorkflowStepPhase::Suspending) {
            continue;
        }
        let Some(started) = st.first_execute_time.as_ref() else {
            continue;
        };
        if t.0.duration_since(started.0).as_secs() >= d.as_secs() as i64 {
            st.phase = Some(WorkflowStepPhase::Succeeded);
            st.message = Some(format!("resumed after {}", humanize(d)));
            st.last_execute_time = Some(t.clone());
            resumed = true;
        }
    }
    if resumed
        && !status
            .steps
            .iter()
            .any(|s| s.phase == Some(WorkflowStepPhase::Suspending))
    {
        status.suspend = false;
    }
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) && s > 0 {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

fn settle(status: &mut WorkflowStatus, now: &impl Fn() -> Time) -> Progress {
    let all_terminal = status.steps.iter().all(|s| is_terminal(s.phase.as_ref()));
    if !all_terminal {
        status.phase = Some(WorkflowRunPhase::Executing);
        return Progress::Running;
    }
    status.finished = true;
    status.end_time = Some(now());
    if let Some(failed) = status
        .steps
        .iter()
        .find(|s| s.phase == Some(WorkflowStepPhase::Failed))
    {
        status.message = Some(format!(
            "step {}: {}",
            failed.name.as_deref().unwrap_or(""),
            failed.message.as_deref().unwrap_or("failed")
        ));
        status.phase = Some(WorkflowRunPhase::Failed);
        return Progress::Failed;
    }
    status.phase = Some(WorkflowRunPhase::Succeeded);
    status.message = None;
    Progress::Succeeded
}

fn finished_progress(status: &WorkflowStatus) -> Progress {
    match status.phase {
        Some(WorkflowRunPhase::Failed) => Progress::Failed,
        Some(WorkflowRunPhase::Terminated) => Progress::Terminated,
        _ => Progress::Succeeded,
    }
}

/// The steps to run now: in StepByStep mode the first step not finished, once every step before
/// it is; in DAG mode every unfinished step whose dependencies are finished. (Steps that must
/// not run were marked skipped by `skip_gated` already.)
fn ready_steps(plan: &Plan, status: &WorkflowStatus, now: &Time) -> Vec<PlannedStep> {
    let phase_of = |name: &str| status.step(name).and_then(|s| s.phase.clone());
    let due = |name: &str| status.step(name).is_none_or(|s| retry_due(s, now));
    match plan.mode {
        WorkflowMode::StepByStep => plan
            .steps
            .iter()
            .find(|s| !is_terminal(phase_of(&s.name).as_ref()))
            .filter(|s| is_pending(phase_of(&s.name).as_ref()) && due(&s.name))
            .cloned()
            .into_iter()
            .collect(),
        _ => plan
            .steps
            .iter()
            .filter(|s| is_pending(phase_of(&s.name).as_ref()) && due(&s.name))
            .filter(|s| {
                s.depends_on
                    .iter()
                    .all(|d| is_terminal(phase_of(d).as_ref()))
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
            if_: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            sub_steps: Vec::new(),
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
        // As in KubeVela, the steps after a failed one are skipped, not left pending.
        assert_eq!(phase(&st, "b"), Some(WorkflowStepPhase::Skipped));
        assert!(st.finished);
    }

    fn with_if(mut s: PlannedStep, cond: &str) -> PlannedStep {
        s.if_ = Some(cond.into());
        s
    }

    #[tokio::test]
    async fn if_always_and_conditions_on_earlier_steps() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![
                step("deploy", &[]),
                step("skipped", &[]),
                with_if(
                    step("notify-failure", &[]),
                    "status.deploy.phase == \"failed\"",
                ),
                with_if(
                    step("notify-success", &[]),
                    "status.deploy.phase == \"succeeded\"",
                ),
                with_if(step("cleanup", &[]), "always"),
            ],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[(
            "deploy",
            StepOutcome::Failed {
                reason: "ApplyFailed".into(),
                message: "cluster gone".into(),
            },
        )]);
        let mut progress = Progress::Running;
        for _ in 0..6 {
            progress = Engine::advance(&plan, &mut st, &r, now).await;
            if progress != Progress::Running {
                break;
            }
        }
        assert_eq!(progress, Progress::Failed);
        assert_eq!(phase(&st, "skipped"), Some(WorkflowStepPhase::Skipped));
        assert_eq!(
            phase(&st, "notify-failure"),
            Some(WorkflowStepPhase::Succeeded)
        );
        assert_eq!(
            phase(&st, "notify-success"),
            Some(WorkflowStepPhase::Skipped)
        );
        assert_eq!(phase(&st, "cleanup"), Some(WorkflowStepPhase::Succeeded));
        assert_eq!(
            *r.ran.lock().unwrap(),
            ["deploy", "notify-failure", "cleanup"]
        );
        assert_eq!(st.message.as_deref(), Some("step deploy: cluster gone"));
    }

    #[tokio::test]
    async fn step_groups_run_their_sub_steps_together_and_suspend_inside() {
        let mut group = step("group", &[]);
        group.type_ = STEP_GROUP.into();
        let mut approve = step("approve", &["a"]);
        approve.type_ = "suspend".into();
        group.sub_steps = vec![
            step("a", &[]),
            step("b", &[]),
            approve,
            step("c", &["approve"]),
        ];
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![group, step("after", &[])],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[(
            "approve",
            StepOutcome::Suspended {
                message: "approve?".into(),
            },
        )]);
        // Round 1: a and b together; round 2: approve suspends the group and the workflow.
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Running
        );
        assert_eq!(*r.ran.lock().unwrap(), ["a", "b"]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Suspended
        );
        let subs = &st.step("group").unwrap().sub_steps;
        assert_eq!(subs.len(), 4);
        assert_eq!(subs[2].phase, Some(WorkflowStepPhase::Suspending));
        // Resume: c runs, the group succeeds, then the next step.
        st.suspend = false;
        let mut progress = Progress::Running;
        for _ in 0..4 {
            progress = Engine::advance(&plan, &mut st, &r, now).await;
            if progress != Progress::Running {
                break;
            }
        }
        assert_eq!(progress, Progress::Succeeded);
        assert_eq!(*r.ran.lock().unwrap(), ["a", "b", "approve", "c", "after"]);
        assert_eq!(phase(&st, "group"), Some(WorkflowStepPhase::Succeeded));
    }

    #[tokio::test]
    async fn a_failed_sub_step_fails_its_group_naming_it() {
        let mut group = step("group", &[]);
        group.type_ = STEP_GROUP.into();
        group.sub_steps = vec![step("a", &[]), step("b", &["a"])];
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![group],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[(
            "a",
            StepOutcome::Failed {
                reason: "ApplyFailed".into(),
                message: "boom".into(),
            },
        )]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Failed
        );
        assert_eq!(st.message.as_deref(), Some("step group: sub-step a: boom"));
        let subs = &st.step("group").unwrap().sub_steps;
        assert_eq!(subs[1].phase, Some(WorkflowStepPhase::Skipped));
    }

    #[tokio::test]
    async fn provider_errors_are_retried_with_backoff_then_fail() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![step("hook", &[])],
        };
        let mut st = Engine::start(&plan, "app-v1", at(0)());
        let r = script(&[(
            "hook",
            StepOutcome::Failed {
                reason: RETRYABLE.into(),
                message: "connection refused".into(),
            },
        )]);
        let mut t = 0;
        Engine::advance(&plan, &mut st, &r, at(t)).await;
        let s = st.step("hook").unwrap();
        assert_eq!(s.phase, Some(WorkflowStepPhase::Running));
        assert_eq!(
            s.message.as_deref(),
            Some("retry 1/10 in 5s: connection refused")
        );
        // Not before the backoff has passed.
        Engine::advance(&plan, &mut st, &r, at(t + 2)).await;
        assert_eq!(r.ran.lock().unwrap().len(), 1);
        for n in 1..=MAX_RETRIES {
            t += backoff(n).as_secs() as i64;
            Engine::advance(&plan, &mut st, &r, at(t)).await;
        }
        assert_eq!(r.ran.lock().unwrap().len(), 11);
        let s = st.step("hook").unwrap();
        assert_eq!(s.phase, Some(WorkflowStepPhase::Failed));
        assert_eq!(s.reason.as_deref(), Some("FailedAfterRetries"));
        assert_eq!(
            s.message.as_deref(),
            Some("failed after 10 retries: connection refused")
        );
        assert_eq!(backoff(1).as_secs(), 5);
        assert_eq!(backoff(4).as_secs(), 40);
        assert_eq!(backoff(10).as_secs(), 300);
    }

    #[tokio::test]
    async fn a_step_skipped_by_its_if_does_not_stop_the_next() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![
                step("a", &[]),
                with_if(step("on-failure", &[]), "status.a.failed"),
                step("b", &[]),
                with_if(step("on-success", &[]), "status.b.succeeded"),
            ],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[]);
        let mut progress = Progress::Running;
        for _ in 0..6 {
            progress = Engine::advance(&plan, &mut st, &r, now).await;
            if progress != Progress::Running {
                break;
            }
        }
        assert_eq!(progress, Progress::Succeeded);
        assert_eq!(phase(&st, "on-failure"), Some(WorkflowStepPhase::Skipped));
        assert_eq!(phase(&st, "b"), Some(WorkflowStepPhase::Succeeded));
        assert_eq!(phase(&st, "on-success"), Some(WorkflowStepPhase::Succeeded));
    }

    #[tokio::test]
    async fn if_reads_inputs_and_a_broken_if_fails_its_step() {
        struct WithVars(Script);
        impl StepRunner for WithVars {
            async fn run(&self, step: &PlannedStep) -> StepOutcome {
                self.0.run(step).await
            }
            fn variables(&self) -> serde_json::Map<String, serde_json::Value> {
                serde_json::json!({"score": 7})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            }
        }
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![
                with_if(step("good", &[]), "inputs.score > 5"),
                with_if(step("bad", &[]), "inputs.score >"),
            ],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = WithVars(script(&[]));
        Engine::advance(&plan, &mut st, &r, now).await;
        assert_eq!(phase(&st, "good"), Some(WorkflowStepPhase::Succeeded));
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Failed
        );
        let bad = st.step("bad").unwrap();
        assert_eq!(bad.reason.as_deref(), Some("InvalidIf"));
    }

    #[tokio::test]
    async fn dag_steps_after_a_failed_dependency_are_skipped_but_others_run() {
        let plan = Plan {
            mode: WorkflowMode::Dag,
            steps: vec![step("a", &[]), step("b", &["a"]), step("c", &[])],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[(
            "a",
            StepOutcome::Failed {
                reason: "x".into(),
                message: "no".into(),
            },
        )]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Failed
        );
        assert_eq!(phase(&st, "b"), Some(WorkflowStepPhase::Skipped));
        assert_eq!(phase(&st, "c"), Some(WorkflowStepPhase::Succeeded));
    }

    fn at(secs: i64) -> impl Fn() -> Time {
        move || Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    #[tokio::test]
    async fn a_step_running_past_its_timeout_fails_saying_so() {
        let mut slow = step("slow", &[]);
        slow.timeout = Some("1m".into());
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![slow, step("after", &[])],
        };
        let mut st = Engine::start(&plan, "app-v1", at(0)());
        let r = script(&[(
            "slow",
            StepOutcome::Running {
                message: "waiting for web: 0/2 ready".into(),
            },
        )]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(0)).await,
            Progress::Running
        );
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(30)).await,
            Progress::Running
        );
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(61)).await,
            Progress::Failed
        );
        let s = st.step("slow").unwrap();
        assert_eq!(s.reason.as_deref(), Some("Timeout"));
        assert_eq!(
            s.message.as_deref(),
            Some("timed out after 1m (waiting for web: 0/2 ready)")
        );
        assert_eq!(phase(&st, "after"), Some(WorkflowStepPhase::Skipped));
    }

    #[tokio::test]
    async fn a_suspend_with_a_duration_resumes_by_itself() {
        let mut wait = step("wait", &[]);
        wait.type_ = "suspend".into();
        wait.properties = serde_json::json!({"duration": "30s"});
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![wait, step("next", &[])],
        };
        let mut st = Engine::start(&plan, "app-v1", at(0)());
        let r = script(&[(
            "wait",
            StepOutcome::Suspended {
                message: "pausing".into(),
            },
        )]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(0)).await,
            Progress::Suspended
        );
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(10)).await,
            Progress::Suspended
        );
        Engine::advance(&plan, &mut st, &r, at(31)).await;
        assert_eq!(phase(&st, "wait"), Some(WorkflowStepPhase::Succeeded));
        assert_eq!(phase(&st, "next"), Some(WorkflowStepPhase::Succeeded));
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
