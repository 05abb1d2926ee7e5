//! The OAM / KubeVela API types (`core.oam.dev`), CRD generation from them, and parsing and
//! validation of Applications with precise errors.
//!
//! Every type is KubeVela's, field for field: camelCase on the wire, empty lists and unset
//! options omitted when serialising, free-form fields (`properties`, `extension`, …) kept as
//! [`serde_json::Value`] with `x-kubernetes-preserve-unknown-fields` in the generated schema.

pub mod application;
pub mod common;
pub mod definitions;
pub mod labels;
pub mod workflow;

pub use application::{
    AppPolicy, AppWorkflow, Application, ApplicationComponent, ApplicationComponentStatus,
    ApplicationPhase, ApplicationSpec, ApplicationStatus, ApplicationTrait,
    ApplicationTraitStatus, AppliedApplicationPolicy, PolicyStatus,
};
pub use common::{
    ClusterObjectReference, Compression, Condition, CueSchematic, DefinitionReference,
    DefinitionStatus, DefinitionStatusTemplates, ObjectReference, Revision, Schematic,
    TerraformSchematic, WorkloadGvk,
};
pub use definitions::{
    ChildResourceKind, ComponentDefinition, ComponentDefinitionSpec, Definition, DefinitionKind,
    PolicyDefinition, PolicyDefinitionSpec, TraitDefinition, TraitDefinitionSpec, TraitStage,
    WorkflowStepDefinition, WorkflowStepDefinitionSpec, WorkloadTypeDescriptor,
};
pub use workflow::{
    StepInput, StepOutput, StepStatus, Workflow, WorkflowExecuteMode, WorkflowFields,
    WorkflowMode, WorkflowRunPhase, WorkflowStatus, WorkflowStep, WorkflowStepMeta,
    WorkflowStepPhase, WorkflowStepStatus, WorkflowSubStep,
};

/// The API group of every OAM kind.
pub const GROUP: &str = "core.oam.dev";
