//! `ApplicationRevision` and `DefinitionRevision` (`core.oam.dev/v1beta1`): immutable snapshots.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::application::Application;
use crate::common::{
    Compression, embedded_object, embedded_object_map, preserve_unknown_list, string_enum,
};
use crate::definitions::{
    ComponentDefinition, PolicyDefinition, TraitDefinition, WorkflowStepDefinition,
    WorkloadDefinition,
};
use crate::policy::Policy;
use crate::workflow::{Workflow, WorkflowStatus};

/// A snapshot of an Application and of every definition, policy and workflow it used.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1beta1",
    kind = "ApplicationRevision",
    namespaced,
    status = "ApplicationRevisionStatus",
    shortname = "apprev",
    category = "oam",
    derive = "PartialEq",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"PUBLISH_VERSION","type":"string","jsonPath":".metadata.annotations['app\\.oam\\.dev\\/publishVersion']"}"#,
    printcolumn = r#"{"name":"SUCCEEDED","type":"string","jsonPath":".status.succeeded"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRevisionSpec {
    /// The Application as it was (metadata reduced to name, namespace, labels, annotations, finalizers).
    #[schemars(schema_with = "embedded_object::<Application>")]
    pub application: Box<Application>,
    /// ComponentDefinitions used, by name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "embedded_object_map::<ComponentDefinition>")]
    pub component_definitions: BTreeMap<String, ComponentDefinition>,
    /// Legacy WorkloadDefinitions used, by name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "embedded_object_map::<WorkloadDefinition>")]
    pub workload_definitions: BTreeMap<String, WorkloadDefinition>,
    /// TraitDefinitions used, by name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "embedded_object_map::<TraitDefinition>")]
    pub trait_definitions: BTreeMap<String, TraitDefinition>,
    /// PolicyDefinitions used, by name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "embedded_object_map::<PolicyDefinition>")]
    pub policy_definitions: BTreeMap<String, PolicyDefinition>,
    /// WorkflowStepDefinitions used, by name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "embedded_object_map::<WorkflowStepDefinition>")]
    pub workflow_step_definitions: BTreeMap<String, WorkflowStepDefinition>,
    /// External Policy objects used, by name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "embedded_object_map::<Policy>")]
    pub policies: BTreeMap<String, Policy>,
    /// The external Workflow used (`spec.workflow.ref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_embedded_workflow")]
    pub workflow: Option<Box<Workflow>>,
    /// Objects referred to by `ref-objects` components, kept verbatim.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(schema_with = "preserve_unknown_list")]
    pub referred_objects: Vec<Value>,
    /// Versions of Application-scoped policies applied, by policy name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub policy_versions: BTreeMap<String, PolicyVersion>,
    /// When the fields above are compressed into `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
}

fn optional_embedded_workflow(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    embedded_object::<Workflow>(generator)
}

/// The version of an Application-scoped policy that was applied.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_revision_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_hash: Option<String>,
}

impl ApplicationRevisionSpec {
    /// A revision of `application` with no definitions recorded yet.
    pub fn new(application: Application) -> Self {
        ApplicationRevisionSpec {
            application: Box::new(application),
            component_definitions: BTreeMap::new(),
            workload_definitions: BTreeMap::new(),
            trait_definitions: BTreeMap::new(),
            policy_definitions: BTreeMap::new(),
            workflow_step_definitions: BTreeMap::new(),
            policies: BTreeMap::new(),
            workflow: None,
            referred_objects: Vec::new(),
            policy_versions: BTreeMap::new(),
            compression: None,
        }
    }
}

/// Status of an ApplicationRevision.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRevisionStatus {
    /// Whether the workflow of this revision succeeded.
    pub succeeded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowStatus>,
    /// The workflow context (step outputs and variables) at the end of the run.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub workflow_context: BTreeMap<String, String>,
}

string_enum! {
    /// `spec.definitionType` of a DefinitionRevision.
    pub enum DefinitionType {
        Component => "Component",
        Trait => "Trait",
        Policy => "Policy",
        WorkflowStep => "WorkflowStep",
    }
}

impl From<crate::DefinitionKind> for DefinitionType {
    fn from(kind: crate::DefinitionKind) -> Self {
        DefinitionType::from(kind.definition_type())
    }
}

/// A snapshot of one definition.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1beta1",
    kind = "DefinitionRevision",
    namespaced,
    shortname = "defrev",
    category = "oam",
    derive = "PartialEq",
    printcolumn = r#"{"name":"REVISION","type":"integer","jsonPath":".spec.revision"}"#,
    printcolumn = r#"{"name":"HASH","type":"string","jsonPath":".spec.revisionHash"}"#,
    printcolumn = r#"{"name":"TYPE","type":"string","jsonPath":".spec.definitionType"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionRevisionSpec {
    /// Sequence number of this revision.
    pub revision: i64,
    /// Hash of the definition's spec.
    pub revision_hash: String,
    /// Which of the fields below is set.
    #[schemars(schema_with = "definition_type_schema")]
    pub definition_type: DefinitionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_embedded_component_definition")]
    pub component_definition: Option<Box<ComponentDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_embedded_trait_definition")]
    pub trait_definition: Option<Box<TraitDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_embedded_policy_definition")]
    pub policy_definition: Option<Box<PolicyDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_embedded_workflow_step_definition")]
    pub workflow_step_definition: Option<Box<WorkflowStepDefinition>>,
}

fn definition_type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["Component", "Trait", "Policy", "WorkflowStep"]
    })
}

fn optional_embedded_component_definition(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    embedded_object::<ComponentDefinition>(g)
}
fn optional_embedded_trait_definition(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    embedded_object::<TraitDefinition>(g)
}
fn optional_embedded_policy_definition(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    embedded_object::<PolicyDefinition>(g)
}
fn optional_embedded_workflow_step_definition(
    g: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    embedded_object::<WorkflowStepDefinition>(g)
}
