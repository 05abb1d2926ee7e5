//! The four X-Definition kinds (`core.oam.dev/v1beta1`) and what they have in common.

use std::collections::BTreeMap;

use kube::{CustomResource, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::{
    DefinitionReference, DefinitionStatus, DefinitionStatusTemplates, Schematic, WorkloadGvk,
    preserve_unknown_object, string_enum,
};

/// The four definition kinds.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum DefinitionKind {
    Component,
    Trait,
    Policy,
    WorkflowStep,
}

impl DefinitionKind {
    /// Every kind.
    pub const ALL: [DefinitionKind; 4] = [
        DefinitionKind::Component,
        DefinitionKind::Trait,
        DefinitionKind::Policy,
        DefinitionKind::WorkflowStep,
    ];

    /// The Kubernetes kind, e.g. `ComponentDefinition`.
    pub fn kind_name(self) -> &'static str {
        match self {
            DefinitionKind::Component => "ComponentDefinition",
            DefinitionKind::Trait => "TraitDefinition",
            DefinitionKind::Policy => "PolicyDefinition",
            DefinitionKind::WorkflowStep => "WorkflowStepDefinition",
        }
    }

    /// The resource plural, e.g. `componentdefinitions`.
    pub fn plural(self) -> &'static str {
        match self {
            DefinitionKind::Component => "componentdefinitions",
            DefinitionKind::Trait => "traitdefinitions",
            DefinitionKind::Policy => "policydefinitions",
            DefinitionKind::WorkflowStep => "workflowstepdefinitions",
        }
    }

    /// The value of `spec.definitionType` in a DefinitionRevision, e.g. `Component`.
    pub fn definition_type(self) -> &'static str {
        match self {
            DefinitionKind::Component => "Component",
            DefinitionKind::Trait => "Trait",
            DefinitionKind::Policy => "Policy",
            DefinitionKind::WorkflowStep => "WorkflowStep",
        }
    }

    /// Lower-case name used in messages and CLI output: `component`, `trait`, `policy`, `workflow-step`.
    pub fn short_name(self) -> &'static str {
        match self {
            DefinitionKind::Component => "component",
            DefinitionKind::Trait => "trait",
            DefinitionKind::Policy => "policy",
            DefinitionKind::WorkflowStep => "workflow-step",
        }
    }

    /// The kind whose Kubernetes kind is `kind` (e.g. `TraitDefinition`).
    pub fn from_kind_name(kind: &str) -> Option<DefinitionKind> {
        DefinitionKind::ALL
            .into_iter()
            .find(|k| k.kind_name() == kind)
    }
}

impl std::fmt::Display for DefinitionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind_name())
    }
}

/// What every definition kind offers the renderer and the controller.
pub trait Definition: Resource<DynamicType = ()> {
    /// Which kind this is.
    fn definition_kind() -> DefinitionKind;
    /// The schematic, if any.
    fn schematic(&self) -> Option<&Schematic>;
    /// The CUE template, if the definition is written in CUE.
    fn template(&self) -> Option<&str> {
        self.schematic()
            .and_then(|s| s.cue.as_ref())
            .map(|c| c.template.as_str())
    }
    /// Health and status templates (component and trait definitions only).
    fn status_templates(&self) -> Option<&DefinitionStatusTemplates> {
        None
    }
    /// CUE producing `isHealth`.
    fn health_policy(&self) -> Option<&str> {
        self.status_templates()
            .and_then(|s| s.health_policy.as_deref())
    }
    /// CUE producing `message`.
    fn custom_status(&self) -> Option<&str> {
        self.status_templates()
            .and_then(|s| s.custom_status.as_deref())
    }
    /// CUE producing `details`.
    fn details(&self) -> Option<&str> {
        self.status_templates().and_then(|s| s.details.as_deref())
    }
    /// The definition's `spec.version`, if set.
    fn version(&self) -> Option<&str>;
    /// The definition's status.
    fn definition_status(&self) -> Option<&DefinitionStatus>;
    /// The definition's name (`metadata.name`); empty if unset.
    fn definition_name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or("")
    }
    /// `definition.oam.dev/description` annotation.
    fn description(&self) -> Option<&str> {
        self.meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::labels::ANNOTATION_DEFINITION_DESCRIPTION))
            .map(String::as_str)
    }
}

/// What a component's workload is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadTypeDescriptor {
    /// Name of a WorkloadDefinition (legacy) or `autodetects.core.oam.dev`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<WorkloadGvk>,
}

/// A kind of child resource a workload creates (for status collection).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChildResourceKind {
    pub api_version: String,
    pub kind: String,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub selector: BTreeMap<String, String>,
}

/// A ComponentDefinition: how to turn a component of this type into Kubernetes objects.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1beta1",
    kind = "ComponentDefinition",
    namespaced,
    status = "DefinitionStatus",
    shortname = "comp",
    category = "oam",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"WORKLOAD-KIND","type":"string","jsonPath":".spec.workload.definition.kind"}"#,
    printcolumn = r#"{"name":"DESCRIPTION","type":"string","jsonPath":".metadata.annotations.definition\\.oam\\.dev/description"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDefinitionSpec {
    pub workload: WorkloadTypeDescriptor,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub child_resource_kinds: Vec<ChildResourceKind>,
    /// Label on the workload that carries the component revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_label: Option<String>,
    /// Path of the pod spec inside the workload (e.g. `spec.template`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DefinitionStatusTemplates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schematic: Option<Schematic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub extension: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

