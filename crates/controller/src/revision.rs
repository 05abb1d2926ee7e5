//! Application revisions: a digest of what decides the rendered objects, and the
//! ApplicationRevision object that snapshots it.

use render::catalog::Compiled;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The annotation that forces a new revision when its value changes.
pub use oam::labels::ANNOTATION_PUBLISH_VERSION as PUBLISH_VERSION;

/// Digest of the application spec, its publish version and the revisions of the definitions it
/// uses: equal digests render equal objects.
pub fn hash(app: &oam::Application, used: &[Arc<Compiled>]) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_string(&app.spec).unwrap_or_default());
    h.update([0]);
    if let Some(v) = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PUBLISH_VERSION))
    {
        h.update(v);
    }
    for d in used {
        h.update([0]);
        h.update(&d.revision);
    }
    hex::encode(&h.finalize()[..8])
}

/// Every definition an application uses, looked up in the catalog; the first unknown one is an
/// error that names it and suggests the closest names.
pub fn used_definitions(
    app: &oam::Application,
    catalog: &render::Catalog,
) -> Result<Vec<Arc<Compiled>>, render::Error> {
    use render::DefinitionKind::{Component, Trait};
    let mut used = Vec::new();
    for c in &app.spec.components {
        used.push(catalog.require(Component, &c.type_)?.clone());
        for t in &c.traits {
            used.push(catalog.require(Trait, &t.type_)?.clone());
        }
    }
    used.sort_by(|a, b| {
        (a.definition.kind, &a.definition.name).cmp(&(b.definition.kind, &b.definition.name))
    });
    used.dedup_by(|a, b| {
        a.definition.kind == b.definition.kind && a.definition.name == b.definition.name
    });
    Ok(used)
}

/// Create the ApplicationRevision `name`: the application as it is now and the definitions it
/// uses, so that a later change of a definition never silently alters this revision. An
/// existing one of that name is left as it is (revisions are immutable).
pub async fn create(
    client: &kube::Client,
    app: &oam::Application,
    name: &str,
    number: i64,
    hash: &str,
    used: &[Arc<Compiled>],
) -> Result<(), crate::Error> {
    use kube::api::{Api, PostParams};
    use kube::{Resource, ResourceExt};
    let ns = app.namespace().to_string();
    let mut snapshot = app.clone();
    snapshot.status = None;
    snapshot.metadata.managed_fields = None;
    let mut spec = oam::ApplicationRevisionSpec::new(snapshot);
    for d in used {
        let obj = d.definition.to_object(crate::SYSTEM_NAMESPACE);
        let err = |e: serde_json::Error| {
            crate::Error::Invalid(format!("definition {}: {e}", d.definition.name))
        };
        match d.definition.kind {
            render::DefinitionKind::Component => {
                spec.component_definitions.insert(
                    d.definition.name.clone(),
                    serde_json::from_value(obj).map_err(err)?,
                );
            }
            render::DefinitionKind::Trait => {
                spec.trait_definitions.insert(
                    d.definition.name.clone(),
                    serde_json::from_value(obj).map_err(err)?,
                );
            }
            render::DefinitionKind::Policy => {
                spec.policy_definitions.insert(
                    d.definition.name.clone(),
                    serde_json::from_value(obj).map_err(err)?,
                );
            }
            render::DefinitionKind::WorkflowStep => {
                spec.workflow_step_definitions.insert(
                    d.definition.name.clone(),
                    serde_json::from_value(obj).map_err(err)?,
                );
            }
        }
    }
    let mut rev = oam::ApplicationRevision::new(name, spec);
    rev.metadata.namespace = Some(ns.clone());
    rev.metadata.labels = Some(std::collections::BTreeMap::from([
        (oam::labels::LABEL_APP_NAME.to_string(), app.name_any()),
        ("app.oam.dev/revision-hash".to_string(), hash.to_string()),
    ]));
    rev.metadata.annotations = Some(std::collections::BTreeMap::from([(
        "app.oam.dev/revision-number".to_string(),
        number.to_string(),
    )]));
    if let Some(owner) = app.controller_owner_ref(&()) {
        rev.metadata.owner_references = Some(vec![owner]);
    }
    let api: Api<oam::ApplicationRevision> = Api::namespaced(client.clone(), &ns);
    match api.create(&PostParams::default(), &rev).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(crate::Error::hub(
            "create",
            format!("applicationrevision {ns}/{name}"),
        )(e)),
    }
}

/// Record on the ApplicationRevision that its workflow succeeded.
pub async fn mark_succeeded(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), crate::Error> {
    use kube::api::{Api, Patch, PatchParams};
    let api: Api<oam::ApplicationRevision> = Api::namespaced(client.clone(), namespace);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"succeeded": true}})),
    )
    .await
    .map_err(crate::Error::hub(
        "mark succeeded",
        format!("applicationrevision {namespace}/{name}"),
    ))?;
    Ok(())
}
