//! `sail cluster`: the member clusters the hub delivers to, stored as KubeVela does (one Secret
//! per cluster in vela-system; see `fleet::registry`).

use crate::Error;
use crate::hub::Hub;
use comfy_table::{Table, presets::NOTHING};
use fleet::registry::{self, ClusterRecord};
use kube::api::{Api, ListParams};
use kube::config::{Kubeconfig, NamedCluster, NamedContext};
use oam::labels::{LABEL_APP_NAME, LABEL_APP_NAMESPACE};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// How long a probe may take before the cluster counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// `sail cluster join KUBECONFIG --name N [--context C] [--labels k=v,...]`: check that the
/// member answers with those credentials, then register it.
pub async fn join(
    hub: &Hub,
    kubeconfig: &Path,
    name: &str,
    context: Option<&str>,
    labels: &[String],
) -> Result<(), Error> {
    let mut record = ClusterRecord::from_kubeconfig(kubeconfig, context, name)?;
    record.labels = parse_labels(labels)?;
    let client = record.client().await?;
    let probe = probe_with_timeout(name, &client).await.map_err(|e| {
        Error::Failed(format!(
            "cluster {name} is not reachable with the credentials in {}: {e}; nothing was registered",
            kubeconfig.display()
        ))
    })?;
    registry::create(&hub.client, &record).await?;
    println!(
        "cluster {name} joined: {} ({}, {} node{}), credential {}",
        record.endpoint,
        probe.version,
        probe.nodes,
        if probe.nodes == 1 { "" } else { "s" },
        record.credential_type()
    );
    Ok(())
}

async fn probe_with_timeout(name: &str, client: &kube::Client) -> Result<registry::Probe, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, registry::probe(name, client)).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(crate::hub::root_cause(&e)),
        Err(_) => Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
    }
}

