//! Steps defined in CUE (WorkflowStepDefinitions): the template runs in `workflow::task`, its
//! operations are served by `crate::providers` (`builtin` and `util` by the workflow crate).
//! Here: finding the definition, the step's `parameter`, `context` and `inputs`, its outputs,
//! and the workflow context ConfigMap that keeps outputs between steps.

use crate::steps::Runner;
use render::DefinitionKind;
use serde_json::{Value, json};
use workflow::task::{self, Builtins, TaskResult};
use workflow::{PlannedStep, StepOutcome};

/// Run a step whose type is a WorkflowStepDefinition.
pub(crate) async fn run(runner: &Runner<'_>, step: &PlannedStep) -> StepOutcome {
    let Some(def) = runner.catalog.iter().find(|c| {
        c.definition.kind == DefinitionKind::WorkflowStep && c.definition.name == step.type_
    }) else {
        let known: Vec<&str> = runner
            .catalog
            .iter()
            .filter(|c| c.definition.kind == DefinitionKind::WorkflowStep)
            .map(|c| c.definition.name.as_str())
            .collect();
        return StepOutcome::Failed {
            reason: "UnknownStepType".into(),
            message: format!(
                "step {}: no WorkflowStepDefinition {:?} (built in: apply-component, deploy, suspend; defined: {})",
                step.name,
                step.type_,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        };
    };
    let app = runner.app;
    let mut parameter = match &step.properties {
        Value::Null => json!({}),
        p => p.clone(),
    };
    // Inputs: outputs of earlier steps, put where the step asks for them.
    let vars = runner.variables_snapshot();
    let mut inputs = serde_json::Map::new();
    for input in &step.inputs {
        let Some(v) = vars.get(&input.from) else {
            return StepOutcome::Running {
                message: format!(
                    "waiting for input {:?}: no earlier step has output it yet",
                    input.from
                ),
            };
        };
        inputs.insert(input.from.clone(), v.clone());
        if let Some(key) = input.parameter_key.as_deref().filter(|k| !k.is_empty()) {
            set_dotted(&mut parameter, key, v.clone());
        }
    }
    let inputs = Value::Object(inputs);
    let context = json!({
        "name": app.name(),
        "appName": app.name(),
        "namespace": app.namespace(),
        "stepName": step.name,
        // The same for every attempt of this step in this run of the workflow (a controller
        // restart included), and only for it: the idempotency key of what the step sends.
        // `sail workflow restart` starts a new run (a new start time), whose sends are new.
        "stepSessionID": session_id(
            app.metadata.uid.as_deref().unwrap_or_default(),
            &runner.render_ctx.app_revision,
            &runner.workflow_run,
            &step.name,
        ),
        "appRevision": runner.render_ctx.app_revision,
        "appRevisionNum": runner.revision_num,
        "workflowName": app.name(),
    });
    // Sends that change something are recorded before and after (crate::intent).
    let session = context["stepSessionID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let journal = crate::intent::Journal::new(runner.fleet.local().client(), app);
    let guard = crate::intent::Guard {
        inner: crate::providers::Remote::new(runner, session.clone()),
        journal: &journal,
        step: &step.name,
        session: &session,
        run: &runner.workflow_run,
        notes: Default::default(),
    };
    let providers = Builtins {
        next: &guard,
        resumed: step.resumed,
    };
    let mut bindings: Vec<(&str, &Value)> = vec![("parameter", &parameter), ("context", &context)];
    if !step.inputs.is_empty() {
        bindings.push(("inputs", &inputs));
    }
    let result = task::run(&def.template, &bindings, &providers).await;
    let notes = guard.take_notes();
    let result = result.map(|r| with_notes(r, &notes));
    match result {
        Ok(TaskResult::Done { messages, value }) => {
            if let Some(stop) = runner.export_step_outputs(step, &value).await {
                return stop;
            }
            StepOutcome::Succeeded {
                message: messages.join("; "),
            }
        }
        Ok(TaskResult::Wait { message }) => StepOutcome::Running { message },
        Ok(TaskResult::Suspend { message, .. }) => StepOutcome::Suspended {
            message: if message.is_empty() {
                "waiting for approval: sail workflow resume".into()
            } else {
                message
            },
        },
        Ok(TaskResult::Fail { message }) => StepOutcome::Failed {
            reason: "Failed".into(),
            message: format!("step {} ({}): {message}", step.name, step.type_),
        },
        Err(e) => StepOutcome::Failed {
            // Provider errors are retried with backoff by the engine; a template error is not.
            reason: if e.from_provider {
                workflow::RETRYABLE.into()
            } else {
                "Evaluate".into()
            },
            message: format!("step {} ({}): {e}", step.name, step.type_),
        },
    }
}

/// A workflow run's id: its start time in whole seconds, as the status stores it. The first
/// reconcile of a run holds the start time with nanoseconds, the ones after read it back from
/// the status: both must give the same id, or a resend after a crash would carry another key.
pub(crate) fn run_id(start: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> String {
    start.0.as_second().to_string()
}

/// `<application uid>/<revision>/<run>/<step>`, the run being the workflow's start time (left
/// out before a run has one).
pub(crate) fn session_id(uid: &str, revision: &str, run: &str, step: &str) -> String {
    if run.is_empty() {
        format!("{uid}/{revision}/{step}")
    } else {
        format!("{uid}/{revision}/{run}/{step}")
    }
}

/// The step's result with the notes of its sends (a resend after a restart) in its message.
fn with_notes(r: TaskResult, notes: &[String]) -> TaskResult {
    if notes.is_empty() {
        return r;
    }
    let join = |m: String| {
        let mut all = notes.to_vec();
        if !m.is_empty() {
            all.push(m);
        }
        all.join("; ")
    };
    match r {
        TaskResult::Done {
            value,
            mut messages,
        } => {
            let mut all = notes.to_vec();
            all.append(&mut messages);
            TaskResult::Done {
                value,
                messages: all,
            }
        }
        TaskResult::Wait { message } => TaskResult::Wait {
            message: join(message),
        },
        TaskResult::Suspend { duration, message } => TaskResult::Suspend {
            duration,
            message: join(message),
        },
        TaskResult::Fail { message } => TaskResult::Fail {
            message: join(message),
        },
    }
}

/// Set `a.b.c` in a JSON object, creating the objects on the way.
fn set_dotted(target: &mut Value, key: &str, v: Value) {
    let mut cur = target;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), v);
            return;
        }
        cur = map.entry((*part).to_string()).or_insert_with(|| json!({}));
    }
}

