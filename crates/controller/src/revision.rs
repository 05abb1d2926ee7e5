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
    // Step types defined in CUE are part of the revision too, so that changing one makes a new
    // revision. One that is not defined (yet) fails its step with a message naming it.
    if let Some(wf) = &app.spec.workflow {
        let types = wf
            .steps
            .iter()
            .flat_map(|s| std::iter::once(&s.type_).chain(s.sub_steps.iter().map(|x| &x.type_)));
        for t in types {
            if let Some(def) = catalog.iter().find(|c| {
                c.definition.kind == render::DefinitionKind::WorkflowStep && &c.definition.name == t
            }) {
                used.push(def.clone());
            }
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
        (LABEL_REVISION_HASH.to_string(), hash.to_string()),
    ]));
    let mut annotations = std::collections::BTreeMap::from([(
        ANNOTATION_REVISION_NUMBER.to_string(),
        number.to_string(),
    )]);
    if let Some(v) = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PUBLISH_VERSION))
    {
        annotations.insert(PUBLISH_VERSION.to_string(), v.clone());
    }
    rev.metadata.annotations = Some(annotations);
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

/// The annotation `rollback` puts on an application: the revision it was rolled back to. While
/// the application's spec and publish version are still that revision's, the controller renders
/// it with the definitions the revision snapshotted, not the hub's current ones.
pub const ANNOTATION_ROLLBACK: &str = "app.oam.dev/rollback-revision";

/// For an application rolled back to a revision (and unchanged since): the catalog with the
/// definitions that revision snapshotted over `current`, and the revision's hash. `None` when the
/// application was not rolled back, has changed since, or the revision is gone.
pub async fn rolled_back(
    client: &kube::Client,
    cache: &render::catalog::CompileCache,
    app: &oam::Application,
    current: &render::Catalog,
) -> Result<Option<(render::Catalog, String)>, crate::Error> {
    use kube::ResourceExt;
    use kube::api::Api;
    let Some(name) = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_ROLLBACK))
    else {
        return Ok(None);
    };
    let ns = app.namespace().to_string();
    let api: Api<oam::ApplicationRevision> = Api::namespaced(client.clone(), &ns);
    let Some(rev) = api.get_opt(name).await.map_err(crate::Error::hub(
        "get",
        format!("applicationrevision {ns}/{name}"),
    ))?
    else {
        return Ok(None);
    };
    let publish = |a: &oam::Application| {
        a.metadata
            .annotations
            .as_ref()
            .and_then(|x| x.get(PUBLISH_VERSION))
            .cloned()
    };
    if rev.spec.application.spec != app.spec || publish(&rev.spec.application) != publish(app) {
        return Ok(None);
    }
    let Some(hash) = rev.labels().get(LABEL_REVISION_HASH).cloned() else {
        return Ok(None);
    };
    Ok(Some((snapshot_catalog(cache, &rev, current)?, hash)))
}

/// `current` with the definitions an ApplicationRevision snapshotted put over it.
fn snapshot_catalog(
    cache: &render::catalog::CompileCache,
    rev: &oam::ApplicationRevision,
    current: &render::Catalog,
) -> Result<render::Catalog, crate::Error> {
    use kube::ResourceExt;
    let mut catalog = current.clone();
    let snapshots = rev
        .spec
        .component_definitions
        .values()
        .filter_map(|d| serde_json::to_value(d).ok())
        .chain(
            rev.spec
                .trait_definitions
                .values()
                .filter_map(|d| serde_json::to_value(d).ok()),
        )
        .chain(
            rev.spec
                .policy_definitions
                .values()
                .filter_map(|d| serde_json::to_value(d).ok()),
        )
        .chain(
            rev.spec
                .workflow_step_definitions
                .values()
                .filter_map(|d| serde_json::to_value(d).ok()),
        );
    for obj in snapshots {
        let compiled = render::Definition::from_object(&obj)
            .and_then(|d| cache.compile(d))
            .map_err(|e| {
                crate::Error::Invalid(format!(
                    "applicationrevision {}/{}: a snapshotted definition does not compile: {e}",
                    rev.namespace().unwrap_or_default(),
                    rev.name_any()
                ))
            })?;
        catalog.insert(compiled);
    }
    Ok(catalog)
}

/// What an application runs as while its publish version is the one its latest revision was
/// made with: that revision's spec, its definitions and its hash.
pub struct Published {
    pub spec: oam::ApplicationSpec,
    pub catalog: render::Catalog,
    pub hash: String,
}

