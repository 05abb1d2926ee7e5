//! The `multicluster` provider: `#ListClusters`, `#Deploy` (what the built-in `deploy` step
//! does: the step's topology, override and replication policies over the fleet, through the
//! controller's own placement and apply) and `#GetPlacementsFromTopologyPolicies`.

use super::{Answer, Problem, invalid};
use crate::steps::{Runner, StepError};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use workflow::StepOutcome;
use workflow::task::Outcome;

fn step_error(e: StepError) -> Problem {
    match e {
        StepError::Fatal(_, m) => Problem::Invalid(m),
        StepError::Retry(m) => Problem::Retry(m),
    }
}

/// A step's outcome as an operation's: done, wait, or fail.
pub(crate) fn outcome(o: StepOutcome) -> Answer {
    match o {
        StepOutcome::Succeeded { .. } => Ok(Outcome::Returns(Value::Null)),
        StepOutcome::Running { message } | StepOutcome::Suspended { message } => {
            Ok(Outcome::Wait { message })
        }
        StepOutcome::Failed { message, .. } => Err(Problem::Invalid(message)),
    }
}

pub(crate) async fn call(runner: &Runner<'_>, action: &str, params: &Value) -> Answer {
    match action {
        "list-clusters" => {
            // A cluster joined since the last round is listed.
            runner.fleet.sync().await?;
            let clusters: Vec<String> = runner
                .fleet
                .names()
                .into_iter()
                .filter(|n| n != fleet::LOCAL)
                .collect();
            Ok(Outcome::Returns(
                json!({ "outputs": { "clusters": clusters } }),
            ))
        }
        "deploy" => {
            let parallelism = match params.get("parallelism") {
                None | Some(Value::Null) => 5,
                Some(v) => match v.as_u64() {
                    Some(n) if n >= 1 => usize::try_from(n).unwrap_or(5),
                    _ => {
                        return invalid(format!(
                            "multicluster.deploy: parallelism must be a whole number of at least 1, found {v}"
                        ));
                    }
                },
            };
            let targets = runner
                .deploy_targets(&placement_props(params))
                .await
                .map_err(step_error)?;
            outcome(runner.apply_targets(&targets, parallelism).await)
        }
        "get-placements-from-topology-policies" => {
            let targets = runner
                .deploy_targets(&placement_props(params))
                .await
                .map_err(step_error)?;
            let placements: BTreeSet<(String, String)> = targets
                .into_iter()
                .map(|t| (t.cluster, t.namespace))
                .collect();
            let placements: Vec<Value> = placements
                .into_iter()
                .map(|(cluster, namespace)| json!({"cluster": cluster, "namespace": namespace}))
                .collect();
            Ok(Outcome::Returns(json!({ "placements": placements })))
        }
        other => invalid(format!(
            "multicluster has no operation {other:?} (list-clusters, deploy, get-placements-from-topology-policies)"
        )),
    }
}

/// The part of the parameters the placement reads: `policies` and `inlinePolicies`.
fn placement_props(params: &Value) -> Value {
    json!({
        "policies": params.get("policies").cloned().unwrap_or(Value::Null),
        "inlinePolicies": params.get("inlinePolicies").cloned().unwrap_or(Value::Null),
    })
}
