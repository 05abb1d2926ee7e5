//! ResourceTrackers: what each revision of an application applied, recorded before it is
//! applied, and the garbage collection that reads them.
//!
//! Each revision N has a versioned tracker `<app>-v<N>-<namespace>` (cluster-scoped, labelled
//! with the application). Garbage collection runs only after revision N's workflow succeeded:
//! for every older tracker, what it lists and N does not is deleted, then the tracker goes.
//! PersistentVolumeClaims are kept. A delete that fails stops the sweep, which runs again at the
//! next reconcile: an object that cannot be reached is never taken for one that is gone.

use crate::Error;
use crate::policy::{GcStrategy, Policies};
use fleet::{DeleteOutcome, Fleet, ObjectRef};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use oam::{
    Application, ManagedResource, ResourceTracker, ResourceTrackerSpec, ResourceTrackerType,
};
use std::collections::{BTreeMap, BTreeSet};

/// ResourceTrackers carry no finalizer of their own; the Application's finalizer guards them.
pub const RESOURCE_TRACKER_FINALIZER: &str = "app.oam.dev/resource-tracker-finalizer";

use oam::labels::{LABEL_APP_NAME as LABEL_APP, LABEL_APP_NAMESPACE as LABEL_APP_NS};

/// An object to record: where it is and what made it.
#[derive(Clone, Debug)]
pub struct TrackedObject {
    /// Empty for the hub.
    pub cluster: String,
    pub reference: ObjectRef,
    pub component: String,
    pub trait_type: Option<String>,
    /// `app.oam.dev/skipGC: "true"` on the rendered object.
    pub skip_gc: bool,
}

/// What a sweep did; each entry is `Kind namespace/name (cluster)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub deleted: Vec<String>,
    /// Kept on purpose: PersistentVolumeClaims and what a `never` rule keeps.
    pub kept: Vec<String>,
    /// Left to other applications: shared ones handed on, ones another application took over.
    pub released: Vec<String>,
    /// Could not be read or deleted this time; tried again at the next reconcile.
    pub failed: Vec<String>,
    /// Not deleted yet under `order: dependency`: what depends on them is not gone yet.
    pub waiting: Vec<String>,
}

/// How far a component is from the components nothing depends on: those go first (depth 0),
/// then what only they depend on, and so on. A component the application does not name (any
/// more) has no known dependents.
fn depth(dependents: &std::collections::BTreeMap<String, Vec<String>>, c: Option<&str>) -> usize {
    fn go(
        d: &std::collections::BTreeMap<String, Vec<String>>,
        c: &str,
        path: &mut Vec<String>,
    ) -> usize {
        if path.iter().any(|p| p == c) {
            return 0; // a cycle (rejected by validation); do not loop
        }
        path.push(c.to_string());
        let n = d
            .get(c)
            .map(|ds| ds.iter().map(|x| 1 + go(d, x, path)).max().unwrap_or(0))
            .unwrap_or(0);
        path.pop();
        n
    }
    c.map(|c| go(dependents, c, &mut Vec::new())).unwrap_or(0)
}

/// The first resource of a component depending on `m`'s that this collection deletes and that
/// is still there (or cannot be read: an unreadable object is never taken for a gone one).
async fn blocked_by(
    m: &ManagedResource,
    doomed: &[&ManagedResource],
    dependents: &std::collections::BTreeMap<String, Vec<String>>,
    fleet: &Fleet,
) -> Option<String> {
    let deps = dependents.get(m.component.as_deref()?)?;
    for other in doomed {
        if !other.component.as_ref().is_some_and(|c| deps.contains(c)) {
            continue;
        }
        let there = match fleet.cluster(other.cluster.as_deref().unwrap_or_default()) {
            Ok(cluster) => match cluster.get(&object_ref(other)).await {
                Ok(None) | Err(fleet::Error::UnknownKind { .. }) => false,
                Ok(Some(_)) | Err(_) => true,
            },
            // Not registered any more: nothing can reach it, it will not go away by waiting.
            Err(_) => false,
        };
        if there {
            return Some(label(other));
        }
    }
    None
}

pub struct Tracker {
    api: Api<ResourceTracker>,
    app: String,
    namespace: String,
}

impl Tracker {
    pub fn new(client: kube::Client, app: &str, namespace: &str) -> Tracker {
        Tracker {
            api: Api::all(client),
            app: app.to_string(),
            namespace: namespace.to_string(),
        }
    }

