//! Watch caches of the objects applications applied: one reflector per (cluster, kind), started
//! the first time something of that kind is read through [`Cluster::get_cached`], holding the
//! objects labelled `app.oam.dev/name` (what Sailplane renders carries it).
//!
//! A cache answers only what it can answer for sure. It is not used while it has not listed the
//! kind yet, after a watch error until the watch delivers again, for an object it does not hold
//! (an absent object may be one without the label, or one the cache has not seen yet: the caller
//! reads it from the API server), and for an object whose version differs from the last one this
//! process wrote or read (the cache is behind). So the cache never makes an object look gone, and
//! never shows an older state than the one this process already saw.
//!
//! [`Cluster::get_cached`]: crate::Cluster::get_cached

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The label that selects what the caches hold.
pub const CACHE_SELECTOR: &str = "app.oam.dev/name";

/// Called for every change a cache sees after its first listing: the cluster's name and the
/// object as it is now (or as it was last, for a deletion).
pub type ChangeHandler = Arc<dyn Fn(&str, &DynamicObject) + Send + Sync>;

/// Where caches report changes; shared by every cluster of a fleet, so that clusters joined later
/// report to the same place.
pub(crate) type ChangeSink = Arc<std::sync::OnceLock<ChangeHandler>>;

pub(crate) struct KindCache {
    store: Store<DynamicObject>,
    resource: ApiResource,
    /// Listed at least once.
    synced: Arc<AtomicBool>,
    /// No error since the last event.
    healthy: Arc<AtomicBool>,
    task: tokio::task::AbortHandle,
}

impl Drop for KindCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KindCache {
    /// Start watching `resource` on a cluster. Must run inside a Tokio runtime.
    pub(crate) fn start(
        cluster: &str,
        client: &kube::Client,
        resource: &ApiResource,
        sink: &ChangeSink,
    ) -> KindCache {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
        let writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let synced = Arc::new(AtomicBool::new(false));
        let healthy = Arc::new(AtomicBool::new(false));
        let (s, h, sink, name) = (
            synced.clone(),
            healthy.clone(),
            sink.clone(),
            cluster.to_string(),
        );
        let what = format!("{} {}", resource.api_version, resource.kind);
        let stream = watcher::watcher(api, watcher::Config::default().labels(CACHE_SELECTOR))
            .modify(slim)
            .default_backoff()
            .reflect(writer)
            .for_each(move |event| {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        s.store(true, Ordering::SeqCst);
                        h.store(true, Ordering::SeqCst);
                    }
                    Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
                        h.store(true, Ordering::SeqCst);
                        if let Some(f) = sink.get() {
                            f(&name, &o);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if h.swap(false, Ordering::SeqCst) {
                            tracing::debug!(cluster = %name, kind = %what, "watch cache not used until the watch recovers: {e}");
                        }
                    }
                }
                futures::future::ready(())
            });
        let task = tokio::spawn(stream).abort_handle();
        KindCache {
            store,
            resource: resource.clone(),
            synced,
            healthy,
            task,
        }
    }

    /// The object, when the cache is usable and holds it.
    pub(crate) fn get(&self, namespace: Option<&str>, name: &str) -> Option<Value> {
        if !self.synced.load(Ordering::SeqCst) || !self.healthy.load(Ordering::SeqCst) {
            return None;
        }
        let mut key = reflector::ObjectRef::new_with(name, self.resource.clone());
        if let Some(ns) = namespace {
            key = key.within(ns);
        }
        let obj = self.store.get(&key)?;
        let mut v = serde_json::to_value(obj.as_ref()).ok()?;
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "apiVersion".into(),
                Value::String(self.resource.api_version.clone()),
            );
            m.insert("kind".into(), Value::String(self.resource.kind.clone()));
        }
        Some(v)
    }
}

/// What a cache keeps of managedFields: who manages the object and how, not the field sets.
fn slim(o: &mut DynamicObject) {
    if let Some(mf) = o.metadata.managed_fields.as_mut() {
        for e in mf.iter_mut() {
            e.fields_v1 = None;
        }
    }
}
