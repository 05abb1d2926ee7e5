//! `sail revision list | get`: an application's revisions, each a snapshot of the application
//! and the definitions it used.

use crate::Error;
use crate::hub::Hub;
use comfy_table::{Table, presets::NOTHING};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use oam::ApplicationRevision;

pub async fn list(hub: &Hub, ns: &str, app: &str) -> Result<(), Error> {
    let api: Api<ApplicationRevision> = Api::namespaced(hub.client.clone(), ns);
    let mut revs = api
        .list(&ListParams::default().labels(&format!("app.oam.dev/name={app}")))
        .await
        .map_err(Error::api(format!("list revisions of {ns}/{app}")))?
        .items;
    if revs.is_empty() {
        return Err(Error::Failed(format!(
            "application {app:?} in namespace {ns} has no revisions"
        )));
    }
    revs.sort_by_key(number);
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(["NAME", "REVISION", "HASH", "SUCCEEDED", "CREATED"]);
    for r in &revs {
        t.add_row([
            r.name_any(),
            number(r).to_string(),
            r.labels()
                .get("app.oam.dev/revision-hash")
                .cloned()
                .unwrap_or_default(),
            r.status.as_ref().is_some_and(|s| s.succeeded).to_string(),
            r.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(())
}

fn number(r: &ApplicationRevision) -> i64 {
    r.annotations()
        .get("app.oam.dev/revision-number")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The application as the revision recorded it, as YAML.
pub async fn get(hub: &Hub, ns: &str, name: &str) -> Result<(), Error> {
    let api: Api<ApplicationRevision> = Api::namespaced(hub.client.clone(), ns);
    let rev = api
        .get_opt(name)
        .await
        .map_err(Error::api(format!("read revision {ns}/{name}")))?
        .ok_or_else(|| Error::Failed(format!("revision {name:?} not found in namespace {ns}")))?;
    let text =
        serde_saphyr::to_string(&rev.spec.application).map_err(|e| Error::Failed(e.to_string()))?;
    print!("{text}");
    let defs: Vec<String> = rev
        .spec
        .component_definitions
        .keys()
        .map(|k| format!("component/{k}"))
        .chain(
            rev.spec
                .trait_definitions
                .keys()
                .map(|k| format!("trait/{k}")),
        )
        .collect();
    println!("# definitions recorded: {}", defs.join(", "));
    Ok(())
}

/// `sail revision rollback APP [--to REV]` (also `sail workflow rollback APP`).
pub async fn rollback(hub: &Hub, ns: &str, app: &str, to: Option<&str>) -> Result<(), Error> {
    let done = controller::rollback(&hub.client, ns, app, to).await?;
    println!(
        "application {ns}/{app} rolled back to {}{}; its workflow runs again (follow it with `sail status {app} -n {ns}`)",
        done.revision,
        done.publish_version
            .as_deref()
            .map(|v| format!(" (publish version {v})"))
            .unwrap_or_default()
    );
    Ok(())
}
