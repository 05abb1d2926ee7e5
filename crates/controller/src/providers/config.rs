//! The `config` provider: configs as KubeVela keeps them, Secrets on the hub labelled
//! `config.oam.dev/catalog: velacore-config` and `config.oam.dev/type: <template>`, with the
//! properties as JSON under the data key `input-properties`. A config made from a template
//! (`config-template-<name>` ConfigMap, in vela-system unless the template is written
//! `namespace/name`) is rendered by that template's CUE (`template.output` is the Secret).

use super::{Answer, Problem, invalid};
use base64::Engine;
use fleet::{Cluster, ObjectRef};
use serde_json::{Map, Value, json};
use workflow::task::Outcome;

pub const LABEL_CATALOG: &str = "config.oam.dev/catalog";
pub const LABEL_TYPE: &str = "config.oam.dev/type";
pub const LABEL_SCOPE: &str = "config.oam.dev/scope";
pub const CATALOG: &str = "velacore-config";
pub const ANNOTATION_SENSITIVE: &str = "config.oam.dev/sensitive";
pub const ANNOTATION_TEMPLATE_NAMESPACE: &str = "config.oam.dev/template-namespace";
pub const ANNOTATION_ALIAS: &str = "config.oam.dev/alias";
pub const ANNOTATION_DESCRIPTION: &str = "config.oam.dev/description";
/// The Secret data key of a config's properties.
pub const KEY_PROPERTIES: &str = "input-properties";
/// The Secret data key listing the extra objects a template made.
pub const KEY_OBJECT_REFERENCES: &str = "objects-reference";
/// Config templates are ConfigMaps named with this prefix.
pub const TEMPLATE_PREFIX: &str = "config-template-";
/// Where templates live unless one is named `namespace/name`.
pub const TEMPLATE_NAMESPACE: &str = "vela-system";

fn str_param<'a>(params: &'a Value, key: &str, action: &str) -> Result<&'a str, Problem> {
    params
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Problem::Invalid(format!("config.{action}: {key} is missing or empty")))
}

fn secret_ref(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Secret".into(),
        namespace: Some(namespace.into()),
        name: name.into(),
    }
}

/// `config.#CreateConfig` (`create`), `#ReadConfig` (`read`), `#ListConfig` (`list`),
/// `#DeleteConfig` (`delete`); KubeVela's `*-config` action names are accepted too.
pub(crate) async fn call(hub: &Cluster, action: &str, params: &Value) -> Answer {
    match action {
        "create" | "create-config" => create(hub, params).await,
        "read" | "read-config" => read(hub, params).await,
        "list" | "list-config" => list(hub, params).await,
        "delete" | "delete-config" => delete(hub, params).await,
        other => invalid(format!(
            "config has no operation {other:?} (create, read, list, delete)"
        )),
    }
}

async fn create(hub: &Cluster, params: &Value) -> Answer {
    let name = str_param(params, "name", "create")?;
    let namespace = str_param(params, "namespace", "create")?;
    let properties = match params.get("config") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(Problem::Invalid(format!(
                "config.create {namespace}/{name}: config must be a struct, found {other}"
            )));
        }
    };
    let template = params
        .get("template")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let mut secret = match template {
        Some(t) => from_template(hub, t, name, namespace, &properties).await?,
        None => json!({
            "metadata": {
                "labels": {LABEL_CATALOG: CATALOG, LABEL_TYPE: ""},
                "annotations": {},
            },
        }),
    };
    // The template of a config never changes: another template means another config.
    let want_type = template.map(template_name).unwrap_or_default();
    if let Some(live) = hub.get(&secret_ref(namespace, name)).await? {
        let labels = live.pointer("/metadata/labels");
        if labels
            .and_then(|l| l.get(LABEL_CATALOG))
            .and_then(Value::as_str)
            != Some(CATALOG)
        {
            return Err(Problem::Invalid(format!(
                "config.create: Secret {namespace}/{name} exists and is not a config (no label {LABEL_CATALOG}={CATALOG})"
            )));
        }
        let live_type = labels
            .and_then(|l| l.get(LABEL_TYPE))
            .and_then(Value::as_str)
            .unwrap_or("");
        if live_type != want_type {
            return Err(Problem::Invalid(format!(
                "config.create {namespace}/{name}: made from template {live_type:?}, cannot change to {want_type:?}; delete it first"
            )));
        }
    }
    let meta = secret
        .as_object_mut()
        .ok_or_else(|| Problem::Invalid("config template output is not a struct".into()))?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.insert("name".into(), json!(name));
        m.insert("namespace".into(), json!(namespace));
        let ann = m.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            for (key, field) in [
                (ANNOTATION_ALIAS, "alias"),
                (ANNOTATION_DESCRIPTION, "description"),
            ] {
                a.insert(
                    key.into(),
                    json!(params.get(field).and_then(Value::as_str).unwrap_or("")),
                );
            }
        }
    }
    let obj = secret
        .as_object_mut()
        .ok_or_else(|| Problem::Invalid("config template output is not a struct".into()))?;
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("kind".into(), json!("Secret"));
    let data = obj.entry("data").or_insert_with(|| json!({}));
    if let Some(d) = data.as_object_mut() {
        d.insert(
            KEY_PROPERTIES.into(),
            json!(b64(properties.to_string().as_bytes())),
        );
    }
    hub.apply(&secret, namespace, true).await?;
    Ok(Outcome::Returns(Value::Null))
}