/// An output's `valueFrom`: a path into the step's evaluated template (`output.value.status`),
/// or any CUE expression over its fields (`"\(output.value.spec.host):80"`).
pub(crate) fn value_from(value: &Value, expr: &str) -> Result<Value, String> {
    let is_path = !expr.is_empty()
        && expr.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '-')
        });
    if is_path {
        let mut cur = value;
        for seg in expr.split('.') {
            cur = match cur {
                Value::Object(m) => m.get(seg),
                Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
            .ok_or_else(|| format!("{seg:?} is not in the step's result"))?;
        }
        return Ok(cur.clone());
    }
    let Value::Object(fields) = value else {
        return Err("the step's result is not a struct".into());
    };
    // KubeVela lets a valueFrom start with imports (`import "strconv"`); they go first.
    let (imports, body) = split_imports(expr);
    let mut src = format!("{imports}\n");
    for (k, v) in fields {
        src.push_str(&format!(
            "{}: {v}\n",
            serde_json::to_string(k).unwrap_or_default()
        ));
    }
    src.push_str(&format!("__sailplane_output: {body}\n"));
    let program = cue::Runtime::new()
        .compile("valueFrom", &src)
        .map_err(|e| e.to_string())?;
    program
        .eval()
        .and_then(|v| {
            v.lookup("__sailplane_output")
                .ok_or_else(|| cue::Error::new("no value"))?
                .to_json()
        })
        .map_err(|e| e.to_string())
}

/// The leading `import` declarations of a CUE expression (single or parenthesised), and the
/// expression after them.
fn split_imports(expr: &str) -> (String, &str) {
    let mut rest = expr.trim_start();
    let mut imports = String::new();
    while let Some(after) = rest.strip_prefix("import") {
        if !after.starts_with([' ', '\t', '\n', '(', '"']) {
            break; // an identifier such as `imports`
        }
        let after = after.trim_start();
        let end = if after.starts_with('(') {
            match after.find(')') {
                Some(i) => i + 1,
                None => break,
            }
        } else {
            after.find('\n').unwrap_or(after.len())
        };
        imports.push_str("import ");
        imports.push_str(&after[..end]);
        imports.push('\n');
        rest = after[end..].trim_start();
    }
    (imports, rest)
}

/// The ConfigMap that keeps a workflow's outputs (KubeVela's workflow context).
pub(crate) fn context_name(app: &str) -> String {
    format!("workflow-{app}-context")
}

