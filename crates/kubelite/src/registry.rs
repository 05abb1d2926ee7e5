//! Resource registry: the built-in kinds and those served from CustomResourceDefinitions.

use std::collections::BTreeMap;

use serde_json::Value;

/// A printer column (CRD additionalPrinterColumns or built-in).
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub description: String,
    pub priority: i64,
    pub format: String,
}

/// One served resource.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    /// Served versions; the first is the preferred/storage version.
    pub versions: Vec<String>,
    pub resource: String,
    pub kind: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    /// Scale subresource: (specReplicasPath, statusReplicasPath, labelSelectorPath)
    pub scale: Option<(String, String, Option<String>)>,
    /// True for kinds served from a CRD.
    pub custom: bool,
    /// openAPIV3Schema per version (CRDs only).
    pub schemas: BTreeMap<String, Value>,
    pub printer_columns: Vec<PrinterColumn>,
}

impl ResourceType {
    pub fn key(&self) -> String {
        gr_key(&self.group, &self.resource)
    }

    pub fn preferred_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    pub fn schema(&self, version: &str) -> Option<&Value> {
        self.schemas.get(version)
    }
}

pub fn gr_key(group: &str, resource: &str) -> String {
    format!("{group}/{resource}")
}

struct B {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    scale: bool,
    all: bool,
}

#[allow(clippy::too_many_arguments)]
const fn b(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    scale: bool,
    all: bool,
) -> B {
    B {
        group,
        version,
        resource,
        kind,
        namespaced,
        short,
        status,
        scale,
        all,
    }
}

const BUILTINS: &[B] = &[
    b(
        "",
        "v1",
        "namespaces",
        "Namespace",
        false,
        &["ns"],
        true,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "configmaps",
        "ConfigMap",
        true,
        &["cm"],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "secrets",
        "Secret",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "services",
        "Service",
        true,
        &["svc"],
        true,
        false,
        true,
    ),
    b(
        "",
        "v1",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        false,
        false,
        false,
    ),
    b("", "v1", "pods", "Pod", true, &["po"], true, false, true),
    b(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        true,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        false,
        &["pv"],
        true,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "nodes",
        "Node",
        false,
        &["no"],
        true,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
        &["rc"],
        true,
        true,
        true,
    ),
    b(
        "",
        "v1",
        "limitranges",
        "LimitRange",
        true,
        &["limits"],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "resourcequotas",
        "ResourceQuota",
        true,
        &["quota"],
        true,
        false,
        false,
    ),
    b(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        true,
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        &["sts"],
        true,
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        true,
        &["ds"],
        true,
        false,
        true,
    ),
    b(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        &["rs"],
        true,
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        true,
        &[],
        false,
        false,
        false,
    ),
    b("batch", "v1", "jobs", "Job", true, &[], true, false, true),
    b(
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        true,
        &["cj"],
        true,
        false,
        true,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
        true,
        false,
        false,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
        &[],
        false,
        false,
        false,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
        false,
        false,
        false,
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        false,
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        false,
        false,
        false,
    ),
    b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        true,
        false,
        false,
    ),
    b(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        true,
        false,
        true,
    ),
    b(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
        &["sc"],
        false,
        false,
        false,
    ),
    b(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        false,
        false,
        false,
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        &[],
        false,
        false,
        false,
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        &[],
        false,
        false,
        false,
    ),
];

/// Group order for discovery (like a real server: core groups first).
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
];

#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// key "group/resource"
    pub types: BTreeMap<String, ResourceType>,
}

impl Registry {
    pub fn builtin() -> Registry {
        let mut types = BTreeMap::new();
        for x in BUILTINS {
            let rt = ResourceType {
                group: x.group.to_string(),
                versions: vec![x.version.to_string()],
                resource: x.resource.to_string(),
                kind: x.kind.to_string(),
                singular: x.kind.to_lowercase(),
                namespaced: x.namespaced,
                short_names: x.short.iter().map(|s| s.to_string()).collect(),
                categories: if x.all {
                    vec!["all".to_string()]
                } else {
                    vec![]
                },
                has_status: x.status,
                scale: if x.scale {
                    Some((
                        ".spec.replicas".to_string(),
                        ".status.replicas".to_string(),
                        Some(".status.selector".to_string()),
                    ))
                } else {
                    None
                },
                custom: false,
                schemas: BTreeMap::new(),
                printer_columns: crate::table::builtin_columns(x.kind),
            };
            types.insert(rt.key(), rt);
        }
        Registry { types }
    }