    fn name(&self, revision: i64) -> String {
        format!("{}-v{revision}-{}", self.app, self.namespace)
    }

    /// Add objects to revision `revision`'s tracker, in one write (none when it lists them all).
    pub async fn record(&self, revision: i64, objects: &[TrackedObject]) -> Result<(), Error> {
        let resources: Vec<ManagedResource> = objects.iter().map(managed).collect();
        self.write(
            &self.name(revision),
            ResourceTrackerType::Versioned,
            revision,
            &resources,
        )
        .await
    }

    async fn write(
        &self,
        name: &str,
        type_: ResourceTrackerType,
        generation: i64,
        resources: &[ManagedResource],
    ) -> Result<(), Error> {
        for _attempt in 0..5 {
            let existing = self
                .api
                .get_opt(name)
                .await
                .map_err(Error::hub("read", format!("resourcetracker {name}")))?;
            let mut rt = existing.clone().unwrap_or_else(|| {
                let mut rt = ResourceTracker::new(
                    name,
                    ResourceTrackerSpec {
                        type_: Some(type_.clone()),
                        application_generation: generation,
                        ..ResourceTrackerSpec::default()
                    },
                );
                rt.metadata.labels = Some(BTreeMap::from([
                    (LABEL_APP.to_string(), self.app.clone()),
                    (LABEL_APP_NS.to_string(), self.namespace.clone()),
                ]));
                rt
            });
            let mut changed = existing.is_none();
            for m in resources {
                let key = m.key();
                match rt
                    .spec
                    .managed_resources
                    .iter_mut()
                    .find(|x| x.key() == key)
                {
                    Some(x) if x.skip_gc != m.skip_gc => {
                        x.skip_gc = m.skip_gc;
                        changed = true;
                    }
                    Some(_) => {}
                    None => {
                        rt.spec.managed_resources.push(m.clone());
                        changed = true;
                    }
                }
            }
            if !changed {
                return Ok(());
            }
            let result = match existing {
                None => self.api.create(&PostParams::default(), &rt).await,
                Some(_) => self.api.replace(name, &PostParams::default(), &rt).await,
            };
            match result {
                Ok(_) => return Ok(()),
                // Someone wrote in between (or created it): read again and merge again.
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(Error::hub("write", format!("resourcetracker {name}"))(e)),
            }
        }
        Err(Error::Invalid(format!(
            "resourcetracker {name}: too many conflicting writes"
        )))
    }

    async fn list(&self) -> Result<Vec<ResourceTracker>, Error> {
        let selector = format!("{LABEL_APP}={},{LABEL_APP_NS}={}", self.app, self.namespace);
        let mut items = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(Error::hub(
                "list",
                format!("resourcetrackers of {}/{}", self.namespace, self.app),
            ))?
            .items;
        items.sort_by_key(|rt| rt.spec.application_generation);
        Ok(items)
    }

