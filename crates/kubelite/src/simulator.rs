//! Workload simulator (like KWOK): moves Deployments, ReplicaSets, StatefulSets, DaemonSets,
//! Jobs and Pods through their status stages; gives Services Endpoints and PVCs a binding.
//!
//! Failures are requested by annotation on the workload or the Pod:
//! `kubelite.sailplane.dev/fail: image-pull | crash-loop | never-ready | job-fail`.
//! `kubelite.sailplane.dev/ready-delay: 2s` (or `500ms`) overrides the pod ready delay.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::SimConfig;
use crate::ops::{self, DeleteOpts, Propagation, WriteOpts};
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::store::{Event, EventType, State, Store};
use crate::util::*;

pub const FAIL_ANNOTATION: &str = "kubelite.sailplane.dev/fail";
pub const READY_DELAY_ANNOTATION: &str = "kubelite.sailplane.dev/ready-delay";
const MANAGED: &str = "kubelite.sailplane.dev/managed";

pub fn node_status(i: u32) -> Value {
    let now = now_rfc3339();
    json!({
        "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
        "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
        "conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status (simulated by kubelite)", "lastHeartbeatTime": now, "lastTransitionTime": now}
        ],
        "addresses": [{"type": "InternalIP", "address": format!("172.18.0.{}", i + 2)}, {"type": "Hostname", "address": format!("kubelite-node-{i}")}],
        "nodeInfo": {"kubeletVersion": crate::discovery::GIT_VERSION, "kubeProxyVersion": crate::discovery::GIT_VERSION, "operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion": "kubelite://1.0", "osImage": "kubelite", "kernelVersion": "6.0", "machineID": "", "systemUUID": "", "bootID": ""}
    })
}

/// (namespace, name)
type Key = (String, String);

/// The kinds whose objects are looked up by their controller's uid.
const INDEXED: [&str; 3] = ["apps/replicasets", "/pods", "batch/jobs"];

/// The simulator's state between steps.
///
/// A step does not look at every object: it reads the store's event history since the last
/// step and looks only at what changed, at the owners of what changed (a Pod's ReplicaSet, a
/// ReplicaSet's Deployment), at the Services selecting a changed Pod, and at objects whose status
/// moves with time alone (a Pod waiting for its ready delay, a Deployment before its progress
/// deadline) once their time is due. When the history no longer reaches back to the last step
/// (more changes than it keeps), the step looks at everything, as the first step does.
struct Sim {
    cfg: SimConfig,
    nodes: u32,
    first_seen: HashMap<String, Instant>,
    progress: HashMap<String, (i64, Instant)>,
    emitted: HashSet<(String, String)>,
    /// Per indexed kind: (namespace, controller uid) -> names of the objects it controls, kept
    /// up to date from the store's events.
    owners: HashMap<&'static str, HashMap<Key, BTreeSet<String>>>,
    /// The resourceVersion up to which the store's events have been read.
    synced_rv: u64,
    /// False until the first full look at the store.
    synced: bool,
    /// Objects to look at in the next pass over their kind.
    dirty_deployments: HashSet<Key>,
    dirty_replicasets: HashSet<Key>,
    dirty_pods: HashSet<Key>,
    dirty_services: HashSet<Key>,
    /// Objects whose status changes with time alone, and when to look at them again.
    due_deployments: HashMap<Key, Instant>,
    due_pods: HashMap<Key, Instant>,
    /// Look for managed Endpoints whose Service is gone (after a full look).
    orphan_check: bool,
    /// The node the next scheduled Pod goes to (round robin).
    next_node: u32,
}

/// The keys to look at now: the dirty ones and those whose time is due, in (namespace, name)
/// order.
fn take(dirty: &mut HashSet<Key>, due: Option<&HashMap<Key, Instant>>) -> Vec<Key> {
    let now = Instant::now();
    let mut keys: Vec<Key> = dirty.drain().collect();
    if let Some(due) = due {
        keys.extend(
            due.iter()
                .filter(|(_, t)| **t <= now)
                .map(|(k, _)| k.clone()),
        );
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The name of an object's controller of kind `kind`.
fn controller_of<'a>(o: &'a Value, kind: &str) -> Option<&'a str> {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .filter(|r| r.get("kind").and_then(Value::as_str) == Some(kind))
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str)
}

/// Does a Service's selector (`spec.selector`, a map of labels) select this Pod?
fn selects(svc: &Value, pod: &Value) -> bool {
    let Some(sel) = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    else {
        return false;
    };
    let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

fn keys_of(st: &State, key: &str) -> HashSet<Key> {
    st.list(key, None)
        .into_iter()
        .map(|o| (meta_str(o, "namespace").to_string(), name_of(o).to_string()))
        .collect()
}

/// Record a core/v1 Event about `obj` once per (uid, reason).
fn event(
    sim_emitted: &mut HashSet<(String, String)>,
    st: &mut State,
    obj: &Value,
    type_: &str,
    reason: &str,
    message: &str,
) {
    let uid = uid_of(obj).to_string();
    if !sim_emitted.insert((uid.clone(), reason.to_string())) {
        return;
    }
    let ns = meta_str(obj, "namespace").to_string();
    let ns = if ns.is_empty() {
        "default".to_string()
    } else {
        ns
    };
    let now = now_rfc3339();
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{}.{}", name_of(obj), random_suffix(10)), "namespace": ns},
        "involvedObject": {"apiVersion": obj.get("apiVersion").cloned().unwrap_or(json!("v1")), "kind": obj.get("kind").cloned().unwrap_or(json!("")),
            "name": name_of(obj), "namespace": ns, "uid": uid, "resourceVersion": meta_str(obj, "resourceVersion")},
        "reason": reason, "message": message, "type": type_, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now,
        "source": {"component": "kubelite-simulator"},
        "reportingComponent": "kubelite-simulator", "reportingInstance": "kubelite"
    });
    create_child(st, "", "events", &ns, ev);
}

pub async fn run(
    store: Arc<Store>,
    cfg: SimConfig,
    nodes: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sim = Sim {
        cfg: cfg.clone(),
        nodes: nodes.max(1),
        first_seen: HashMap::new(),
        progress: HashMap::new(),
        emitted: HashSet::new(),
        owners: HashMap::new(),
        synced_rv: 0,
        synced: false,
        dirty_deployments: HashSet::new(),
        dirty_replicasets: HashSet::new(),
        dirty_pods: HashSet::new(),
        dirty_services: HashSet::new(),
        due_deployments: HashMap::new(),
        due_pods: HashMap::new(),
        orphan_check: false,
        next_node: 0,
    };
    let mut ticker = tokio::time::interval(cfg.tick.max(Duration::from_millis(5)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = ticker.tick() => {}
        }
        let mut st = store.lock();
        sim.step(&mut st);
    }
}

