//! The workflow engine.
//!
//! A workflow is a list of steps run StepByStep or as a DAG. The engine is a state machine over
//! the Application's `status.workflow`: [`Engine::advance`] looks at the status, runs every step
//! that is ready (one in StepByStep mode, all whose dependencies succeeded in DAG mode) through a
//! [`StepRunner`], records the outcomes in the status and returns. The caller writes the status
//! before it calls `advance` again, so a step's outcome is stored before the next step starts and
//! a restarted controller resumes where the status says it stopped.
//!
//! The engine knows nothing of clusters or CUE: what a step *does* is the runner's business.

mod engine;
mod plan;
pub mod task;

pub use engine::{Engine, Progress, StepOutcome, StepRunner};
pub use plan::{Plan, PlannedStep, plan};
