//! Kubernetes write semantics on top of the store: create, update, patch, delete.

use serde_json::{Map, Value, json};

use crate::apply::{self, Rules};
use crate::patch;
use crate::registry::ResourceType;
use crate::status::{ApiError, ApiResult};
use crate::store::State;
use crate::util::*;

pub const CRD_KEY: &str = "apiextensions.k8s.io/customresourcedefinitions";
pub const NS_KEY: &str = "/namespaces";
pub const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub field_manager: String,
    /// The version the request came in on (apiVersion recorded in managedFields).
    pub version: String,
    /// fieldValidation=Strict: unknown fields are an error instead of being pruned.
    pub strict: bool,
}

/// With fieldValidation=Strict, fields a CRD schema does not declare are rejected (400).
fn check_strict(rt: &ResourceType, obj: &Value, opts: &WriteOpts) -> ApiResult<()> {
    if !opts.strict || !rt.custom {
        return Ok(());
    }
    let Some(schema) = rt.schema(rt.preferred_version()) else {
        return Ok(());
    };
    let unknown = crate::openapi::unknown_fields(schema, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    let list = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Err(ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {list}",
        rt.kind,
        rt.api_version(&opts.version),
        rt.kind
    )))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Main,
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    #[default]
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub dry_run: bool,
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

fn rules(rt: &ResourceType, sub: Sub) -> Rules<'_> {
    Rules {
        assoc_lists: !rt.custom,
        skip_status: rt.has_status && sub == Sub::Main,
        only_status: sub == Sub::Status,
        schema: if rt.custom {
            rt.schema(rt.preferred_version())
        } else {
            None
        },
    }
}

fn version_of(rt: &ResourceType, opts: &WriteOpts) -> String {
    if opts.version.is_empty() {
        rt.api_version(rt.preferred_version())
    } else {
        rt.api_version(&opts.version)
    }
}

fn check_kind(rt: &ResourceType, obj: &Value, version: &str) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            obj.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
            rt.api_version(version)
        ))
        .with_message_if(
            true,
            format!(
                "Kind {k} does not match resource {} (kind {})",
                rt.resource, rt.kind
            ),
        ));
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && av != rt.api_version(version)
        && !rt.versions.iter().any(|v| rt.api_version(v) == av)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version(version)
        )));
    }
    Ok(())
}

impl ApiError {
    fn with_message_if(mut self, cond: bool, msg: String) -> ApiError {
        if cond {
            self.message = msg;
        }
        self
    }
}

fn validate_object(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    let name = name_of(obj);
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push((
            "metadata.name".to_string(),
            "Required value: name or generateName is required".to_string(),
        ));
    } else if rt.kind == "Namespace" || rt.kind == "Service" {
        if !valid_dns_label(name) {
            causes.push(("metadata.name".to_string(), format!("Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")));
        }
    } else if !rt.kind.contains("Role") && !valid_dns_subdomain(name) && !name.contains(':') {
        causes.push(("metadata.name".to_string(), format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")));
    }
    if let Some(labels) = obj.pointer("/metadata/labels") {
        match labels.as_object() {
            Some(m) => {
                for (k, v) in m {
                    if !v.is_string() {
                        causes.push((
                            format!("metadata.labels.{k}"),
                            "Invalid value: label values must be strings".into(),
                        ));
                    }
                }
            }
            None if !labels.is_null() => causes.push((
                "metadata.labels".into(),
                "Invalid value: must be an object".into(),
            )),
            None => {}
        }
    }
    if let Some(ann) = obj.pointer("/metadata/annotations")
        && !ann.is_null()
        && ann
            .as_object()
            .is_none_or(|m| m.values().any(|v| !v.is_string()))
    {
        causes.push((
            "metadata.annotations".into(),
            "Invalid value: annotations must be a map of strings".into(),
        ));
    }
    if rt.custom
        && let Some(schema) = rt.schema(rt.preferred_version())
    {
        crate::openapi::validate(schema, obj, "", &mut causes, true);
    }
    if rt.kind == "CustomResourceDefinition" {
        validate_crd(obj, &mut causes);
    }
    if rt.kind == "Deployment" && !rt.custom {
        if obj.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate")
            && obj.pointer("/spec/strategy/rollingUpdate").is_some()
        {
            causes.push((
                "spec.strategy.rollingUpdate".into(),
                "Forbidden: may not be specified when strategy `type` is 'Recreate'".into(),
            ));
        }
        if obj.pointer("/spec/selector").is_none() {
            causes.push(("spec.selector".into(), "Required value".into()));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.group, &rt.kind, name, causes))
    }
}

