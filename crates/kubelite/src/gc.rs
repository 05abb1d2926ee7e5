//! Garbage collection: ownerReferences (background, foreground, orphan), finalizer-driven
//! deletion bookkeeping, and namespace termination.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::ops::{self, DeleteOpts, NS_KEY, PatchType, Propagation, Sub, WriteOpts};
use crate::store::{State, Store};
use crate::util::*;

/// Does this event possibly give the collector work? (Creates and plain updates do not.)
fn relevant(ev: &crate::store::Event) -> bool {
    ev.kind == crate::store::EventType::Deleted
        || is_deleting(&ev.object)
        || (ev.kind == crate::store::EventType::Added
            && ev
                .object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()))
}

/// The shortest time between two passes.
const MIN_GAP: Duration = Duration::from_millis(200);

pub async fn run(store: Arc<Store>, mut shutdown: watch::Receiver<bool>) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let mut rx = store.subscribe();
    let mut last_full = tokio::time::Instant::now();
    loop {
        let mut dirty = false;
        tokio::select! {
            _ = shutdown.changed() => return,
            r = rx.recv() => match r {
                Ok(ev) => dirty |= relevant(&ev),
                Err(RecvError::Lagged(_)) => dirty = true,
                Err(RecvError::Closed) => return,
            },
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        // coalesce bursts
        loop {
            match rx.try_recv() {
                Ok(ev) => dirty |= relevant(&ev),
                Err(TryRecvError::Lagged(_)) => dirty = true,
                Err(_) => break,
            }
        }
        if !dirty && last_full.elapsed() < Duration::from_secs(2) {
            continue;
        }
        // At most one pass per MIN_GAP: under a steady stream of creates (every Pod and
        // ReplicaSet has owners) a pass per event burst would hold the store most of the time.
        let since = last_full.elapsed();
        if since < MIN_GAP {
            tokio::time::sleep(MIN_GAP - since).await;
            while rx.try_recv().is_ok() {}
        }
        last_full = tokio::time::Instant::now();
        for _ in 0..20 {
            let changed = {
                let mut st = store.lock();
                sweep(&mut st)
            };
            if !changed {
                break;
            }
            while rx.try_recv().is_ok() {}
        }
    }
}

fn set_finalizers_patch(
    st: &mut State,
    key: &str,
    ns: &str,
    name: &str,
    fins: Vec<String>,
) -> bool {
    let Some(rt) = st.registry.types.get(key).cloned() else {
        return false;
    };
    let patch = if fins.is_empty() {
        json!({"metadata": {"finalizers": null}})
    } else {
        json!({"metadata": {"finalizers": fins}})
    };
    ops::patch(
        st,
        &rt,
        ns,
        name,
        PatchType::Merge,
        &patch,
        Sub::Main,
        false,
        &WriteOpts::default(),
    )
    .is_ok()
}

fn delete_obj(st: &mut State, key: &str, ns: &str, name: &str, prop: Propagation) -> bool {
    let Some(rt) = st.registry.types.get(key).cloned() else {
        return false;
    };
    let before = st.get(key, ns, name).cloned();
    let r = ops::delete(
        st,
        &rt,
        ns,
        name,
        &DeleteOpts {
            propagation: Some(prop),
            ..Default::default()
        },
    );
    r.is_ok() && st.get(key, ns, name) != before.as_ref()
}

/// What a pass found to do for one dependent.
enum Action {
    Delete(Propagation),
    /// Keep the object with only these ownerReferences (its absent owners dropped).
    SetOwners(Vec<Value>),
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    o.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(f)))
}

