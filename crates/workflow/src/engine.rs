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

    /// How provider errors are retried (the controller's settings).
    fn retries(&self) -> Retries {
        Retries::default()
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
            start_time: Some(run_start(None, now)),
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
        // The first round of a run only records it: its start time (which identifies the run
        // to the steps' send records) is stored before any step runs.
        if status.phase == Some(WorkflowRunPhase::Initializing) {
            status.phase = Some(WorkflowRunPhase::Executing);
            return Progress::Running;
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
                    // A group goes on with its other steps; its suspended sub-step is done, or
                    // runs again when it suspended before its work (see `runs_again`).
                    let again = !group && runs_again(s.type_.as_deref());
                    s.phase = Some(if group || again {
                        WorkflowStepPhase::Running
                    } else {
                        WorkflowStepPhase::Succeeded
                    });
                    if again {
                        s.reason = Some(RESUMED.into());
                    }
                    s.message = Some("resumed".into());
                    s.last_execute_time = Some(now());
                    for sub in s.sub_steps.iter_mut() {
                        if sub.phase == Some(WorkflowStepPhase::Suspending) {
                            if runs_again(sub.type_.as_deref()) {
                                sub.phase = Some(WorkflowStepPhase::Running);
                                sub.reason = Some(RESUMED.into());
                            } else {
                                sub.phase = Some(WorkflowStepPhase::Succeeded);
                            }
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
        let retries = runner.retries();
        let ready = ready_steps(plan, status, &retries, &now());
        if ready.is_empty() {
            return settle(status, &now);
        }
        status.phase = Some(WorkflowRunPhase::Executing);
        let context = status.clone();
        let runs = ready.iter().map(|s| {
            let subs = status
                .step(&s.name)
                .map(|x| x.sub_steps.clone())
                .unwrap_or_default();
            let now = &now;
            let context = &context;
            async move {
                if s.type_ == STEP_GROUP {
                    let (outcome, subs) = run_group(s, subs, context, runner, now).await;
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
                    // A resumed step keeps saying so: it does not ask for approval again.
                    st.reason = Some(waiting(st.reason.as_deref()).into());
                }
                StepOutcome::Suspended { message } => {
                    st.phase = Some(WorkflowStepPhase::Suspending);
                    st.message = non_empty(message);
                    status.suspend = true;
                }
                StepOutcome::Failed { reason, message } => {
                    // A provider's error (a cluster or URL that did not answer) is tried again
                    // later, waiting longer each time, and the message says so.
                    let (phase, reason, message) = failure(
                        &retries,
                        retries_of(st),
                        st.reason.as_deref() == Some(RESUMED),
                        reason,
                        message,
                    );
                    st.phase = Some(phase);
                    st.reason = Some(reason);
                    st.message = non_empty(message);
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

impl Engine {
    /// Run the workflow again from `step` (a step, or a sub-step of a group), as
    /// `sail workflow restart --step` asks: that step and every step after it (StepByStep) or
    /// depending on it (DAG), and every step that failed or was skipped, start over; steps that
    /// succeeded before it keep their outcome. Restarting a step group (or one of its
    /// sub-steps) runs again the sub-steps that did not succeed, and the one named.
    pub fn restart_from(
        plan: &Plan,
        status: &mut WorkflowStatus,
        step: &str,
        now: Time,
    ) -> Result<(), String> {
        let (top, sub) = match plan.steps.iter().position(|s| s.name == step) {
            Some(i) => (i, None),
            None => plan
                .steps
                .iter()
                .enumerate()
                .find_map(|(i, g)| {
                    g.sub_steps
                        .iter()
                        .any(|x| x.name == step)
                        .then(|| (i, Some(step.to_string())))
                })
                .ok_or_else(|| {
                    let names: Vec<String> = plan
                        .steps
                        .iter()
                        .flat_map(|s| {
                            std::iter::once(s.name.clone())
                                .chain(s.sub_steps.iter().map(|x| format!("{}/{}", s.name, x.name)))
                        })
                        .collect();
                    format!(
                        "the workflow has no step {step:?} (steps: {})",
                        names.join(", ")
                    )
                })?,
        };
        // Which top-level steps start over.
        let mut again: Vec<&str> = vec![plan.steps[top].name.as_str()];
        match plan.mode {
            WorkflowMode::StepByStep => {
                again.extend(plan.steps[top + 1..].iter().map(|s| s.name.as_str()));
            }
            _ => loop {
                let before = again.len();
                for s in &plan.steps {
                    if !again.contains(&s.name.as_str())
                        && s.depends_on.iter().any(|d| again.contains(&d.as_str()))
                    {
                        again.push(s.name.as_str());
                    }
                }
                if again.len() == before {
                    break;
                }
            },
        }
        for st in status.steps.iter_mut() {
            let name = st.name.clone().unwrap_or_default();
            let failed = matches!(
                st.phase,
                Some(WorkflowStepPhase::Failed | WorkflowStepPhase::Skipped)
            );
            let is_target = name == plan.steps[top].name;
            if !again.contains(&name.as_str()) && !failed {
                continue;
            }
            st.phase = Some(WorkflowStepPhase::Pending);
            st.message = None;
            st.reason = None;
            st.first_execute_time = None;
            st.last_execute_time = None;
            if is_target {
                // The group's sub-steps that succeeded stay done, unless named.
                st.sub_steps.retain_mut(|x| {
                    x.phase == Some(WorkflowStepPhase::Succeeded)
                        && sub.as_deref() != x.name.as_deref()
                });
                let kept: Vec<oam::StepStatus> = std::mem::take(&mut st.sub_steps);
                if let Some(group) = plan.steps.get(top).filter(|g| g.type_ == STEP_GROUP) {
                    st.sub_steps = group
                        .sub_steps
                        .iter()
                        .map(|x| {
                            kept.iter()
                                .find(|k| k.name.as_deref() == Some(&x.name))
                                .cloned()
                                .unwrap_or_else(|| oam::StepStatus {
                                    id: step_id(&format!("{}/{}", group.name, x.name)),
                                    name: Some(x.name.clone()),
                                    type_: Some(x.type_.clone()),
                                    phase: Some(WorkflowStepPhase::Pending),
                                    ..oam::StepStatus::default()
                                })
                        })
                        .collect();
                }
            } else {
                st.sub_steps.clear();
            }
        }
        status.finished = false;
        status.terminated = false;
        status.suspend = false;
        status.end_time = None;
        status.message = None;
        status.phase = Some(WorkflowRunPhase::Executing);
        // A new run: what its steps send is new (their send records are of the old run).
        status.start_time = Some(run_start(status.start_time.as_ref(), now));
        Ok(())
    }
}

/// The start time of a new run: `now` in whole seconds (all the status keeps of a time), and
/// later than the start of the run it replaces, if any. The start time names the run in the
/// idempotency keys of what its steps send, so a run restarted within the second of the one
/// before must still get a start time of its own, and the name must read the same before and
/// after the status is written.
pub fn run_start(previous: Option<&Time>, now: Time) -> Time {
    let secs = now.0.as_second();
    let secs = match previous.map(|p| p.0.as_second()) {
        Some(p) if p >= secs => p + 1,
        _ => secs,
    };
    Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap_or(now.0))
}

/// How soon to look again at a workflow whose steps are running: the re-check of a *waiting*
/// step backs off. A step that has waited `w` is looked at again after `w / 4` (so the checks
/// come at exponentially growing times, and a step's timeout is noticed at most a quarter of
/// its wait late), never sooner than `poll` and never later than `cap` (KubeVela's
/// `--max-workflow-wait-backoff-time`). The step that started waiting last decides; a step
/// waiting for a retry keeps `poll`, its own backoff decides when it runs.
pub fn wait_backoff(
    status: &WorkflowStatus,
    now: &Time,
    poll: std::time::Duration,
    cap: std::time::Duration,
) -> std::time::Duration {
    let waited = |phase: &Option<WorkflowStepPhase>,
                  reason: &Option<String>,
                  message: &Option<String>,
                  first: &Option<Time>| {
        if *phase != Some(WorkflowStepPhase::Running) {
            return None;
        }
        if retries_in(reason.as_deref(), message.as_deref()) > 0 {
            return Some(std::time::Duration::ZERO);
        }
        let since = now.0.duration_since(first.as_ref()?.0);
        Some(std::time::Duration::try_from(since).unwrap_or_default())
    };
    let shortest = status
        .steps
        .iter()
        .flat_map(|s| {
            std::iter::once(waited(
                &s.phase,
                &s.reason,
                &s.message,
                &s.first_execute_time,
            ))
            .chain(
                s.sub_steps
                    .iter()
                    .map(|x| waited(&x.phase, &x.reason, &x.message, &x.first_execute_time)),
            )
        })
        .flatten()
        .min();
    match shortest {
        Some(w) => (w / 4).clamp(poll, cap.max(poll)),
        None => poll,
    }
}

/// The reason of a failure worth retrying (a provider's error: something did not answer).
pub const RETRYABLE: &str = "Execute";
/// The reason of a step waiting to be retried.
const RETRY: &str = "Retry";
/// How often a step is retried before the workflow fails, unless the controller says otherwise.
pub const MAX_RETRIES: u32 = 10;

/// How a step's provider errors are retried: KubeVela's controller flags
/// `--max-workflow-step-error-retry-times` (`limit`) and `--max-workflow-failed-backoff-time`
/// (`max_backoff`). The wait before retry `n` is 5 s doubling, at most `max_backoff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retries {
    /// Retries after the first failure; once they are used up the step fails
    /// (`FailedAfterRetries`). 0 fails at the first provider error.
    pub limit: u32,
    /// The longest wait between two tries.
    pub max_backoff: std::time::Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            limit: MAX_RETRIES,
            max_backoff: std::time::Duration::from_secs(300),
        }
    }
}

impl Retries {
    /// The wait before retry `n` (1-based): 5 s doubling, at most `max_backoff`.
    pub fn backoff(&self, n: u32) -> std::time::Duration {
        let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(16));
        std::time::Duration::from_secs(secs).min(self.max_backoff)
    }
}

/// The wait before retry `n` (1-based) by default: 5 s doubling, at most 5 minutes.
pub fn backoff(n: u32) -> std::time::Duration {
    Retries::default().backoff(n)
}

/// Retries so far, as a step's status says (`retry N/…`, with the reason `Retry`, or `Resumed`
/// for a step retried after it was resumed).
fn retries_in(reason: Option<&str>, message: Option<&str>) -> u32 {
    if !matches!(reason, Some(RETRY | RESUMED)) {
        return 0;
    }
    message
        .and_then(|m| m.strip_prefix("retry "))
        .and_then(|m| m.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn retries_of(st: &WorkflowStepStatus) -> u32 {
    retries_in(st.reason.as_deref(), st.message.as_deref())
}

/// Whether a step waiting for a retry may run now.
fn due(
    retries: &Retries,
    reason: Option<&str>,
    message: Option<&str>,
    last: Option<&Time>,
    now: &Time,
) -> bool {
    let n = retries_in(reason, message);
    if n == 0 {
        return true;
    }
    let Some(last) = last else {
        return true;
    };
    now.0.duration_since(last.0).as_secs()
        >= i64::try_from(retries.backoff(n).as_secs()).unwrap_or(i64::MAX)
}

fn retry_due(retries: &Retries, st: &WorkflowStepStatus, now: &Time) -> bool {
    due(
        retries,
        st.reason.as_deref(),
        st.message.as_deref(),
        st.last_execute_time.as_ref(),
        now,
    )
}

/// The phase, reason and message a failure gives: a provider's error is retried (the step
/// keeps running, its message says when) until the retry limit, then it fails. A step that was
/// `resumed` keeps that reason while it is retried, so that it is not asked for approval again.
fn failure(
    retries: &Retries,
    tried: u32,
    resumed: bool,
    reason: String,
    message: String,
) -> (WorkflowStepPhase, String, String) {
    let limit = retries.limit;
    if reason == RETRYABLE && tried < limit {
        let n = tried + 1;
        (
            WorkflowStepPhase::Running,
            if resumed { RESUMED } else { RETRY }.into(),
            format!(
                "retry {n}/{limit} in {}: {message}",
                humanize(retries.backoff(n))
            ),
        )
    } else if reason == RETRYABLE {
        (
            WorkflowStepPhase::Failed,
            "FailedAfterRetries".into(),
            format!(
                "failed after {tried} {}: {message}",
                if tried == 1 { "retry" } else { "retries" }
            ),
        )
    } else {
        (WorkflowStepPhase::Failed, reason, message)
    }
}

/// The type of a step that runs its `subSteps` together.
pub const STEP_GROUP: &str = "step-group";

/// One round of a step group: sub-steps past their `timeout` fail; every sub-step whose
/// dependencies (within the group) are done is judged by its `if` (without one, it is skipped
/// when a sub-step failed) and runs; a provider's error is retried with backoff, as for any
/// step. The group fails naming its first failed sub-step once every sub-step is done,
/// suspends while one is suspended, and succeeds when all are done.
async fn run_group<R: StepRunner>(
    group: &PlannedStep,
    mut subs: Vec<oam::StepStatus>,
    context: &WorkflowStatus,
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
    let t = now();
    // Timeouts first: a sub-step still running or suspended past its own timeout fails.
    for s in &group.sub_steps {
        let Some(limit) = s.timeout.as_deref() else {
            continue;
        };
        let Some(x) = subs.iter_mut().find(|x| x.name.as_deref() == Some(&s.name)) else {
            continue;
        };
        if !matches!(
            x.phase,
            Some(WorkflowStepPhase::Running | WorkflowStepPhase::Suspending)
        ) {
            continue;
        }
        let Some(started) = x.first_execute_time.as_ref() else {
            continue;
        };
        match crate::parse_duration(limit) {
            None => {
                x.phase = Some(WorkflowStepPhase::Failed);
                x.reason = Some("InvalidTimeout".into());
                x.message = Some(format!(
                    "timeout {limit:?} is not a duration (e.g. 30s, 10m, 1h30m)"
                ));
            }
            Some(d) if t.0.duration_since(started.0).as_secs() >= d.as_secs() as i64 => {
                let was = x.message.clone().unwrap_or_default();
                x.phase = Some(WorkflowStepPhase::Failed);
                x.reason = Some("Timeout".into());
                x.message = Some(if was.is_empty() {
                    format!("timed out after {limit}")
                } else {
                    format!("timed out after {limit} ({was})")
                });
                x.last_execute_time = Some(t.clone());
            }
            Some(_) => {}
        }
    }
    gate_sub_steps(group, &mut subs, context, runner, &t);
    let phase_of = |subs: &[oam::StepStatus], name: &str| {
        subs.iter()
            .find(|x| x.name.as_deref() == Some(name))
            .and_then(|x| x.phase.clone())
    };
    let ready: Vec<&PlannedStep> = group
        .sub_steps
        .iter()
        .filter(|s| {
            subs.iter()
                .find(|x| x.name.as_deref() == Some(&s.name))
                .is_some_and(|x| {
                    is_pending(x.phase.as_ref())
                        && due(
                            &runner.retries(),
                            x.reason.as_deref(),
                            x.message.as_deref(),
                            x.last_execute_time.as_ref(),
                            &t,
                        )
                })
        })
        .filter(|s| {
            s.depends_on
                .iter()
                .all(|d| is_terminal(phase_of(&subs, d).as_ref()))
        })
        .collect();
    let ready: Vec<PlannedStep> = ready
        .into_iter()
        .map(|s| {
            let mut s = s.clone();
            s.resumed = subs.iter().any(|x| {
                x.name.as_deref() == Some(&s.name) && x.reason.as_deref() == Some(RESUMED)
            });
            s
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
                Some(waiting(x.reason.as_deref()).to_string()),
            ),
            StepOutcome::Suspended { message } => (WorkflowStepPhase::Suspending, message, None),
            StepOutcome::Failed { reason, message } => {
                let tried = retries_in(x.reason.as_deref(), x.message.as_deref());
                let resumed = x.reason.as_deref() == Some(RESUMED);
                let (phase, reason, message) =
                    failure(&runner.retries(), tried, resumed, reason, message);
                (phase, message, Some(reason))
            }
        };
        x.phase = Some(phase);
        x.message = non_empty(message);
        x.reason = reason;
    }
    // What this round's outcomes decided (a failure skips what has no `if`; an `if` can now
    // be judged).
    gate_sub_steps(group, &mut subs, context, runner, &now());
    let name = |x: &oam::StepStatus| x.name.clone().unwrap_or_default();
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
        if let Some(f) = subs
            .iter()
            .find(|x| x.phase == Some(WorkflowStepPhase::Failed))
        {
            // Retries were the sub-step's own; the group does not retry it again.
            let reason = match f.reason.clone() {
                Some(r) if r == RETRYABLE => "Failed".to_string(),
                Some(r) => r,
                None => "Failed".into(),
            };
            return (
                StepOutcome::Failed {
                    reason,
                    message: format!(
                        "sub-step {}: {}",
                        name(f),
                        f.message.clone().unwrap_or_default()
                    ),
                },
                subs,
            );
        }
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

/// Decide the sub-steps of a group whose dependencies are done but that must not run: one
/// whose `if` is false, or, without `if`, one after a failure (of a dependency, or of any
/// sub-step of the group: a failed group runs only what asks to with `if`). An `if` sees
/// `status.<step>` of the workflow's steps and of the group's sub-steps, and `inputs`.
fn gate_sub_steps<R: StepRunner>(
    group: &PlannedStep,
    subs: &mut [oam::StepStatus],
    context: &WorkflowStatus,
    runner: &R,
    now: &Time,
) {
    let variables = runner.variables();
    loop {
        let mut changed = false;
        let failed_in_group = subs.iter().any(|x| {
            x.phase == Some(WorkflowStepPhase::Failed)
                || (x.phase == Some(WorkflowStepPhase::Skipped)
                    && x.reason.as_deref() == Some(SKIPPED_AFTER_FAILURE))
        });
        for s in &group.sub_steps {
            let Some(i) = subs.iter().position(|x| x.name.as_deref() == Some(&s.name)) else {
                continue;
            };
            let started = subs[i].first_execute_time.is_some();
            let phase = subs[i].phase.clone();
            let deps_done = s.depends_on.iter().all(|d| {
                subs.iter()
                    .find(|x| x.name.as_deref() == Some(d))
                    .is_none_or(|x| is_terminal(x.phase.as_ref()))
            });
            let if_ = s.if_.as_deref().map(str::trim).filter(|c| !c.is_empty());
            match if_ {
                None => {
                    // Without `if`, nothing more of a failed group runs: what waits to start
                    // or is still running is skipped.
                    if failed_in_group && is_pending(phase.as_ref()) {
                        let x = &mut subs[i];
                        x.phase = Some(WorkflowStepPhase::Skipped);
                        x.reason = Some(SKIPPED_AFTER_FAILURE.into());
                        x.message = Some("skipped: a sub-step of the group failed".into());
                        x.last_execute_time = Some(now.clone());
                        changed = true;
                    }
                }
                Some("always") => {}
                Some(expr) => {
                    // Judged once, before it first runs, when its dependencies are done.
                    if started
                        || !deps_done
                        || !matches!(phase, None | Some(WorkflowStepPhase::Pending))
                    {
                        continue;
                    }
                    let mut view = context.clone();
                    view.steps.extend(subs.iter().map(|x| WorkflowStepStatus {
                        id: x.id.clone(),
                        name: x.name.clone(),
                        type_: x.type_.clone(),
                        phase: x.phase.clone(),
                        message: x.message.clone(),
                        reason: x.reason.clone(),
                        ..WorkflowStepStatus::default()
                    }));
                    let x = &mut subs[i];
                    match evaluate_if(expr, &view, &variables) {
                        Ok(true) => {}
                        Ok(false) => {
                            x.phase = Some(WorkflowStepPhase::Skipped);
                            x.reason = Some("Skip".into());
                            x.message = Some(format!("skipped: if {expr:?} is false"));
                            x.last_execute_time = Some(now.clone());
                            changed = true;
                        }
                        Err(e) => {
                            x.phase = Some(WorkflowStepPhase::Failed);
                            x.reason = Some("InvalidIf".into());
                            x.message = Some(format!("if {expr:?}: {e}"));
                            x.last_execute_time = Some(now.clone());
                            changed = true;
                        }
                    }
                }
            }
        }
        if !changed {
            return;
        }
    }
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
    let duration = |step: &PlannedStep| {
        step.properties
            .get("duration")
            .and_then(serde_json::Value::as_str)
            .and_then(crate::parse_duration)
    };
    for step in &plan.steps {
        // A timed `suspend` inside a step group: the sub-step is done, and the group goes on
        // with its other sub-steps once none of them is suspended any more.
        if step.type_ == STEP_GROUP {
            let Some(st) = status.step_mut(&step.name) else {
                continue;
            };
            if st.phase != Some(WorkflowStepPhase::Suspending) {
                continue;
            }
            for sub in &step.sub_steps {
                let Some(d) = duration(sub) else {
                    continue;
                };
                let Some(x) = st
                    .sub_steps
                    .iter_mut()
                    .find(|x| x.name.as_deref() == Some(&sub.name))
                else {
                    continue;
                };
                if x.phase != Some(WorkflowStepPhase::Suspending) {
                    continue;
                }
                let Some(started) = x.first_execute_time.as_ref() else {
                    continue;
                };
                if t.0.duration_since(started.0).as_secs() >= d.as_secs() as i64 {
                    x.phase = Some(WorkflowStepPhase::Succeeded);
                    x.message = Some(format!("resumed after {}", humanize(d)));
                    x.last_execute_time = Some(t.clone());
                }
            }
            if !st
                .sub_steps
                .iter()
                .any(|x| x.phase == Some(WorkflowStepPhase::Suspending))
            {
                st.phase = Some(WorkflowStepPhase::Running);
                st.message = Some("resumed".into());
                st.last_execute_time = Some(t.clone());
                resumed = true;
            }
            continue;
        }
        let Some(d) = duration(step) else {
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
fn ready_steps(
    plan: &Plan,
    status: &WorkflowStatus,
    retries: &Retries,
    now: &Time,
) -> Vec<PlannedStep> {
    let mut ready = ready_steps_of(plan, status, retries, now);
    for s in ready.iter_mut() {
        s.resumed = status
            .step(&s.name)
            .is_some_and(|x| x.reason.as_deref() == Some(RESUMED));
    }
    ready
}

fn ready_steps_of(
    plan: &Plan,
    status: &WorkflowStatus,
    retries: &Retries,
    now: &Time,
) -> Vec<PlannedStep> {
    let phase_of = |name: &str| status.step(name).and_then(|s| s.phase.clone());
    let due = |name: &str| status.step(name).is_none_or(|s| retry_due(retries, s, now));
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

/// The reason of a step that suspended itself before its work and was resumed: it runs again,
/// knowing it was approved ([`PlannedStep::resumed`]), until it is done.
pub const RESUMED: &str = "Resumed";

/// Whether a step of this type that suspended runs again once resumed: every step but
/// `suspend` itself (whose whole work is to wait) suspends *before* its work, as `deploy` with
/// `auto: false` does, or in the middle of its CUE (`builtin.#Suspend`).
fn runs_again(type_: Option<&str>) -> bool {
    !matches!(type_, Some("suspend") | None)
}

/// The reason of a step still running: `Wait`, or still `Resumed`.
fn waiting(reason: Option<&str>) -> &'static str {
    if reason == Some(RESUMED) {
        RESUMED
    } else {
        "Wait"
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
    #[test]
    fn the_recheck_of_a_waiting_step_backs_off_up_to_the_cap() {
        use std::time::Duration;
        let at = |s: &str| Time(s.parse().expect("a timestamp"));
        // A step with a reason here is waiting for its first retry.
        let step = |phase, reason: Option<&str>, first: &str| WorkflowStepStatus {
            phase: Some(phase),
            reason: reason.map(str::to_string),
            message: reason.map(|_| "retry 1/10 in 5s: connection refused".to_string()),
            first_execute_time: Some(at(first)),
            ..WorkflowStepStatus::default()
        };
        let poll = Duration::from_millis(500);
        let cap = Duration::from_secs(60);
        let now = at("2026-11-26T07:00:00Z");
        let with = |steps: Vec<WorkflowStepStatus>| WorkflowStatus {
            steps,
            ..WorkflowStatus::default()
        };
        // Just started: the poll interval.
        let s = with(vec![step(
            WorkflowStepPhase::Running,
            None,
            "2026-11-26T07:00:00Z",
        )]);
        assert_eq!(wait_backoff(&s, &now, poll, cap), poll);
        // Waiting 40 s: 10 s; 10 minutes: the cap.
        let s = with(vec![step(
            WorkflowStepPhase::Running,
            None,
            "2026-11-26T06:59:20Z",
        )]);
        assert_eq!(wait_backoff(&s, &now, poll, cap), Duration::from_secs(10));
        let s = with(vec![step(
            WorkflowStepPhase::Running,
            None,
            "2026-11-26T06:50:00Z",
        )]);
        assert_eq!(wait_backoff(&s, &now, poll, cap), cap);
        // The step that waits least decides; a retrying one keeps the poll interval; finished
        // steps do not count.
        let s = with(vec![
            step(WorkflowStepPhase::Running, None, "2026-11-26T06:50:00Z"),
            step(WorkflowStepPhase::Running, None, "2026-11-26T06:59:52Z"),
            step(WorkflowStepPhase::Succeeded, None, "2026-11-26T07:00:00Z"),
        ]);
        assert_eq!(wait_backoff(&s, &now, poll, cap), Duration::from_secs(2));
        let s = with(vec![
            step(WorkflowStepPhase::Running, None, "2026-11-26T06:50:00Z"),
            step(
                WorkflowStepPhase::Running,
                Some(RETRY),
                "2026-11-26T06:50:00Z",
            ),
        ]);
        assert_eq!(wait_backoff(&s, &now, poll, cap), poll);
        // A resumed step being retried too; one merely running after its approval does not.
        let s = with(vec![
            step(WorkflowStepPhase::Running, None, "2026-11-26T06:50:00Z"),
            step(
                WorkflowStepPhase::Running,
                Some(RESUMED),
                "2026-11-26T06:50:00Z",
            ),
        ]);
        assert_eq!(wait_backoff(&s, &now, poll, cap), poll);
        let mut resumed = step(WorkflowStepPhase::Running, None, "2026-11-26T06:50:00Z");
        resumed.reason = Some(RESUMED.into());
        resumed.message = Some("resumed".into());
        assert_eq!(wait_backoff(&with(vec![resumed]), &now, poll, cap), cap);
    }

    #[test]
    fn every_run_has_a_start_time_of_its_own_in_whole_seconds() {
        let at = |s: &str| Time(s.parse().expect("a timestamp"));
        let now = at("2026-11-26T06:30:00.750Z");
        assert_eq!(run_start(None, now.clone()), at("2026-11-26T06:30:00Z"));
        // A restart within the second of the run before, or with a clock behind it.
        let prev = at("2026-11-26T06:30:00Z");
        assert_eq!(
            run_start(Some(&prev), now.clone()),
            at("2026-11-26T06:30:01Z")
        );
        assert_eq!(
            run_start(Some(&at("2026-11-26T06:30:05Z")), now.clone()),
            at("2026-11-26T06:30:06Z")
        );
        assert_eq!(
            run_start(Some(&at("2026-11-26T06:29:59Z")), now),
            at("2026-11-26T06:30:00Z")
        );
    }

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
            resumed: false,
        }
    }

    /// A run past its first round (which only records the run).
    fn started(plan: &Plan, rev: &str, t: Time) -> WorkflowStatus {
        let mut st = Engine::start(plan, rev, t);
        assert_eq!(
            st.phase,
            Some(WorkflowRunPhase::Initializing),
            "a run starts initializing"
        );
        st.phase = Some(WorkflowRunPhase::Executing);
        st
    }

    #[tokio::test]
    async fn the_first_round_records_the_run_and_runs_nothing() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![step("a", &[])],
        };
        let mut st = Engine::start(&plan, "app-v1", now());
        let r = script(&[]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Running
        );
        assert!(r.ran.lock().unwrap().is_empty());
        assert_eq!(st.phase, Some(WorkflowRunPhase::Executing));
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Succeeded
        );
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
        let mut st = started(&plan, "app-v1", now());
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
        let mut st = started(&plan, "app-v1", now());
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
        let mut approve = step("approve", &[]);
        approve.type_ = "suspend".into();
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![step("staging", &[]), approve, step("prod", &[])],
        };
        let mut st = started(&plan, "app-v1", now());
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
        let mut st = started(&plan, "app-v1", now());
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
        let mut st = started(&plan, "app-v1", now());
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
        let mut st = started(&plan, "app-v1", now());
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
        let mut st = started(&plan, "app-v1", now());
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
        let mut st = started(&plan, "app-v1", at(0)());
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

    /// A runner whose provider errors are retried as the controller was told.
    struct Limited(Script, Retries);

    impl StepRunner for Limited {
        async fn run(&self, step: &PlannedStep) -> StepOutcome {
            self.0.run(step).await
        }
        fn retries(&self) -> Retries {
            self.1
        }
    }

    #[tokio::test]
    async fn the_retry_limit_and_the_longest_backoff_are_the_controllers() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![step("hook", &[])],
        };
        let retries = Retries {
            limit: 2,
            max_backoff: std::time::Duration::from_secs(7),
        };
        assert_eq!(retries.backoff(1).as_secs(), 5);
        assert_eq!(retries.backoff(2).as_secs(), 7);
        let r = Limited(
            script(&[(
                "hook",
                StepOutcome::Failed {
                    reason: RETRYABLE.into(),
                    message: "connection refused".into(),
                },
            )]),
            retries,
        );
        let mut st = started(&plan, "app-v1", at(0)());
        Engine::advance(&plan, &mut st, &r, at(0)).await;
        assert_eq!(
            st.step("hook").unwrap().message.as_deref(),
            Some("retry 1/2 in 5s: connection refused")
        );
        Engine::advance(&plan, &mut st, &r, at(5)).await;
        assert_eq!(
            st.step("hook").unwrap().message.as_deref(),
            Some("retry 2/2 in 7s: connection refused")
        );
        // The capped backoff: not after 6 s, after 7 s.
        Engine::advance(&plan, &mut st, &r, at(11)).await;
        assert_eq!(r.0.ran.lock().unwrap().len(), 2);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(12)).await,
            Progress::Failed
        );
        assert_eq!(r.0.ran.lock().unwrap().len(), 3);
        let s = st.step("hook").unwrap();
        assert_eq!(s.reason.as_deref(), Some("FailedAfterRetries"));
        assert_eq!(
            s.message.as_deref(),
            Some("failed after 2 retries: connection refused")
        );
        assert_eq!(
            st.message.as_deref(),
            Some("step hook: failed after 2 retries: connection refused")
        );

        // No retries at all: the first provider error fails the step.
        let r = Limited(
            script(&[(
                "hook",
                StepOutcome::Failed {
                    reason: RETRYABLE.into(),
                    message: "connection refused".into(),
                },
            )]),
            Retries {
                limit: 0,
                ..Retries::default()
            },
        );
        let mut st = started(&plan, "app-v1", at(0)());
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(0)).await,
            Progress::Failed
        );
        assert_eq!(
            st.step("hook").unwrap().message.as_deref(),
            Some("failed after 0 retries: connection refused")
        );
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
        let mut st = started(&plan, "app-v1", now());
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
        let mut st = started(&plan, "app-v1", now());
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
        let mut st = started(&plan, "app-v1", now());
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
        let mut st = started(&plan, "app-v1", at(0)());
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
        let mut st = started(&plan, "app-v1", at(0)());
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

    /// `deploy-prod` suspends before its work until resumed; its first resumed run gives `then`
    /// (waits one round, say), the next succeed. Every other step succeeds.
    struct ApprovalFirst {
        ran: Mutex<Vec<(String, bool)>>,
        then: StepOutcome,
    }

    impl ApprovalFirst {
        /// Its first resumed run waits for health.
        fn waiting() -> Self {
            ApprovalFirst {
                ran: Mutex::default(),
                then: StepOutcome::Running {
                    message: "waiting for health".into(),
                },
            }
        }

        /// `deploy-prod` suspended once, ran twice as approved, then `after` ran.
        fn ran_as_approved_twice_then_after(&self) {
            assert_eq!(
                *self.ran.lock().expect("lock"),
                [
                    ("deploy-prod".to_string(), false),
                    ("deploy-prod".to_string(), true),
                    ("deploy-prod".to_string(), true),
                    ("after".to_string(), false),
                ]
            );
        }
    }

    /// `deploy-prod` (a `deploy`, which suspends before its work), then `after`.
    fn approval_then_after() -> Plan {
        let mut prod = step("deploy-prod", &[]);
        prod.type_ = "deploy".into();
        Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![prod, step("after", &[])],
        }
    }

    impl StepRunner for ApprovalFirst {
        async fn run(&self, step: &PlannedStep) -> StepOutcome {
            let mut ran = self.ran.lock().expect("lock");
            ran.push((step.name.clone(), step.resumed));
            if step.name != "deploy-prod" {
                return StepOutcome::Succeeded {
                    message: String::new(),
                };
            }
            if !step.resumed {
                return StepOutcome::Suspended {
                    message: "approve first".into(),
                };
            }
            if ran.iter().filter(|(n, r)| n == "deploy-prod" && *r).count() == 1 {
                self.then.clone()
            } else {
                StepOutcome::Succeeded {
                    message: "deployed".into(),
                }
            }
        }
    }

    #[tokio::test]
    async fn a_step_that_suspends_before_its_work_does_it_once_resumed() {
        let plan = approval_then_after();
        let mut st = started(&plan, "app-v1", now());
        let r = ApprovalFirst::waiting();
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Suspended
        );
        assert_eq!(
            phase(&st, "deploy-prod"),
            Some(WorkflowStepPhase::Suspending)
        );
        // Resumed: it runs again, told so; it still runs (and is still resumed) next round.
        st.suspend = false;
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Running
        );
        assert_eq!(phase(&st, "deploy-prod"), Some(WorkflowStepPhase::Running));
        assert_eq!(
            st.step("deploy-prod").unwrap().reason.as_deref(),
            Some(RESUMED)
        );
        let mut progress = Progress::Running;
        for _ in 0..3 {
            progress = Engine::advance(&plan, &mut st, &r, now).await;
            if progress != Progress::Running {
                break;
            }
        }
        assert_eq!(progress, Progress::Succeeded);
        assert!(!st.suspend);
        r.ran_as_approved_twice_then_after();
        assert_eq!(
            st.step("deploy-prod").unwrap().message.as_deref(),
            Some("deployed")
        );
    }

    #[tokio::test]
    async fn a_resumed_step_retried_after_an_error_is_not_asked_for_approval_again() {
        let plan = approval_then_after();
        let mut st = started(&plan, "app-v1", at(0)());
        let r = ApprovalFirst {
            ran: Mutex::default(),
            then: StepOutcome::Failed {
                reason: RETRYABLE.into(),
                message: "cluster prod did not answer".into(),
            },
        };
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(0)).await,
            Progress::Suspended
        );
        st.suspend = false;
        // Resumed: the attempt fails with a provider's error and waits for its retry.
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(1)).await,
            Progress::Running
        );
        let s = st.step("deploy-prod").unwrap();
        assert_eq!(s.phase, Some(WorkflowStepPhase::Running));
        assert_eq!(s.reason.as_deref(), Some(RESUMED));
        assert_eq!(
            s.message.as_deref(),
            Some("retry 1/10 in 5s: cluster prod did not answer")
        );
        // Not due yet: nothing runs.
        Engine::advance(&plan, &mut st, &r, at(3)).await;
        assert_eq!(r.ran.lock().unwrap().len(), 2);
        // The retry runs the step as resumed: it does its work instead of suspending again.
        let mut progress = Progress::Running;
        for t in 6..9 {
            progress = Engine::advance(&plan, &mut st, &r, at(t)).await;
            if progress != Progress::Running {
                break;
            }
        }
        assert_eq!(progress, Progress::Succeeded);
        assert!(!st.suspend);
        r.ran_as_approved_twice_then_after();
    }

    #[tokio::test]
    async fn inside_a_group_too_a_resumed_sub_step_does_its_work() {
        let mut prod = step("deploy-prod", &[]);
        prod.type_ = "deploy".into();
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![group_of("g", vec![step("a", &[]), prod])],
        };
        let mut st = started(&plan, "app-v1", now());
        let r = ApprovalFirst::waiting();
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Suspended
        );
        st.suspend = false;
        let mut progress = Progress::Running;
        for _ in 0..4 {
            progress = Engine::advance(&plan, &mut st, &r, now).await;
            if progress != Progress::Running {
                break;
            }
        }
        assert_eq!(progress, Progress::Succeeded);
        let ran = r.ran.lock().unwrap().clone();
        assert!(ran.contains(&("deploy-prod".to_string(), true)), "{ran:?}");
        assert_eq!(
            sub_phase(&st, "g", "deploy-prod"),
            Some(WorkflowStepPhase::Succeeded)
        );
    }

    #[tokio::test]
    async fn a_timed_suspend_inside_a_group_resumes_by_itself() {
        let mut wait = step("wait", &[]);
        wait.type_ = "suspend".into();
        wait.properties = serde_json::json!({"duration": "30s"});
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![
                group_of("g", vec![step("a", &[]), wait, step("b", &["wait"])]),
                step("next", &[]),
            ],
        };
        let mut st = started(&plan, "app-v1", at(0)());
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
            sub_phase(&st, "g", "wait"),
            Some(WorkflowStepPhase::Suspending)
        );
        // Not yet.
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(10)).await,
            Progress::Suspended
        );
        assert!(st.suspend);
        // Past its duration: no one resumes it, and the group and the workflow go on.
        let mut progress = Progress::Running;
        for _ in 0..4 {
            progress = Engine::advance(&plan, &mut st, &r, at(31)).await;
            if progress != Progress::Running {
                break;
            }
        }
        assert_eq!(progress, Progress::Succeeded);
        assert!(!st.suspend);
        let wait = st
            .step("g")
            .unwrap()
            .sub_steps
            .iter()
            .find(|x| x.name.as_deref() == Some("wait"))
            .unwrap();
        assert_eq!(wait.phase, Some(WorkflowStepPhase::Succeeded));
        assert_eq!(wait.message.as_deref(), Some("resumed after 30s"));
        assert_eq!(sub_phase(&st, "g", "b"), Some(WorkflowStepPhase::Succeeded));
        assert_eq!(phase(&st, "next"), Some(WorkflowStepPhase::Succeeded));
        assert_eq!(*r.ran.lock().unwrap(), ["a", "wait", "b", "next"]);
    }

    #[tokio::test]
    async fn terminate_stops_everything() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![step("a", &[])],
        };
        let mut st = started(&plan, "app-v1", now());
        st.terminated = true;
        let r = script(&[]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, now).await,
            Progress::Terminated
        );
        assert_eq!(st.phase, Some(WorkflowRunPhase::Terminated));
        assert!(r.ran.lock().expect("lock").is_empty());
    }
    fn group_of(name: &str, subs: Vec<PlannedStep>) -> PlannedStep {
        let mut g = step(name, &[]);
        g.type_ = STEP_GROUP.into();
        g.sub_steps = subs;
        g
    }

    fn sub_phase(st: &WorkflowStatus, group: &str, name: &str) -> Option<WorkflowStepPhase> {
        st.step(group)?
            .sub_steps
            .iter()
            .find(|x| x.name.as_deref() == Some(name))
            .and_then(|x| x.phase.clone())
    }

    fn sub_of<'a>(st: &'a WorkflowStatus, group: &str, name: &str) -> &'a oam::StepStatus {
        st.step(group)
            .and_then(|g| g.sub_steps.iter().find(|x| x.name.as_deref() == Some(name)))
            .expect("sub-step status")
    }

    async fn run_until_settled<R: StepRunner>(
        plan: &Plan,
        st: &mut WorkflowStatus,
        r: &R,
        at: impl Fn() -> Time + Copy,
    ) -> Progress {
        let mut progress = Progress::Running;
        for _ in 0..10 {
            progress = Engine::advance(plan, st, r, at).await;
            if progress != Progress::Running {
                break;
            }
        }
        progress
    }

    #[tokio::test]
    async fn sub_steps_follow_their_if() {
        let group = group_of(
            "group",
            vec![
                step("deploy", &[]),
                with_if(step("on-failure", &["deploy"]), "status.deploy.failed"),
                with_if(step("on-success", &["deploy"]), "status.deploy.succeeded"),
                with_if(
                    step("earlier-ok", &[]),
                    "status.before.phase == \"succeeded\"",
                ),
                with_if(step("broken", &["deploy"]), "status.deploy.phase +"),
            ],
        );
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![step("before", &[]), group],
        };
        let mut st = started(&plan, "app-v1", now());
        let r = script(&[]);
        assert_eq!(
            run_until_settled(&plan, &mut st, &r, now).await,
            Progress::Failed
        );
        assert_eq!(
            sub_phase(&st, "group", "on-failure"),
            Some(WorkflowStepPhase::Skipped)
        );
        assert_eq!(
            sub_of(&st, "group", "on-failure").message.as_deref(),
            Some("skipped: if \"status.deploy.failed\" is false")
        );
        assert_eq!(
            sub_phase(&st, "group", "on-success"),
            Some(WorkflowStepPhase::Succeeded)
        );
        assert_eq!(
            sub_phase(&st, "group", "earlier-ok"),
            Some(WorkflowStepPhase::Succeeded)
        );
        let broken = sub_of(&st, "group", "broken");
        assert_eq!(broken.reason.as_deref(), Some("InvalidIf"));
        assert!(
            st.message
                .as_deref()
                .unwrap_or("")
                .starts_with("step group: sub-step broken: if"),
            "{:?}",
            st.message
        );
        let ran = r.ran.lock().unwrap().clone();
        assert!(!ran.contains(&"on-failure".to_string()), "{ran:?}");
        assert!(!ran.contains(&"broken".to_string()), "{ran:?}");
    }

    #[tokio::test]
    async fn a_failed_sub_step_still_runs_the_sub_steps_whose_if_asks_for_it() {
        let group = group_of(
            "group",
            vec![
                step("deploy", &[]),
                step("next", &["deploy"]),
                with_if(step("rollback", &["deploy"]), "status.deploy.failed"),
                with_if(step("report", &["next"]), "always"),
            ],
        );
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![group],
        };
        let mut st = started(&plan, "app-v1", now());
        let r = script(&[(
            "deploy",
            StepOutcome::Failed {
                reason: "ApplyFailed".into(),
                message: "invalid".into(),
            },
        )]);
        assert_eq!(
            run_until_settled(&plan, &mut st, &r, now).await,
            Progress::Failed
        );
        assert_eq!(
            sub_phase(&st, "group", "next"),
            Some(WorkflowStepPhase::Skipped)
        );
        assert_eq!(
            sub_phase(&st, "group", "rollback"),
            Some(WorkflowStepPhase::Succeeded)
        );
        assert_eq!(
            sub_phase(&st, "group", "report"),
            Some(WorkflowStepPhase::Succeeded)
        );
        assert_eq!(*r.ran.lock().unwrap(), ["deploy", "rollback", "report"]);
        assert_eq!(
            st.message.as_deref(),
            Some("step group: sub-step deploy: invalid")
        );
        assert_eq!(
            st.step("group").unwrap().reason.as_deref(),
            Some("ApplyFailed")
        );
    }

    #[tokio::test]
    async fn a_sub_step_past_its_timeout_fails_the_group() {
        let mut slow = step("slow", &[]);
        slow.timeout = Some("30s".into());
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![group_of("group", vec![slow, step("other", &[])])],
        };
        let mut st = started(&plan, "app-v1", at(0)());
        let r = script(&[(
            "slow",
            StepOutcome::Running {
                message: "0/1 ready".into(),
            },
        )]);
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(0)).await,
            Progress::Running
        );
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(20)).await,
            Progress::Running
        );
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(31)).await,
            Progress::Failed
        );
        let slow = sub_of(&st, "group", "slow");
        assert_eq!(slow.reason.as_deref(), Some("Timeout"));
        assert_eq!(
            slow.message.as_deref(),
            Some("timed out after 30s (0/1 ready)")
        );
        assert_eq!(
            sub_phase(&st, "group", "other"),
            Some(WorkflowStepPhase::Succeeded)
        );
        assert_eq!(st.step("group").unwrap().reason.as_deref(), Some("Timeout"));
        // Ran at 0 and 20; at 31 it had timed out before it could run again.
        assert_eq!(*r.ran.lock().unwrap(), ["slow", "other", "slow"]);
    }

    /// A runner whose step fails with a provider error the first `fail` times it runs.
    struct Flaky {
        fail: u32,
        runs: Mutex<Vec<String>>,
    }

    impl StepRunner for Flaky {
        async fn run(&self, step: &PlannedStep) -> StepOutcome {
            let mut runs = self.runs.lock().expect("lock");
            runs.push(step.name.clone());
            let n = runs.iter().filter(|r| **r == step.name).count() as u32;
            if step.name == "hook" && n <= self.fail {
                StepOutcome::Failed {
                    reason: RETRYABLE.into(),
                    message: "connection refused".into(),
                }
            } else {
                StepOutcome::Succeeded {
                    message: String::new(),
                }
            }
        }
    }

    #[tokio::test]
    async fn a_sub_step_is_retried_with_backoff_inside_its_group() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![group_of(
                "group",
                vec![step("hook", &[]), step("after", &["hook"])],
            )],
        };
        let mut st = started(&plan, "app-v1", at(0)());
        let r = Flaky {
            fail: 2,
            runs: Mutex::default(),
        };
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(0)).await,
            Progress::Running
        );
        let hook = sub_of(&st, "group", "hook");
        assert_eq!(hook.phase, Some(WorkflowStepPhase::Running));
        assert_eq!(
            hook.message.as_deref(),
            Some("retry 1/10 in 5s: connection refused")
        );
        assert_eq!(
            st.step("group").unwrap().message.as_deref(),
            Some("waiting for hook: retry 1/10 in 5s: connection refused; after")
        );
        // Not before the backoff.
        Engine::advance(&plan, &mut st, &r, at(3)).await;
        assert_eq!(r.runs.lock().unwrap().len(), 1);
        Engine::advance(&plan, &mut st, &r, at(5)).await;
        assert_eq!(
            sub_of(&st, "group", "hook").message.as_deref(),
            Some("retry 2/10 in 10s: connection refused")
        );
        Engine::advance(&plan, &mut st, &r, at(15)).await;
        assert_eq!(
            sub_phase(&st, "group", "hook"),
            Some(WorkflowStepPhase::Succeeded)
        );
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(15)).await,
            Progress::Succeeded
        );
        assert_eq!(*r.runs.lock().unwrap(), ["hook", "hook", "hook", "after"]);
    }

    #[tokio::test]
    async fn a_sub_step_out_of_retries_fails_the_group_once() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![group_of("group", vec![step("hook", &[])])],
        };
        let mut st = started(&plan, "app-v1", at(0)());
        let r = Flaky {
            fail: 100,
            runs: Mutex::default(),
        };
        let mut t = 0;
        Engine::advance(&plan, &mut st, &r, at(t)).await;
        for n in 1..=MAX_RETRIES {
            t += backoff(n).as_secs() as i64;
            Engine::advance(&plan, &mut st, &r, at(t)).await;
        }
        assert_eq!(r.runs.lock().unwrap().len(), 11);
        let hook = sub_of(&st, "group", "hook");
        assert_eq!(hook.reason.as_deref(), Some("FailedAfterRetries"));
        let g = st.step("group").unwrap();
        assert_eq!(g.phase, Some(WorkflowStepPhase::Failed));
        assert_eq!(g.reason.as_deref(), Some("FailedAfterRetries"));
        // The group does not start the retries over.
        assert_eq!(
            Engine::advance(&plan, &mut st, &r, at(t + 1000)).await,
            Progress::Failed
        );
        assert_eq!(r.runs.lock().unwrap().len(), 11);
    }

    #[tokio::test]
    async fn restarting_a_failed_group_runs_again_what_did_not_succeed() {
        let plan = Plan {
            mode: WorkflowMode::StepByStep,
            steps: vec![
                step("first", &[]),
                group_of(
                    "group",
                    vec![step("ok", &[]), step("bad", &[]), step("later", &["bad"])],
                ),
                step("last", &[]),
            ],
        };
        let mut st = started(&plan, "app-v1", now());
        let failing = script(&[(
            "bad",
            StepOutcome::Failed {
                reason: "ApplyFailed".into(),
                message: "quota".into(),
            },
        )]);
        assert_eq!(
            run_until_settled(&plan, &mut st, &failing, now).await,
            Progress::Failed
        );
        assert_eq!(phase(&st, "last"), Some(WorkflowStepPhase::Skipped));
        // Unknown steps are refused naming the ones there are.
        let err = Engine::restart_from(&plan, &mut st.clone(), "nope", now()).unwrap_err();
        assert!(err.contains("group/bad"), "{err}");
        Engine::restart_from(&plan, &mut st, "group", now()).unwrap();
        assert!(!st.finished);
        assert_eq!(phase(&st, "first"), Some(WorkflowStepPhase::Succeeded));
        assert_eq!(phase(&st, "group"), Some(WorkflowStepPhase::Pending));
        assert_eq!(
            sub_phase(&st, "group", "ok"),
            Some(WorkflowStepPhase::Succeeded)
        );
        assert_eq!(
            sub_phase(&st, "group", "bad"),
            Some(WorkflowStepPhase::Pending)
        );
        assert_eq!(phase(&st, "last"), Some(WorkflowStepPhase::Pending));
        let fixed = script(&[]);
        assert_eq!(
            run_until_settled(&plan, &mut st, &fixed, now).await,
            Progress::Succeeded
        );
        assert_eq!(*fixed.ran.lock().unwrap(), ["bad", "later", "last"]);
        // Naming a sub-step runs it again even though it succeeded.
        Engine::restart_from(&plan, &mut st, "ok", now()).unwrap();
        let again = script(&[]);
        run_until_settled(&plan, &mut st, &again, now).await;
        assert_eq!(*again.ran.lock().unwrap(), ["ok", "last"]);
    }
}
