//! `sail workflow suspend | resume | terminate | restart | rollback NAME`: control a running workflow by
//! writing the Application's `status.workflow`, which the controller reads.

use crate::Error;
use crate::hub::Hub;
use kube::api::{Api, Patch, PatchParams};
use oam::Application;
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Pause after the running steps.
    Suspend,
    /// Continue a suspended workflow (approve a `suspend` step).
    Resume,
    /// Stop the workflow; it runs again only when the application changes or is restarted.
    Terminate,
    /// Run the workflow again from its first step.
    Restart,
    /// Set the application back to the last revision whose workflow succeeded, and run it.
    Rollback,
}

pub async fn run(hub: &Hub, ns: &str, name: &str, action: Action) -> Result<(), Error> {
    let api: Api<Application> = Api::namespaced(hub.client.clone(), ns);
    let app = crate::apps::get_app(hub, ns, name).await?;
    let wf = app.status.as_ref().and_then(|s| s.workflow.as_ref());
    let patch = match action {
        Action::Suspend => {
            if wf.is_some_and(|w| w.finished) {
                return Err(Error::Failed(format!(
                    "the workflow of {ns}/{name} has finished; there is nothing to suspend"
                )));
            }
            json!({"status": {"workflow": {"suspend": true}}})
        }
        Action::Resume => {
            if !wf.is_some_and(|w| w.suspend) {
                return Err(Error::Failed(format!(
                    "the workflow of {ns}/{name} is not suspended"
                )));
            }
            json!({"status": {"workflow": {"suspend": false}}})
        }
        Action::Terminate => json!({"status": {"workflow": {"terminated": true}}}),
        Action::Restart => json!({"status": {"workflow": null}}),
        // Not a status write: the application's spec goes back to a revision.
        Action::Rollback => return crate::revision::rollback(hub, ns, name, None).await,
    };
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::api(format!("update the workflow of {ns}/{name}")))?;
    let done = match action {
        Action::Suspend => "suspended",
        Action::Resume => "resumed",
        Action::Terminate => "terminated",
        Action::Restart | Action::Rollback => "restarted",
    };
    println!("workflow of application {ns}/{name} {done}");
    Ok(())
}
