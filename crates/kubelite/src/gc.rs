//! Garbage collection: ownerReferences (background, foreground, orphan), finalizer-driven
//! deletion bookkeeping, and namespace termination.

use std::collections::{HashMap, HashSet};
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

struct Info {
    key: String,
    ns: String,
    name: String,
    deleting: bool,
    finalizers: Vec<String>,
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

/// One pass; returns true when something changed.
pub fn sweep(st: &mut State) -> bool {
    let mut changed = false;
    let mut by_uid: HashMap<String, Info> = HashMap::new();
    let mut dependents: Vec<(String, String, String, Vec<Value>)> = Vec::new();
    let mut referenced: HashSet<String> = HashSet::new();
    for (key, objs) in &st.objects {
        for ((ns, name), o) in objs {
            let uid = uid_of(o).to_string();
            by_uid.insert(
                uid,
                Info {
                    key: key.clone(),
                    ns: ns.clone(),
                    name: name.clone(),
                    deleting: is_deleting(o),
                    finalizers: finalizers(o),
                },
            );
            if let Some(refs) = o
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                && !refs.is_empty()
            {
                for r in refs {
                    if let Some(u) = r.get("uid").and_then(Value::as_str) {
                        referenced.insert(u.to_string());
                    }
                }
                dependents.push((key.clone(), ns.clone(), name.clone(), refs.clone()));
            }
        }
    }
    for (key, ns, name, refs) in dependents {
        let mut keep = Vec::new();
        let mut any_absent = false;
        let mut delete_foreground = false;
        for r in &refs {
            let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
            match by_uid.get(uid) {
                None => any_absent = true,
                Some(owner) => {
                    if owner.deleting && owner.finalizers.iter().any(|f| f == "orphan") {
                        any_absent = true; // drop this reference, keep the object
                        continue;
                    }
                    if owner.deleting && owner.finalizers.iter().any(|f| f == "foregroundDeletion")
                    {
                        delete_foreground = true;
                    }
                    keep.push(r.clone());
                }
            }
        }
        let orphaned_by_owner = refs.iter().any(|r| {
            let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
            by_uid
                .get(uid)
                .is_some_and(|o| o.deleting && o.finalizers.iter().any(|f| f == "orphan"))
        });
        if delete_foreground {
            changed |= delete_obj(st, &key, &ns, &name, Propagation::Foreground);
        } else if keep.is_empty() && !orphaned_by_owner {
            changed |= delete_obj(st, &key, &ns, &name, Propagation::Background);
        } else if any_absent {
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
    // owners waiting on dependents
    let waiting: Vec<(String, Info)> = by_uid
        .into_iter()
        .filter(|(_, i)| {
            i.deleting
                && i.finalizers
                    .iter()
                    .any(|f| f == "foregroundDeletion" || f == "orphan")
        })
        .collect();
    for (uid, info) in waiting {
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
            let fins: Vec<String> = info
                .finalizers
                .iter()
                .filter(|f| *f != "foregroundDeletion" && *f != "orphan")
                .cloned()
                .collect();
            changed |= set_finalizers_patch(st, &info.key, &info.ns, &info.name, fins);
        }
    }
    let _ = referenced;
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