/// Whether the workflow passes values between steps or components (so the context is worth
/// reading).
pub(crate) fn uses_variables(app: &oam::Application) -> bool {
    let components = app
        .spec
        .components
        .iter()
        .any(|c| !c.inputs.is_empty() || !c.outputs.is_empty());
    components
        || app.spec.workflow.as_ref().is_some_and(|w| {
            w.steps.iter().any(|s| {
                !s.inputs.is_empty()
                    || !s.outputs.is_empty()
                    || s.if_.as_deref().is_some_and(|c| c.contains("inputs"))
                    || s.sub_steps
                        .iter()
                        .any(|x| !x.inputs.is_empty() || !x.outputs.is_empty())
            })
        })
}

/// The outputs earlier steps of the application's workflow exported.
pub(crate) async fn load_variables(
    client: &kube::Client,
    app: &oam::Application,
) -> Result<serde_json::Map<String, Value>, crate::Error> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let ns = app.namespace();
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), ns);
    let name = context_name(app.name());
    let cm = api.get_opt(&name).await.map_err(crate::Error::hub(
        "read",
        format!("workflow context {ns}/{name}"),
    ))?;
    Ok(cm
        .and_then(|c| c.data)
        .and_then(|d| d.get("vars").cloned())
        .and_then(|v| serde_json::from_str::<Value>(&v).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default())
}

/// Store the workflow's outputs (all of them, one write), owned by the application.
pub(crate) async fn store_variables(
    client: &kube::Client,
    app: &oam::Application,
    vars: &serde_json::Map<String, Value>,
) -> Result<(), crate::Error> {
    use kube::ResourceExt;
    let ns = app.namespace();
    let name = context_name(app.name());
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {oam::labels::LABEL_APP_NAME: app.name()},
            "ownerReferences": [{
                "apiVersion": "core.oam.dev/v1beta1",
                "kind": "Application",
                "name": app.name(),
                "uid": app.uid().unwrap_or_default(),
                "controller": true,
            }],
        },
        "data": {"vars": Value::Object(vars.clone()).to_string()},
    });
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    );
    let obj: kube::api::DynamicObject = serde_json::from_value(body)
        .map_err(|e| crate::Error::Invalid(format!("workflow context: {e}")))?;
    api.patch(
        &name,
        &kube::api::PatchParams::apply(fleet::FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&obj),
    )
    .await
    .map_err(crate::Error::hub(
        "write",
        format!("workflow context {ns}/{name}"),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_id_survives_the_round_trip_through_the_status() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let start = Time(
            "2026-11-26T05:40:00.123456789Z"
                .parse()
                .expect("a timestamp"),
        );
        let stored: Time = serde_json::from_value(serde_json::to_value(&start).expect("serialize"))
            .expect("deserialize");
        assert_ne!(start, stored, "the status keeps whole seconds only");
        assert_eq!(super::run_id(&start), super::run_id(&stored));
    }

    use super::{set_dotted, value_from};
    use serde_json::json;

    #[test]
    fn outputs_may_start_with_imports() {
        let v = json!({"response": {"stargazers_count": 42}});
        let got = value_from(
            &v,
            "import \"strconv\"\n\"stars: \" + strconv.FormatInt(response.stargazers_count, 10)",
        );
        assert_eq!(got, Ok(json!("stars: 42")));
        let got = value_from(&v, "import (\n  \"strings\"\n)\nstrings.ToUpper(\"x\")");
        assert_eq!(got, Ok(json!("X")));
    }

    #[test]
    fn outputs_by_path_or_expression() {
        let v = json!({"output": {"value": {"spec": {"host": "a.example", "port": 80}}, "list": [1, 2]}});
        assert_eq!(
            value_from(&v, "output.value.spec.host").unwrap(),
            "a.example"
        );
        assert_eq!(value_from(&v, "output.list.1").unwrap(), 2);
        assert_eq!(
            value_from(
                &v,
                "\"\\(output.value.spec.host):\\(output.value.spec.port)\""
            )
            .unwrap(),
            "a.example:80"
        );
        assert!(
            value_from(&v, "output.value.nope")
                .unwrap_err()
                .contains("nope")
        );
    }

    #[test]
    fn inputs_land_at_their_parameter_key() {
        let mut p = json!({"a": 1});
        set_dotted(&mut p, "b.c", json!("x"));
        set_dotted(&mut p, "a", json!(2));
        assert_eq!(p, json!({"a": 2, "b": {"c": "x"}}));
    }
}