fn hash_str(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHA[((h >> (i * 6)) % ALPHA.len() as u64) as usize] as char)
        .collect()
}

fn owner_ref(owner: &Value, rt: &ResourceType) -> Value {
    json!({
        "apiVersion": rt.api_version(rt.preferred_version()),
        "kind": rt.kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": true,
        "blockOwnerDeletion": true
    })
}

/// The uid of the controller owner of an object.
fn controller_uid(o: &Value) -> Option<&str> {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
}

fn annotation<'a>(o: &'a Value, k: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(k))
        .and_then(Value::as_str)
}

fn fail_of(o: &Value) -> Option<String> {
    annotation(o, FAIL_ANNOTATION)
        .or_else(|| {
            o.pointer("/spec/template/metadata/annotations")
                .and_then(|a| a.get(FAIL_ANNOTATION))
                .and_then(Value::as_str)
        })
        .map(str::to_string)
}

fn i64_at(o: &Value, p: &str) -> i64 {
    o.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn set_status(st: &mut State, key: &str, ns: &str, name: &str, status: Value) {
    let Some(cur) = st.get(key, ns, name) else {
        return;
    };
    if cur.get("status") == Some(&status) {
        return;
    }
    let mut new = cur.clone();
    new["status"] = status;
    let _ = st.put(key, ns, name, new);
}

/// Keep lastTransitionTime of conditions whose status did not change.
fn keep_transitions(old: Option<&Value>, conds: &mut [Value]) {
    let old = old.and_then(Value::as_array);
    for c in conds.iter_mut() {
        let t = c.get("type").cloned();
        if let Some(prev) = old.and_then(|o| o.iter().find(|p| p.get("type") == t.as_ref()))
            && prev.get("status") == c.get("status")
        {
            for f in ["lastTransitionTime", "lastUpdateTime"] {
                if let Some(v) = prev.get(f) {
                    c[f] = v.clone();
                }
            }
        }
    }
}

fn create_child(st: &mut State, group: &str, resource: &str, ns: &str, obj: Value) {
    if let Some(rt) = st.registry.get(group, resource).cloned() {
        let _ = ops::create(st, &rt, ns, obj, &WriteOpts::default());
    }
}

fn delete_child(st: &mut State, group: &str, resource: &str, ns: &str, name: &str) {
    if let Some(rt) = st.registry.get(group, resource).cloned() {
        let _ = ops::delete(
            st,
            &rt,
            ns,
            name,
            &DeleteOpts {
                propagation: Some(Propagation::Background),
                ..Default::default()
            },
        );
    }
}

fn patch_spec(st: &mut State, key: &str, ns: &str, name: &str, f: impl FnOnce(&mut Value)) {
    let Some(cur) = st.get(key, ns, name).cloned() else {
        return;
    };
    let mut new = cur.clone();
    f(&mut new);
    if new != cur {
        let _ = st.put(key, ns, name, new);
    }
}

fn pod_from_template(
    tmpl: &Value,
    name: &str,
    owner: Value,
    extra_labels: &[(&str, String)],
    fail: Option<&str>,
) -> Value {
    let mut md = tmpl.get("metadata").cloned().unwrap_or(json!({}));
    if !md.is_object() {
        md = json!({});
    }
    md["name"] = json!(name);
    let labels = md
        .as_object_mut()
        .map(|m| m.entry("labels").or_insert_with(|| json!({})));
    if let Some(Value::Object(l)) = labels {
        for (k, v) in extra_labels {
            l.insert(k.to_string(), json!(v));
        }
    }
    if let Some(f) = fail {
        let ann = md
            .as_object_mut()
            .map(|m| m.entry("annotations").or_insert_with(|| json!({})));
        if let Some(Value::Object(a)) = ann {
            a.insert(FAIL_ANNOTATION.into(), json!(f));
        }
    }
    md["ownerReferences"] = json!([owner]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": md,
        "spec": tmpl.get("spec").cloned().unwrap_or(json!({"containers": []})),
    })
}

fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|x| {
                x.get("type").and_then(Value::as_str) == Some("Ready")
                    && x.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// Does a standard 5-field cron expression (or @hourly/@daily/…) match this minute?
pub fn cron_matches(expr: &str, t: &chrono::DateTime<chrono::Utc>) -> bool {
    use chrono::{Datelike, Timelike};
    let expr = match expr.trim() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    };
    let f: Vec<&str> = expr.split_whitespace().collect();
    if f.len() != 5 {
        return false;
    }
    let field = |spec: &str, v: u32, min: u32, max: u32| -> bool {
        spec.split(',').any(|part| {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)),
                None => (part, Some(1)),
            };
            let Some(step) = step else { return false };
            let (lo, hi) = if range == "*" {
                (min, max)
            } else if let Some((a, b)) = range.split_once('-') {
                match (a.parse(), b.parse()) {
                    (Ok(a), Ok(b)) => (a, b),
                    _ => return false,
                }
            } else {
                match range.parse() {
                    Ok(a) if part.contains('/') => (a, max),
                    Ok(a) => (a, a),
                    Err(_) => return false,
                }
            };
            v >= lo && v <= hi && (v - lo).is_multiple_of(step)
        })
    };
    let dow = t.weekday().num_days_from_sunday();
    field(f[0], t.minute(), 0, 59)
        && field(f[1], t.hour(), 0, 23)
        && field(f[2], t.day(), 1, 31)
        && field(f[3], t.month(), 1, 12)
        && (field(f[4], dow, 0, 7) || (dow == 0 && field(f[4], 7, 0, 7)))
}

fn parse_delay(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    if let Some(sec) = s.strip_suffix('s') {
        return sec
            .parse::<f64>()
            .ok()
            .filter(|x| *x >= 0.0 && x.is_finite())
            .map(Duration::from_secs_f64);
    }
    None
}

impl Sim {
    /// Read the store's events since the last sync: keep the owner index current and mark what
    /// must be looked at. Without the events (first call, or the history no longer reaches
    /// back), look at everything.
    fn sync(&mut self, st: &State) {
        if self.synced && st.rv == self.synced_rv {
            return;
        }
        match st.events_after(self.synced_rv).filter(|_| self.synced) {
            Some(events) => {
                for ev in events {
                    self.note(st, ev);
                }
            }
            None => self.rebuild(st),
        }
        self.synced_rv = st.rv;
        self.synced = true;
    }