/// One pass; returns true when something changed.
///
/// The pass first reads the store without copying anything (an index of owners by uid that
/// borrows the objects) and collects what is to be done; only then does it write. Most passes
/// find nothing to do and allocate little.
pub fn sweep(st: &mut State) -> bool {
    let mut changed = false;
    let mut actions: Vec<(String, String, String, Action)> = Vec::new();
    // owners being deleted that wait for their dependents: (uid, key, namespace, name, finalizers)
    let mut waiting: Vec<(String, String, String, String, Vec<String>)> = Vec::new();
    {
        let mut by_uid: HashMap<&str, &Value> = HashMap::new();
        for objs in st.objects.values() {
            for o in objs.values() {
                by_uid.insert(uid_of(o), o);
            }
        }
        for (key, objs) in &st.objects {
            for ((ns, name), o) in objs {
                if is_deleting(o)
                    && (has_finalizer(o, "foregroundDeletion") || has_finalizer(o, "orphan"))
                {
                    waiting.push((
                        uid_of(o).to_string(),
                        key.clone(),
                        ns.clone(),
                        name.clone(),
                        finalizers(o),
                    ));
                }
                let Some(refs) = o
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .filter(|r| !r.is_empty())
                else {
                    continue;
                };
                let mut keep = Vec::new();
                let mut any_absent = false;
                let mut delete_foreground = false;
                let mut orphaned_by_owner = false;
                for r in refs {
                    let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
                    match by_uid.get(uid) {
                        None => any_absent = true,
                        Some(owner) => {
                            let deleting = is_deleting(owner);
                            if deleting && has_finalizer(owner, "orphan") {
                                // drop this reference, keep the object
                                any_absent = true;
                                orphaned_by_owner = true;
                                continue;
                            }
                            if deleting && has_finalizer(owner, "foregroundDeletion") {
                                delete_foreground = true;
                            }
                            keep.push(r);
                        }
                    }
                }
                let action = if delete_foreground {
                    Action::Delete(Propagation::Foreground)
                } else if keep.is_empty() && !orphaned_by_owner {
                    Action::Delete(Propagation::Background)
                } else if any_absent {
                    Action::SetOwners(keep.into_iter().cloned().collect())
                } else {
                    continue;
                };
                actions.push((key.clone(), ns.clone(), name.clone(), action));
            }
        }
    }
    for (key, ns, name, action) in actions {
        match action {
            Action::Delete(prop) => changed |= delete_obj(st, &key, &ns, &name, prop),
            Action::SetOwners(keep) => {
                let Some(rt) = st.registry.types.get(&key).cloned() else {
                    continue;
                };
                let patch = if keep.is_empty() {
                    json!({"metadata": {"ownerReferences": null}})
                } else {
                    json!({"metadata": {"ownerReferences": keep}})
                };
                changed |= ops::patch(
                    st,
                    &rt,
                    &ns,
                    &name,
                    PatchType::Merge,
                    &patch,
                    Sub::Main,
                    false,
                    &WriteOpts::default(),
                )
                .is_ok();
            }
        }
    }
    // owners waiting on dependents
    for (uid, key, ns, name, fins) in waiting {
        let still: bool = st.objects.values().any(|m| {
            m.values().any(|o| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|rs| {
                        rs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                    })
            })
        });
        if !still {
            let fins: Vec<String> = fins
                .into_iter()
                .filter(|f| f != "foregroundDeletion" && f != "orphan")
                .collect();
            changed |= set_finalizers_patch(st, &key, &ns, &name, fins);
        }
    }
    // terminating namespaces
    let terminating: Vec<String> = st
        .list(NS_KEY, None)
        .into_iter()
        .filter(|n| is_deleting(n))
        .map(|n| name_of(n).to_string())
        .collect();
    for ns in terminating {
        let mut remaining = 0;
        let keys: Vec<String> = st.objects.keys().cloned().collect();
        for key in keys {
            if !st.registry.types.get(&key).is_some_and(|t| t.namespaced) {
                continue;
            }
            let names: Vec<(String, bool)> = st
                .list(&key, Some(&ns))
                .into_iter()
                .map(|o| (name_of(o).to_string(), is_deleting(o)))
                .collect();
            for (name, deleting) in names {
                remaining += 1;
                if !deleting {
                    changed |= delete_obj(st, &key, &ns, &name, Propagation::Background);
                }
            }
        }
        if remaining == 0 {
            changed |= st.remove(NS_KEY, "", &ns).ok().flatten().is_some();
        }
    }
    changed
}
