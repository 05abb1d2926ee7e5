//! The workflow an application runs, with KubeVela's defaults for placement: without explicit
//! steps, an application with topology or override policies (or a `ref-objects` component) gets
//! one `deploy` step per topology policy (`deploy-<topology>`), each with the override
//! policies; otherwise one `apply-component` step per component.

use serde_json::json;
use workflow::{Plan, PlannedStep};

pub fn plan(app: &oam::Application) -> Plan {
    let explicit = app
        .spec
        .workflow
        .as_ref()
        .is_some_and(|w| !w.steps.is_empty());
    if explicit {
        return workflow::plan(app);
    }
    let deploys = render::policy::default_deploy_steps(app);
    if deploys.is_empty() {
        return workflow::plan(app);
    }
    Plan {
        mode: oam::WorkflowMode::StepByStep,
        steps: deploys
            .into_iter()
            .map(|d| PlannedStep {
                name: d.name,
                type_: "deploy".into(),
                properties: json!({ "policies": d.policies }),
                depends_on: Vec::new(),
                timeout: None,
                if_: None,
                inputs: Vec::new(),
                outputs: Vec::new(),
                sub_steps: Vec::new(),
                resumed: false,
            })
            .collect(),
    }
}

/// The policies a `deploy` step names (`policies`) and carries (`inlinePolicies`).
pub fn deploy_policies(
    properties: &serde_json::Value,
) -> Result<(Vec<String>, Vec<oam::AppPolicy>), String> {
    let policies = match properties.get("policies") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| format!("properties.policies must be a list of policy names: {e}"))?,
    };
    let inline = match properties.get("inlinePolicies") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| format!("properties.inlinePolicies: {e}"))?,
    };
    Ok((policies, inline))
}
