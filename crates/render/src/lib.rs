//! Application + definitions -> Kubernetes manifests.
//!
//! `render` is pure: it takes an Application, the definitions it uses and the context of one
//! placement, and returns the objects to apply, or evaluates a definition's health policy against
//! live objects that the caller read. It never talks to a cluster.
//!
//! - [`definition`]: X-Definitions as data, parsed from KubeVela-style CUE files or hub objects.
//! - [`catalog`]: the definitions an application may use, compiled once per revision.
//! - [`context`]: the `context` value templates see.
//! - [`component`]: a component and its traits rendered to objects.
//! - [`patch`]: trait patch strategies applied to the workload.
//! - [`policy`]: topology, override and replication: what a deploy step puts where.
//! - [`refobjects`]: the `ref-objects` component, resolved by the caller before rendering.
//! - [`health`]: `isHealth`, `customStatus` and `details` against live objects.
//! - [`builtin`]: the built-in definitions embedded from `definitions/`.

pub mod builtin;
pub mod catalog;
pub mod component;
pub mod context;
pub mod definition;
mod error;
pub mod health;
pub mod patch;
pub mod policy;
pub mod refobjects;
pub mod stdlib;

pub use catalog::Catalog;
pub use component::{RenderedComponent, RenderedObject, render_component};
pub use context::RenderContext;
pub use definition::{Definition, DefinitionKind, WorkloadType};
pub use error::Error;
pub use health::{HealthStatus, LiveObjects, evaluate_health};