/// KubeVela's rule for `app.oam.dev/publishVersion`: while the application carries the same
/// publish version as its latest revision, it runs as that revision has it (spec and
/// definitions), whatever changed since in the application or on the hub; only a new publish
/// version makes a new revision. `None` when the application has no publish version, has no
/// revision yet, the latest revision has another (or no) publish version, or is gone.
pub async fn published(
    client: &kube::Client,
    cache: &render::catalog::CompileCache,
    app: &oam::Application,
    latest: Option<&oam::Revision>,
    current: &render::Catalog,
) -> Result<Option<Published>, crate::Error> {
    use kube::ResourceExt;
    use kube::api::Api;
    let publish = |a: &oam::Application| {
        a.metadata
            .annotations
            .as_ref()
            .and_then(|x| x.get(PUBLISH_VERSION))
            .cloned()
    };
    let (Some(version), Some(latest)) = (publish(app), latest) else {
        return Ok(None);
    };
    let ns = app.namespace().to_string();
    let api: Api<oam::ApplicationRevision> = Api::namespaced(client.clone(), &ns);
    let Some(rev) = api.get_opt(&latest.name).await.map_err(crate::Error::hub(
        "get",
        format!("applicationrevision {ns}/{}", latest.name),
    ))?
    else {
        return Ok(None);
    };
    if publish(&rev.spec.application).as_ref() != Some(&version) {
        return Ok(None);
    }
    let Some(hash) = rev.labels().get(LABEL_REVISION_HASH).cloned() else {
        return Ok(None);
    };
    Ok(Some(Published {
        catalog: snapshot_catalog(cache, &rev, current)?,
        spec: rev.spec.application.spec.clone(),
        hash,
    }))
}

/// The label on an ApplicationRevision that holds its hash.
pub const LABEL_REVISION_HASH: &str = "app.oam.dev/revision-hash";
/// The annotation on an ApplicationRevision that holds its number.
pub const ANNOTATION_REVISION_NUMBER: &str = "app.oam.dev/revision-number";

/// One revision of an application, as `sail revision list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionInfo {
    pub name: String,
    pub number: i64,
    pub hash: String,
    pub publish_version: Option<String>,
    pub succeeded: bool,
    pub created: Option<String>,
}

fn info(rev: &oam::ApplicationRevision) -> RevisionInfo {
    use kube::ResourceExt;
    let name = rev.name_any();
    let number = rev
        .annotations()
        .get(ANNOTATION_REVISION_NUMBER)
        .and_then(|n| n.parse().ok())
        .or_else(|| name.rsplit_once("-v").and_then(|(_, n)| n.parse().ok()))
        .unwrap_or(0);
    RevisionInfo {
        name,
        number,
        hash: rev
            .labels()
            .get(LABEL_REVISION_HASH)
            .cloned()
            .unwrap_or_default(),
        publish_version: rev
            .spec
            .application
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PUBLISH_VERSION))
            .cloned(),
        succeeded: rev.status.as_ref().is_some_and(|s| s.succeeded),
        created: rev
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
    }
}

/// The revisions of an application, oldest first.
pub async fn list(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<Vec<(RevisionInfo, oam::ApplicationRevision)>, crate::Error> {
    use kube::api::{Api, ListParams};
    let api: Api<oam::ApplicationRevision> = Api::namespaced(client.clone(), namespace);
    let items = api
        .list(&ListParams::default().labels(&format!("{}={app}", oam::labels::LABEL_APP_NAME)))
        .await
        .map_err(crate::Error::hub(
            "list",
            format!("applicationrevisions of {namespace}/{app}"),
        ))?
        .items;
    let mut out: Vec<(RevisionInfo, oam::ApplicationRevision)> =
        items.into_iter().map(|r| (info(&r), r)).collect();
    out.sort_by_key(|(i, _)| i.number);
    Ok(out)
}

/// The revisions of an application, oldest first: name, number, hash, publish version and
/// whether its workflow succeeded.
pub async fn list_revisions(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<Vec<RevisionInfo>, crate::Error> {
    Ok(list(client, namespace, app)
        .await?
        .into_iter()
        .map(|(i, _)| i)
        .collect())
}

/// The revision an identical application already has (same spec, same definition revisions,
/// same publish version: the same hash), which KubeVela reuses instead of making a new one.
pub fn find_identical<'a>(
    revisions: &'a [(RevisionInfo, oam::ApplicationRevision)],
    app: &oam::Application,
    hash: &str,
) -> Option<&'a RevisionInfo> {
    let publish = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PUBLISH_VERSION));
    revisions
        .iter()
        .rev()
        .find(|(i, rev)| {
            i.hash == hash
                && i.publish_version.as_ref() == publish
                && rev.spec.application.spec == app.spec
        })
        .map(|(i, _)| i)
}

