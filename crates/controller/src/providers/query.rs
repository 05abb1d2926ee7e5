//! The `query` provider: what an application has deployed, from its ResourceTrackers (the
//! latest revision's and the root one) and the live objects in each cluster.
//! `#ListResourcesInApp`, `#ListAppliedResources`/`#GetApplicationTree` (the tracked objects,
//! without a tree below them), `#CollectPods` (the Pods of tracked workloads, by their
//! selector), `#CollectServices` and `#CollectServiceEndpoints` (Services and Ingresses),
//! `#SearchEvents` (the Events about one object) and `#CollectLogsInPod` (a container's log).

use super::{Answer, Problem, invalid};
use crate::steps::Runner;
use oam::labels::{LABEL_APP_NAME, LABEL_APP_NAMESPACE};
use oam::{ManagedResource, ResourceTracker};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use workflow::task::Outcome;

pub(crate) async fn call(runner: &Runner<'_>, action: &str, params: &Value) -> Answer {
    let app = params.get("app").unwrap_or(&Value::Null);
    let name = app
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(runner.app.name());
    let namespace = app
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(runner.app.namespace());
    let filter = Filter::from(app.get("filter"));
    match action {
        "searchEvents" => return search_events(runner, params).await,
        "collectLogsInPod" => return collect_logs_in_pod(runner, params).await,
        "listResourcesInApp"
        | "collectResources"
        | "listAppliedResources"
        | "collectServiceEndpoints" => {}
        other => {
            return invalid(format!(
                "query has no operation {other:?} (listResourcesInApp, listAppliedResources, collectResources, collectServiceEndpoints, searchEvents, collectLogsInPod)"
            ));
        }
    }
    let resources: Vec<ManagedResource> = tracked(runner, name, namespace)
        .await?
        .into_iter()
        .filter(|r| filter.keeps(r))
        .collect();
    let list = match action {
        "listAppliedResources" => resources.iter().map(applied).collect(),
        "listResourcesInApp" => {
            let mut out = Vec::new();
            for r in &resources {
                if filter
                    .kind
                    .as_deref()
                    .is_some_and(|k| Some(k) != r.kind.as_deref())
                    || filter
                        .api_version
                        .as_deref()
                        .is_some_and(|a| Some(a) != r.api_version.as_deref())
                {
                    continue;
                }
                if let Some(object) = live(runner, r).await? {
                    out.push(entry(r, object));
                }
            }
            out
        }
        "collectResources" => collect(runner, &resources, &filter).await?,
        _ => endpoints(runner, &resources).await?,
    };
    Ok(Outcome::Returns(json!({ "list": list })))
}

/// `app.filter`.
#[derive(Default)]
struct Filter {
    cluster: Option<String>,
    cluster_namespace: Option<String>,
    components: Vec<String>,
    kind: Option<String>,
    api_version: Option<String>,
}