/// `k=v` pairs, comma-separated or repeated.
fn parse_labels(items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for item in items
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        let Some((k, v)) = item.split_once('=') else {
            return Err(Error::Usage(format!("label {item:?} is not key=value")));
        };
        let k = k.trim();
        if k.is_empty()
            || k == registry::LABEL_CREDENTIAL_TYPE
            || k == registry::LABEL_ENDPOINT_TYPE
        {
            return Err(Error::Usage(format!(
                "label key {k:?} cannot be set on a cluster"
            )));
        }
        out.insert(k.to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// `sail cluster list`: every cluster, probed in parallel.
pub async fn list(hub: &Hub) -> Result<(), Error> {
    let (records, broken) = registry::list(&hub.client).await?;
    let probes = records.iter().map(|r| async move {
        let result = match r.client().await {
            Ok(c) => probe_with_timeout(&r.name, &c).await,
            Err(e) => Err(e.to_string()),
        };
        (r, result)
    });
    let local = probe_with_timeout(fleet::LOCAL, &hub.client);
    let (local, members) = tokio::join!(local, futures::future::join_all(probes));
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header([
        "NAME",
        "ALIAS",
        "CREDENTIAL",
        "ENDPOINT",
        "LABELS",
        "REACHABLE",
        "VERSION",
        "NODES",
    ]);
    let row = |t: &mut Table,
               name: &str,
               alias: &str,
               cred: &str,
               endpoint: &str,
               labels: &BTreeMap<String, String>,
               probe: &Result<registry::Probe, String>| {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let (reachable, version, nodes) = match probe {
            Ok(p) => ("yes".to_string(), p.version.clone(), p.nodes.to_string()),
            Err(e) => (format!("no: {e}"), "-".to_string(), "-".to_string()),
        };
        t.add_row([
            name, alias, cred, endpoint, &labels, &reachable, &version, &nodes,
        ]);
    };
    row(
        &mut t,
        fleet::LOCAL,
        "hub",
        "-",
        hub.server.trim_end_matches('/'),
        &BTreeMap::new(),
        &local,
    );
    for (r, probe) in &members {
        row(
            &mut t,
            &r.name,
            r.alias.as_deref().unwrap_or(""),
            r.credential_type(),
            &r.endpoint,
            &r.labels,
            probe,
        );
    }
    println!("{t}");
    for b in broken {
        eprintln!("warning: {b}");
    }
    Ok(())
}

async fn must_get(hub: &Hub, name: &str) -> Result<ClusterRecord, Error> {
    if name == fleet::LOCAL {
        return Err(Error::Usage(
            "`local` is the hub itself; it has no registration to change".to_string(),
        ));
    }
    registry::get(&hub.client, name).await?.ok_or_else(|| {
        Error::Failed(format!(
            "cluster {name} is not registered (see `sail cluster list`)"
        ))
    })
}

/// `sail cluster probe NAME`.
pub async fn probe(hub: &Hub, name: &str) -> Result<(), Error> {
    let client = if name == fleet::LOCAL {
        hub.client.clone()
    } else {
        must_get(hub, name).await?.client().await?
    };
    match probe_with_timeout(name, &client).await {
        Ok(p) => {
            println!(
                "cluster {name} is reachable: {}, {} node(s)",
                p.version, p.nodes
            );
            Ok(())
        }
        Err(e) => Err(Error::Failed(format!(
            "cluster {name} is not reachable: {e}"
        ))),
    }
}

/// `sail cluster labels add NAME k=v...`.
pub async fn labels_add(hub: &Hub, name: &str, labels: &[String]) -> Result<(), Error> {
    let mut record = must_get(hub, name).await?;
    record.labels.extend(parse_labels(labels)?);
    registry::update(&hub.client, &record).await?;
    println!("cluster {name} labels: {}", show_labels(&record.labels));
    Ok(())
}

/// `sail cluster labels del NAME key...`.
pub async fn labels_del(hub: &Hub, name: &str, keys: &[String]) -> Result<(), Error> {
    let mut record = must_get(hub, name).await?;
    for k in keys
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        if record.labels.remove(k.trim()).is_none() {
            return Err(Error::Failed(format!("cluster {name} has no label {k:?}")));
        }
    }
    registry::update(&hub.client, &record).await?;
    println!("cluster {name} labels: {}", show_labels(&record.labels));
    Ok(())
}

fn show_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "(none)".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The applications (`namespace/name`) that have resources on the cluster or whose topology
/// policies name or select it.
pub async fn users(hub: &Hub, record: &ClusterRecord) -> Result<BTreeSet<String>, Error> {
    let mut users = BTreeSet::new();
    let trackers: Api<oam::ResourceTracker> = Api::all(hub.client.clone());
    let list = trackers
        .list(&ListParams::default())
        .await
        .map_err(Error::api("list ResourceTrackers"))?;
    for rt in &list.items {
        if rt
            .spec
            .managed_resources
            .iter()
            .any(|m| m.cluster_name() == record.name)
        {
            let labels = rt.metadata.labels.clone().unwrap_or_default();
            let app = match (labels.get(LABEL_APP_NAMESPACE), labels.get(LABEL_APP_NAME)) {
                (Some(ns), Some(n)) => format!("{ns}/{n}"),
                _ => rt.metadata.name.clone().unwrap_or_default(),
            };
            users.insert(app);
        }
    }
    let apps: Api<oam::Application> = Api::all(hub.client.clone());
    let list = apps
        .list(&ListParams::default())
        .await
        .map_err(Error::api("list Applications"))?;
    for app in &list.items {
        for p in app.spec.policies.iter().filter(|p| p.type_ == "topology") {
            let Some(props) = &p.properties else { continue };
            let Ok(topo) = serde_json::from_value::<oam::policy::TopologyPolicySpec>(props.clone())
            else {
                continue;
            };
            let selector = topo
                .cluster_label_selector
                .as_ref()
                .or(topo.cluster_selector.as_ref());
            let named = topo.clusters.iter().any(|c| c == &record.name);
            let selected = selector.is_some_and(|sel| {
                sel.iter()
                    .all(|(k, v)| record.labels.get(k).is_some_and(|x| x == v))
            });
            if named || selected {
                users.insert(format!("{}/{}", app.namespace(), app.name()));
            }
        }
    }
    Ok(users)
}

/// `sail cluster detach NAME [--force]`: refused while applications use the cluster.
pub async fn detach(hub: &Hub, name: &str, force: bool) -> Result<(), Error> {
    let record = must_get(hub, name).await?;
    let users = users(hub, &record).await?;
    if !users.is_empty() && !force {
        return Err(Error::Failed(format!(
            "cluster {name} is used by {} application(s): {}; delete them or change their topology first, or pass --force (their resources there are then left as they are)",
            users.len(),
            users.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    registry::remove(&hub.client, name).await?;
    if users.is_empty() {
        println!("cluster {name} detached");
    } else {
        println!(
            "cluster {name} detached although {} still use it (--force)",
            users.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// `sail cluster rename OLD NEW`: refused while applications use the cluster, since their
/// topology and trackers name it.
pub async fn rename(hub: &Hub, old: &str, new: &str) -> Result<(), Error> {
    let mut record = must_get(hub, old).await?;
    let users = users(hub, &record).await?;
    if !users.is_empty() {
        return Err(Error::Failed(format!(
            "cluster {old} is used by {}: renaming it would orphan what they deployed there",
            users.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    record.name = new.to_string();
    record.resource_version = None;
    registry::create(&hub.client, &record).await?;
    registry::remove(&hub.client, old).await?;
    println!("cluster {old} renamed to {new}");
    Ok(())
}

/// `sail cluster export-config [NAME...]`: a kubeconfig with one context per member, each
/// reaching the member through the hub's proxy with the hub's own credentials, so the member's
/// credentials never leave the hub.
pub async fn export_config(
    hub: &Hub,
    hub_kubeconfig: &Path,
    names: &[String],
) -> Result<(), Error> {
    let (records, _) = registry::list(&hub.client).await?;
    for n in names {
        if !records.iter().any(|r| &r.name == n) {
            return Err(Error::Failed(format!("cluster {n} is not registered")));
        }
    }
    let kc = Kubeconfig::read_from(hub_kubeconfig).map_err(|e| Error::File {
        path: hub_kubeconfig.display().to_string(),
        message: e.to_string(),
    })?;
    let ctx_name = kc.current_context.clone().unwrap_or_default();
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| Error::File {
            path: hub_kubeconfig.display().to_string(),
            message: "has no current context".to_string(),
        })?;
    let hub_cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| Error::File {
            path: hub_kubeconfig.display().to_string(),
            message: format!("has no cluster {:?}", ctx.cluster),
        })?;
    let server = hub_cluster
        .server
        .clone()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    let mut out = Kubeconfig {
        auth_infos: kc
            .auth_infos
            .iter()
            .filter(|u| Some(&u.name) == ctx.user.as_ref())
            .cloned()
            .collect(),
        ..Default::default()
    };
    for r in records
        .iter()
        .filter(|r| names.is_empty() || names.contains(&r.name))
    {
        let mut cluster = hub_cluster.clone();
        cluster.server = Some(format!("{server}{}{}/proxy", fleet::proxy::PREFIX, r.name));
        out.clusters.push(NamedCluster {
            name: r.name.clone(),
            cluster: Some(cluster),
            other: Default::default(),
        });
        let mut context = ctx.clone();
        context.cluster = r.name.clone();
        out.contexts.push(NamedContext {
            name: r.name.clone(),
            context: Some(context),
            other: Default::default(),
        });
    }
    out.current_context = out.contexts.first().map(|c| c.name.clone());
    let yaml = serde_saphyr::to_string(&out)
        .map_err(|e| Error::Failed(format!("cannot write the kubeconfig: {e}")))?;
    print!("{yaml}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_labels;

    #[test]
    fn labels_parse_and_refuse_reserved_keys() {
        let l = parse_labels(&["region=eu,tier=prod".into(), "zone=a".into()]).unwrap();
        assert_eq!(l.len(), 3);
        assert!(parse_labels(&["novalue".into()]).is_err());
        assert!(parse_labels(&["cluster.core.oam.dev/cluster-credential-type=x".into()]).is_err());
    }
}
