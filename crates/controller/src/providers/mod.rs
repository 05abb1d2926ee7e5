//! The providers of CUE workflow steps: what an operation (`#provider` + `#do`) of a
//! WorkflowStepDefinition does. `builtin` and `util` are served by `workflow::task::Builtins`
//! in front of [`Remote`]; everything that talks to a cluster or the network is here, one
//! module per provider.

mod http;
mod kube;

use crate::steps::Runner;
use futures::future::BoxFuture;
use workflow::task::{self, Operation, Outcome, ProviderError};

/// The controller's providers for one step of one application.
pub(crate) struct Remote<'r, 'a> {
    runner: &'r Runner<'a>,
}

impl<'r, 'a> Remote<'r, 'a> {
    pub(crate) fn new(runner: &'r Runner<'a>) -> Self {
        Remote { runner }
    }
}

impl task::Providers for Remote<'_, '_> {
    fn call<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
        Box::pin(async move {
            match (op.provider.as_str(), op.action.as_str()) {
                ("kube", action) => kube::call(self.runner, action, &op.params).await,
                ("http", "do") => http::http_do(&op.params).await,
                (p, a) => Err(ProviderError(format!(
                    "provider {p:?} has no operation {a:?} in Sailplane yet"
                ))),
            }
        })
    }
}