    /// Delete what other revisions applied and the current one does not want: after the current
    /// revision's workflow succeeded. Resources a garbage-collect rule keeps (`onAppDelete`,
    /// `never`, and PersistentVolumeClaims no rule names) move to the root tracker instead. A resource that cannot be read or
    /// deleted is skipped and its tracker kept, so the next reconcile tries again: an object
    /// that cannot be reached is never taken for one that is gone.
    pub async fn collect_garbage(
        &self,
        current: i64,
        fleet: &Fleet,
        app: &Application,
        policies: &Policies,
    ) -> Result<GcReport, Error> {
        let mut report = GcReport::default();
        if policies.gc.keep_legacy_resource {
            return Ok(report);
        }
        let trackers = self.list().await?;
        let current_name = self.name(current);
        let root_name = self.root_name();
        let wanted: BTreeSet<String> = trackers
            .iter()
            .filter(|rt| rt.name_any() == current_name || rt.name_any() == root_name)
            .flat_map(|rt| rt.spec.managed_resources.iter().map(ManagedResource::key))
            .collect();
        let old: Vec<&ResourceTracker> = trackers
            .iter()
            .filter(|rt| rt.name_any() != current_name && rt.name_any() != root_name)
            .collect();
        if old.is_empty() {
            return Ok(report);
        }
        // Intent first: what stays (until the application is deleted, or for ever) goes into
        // the root tracker before the trackers that list it go, so that the application's
        // deletion still knows it and can say what it kept.
        let mut to_root = Vec::new();
        let mut seen = BTreeSet::new();
        for rt in &old {
            for m in &rt.spec.managed_resources {
                if !wanted.contains(&m.key())
                    && policies.gc_for(m, app).0 != GcStrategy::OnAppUpdate
                    && seen.insert(m.key())
                {
                    to_root.push(m.clone());
                }
            }
        }
        self.record_root(&to_root).await?;
        // What this sweep deletes: each resource once, with the tracker it came from.
        let mut seen = BTreeSet::new();
        let mut candidates: Vec<(usize, &ManagedResource, bool)> = Vec::new();
        for (i, rt) in old.iter().enumerate() {
            for m in &rt.spec.managed_resources {
                if wanted.contains(&m.key()) || !seen.insert(m.key()) {
                    continue;
                }
                let (strategy, orphan) = policies.gc_for(m, app);
                match strategy {
                    GcStrategy::OnAppDelete => continue,
                    GcStrategy::Never => {
                        report.kept.push(label(m));
                        continue;
                    }
                    GcStrategy::OnAppUpdate => candidates.push((i, m, orphan)),
                }
            }
        }
        let dependents = policies.gc_dependents(app);
        if let Some(d) = &dependents {
            candidates.sort_by_key(|(_, m, _)| depth(d, m.component.as_deref()));
        }
        let doomed: Vec<&ManagedResource> = candidates.iter().map(|(_, m, _)| *m).collect();
        let mut incomplete = BTreeSet::new();
        for (i, m, orphan) in &candidates {
            if let Some(d) = &dependents
                && let Some(blocker) = blocked_by(m, &doomed, d, fleet).await
            {
                report
                    .waiting
                    .push(format!("{} (waits for {blocker})", label(m)));
                incomplete.insert(*i);
                continue;
            }
            if let Err(e) = sweep(m, fleet, app, *orphan, &mut report).await {
                report.failed.push(format!("{}: {e}", label(m)));
                incomplete.insert(*i);
            }
        }
        for (i, rt) in old.iter().enumerate() {
            if !incomplete.contains(&i) {
                self.delete_tracker(&rt.name_any()).await?;
            }
        }
        Ok(report)
    }

    /// Delete everything every revision applied (the application is being deleted), except what
    /// a `never` rule keeps and PersistentVolumeClaims. Any failure is an error: the
    /// application's finalizer stays and the next reconcile tries again.
    pub async fn delete_all(
        &self,
        fleet: &Fleet,
        app: &Application,
        policies: &Policies,
    ) -> Result<GcReport, Error> {
        let trackers = self.list().await?;
        // Deletion acts on the clusters as registered now: one detached since is not reached
        // with a client kept from before.
        if trackers.iter().any(|t| {
            t.spec
                .managed_resources
                .iter()
                .any(|m| m.cluster_name() != fleet::LOCAL)
        }) && let Err(e) = fleet.sync().await
        {
            tracing::warn!("cluster registry not read before deleting: {e}");
        }
        let mut seen = BTreeSet::new();
        let mut report = GcReport::default();
        let mut candidates: Vec<(&ManagedResource, bool)> = Vec::new();
        for rt in trackers.iter().rev() {
            for m in &rt.spec.managed_resources {
                if !seen.insert(m.key()) {
                    continue;
                }
                let (strategy, orphan) = policies.gc_for(m, app);
                if strategy == GcStrategy::Never {
                    report.kept.push(label(m));
                    continue;
                }
                candidates.push((m, orphan));
            }
        }
        let dependents = policies.gc_dependents(app);
        if let Some(d) = &dependents {
            candidates.sort_by_key(|(m, _)| depth(d, m.component.as_deref()));
        }
        let doomed: Vec<&ManagedResource> = candidates.iter().map(|(m, _)| *m).collect();
        for (m, orphan) in &candidates {
            if let Some(d) = &dependents
                && let Some(blocker) = blocked_by(m, &doomed, d, fleet).await
            {
                report
                    .waiting
                    .push(format!("{} (waits for {blocker})", label(m)));
                continue;
            }
            if let Err(e) = sweep(m, fleet, app, *orphan, &mut report).await {
                report.failed.push(format!("{}: {e}", label(m)));
            }
        }
        if !report.waiting.is_empty() && report.failed.is_empty() {
            // Dependents are still going: the caller comes back; the trackers stay.
            return Ok(report);
        }
        if let Some(first) = report.failed.first() {
            return Err(Error::Invalid(format!(
                "deleting what application {}/{} applied: {} resource(s) could not be deleted yet, first: {first}",
                self.namespace,
                self.app,
                report.failed.len()
            )));
        }
        for rt in &trackers {
            self.delete_tracker(&rt.name_any()).await?;
        }
        Ok(report)
    }