fn validate_crd(obj: &Value, causes: &mut Vec<(String, String)>) {
    let spec = obj.get("spec");
    let group = spec
        .and_then(|s| s.get("group"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = spec
        .and_then(|s| s.pointer("/names/plural"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if group.is_empty() {
        causes.push(("spec.group".into(), "Required value".into()));
    }
    if plural.is_empty() {
        causes.push(("spec.names.plural".into(), "Required value".into()));
    }
    if spec
        .and_then(|s| s.pointer("/names/kind"))
        .and_then(Value::as_str)
        .is_none()
    {
        causes.push(("spec.names.kind".into(), "Required value".into()));
    }
    if !group.is_empty() && !plural.is_empty() && name_of(obj) != format!("{plural}.{group}") {
        causes.push((
            "metadata.name".into(),
            format!(
                "Invalid value: {:?}: must be spec.names.plural+\".\"+spec.group",
                name_of(obj)
            ),
        ));
    }
    if spec
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .is_none_or(|v| v.is_empty())
    {
        causes.push((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
}

/// Apply kind-specific defaults (the parts of real defaulting that clients notice).
/// Container defaults a real API server fills in (protocol, imagePullPolicy, …).
fn default_pod_spec(spec: Option<&mut Value>, restart_always: bool) {
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                let tagless =
                    !image.rsplit('/').next().unwrap_or("").contains(':') && !image.contains('@');
                let policy = if tagless || image.ends_with(":latest") {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                c.entry("imagePullPolicy").or_insert_with(|| json!(policy));
                c.entry("terminationMessagePath")
                    .or_insert_with(|| json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy")
                    .or_insert_with(|| json!("File"));
                c.entry("resources").or_insert_with(|| json!({}));
                if let Some(Value::Array(ports)) = c.get_mut("ports") {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert_with(|| json!("TCP"));
                    }
                }
            }
        }
    }
    if restart_always {
        spec.entry("restartPolicy")
            .or_insert_with(|| json!("Always"));
    }
    spec.entry("dnsPolicy")
        .or_insert_with(|| json!("ClusterFirst"));
    spec.entry("schedulerName")
        .or_insert_with(|| json!("default-scheduler"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert_with(|| json!(30));
    spec.entry("securityContext").or_insert_with(|| json!({}));
}

fn defaults(st: &State, rt: &ResourceType, obj: &mut Value, creating: bool) {
    if !rt.custom {
        match rt.kind.as_str() {
            "Pod" => default_pod_spec(obj.get_mut("spec"), true),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
                default_pod_spec(obj.pointer_mut("/spec/template/spec"), true)
            }
            "Job" => default_pod_spec(obj.pointer_mut("/spec/template/spec"), false),
            "CronJob" => default_pod_spec(
                obj.pointer_mut("/spec/jobTemplate/spec/template/spec"),
                false,
            ),
            _ => {}
        }
    }
    if rt.custom {
        if let Some(schema) = rt.schema(rt.preferred_version()) {
            crate::openapi::apply_defaults(schema, obj);
        }
        return;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Secret") => {
            if obj.get("type").is_none() {
                obj["type"] = json!("Opaque");
            }
            if let Some(Value::Object(sd)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                use base64::Engine;
                let data = obj
                    .as_object_mut()
                    .map(|m| m.entry("data").or_insert_with(|| json!({})));
                if let Some(Value::Object(d)) = data {
                    for (k, v) in sd {
                        let s = v.as_str().unwrap_or("");
                        d.insert(
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(s)),
                        );
                    }
                }
            }
        }
        ("", "Service") => {
            let spec = obj
                .as_object_mut()
                .map(|m| m.entry("spec").or_insert_with(|| json!({})));
            if let Some(Value::Object(spec)) = spec {
                let ty = spec
                    .entry("type")
                    .or_insert_with(|| json!("ClusterIP"))
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                spec.entry("sessionAffinity")
                    .or_insert_with(|| json!("None"));
                if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                    for p in ports.iter_mut() {
                        if let Some(pm) = p.as_object_mut() {
                            pm.entry("protocol").or_insert_with(|| json!("TCP"));
                            if let Some(port) = pm.get("port").cloned() {
                                pm.entry("targetPort").or_insert(port);
                            }
                        }
                    }
                }
                if creating
                    && ty != "ExternalName"
                    && spec.get("clusterIP").is_none_or(|v| v.as_str() == Some(""))
                {
                    let ip = allocate_ip(st);
                    spec.insert("clusterIP".into(), json!(ip));
                    spec.insert("clusterIPs".into(), json!([ip]));
                }
                spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
                spec.entry("ipFamilyPolicy")
                    .or_insert_with(|| json!("SingleStack"));
                spec.entry("internalTrafficPolicy")
                    .or_insert_with(|| json!("Cluster"));
            }
        }
        ("apps", "Deployment") | ("apps", "StatefulSet") | ("apps", "ReplicaSet") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("replicas").or_insert_with(|| json!(1));
                spec.entry("revisionHistoryLimit")
                    .or_insert_with(|| json!(10));
                if rt.kind == "Deployment" {
                    spec.entry("progressDeadlineSeconds")
                        .or_insert_with(|| json!(600));
                    spec.entry("strategy").or_insert_with(
                        || json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
                    );
                }
            }
        }
        ("", "Namespace") => {
            if creating {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
                obj["status"] = json!({"phase": "Active"});
            }
            let name = name_of(obj).to_string();
            let m = meta_mut(obj);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        ("", "Pod") => {
            if creating && obj.get("status").is_none_or(|s| s.get("phase").is_none()) {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("restartPolicy")
                    .or_insert_with(|| json!("Always"));
                spec.entry("dnsPolicy")
                    .or_insert_with(|| json!("ClusterFirst"));
                spec.entry("schedulerName")
                    .or_insert_with(|| json!("default-scheduler"));
                spec.entry("serviceAccountName")
                    .or_insert_with(|| json!("default"));
            }
        }
        ("batch", "Job") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("backoffLimit").or_insert_with(|| json!(6));
                spec.entry("completions").or_insert_with(|| json!(1));
                spec.entry("parallelism").or_insert_with(|| json!(1));
            }
        }
        _ => {}
    }
}

