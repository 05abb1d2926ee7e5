//! From an Application's workflow spec (or its absence) to the list of steps to run.

use oam::{Application, WorkflowMode, WorkflowStep};

/// One step as the engine runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedStep {
    pub name: String,
    pub type_: String,
    pub properties: serde_json::Value,
    pub depends_on: Vec<String>,
    /// How long the step may run (`30s`, `10m`, `1h30m`) before it fails with `Timeout`.
    pub timeout: Option<String>,
    /// `if`: `always`, or a CUE expression over `status.<step>.phase` and `inputs`. A step
    /// without one runs only when the steps before it (or its dependencies) succeeded.
    pub if_: Option<String>,
    /// Outputs of earlier steps this step reads into its properties.
    pub inputs: Vec<oam::StepInput>,
    /// Values this step exports for later steps.
    pub outputs: Vec<oam::StepOutput>,
    /// The steps of a `step-group`, run together (as a DAG by their `dependsOn`).
    pub sub_steps: Vec<PlannedStep>,
    /// Set by the engine when the step suspended itself before its work (`deploy` with
    /// `auto: false`, a CUE `builtin.#Suspend`) and the user resumed it: it does that work now.
    pub resumed: bool,
}

/// The steps of an application's workflow and how to run them.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub mode: WorkflowMode,
    pub steps: Vec<PlannedStep>,
}

/// KubeVela's rules: the application's own steps, in StepByStep mode unless it says DAG; without
/// steps, one `apply-component` step per component, run as a DAG that follows the components'
/// `dependsOn`.
pub fn plan(app: &Application) -> Plan {
    let wf = app.spec.workflow.as_ref();
    let explicit: &[WorkflowStep] = wf.map(|w| w.steps.as_slice()).unwrap_or(&[]);
    if explicit.is_empty() {
        let steps = app
            .spec
            .components
            .iter()
            .map(|c| PlannedStep {
                name: c.name.clone(),
                type_: "apply-component".into(),
                properties: serde_json::json!({ "component": c.name }),
                depends_on: c.depends_on.clone(),
                timeout: None,
                if_: None,
                inputs: Vec::new(),
                outputs: Vec::new(),
                sub_steps: Vec::new(),
                resumed: false,
            })
            .collect();
        return Plan {
            mode: WorkflowMode::Dag,
            steps,
        };
    }
    let mode = wf
        .and_then(|w| w.mode.as_ref())
        .and_then(|m| m.steps.clone())
        .unwrap_or(WorkflowMode::StepByStep);
    let steps = explicit
        .iter()
        .map(|s| PlannedStep {
            name: if s.name.is_empty() {
                s.type_.clone()
            } else {
                s.name.clone()
            },
            type_: s.type_.clone(),
            properties: s
                .properties
                .clone()
                .unwrap_or_else(|| serde_json::json!({})),
            depends_on: s.depends_on.clone(),
            timeout: s.timeout.clone(),
            if_: s.if_.clone(),
            inputs: s.inputs.clone(),
            outputs: s.outputs.clone(),
            sub_steps: s
                .sub_steps
                .iter()
                .map(|x| PlannedStep {
                    name: if x.name.is_empty() {
                        x.type_.clone()
                    } else {
                        x.name.clone()
                    },
                    type_: x.type_.clone(),
                    properties: x
                        .properties
                        .clone()
                        .unwrap_or_else(|| serde_json::json!({})),
                    depends_on: x.depends_on.clone(),
                    timeout: x.timeout.clone(),
                    if_: x.if_.clone(),
                    inputs: x.inputs.clone(),
                    outputs: x.outputs.clone(),
                    sub_steps: Vec::new(),
                    resumed: false,
                })
                .collect(),
            resumed: false,
        })
        .collect();
    Plan { mode, steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(yaml: &str) -> Application {
        oam::parse_application_yaml("app.yaml", yaml)
            .expect("parse")
            .remove(0)
    }

    #[test]
    fn without_steps_each_component_is_applied_as_a_dag() {
        let a = app(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: x\nspec:\n  components:\n    - name: db\n      type: worker\n    - name: web\n      type: webservice\n      dependsOn: [db]\n",
        );
        let p = plan(&a);
        assert_eq!(p.mode, WorkflowMode::Dag);
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "web"]);
        assert_eq!(p.steps[1].type_, "apply-component");
        assert_eq!(p.steps[1].depends_on, ["db"]);
        assert_eq!(p.steps[1].properties["component"], "web");
    }

    #[test]
    fn explicit_steps_run_step_by_step_unless_told() {
        let a = app(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: x\nspec:\n  components:\n    - name: web\n      type: webservice\n  workflow:\n    steps:\n      - name: approve\n        type: suspend\n      - name: go\n        type: deploy\n",
        );
        let p = plan(&a);
        assert_eq!(p.mode, WorkflowMode::StepByStep);
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[0].type_, "suspend");
    }
}
