//! The cluster gateway.
//!
//! Everything Sailplane does to a cluster goes through here: one [`Cluster`] per registered
//! cluster (the hub is `local`), each with its kube client and a cache of API discovery, and the
//! operations the controller needs: server-side apply under the `sailplane` field manager, read,
//! list by label and delete. An object that cannot be read is an error, never "not found".

mod cluster;
mod error;

pub use cluster::{Cluster, DeleteOutcome, FIELD_MANAGER, LOCAL, ObjectRef};
pub use error::Error;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// All clusters Sailplane delivers to.
#[derive(Clone)]
pub struct Fleet {
    clusters: Arc<RwLock<HashMap<String, Arc<Cluster>>>>,
}

impl Fleet {
    /// A fleet of one: the hub, named `local`.
    pub fn new(hub: kube::Client) -> Fleet {
        let mut map = HashMap::new();
        map.insert(LOCAL.to_string(), Arc::new(Cluster::new(LOCAL, hub)));
        Fleet {
            clusters: Arc::new(RwLock::new(map)),
        }
    }

    /// The cluster of that name; an empty name is the hub.
    pub fn cluster(&self, name: &str) -> Result<Arc<Cluster>, Error> {
        let name = if name.is_empty() { LOCAL } else { name };
        let map = self.clusters.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned().ok_or_else(|| {
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

    /// The hub.
    pub fn local(&self) -> Arc<Cluster> {
        let map = self.clusters.read().unwrap_or_else(|p| p.into_inner());
        match map.get(LOCAL) {
            Some(c) => c.clone(),
            // `new` always inserts `local` and nothing removes it.
            None => unreachable!("the local cluster is always registered"),
        }
    }

    /// Register (or replace) a member cluster.
    pub fn insert(&self, name: &str, client: kube::Client) {
        let mut map = self.clusters.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.to_string(), Arc::new(Cluster::new(name, client)));
    }

    /// Names of the registered clusters, sorted.
    pub fn names(&self) -> Vec<String> {
        let map = self.clusters.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = map.keys().cloned().collect();
        names.sort();
        names
    }
}
