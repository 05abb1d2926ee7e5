//! The cluster gateway.
//!
//! Everything Sailplane does to a cluster goes through here: one [`Cluster`] per registered
//! cluster (the hub is `local`), each with its kube client and a cache of API discovery, and the
//! operations the controller needs: server-side apply under the `sailplane` field manager, read,
//! list by label and delete. An object that cannot be read is an error, never "not found".

mod cache;
mod cluster;
mod error;
pub mod proxy;
pub mod registry;

pub use cache::{CACHE_SELECTOR, ChangeHandler};
pub use cluster::{Cluster, DeleteOutcome, FIELD_MANAGER, LOCAL, ObjectRef};
pub use error::Error;
pub use registry::ClusterRecord;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// All clusters Sailplane delivers to.
#[derive(Clone)]
pub struct Fleet {
    hub: kube::Client,
    members: Arc<RwLock<HashMap<String, Member>>>,
    /// Where every cluster's watch caches report changes.
    sink: cache::ChangeSink,
}

struct Member {
    cluster: Arc<Cluster>,
    labels: BTreeMap<String, String>,
    /// The registry Secret's resourceVersion the client was built from (`None` for `local` and
    /// for clusters inserted by hand).
    resource_version: Option<String>,
    health: Health,
}

/// What the last probe of a cluster found.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// `None` until the first probe.
    pub reachable: Option<bool>,
    pub version: Option<String>,
    pub nodes: Option<usize>,
    pub last_error: Option<String>,
    /// Probes failed in a row.
    pub failures: u32,
    checked_at: Option<Instant>,
}

impl Health {
    /// When the next probe is due: 30 s after a good one; after failures 2 s doubling up to
    /// 5 minutes, so an unreachable cluster is not hammered.
    fn next_due(&self) -> Option<Instant> {
        let at = self.checked_at?;
        let wait = if self.failures == 0 {
            Duration::from_secs(30)
        } else {
            let exp = self.failures.saturating_sub(1).min(8);
            Duration::from_secs(2u64 << exp).min(Duration::from_secs(300))
        };
        Some(at + wait)
    }
}

/// A cluster as topology policies see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// What one [`Fleet::sync`] changed.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    /// Registry Secrets that could not be used, with the reason (never the credentials).
    pub broken: Vec<String>,
}

impl SyncReport {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.updated.is_empty()
            && self.removed.is_empty()
            && self.broken.is_empty()
    }
}

impl Fleet {
    /// A fleet of one: the hub, named `local`. [`Fleet::sync`] adds the registered members.
    pub fn new(hub: kube::Client) -> Fleet {
        let sink = cache::ChangeSink::default();
        let mut map = HashMap::new();
        map.insert(
            LOCAL.to_string(),
            Member {
                cluster: Arc::new(Cluster::with_sink(LOCAL, hub.clone(), sink.clone())),
                labels: BTreeMap::new(),
                resource_version: None,
                health: Health::default(),
            },
        );
        Fleet {
            hub,
            members: Arc::new(RwLock::new(map)),
            sink,
        }
    }

