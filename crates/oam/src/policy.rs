//! The `Policy` kind (`core.oam.dev/v1alpha1`): a stand-alone policy object, and the typed
//! properties of the built-in policy types.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::preserve_unknown_object;

/// A stand-alone policy object. Its fields sit at the top level (no `spec`), as in KubeVela.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1alpha1",
    kind = "Policy",
    root = "Policy",
    plural = "policies",
    namespaced,
    no_spec,
    category = "oam",
    derive = "PartialEq",
    printcolumn = r#"{"name":"TYPE","type":"string","jsonPath":".type"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PolicyFields {
    /// Name of the PolicyDefinition.
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub properties: Option<Value>,
}

/// Built-in policy type names.
pub mod types {
    pub const TOPOLOGY: &str = "topology";
    pub const OVERRIDE: &str = "override";
    pub const REPLICATION: &str = "replication";
    pub const GARBAGE_COLLECT: &str = "garbage-collect";
    pub const APPLY_ONCE: &str = "apply-once";
    pub const SHARED_RESOURCE: &str = "shared-resource";
    pub const TAKE_OVER: &str = "take-over";
    pub const READ_ONLY: &str = "read-only";
    pub const RESOURCE_UPDATE: &str = "resource-update";
}

/// Properties of a `topology` policy: where to deploy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopologyPolicySpec {
    /// Cluster names (`local` is the hub).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub clusters: Vec<String>,
    /// Select clusters by their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_label_selector: Option<BTreeMap<String, String>>,
    /// Deprecated alias of `clusterLabelSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<BTreeMap<String, String>>,
    /// Allow an empty selection instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_empty: Option<bool>,
    /// Namespace to deploy to in the selected clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Properties of an `override` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverridePolicySpec {
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub components: Vec<OverrideComponent>,
    /// Restrict to components of these names.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub selector: Vec<String>,
}

/// One override entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideComponent {
    /// Component name to patch (`*`/unset: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Component type to patch.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Merged into the component's properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub properties: Option<Value>,
    /// Traits to merge (by type); `disable: true` removes a trait.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub traits: Vec<OverrideTrait>,
}

/// A trait patch in an override policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideTrait {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub properties: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
}

/// Properties of a `replication` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationPolicySpec {
    /// Replication keys: each selected component is rendered once per key (`context.replicaKey`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub selector: Vec<String>,
}

/// Properties of a `garbage-collect` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GarbageCollectPolicySpec {
    /// Keep resources of earlier versions until the application is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_legacy_resource: Option<bool>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rules: Vec<GarbageCollectPolicyRule>,
    /// Order of deletion: `dependency` deletes in reverse dependency order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// A rule of a `garbage-collect` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GarbageCollectPolicyRule {
    pub selector: ResourcePolicyRuleSelector,
    /// `onAppDelete`, `onAppUpdate` or `never`.
    pub strategy: String,
}

impl GarbageCollectPolicySpec {
    /// The strategy of the first rule matching the resource, as KubeVela picks it.
    pub fn strategy_for(&self, resource: &ResourceLabels<'_>) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.selector.matches(resource))
            .map(|r| r.strategy.as_str())
    }
}

/// Which resources a policy rule selects. A resource is selected when it matches *any* of
/// the lists (KubeVela's semantics): its component name, component type, OAM resource type
/// (`WORKLOAD`/`TRAIT`), trait type, kind or name is listed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePolicyRuleSelector {
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub component_names: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub component_types: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub oam_types: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub trait_types: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_types: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_names: Vec<String>,
}

/// What a rule selector looks at in a rendered resource: its kind and name and the
/// Sailplane/KubeVela labels on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceLabels<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    /// `app.oam.dev/component`.
    pub component: Option<&'a str>,
    /// `workload.oam.dev/type`.
    pub component_type: Option<&'a str>,
    /// `app.oam.dev/resourceType`.
    pub oam_type: Option<&'a str>,
    /// `trait.oam.dev/type`.
    pub trait_type: Option<&'a str>,
}

impl<'a> ResourceLabels<'a> {
    /// Reads kind, name and labels from a manifest (JSON object).
    pub fn from_manifest(manifest: &'a Value) -> Self {
        let label = |k: &str| {
            manifest
                .pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        ResourceLabels {
            kind: manifest.get("kind").and_then(Value::as_str).unwrap_or(""),
            name: manifest
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or(""),
            component: label(crate::labels::LABEL_APP_COMPONENT),
            component_type: label(crate::labels::LABEL_WORKLOAD_TYPE),
            oam_type: label(crate::labels::LABEL_RESOURCE_TYPE),
            trait_type: label(crate::labels::LABEL_TRAIT_TYPE),
        }
    }
}

impl ResourcePolicyRuleSelector {
    /// Whether the resource is selected (any list matching is enough; empty values never match).
    pub fn matches(&self, r: &ResourceLabels<'_>) -> bool {
        fn hit(list: &[String], v: Option<&str>) -> bool {
            v.is_some_and(|v| !v.is_empty() && list.iter().any(|x| x == v))
        }
        hit(&self.component_names, r.component)
            || hit(&self.component_types, r.component_type)
            || hit(&self.oam_types, r.oam_type)
            || hit(&self.trait_types, r.trait_type)
            || hit(&self.resource_types, Some(r.kind))
            || hit(&self.resource_names, Some(r.name))
    }
}

/// Properties of an `apply-once` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOncePolicySpec {
    pub enable: bool,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rules: Vec<ApplyOncePolicyRule>,
}

/// A rule of an `apply-once` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOncePolicyRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<ResourcePolicyRuleSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<ApplyOnceStrategy>,
}

/// Which paths an apply-once rule leaves alone after the first apply.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOnceStrategy {
    /// Field paths (`*` for all).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub path: Vec<String>,
    /// `onUpdate`, `onStateKeep` or `always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affect: Option<String>,
}

/// Properties of `shared-resource`, `take-over` and `read-only` policies: a list of rules.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRulesPolicySpec {
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rules: Vec<ResourceSelectorRule>,
}

/// A rule with only a selector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSelectorRule {
    pub selector: ResourcePolicyRuleSelector,
}

/// Properties of a `resource-update` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceUpdatePolicySpec {
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rules: Vec<ResourceUpdateRule>,
}

/// A rule of a `resource-update` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceUpdateRule {
    pub selector: ResourcePolicyRuleSelector,
    #[serde(default)]
    pub strategy: ResourceUpdateStrategy,
}

/// How a selected resource is updated.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceUpdateStrategy {
    /// `patch` or `replace`.
    #[serde(default, rename = "op", skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// Recreate the resource when these fields change.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub recreate_fields: Vec<String>,
}

impl Policy {
    /// The properties decoded as `T`; see [`crate::AppPolicy::typed_properties`].
    pub fn typed_properties<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        decode_properties(
            &format!(
                "Policy {:?} ({})",
                self.metadata.name.as_deref().unwrap_or(""),
                self.spec.type_
            ),
            self.spec.properties.as_ref(),
        )
    }
}

/// Decodes policy properties, naming `what` and the field on error.
pub(crate) fn decode_properties<T: serde::de::DeserializeOwned>(
    what: &str,
    properties: Option<&Value>,
) -> Result<T, crate::Error> {
    let value = properties
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    serde_path_to_error::deserialize(value).map_err(|e| crate::Error::Value {
        what: format!("{what} properties"),
        field: Some(e.path().to_string()).filter(|p| p != "."),
        message: e.inner().to_string(),
    })
}