fn allocate_ip(st: &State) -> String {
    let used: Vec<String> = st
        .list("/services", None)
        .iter()
        .filter_map(|s| {
            s.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    for _ in 0..1000 {
        let ip = format!(
            "10.96.{}.{}",
            rand::random_range(0..=255u8),
            rand::random_range(2..=254u8)
        );
        if !used.contains(&ip) {
            return ip;
        }
    }
    "10.96.0.2".to_string()
}

fn check_namespace(st: &State, rt: &ResourceType, ns: &str) -> ApiResult<()> {
    if !rt.namespaced {
        return Ok(());
    }
    match st.get(NS_KEY, "", ns) {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(n) if is_deleting(n) => Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            rt.resource,
            name_of(n)
        ))
        .with_reason("Forbidden")),
        Some(_) => Ok(()),
    }
}

impl ApiError {
    fn with_reason(mut self, r: &'static str) -> ApiError {
        self.reason = r;
        self
    }
}

/// Create an object.
pub fn create(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    mut obj: Value,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let version = if opts.version.is_empty() {
        rt.preferred_version().to_string()
    } else {
        opts.version.clone()
    };
    check_kind(rt, &obj, &version)?;
    check_strict(rt, &obj, opts)?;
    let body_ns = meta_str(&obj, "namespace").to_string();
    if rt.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    {
        let m = meta_mut(&mut obj);
        if m.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && let Some(g) = m.get("generateName").and_then(Value::as_str)
            && !g.is_empty()
        {
            let n = format!("{g}{}", random_suffix(5));
            m.insert("name".into(), json!(n));
        }
    }
    obj["apiVersion"] = json!(rt.api_version(&version));
    obj["kind"] = json!(rt.kind);
    if rt.has_status
        && rt.kind != "Pod"
        && rt.kind != "Node"
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    defaults(st, rt, &mut obj, true);
    validate_object(rt, &obj)?;
    let name = name_of(&obj).to_string();
    check_namespace(st, rt, ns)?;
    if st.get(&rt.key(), ns, &name).is_some() {
        return Err(ApiError::already_exists(&rt.group, &rt.resource, &name));
    }
    {
        let m = meta_mut(&mut obj);
        if rt.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.insert("generation".into(), json!(1));
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        m.remove("selfLink");
        m.remove("managedFields");
    }
    if !opts.field_manager.is_empty() {
        apply::record_update(
            None,
            &mut obj,
            &opts.field_manager,
            &version_of(rt, opts),
            "",
            rules(rt, Sub::Main),
        );
    }
    if opts.dry_run {
        return Ok(obj);
    }
    let out = st.put(&rt.key(), ns, &name, obj)?;
    after_write(st, rt, &out);
    Ok(out)
}

