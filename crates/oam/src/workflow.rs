//! Workflow spec and status (KubeVela's `kubevela/workflow` `v1alpha1` types), and the
//! `Workflow` kind (`core.oam.dev/v1alpha1`), which an Application can point at with
//! `spec.workflow.ref`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::{ObjectReference, preserve_unknown_object, string_enum};

string_enum! {
    /// How steps (or the sub-steps of a step group) are run.
    pub enum WorkflowMode {
        /// One after another, in order.
        StepByStep => "StepByStep",
        /// As a graph ordered by `dependsOn` (and inputs/outputs).
        Dag => "DAG",
    }
}

string_enum! {
    /// Phase of a whole workflow run (`status.workflow.status`).
    pub enum WorkflowRunPhase {
        Initializing => "initializing",
        Executing => "executing",
        Suspending => "suspending",
        Terminated => "terminated",
        Failed => "failed",
        Succeeded => "succeeded",
        Skipped => "skipped",
    }
}

string_enum! {
    /// Phase of one step.
    pub enum WorkflowStepPhase {
        Succeeded => "succeeded",
        Failed => "failed",
        Skipped => "skipped",
        Running => "running",
        Pending => "pending",
        Suspending => "suspending",
    }
}

/// `mode` of a workflow: for steps and for the sub-steps of step groups.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowExecuteMode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<WorkflowMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_steps: Option<WorkflowMode>,
}

/// Step metadata.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStepMeta {
    /// Display name of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// An input of a step or component: a value read from a named output.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepInput {
    /// Name of the output to read.
    pub from: String,
    /// Where to put it in the step's `properties` (dotted path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_key: Option<String>,
}

/// An output of a step or component: a named value taken from the step's result.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepOutput {
    pub name: String,
    /// CUE expression (or path) evaluated against the step's result.
    pub value_from: String,
}

/// A step of a step group (`WorkflowStepBase`): every field of a step except `mode` and `subSteps`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSubStep {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Name of the WorkflowStepDefinition.
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<WorkflowStepMeta>,
    /// Parameters for the step definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub properties: Option<Value>,
    /// Condition (CUE expression) for running the step, e.g. `status.deploy.succeeded`.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    /// Timeout, as a duration string (`30s`, `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub depends_on: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inputs: Vec<StepInput>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub outputs: Vec<StepOutput>,
}

/// A workflow step; a `step-group` step has `subSteps`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStep {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Name of the WorkflowStepDefinition.
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<WorkflowStepMeta>,
    /// Parameters for the step definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub properties: Option<Value>,
    /// Sub-steps of a step group.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sub_steps: Vec<WorkflowSubStep>,
    /// Condition (CUE expression) for running the step.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    /// Timeout, as a duration string (`30s`, `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub depends_on: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inputs: Vec<StepInput>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub outputs: Vec<StepOutput>,
    /// Mode of this group's sub-steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkflowMode>,
}

impl WorkflowStep {
    /// The display name: `meta.alias` if set, otherwise `name`.
    pub fn display_name(&self) -> &str {
        self.meta
            .as_ref()
            .and_then(|m| m.alias.as_deref())
            .unwrap_or(&self.name)
    }
}

/// Status of one step or sub-step (`StepStatus`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// Unique id of the step (stable across reconciles).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<WorkflowStepPhase>,
    /// A human-readable message, e.g. why the step failed or waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A machine-readable reason, e.g. `Timeout`, `Wait`, `Execute`, `Skip`, `Terminate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_execute_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_execute_time: Option<Time>,
}

/// Status of a step, with its sub-steps (`WorkflowStepStatus`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStepStatus {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<WorkflowStepPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_execute_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_execute_time: Option<Time>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sub_steps: Vec<StepStatus>,
}

/// Status of the workflow of an Application (or ApplicationRevision): `status.workflow`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStatus {
    /// The ApplicationRevision this run belongs to (`name:hash` form in KubeVela).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_revision: Option<String>,
    /// `<steps mode>-<subSteps mode>`, e.g. `StepByStep-DAG`.
    pub mode: String,
    /// Phase of the run.
    #[serde(default, rename = "status", skip_serializing_if = "Option::is_none")]
    pub phase: Option<WorkflowRunPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub suspend: bool,
    /// Why it is suspended, e.g. `manually`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_state: Option<String>,
    pub terminated: bool,
    pub finished: bool,
    /// Where the workflow context (step outputs, variables) is stored, usually a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_backend: Option<ObjectReference>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub steps: Vec<WorkflowStepStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
}

impl WorkflowStatus {
    /// The status of the top-level step with this name.
    pub fn step(&self, name: &str) -> Option<&WorkflowStepStatus> {
        self.steps.iter().find(|s| s.name.as_deref() == Some(name))
    }

    /// Mutable status of the top-level step with this name.
    pub fn step_mut(&mut self, name: &str) -> Option<&mut WorkflowStepStatus> {
        self.steps
            .iter_mut()
            .find(|s| s.name.as_deref() == Some(name))
    }

    /// The `mode` string KubeVela writes: `<steps>-<subSteps>`, e.g. `StepByStep-DAG`.
    pub fn mode_string(mode: Option<&WorkflowExecuteMode>, default_steps: WorkflowMode) -> String {
        let steps = mode.and_then(|m| m.steps.clone()).unwrap_or(default_steps);
        let sub = mode
            .and_then(|m| m.sub_steps.clone())
            .unwrap_or(WorkflowMode::Dag);
        format!("{steps}-{sub}")
    }
}

/// A reusable workflow (`core.oam.dev/v1alpha1` `Workflow`). Its fields sit at the top level
/// of the object (no `spec`), as in KubeVela.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1alpha1",
    kind = "Workflow",
    root = "Workflow",
    namespaced,
    no_spec,
    category = "oam",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkflowExecuteMode>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub steps: Vec<WorkflowStep>,
}
