//! `Application` (`core.oam.dev/v1beta1`): components, traits, policies and a workflow.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::{
    ClusterObjectReference, Condition, ObjectReference, Revision, WorkloadGvk,
    preserve_unknown_object, string_enum,
};
use crate::workflow::{StepInput, StepOutput, WorkflowExecuteMode, WorkflowStatus, WorkflowStep};

/// The desired state of an Application.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1beta1",
    kind = "Application",
    namespaced,
    status = "ApplicationStatus",
    shortname = "app",
    shortname = "velaapp",
    category = "oam",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"COMPONENT","type":"string","jsonPath":".spec.components[*].name"}"#,
    printcolumn = r#"{"name":"TYPE","type":"string","jsonPath":".spec.components[*].type"}"#,
    printcolumn = r#"{"name":"PHASE","type":"string","jsonPath":".status.status"}"#,
    printcolumn = r#"{"name":"HEALTHY","type":"boolean","jsonPath":".status.services[*].healthy"}"#,
    printcolumn = r#"{"name":"STATUS","type":"string","jsonPath":".status.services[*].message"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    pub components: Vec<ApplicationComponent>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub policies: Vec<AppPolicy>,
    /// The workflow; without one, every component is deployed (KubeVela's default workflow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<AppWorkflow>,
}

/// A component of an Application.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationComponent {
    pub name: String,
    /// Name of the ComponentDefinition.
    #[serde(rename = "type")]
    pub type_: String,
    /// Pins the ControllerRevision of this component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_revision: Option<String>,
    /// Parameters for the component definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub properties: Option<Value>,
    /// Components that must be ready before this one is dispatched.
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
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub traits: Vec<ApplicationTrait>,
    /// Component-level scopes: scope type -> scope instance name (legacy).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "scopes_schema")]
    pub scopes: BTreeMap<String, String>,
}

fn scopes_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": { "type": "string" },
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// A trait attached to a component.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationTrait {
    /// Name of the TraitDefinition.
    #[serde(rename = "type")]
    pub type_: String,
    /// Parameters for the trait definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub properties: Option<Value>,
}

/// An application-level policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPolicy {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Name of the PolicyDefinition (`topology`, `override`, `garbage-collect` …).
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub properties: Option<Value>,
}

/// The workflow of an Application: inline steps, or a reference to a `Workflow` object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppWorkflow {
    /// Name of a `Workflow` object in the Application's namespace.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub ref_: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub steps: Vec<WorkflowStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkflowExecuteMode>,
}

string_enum! {
    /// Phase of an Application (`status.status`).
    pub enum ApplicationPhase {
        Starting => "starting",
        Rendering => "rendering",
        PolicyGenerating => "policyGenerating",
        RunningWorkflow => "runningWorkflow",
        WorkflowSuspending => "workflowSuspending",
        WorkflowTerminated => "workflowTerminated",
        WorkflowFailed => "workflowFailed",
        Unhealthy => "unhealthy",
        Running => "running",
        Deleting => "deleting",
    }
}

/// The observed state of an Application (KubeVela's `AppStatus`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
    /// The phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationPhase>,
    /// Legacy: the workloads of the components.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub components: Vec<ObjectReference>,
    /// Health of each component, per cluster/env.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub services: Vec<ApplicationComponentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<Revision>,
    /// Every resource the application applied, in every cluster.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub applied_resources: Vec<ClusterObjectReference>,
    /// Status reported by policies.
    #[serde(default, rename = "policy", skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<PolicyStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When a scheduled workflow restart is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_restart_scheduled_at: Option<Time>,
    /// Application-scoped policies (global and explicit) applied to this application.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub applied_application_policies: Vec<AppliedApplicationPolicy>,
    /// ConfigMap that stores the applied application policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_policies_config_map: Option<String>,
}

impl ApplicationStatus {
    /// The condition of the given type, if any.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Sets a condition, replacing any existing one of the same type.
    pub fn set_condition(&mut self, condition: Condition) {
        match self
            .conditions
            .iter_mut()
            .find(|c| c.type_ == condition.type_)
        {
            Some(existing) => *existing = condition,
            None => self.conditions.push(condition),
        }
    }
}

/// Health of one component in one place.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationComponentStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_definition: Option<WorkloadGvk>,
    pub healthy: bool,
    /// Health of the workload alone (without traits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_healthy: Option<bool>,
    /// Output of the definition's `details` template.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub details: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub traits: Vec<ApplicationTraitStatus>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scopes: Vec<ObjectReference>,
}

/// Health of one trait.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationTraitStatus {
    #[serde(rename = "type")]
    pub type_: String,
    pub healthy: bool,
    /// The trait has not been dispatched yet (e.g. a PostDispatch trait waiting for the workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<bool>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub details: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Status reported by a policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub status: Option<Value>,
}

/// An Application-scoped policy applied to the application.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedApplicationPolicy {
    pub name: String,
    pub namespace: String,
    pub applied: bool,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// `global` or `explicit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_modified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_context: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_revision_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_hash: Option<String>,
}

impl Application {
    /// `metadata.name`, or empty.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    /// `metadata.namespace`, or `default`.
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }

    /// The `app.oam.dev/publishVersion` annotation.
    pub fn publish_version(&self) -> Option<&str> {
        self.annotation(crate::labels::ANNOTATION_PUBLISH_VERSION)
    }

    /// The `app.oam.dev/reconcile-interval` annotation (a duration such as `30s`).
    pub fn reconcile_interval(&self) -> Option<&str> {
        self.annotation(crate::labels::ANNOTATION_RECONCILE_INTERVAL)
    }

    /// The phase in the status, if any.
    pub fn phase(&self) -> Option<&ApplicationPhase> {
        self.status.as_ref().and_then(|s| s.status.as_ref())
    }

    /// The component with this name.
    pub fn component(&self, name: &str) -> Option<&ApplicationComponent> {
        self.spec.components.iter().find(|c| c.name == name)
    }

    /// The policy with this name.
    pub fn policy(&self, name: &str) -> Option<&AppPolicy> {
        self.spec.policies.iter().find(|p| p.name == name)
    }
}

impl ApplicationComponent {
    /// The properties decoded as `T`; unset properties decode from an empty map.
    pub fn typed_properties<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        crate::policy::decode_properties(
            &format!("component {:?} ({})", self.name, self.type_),
            self.properties.as_ref(),
        )
    }

    /// The trait of this type, if attached.
    pub fn trait_of_type(&self, type_: &str) -> Option<&ApplicationTrait> {
        self.traits.iter().find(|t| t.type_ == type_)
    }
}

impl AppPolicy {
    /// The properties decoded as `T` (e.g. [`crate::policy::TopologyPolicySpec`]); unset
    /// properties decode from an empty map. Errors name the policy and the field.
    pub fn typed_properties<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        crate::policy::decode_properties(
            &format!("policy {:?} ({})", self.name, self.type_),
            self.properties.as_ref(),
        )
    }
}
