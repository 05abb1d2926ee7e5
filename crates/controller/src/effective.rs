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
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// The application with its referenced Workflow and Policies (read from the hub) written in,
/// or `None` when it refers to nothing outside itself.
pub(crate) async fn resolve(
    client: &kube::Client,
    app: &Application,
) -> Result<Result<Option<Application>, Problem>, Error> {
    let ns = app.metadata.namespace.as_deref().unwrap_or("default");
    let workflow = match workflow_ref(app) {
        Some(name) => Api::<oam::Workflow>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(Error::hub("read", format!("workflow {ns}/{name}")))?
            .map(|w| w.spec),
        None => None,
    };
    let with_steps = match with_workflow(app, workflow.as_ref()) {
        Ok(w) => w,
        Err(p) => return Ok(Err(p)),
    };
    let current = with_steps.as_ref().unwrap_or(app);
    let api: Api<oam::Policy> = Api::namespaced(client.clone(), ns);
    let mut found = std::collections::BTreeMap::new();
    for name in external_policy_names(current) {
        let p = api
            .get_opt(&name)
            .await
            .map_err(Error::hub("read", format!("policy {ns}/{name}")))?;
        if let Some(p) = p {
            found.insert(name, p.spec);
        }
    }
    Ok(match with_policies(current, |n| found.get(n).cloned()) {
        Ok(Some(resolved)) => Ok(Some(resolved)),
        Ok(None) => Ok(with_steps),
        Err(p) => Err(p),
    })
}

/// The name of the Workflow the application runs (`spec.workflow.ref`), if any.
pub fn workflow_ref(app: &Application) -> Option<&str> {
    app.spec
        .workflow
        .as_ref()
        .and_then(|w| w.ref_.as_deref())
        .filter(|n| !n.is_empty())
}

/// The application running the steps (and mode) of `workflow`, the object its
/// `spec.workflow.ref` names (`None`: there is no such object); `Ok(None)` when it has no ref.
pub fn with_workflow(
    app: &Application,
    workflow: Option<&oam::WorkflowFields>,
) -> Result<Option<Application>, Problem> {
    let Some(name) = workflow_ref(app) else {
        return Ok(None);
    };
    let ns = app.metadata.namespace.as_deref().unwrap_or("default");
    let app_name = app.metadata.name.as_deref().unwrap_or_default();
    if app
        .spec
        .workflow
        .as_ref()
        .is_some_and(|w| !w.steps.is_empty())
    {
        return Err(Problem {
            reason: "InvalidWorkflow",
            message: format!("spec.workflow has both ref ({name}) and steps; give one of them"),
        });
    }
    let Some(found) = workflow else {
        return Err(Problem {
            reason: "WorkflowNotFound",
            message: format!(
                "spec.workflow.ref: there is no Workflow {name:?} in namespace {ns} (application {app_name}); create it or write the steps inline"
            ),
        });
    };
    let mut resolved = app.clone();
    if let Some(w) = resolved.spec.workflow.as_mut() {
        w.steps = found.steps.clone();
        if w.mode.is_none() {
            w.mode = found.mode.clone();
        }
    }
    Ok(Some(resolved))
}

/// The application with the stand-alone policies its deploy steps name (and it does not
/// define) added to its policies, `find` giving them by name; `Ok(None)` when it names none.
pub fn with_policies(
    app: &Application,
    find: impl Fn(&str) -> Option<oam::PolicyFields>,
) -> Result<Option<Application>, Problem> {
    let names = external_policy_refs(app);
    if names.is_empty() {
        return Ok(None);
    }
    let ns = app.metadata.namespace.as_deref().unwrap_or("default");
    let app_name = app.metadata.name.as_deref().unwrap_or_default();
    let mut resolved = app.clone();
    for (name, step) in names {
        let Some(found) = find(&name) else {
            return Err(Problem {
                reason: "PolicyNotFound",
                message: format!(
                    "step {step}: policy {name:?} is neither defined by application {app_name} nor a Policy object in namespace {ns}"
                ),
            });
        };
        resolved.spec.policies.push(AppPolicy {
            name,
            type_: found.type_,
            properties: found.properties,
        });
    }
    Ok(Some(resolved))
}

/// The policies the deploy steps (and deploy sub-steps) name that the application does not
/// define, in the order they are first named.
pub fn external_policy_names(app: &Application) -> Vec<String> {
    external_policy_refs(app)
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// [`external_policy_names`], each with the first step that names it.
fn external_policy_refs(app: &Application) -> Vec<(String, String)> {
    let own: BTreeSet<&str> = app.spec.policies.iter().map(|p| p.name.as_str()).collect();
    let Some(wf) = app.spec.workflow.as_ref() else {
        return Vec::new();
    };
    let mut named: Vec<(String, String)> = Vec::new();
    let mut take = |step: &str, type_: &str, properties: Option<&Value>| {
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
            if !own.contains(n) && !named.iter().any(|(x, _)| x == n) {
                named.push((n.to_string(), step.to_string()));
            }
        }
    };
    for step in &wf.steps {
        take(&step.name, &step.type_, step.properties.as_ref());
        for sub in &step.sub_steps {
            take(&sub.name, &sub.type_, sub.properties.as_ref());
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