fn after_write(st: &mut State, rt: &ResourceType, obj: &Value) {
    if rt.key() == CRD_KEY {
        st.registry.add_crd(obj);
        // CRD status: Established
        if obj.pointer("/status/conditions").is_none() {
            let mut o = obj.clone();
            let names = o.pointer("/spec/names").cloned().unwrap_or(json!({}));
            let now = now_rfc3339();
            o["status"] = json!({
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}
                ],
                "acceptedNames": names,
                "storedVersions": [o.pointer("/spec/versions/0/name").cloned().unwrap_or(json!("v1"))],
            });
            let name = name_of(&o).to_string();
            let _ = st.put(CRD_KEY, "", &name, o);
        }
    }
}

fn after_remove(st: &mut State, rt: &ResourceType, obj: &Value) {
    if rt.key() == CRD_KEY {
        let group = obj
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("");
        let plural = obj
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("");
        let key = crate::registry::gr_key(group, plural);
        if st.registry.types.get(&key).is_some_and(|t| t.custom) {
            let names: Vec<(String, String)> = st
                .objects
                .get(&key)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for (ns, n) in names {
                let _ = st.remove(&key, &ns, &n);
            }
            st.registry.remove_crd(group, plural);
        }
    }
}

/// No-op writes (equal but for managedFields timestamps) are not stored: no new
/// resourceVersion, no watch event, like a real API server.
fn unchanged(new: &Value, old: &Value) -> bool {
    if new == old {
        return true;
    }
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(Value::Array(entries)) = v.pointer_mut("/metadata/managedFields") {
            for e in entries.iter_mut().filter_map(Value::as_object_mut) {
                e.remove("time");
            }
        }
        v
    };
    strip(new) == strip(old)
}

/// Write `new` over `old` (already validated as an update), handling finalization.
fn commit(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    new: Value,
    dry_run: bool,
) -> ApiResult<Value> {
    if dry_run {
        return Ok(new);
    }
    if is_deleting(&new) && finalizers(&new).is_empty() && rt.kind != "Namespace" {
        let out = st.remove(&rt.key(), ns, name)?;
        if let Some(o) = &out {
            after_remove(st, rt, o);
        }
        return Ok(out.unwrap_or(new));
    }
    let out = st.put(&rt.key(), ns, name, new)?;
    after_write(st, rt, &out);
    Ok(out)
}