    fn rebuild(&mut self, st: &State) {
        self.owners.clear();
        for key in INDEXED {
            let index = self.owners.entry(key).or_default();
            for o in st.list(key, None) {
                if let Some(uid) = controller_uid(o) {
                    index
                        .entry((meta_str(o, "namespace").to_string(), uid.to_string()))
                        .or_default()
                        .insert(name_of(o).to_string());
                }
            }
        }
        self.dirty_deployments = keys_of(st, "apps/deployments");
        self.dirty_replicasets = keys_of(st, "apps/replicasets");
        self.dirty_pods = keys_of(st, "/pods");
        self.dirty_services = keys_of(st, "/services");
        self.orphan_check = true;
        // forget what is gone
        let live: HashSet<&str> = st.list("/pods", None).into_iter().map(uid_of).collect();
        self.first_seen.retain(|k, _| live.contains(k.as_str()));
        self.emitted.retain(|(u, _)| live.contains(u.as_str()));
        let deps: HashSet<&str> = st
            .list("apps/deployments", None)
            .into_iter()
            .map(uid_of)
            .collect();
        self.progress.retain(|k, _| deps.contains(k.as_str()));
    }

    /// Take one store event into account.
    fn note(&mut self, st: &State, ev: &Event) {
        let gone = ev.kind == EventType::Deleted;
        let key = || (ev.ns.clone(), ev.name.clone());
        if let Some(kind) = INDEXED.iter().find(|k| **k == ev.key) {
            let index = self.owners.entry(kind).or_default();
            if let Some(uid) = ev.old.as_deref().and_then(controller_uid) {
                let k = (ev.ns.clone(), uid.to_string());
                if let Some(names) = index.get_mut(&k) {
                    names.remove(&ev.name);
                    if names.is_empty() {
                        index.remove(&k);
                    }
                }
            }
            if !gone && let Some(uid) = controller_uid(&ev.object) {
                index
                    .entry((ev.ns.clone(), uid.to_string()))
                    .or_default()
                    .insert(ev.name.clone());
            }
        }
        let now_and_before = [Some(&*ev.object), ev.old.as_deref()];
        match ev.key.as_str() {
            "apps/deployments" => {
                if gone {
                    self.due_deployments.remove(&key());
                    self.progress.remove(uid_of(&ev.object));
                } else {
                    self.dirty_deployments.insert(key());
                }
            }
            "apps/replicasets" => {
                for o in now_and_before.into_iter().flatten() {
                    if let Some(owner) = controller_of(o, "Deployment") {
                        self.dirty_deployments
                            .insert((ev.ns.clone(), owner.to_string()));
                    }
                }
                if !gone {
                    self.dirty_replicasets.insert(key());
                }
            }
            "/pods" => {
                for o in now_and_before.into_iter().flatten() {
                    if let Some(owner) = controller_of(o, "ReplicaSet") {
                        self.dirty_replicasets
                            .insert((ev.ns.clone(), owner.to_string()));
                    }
                }
                if gone {
                    self.due_pods.remove(&key());
                    let uid = uid_of(&ev.object);
                    self.first_seen.remove(uid);
                } else {
                    self.dirty_pods.insert(key());
                }
                // the Services selecting it, before or after the change
                for svc in st.list("/services", Some(&ev.ns)) {
                    if now_and_before
                        .into_iter()
                        .flatten()
                        .any(|o| selects(svc, o))
                    {
                        self.dirty_services
                            .insert((ev.ns.clone(), name_of(svc).to_string()));
                    }
                }
            }
            // a Service that is gone has its managed Endpoints removed; Endpoints changed or
            // removed by someone else are put back
            "/services" | "/endpoints" => {
                self.dirty_services.insert(key());
            }
            _ => {}
        }
    }

