//! `sail workflow suspend | resume | terminate | restart | rollback | logs NAME [--step S]`:
//! control a running workflow by writing the Application's `status.workflow`, which the
//! controller reads, or show what each step did.

use crate::Error;
use crate::hub::Hub;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use oam::{Application, WorkflowStatus};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Pause after the running steps.
    Suspend,
    /// Continue a suspended workflow (approve a `suspend` step).
    Resume,
    /// Stop the workflow; it runs again only when the application changes or is restarted.
    Terminate,
    /// Run the workflow again from its first step (with --step: from that step).
    Restart,
    /// Set the application back to the last revision whose workflow succeeded, and run it.
    Rollback,
    /// What each step did: phase, times, reason, messages, outputs, requests sent.
    Logs,
}

pub async fn run(
    hub: &Hub,
    ns: &str,
    name: &str,
    action: Action,
    step: Option<&str>,
) -> Result<(), Error> {
    if step.is_some() && !matches!(action, Action::Restart | Action::Logs) {
        return Err(Error::Usage(
            "--step goes with `restart` and `logs` only".into(),
        ));
    }
    if let (Action::Restart, Some(step)) = (action, step) {
        return restart_from(hub, ns, name, step).await;
    }
    let api: Api<Application> = Api::namespaced(hub.client.clone(), ns);
    let app = crate::apps::get_app(hub, ns, name).await?;
    let wf = app.status.as_ref().and_then(|s| s.workflow.as_ref());
    let patch = match action {
        Action::Suspend => {
            if wf.is_some_and(|w| w.finished) {
                return Err(Error::Failed(format!(
                    "the workflow of {ns}/{name} has finished; there is nothing to suspend"
                )));
            }
            json!({"status": {"workflow": {"suspend": true}}})
        }
        Action::Resume => {
            if !wf.is_some_and(|w| w.suspend) {
                return Err(Error::Failed(format!(
                    "the workflow of {ns}/{name} is not suspended"
                )));
            }
            json!({"status": {"workflow": {"suspend": false}}})
        }
        Action::Terminate => json!({"status": {"workflow": {"terminated": true}}}),
        Action::Restart => json!({"status": {"workflow": null}}),
        // Not a status write: the application's spec goes back to a revision.
        Action::Rollback => return crate::revision::rollback(hub, ns, name, None).await,
        Action::Logs => return logs(hub, ns, name, step).await,
    };
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::api(format!("update the workflow of {ns}/{name}")))?;
    let done = match action {
        Action::Suspend => "suspended",
        Action::Resume => "resumed",
        Action::Terminate => "terminated",
        Action::Restart | Action::Rollback | Action::Logs => "restarted",
    };
    println!("workflow of application {ns}/{name} {done}");
    Ok(())
}

/// `sail workflow restart NAME --step S`: the workflow runs again from step S (a step, or a
/// sub-step of a step group); what succeeded before it stays done. Written with the status's
/// resourceVersion, so a controller round in between makes it read and try again.
async fn restart_from(hub: &Hub, ns: &str, name: &str, step: &str) -> Result<(), Error> {
    let api: Api<Application> = Api::namespaced(hub.client.clone(), ns);
    for _ in 0..5 {
        let app = crate::apps::get_app(hub, ns, name).await?;
        let Some(mut wf) = app.status.as_ref().and_then(|s| s.workflow.clone()) else {
            return Err(Error::Failed(format!(
                "application {ns}/{name} has no workflow run yet; `sail workflow restart {name}` starts one"
            )));
        };
        let plan = controller::placement::plan(&app);
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        workflow::Engine::restart_from(&plan, &mut wf, step, now)
            .map_err(|e| Error::Failed(format!("application {ns}/{name}: {e}")))?;
        let mut body = serde_json::to_value(&wf).map_err(|e| Error::Failed(e.to_string()))?;
        // A merge patch keeps what it does not name: clear what the restart cleared.
        if let Some(o) = body.as_object_mut() {
            for k in ["message", "endTime", "suspendState"] {
                o.entry(k).or_insert(Value::Null);
            }
        }
        let patch = json!({
            "metadata": {"resourceVersion": app.metadata.resource_version},
            "status": {"workflow": body},
        });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                println!("workflow of application {ns}/{name} restarted from step {step}");
                return Ok(());
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => {
                return Err(Error::api(format!("update the workflow of {ns}/{name}"))(e));
            }
        }
    }
    Err(Error::Failed(format!(
        "the workflow of {ns}/{name} kept changing while it was being restarted; try again"
    )))
}

/// `sail workflow logs NAME [--step S]`.
async fn logs(hub: &Hub, ns: &str, name: &str, step: Option<&str>) -> Result<(), Error> {
    let app = crate::apps::get_app(hub, ns, name).await?;
    let Some(wf) = app.status.as_ref().and_then(|s| s.workflow.as_ref()) else {
        return Err(Error::Failed(format!(
            "application {ns}/{name} has no workflow run yet"
        )));
    };
    let cms: Api<ConfigMap> = Api::namespaced(hub.client.clone(), ns);
    let context = cms
        .get_opt(&format!("workflow-{name}-context"))
        .await
        .map_err(Error::api(format!(
            "read the workflow context of {ns}/{name}"
        )))?;
    let text = render_logs(&app, wf, context.as_ref(), step)?;
    print!("{text}");
    Ok(())
}

