//! Health and status of a component, from its definition's `healthPolicy`, `customStatus` and
//! `details`, evaluated against the live objects the caller read from the cluster.

use crate::Error;
use crate::catalog::Compiled;
use serde_json::{Map, Value, json};

/// The health of one component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthStatus {
    pub healthy: bool,
    pub message: String,
    pub details: Map<String, Value>,
}

/// The live objects of one component.
#[derive(Clone, Debug, Default)]
pub struct LiveObjects {
    /// The workload as read from the cluster; `None` when it does not exist (yet).
    pub output: Option<Value>,
    /// Auxiliary objects by output name.
    pub outputs: Map<String, Value>,
}

/// Evaluate a component definition's health policy and status message against live objects.
/// KubeVela's context: `name`, `appName`, `appRevision`, `output`, `outputs`, and `status`
/// (`{}` for `isHealth`, `{healthy}` for the message). A definition without a health policy is
/// healthy once its workload exists.
pub fn evaluate_health(
    def: &Compiled,
    component: &str,
    app_name: &str,
    app_revision: &str,
    parameter: &Value,
    live: &LiveObjects,
) -> Result<HealthStatus, Error> {
    let herr = |source: cue::Error| Error::Health {
        component: component.into(),
        source: Box::new(source),
    };
    let mut context = json!({
        "name": component,
        "appName": app_name,
        "appRevision": app_revision,
        "outputs": live.outputs,
        "status": {},
    });
    if let (Some(obj), Some(out)) = (context.as_object_mut(), &live.output) {
        obj.insert("output".into(), out.clone());
    }
    let healthy = match &def.health_policy {
        None => live.output.is_some() || def.definition.workload().is_none(),
        Some(policy) => {
            if live.output.is_none() && def.definition.workload().is_some() {
                false
            } else {
                let v = policy
                    .eval_with(&[("context", &context), ("parameter", parameter)])
                    .map_err(herr)?;
                match v.lookup("isHealth") {
                    Some(h) => h.to_json().map_err(herr)?.as_bool().unwrap_or(false),
                    None => false,
                }
            }
        }
    };
    if let Some(status) = context.get_mut("status") {
        *status = json!({ "healthy": healthy });
    }
    let mut message = String::new();
    if let Some(cs) = &def.custom_status
        && (live.output.is_some() || def.definition.workload().is_none())
    {
        {
            let v = cs
                .eval_with(&[("context", &context), ("parameter", parameter)])
                .map_err(herr)?;
            if let Some(m) = v.lookup("message") {
                message = match m.to_json().map_err(herr)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
            }
        }
    }
    let mut details = Map::new();
    if let Some(d) = &def.details
        && live.output.is_some()
    {
        {
            let v = d
                .eval_with(&[("context", &context), ("parameter", parameter)])
                .map_err(herr)?;
            for f in v.fields() {
                if let Ok(j) = f.value.to_json() {
                    details.insert(f.name, j);
                }
            }
        }
    }
    if live.output.is_none() && def.definition.workload().is_some() && message.is_empty() {
        message = "the workload does not exist yet".into();
    }
    Ok(HealthStatus {
        healthy,
        message,
        details,
    })
}
