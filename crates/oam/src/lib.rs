//! The OAM / KubeVela API types (`core.oam.dev`), CRD generation from them, and parsing and
//! validation of Applications with precise errors.
//!
//! Every type is KubeVela's, field for field: camelCase on the wire, empty lists and unset
//! options omitted when serialising, free-form fields (`properties`, `extension`, …) kept as
//! [`serde_json::Value`] with `x-kubernetes-preserve-unknown-fields` in the generated schema.
//!
//! Modules: [`application`], [`definitions`], [`workflow`], [`policy`], [`revision`],
//! [`tracker`], [`common`] hold the types; [`crd`] generates CRDs; [`parse`] reads YAML;
//! [`validate`] checks Applications; [`labels`] has the well-known keys.
//!
//! ```
//! let yaml = r#"
//! apiVersion: core.oam.dev/v1beta1
//! kind: Application
//! metadata:
//!   name: hello
//! spec:
//!   components:
//!     - name: web
//!       type: webservice
//!       properties:
//!         image: nginx
//!       traits:
//!         - type: scaler
//!           properties: {replicas: 2}
//! "#;
//! let apps = oam::parse_application_yaml("app.yaml", yaml)?;
//! apps[0].validate()?;
//! assert_eq!(apps[0].spec.components[0].traits[0].type_, "scaler");
//!
//! // A component without a type: the error names the file, document, line and field.
//! let bad = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: x}\nspec:\n  components:\n  - name: web\n";
//! let err = oam::parse_application_yaml("bad.yaml", bad).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "bad.yaml: document 1, line 6 column 5: field `spec.components[0].type`: missing field `type`"
//! );
//! # Ok::<(), oam::Error>(())
//! ```

pub mod application;
pub mod common;
pub mod crd;
pub mod definitions;
pub mod error;
pub mod labels;
pub mod parse;
pub mod policy;
pub mod revision;
pub mod tracker;
pub mod validate;
pub mod workflow;

pub use application::{
    AppPolicy, AppWorkflow, Application, ApplicationComponent, ApplicationComponentStatus,
    ApplicationPhase, ApplicationSpec, ApplicationStatus, ApplicationTrait, ApplicationTraitStatus,
    AppliedApplicationPolicy, PolicyStatus,
};
pub use common::{
    ClusterObjectReference, Compression, Condition, CueSchematic, DefinitionReference,
    DefinitionStatus, DefinitionStatusTemplates, ObjectReference, Revision, Schematic,
    TerraformSchematic, WorkloadGvk,
};
pub use crd::{crds, crds_yaml};
pub use definitions::{
    ChildResourceKind, ComponentDefinition, ComponentDefinitionSpec, Definition, DefinitionKind,
    PolicyDefinition, PolicyDefinitionSpec, TraitDefinition, TraitDefinitionSpec, TraitStage,
    WorkflowStepDefinition, WorkflowStepDefinitionSpec, WorkloadDefinition, WorkloadDefinitionSpec,
    WorkloadDefinitionStatus, WorkloadTypeDescriptor,
};
pub use error::{DecodeError, Error, Issue};
pub use parse::{
    OamObject, parse_application, parse_application_yaml, parse_objects_yaml, parse_yaml,
};
pub use policy::{Policy, PolicyFields};
pub use revision::{
    ApplicationRevision, ApplicationRevisionSpec, ApplicationRevisionStatus, DefinitionRevision,
    DefinitionRevisionSpec, DefinitionType, PolicyVersion,
};
pub use tracker::{ManagedResource, ResourceTracker, ResourceTrackerSpec, ResourceTrackerType};
pub use validate::validate_definition;
pub use workflow::{
    StepInput, StepOutput, StepStatus, Workflow, WorkflowExecuteMode, WorkflowFields, WorkflowMode,
    WorkflowRunPhase, WorkflowStatus, WorkflowStep, WorkflowStepMeta, WorkflowStepPhase,
    WorkflowStepStatus, WorkflowSubStep,
};

/// The API group of every OAM kind.
pub const GROUP: &str = "core.oam.dev";