impl Filter {
    fn from(v: Option<&Value>) -> Filter {
        let s = |k: &str| {
            v.and_then(|f| f.get(k))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Filter {
            cluster: s("cluster"),
            cluster_namespace: s("clusterNamespace"),
            components: v
                .and_then(|f| f.get("components"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            kind: s("kind"),
            api_version: s("apiVersion"),
        }
    }

    /// Cluster, namespace and component; kind is the caller's business (Pods are not tracked).
    fn keeps(&self, r: &ManagedResource) -> bool {
        self.cluster
            .as_deref()
            .is_none_or(|c| c == r.cluster_name())
            && self
                .cluster_namespace
                .as_deref()
                .is_none_or(|n| Some(n) == r.namespace.as_deref())
            && (self.components.is_empty()
                || r.component
                    .as_deref()
                    .is_some_and(|c| self.components.iter().any(|x| x == c)))
    }
}

/// What the application has deployed: the latest revision's tracker and the root tracker.
async fn tracked(
    runner: &Runner<'_>,
    name: &str,
    namespace: &str,
) -> Result<Vec<ManagedResource>, Problem> {
    let selector = format!("{LABEL_APP_NAME}={name},{LABEL_APP_NAMESPACE}={namespace}");
    let items = runner
        .fleet
        .local()
        .list("core.oam.dev/v1beta1", "ResourceTracker", None, &selector)
        .await?;
    let mut trackers: Vec<ResourceTracker> = items
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    trackers.sort_by_key(|t| t.spec.application_generation);
    let root = trackers
        .iter()
        .filter(|t| t.spec.type_ == Some(oam::ResourceTrackerType::Root));
    let latest = trackers
        .iter()
        .rfind(|t| t.spec.type_ != Some(oam::ResourceTrackerType::Root));
    let mut by_key: BTreeMap<String, ManagedResource> = BTreeMap::new();
    for t in latest.into_iter().chain(root) {
        for r in &t.spec.managed_resources {
            if r.deleted {
                continue;
            }
            by_key.entry(r.key()).or_insert_with(|| r.clone());
        }
    }
    Ok(by_key.into_values().collect())
}

fn cluster_of(r: &ManagedResource) -> String {
    match r.cluster.as_deref() {
        None | Some("") => String::new(),
        Some(c) => c.to_string(),
    }
}

fn object_ref(r: &ManagedResource) -> fleet::ObjectRef {
    fleet::ObjectRef {
        api_version: r.api_version.clone().unwrap_or_default(),
        kind: r.kind.clone().unwrap_or_default(),
        namespace: r.namespace.clone().filter(|n| !n.is_empty()),
        name: r.name.clone().unwrap_or_default(),
    }
}

/// The live object, `None` when it is gone.
async fn live(runner: &Runner<'_>, r: &ManagedResource) -> Result<Option<Value>, Problem> {
    let cluster = runner.fleet.cluster_synced(&cluster_of(r)).await?;
    Ok(cluster.get(&object_ref(r)).await?)
}

fn entry(r: &ManagedResource, object: Value) -> Value {
    json!({
        "cluster": r.cluster_name(),
        "component": r.component.clone().unwrap_or_default(),
        "revision": "",
        "object": object,
    })
}

fn applied(r: &ManagedResource) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(r.name.clone().unwrap_or_default()));
    for (k, v) in [
        ("namespace", r.namespace.clone()),
        ("cluster", Some(r.cluster_name().to_string())),
        ("component", r.component.clone()),
        ("trait", r.trait_.clone()),
        ("kind", r.kind.clone()),
        ("apiVersion", r.api_version.clone()),
        ("uid", r.uid.clone()),
        ("resourceVersion", r.resource_version.clone()),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.insert(k.into(), json!(v));
        }
    }
    m.insert("latest".into(), json!(true));
    Value::Object(m)
}

/// `collectResources`: Services as tracked; Pods found under the tracked workloads (their
/// `spec.selector.matchLabels`, in their namespace and cluster).
async fn collect(
    runner: &Runner<'_>,
    resources: &[ManagedResource],
    filter: &Filter,
) -> Result<Vec<Value>, Problem> {
    let kind = filter.kind.as_deref().unwrap_or("Pod");
    let mut out = Vec::new();
    for r in resources {
        if r.kind.as_deref() == Some(kind) {
            if let Some(o) = live(runner, r).await? {
                out.push(entry(r, o));
            }
            continue;
        }
        if kind != "Pod" {
            continue;
        }
        let Some(workload) = live(runner, r).await? else {
            continue;
        };
        let Some(labels) = workload
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .filter(|l| !l.is_empty())
        else {
            continue;
        };
        let selector = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(",");
        let cluster = runner.fleet.cluster_synced(&cluster_of(r)).await?;
        let pods = cluster
            .list("v1", "Pod", r.namespace.as_deref(), &selector)
            .await?;
        out.extend(pods.into_iter().map(|p| entry(r, p)));
    }
    Ok(out)
}