/// The text of `sail workflow logs`: per step (and sub-step) its phase, times, reason and
/// message, the outputs it exported, and the requests it sent (their intent and outcome).
pub fn render_logs(
    app: &Application,
    wf: &WorkflowStatus,
    context: Option<&ConfigMap>,
    only: Option<&str>,
) -> Result<String, Error> {
    use std::fmt::Write;
    let plan = controller::placement::plan(app);
    let vars: serde_json::Map<String, Value> = context
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("vars"))
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let sends = context
        .map(controller::intent::records_of)
        .unwrap_or_default();
    if let Some(s) = only {
        let known = wf.steps.iter().any(|x| x.name.as_deref() == Some(s))
            || wf
                .steps
                .iter()
                .any(|x| x.sub_steps.iter().any(|y| y.name.as_deref() == Some(s)));
        if !known {
            let names: Vec<String> = wf
                .steps
                .iter()
                .flat_map(|x| {
                    let top = x.name.clone().unwrap_or_default();
                    std::iter::once(top.clone()).chain(
                        x.sub_steps
                            .iter()
                            .map(move |y| format!("{top}/{}", y.name.clone().unwrap_or_default())),
                    )
                })
                .collect();
            return Err(Error::Failed(format!(
                "the workflow of {}/{} has no step {s:?} (steps: {})",
                app.metadata.namespace.as_deref().unwrap_or("default"),
                app.metadata.name.as_deref().unwrap_or_default(),
                names.join(", ")
            )));
        }
    }
    let mut out = String::new();
    if only.is_none() {
        let _ = writeln!(
            out,
            "workflow {} ({}): {}{}",
            wf.app_revision.as_deref().unwrap_or("?"),
            wf.mode,
            wf.phase.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            wf.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "  started {}{}",
            time(wf.start_time.as_ref()),
            wf.end_time
                .as_ref()
                .map(|e| format!(", ended {}", time(Some(e))))
                .unwrap_or_default()
        );
    }
    let entry =
        |out: &mut String,
         indent: &str,
         label: &str,
         name: &str,
         type_: &str,
         phase: Option<&oam::WorkflowStepPhase>,
         reason: Option<&str>,
         message: Option<&str>,
         first: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
         last: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            let _ = writeln!(
                out,
                "{indent}{label} {name} ({type_}): {}{}",
                phase
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "pending".into()),
                reason
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(" [{r}]"))
                    .unwrap_or_default()
            );
            if let Some(f) = first {
                let took = last
                    .map(|l| l.0.duration_since(f.0).as_secs())
                    .map(|s| format!(" ({s}s)"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{indent}  first run {}, last run {}{took}",
                    time(Some(f)),
                    time(last)
                );
            }
            if let Some(m) = message.filter(|m| !m.is_empty()) {
                let _ = writeln!(out, "{indent}  message: {m}");
            }
            let planned = plan.steps.iter().find(|s| s.name == name).or_else(|| {
                plan.steps
                    .iter()
                    .flat_map(|s| s.sub_steps.iter())
                    .find(|s| s.name == name)
            });
            for o in planned.map(|p| p.outputs.as_slice()).unwrap_or(&[]) {
                match vars.get(&o.name) {
                    Some(v) => {
                        let _ = writeln!(out, "{indent}  output {} = {v}", o.name);
                    }
                    None => {
                        let _ = writeln!(out, "{indent}  output {}: not exported yet", o.name);
                    }
                }
            }
            let mut mine: Vec<&controller::intent::SendRecord> = sends
                .iter()
                .map(|(_, r)| r)
                .filter(|r| r.step == name)
                .collect();
            mine.sort_by(|a, b| a.started_at.cmp(&b.started_at));
            for r in mine {
                let _ = writeln!(out, "{indent}  sent {}", controller::intent::describe(r));
            }
        };
    for s in &wf.steps {
        let name = s.name.clone().unwrap_or_else(|| s.id.clone());
        let in_group =
            only.is_some_and(|o| s.sub_steps.iter().any(|x| x.name.as_deref() == Some(o)));
        if only.is_some_and(|o| o != name) && !in_group {
            continue;
        }
        if !in_group {
            entry(
                &mut out,
                "",
                "step",
                &name,
                s.type_.as_deref().unwrap_or(""),
                s.phase.as_ref(),
                s.reason.as_deref(),
                s.message.as_deref(),
                s.first_execute_time.as_ref(),
                s.last_execute_time.as_ref(),
            );
        }
        for x in &s.sub_steps {
            let sub = x.name.clone().unwrap_or_else(|| x.id.clone());
            if in_group && only != Some(sub.as_str()) {
                continue;
            }
            entry(
                &mut out,
                if in_group { "" } else { "  " },
                &format!("sub-step of {name}"),
                &sub,
                x.type_.as_deref().unwrap_or(""),
                x.phase.as_ref(),
                x.reason.as_deref(),
                x.message.as_deref(),
                x.first_execute_time.as_ref(),
                x.last_execute_time.as_ref(),
            );
        }
    }
    Ok(out)
}

fn time(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    t.map(|t| t.0.to_string()).unwrap_or_else(|| "-".into())
}