/// `ns/name` -> name.
fn template_name(t: &str) -> String {
    t.split_once('/').map_or(t, |(_, n)| n).to_string()
}

/// The Secret a template makes of the properties: its `template.output` with the labels and
/// annotations of a templated config. Extra objects (`template.outputs`) are not made.
async fn from_template(
    hub: &Cluster,
    template: &str,
    name: &str,
    namespace: &str,
    properties: &Value,
) -> Result<Value, Problem> {
    let (tns, tname) = template
        .split_once('/')
        .unwrap_or((TEMPLATE_NAMESPACE, template));
    let r = ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(tns.into()),
        name: format!("{TEMPLATE_PREFIX}{tname}"),
    };
    let Some(cm) = hub.get(&r).await? else {
        return Err(Problem::Retry(format!(
            "config.create {namespace}/{name}: config template {tname:?} does not exist (no ConfigMap {tns}/{TEMPLATE_PREFIX}{tname})"
        )));
    };
    let src = cm
        .pointer("/data/template")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Problem::Invalid(format!("config template {tns}/{tname}: no data.template"))
        })?;
    let file = format!("config-template {tns}/{tname}");
    let program = render::stdlib::runtime()
        .compile(&file, src)
        .map_err(|e| Problem::Invalid(format!("config template {tns}/{tname}: {e}")))?;
    let context = json!({"name": name, "namespace": namespace});
    let value = program
        .eval_with(&[("context", &context), ("template.parameter", properties)])
        .map_err(|e| {
            Problem::Invalid(format!(
                "config {namespace}/{name}: its properties do not fit template {tname}: {e}"
            ))
        })?;
    let mut secret = match value.lookup("template").and_then(|t| t.lookup("output")) {
        Some(out) => out.to_json().map_err(|e| {
            Problem::Invalid(format!(
                "config template {tns}/{tname}: template.output is not concrete: {e}"
            ))
        })?,
        None => json!({}),
    };
    if !secret.is_object() {
        return Err(Problem::Invalid(format!(
            "config template {tns}/{tname}: template.output must be a Secret"
        )));
    }
    if secret.get("type").is_none() {
        secret["type"] = json!(format!("/{tname}"));
    }
    // KubeVela's Secret carries stringData as given; the API server turns it into data.
    let sensitive = cm
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_SENSITIVE))
        .and_then(Value::as_str)
        == Some("true");
    let scope = cm
        .pointer("/metadata/labels")
        .and_then(|l| l.get(LABEL_SCOPE))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let meta = secret
        .as_object_mut()
        .map(|o| o.entry("metadata").or_insert_with(|| json!({})));
    if let Some(Value::Object(m)) = meta {
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert(LABEL_CATALOG.into(), json!(CATALOG));
            l.insert(LABEL_TYPE.into(), json!(tname));
            l.insert(LABEL_SCOPE.into(), json!(scope));
        }
        let ann = m.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.insert(ANNOTATION_SENSITIVE.into(), json!(sensitive.to_string()));
            a.insert(ANNOTATION_TEMPLATE_NAMESPACE.into(), json!(tns));
        }
    }
    Ok(secret)
}