/// `collectServiceEndpoints`: an endpoint per port of each Service (ClusterIP and ExternalName:
/// `name.namespace`, inner; LoadBalancer: its ingress addresses; NodePort: the node port, no
/// host) and per path of each Ingress rule (80, or 443 with TLS).
async fn endpoints(
    runner: &Runner<'_>,
    resources: &[ManagedResource],
) -> Result<Vec<Value>, Problem> {
    let mut out = Vec::new();
    for r in resources {
        let kind = r.kind.as_deref().unwrap_or_default();
        if kind != "Service" && kind != "Ingress" {
            continue;
        }
        let Some(o) = live(runner, r).await? else {
            continue;
        };
        let reference = json!({
            "apiVersion": r.api_version, "kind": kind,
            "namespace": r.namespace, "name": r.name,
            "uid": o.pointer("/metadata/uid"),
            "resourceVersion": o.pointer("/metadata/resourceVersion"),
        });
        let mut push = |endpoint: Value| {
            out.push(json!({
                "endpoint": endpoint,
                "ref": reference,
                "cluster": r.cluster_name(),
                "component": r.component.clone().unwrap_or_default(),
            }));
        };
        if kind == "Service" {
            let name = r.name.clone().unwrap_or_default();
            let ns = r.namespace.clone().unwrap_or_default();
            let type_ = o
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            let ingress: Vec<String> = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .flat_map(|i| [i.get("hostname"), i.get("ip")])
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            for p in o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                let ep = |host: &str, port: i64, inner: bool| {
                    json!({
                        "protocol": p.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
                        "appProtocol": app_protocol(port),
                        "host": host,
                        "port": port,
                        "portName": p.get("name").and_then(Value::as_str).unwrap_or(""),
                        "inner": inner,
                    })
                };
                match type_ {
                    "LoadBalancer" => {
                        for h in &ingress {
                            push(ep(h, port, false));
                        }
                    }
                    "NodePort" => {
                        let node_port = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
                        push(ep("", node_port, false));
                    }
                    _ => push(ep(&format!("{name}.{ns}"), port, true)),
                }
            }
        } else {
            let tls = o.pointer("/spec/tls").and_then(Value::as_array);
            for rule in o
                .pointer("/spec/rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let host = rule.get("host").and_then(Value::as_str).unwrap_or("");
                let https = tls.is_some_and(|t| {
                    t.iter().any(|x| {
                        x.get("hosts")
                            .and_then(Value::as_array)
                            .is_none_or(|h| h.is_empty() || h.iter().any(|h| h == host))
                    })
                });
                for path in rule
                    .pointer("/http/paths")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    push(json!({
                        "protocol": "TCP",
                        "appProtocol": if https { "https" } else { "http" },
                        "host": host,
                        "port": if https { 443 } else { 80 },
                        "path": path.get("path").and_then(Value::as_str).unwrap_or(""),
                    }));
                }
            }
        }
    }
    Ok(out)
}

/// The application protocol a well-known port suggests (RFC 6335).
fn app_protocol(port: i64) -> &'static str {
    match port {
        80 | 8080 => "http",
        443 => "https",
        3306 => "mysql",
        6379 => "redis",
        _ => "",
    }
}

/// The cluster an operation names (`""` is the hub).
async fn cluster_of_params(
    runner: &Runner<'_>,
    params: &Value,
) -> Result<std::sync::Arc<fleet::Cluster>, Problem> {
    let name = params.get("cluster").and_then(Value::as_str).unwrap_or("");
    Ok(runner.fleet.cluster_synced(name).await?)
}

/// `#SearchEvents`: the core/v1 Events whose `involvedObject` is `value` (by kind, name,
/// namespace and, when it has one, uid) on `cluster`. A list the cluster refuses is
/// `$returns.err`, as in KubeVela.
async fn search_events(runner: &Runner<'_>, params: &Value) -> Answer {
    let value = params.get("value").unwrap_or(&Value::Null);
    let text = |p: &str| {
        value
            .pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(kind), Some(name)) = (text("/kind"), text("/metadata/name")) else {
        return invalid("query.searchEvents: value must be an object with kind and metadata.name");
    };
    let namespace = text("/metadata/namespace").unwrap_or(runner.app.namespace());
    let mut fields = vec![
        format!("involvedObject.kind={kind}"),
        format!("involvedObject.name={name}"),
        format!("involvedObject.namespace={namespace}"),
    ];
    if let Some(uid) = text("/metadata/uid") {
        fields.push(format!("involvedObject.uid={uid}"));
    }
    let cluster = cluster_of_params(runner, params).await?;
    let api: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(cluster.client().clone(), namespace);
    match api
        .list(&kube::api::ListParams::default().fields(&fields.join(",")))
        .await
    {
        Ok(events) => {
            let list: Vec<Value> = events
                .items
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .collect();
            Ok(Outcome::Returns(json!({ "list": list })))
        }
        Err(kube::Error::Api(e)) => Ok(Outcome::Returns(json!({
            "list": [],
            "err": format!("events of {kind} {namespace}/{name} on {}: {}", cluster.name(), e.message),
        }))),
        Err(e) => Err(Problem::Retry(format!(
            "query.searchEvents: cluster {}: {e}",
            cluster.name()
        ))),
    }
}

