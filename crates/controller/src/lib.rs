//! The Application controller.
//!
//! It watches Applications on the hub and, for each: loads the definitions it uses, makes a new
//! ApplicationRevision when the application or a definition changed, runs the workflow (whose
//! steps render components and apply them through the fleet, recording every object in a
//! ResourceTracker first), reads health back from the live objects, writes the status, and once
//! a revision's workflow succeeded, deletes what older revisions applied and this one does not.

mod cuestep;
pub mod definitions;
pub mod effective;
mod error;
mod install;
pub mod intent;
mod kept;
mod metrics;
pub mod placement;
mod policy;
mod providers;
mod reconcile;
mod restart;
mod revision;
mod steps;
mod tracker;

pub use definitions::SYSTEM_NAMESPACE;
pub use error::Error;
pub use install::{INSTALL_MANAGER, install};
pub use kept::{ANNOTATION_KEPT, Kept, REASON_KEPT, kept_on_delete};
pub use metrics::Metrics;
pub use policy::DEFAULT_REVISION_LIMIT;
pub use reconcile::{Controller, ControllerConfig, FINALIZER, preflight};
pub use revision::{RevisionInfo, Rollback, list_revisions, rollback};
pub use tracker::{GcReport, RESOURCE_TRACKER_FINALIZER};