/// Delete the oldest revisions beyond `limit` that are not in use (the latest one, and any whose
/// resources a tracker still lists), as KubeVela's revision garbage collection does.
pub async fn enforce_limit(
    client: &kube::Client,
    namespace: &str,
    revisions: &[RevisionInfo],
    in_use: &std::collections::BTreeSet<i64>,
    latest: &str,
    limit: usize,
) -> Result<Vec<String>, crate::Error> {
    use kube::api::{Api, DeleteParams};
    let using = |r: &RevisionInfo| r.name == latest || in_use.contains(&r.number);
    let used = revisions.iter().filter(|r| using(r)).count();
    let mut kill = revisions.len().saturating_sub(limit + used);
    let api: Api<oam::ApplicationRevision> = Api::namespaced(client.clone(), namespace);
    let mut deleted = Vec::new();
    for r in revisions {
        if kill == 0 {
            break;
        }
        if using(r) {
            continue;
        }
        match api.delete(&r.name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(crate::Error::hub(
                    "delete",
                    format!("applicationrevision {namespace}/{}", r.name),
                )(e));
            }
        }
        deleted.push(r.name.clone());
        kill -= 1;
    }
    Ok(deleted)
}

/// What a rollback did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollback {
    /// The revision the application's spec was set back to.
    pub revision: String,
    pub publish_version: Option<String>,
}

/// Roll an application back to one of its revisions: its spec (and publish version) become the
/// revision's again, so the controller finds that revision identical, reuses it and runs its
/// workflow again (KubeVela's `vela workflow rollback`, or `vela up --revision` for a named
/// one). Without `to`, the latest revision whose workflow succeeded other than the current one.
pub async fn rollback(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    to: Option<&str>,
) -> Result<Rollback, crate::Error> {
    use kube::api::{Api, PostParams};
    let apps: Api<oam::Application> = Api::namespaced(client.clone(), namespace);
    let revisions = list(client, namespace, app).await?;
    for _attempt in 0..5 {
        let mut current = apps.get(app).await.map_err(crate::Error::hub(
            "get",
            format!("application {namespace}/{app}"),
        ))?;
        let latest = current
            .status
            .as_ref()
            .and_then(|s| s.latest_revision.as_ref())
            .map(|r| r.name.clone());
        let target = match to {
            Some(name) => revisions.iter().find(|(i, _)| i.name == name).ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "application {namespace}/{app} has no revision {name:?} (it has: {})",
                    revisions
                        .iter()
                        .map(|(i, _)| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
            None => revisions
                .iter()
                .rev()
                .find(|(i, _)| i.succeeded && Some(&i.name) != latest.as_ref())
                .ok_or_else(|| {
                    crate::Error::Invalid(format!(
                        "application {namespace}/{app} has no earlier revision whose workflow succeeded to roll back to"
                    ))
                })?,
        };
        let (info, rev) = target;
        current.spec = rev.spec.application.spec.clone();
        let annotations = current
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        match &info.publish_version {
            Some(v) => {
                annotations.insert(PUBLISH_VERSION.to_string(), v.clone());
            }
            None => {
                annotations.remove(PUBLISH_VERSION);
            }
        }
        // The revision as it was: its definitions, not the hub's current ones.
        annotations.insert(ANNOTATION_ROLLBACK.to_string(), info.name.clone());
        current.metadata.managed_fields = None;
        match apps.replace(app, &PostParams::default(), &current).await {
            Ok(_) => {
                return Ok(Rollback {
                    revision: info.name.clone(),
                    publish_version: info.publish_version.clone(),
                });
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => {
                return Err(crate::Error::hub(
                    "roll back",
                    format!("application {namespace}/{app}"),
                )(e));
            }
        }
    }
    Err(crate::Error::Invalid(format!(
        "application {namespace}/{app}: too many conflicting writes while rolling back"
    )))
}