/// Percent-encode a query parameter's value.
fn query_escape(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `#CollectLogsInPod`: the log of a container (`options`: `container`, `previous`,
/// `sinceSeconds`, `sinceTime`, `timestamps`, `tailLines`, `limitBytes`) as KubeVela gives it:
/// `outputs.logs` base64-encoded, `outputs.info.fromDate` (`sinceTime`, now minus
/// `sinceSeconds`, or the Pod's creation) and `toDate` (now); a Pod or log that cannot be read
/// is `outputs.err`.
async fn collect_logs_in_pod(runner: &Runner<'_>, params: &Value) -> Answer {
    use base64::Engine;
    let text = |k: &str| {
        params
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(namespace), Some(pod)) = (text("namespace"), text("pod")) else {
        return invalid("query.collectLogsInPod: namespace and pod must be given");
    };
    let options = params.get("options").unwrap_or(&Value::Null);
    let mut query: Vec<String> = Vec::new();
    for (key, param) in [("container", "container"), ("sinceTime", "sinceTime")] {
        if let Some(v) = options
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            query.push(format!("{param}={}", query_escape(v)));
        }
    }
    for key in ["sinceSeconds", "tailLines", "limitBytes"] {
        match options.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => query.push(format!("{key}={n}")),
                _ => {
                    return invalid(format!(
                        "query.collectLogsInPod: options.{key} must be a whole number of at least 0, found {v}"
                    ));
                }
            },
        }
    }
    for key in ["previous", "timestamps"] {
        if options.get(key).and_then(Value::as_bool) == Some(true) {
            query.push(format!("{key}=true"));
        }
    }
    let since_time = options
        .get("sinceTime")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    if let Some(t) = since_time
        && t.parse::<k8s_openapi::jiff::Timestamp>().is_err()
    {
        return invalid(format!(
            "query.collectLogsInPod: options.sinceTime {t:?} is not an RFC 3339 time"
        ));
    }
    let cluster = cluster_of_params(runner, params).await?;
    let client = cluster.client().clone();
    let mut errors = String::new();
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.clone(), namespace);
    let created = match pods.get(pod).await {
        Ok(p) => p.metadata.creation_timestamp.map(|t| t.0.to_string()),
        Err(kube::Error::Api(e)) => {
            errors.push_str(&format!("failed to get pod: {}; ", e.message));
            None
        }
        Err(e) => {
            return Err(Problem::Retry(format!(
                "query.collectLogsInPod: cluster {}: {e}",
                cluster.name()
            )));
        }
    };
    let mut path = format!(
        "/api/v1/namespaces/{}/pods/{}/log",
        query_escape(namespace),
        query_escape(pod)
    );
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| Problem::Invalid(format!("query.collectLogsInPod: {e}")))?;
    let logs = match client.request_text(request).await {
        Ok(t) => Some(t),
        Err(kube::Error::Api(e)) => {
            errors.push_str(&format!("failed to get stream logs {}; ", e.message));
            None
        }
        Err(e) => {
            return Err(Problem::Retry(format!(
                "query.collectLogsInPod: cluster {}: {e}",
                cluster.name()
            )));
        }
    };
    let mut outputs = Map::new();
    if let (Some(logs), Some(created)) = (logs, created) {
        let now = k8s_openapi::jiff::Timestamp::now();
        let since_seconds = options.get("sinceSeconds").and_then(Value::as_i64);
        let from = match (since_time, since_seconds) {
            (Some(t), _) => t.to_string(),
            (None, Some(secs)) => now
                .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(secs))
                .map(|t| t.to_string())
                .unwrap_or(created),
            (None, None) => created,
        };
        outputs.insert(
            "logs".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(logs.as_bytes())),
        );
        outputs.insert(
            "info".into(),
            json!({"fromDate": from, "toDate": now.to_string()}),
        );
    }
    if !errors.is_empty() {
        outputs.insert("err".into(), json!(errors));
    }
    Ok(Outcome::Returns(json!({ "outputs": outputs })))
}