async fn read(hub: &Cluster, params: &Value) -> Answer {
    let name = str_param(params, "name", "read")?;
    let namespace = str_param(params, "namespace", "read")?;
    let Some(secret) = hub.get(&secret_ref(namespace, name)).await? else {
        return Err(Problem::Retry(format!(
            "config.read: config {namespace}/{name} does not exist"
        )));
    };
    if is_sensitive(&secret) {
        return Err(Problem::Invalid(format!(
            "config.read: config {namespace}/{name} is sensitive and cannot be read by a step"
        )));
    }
    let config = properties_of(&secret)
        .map_err(|e| Problem::Invalid(format!("config {namespace}/{name}: {e}")))?;
    Ok(Outcome::Returns(json!({ "config": config })))
}

async fn list(hub: &Cluster, params: &Value) -> Answer {
    let template = str_param(params, "template", "list")?;
    let namespace = str_param(params, "namespace", "list")?;
    let selector = format!(
        "{LABEL_CATALOG}={CATALOG},{LABEL_TYPE}={}",
        template_name(template)
    );
    let mut secrets = hub.list("v1", "Secret", Some(namespace), &selector).await?;
    secrets.sort_by(|a, b| {
        let n = |s: &Value| {
            s.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        n(a).cmp(&n(b))
    });
    let mut configs = Vec::new();
    for s in &secrets {
        let ann = |k: &str| {
            s.pointer("/metadata/annotations")
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let mut entry = Map::new();
        entry.insert(
            "name".into(),
            s.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        );
        entry.insert("alias".into(), json!(ann(ANNOTATION_ALIAS)));
        entry.insert("description".into(), json!(ann(ANNOTATION_DESCRIPTION)));
        // A sensitive config is listed, its content is not.
        if !is_sensitive(s) {
            match properties_of(s) {
                Ok(c) => {
                    entry.insert("config".into(), c);
                }
                Err(e) => {
                    tracing::warn!("config list: {e}");
                    continue;
                }
            }
        }
        configs.push(Value::Object(entry));
    }
    Ok(Outcome::Returns(json!({ "configs": configs })))
}

/// Delete a config and the objects its template made. A config already gone is done (the
/// step may run again after a restart).
async fn delete(hub: &Cluster, params: &Value) -> Answer {
    let name = str_param(params, "name", "delete")?;
    let namespace = str_param(params, "namespace", "delete")?;
    let r = secret_ref(namespace, name);
    let Some(secret) = hub.get(&r).await? else {
        return Ok(Outcome::Returns(Value::Null));
    };
    if secret
        .pointer("/metadata/labels")
        .and_then(|l| l.get(LABEL_CATALOG))
        .and_then(Value::as_str)
        != Some(CATALOG)
    {
        return Err(Problem::Invalid(format!(
            "config.delete: Secret {namespace}/{name} is not a config (no label {LABEL_CATALOG}={CATALOG}); not deleted"
        )));
    }
    if let Some(refs) = secret
        .pointer(&format!("/data/{KEY_OBJECT_REFERENCES}"))
        .and_then(Value::as_str)
    {
        let raw =
            unb64(refs).map_err(|e| Problem::Invalid(format!("config {namespace}/{name}: {e}")))?;
        let objects: Vec<Value> = serde_json::from_slice(&raw).map_err(|e| {
            Problem::Invalid(format!(
                "config {namespace}/{name}: {KEY_OBJECT_REFERENCES} is not a list of references: {e}"
            ))
        })?;
        for o in objects {
            let get = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let obj = ObjectRef {
                api_version: get("apiVersion"),
                kind: get("kind"),
                namespace: Some(get("namespace")).filter(|n| !n.is_empty()),
                name: get("name"),
            };
            hub.delete(&obj).await?;
        }
    }
    hub.delete(&r).await?;
    Ok(Outcome::Returns(Value::Null))
}

fn is_sensitive(secret: &Value) -> bool {
    secret
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_SENSITIVE))
        .and_then(Value::as_str)
        == Some("true")
}

/// The properties a config was made with.
fn properties_of(secret: &Value) -> Result<Value, String> {
    let Some(raw) = secret
        .pointer(&format!("/data/{KEY_PROPERTIES}"))
        .and_then(Value::as_str)
    else {
        return Ok(json!({}));
    };
    let bytes = unb64(raw)?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{KEY_PROPERTIES} is not JSON: {e}"))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("not base64: {e}"))
}