    pub fn get(&self, group: &str, resource: &str) -> Option<&ResourceType> {
        self.types.get(&gr_key(group, resource))
    }

    /// Look up by URL parts; the version must be served.
    pub fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<&ResourceType> {
        self.get(group, resource)
            .filter(|rt| rt.versions.iter().any(|v| v == version))
    }

    #[allow(dead_code)]
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types.values().find(|rt| {
            rt.group == group && rt.kind == kind && rt.versions.iter().any(|v| v == version)
        })
    }

    /// Groups with their versions, in discovery order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for rt in self.types.values() {
            let entry = match out.iter_mut().find(|(g, _)| *g == rt.group) {
                Some(e) => e,
                None => {
                    out.push((rt.group.clone(), Vec::new()));
                    let n = out.len() - 1;
                    &mut out[n]
                }
            };
            for v in &rt.versions {
                if !entry.1.contains(v) {
                    entry.1.push(v.clone());
                }
            }
        }
        for (_, versions) in out.iter_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out.sort_by_key(|(g, _)| {
            let idx = GROUP_ORDER
                .iter()
                .position(|x| x == g)
                .unwrap_or(GROUP_ORDER.len());
            (idx, g.clone())
        });
        out
    }

    pub fn resources_in(&self, group: &str, version: &str) -> Vec<&ResourceType> {
        self.types
            .values()
            .filter(|rt| rt.group == group && rt.versions.iter().any(|v| v == version))
            .collect()
    }

    /// Register (or replace) the resource served by a CRD object. Returns the key.
    pub fn add_crd(&mut self, crd: &Value) -> Option<String> {
        let rt = crd_to_type(crd)?;
        let key = rt.key();
        // never let a CRD shadow a built-in
        if let Some(existing) = self.types.get(&key)
            && !existing.custom
        {
            return None;
        }
        self.types.insert(key.clone(), rt);
        Some(key)
    }

    pub fn remove_crd(&mut self, group: &str, resource: &str) {
        let key = gr_key(group, resource);
        if self.types.get(&key).is_some_and(|rt| rt.custom) {
            self.types.remove(&key);
        }
    }
}

/// Kubernetes version priority: v1 > v1beta1 > v1alpha1, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, n) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match n.parse::<u32>() {
        Ok(minor) => (level, major, minor),
        Err(_) => (0, 0, 0),
    }
}

#[allow(dead_code)]
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

fn crd_to_type(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?.to_string();
    let names = spec.get("names")?;
    let plural = names.get("plural")?.as_str()?.to_string();
    let kind = names.get("kind")?.as_str()?.to_string();
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let str_list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let short_names = str_list(names.get("shortNames"));
    let categories = str_list(names.get("categories"));
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let mut versions = Vec::new();
    let mut storage_first = None;
    let mut has_status = false;
    let mut scale = None;
    let mut schemas = BTreeMap::new();
    let mut printer_columns = Vec::new();
    for v in spec.get("versions")?.as_array()? {
        let name = v.get("name")?.as_str()?.to_string();
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_first = Some(name.clone());
        }
        if let Some(sub) = v.get("subresources") {
            if sub.get("status").is_some() {
                has_status = true;
            }
            if let Some(s) = sub.get("scale") {
                scale = Some((
                    s.get("specReplicasPath")
                        .and_then(Value::as_str)
                        .unwrap_or(".spec.replicas")
                        .to_string(),
                    s.get("statusReplicasPath")
                        .and_then(Value::as_str)
                        .unwrap_or(".status.replicas")
                        .to_string(),
                    s.get("labelSelectorPath")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                ));
            }
        }
        if let Some(s) = v.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            schemas.insert(name.clone(), s.clone());
        }
        if printer_columns.is_empty()
            && let Some(cols) = v.get("additionalPrinterColumns").and_then(Value::as_array)
        {
            for c in cols {
                printer_columns.push(PrinterColumn {
                    name: c
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    type_: c
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("string")
                        .to_string(),
                    json_path: c
                        .get("jsonPath")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    description: c
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    format: c
                        .get("format")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                });
            }
        }
        versions.push(name);
    }
    if versions.is_empty() {
        return None;
    }
    if let Some(s) = storage_first
        && let Some(pos) = versions.iter().position(|v| *v == s)
    {
        let v = versions.remove(pos);
        versions.insert(0, v);
    }
    Some(ResourceType {
        group,
        versions,
        resource: plural,
        kind,
        singular,
        namespaced,
        short_names,
        categories,
        has_status,
        scale,
        custom: true,
        schemas,
        printer_columns,
    })
}
