//! The application as the controller runs it. KubeVela lets an application use objects that
//! live beside it in its namespace: `spec.workflow.ref` names a `Workflow` whose steps it runs,
//! and a deploy step may name a stand-alone `Policy` that the application does not define itself
//! (its own policies come first). Here both are written into a copy of the application before
//! anything else looks at it, so the revision hash, the revision's snapshot, the plan and the
//! placement all see one self-contained application: a changed Workflow or Policy makes a new
//! revision, and a rollback runs the steps and policies as they were.

use crate::Error;
use kube::Api;
use oam::{AppPolicy, Application};
use serde_json::Value;
use std::collections::BTreeSet;

/// Why the application cannot be resolved as it stands: something the user has to fix.
#[derive(Debug, PartialEq)]
pub(crate) struct Problem {
    pub reason: &'static str,
    pub message: String,
}

/// The application with its referenced Workflow and Policies written in, or `None` when it
/// refers to nothing outside itself.
pub(crate) async fn resolve(
    client: &kube::Client,
    app: &Application,
) -> Result<Result<Option<Application>, Problem>, Error> {
    let ns = app.metadata.namespace.as_deref().unwrap_or("default");
    let app_name = app.metadata.name.as_deref().unwrap_or_default();
    let mut out: Option<Application> = None;

    if let Some(wf) = app.spec.workflow.as_ref()
        && let Some(name) = wf.ref_.as_deref().filter(|n| !n.is_empty())
    {
        if !wf.steps.is_empty() {
            return Ok(Err(Problem {
                reason: "InvalidWorkflow",
                message: format!("spec.workflow has both ref ({name}) and steps; give one of them"),
            }));
        }
        let api: Api<oam::Workflow> = Api::namespaced(client.clone(), ns);
        let found = api
            .get_opt(name)
            .await
            .map_err(Error::hub("read", format!("workflow {ns}/{name}")))?;
        let Some(found) = found else {
            return Ok(Err(Problem {
                reason: "WorkflowNotFound",
                message: format!(
                    "spec.workflow.ref: there is no Workflow {name:?} in namespace {ns} (application {app_name}); create it or write the steps inline"
                ),
            }));
        };
        let mut resolved = app.clone();
        if let Some(w) = resolved.spec.workflow.as_mut() {
            w.steps = found.spec.steps.clone();
            if w.mode.is_none() {
                w.mode = found.spec.mode.clone();
            }
        }
        out = Some(resolved);
    }

    let current = out.as_ref().unwrap_or(app);
    let missing = external_policy_names(current);
    if missing.is_empty() {
        return Ok(Ok(out));
    }
    let api: Api<oam::Policy> = Api::namespaced(client.clone(), ns);
    let mut external = Vec::new();
    for name in &missing {
        let found = api
            .get_opt(name)
            .await
            .map_err(Error::hub("read", format!("policy {ns}/{name}")))?;
        let Some(found) = found else {
            return Ok(Err(Problem {
                reason: "PolicyNotFound",
                message: format!(
                    "a deploy step names policy {name:?}, which application {app_name} does not define and namespace {ns} has no Policy object of that name"
                ),
            }));
        };
        external.push(AppPolicy {
            name: name.clone(),
            type_: found.spec.type_.clone(),
            properties: found.spec.properties.clone(),
        });
    }
    let mut resolved = out.unwrap_or_else(|| app.clone());
    resolved.spec.policies.extend(external);
    Ok(Ok(Some(resolved)))
}

/// The policies the deploy steps (and deploy sub-steps) name that the application does not
/// define, in the order they are first named.
fn external_policy_names(app: &Application) -> Vec<String> {
    let own: BTreeSet<&str> = app.spec.policies.iter().map(|p| p.name.as_str()).collect();
    let Some(wf) = app.spec.workflow.as_ref() else {
        return Vec::new();
    };
    let mut named: Vec<String> = Vec::new();
    let mut take = |type_: &str, properties: Option<&Value>| {
        if type_ != "deploy" {
            return;
        }
        let names = properties
            .and_then(|p| p.get("policies"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for n in names {
            if !own.contains(n) && !named.iter().any(|x| x == n) {
                named.push(n.to_string());
            }
        }
    };
    for step in &wf.steps {
        take(&step.type_, step.properties.as_ref());
        for sub in &step.sub_steps {
            take(&sub.type_, sub.properties.as_ref());
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deploy_steps_name_external_policies_the_app_does_not_define() {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {
                "components": [],
                "policies": [{"name": "mine", "type": "override", "properties": {}}],
                "workflow": {"steps": [
                    {"name": "d1", "type": "deploy", "properties": {"policies": ["mine", "topo"]}},
                    {"name": "g", "type": "step-group", "subSteps": [
                        {"name": "d2", "type": "deploy", "properties": {"policies": ["topo", "ha"]}},
                        {"name": "n", "type": "notification", "properties": {"policies": ["x"]}}]}
                ]}
            }
        }))
        .unwrap();
        assert_eq!(external_policy_names(&app), ["topo", "ha"]);
    }
}
