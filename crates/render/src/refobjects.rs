//! The `ref-objects` component: objects that exist already, referred to by type and name or
//! labels. KubeVela reads them from the cluster while it renders; `render` does no I/O, so the
//! controller resolves the component before it renders it:
//!
//! 1. [`selectors`] says what to read: per entry of `objects`, the resource type (or legacy
//!    `apiVersion`/`kind`), the name or label selector, namespace and cluster, with KubeVela's
//!    defaults (the component's name when neither name nor labels are given, the
//!    application's namespace, the hub);
//! 2. the caller reads them (through fleet) and [`resolve`] puts them into the component,
//!    cleaned of what the cluster wrote ([`clean_object`]), in place of the selectors;
//! 3. rendering then gives the objects themselves.
//!
//! Rendered unresolved (a dry-run without a cluster), each selector becomes a
//! `RefObjectSelector` object ([`is_unresolved`]), which no cluster accepts.

use std::collections::BTreeMap;

use oam::ApplicationComponent;
use serde_json::{Map, Value, json};

use crate::Error;

/// The component type.
pub const COMPONENT_TYPE: &str = "ref-objects";
/// apiVersion of what an unresolved selector renders to.
pub const SELECTOR_API_VERSION: &str = "sailplane.dev/v1alpha1";
/// Kind of what an unresolved selector renders to.
pub const SELECTOR_KIND: &str = "RefObjectSelector";

/// What to read for one entry of a ref-objects component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefObjectSelector {
    /// Resource type (`deployment`, `configmaps`, …), to be mapped by discovery.
    pub resource: Option<String>,
    /// API group of the resource; the core group when `None`.
    pub group: Option<String>,
    /// Legacy form: the objects' apiVersion and kind.
    pub api_version: Option<String>,
    pub kind: Option<String>,
    /// One object by name; `None` when `label_selector` is used.
    pub name: Option<String>,
    /// Every object with all these labels (empty when `name` is set).
    pub label_selector: BTreeMap<String, String>,
    /// Namespace to read from (ignored for cluster-scoped resources).
    pub namespace: String,
    /// Cluster to read from (`local`: the hub).
    pub cluster: String,
}

/// The selectors of a ref-objects component and the URLs it loads objects from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefObjects {
    pub selectors: Vec<RefObjectSelector>,
    pub urls: Vec<String>,
}

fn invalid(component: &ApplicationComponent, message: String) -> Error {
    Error::Invalid {
        component: component.name.clone(),
        message,
    }
}

fn opt_str(
    component: &ApplicationComponent,
    entry: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<String>, Error> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(
            component,
            format!("{at}.{key} must be a string, found {other}"),
        )),
    }
}

/// What a ref-objects component refers to, with KubeVela's defaults filled in. Entries that
/// are objects already (they have `metadata`) are not selectors and are skipped.
pub fn selectors(
    component: &ApplicationComponent,
    app_namespace: &str,
) -> Result<RefObjects, Error> {
    let empty = Map::new();
    let props = match &component.properties {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(invalid(
                component,
                format!("properties must be an object, found {other}"),
            ));
        }
    };
    let mut out = RefObjects::default();
    match props.get("urls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(urls)) => {
            for (i, u) in urls.iter().enumerate() {
                let u = u.as_str().ok_or_else(|| {
                    invalid(component, format!("properties.urls[{i}] must be a string"))
                })?;
                out.urls.push(u.to_string());
            }
        }
        Some(_) => {
            return Err(invalid(component, "properties.urls must be a list".into()));
        }
    }
    let objects = match props.get("objects") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(invalid(
                component,
                "properties.objects must be a list".into(),
            ));
        }
    };
    for (i, entry) in objects.iter().enumerate() {
        let at = format!("properties.objects[{i}]");
        let Some(entry) = entry.as_object() else {
            return Err(invalid(component, format!("{at} must be an object")));
        };
        if entry.contains_key("metadata") {
            continue;
        }
        let s = |key: &str| opt_str(component, entry, key, &at);
        let mut sel = RefObjectSelector {
            resource: s("resource")?,
            group: s("group")?,
            api_version: s("apiVersion")?,
            kind: s("kind")?,
            name: s("name")?,
            label_selector: BTreeMap::new(),
            namespace: s("namespace")?.unwrap_or_else(|| app_namespace.to_string()),
            cluster: s("cluster")?.unwrap_or_else(|| crate::policy::LOCAL_CLUSTER.to_string()),
        };
        if sel.resource.is_none() && (sel.api_version.is_none() || sel.kind.is_none()) {
            return Err(invalid(
                component,
                format!("{at} needs a resource (or apiVersion and kind)"),
            ));
        }
        let labels = match entry.get("labelSelector") {
            None | Some(Value::Null) => entry.get("selector"),
            some => some,
        };
        match labels {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let v = v.as_str().ok_or_else(|| {
                        invalid(
                            component,
                            format!("{at}.labelSelector.{k} must be a string"),
                        )
                    })?;
                    sel.label_selector.insert(k.clone(), v.to_string());
                }
            }
            Some(_) => {
                return Err(invalid(
                    component,
                    format!("{at}.labelSelector must be a map of strings"),
                ));
            }
        }
        if sel.name.is_some() && !sel.label_selector.is_empty() {
            return Err(invalid(
                component,
                format!("{at}: name and labelSelector exclude each other"),
            ));
        }
        if sel.name.is_none() && labels.is_none_or(Value::is_null) {
            sel.name = Some(component.name.clone());
        }
        out.selectors.push(sel);
    }
    Ok(out)
}