    /// The objects of kind `key` in `ns` whose controller is `owner_uid`.
    fn controlled_by<'a>(
        &self,
        st: &'a State,
        key: &str,
        ns: &str,
        owner_uid: &str,
    ) -> Vec<&'a Value> {
        self.owners
            .get(key)
            .and_then(|index| index.get(&(ns.to_string(), owner_uid.to_string())))
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| st.get(key, ns, n))
                    .filter(|o| controller_uid(o) == Some(owner_uid))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Create an object another one controls, and index it as its child.
    fn create_owned(&mut self, st: &mut State, group: &str, resource: &str, ns: &str, obj: Value) {
        let key = format!("{group}/{resource}");
        let owner = controller_uid(&obj).map(str::to_string);
        let name = name_of(&obj).to_string();
        create_child(st, group, resource, ns, obj);
        if let (Some(uid), Some(index)) = (owner, self.owners.get_mut(key.as_str())) {
            index.entry((ns.to_string(), uid)).or_default().insert(name);
        }
    }

    fn step(&mut self, st: &mut State) {
        self.sync(st);
        self.deployments(st);
        self.sync(st);
        self.replicasets(st);
        self.sync(st);
        self.statefulsets(st);
        self.sync(st);
        self.daemonsets(st);
        self.sync(st);
        self.cronjobs(st);
        self.sync(st);
        self.jobs(st);
        self.sync(st);
        self.pods(st);
        self.sync(st);
        self.services(st);
        self.pvcs(st);
        self.ingresses(st);
        self.addon_controllers(st);
        if self.emitted.len() > 10_000 {
            let live: HashSet<&str> = st.list("/pods", None).into_iter().map(uid_of).collect();
            self.emitted.retain(|(u, _)| live.contains(u.as_str()));
        }
    }

    fn deployments(&mut self, st: &mut State) {
        let Some(rt) = st.registry.get("apps", "deployments").cloned() else {
            return;
        };
        let kind = rt.key();
        for key in take(&mut self.dirty_deployments, Some(&self.due_deployments)) {
            let Some(d) = st
                .get(&kind, &key.0, &key.1)
                .filter(|d| !is_deleting(d))
                .cloned()
            else {
                self.due_deployments.remove(&key);
                continue;
            };
            let (ns, name) = key.clone();
            let uid = uid_of(&d).to_string();
            let desired = d
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let generation = i64_at(&d, "/metadata/generation");
            let tmpl = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let hash = hash_str(&tmpl.to_string());
            let rs_name = format!("{name}-{hash}");
            let fail = fail_of(&d);
            let rses: Vec<Value> = self
                .controlled_by(st, "apps/replicasets", &ns, &uid)
                .into_iter()
                .cloned()
                .collect();
            let max_rev = rses
                .iter()
                .filter_map(|r| {
                    annotation(r, "deployment.kubernetes.io/revision")
                        .and_then(|x| x.parse::<i64>().ok())
                })
                .max()
                .unwrap_or(0);
            match rses.iter().find(|r| name_of(r) == rs_name) {
                None => {
                    let mut labels = tmpl
                        .pointer("/metadata/labels")
                        .cloned()
                        .unwrap_or(json!({}));
                    labels["pod-template-hash"] = json!(hash);
                    let mut rs_tmpl = tmpl.clone();
                    if rs_tmpl.get("metadata").is_none() {
                        rs_tmpl["metadata"] = json!({});
                    }
                    rs_tmpl["metadata"]["labels"] = labels.clone();
                    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                    if selector.get("matchLabels").is_none() {
                        selector["matchLabels"] = json!({});
                    }
                    selector["matchLabels"]["pod-template-hash"] = json!(hash);
                    let mut ann = json!({"deployment.kubernetes.io/revision": (max_rev + 1).to_string(), "deployment.kubernetes.io/desired-replicas": desired.to_string()});
                    if let Some(f) = &fail {
                        ann[FAIL_ANNOTATION] = json!(f);
                    }
                    let rs = json!({
                        "apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {"name": rs_name, "namespace": ns, "labels": labels, "annotations": ann, "ownerReferences": [owner_ref(&d, &rt)]},
                        "spec": {"replicas": desired, "selector": selector, "template": rs_tmpl}
                    });
                    self.create_owned(st, "apps", "replicasets", &ns, rs);
                }
                Some(rs) => {
                    let f2 = fail.clone();
                    if i64_at(rs, "/spec/replicas") != desired || fail_of(rs) != fail {
                        patch_spec(st, "apps/replicasets", &ns, &rs_name, |o| {
                            o["spec"]["replicas"] = json!(desired);
                            let m = meta_mut(o);
                            let ann = m.entry("annotations").or_insert_with(|| json!({}));
                            if let Some(a) = ann.as_object_mut() {
                                match &f2 {
                                    Some(f) => {
                                        a.insert(FAIL_ANNOTATION.into(), json!(f));
                                    }
                                    None => {
                                        a.remove(FAIL_ANNOTATION);
                                    }
                                }
                            }
                        });
                    }
                }
            }
            // scale down old replica sets once the new one is available
            let new_ready = st
                .get("apps/replicasets", &ns, &rs_name)
                .map(|r| i64_at(r, "/status/availableReplicas"))
                .unwrap_or(0);
            for old in rses.iter().filter(|r| name_of(r) != rs_name) {
                if i64_at(old, "/spec/replicas") != 0 && (new_ready >= desired || fail.is_some()) {
                    let n = name_of(old).to_string();
                    patch_spec(st, "apps/replicasets", &ns, &n, |o| {
                        o["spec"]["replicas"] = json!(0)
                    });
                }
            }
            // status
            let rses: Vec<Value> = self
                .controlled_by(st, "apps/replicasets", &ns, &uid)
                .into_iter()
                .cloned()
                .collect();
            let sum = |p: &str| rses.iter().map(|r| i64_at(r, p)).sum::<i64>();
            let replicas = sum("/status/replicas");
            let ready = sum("/status/readyReplicas");
            let available = sum("/status/availableReplicas");
            let updated = rses
                .iter()
                .find(|r| name_of(r) == rs_name)
                .map(|r| i64_at(r, "/status/replicas"))
                .unwrap_or(0);
            let now = now_rfc3339();
            let entry = self
                .progress
                .entry(uid.clone())
                .or_insert((generation, Instant::now()));
            if entry.0 != generation {
                *entry = (generation, Instant::now());
            }
            let progress_since = entry.1;
            let deadline = Duration::from_secs(
                d.pointer("/spec/progressDeadlineSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(600),
            );
            let complete = updated == desired && available == desired && replicas == desired;
            // Until it is complete, the progress deadline alone can change its status.
            if complete || progress_since.elapsed() > deadline {
                self.due_deployments.remove(&key);
            } else {
                self.due_deployments
                    .insert(key, progress_since + deadline + Duration::from_millis(1));
            }
            let is_available = available >= desired;
            let progressing = if complete {
                json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed."), "lastUpdateTime": now, "lastTransitionTime": now})
            } else if progress_since.elapsed() > deadline {
                json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": format!("ReplicaSet \"{rs_name}\" has timed out progressing."), "lastUpdateTime": now, "lastTransitionTime": now})
            } else {
                json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": format!("ReplicaSet \"{rs_name}\" is progressing."), "lastUpdateTime": now, "lastTransitionTime": now})
            };
            let avail = if is_available {
                json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now})
            } else {
                json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now})
            };
            let mut conds = vec![avail, progressing];
            keep_transitions(d.pointer("/status/conditions"), &mut conds);
            let mut status = json!({"observedGeneration": generation, "conditions": conds});
            for (k, v) in [
                ("replicas", replicas),
                ("updatedReplicas", updated),
                ("readyReplicas", ready),
                ("availableReplicas", available),
                ("unavailableReplicas", (desired - available).max(0)),
            ] {
                if v != 0 {
                    status[k] = json!(v);
                }
            }
            set_status(st, &rt.key(), &ns, &name, status);
        }
    }

    fn replicasets(&mut self, st: &mut State) {
        for (ns, name) in take(&mut self.dirty_replicasets, None) {
            let Some(rs) = st
                .get("apps/replicasets", &ns, &name)
                .filter(|d| !is_deleting(d))
                .cloned()
            else {
                continue;
            };
            let uid = uid_of(&rs).to_string();
            let desired = rs
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .max(0) as usize;
            let Some(rs_rt) = st.registry.get("apps", "replicasets").cloned() else {
                return;
            };
            let pods: Vec<Value> = self
                .controlled_by(st, "/pods", &ns, &uid)
                .into_iter()
                .filter(|p| !is_deleting(p))
                .cloned()
                .collect();
            let fail = fail_of(&rs);
            if pods.len() < desired {
                let tmpl = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
                for _ in pods.len()..desired {
                    let pod = pod_from_template(
                        &tmpl,
                        &format!("{name}-{}", random_suffix(5)),
                        owner_ref(&rs, &rs_rt),
                        &[],
                        fail.as_deref(),
                    );
                    self.create_owned(st, "", "pods", &ns, pod);
                }
            } else if pods.len() > desired {
                let mut sorted = pods.clone();
                sorted.sort_by_key(|p| {
                    std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string())
                });
                for p in sorted.iter().take(pods.len() - desired) {
                    delete_child(st, "", "pods", &ns, name_of(p));
                }
            }
            let pods: Vec<Value> = self
                .controlled_by(st, "/pods", &ns, &uid)
                .into_iter()
                .filter(|p| !is_deleting(p))
                .cloned()
                .collect();
            let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
            let mut status = json!({"replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "observedGeneration": i64_at(&rs, "/metadata/generation")});
            if ready > 0 {
                status["readyReplicas"] = json!(ready);
                status["availableReplicas"] = json!(ready);
            }
            set_status(st, "apps/replicasets", &ns, &name, status);
        }
    }

    fn statefulsets(&mut self, st: &mut State) {
        let Some(rt) = st.registry.get("apps", "statefulsets").cloned() else {
            return;
        };
        let items: Vec<Value> = st
            .list(&rt.key(), None)
            .into_iter()
            .filter(|d| !is_deleting(d))
            .cloned()
            .collect();
        for s in items {
            let ns = meta_str(&s, "namespace").to_string();
            let name = name_of(&s).to_string();
            let uid = uid_of(&s).to_string();
            let desired = s
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .max(0);
            let tmpl = s.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let rev = format!("{name}-{}", hash_str(&tmpl.to_string()));
            let fail = fail_of(&s);
            let pods: Vec<Value> = self
                .controlled_by(st, "/pods", &ns, &uid)
                .into_iter()
                .cloned()
                .collect();
            let claims: Vec<Value> = s
                .pointer("/spec/volumeClaimTemplates")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for i in 0..desired {
                for c in &claims {
                    let cn = format!("{}-{name}-{i}", name_of(c));
                    if st.get("/persistentvolumeclaims", &ns, &cn).is_none() {
                        let mut labels = tmpl
                            .pointer("/metadata/labels")
                            .cloned()
                            .unwrap_or(json!({}));
                        if !labels.is_object() {
                            labels = json!({});
                        }
                        let pvc = json!({
                            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": cn, "namespace": ns, "labels": labels},
                            "spec": c.get("spec").cloned().unwrap_or(json!({}))
                        });
                        create_child(st, "", "persistentvolumeclaims", &ns, pvc);
                    }
                }
                let pn = format!("{name}-{i}");
                match pods.iter().find(|p| name_of(p) == pn) {
                    None => {
                        let pod = pod_from_template(
                            &tmpl,
                            &pn,
                            owner_ref(&s, &rt),
                            &[
                                ("statefulset.kubernetes.io/pod-name", pn.clone()),
                                ("controller-revision-hash", rev.clone()),
                                ("apps.kubernetes.io/pod-index", i.to_string()),
                            ],
                            fail.as_deref(),
                        );
                        self.create_owned(st, "", "pods", &ns, pod);
                    }
                    Some(p) => {
                        let cur_rev = p
                            .pointer("/metadata/labels/controller-revision-hash")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        if cur_rev != rev && !is_deleting(p) {
                            delete_child(st, "", "pods", &ns, &pn);
                        }
                    }
                }
            }
            for p in &pods {
                let idx = name_of(p)
                    .rsplit('-')
                    .next()
                    .and_then(|x| x.parse::<i64>().ok())
                    .unwrap_or(0);
                if idx >= desired && !is_deleting(p) {
                    delete_child(st, "", "pods", &ns, name_of(p));
                }
            }
            let pods: Vec<Value> = self
                .controlled_by(st, "/pods", &ns, &uid)
                .into_iter()
                .filter(|p| !is_deleting(p))
                .cloned()
                .collect();
            let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
            let updated = pods
                .iter()
                .filter(|p| {
                    p.pointer("/metadata/labels/controller-revision-hash")
                        .and_then(Value::as_str)
                        == Some(rev.as_str())
                })
                .count() as i64;
            let mut status = json!({"observedGeneration": i64_at(&s, "/metadata/generation"), "replicas": pods.len(), "currentReplicas": updated, "updatedReplicas": updated, "currentRevision": rev, "updateRevision": rev, "collisionCount": 0});
            if ready > 0 {
                status["readyReplicas"] = json!(ready);
                status["availableReplicas"] = json!(ready);
            }
            set_status(st, &rt.key(), &ns, &name, status);
        }
    }

    fn daemonsets(&mut self, st: &mut State) {
        let Some(rt) = st.registry.get("apps", "daemonsets").cloned() else {
            return;
        };
        let items: Vec<Value> = st
            .list(&rt.key(), None)
            .into_iter()
            .filter(|d| !is_deleting(d))
            .cloned()
            .collect();
        let nodes: Vec<String> = st
            .list("/nodes", None)
            .iter()
            .map(|n| name_of(n).to_string())
            .collect();
        let nodes = if nodes.is_empty() {
            (0..self.nodes)
                .map(|i| format!("kubelite-node-{i}"))
                .collect()
        } else {
            nodes
        };
        for s in items {
            let ns = meta_str(&s, "namespace").to_string();
            let name = name_of(&s).to_string();
            let uid = uid_of(&s).to_string();
            let tmpl = s.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let rev = hash_str(&tmpl.to_string());
            let fail = fail_of(&s);
            let pods: Vec<Value> = self
                .controlled_by(st, "/pods", &ns, &uid)
                .into_iter()
                .filter(|p| !is_deleting(p))
                .cloned()
                .collect();
            for node in &nodes {
                let on_node: Vec<&Value> = pods
                    .iter()
                    .filter(|p| {
                        p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node.as_str())
                    })
                    .collect();
                let current = on_node.iter().any(|p| {
                    p.pointer("/metadata/labels/controller-revision-hash")
                        .and_then(Value::as_str)
                        == Some(rev.as_str())
                });
                for p in on_node.iter().filter(|p| {
                    p.pointer("/metadata/labels/controller-revision-hash")
                        .and_then(Value::as_str)
                        != Some(rev.as_str())
                }) {
                    delete_child(st, "", "pods", &ns, name_of(p));
                }
                if !current {
                    let mut pod = pod_from_template(
                        &tmpl,
                        &format!("{name}-{}", random_suffix(5)),
                        owner_ref(&s, &rt),
                        &[("controller-revision-hash", rev.clone())],
                        fail.as_deref(),
                    );
                    pod["spec"]["nodeName"] = json!(node);
                    self.create_owned(st, "", "pods", &ns, pod);
                }
            }
            let pods: Vec<Value> = self
                .controlled_by(st, "/pods", &ns, &uid)
                .into_iter()
                .filter(|p| !is_deleting(p))
                .cloned()
                .collect();
            let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
            let status = json!({"observedGeneration": i64_at(&s, "/metadata/generation"), "desiredNumberScheduled": nodes.len(), "currentNumberScheduled": pods.len(), "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": pods.len(), "numberMisscheduled": 0});
            set_status(st, &rt.key(), &ns, &name, status);
        }
    }

    /// CronJobs create a Job when their schedule matches the current minute (UTC).
    fn cronjobs(&mut self, st: &mut State) {
        let Some(rt) = st.registry.get("batch", "cronjobs").cloned() else {
            return;
        };
        let items: Vec<Value> = st
            .list(&rt.key(), None)
            .into_iter()
            .filter(|c| !is_deleting(c))
            .cloned()
            .collect();
        if items.is_empty() {
            return;
        }
        let now = chrono::Utc::now();
        let minute = now.timestamp().div_euclid(60);
        for cj in items {
            if cj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let Some(schedule) = cj.pointer("/spec/schedule").and_then(Value::as_str) else {
                continue;
            };
            if !cron_matches(schedule, &now) {
                continue;
            }
            let ns = meta_str(&cj, "namespace").to_string();
            let name = name_of(&cj).to_string();
            let job_name = format!("{name}-{minute}");
            if st.get("batch/jobs", &ns, &job_name).is_some() {
                continue;
            }
            let tmpl = cj
                .pointer("/spec/jobTemplate")
                .cloned()
                .unwrap_or(json!({}));
            let mut md = tmpl
                .get("metadata")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or(json!({}));
            md["name"] = json!(job_name);
            md["ownerReferences"] = json!([owner_ref(&cj, &rt)]);
            let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": tmpl.get("spec").cloned().unwrap_or(json!({}))});
            self.create_owned(st, "batch", "jobs", &ns, job);
            let mut status = cj
                .get("status")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or(json!({}));
            status["lastScheduleTime"] = json!(now.format("%Y-%m-%dT%H:%M:00Z").to_string());
            set_status(st, &rt.key(), &ns, &name, status);
            // keep successfulJobsHistoryLimit (default 3) finished jobs
            let limit = cj
                .pointer("/spec/successfulJobsHistoryLimit")
                .and_then(Value::as_u64)
                .unwrap_or(3) as usize;
            let mut owned: Vec<(String, String)> = self
                .controlled_by(st, "batch/jobs", &ns, uid_of(&cj))
                .into_iter()
                .filter(|j| j.pointer("/status/completionTime").is_some())
                .map(|j| {
                    (
                        meta_str(j, "creationTimestamp").to_string(),
                        name_of(j).to_string(),
                    )
                })
                .collect();
            owned.sort();
            if owned.len() > limit {
                for (_, n) in &owned[..owned.len() - limit] {
                    delete_child(st, "batch", "jobs", &ns, n);
                }
            }
        }
    }

    fn jobs(&mut self, st: &mut State) {
        let Some(rt) = st.registry.get("batch", "jobs").cloned() else {
            return;
        };
        let items: Vec<Value> = st
            .list(&rt.key(), None)
            .into_iter()
            .filter(|d| !is_deleting(d))
            .cloned()
            .collect();
        for j in items {
            let ns = meta_str(&j, "namespace").to_string();
            let name = name_of(&j).to_string();
            let uid = uid_of(&j).to_string();
            let finished = j
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter().any(|x| {
                        matches!(
                            x.get("type").and_then(Value::as_str),
                            Some("Complete") | Some("Failed")
                        ) && x.get("status").and_then(Value::as_str) == Some("True")
                    })
                });
            if finished || j.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let completions = j
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let parallelism = j
                .pointer("/spec/parallelism")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let backoff = j
                .pointer("/spec/backoffLimit")
                .and_then(Value::as_i64)
                .unwrap_or(6);
            let fail = fail_of(&j);
            let pods: Vec<Value> = self
                .controlled_by(st, "/pods", &ns, &uid)
                .into_iter()
                .cloned()
                .collect();
            let phase = |p: &Value| {
                p.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
            let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
            let active = pods
                .iter()
                .filter(|p| phase(p) != "Succeeded" && phase(p) != "Failed" && !is_deleting(p))
                .count() as i64;
            let now = now_rfc3339();
            let start = j
                .pointer("/status/startTime")
                .cloned()
                .unwrap_or(json!(now));
            let mut status = json!({"startTime": start, "active": active, "succeeded": succeeded, "failed": failed, "ready": 0});
            if succeeded >= completions {
                status["conditions"] = json!([
                    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now}
                ]);
                status["completionTime"] = json!(now);
                status["active"] = json!(0);
            } else if failed > backoff || (fail.is_some() && failed > 0) {
                status["conditions"] = json!([
                    {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now}
                ]);
                status["active"] = json!(0);
            } else {
                let want = (completions - succeeded).min(parallelism) - active;
                let tmpl = j.pointer("/spec/template").cloned().unwrap_or(json!({}));
                for _ in 0..want.max(0) {
                    let pod = pod_from_template(
                        &tmpl,
                        &format!("{name}-{}", random_suffix(5)),
                        owner_ref(&j, &rt),
                        &[
                            ("job-name", name.clone()),
                            ("batch.kubernetes.io/job-name", name.clone()),
                            ("controller-uid", uid.clone()),
                            ("batch.kubernetes.io/controller-uid", uid.clone()),
                        ],
                        fail.as_deref(),
                    );
                    self.create_owned(st, "", "pods", &ns, pod);
                }
            }
            set_status(st, &rt.key(), &ns, &name, status);
        }
    }

    fn pods(&mut self, st: &mut State) {
        for key in take(&mut self.dirty_pods, Some(&self.due_pods)) {
            let Some(p) = st.get("/pods", &key.0, &key.1).filter(|p| !is_deleting(p)) else {
                self.due_pods.remove(&key);
                continue;
            };
            let phase = p
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" {
                self.due_pods.remove(&key);
                continue;
            }
            let uid = uid_of(p).to_string();
            let seen = *self
                .first_seen
                .entry(uid.clone())
                .or_insert_with(Instant::now);
            let elapsed = seen.elapsed();
            let fail = annotation(p, FAIL_ANNOTATION).map(str::to_string);
            let ready_delay = annotation(p, READY_DELAY_ANNOTATION)
                .and_then(parse_delay)
                .unwrap_or(self.cfg.pod_ready_delay);
            let is_job = p
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|r| {
                    r.iter()
                        .any(|x| x.get("kind").and_then(Value::as_str) == Some("Job"))
                });
            let created = meta_str(p, "creationTimestamp").to_string();
            let start_delay = self.cfg.pod_start_delay;
            // When the status can next change with time alone: at the start delay, the ready
            // delay, a Job's completion; every step while a failure mode counts restarts or
            // alternates its reason.
            let mut thresholds = vec![start_delay, start_delay + ready_delay];
            if is_job {
                thresholds.push(start_delay + self.cfg.job_complete_delay);
            }
            let next = match fail.as_deref() {
                Some("image-pull") | Some("crash-loop") => Some(Instant::now()),
                _ => thresholds
                    .into_iter()
                    .filter(|t| *t > elapsed)
                    .min()
                    .map(|t| seen + t),
            };
            match next {
                Some(t) => self.due_pods.insert(key.clone(), t),
                None => self.due_pods.remove(&key),
            };
            if elapsed < start_delay {
                continue;
            }
            let needs_node = p
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            let (ns, name) = key;
            // schedule
            if needs_node {
                let node = format!("kubelite-node-{}", self.next_node % self.nodes);
                self.next_node = self.next_node.wrapping_add(1);
                patch_spec(st, "/pods", &ns, &name, |o| {
                    o["spec"]["nodeName"] = json!(node)
                });
            }
            let Some(p) = st.get("/pods", &ns, &name).cloned() else {
                continue;
            };
            let node = p
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("kubelite-node-0")
                .to_string();
            let node_idx = node
                .rsplit('-')
                .next()
                .and_then(|x| x.parse::<u32>().ok())
                .unwrap_or(0);
            let containers: Vec<Value> = p
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let running_for = elapsed.saturating_sub(self.cfg.pod_start_delay);
            let h = hash_str(&uid);
            let ip_tail = h
                .bytes()
                .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 250
                + 2;
            let pod_ip = format!("10.244.{node_idx}.{ip_tail}");
            let cond = |t: &str, s: bool, reason: Option<&str>| {
                let mut c = json!({"type": t, "status": if s { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": created});
                if let Some(r) = reason {
                    c["reason"] = json!(r);
                }
                c
            };
            let cstatus = |c: &Value, state: Value, ready: bool, restarts: u64| json!({"name": c.get("name").cloned().unwrap_or(json!("")), "image": c.get("image").cloned().unwrap_or(json!("")), "imageID": format!("docker.io/library/{}@sha256:0", c.get("image").and_then(Value::as_str).unwrap_or("")), "containerID": format!("kubelite://{}", hash_str(&format!("{uid}{}", c.get("name").and_then(Value::as_str).unwrap_or("")))), "ready": ready, "started": state.get("running").is_some(), "restartCount": restarts, "state": state});
            let (status_phase, conds, cs): (&str, Vec<Value>, Vec<Value>) = match fail.as_deref() {
                Some("image-pull") => {
                    let reason = if (running_for.as_millis() / 1000).is_multiple_of(2) {
                        "ErrImagePull"
                    } else {
                        "ImagePullBackOff"
                    };
                    (
                        "Pending",
                        vec![cond("PodReadyToStartContainers", true, None), cond("Initialized", true, None), cond("Ready", false, Some("ContainersNotReady")), cond("ContainersReady", false, Some("ContainersNotReady")), cond("PodScheduled", true, None)],
                        containers.iter().map(|c| cstatus(c, json!({"waiting": {"reason": reason, "message": format!("Back-off pulling image \"{}\" (simulated by kubelite)", c.get("image").and_then(Value::as_str).unwrap_or(""))}}), false, 0)).collect(),
                    )
                }
                Some("crash-loop") if running_for >= ready_delay => {
                    let restarts = running_for.as_secs();
                    (
                        "Running",
                        vec![cond("PodReadyToStartContainers", true, None), cond("Initialized", true, None), cond("Ready", false, Some("ContainersNotReady")), cond("ContainersReady", false, Some("ContainersNotReady")), cond("PodScheduled", true, None)],
                        containers.iter().map(|c| {
                            let mut s = cstatus(c, json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container (simulated by kubelite)"}}), false, restarts);
                            s["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": created, "finishedAt": created}});
                            s
                        }).collect(),
                    )
                }
                _ if is_job && running_for >= self.cfg.job_complete_delay => {
                    let failed = matches!(fail.as_deref(), Some("job-fail") | Some("crash-loop"));
                    let (ph, code, reason) = if failed {
                        ("Failed", 1, "Error")
                    } else {
                        ("Succeeded", 0, "Completed")
                    };
                    (
                        ph,
                        vec![cond("PodReadyToStartContainers", false, None), cond("Initialized", true, Some("PodCompleted")), cond("Ready", false, Some("PodCompleted")), cond("ContainersReady", false, Some("PodCompleted")), cond("PodScheduled", true, None)],
                        containers.iter().map(|c| cstatus(c, json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": created, "finishedAt": created}}), false, 0)).collect(),
                    )
                }
                other => {
                    let ready = running_for >= ready_delay
                        && other != Some("never-ready")
                        && other != Some("crash-loop");
                    (
                        "Running",
                        vec![
                            cond("PodReadyToStartContainers", true, None),
                            cond("Initialized", true, None),
                            cond(
                                "Ready",
                                ready,
                                if ready {
                                    None
                                } else {
                                    Some("ContainersNotReady")
                                },
                            ),
                            cond(
                                "ContainersReady",
                                ready,
                                if ready {
                                    None
                                } else {
                                    Some("ContainersNotReady")
                                },
                            ),
                            cond("PodScheduled", true, None),
                        ],
                        containers
                            .iter()
                            .map(|c| {
                                cstatus(c, json!({"running": {"startedAt": created}}), ready, 0)
                            })
                            .collect(),
                    )
                }
            };
            let image = containers
                .first()
                .and_then(|c| c.get("image"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            event(
                &mut self.emitted,
                st,
                &p,
                "Normal",
                "Scheduled",
                &format!("Successfully assigned {ns}/{name} to {node}"),
            );
            match (fail.as_deref(), status_phase) {
                (Some("image-pull"), _) => event(
                    &mut self.emitted,
                    st,
                    &p,
                    "Warning",
                    "Failed",
                    &format!(
                        "Failed to pull image \"{image}\": simulated image pull failure (kubelite)"
                    ),
                ),
                (Some("crash-loop"), "Running") if running_for >= ready_delay => event(
                    &mut self.emitted,
                    st,
                    &p,
                    "Warning",
                    "BackOff",
                    "Back-off restarting failed container (simulated by kubelite)",
                ),
                (Some("never-ready"), "Running") if running_for >= ready_delay => event(
                    &mut self.emitted,
                    st,
                    &p,
                    "Warning",
                    "Unhealthy",
                    "Readiness probe failed (simulated by kubelite)",
                ),
                (_, "Running") => event(
                    &mut self.emitted,
                    st,
                    &p,
                    "Normal",
                    "Started",
                    "Started container (simulated by kubelite)",
                ),
                _ => {}
            }
            let host_ip = format!("172.18.0.{}", node_idx + 2);
            let status = json!({
                "phase": status_phase,
                "conditions": conds,
                "hostIP": host_ip,
                "hostIPs": [{"ip": host_ip}],
                "podIP": pod_ip,
                "podIPs": [{"ip": pod_ip}],
                "startTime": created,
                "containerStatuses": cs,
                "qosClass": "BestEffort"
            });
            set_status(st, "/pods", &ns, &name, status);
        }
    }

    fn services(&mut self, st: &mut State) {
        for (ns, name) in take(&mut self.dirty_services, None) {
            let Some(s) = st.get("/services", &ns, &name).cloned() else {
                // a Service that is gone leaves no managed Endpoints behind
                if st
                    .get("/endpoints", &ns, &name)
                    .is_some_and(|e| annotation(e, MANAGED) == Some("true"))
                {
                    let _ = st.remove("/endpoints", &ns, &name);
                }
                continue;
            };
            let s = &s;
            if s.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
                && s.pointer("/status/loadBalancer/ingress").is_none()
            {
                let ip = format!("172.18.255.{}", hash_str(&name).len() + 190);
                set_status(
                    st,
                    "/services",
                    &ns,
                    &name,
                    json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}),
                );
            }
            let Some(sel) = s
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .filter(|m| !m.is_empty())
            else {
                continue;
            };
            let ls = LabelSelector::from_object(&json!({"matchLabels": sel}));
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for p in st.list("/pods", Some(&ns)) {
                if is_deleting(p) || !ls.matches(p) {
                    continue;
                }
                let Some(ip) = p.pointer("/status/podIP").and_then(Value::as_str) else {
                    continue;
                };
                let addr = json!({"ip": ip, "nodeName": p.pointer("/spec/nodeName").cloned().unwrap_or(Value::Null), "targetRef": {"kind": "Pod", "name": name_of(p), "namespace": ns, "uid": uid_of(p)}});
                if pod_ready(p) {
                    ready.push(addr)
                } else {
                    not_ready.push(addr)
                }
            }
            let ports: Vec<Value> = s.pointer("/spec/ports").and_then(Value::as_array).map(|a| a.iter().map(|p| {
                let target = p.get("targetPort").and_then(Value::as_i64).or_else(|| p.get("port").and_then(Value::as_i64)).unwrap_or(0);
                let mut x = json!({"port": target, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))});
                if let Some(n) = p.get("name") { x["name"] = n.clone(); }
                x
            }).collect()).unwrap_or_default();
            let mut subset = json!({"ports": ports});
            if !ready.is_empty() {
                subset["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] = json!(not_ready);
            }
            let subsets = if ready.is_empty() && not_ready.is_empty() {
                json!([])
            } else {
                json!([subset])
            };
            match st.get("/endpoints", &ns, &name).cloned() {
                None => {
                    let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns, "labels": s.pointer("/metadata/labels").cloned().unwrap_or(json!({})), "annotations": {MANAGED: "true"}}, "subsets": subsets});
                    create_child(st, "", "endpoints", &ns, ep);
                }
                Some(ep) => {
                    if annotation(&ep, MANAGED) == Some("true")
                        && ep.get("subsets") != Some(&subsets)
                    {
                        patch_spec(st, "/endpoints", &ns, &name, |o| o["subsets"] = subsets);
                    }
                }
            }
        }
        // endpoints of deleted services, after a full look (the events name them otherwise)
        if !std::mem::take(&mut self.orphan_check) {
            return;
        }
        let orphans: Vec<(String, String)> = st
            .list("/endpoints", None)
            .into_iter()
            .filter(|e| annotation(e, MANAGED) == Some("true"))
            .filter(|e| {
                st.get("/services", meta_str(e, "namespace"), name_of(e))
                    .is_none()
            })
            .map(|e| (meta_str(e, "namespace").to_string(), name_of(e).to_string()))
            .collect();
        for (ns, n) in orphans {
            let _ = st.remove("/endpoints", &ns, &n);
        }
    }

    /// FluxCD and Terraform-controller objects become Ready when their CRDs are installed.
    fn addon_controllers(&mut self, st: &mut State) {
        let types: Vec<ResourceType> = st
            .registry
            .types
            .values()
            .filter(|t| {
                t.custom
                    && (t.group.ends_with(".toolkit.fluxcd.io")
                        || (t.group == "terraform.core.oam.dev" && t.kind == "Configuration"))
            })
            .cloned()
            .collect();
        for t in types {
            let objs: Vec<Value> = st
                .list(&t.key(), None)
                .into_iter()
                .filter(|o| !is_deleting(o))
                .cloned()
                .collect();
            for o in objs {
                let ns = meta_str(&o, "namespace").to_string();
                let name = name_of(&o).to_string();
                let generation = i64_at(&o, "/metadata/generation");
                let fail = fail_of(&o);
                let created = meta_str(&o, "creationTimestamp").to_string();
                let status = if t.group == "terraform.core.oam.dev" {
                    if fail.is_some() {
                        json!({"observedGeneration": generation, "apply": {"state": "ConfigurationApplyFailed", "message": "simulated failure (kubelite)"}})
                    } else {
                        json!({"observedGeneration": generation, "apply": {"state": "Available", "message": "Cloud resources are deployed and ready to use"}, "destroy": {"state": ""}})
                    }
                } else {
                    let (s, reason, msg) = match fail {
                        Some(_) => (
                            "False",
                            "ReconciliationFailed",
                            "simulated failure (kubelite)".to_string(),
                        ),
                        None => (
                            "True",
                            "ReconciliationSucceeded",
                            format!(
                                "{} reconciliation succeeded (simulated by kubelite)",
                                t.kind
                            ),
                        ),
                    };
                    let mut conds = vec![
                        json!({"type": "Ready", "status": s, "reason": reason, "message": msg, "observedGeneration": generation, "lastTransitionTime": created}),
                    ];
                    keep_transitions(o.pointer("/status/conditions"), &mut conds);
                    let mut st_v = o
                        .get("status")
                        .cloned()
                        .filter(Value::is_object)
                        .unwrap_or(json!({}));
                    st_v["observedGeneration"] = json!(generation);
                    st_v["conditions"] = json!(conds);
                    if t.kind == "HelmRelease" {
                        st_v["lastAttemptedRevision"] = o
                            .pointer("/spec/chart/spec/version")
                            .cloned()
                            .unwrap_or(json!("0.0.0"));
                    }
                    st_v
                };
                set_status(st, &t.key(), &ns, &name, status);
            }
        }
    }

    /// Ingresses get a load-balancer address (what gateway health checks look at).
    fn ingresses(&mut self, st: &mut State) {
        let ings: Vec<Value> = st
            .list("networking.k8s.io/ingresses", None)
            .into_iter()
            .filter(|i| !is_deleting(i) && i.pointer("/status/loadBalancer/ingress").is_none())
            .cloned()
            .collect();
        for i in ings {
            let ns = meta_str(&i, "namespace").to_string();
            let name = name_of(&i).to_string();
            set_status(
                st,
                "networking.k8s.io/ingresses",
                &ns,
                &name,
                json!({"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}}),
            );
        }
    }

    fn pvcs(&mut self, st: &mut State) {
        let pvcs: Vec<Value> = st
            .list("/persistentvolumeclaims", None)
            .into_iter()
            .filter(|p| {
                !is_deleting(p)
                    && p.pointer("/status/phase").and_then(Value::as_str) != Some("Bound")
            })
            .cloned()
            .collect();
        for p in pvcs {
            let ns = meta_str(&p, "namespace").to_string();
            let name = name_of(&p).to_string();
            let cap = p
                .pointer("/spec/resources/requests")
                .cloned()
                .unwrap_or(json!({"storage": "1Gi"}));
            let modes = p
                .pointer("/spec/accessModes")
                .cloned()
                .unwrap_or(json!(["ReadWriteOnce"]));
            set_status(
                st,
                "/persistentvolumeclaims",
                &ns,
                &name,
                json!({"phase": "Bound", "accessModes": modes, "capacity": cap}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cron_matches;

    #[test]
    fn cron_expressions() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:30:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        for (e, want) in [
            ("* * * * *", true),
            ("*/5 * * * *", true),
            ("*/7 * * * *", false),
            ("30 10 * * *", true),
            ("0 10 * * *", false),
            ("30 10 25 11 3", true),
            ("30 10 * * 1-5", true),
            ("30 10 * * 0,6", false),
            ("@hourly", false),
            ("bad", false),
        ] {
            assert_eq!(cron_matches(e, &t), want, "{e}");
        }
    }
}