    /// Be told of every change the clusters' watch caches see (see [`Cluster::get_cached`]),
    /// on every cluster, including ones joined later. Set once; later calls are ignored.
    pub fn on_change(&self, handler: ChangeHandler) {
        let _ = self.sink.set(handler);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Member>> {
        self.members.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Member>> {
        self.members.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The cluster of that name; an empty name is the hub.
    pub fn cluster(&self, name: &str) -> Result<Arc<Cluster>, Error> {
        let name = if name.is_empty() { LOCAL } else { name };
        let map = self.read();
        map.get(name).map(|m| m.cluster.clone()).ok_or_else(|| {
            let mut known: Vec<&String> = map.keys().collect();
            known.sort();
            Error::UnknownCluster {
                name: name.to_string(),
                known: known
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
    }

    /// Like [`Fleet::cluster`], but a name not known yet makes the fleet read the registry once
    /// more first (a cluster joined a moment ago).
    pub async fn cluster_synced(&self, name: &str) -> Result<Arc<Cluster>, Error> {
        match self.cluster(name) {
            Ok(c) => Ok(c),
            Err(Error::UnknownCluster { .. }) => {
                self.sync().await?;
                self.cluster(name)
            }
            Err(e) => Err(e),
        }
    }

    /// The cluster as the registry has it right now: one read of its Secret on the hub, so a
    /// cluster detached or re-joined a moment ago is never reached with stale credentials. For
    /// callers acting for a person (the proxy); the controller's loop uses [`Fleet::sync`].
    pub async fn cluster_current(&self, name: &str) -> Result<Arc<Cluster>, Error> {
        if name.is_empty() || name == LOCAL {
            return Ok(self.local());
        }
        let record = registry::get(&self.hub, name).await?;
        let cached = self.read().get(name).map(|m| m.resource_version.clone());
        match (record, cached) {
            // Inserted by hand, not through the registry.
            (None, Some(None)) => self.cluster(name),
            (Some(r), Some(Some(rv))) if r.resource_version.as_ref() == Some(&rv) => {
                self.cluster(name)
            }
            (None, _) => {
                self.write().remove(name);
                self.cluster(name)
            }
            (Some(_), _) => {
                self.sync().await?;
                self.cluster(name)
            }
        }
    }

    /// The hub.
    pub fn local(&self) -> Arc<Cluster> {
        match self.read().get(LOCAL) {
            Some(m) => m.cluster.clone(),
            // `new` always inserts `local` and nothing removes it.
            None => unreachable!("the local cluster is always registered"),
        }
    }

    /// Register (or replace) a member cluster by hand, outside the registry.
    pub fn insert(&self, name: &str, client: kube::Client) {
        self.write().insert(
            name.to_string(),
            Member {
                cluster: Arc::new(Cluster::with_sink(name, client, self.sink.clone())),
                labels: BTreeMap::new(),
                resource_version: None,
                health: Health::default(),
            },
        );
    }

    /// Names of the known clusters, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Every known cluster with its labels, sorted by name (`local` included).
    pub fn members(&self) -> Vec<MemberInfo> {
        let mut out: Vec<MemberInfo> = self
            .read()
            .iter()
            .map(|(name, m)| MemberInfo {
                name: name.clone(),
                labels: m.labels.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The last probe's findings for a cluster.
    pub fn health(&self, name: &str) -> Option<Health> {
        self.read().get(name).map(|m| m.health.clone())
    }

    /// Bring the members in line with the registry Secrets on the hub: new Secrets become
    /// clusters, changed ones get a new client, removed ones go. Clusters inserted by hand and
    /// `local` are left alone. If the hub cannot be read nothing changes.
    pub async fn sync(&self) -> Result<SyncReport, Error> {
        let (records, broken) = registry::list(&self.hub).await?;
        let mut report = SyncReport {
            broken: broken.iter().map(|e| e.to_string()).collect(),
            ..Default::default()
        };
        let current: HashMap<String, Option<String>> = self
            .read()
            .iter()
            .map(|(n, m)| (n.clone(), m.resource_version.clone()))
            .collect();
        let mut fresh = Vec::new();
        for record in &records {
            if record.name == LOCAL {
                continue;
            }
            match current.get(&record.name) {
                Some(rv) if rv.is_some() && *rv == record.resource_version => continue,
                Some(None) => continue, // inserted by hand: not the registry's
                Some(_) => report.updated.push(record.name.clone()),
                None => report.added.push(record.name.clone()),
            }
            match record.client().await {
                Ok(client) => fresh.push((record, client)),
                Err(e) => report.broken.push(e.to_string()),
            }
        }
        let registered: std::collections::HashSet<&str> =
            records.iter().map(|r| r.name.as_str()).collect();
        let mut map = self.write();
        for (record, client) in fresh {
            map.insert(
                record.name.clone(),
                Member {
                    cluster: Arc::new(Cluster::with_sink(&record.name, client, self.sink.clone())),
                    labels: record.labels.clone(),
                    resource_version: record.resource_version.clone(),
                    health: Health::default(),
                },
            );
        }
        let gone: Vec<String> = map
            .iter()
            .filter(|(n, m)| m.resource_version.is_some() && !registered.contains(n.as_str()))
            .map(|(n, _)| n.clone())
            .collect();
        for n in gone {
            map.remove(&n);
            report.removed.push(n);
        }
        Ok(report)
    }

    /// Probe every cluster whose probe is due (see [`Health`]) and record what it found.
    pub async fn probe_due(&self) {
        let now = Instant::now();
        let due: Vec<(String, Arc<Cluster>)> = self
            .read()
            .iter()
            .filter(|(_, m)| m.health.next_due().is_none_or(|at| at <= now))
            .map(|(n, m)| (n.clone(), m.cluster.clone()))
            .collect();
        let probes = due.into_iter().map(|(name, cluster)| async move {
            let r = registry::probe(&name, cluster.client()).await;
            (name, r)
        });
        for (name, result) in futures::future::join_all(probes).await {
            let mut map = self.write();
            let Some(m) = map.get_mut(&name) else {
                continue;
            };
            let h = &mut m.health;
            h.checked_at = Some(Instant::now());
            match result {
                Ok(p) => {
                    if h.failures > 0 {
                        tracing::info!(cluster = %name, "cluster reachable again");
                    }
                    h.reachable = Some(true);
                    h.version = Some(p.version);
                    h.nodes = Some(p.nodes);
                    h.failures = 0;
                    h.last_error = None;
                }
                Err(e) => {
                    if h.failures == 0 {
                        tracing::warn!(cluster = %name, "cluster unreachable: {e}");
                    }
                    h.reachable = Some(false);
                    h.failures = h.failures.saturating_add(1);
                    h.last_error = Some(e.to_string());
                }
            }
        }
    }

    /// Keep the fleet in line with the registry and probe clusters until `shutdown` resolves.
    pub async fn keep_synced(
        self,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut reported_broken: Vec<String> = Vec::new();
        loop {
            match self.sync().await {
                Ok(report) => {
                    for n in &report.added {
                        tracing::info!(cluster = %n, "cluster joined");
                    }
                    for n in &report.updated {
                        tracing::info!(cluster = %n, "cluster registration changed");
                    }
                    for n in &report.removed {
                        tracing::info!(cluster = %n, "cluster detached");
                    }
                    for b in &report.broken {
                        if !reported_broken.contains(b) {
                            tracing::warn!("cluster registry: {b}");
                        }
                    }
                    reported_broken = report.broken;
                }
                Err(e) => tracing::warn!("cluster registry not read: {e}"),
            }
            self.probe_due().await;
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
