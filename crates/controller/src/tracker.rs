//! ResourceTrackers: what each revision of an application applied, recorded before it is
//! applied, and the garbage collection that reads them.
//!
//! Each revision N has a versioned tracker `<app>-v<N>-<namespace>` (cluster-scoped, labelled
//! with the application). Garbage collection runs only after revision N's workflow succeeded:
//! for every older tracker, what it lists and N does not is deleted, then the tracker goes.
//! PersistentVolumeClaims are kept. A delete that fails stops the sweep, which runs again at the
//! next reconcile: an object that cannot be reached is never taken for one that is gone.

use crate::Error;
use fleet::{DeleteOutcome, Fleet, ObjectRef};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use oam::{ManagedResource, ResourceTracker, ResourceTrackerSpec, ResourceTrackerType};
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
}

/// What a sweep did.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    pub deleted: Vec<String>,
    /// Kept on purpose (PersistentVolumeClaims).
    pub kept: Vec<String>,
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

    /// Add objects to revision `revision`'s tracker, in one write.
    pub async fn record(&self, revision: i64, objects: &[TrackedObject]) -> Result<(), Error> {
        let name = self.name(revision);
        for _attempt in 0..5 {
            let existing = self
                .api
                .get_opt(&name)
                .await
                .map_err(Error::hub("read", format!("resourcetracker {name}")))?;
            let mut rt = existing.clone().unwrap_or_else(|| {
                let mut rt = ResourceTracker::new(
                    &name,
                    ResourceTrackerSpec {
                        type_: Some(ResourceTrackerType::Versioned),
                        application_generation: revision,
                        ..ResourceTrackerSpec::default()
                    },
                );
                rt.metadata.labels = Some(BTreeMap::from([
                    (LABEL_APP.to_string(), self.app.clone()),
                    (LABEL_APP_NS.to_string(), self.namespace.clone()),
                ]));
                rt
            });
            let before = rt.spec.managed_resources.len();
            let mut keys: BTreeSet<String> = rt
                .spec
                .managed_resources
                .iter()
                .map(ManagedResource::key)
                .collect();
            for o in objects {
                let m = managed(o);
                if keys.insert(m.key()) {
                    rt.spec.managed_resources.push(m);
                }
            }
            if existing.is_some() && rt.spec.managed_resources.len() == before {
                return Ok(());
            }
            let result = match existing {
                None => self.api.create(&PostParams::default(), &rt).await,
                Some(_) => self.api.replace(&name, &PostParams::default(), &rt).await,
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

    /// Delete what revisions older than `current` applied and `current` does not want.
    pub async fn collect_garbage(&self, current: i64, fleet: &Fleet) -> Result<GcReport, Error> {
        let trackers = self.list().await?;
        let wanted: BTreeSet<String> = trackers
            .iter()
            .filter(|rt| rt.spec.application_generation == current)
            .flat_map(|rt| rt.spec.managed_resources.iter().map(ManagedResource::key))
            .collect();
        let mut report = GcReport::default();
        for rt in trackers
            .iter()
            .filter(|rt| rt.spec.application_generation < current)
        {
            for m in &rt.spec.managed_resources {
                if wanted.contains(&m.key()) {
                    continue;
                }
                sweep(m, fleet, &mut report).await?;
            }
            self.delete_tracker(&rt.name_any()).await?;
        }
        Ok(report)
    }

    /// Delete everything every revision applied (the application is being deleted).
    pub async fn delete_all(&self, fleet: &Fleet) -> Result<GcReport, Error> {
        let trackers = self.list().await?;
        let mut seen = BTreeSet::new();
        let mut report = GcReport::default();
        for rt in trackers.iter().rev() {
            for m in &rt.spec.managed_resources {
                if seen.insert(m.key()) {
                    sweep(m, fleet, &mut report).await?;
                }
            }
        }
        for rt in &trackers {
            self.delete_tracker(&rt.name_any()).await?;
        }
        Ok(report)
    }

    async fn delete_tracker(&self, name: &str) -> Result<(), Error> {
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::hub("delete", format!("resourcetracker {name}"))(e)),
        }
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
        ..ManagedResource::default()
    }
}

async fn sweep(m: &ManagedResource, fleet: &Fleet, report: &mut GcReport) -> Result<(), Error> {
    let r = ObjectRef {
        api_version: m.api_version.clone().unwrap_or_default(),
        kind: m.kind.clone().unwrap_or_default(),
        namespace: m.namespace.clone(),
        name: m.name.clone().unwrap_or_default(),
    };
    let label = format!("{} ({})", r, m.cluster_name());
    if r.kind == "PersistentVolumeClaim" || m.skip_gc {
        report.kept.push(label);
        return Ok(());
    }
    let cluster = fleet.cluster(m.cluster.as_deref().unwrap_or_default())?;
    if cluster.delete(&r).await? == DeleteOutcome::Deleted {
        report.deleted.push(label);
    }
    Ok(())
}