/// Carry over what an update may not change and bump generation.
fn prepare_update(
    st: &State,
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    sub: Sub,
) -> ApiResult<Value> {
    if !new.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    if sub == Sub::Status {
        let mut out = old.clone();
        match new.get("status") {
            Some(s) => out["status"] = s.clone(),
            None => {
                if let Some(m) = out.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        // managedFields and rv from the request
        if let Some(mf) = new.pointer("/metadata/managedFields").cloned() {
            meta_mut(&mut out).insert("managedFields".into(), mf);
        }
        return Ok(out);
    }
    let old_meta = meta(old).cloned().unwrap_or_default();
    new["apiVersion"] = old
        .get("apiVersion")
        .cloned()
        .unwrap_or(json!(rt.api_version(rt.preferred_version())));
    new["kind"] = json!(rt.kind);
    {
        let m = meta_mut(&mut new);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "generation",
        ] {
            match old_meta.get(k) {
                Some(v) => {
                    m.insert(k.to_string(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        m.remove("selfLink");
    }
    if rt.has_status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    // deleting objects may only lose finalizers
    if is_deleting(old) {
        let of = finalizers(old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !of.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::forbidden(format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
            )));
        }
    }
    defaults(st, rt, &mut new, false);
    if rt.kind == "Service"
        && let (Some(o), n) = (
            old.pointer("/spec/clusterIP"),
            new.pointer("/spec/clusterIP"),
        )
        && n.is_none_or(|v| v.as_str() == Some(""))
    {
        new["spec"]["clusterIP"] = o.clone();
        if let Some(ips) = old.pointer("/spec/clusterIPs") {
            new["spec"]["clusterIPs"] = ips.clone();
        }
    }
    validate_object(rt, &new)?;
    if !spec_equal(old, &new) {
        let g = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    Ok(new)
}

fn check_rv(rt: &ResourceType, old: &Value, new: &Value, name: &str) -> ApiResult<()> {
    let want = meta_str(new, "resourceVersion");
    if !want.is_empty() && want != meta_str(old, "resourceVersion") {
        return Err(ApiError::stale(&rt.group, &rt.resource, name));
    }
    Ok(())
}

/// PUT.
pub fn update(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    obj: Value,
    sub: Sub,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let version = if opts.version.is_empty() {
        rt.preferred_version().to_string()
    } else {
        opts.version.clone()
    };
    check_kind(rt, &obj, &version)?;
    check_strict(rt, &obj, opts)?;
    let body_name = name_of(&obj);
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let body_ns = meta_str(&obj, "namespace");
    if rt.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let Some(old) = st.get(&rt.key(), ns, name).cloned() else {
        return Err(ApiError::not_found(&rt.group, &rt.resource, name));
    };
    check_rv(rt, &old, &obj, name)?;
    let mut new = prepare_update(st, rt, &old, obj, sub)?;
    let sr = if sub == Sub::Status { "status" } else { "" };
    if !opts.field_manager.is_empty() {
        apply::record_update(
            Some(&old),
            &mut new,
            &opts.field_manager,
            &version_of(rt, opts),
            sr,
            rules(rt, sub),
        );
    }
    if unchanged(&new, &old) {
        return Ok(old);
    }
    commit(st, rt, ns, name, new, opts.dry_run)
}

/// PATCH (all four types).
#[allow(clippy::too_many_arguments)]
pub fn patch(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    ptype: PatchType,
    body: &Value,
    sub: Sub,
    force: bool,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let old = st.get(&rt.key(), ns, name).cloned();
    let sr = if sub == Sub::Status { "status" } else { "" };
    let version = if opts.version.is_empty() {
        rt.preferred_version().to_string()
    } else {
        opts.version.clone()
    };
    if ptype == PatchType::Apply {
        if opts.field_manager.is_empty() {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![(
                    "fieldManager".into(),
                    "Required value: is required for apply patch".into(),
                )],
            ));
        }
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of an apply patch must be an object",
            ));
        }
        if body
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            || body
                .get("kind")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(
                "apiVersion and kind must be set in an apply configuration",
            ));
        }
        check_kind(rt, body, &version)?;
        check_strict(rt, body, opts)?;
        let bn = name_of(body);
        if !bn.is_empty() && bn != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({bn}) does not match the name on the URL ({name})"
            )));
        }
        let r = rules(rt, sub);
        match old {
            None => {
                if sub == Sub::Status {
                    return Err(ApiError::not_found(&rt.group, &rt.resource, name));
                }
                let mut obj = apply::apply(
                    None,
                    body,
                    &opts.field_manager,
                    force,
                    &rt.api_version(&version),
                    sr,
                    r,
                )?;
                meta_mut(&mut obj).insert("name".into(), json!(name));
                let managed = obj.pointer("/metadata/managedFields").cloned();
                let mut o2 = WriteOpts {
                    field_manager: String::new(),
                    ..opts.clone()
                };
                o2.version = version.clone();
                let mut created = create_inner(st, rt, ns, obj, &o2, managed)?;
                if opts.dry_run {
                    meta_mut(&mut created).remove("resourceVersion");
                }
                return Ok(created);
            }
            Some(old) => {
                if let Some(rv) = body
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    && rv != meta_str(&old, "resourceVersion")
                {
                    return Err(ApiError::stale(&rt.group, &rt.resource, name));
                }
                let merged = apply::apply(
                    Some(&old),
                    body,
                    &opts.field_manager,
                    force,
                    &rt.api_version(&version),
                    sr,
                    r,
                )?;
                let managed = merged.pointer("/metadata/managedFields").cloned();
                let mut new = prepare_update(st, rt, &old, merged, sub)?;
                if let Some(mf) = managed {
                    meta_mut(&mut new).insert("managedFields".into(), mf);
                }
                if unchanged(&new, &old) {
                    return Ok(old);
                }
                return commit(st, rt, ns, name, new, opts.dry_run);
            }
        }
    }
    let Some(old) = old else {
        return Err(ApiError::not_found(&rt.group, &rt.resource, name));
    };
    let mut patched = old.clone();
    match ptype {
        PatchType::Merge => {
            if !body.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            patch::merge_patch(&mut patched, body)
        }
        PatchType::Json => patch::json_patch(&mut patched, body)?,
        PatchType::Strategic => {
            if rt.custom {
                return Err(ApiError::unsupported_media(
                    "application/strategic-merge-patch+json",
                ));
            }
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            patched = patch::strategic_merge(&old, body)?;
        }
        PatchType::Apply => {}
    }
    check_strict(rt, &patched, opts)?;
    if name_of(&patched) != name {
        return Err(ApiError::bad_request(
            "metadata.name cannot be changed by a patch",
        ));
    }
    check_rv(rt, &old, &patched, name)?;
    meta_mut(&mut patched).insert(
        "resourceVersion".into(),
        json!(meta_str(&old, "resourceVersion")),
    );
    let mut new = prepare_update(st, rt, &old, patched, sub)?;
    if !opts.field_manager.is_empty() {
        apply::record_update(
            Some(&old),
            &mut new,
            &opts.field_manager,
            &version_of(rt, opts),
            sr,
            rules(rt, sub),
        );
    }
    if unchanged(&new, &old) {
        return Ok(old);
    }
    commit(st, rt, ns, name, new, opts.dry_run)
}