    /// Names of the revisions that still have a versioned tracker (their resources may be live).
    pub async fn revisions_in_use(&self) -> Result<BTreeSet<i64>, Error> {
        Ok(self
            .list()
            .await?
            .iter()
            .filter(|rt| rt.spec.type_ != Some(ResourceTrackerType::Root))
            .map(|rt| rt.spec.application_generation)
            .collect())
    }

    fn root_name(&self) -> String {
        format!("{}-{}", self.app, self.namespace)
    }

    /// Add resources to the root tracker (kept until the application is deleted), in one write.
    async fn record_root(&self, resources: &[ManagedResource]) -> Result<(), Error> {
        if resources.is_empty() {
            return Ok(());
        }
        let name = self.root_name();
        self.write(&name, ResourceTrackerType::Root, 0, resources)
            .await
    }

    async fn delete_tracker(&self, name: &str) -> Result<(), Error> {
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::hub("delete", format!("resourcetracker {name}"))(e)),
        }
    }
}

fn label(m: &ManagedResource) -> String {
    format!("{} ({})", object_ref(m), m.cluster_name())
}

fn object_ref(m: &ManagedResource) -> ObjectRef {
    ObjectRef {
        api_version: m.api_version.clone().unwrap_or_default(),
        kind: m.kind.clone().unwrap_or_default(),
        namespace: m.namespace.clone(),
        name: m.name.clone().unwrap_or_default(),
    }
}

fn managed(o: &TrackedObject) -> ManagedResource {
    ManagedResource {
        cluster: if o.cluster.is_empty() {
            None
        } else {
            Some(o.cluster.clone())
        },
        api_version: Some(o.reference.api_version.clone()),
        kind: Some(o.reference.kind.clone()),
        namespace: o.reference.namespace.clone(),
        name: Some(o.reference.name.clone()),
        component: Some(o.component.clone()),
        trait_: o.trait_type.clone(),
        skip_gc: o.skip_gc,
        ..ManagedResource::default()
    }
}

/// Delete one resource no revision wants, unless it is not ours to delete: a resource shared
/// with other applications is handed on (this application leaves `app.oam.dev/shared-by`, and
/// the next sharer becomes its owner), one another application owns now is left to it.
async fn sweep(
    m: &ManagedResource,
    fleet: &Fleet,
    app: &Application,
    orphan: bool,
    report: &mut GcReport,
) -> Result<(), Error> {
    let r = object_ref(m);
    let cluster = match fleet
        .cluster_synced(m.cluster.as_deref().unwrap_or_default())
        .await
    {
        Ok(c) => c,
        // Detached (sail cluster detach --force): nothing can reach it any more, so what is
        // there stays, and the deletion says so rather than waiting forever.
        Err(fleet::Error::UnknownCluster { name, .. }) => {
            report
                .kept
                .push(format!("{r} ({name}: the cluster is no longer registered)"));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let live = match cluster.get(&r).await {
        Ok(Some(live)) => live,
        Ok(None) => return Ok(()),
        // The kind is gone with its CRD, and so is every object of it.
        Err(fleet::Error::UnknownKind { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let me = crate::steps::app_key(app);
    let sharers = crate::steps::shared_by(&live);
    let others: Vec<&String> = sharers.iter().filter(|s| **s != me).collect();
    let owner = crate::steps::owner_of(&live);
    if !others.is_empty() {
        let mut patch = serde_json::json!({"metadata": {"annotations": {
            oam::labels::ANNOTATION_APP_SHARED_BY: others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
        }}});
        if owner.as_deref() == Some(me.as_str())
            && let Some((ns, name)) = others.first().and_then(|o| o.split_once('/'))
        {
            patch["metadata"]["labels"] = serde_json::json!({LABEL_APP: name, LABEL_APP_NS: ns});
        }
        cluster.merge_patch(&r, &patch).await?;
        report.released.push(label(m));
        return Ok(());
    }
    if let Some(o) = owner
        && o != me
    {
        report.released.push(label(m));
        return Ok(());
    }
    let propagation = if orphan {
        PropagationPolicy::Orphan
    } else {
        PropagationPolicy::Background
    };
    if cluster.delete_with(&r, propagation).await? == DeleteOutcome::Deleted {
        report.deleted.push(label(m));
    }
    Ok(())
}