/// Remove what the cluster wrote into an object read from it, so that it can be applied
/// elsewhere: status, and in metadata the uid, resourceVersion, generation, creation and
/// deletion times, managedFields, ownerReferences, selfLink and kubectl's last applied
/// configuration.
pub fn clean_object(object: &mut Value) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    obj.remove("status");
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "ownerReferences",
            "selfLink",
            "finalizers",
        ] {
            meta.remove(k);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
}

/// The component with the objects read for it in place of its selectors (each cleaned with
/// [`clean_object`]); `urls` are dropped, as their objects are among those read.
pub fn resolve(component: &ApplicationComponent, mut objects: Vec<Value>) -> ApplicationComponent {
    for o in objects.iter_mut() {
        clean_object(o);
    }
    let mut out = component.clone();
    out.properties = Some(json!({ "objects": objects }));
    out
}

/// Whether a rendered object is an unresolved selector rather than an object to apply.
pub fn is_unresolved(object: &Value) -> bool {
    object.get("apiVersion").and_then(Value::as_str) == Some(SELECTOR_API_VERSION)
        && object.get("kind").and_then(Value::as_str) == Some(SELECTOR_KIND)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(props: Value) -> ApplicationComponent {
        serde_json::from_value(json!({"name": "web", "type": "ref-objects", "properties": props}))
            .unwrap_or_default()
    }

    #[test]
    fn selectors_with_kubevela_defaults() {
        let c = comp(json!({"objects": [
            {"resource": "deployment"},
            {"resource": "configmap", "labelSelector": {"app": "web"}, "namespace": "cfg", "cluster": "prod"},
            {"apiVersion": "v1", "kind": "Secret", "name": "creds"},
            {"resource": "service", "selector": {"tier": "front"}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "already-read"}},
        ], "urls": ["https://example.com/objs.yaml"]}));
        let r = selectors(&c, "prod").unwrap();
        assert_eq!(r.urls, vec!["https://example.com/objs.yaml".to_string()]);
        assert_eq!(r.selectors.len(), 4);
        assert_eq!(r.selectors[0].name.as_deref(), Some("web"));
        assert_eq!(r.selectors[0].namespace, "prod");
        assert_eq!(r.selectors[0].cluster, "local");
        assert_eq!(r.selectors[1].name, None);
        assert_eq!(
            r.selectors[1].label_selector.get("app").map(String::as_str),
            Some("web")
        );
        assert_eq!(
            (
                r.selectors[1].namespace.as_str(),
                r.selectors[1].cluster.as_str()
            ),
            ("cfg", "prod")
        );
        assert_eq!(r.selectors[2].kind.as_deref(), Some("Secret"));
        assert_eq!(r.selectors[2].name.as_deref(), Some("creds"));
        assert_eq!(
            r.selectors[3]
                .label_selector
                .get("tier")
                .map(String::as_str),
            Some("front")
        );
        assert_eq!(r.selectors[3].name, None);
    }

    #[test]
    fn bad_selectors_are_errors_naming_the_entry() {
        let e = selectors(&comp(json!({"objects": [{"name": "x"}]})), "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("objects[0]") && e.contains("resource"), "{e}");
        let e = selectors(
            &comp(json!({"objects": [{"resource": "pod", "name": 3}]})),
            "d",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("objects[0].name"), "{e}");
        let e = selectors(
            &comp(
                json!({"objects": [{"resource": "pod", "name": "a", "labelSelector": {"a": "b"}}]}),
            ),
            "d",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("exclude"), "{e}");
        assert!(selectors(&comp(json!({"objects": "x"})), "d").is_err());
        assert!(
            selectors(&comp(json!({})), "d")
                .unwrap()
                .selectors
                .is_empty()
        );
    }

    #[test]
    fn resolve_cleans_what_the_cluster_wrote() {
        let c = comp(json!({"objects": [{"resource": "configmap"}]}));
        let read = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web", "namespace": "prod", "uid": "u", "resourceVersion": "7",
                         "creationTimestamp": "2024-01-01T00:00:00Z", "managedFields": [],
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                         "labels": {"a": "b"}},
            "data": {"k": "v"}, "status": {}});
        let r = resolve(&c, vec![read]);
        assert_eq!(
            r.properties,
            Some(json!({"objects": [{"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "web", "namespace": "prod", "labels": {"a": "b"}},
                "data": {"k": "v"}}]}))
        );
        assert!(selectors(&r, "prod").unwrap().selectors.is_empty());
    }
}
