//! `sail status NAME --tree`: application → component → cluster → resources → pods, with
//! health, read from the revision's ResourceTracker and the live objects.

use crate::Error;
use crate::hub::Hub;
use fleet::{Fleet, ObjectRef};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use oam::{Application, ResourceTracker};
use serde_json::Value;

pub async fn print(hub: &Hub, app: &Application) -> Result<(), Error> {
    let name = app.name();
    let ns = app.namespace();
    let status = app.status.clone().unwrap_or_default();
    let phase = status
        .status
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "pending".into());
    println!("{ns}/{name} ({phase})");
    let revision = status
        .latest_revision
        .as_ref()
        .map(|r| r.revision)
        .unwrap_or(0);
    let trackers: Api<ResourceTracker> = Api::all(hub.client.clone());
    let tracker = trackers
        .get_opt(&format!("{name}-v{revision}-{ns}"))
        .await
        .map_err(Error::api(format!(
            "read the resource tracker of {ns}/{name}"
        )))?;
    let managed = tracker
        .map(|t| t.spec.managed_resources)
        .unwrap_or_default();
    let fleet = Fleet::new(hub.client.clone());
    // Members are reached with their registered credentials; a broken registry only costs the
    // clusters it cannot name.
    let _ = fleet.sync().await;
    let count = app.spec.components.len();
    for (i, c) in app.spec.components.iter().enumerate() {
        let last = i + 1 == count;
        let entries: Vec<_> = status
            .services
            .iter()
            .filter(|s| s.name == c.name)
            .collect();
        let health = if entries.is_empty() {
            "not deployed"
        } else if entries.iter().all(|s| s.healthy) {
            "healthy"
        } else {
            "unhealthy"
        };
        println!(
            "{} {} ({}) {health}",
            if last { "└─" } else { "├─" },
            c.name,
            c.type_
        );
        let pad = if last { "   " } else { "│  " };
        let mine: Vec<_> = managed
            .iter()
            .filter(|m| m.component.as_deref() == Some(c.name.as_str()))
            .collect();
        let mut clusters: Vec<String> = mine.iter().map(|m| m.cluster_name().to_string()).collect();
        clusters.sort();
        clusters.dedup();
        if clusters.is_empty() {
            clusters.push(fleet::LOCAL.to_string());
        }
        for (ci, cluster_name) in clusters.iter().enumerate() {
            let clast = ci + 1 == clusters.len();
            let entry = entries
                .iter()
                .find(|s| s.cluster.as_deref().unwrap_or(fleet::LOCAL) == cluster_name.as_str());
            let state = match entry {
                Some(s) if s.healthy => "healthy".to_string(),
                Some(s) => format!(
                    "unhealthy{}",
                    s.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                None => "not deployed".to_string(),
            };
            println!(
                "{pad}{} cluster {cluster_name} ({state})",
                if clast { "└─" } else { "├─" }
            );
            let pad2 = format!("{pad}{}", if clast { "   " } else { "│  " });
            let here: Vec<_> = mine
                .iter()
                .filter(|m| m.cluster_name() == cluster_name.as_str())
                .collect();
            let cluster = fleet.cluster(cluster_name);
            for (j, m) in here.iter().enumerate() {
                let r = ObjectRef {
                    api_version: m.api_version.clone().unwrap_or_default(),
                    kind: m.kind.clone().unwrap_or_default(),
                    namespace: m.namespace.clone(),
                    name: m.name.clone().unwrap_or_default(),
                };
                let live = match &cluster {
                    Ok(cl) => cl.get(&r).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let state = match &live {
                    Ok(Some(obj)) => describe(obj),
                    Ok(None) => "missing".into(),
                    Err(e) => format!("cannot read: {e}"),
                };
                let lastr = j + 1 == here.len();
                println!("{pad2}{} {r}  {state}", if lastr { "└─" } else { "├─" });
                let workload =
                    matches!(r.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet");
                let (Ok(cl), true) = (&cluster, workload) else {
                    continue;
                };
                let pods: Api<Pod> =
                    Api::namespaced(cl.client().clone(), r.namespace.as_deref().unwrap_or(ns));
                let selector = format!(
                    "{}={},{}={}",
                    oam::labels::LABEL_APP_NAME,
                    name,
                    oam::labels::LABEL_APP_COMPONENT,
                    c.name
                );
                let list = match pods.list(&ListParams::default().labels(&selector)).await {
                    Ok(l) => l.items,
                    Err(e) => {
                        println!("{pad2}   cannot list pods: {e}");
                        continue;
                    }
                };
                let pad3 = format!("{pad2}{}", if lastr { "   " } else { "│  " });
                for (k, p) in list.iter().enumerate() {
                    let phase = p
                        .status
                        .as_ref()
                        .and_then(|s| s.phase.clone())
                        .unwrap_or_default();
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    println!(
                        "{pad3}{} Pod {}  {phase}{}",
                        if k + 1 == list.len() {
                            "└─"
                        } else {
                            "├─"
                        },
                        p.metadata.name.as_deref().unwrap_or_default(),
                        if ready { ", ready" } else { ", not ready" }
                    );
                }
            }
        }
    }
    Ok(())
}

/// One line about a live object: replicas for workloads, type and address for Services.
fn describe(obj: &Value) -> String {
    let st = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    match obj.get("kind").and_then(Value::as_str) {
        Some("Deployment" | "StatefulSet") => {
            format!(
                "{}/{} ready",
                st("/status/readyReplicas"),
                obj.pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
            )
        }
        Some("Service") => format!(
            "{} {}",
            obj.pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP"),
            obj.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("")
        ),
        _ => "exists".into(),
    }
}
