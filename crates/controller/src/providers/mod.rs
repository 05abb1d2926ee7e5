//! The providers of CUE workflow steps: what an operation (`#provider` + `#do`) of a
//! WorkflowStepDefinition does. `builtin` and `util` (string, log) are served by
//! `workflow::task::Builtins` in front of [`Remote`]; everything else is here, one module per
//! provider.

mod config;
mod email;
mod http;
mod kube;
mod metrics;
mod multicluster;
mod oam;
mod query;
mod time;
mod util;

use crate::steps::Runner;
use futures::future::BoxFuture;
use workflow::task::{self, Operation, Outcome, ProviderError};

/// Why an operation did not work.
#[derive(Debug)]
pub(crate) enum Problem {
    /// Something did not answer or is not there yet: the engine retries with backoff.
    Retry(String),
    /// The operation's input is wrong; retrying cannot help, the step fails now.
    Invalid(String),
}

impl From<ProviderError> for Problem {
    fn from(e: ProviderError) -> Self {
        Problem::Retry(e.0)
    }
}

impl From<fleet::Error> for Problem {
    fn from(e: fleet::Error) -> Self {
        Problem::Retry(e.to_string())
    }
}

/// What the providers here answer.
pub(crate) type Answer = Result<Outcome, Problem>;

/// An invalid-input answer.
pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T, Problem> {
    Err(Problem::Invalid(message.into()))
}

/// The controller's providers for one step of one application.
pub(crate) struct Remote<'r, 'a> {
    runner: &'r Runner<'a>,
    /// The step's `context.stepSessionID`: the same for every attempt of the step.
    session: String,
}

impl<'r, 'a> Remote<'r, 'a> {
    pub(crate) fn new(runner: &'r Runner<'a>, session: String) -> Self {
        Remote { runner, session }
    }
}

impl task::Providers for Remote<'_, '_> {
    fn call<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
        Box::pin(async move {
            let params = &op.params;
            let answer: Answer = match (op.provider.as_str(), op.action.as_str()) {
                ("http", "do") => Ok(http::http_do(params).await?),
                ("config", action) => {
                    config::call(&self.runner.fleet.local(), action, params).await
                }
                ("time", action) => time::call(action, params),
                ("multicluster", action) => multicluster::call(self.runner, action, params).await,
                ("oam", action) => oam::call(self.runner, action, params).await,
                ("query", action) => query::call(self.runner, action, params).await,
                ("email", action) => {
                    let key = crate::intent::send_key(&self.session, &op.path);
                    email::call(&key, action, params).await
                }
                ("metrics", action) => {
                    metrics::call(self.runner, &self.session, action, params).await
                }
                // Legacy `vela/op` definitions name their provider `op` (read as `kube`).
                (
                    "kube",
                    a @ ("deploy" | "list-clusters" | "get-placements-from-topology-policies"),
                ) => multicluster::call(self.runner, a, params).await,
                (
                    "kube",
                    a @ ("load"
                    | "load-comps-in-order"
                    | "load-policies"
                    | "component-apply"
                    | "component-render"),
                ) => oam::call(self.runner, a, params).await,
                ("util", "patch-k8s-object") => util::patch_k8s_object(params),
                ("kube", action) => Ok(kube::call(self.runner, action, params).await?),
                (p, a) => invalid(format!(
                    "provider {p:?} has no operation {a:?} in Sailplane"
                )),
            };
            match answer {
                Ok(o) => Ok(o),
                Err(Problem::Retry(m)) => Err(ProviderError(m)),
                Err(Problem::Invalid(m)) => Ok(Outcome::Fail {
                    message: format!("{} ({}.{}): {m}", op.path, op.provider, op.action),
                }),
            }
        })
    }
}
