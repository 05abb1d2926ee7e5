//! Scheduled workflow restarts (`app.oam.dev/restart-workflow`, `status.workflowRestartScheduledAt`):
//! the annotation's time goes into the status (a one-off annotation is then removed, as
//! KubeVela does, so that a GitOps re-apply does not schedule it again), and once the time has
//! come and the run has finished, the workflow starts again on the same revision. The rules are
//! `workflow::schedule`'s.

use crate::Error;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{Patch, PatchParams};
use oam::labels::ANNOTATION_WORKFLOW_RESTART;
use oam::{Application, ApplicationStatus};
use serde_json::json;
use std::time::Duration;
use workflow::schedule::{Due, Restart};
use workflow::{Engine, Plan};

/// Before the workflow advances. Returns how soon to look again when a restart waits for its
/// time; an annotation that cannot be read is reported in the `WorkflowRestart` condition.
pub(crate) async fn apply(
    api: &Api<Application>,
    app: &Application,
    status: &mut ApplicationStatus,
    plan: &Plan,
    revision: &str,
    now: Time,
) -> Result<Option<Duration>, Error> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let value = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_WORKFLOW_RESTART));
    if let Some(value) = value {
        match Restart::parse(value, now.0) {
            Ok(restart) => {
                let at = restart.due_at(status.workflow.as_ref(), now.0);
                status.workflow_restart_scheduled_at = Some(Time(at));
                status.conditions.retain(|c| c.type_ != "WorkflowRestart");
                if restart.once() {
                    // The time goes into the status before the annotation goes: the update that
                    // removes it (and triggers the next reconcile) then carries the time.
                    let patch = json!({"status": {"workflowRestartScheduledAt": Time(at)}});
                    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(Error::hub(
                            "schedule the workflow restart of",
                            format!("application {name}"),
                        ))?;
                    let patch =
                        json!({"metadata": {"annotations": {ANNOTATION_WORKFLOW_RESTART: null}}});
                    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(Error::hub(
                            "remove the restart-workflow annotation of",
                            format!("application {name}"),
                        ))?;
                }
            }
            Err(message) => {
                crate::reconcile::set_condition(
                    status,
                    "WorkflowRestart",
                    false,
                    "InvalidAnnotation",
                    &message,
                );
            }
        }
    }
    let Some(at) = status.workflow_restart_scheduled_at.clone() else {
        return Ok(None);
    };
    match workflow::schedule::due(&at, status.workflow.as_ref(), now.0) {
        Due::Now => {
            tracing::info!(application = %name, at = %at.0, "scheduled workflow restart");
            let previous = status.workflow.as_ref().and_then(|w| w.start_time.clone());
            let mut run = Engine::start(plan, revision, now.clone());
            run.start_time = Some(workflow::run_start(previous.as_ref(), now));
            status.workflow = Some(run);
            status.services.clear();
            status.workflow_restart_scheduled_at = None;
            Ok(None)
        }
        Due::Spent => {
            status.workflow_restart_scheduled_at = None;
            Ok(None)
        }
        Due::Later(wait) => Ok(Some(wait)),
        Due::AfterRun => Ok(None),
    }
}
