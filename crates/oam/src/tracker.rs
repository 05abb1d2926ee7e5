//! `ResourceTracker` (`core.oam.dev/v1beta1`, cluster-scoped): what an Application applied where.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::{Compression, preserve_unknown_object, string_enum};

string_enum! {
    /// The role of a ResourceTracker.
    pub enum ResourceTrackerType {
        /// Resources that live as long as the application (e.g. with `garbage-collect` keep rules).
        Root => "root",
        /// Resources of one application generation.
        Versioned => "versioned",
        /// ControllerRevisions of components.
        ComponentRevision => "component-revision",
    }
}

/// The list of resources an Application manages, recorded before they are applied.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.oam.dev",
    version = "v1beta1",
    kind = "ResourceTracker",
    shortname = "rt",
    category = "oam",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"TYPE","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"APP","type":"string","jsonPath":".metadata.labels['app\\.oam\\.dev\\/name']"}"#,
    printcolumn = r#"{"name":"APP-NS","type":"string","jsonPath":".metadata.labels['app\\.oam\\.dev\\/namespace']"}"#,
    printcolumn = r#"{"name":"APP-GEN","type":"number","jsonPath":".spec.applicationGeneration"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTrackerSpec {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ResourceTrackerType>,
    /// Generation of the Application this tracker was written for.
    pub application_generation: i64,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub managed_resources: Vec<ManagedResource>,
    /// When `managedResources` is compressed into `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
}

/// One resource an Application manages.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedResource {
    /// Cluster name; empty or `local` is the hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_path: Option<String>,
    /// Component the resource was rendered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Trait type the resource was rendered from.
    #[serde(default, rename = "trait", skip_serializing_if = "Option::is_none")]
    pub trait_: Option<String>,
    /// The manifest as applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub raw: Option<Value>,
    /// The resource was deleted (kept until garbage collection finishes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Never garbage-collect this resource.
    #[serde(default, rename = "skipGC", skip_serializing_if = "std::ops::Not::not")]
    pub skip_gc: bool,
}

impl ManagedResource {
    /// The cluster, with empty meaning the hub (`local`).
    pub fn cluster_name(&self) -> &str {
        match self.cluster.as_deref() {
            None | Some("") => crate::labels::LOCAL_CLUSTER,
            Some(c) => c,
        }
    }

    /// A key that identifies the resource across trackers: `cluster/apiVersion/kind/namespace/name`.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.cluster_name(),
            self.api_version.as_deref().unwrap_or(""),
            self.kind.as_deref().unwrap_or(""),
            self.namespace.as_deref().unwrap_or(""),
            self.name.as_deref().unwrap_or("")
        )
    }
}