fn create_inner(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    obj: Value,
    opts: &WriteOpts,
    managed: Option<Value>,
) -> ApiResult<Value> {
    // create, then restore the apply managedFields (create clears them)
    let mut o = opts.clone();
    o.dry_run = true;
    let mut prepared = create(st, rt, ns, obj, &o)?;
    if let Some(mf) = managed {
        meta_mut(&mut prepared).insert("managedFields".into(), mf);
    }
    if opts.dry_run {
        return Ok(prepared);
    }
    let name = name_of(&prepared).to_string();
    let out = st.put(&rt.key(), ns, &name, prepared)?;
    after_write(st, rt, &out);
    Ok(out)
}

/// DELETE. Returns the object (with deletionTimestamp when finalizers hold it).
pub fn delete(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> ApiResult<Value> {
    let Some(old) = st.get(&rt.key(), ns, name).cloned() else {
        return Err(ApiError::not_found(&rt.group, &rt.resource, name));
    };
    if let Some(uid) = &opts.precondition_uid
        && uid != uid_of(&old)
    {
        return Err(ApiError::conflict(
            &rt.group,
            &rt.resource,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                uid_of(&old)
            ),
        ));
    }
    if let Some(rv) = &opts.precondition_rv
        && rv != meta_str(&old, "resourceVersion")
    {
        return Err(ApiError::conflict(
            &rt.group,
            &rt.resource,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta_str(&old, "resourceVersion")
            ),
        ));
    }
    if rt.kind == "Namespace" {
        if PROTECTED_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        if is_deleting(&old) {
            return Ok(old);
        }
        let mut new = old.clone();
        meta_mut(&mut new).insert("deletionTimestamp".into(), json!(now_rfc3339()));
        new["status"] = json!({"phase": "Terminating"});
        if opts.dry_run {
            return Ok(new);
        }
        return st.put(&rt.key(), ns, name, new);
    }
    let mut fins = finalizers(&old);
    match opts.propagation {
        Some(Propagation::Foreground) if !fins.iter().any(|f| f == "foregroundDeletion") => {
            fins.push("foregroundDeletion".into())
        }
        Some(Propagation::Orphan) if !fins.iter().any(|f| f == "orphan") => {
            fins.push("orphan".into())
        }
        _ => {}
    }
    if fins.is_empty() {
        if opts.dry_run {
            return Ok(old);
        }
        let out = st.remove(&rt.key(), ns, name)?.unwrap_or(old);
        after_remove(st, rt, &out);
        return Ok(out);
    }
    let mut new = old.clone();
    set_finalizers(&mut new, &fins);
    if !is_deleting(&new) {
        let m = meta_mut(&mut new);
        m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    if new == old || opts.dry_run {
        return Ok(new);
    }
    st.put(&rt.key(), ns, name, new)
}

/// Ensure an object exists (used at start for namespaces and nodes).
pub fn ensure(st: &mut State, rt: &ResourceType, ns: &str, obj: Value) {
    let name = name_of(&obj).to_string();
    if st.get(&rt.key(), ns, &name).is_none() {
        let _ = create(st, rt, ns, obj, &WriteOpts::default());
    }
}

/// A bare object of a type (for ensure helpers).
pub fn bare(rt: &ResourceType, name: &str) -> Value {
    let mut m = Map::new();
    m.insert(
        "apiVersion".into(),
        json!(rt.api_version(rt.preferred_version())),
    );
    m.insert("kind".into(), json!(rt.kind));
    m.insert("metadata".into(), json!({"name": name}));
    Value::Object(m)
}