string_enum! {
    /// When a trait is dispatched relative to its workload.
    pub enum TraitStage {
        PreDispatch => "PreDispatch",
        DefaultDispatch => "DefaultDispatch",
        PostDispatch => "PostDispatch",
    }
}

/// A TraitDefinition: an operational behaviour attached to components.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1beta1",
    kind = "TraitDefinition",
    namespaced,
    status = "DefinitionStatus",
    shortname = "trait",
    category = "oam",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"APPLIES-TO","type":"string","jsonPath":".spec.appliesToWorkloads"}"#,
    printcolumn = r#"{"name":"DESCRIPTION","type":"string","jsonPath":".metadata.annotations.definition\\.oam\\.dev/description"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TraitDefinitionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_ref: Option<DefinitionReference>,
    /// Whether the trait manages the workload's revisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_enabled: Option<bool>,
    /// Field path in the trait object where the workload reference is injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref_path: Option<String>,
    /// Whether changing the trait restarts pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruptive: Option<bool>,
    /// Workload kinds / component types this trait applies to (`*` or empty: all).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub applies_to_workloads: Vec<String>,
    /// Traits this one cannot be combined with.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conflicts_with: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schematic: Option<Schematic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DefinitionStatusTemplates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub extension: Option<Value>,
    /// The trait manages the workload itself (e.g. a rollout trait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_workload: Option<bool>,
    /// The trait is applied only in the control plane (hub), never to member clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `PreDispatch`, `DefaultDispatch` or `PostDispatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<TraitStage>,
}

/// A PolicyDefinition.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1beta1",
    kind = "PolicyDefinition",
    namespaced,
    status = "DefinitionStatus",
    shortname = "def-policy",
    category = "oam",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct PolicyDefinitionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_ref: Option<DefinitionReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schematic: Option<Schematic>,
    /// The policy takes over health checking of the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_health_check: Option<bool>,
    /// Applied to every Application in scope without being listed (Application-scoped policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<bool>,
    /// Order among global policies (higher first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// `Application` for Application-scoped policies; empty for ordinary ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A WorkflowStepDefinition.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1beta1",
    kind = "WorkflowStepDefinition",
    namespaced,
    status = "DefinitionStatus",
    shortname = "workflowstep",
    category = "oam",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStepDefinitionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_ref: Option<DefinitionReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schematic: Option<Schematic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `Definition` for a kind whose spec has `schematic` and `version` (and, with `status`, the
/// status templates).
macro_rules! impl_definition {
    ($ty:ty, $kind:ident $(, $status:ident)?) => {
        impl Definition for $ty {
            fn definition_kind() -> DefinitionKind {
                DefinitionKind::$kind
            }
            fn schematic(&self) -> Option<&Schematic> {
                self.spec.schematic.as_ref()
            }
            $(
                fn status_templates(&self) -> Option<&DefinitionStatusTemplates> {
                    self.spec.$status.as_ref()
                }
            )?
            fn version(&self) -> Option<&str> {
                self.spec.version.as_deref()
            }
            fn definition_status(&self) -> Option<&DefinitionStatus> {
                self.status.as_ref()
            }
        }
    };
}

impl_definition!(ComponentDefinition, Component, status);
impl_definition!(TraitDefinition, Trait, status);
impl_definition!(PolicyDefinition, Policy);
impl_definition!(WorkflowStepDefinition, WorkflowStep);

impl TraitDefinition {
    /// Whether this trait applies to a component of type `component_type` whose workload has
    /// `workload` as apiVersion/kind. Empty `appliesToWorkloads` or `*` means everything.
    pub fn applies_to(&self, component_type: &str, workload: Option<&WorkloadGvk>) -> bool {
        let list = &self.spec.applies_to_workloads;
        if list.is_empty() {
            return true;
        }
        list.iter().any(|entry| {
            if entry == "*" || entry == component_type {
                return true;
            }
            let Some(w) = workload else { return false };
            let group = w.api_version.split_once('/').map_or("", |(g, _)| g);
            // forms KubeVela accepts: `deployments.apps`, `apps/v1.Deployment`, `Deployment`
            if let Some(g) = entry.strip_prefix("*.") {
                return g == group;
            }
            entry == &w.kind
                || *entry == format!("{}.{}", w.api_version, w.kind)
                || *entry == format!("{}.{}", w.kind.to_ascii_lowercase() + "s", group)
        })
    }
}

/// A WorkloadDefinition (legacy kind, still recorded in ApplicationRevisions).
/// Its CRD is not part of [`crate::crds`]: Sailplane does not serve it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1beta1",
    kind = "WorkloadDefinition",
    namespaced,
    status = "WorkloadDefinitionStatus",
    shortname = "workload",
    category = "oam",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDefinitionSpec {
    pub definition_ref: DefinitionReference,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub child_resource_kinds: Vec<ChildResourceKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DefinitionStatusTemplates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schematic: Option<Schematic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub extension: Option<Value>,
}

/// Status of a WorkloadDefinition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDefinitionStatus {
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<crate::common::Condition>,
}
