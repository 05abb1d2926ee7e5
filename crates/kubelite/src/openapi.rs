//! OpenAPI v2/v3 documents (paths only, enough for kubectl's field-validation probe) and
//! CRD structural-schema validation, pruning and defaulting.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceType};

fn params() -> Value {
    json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
    ])
}

fn params_v2() -> Value {
    json!([
        {"name": "dryRun", "in": "query", "type": "string", "uniqueItems": true},
        {"name": "fieldManager", "in": "query", "type": "string", "uniqueItems": true},
        {"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true},
        {"name": "force", "in": "query", "type": "boolean", "uniqueItems": true}
    ])
}

fn prefix(rt: &ResourceType, version: &str) -> String {
    if rt.group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{}/{version}", rt.group)
    }
}

fn item_path(rt: &ResourceType, version: &str) -> String {
    if rt.namespaced {
        format!(
            "{}/namespaces/{{namespace}}/{}/{{name}}",
            prefix(rt, version),
            rt.resource
        )
    } else {
        format!("{}/{}/{{name}}", prefix(rt, version), rt.resource)
    }
}

fn op_id(verb: &str, rt: &ResourceType, version: &str) -> String {
    let g: String = rt
        .group
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c })
        .collect();
    let v: String = version
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c })
        .collect();
    let ns = if rt.namespaced { "Namespaced" } else { "" };
    format!("{verb}{g}{v}{ns}{}", rt.kind)
}

fn gvk(rt: &ResourceType, version: &str) -> Value {
    json!({"group": rt.group, "version": version, "kind": rt.kind})
}

/// /openapi/v3 root.
pub fn v3_root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, versions) in reg.groups() {
        for v in versions {
            let p = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            let hash = format!("{:016X}", fxhash(&format!("{p}{}", reg.types.len())));
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
    }
    json!({ "paths": paths })
}

fn fxhash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// /openapi/v3/{api/v1 | apis/g/v}
pub fn v3_group_version(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let rts = reg.resources_in(group, version);
    if rts.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for rt in rts {
        let patch = json!({
            "operationId": op_id("patch", rt, version),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk(rt, version),
            "parameters": params(),
            "responses": {"200": {"description": "OK"}}
        });
        let get = json!({
            "operationId": op_id("read", rt, version),
            "x-kubernetes-action": "get",
            "x-kubernetes-group-version-kind": gvk(rt, version),
            "responses": {"200": {"description": "OK"}}
        });
        paths.insert(item_path(rt, version), json!({"get": get, "patch": patch}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::discovery::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}}
    }))
}

/// /openapi/v2
pub fn v2(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for rt in reg.types.values() {
        for version in &rt.versions {
            let patch = json!({
                "operationId": op_id("patch", rt, version),
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk(rt, version),
                "parameters": params_v2(),
                "responses": {"200": {"description": "OK"}}
            });
            paths.insert(item_path(rt, version), json!({"patch": patch}));
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::discovery::GIT_VERSION},
        "paths": paths,
        "definitions": {}
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, f: &str) -> String {
    if path.is_empty() {
        f.to_string()
    } else {
        format!("{path}.{f}")
    }
}

/// Validate a value against a structural schema; push (field, message) causes.
pub fn validate(
    schema: &Value,
    v: &Value,
    path: &str,
    causes: &mut Vec<(String, String)>,
    root: bool,
) {
    if v.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) == Some(true) || root {
            return;
        }
        if schema.get("type").is_some() {
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                    schema.get("type").and_then(Value::as_str).unwrap_or("")
                ),
            ));
        }
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(v);
        let ok = t == actual
            || (t == "number" && actual == "integer")
            || (int_or_string && (actual == "integer" || actual == "string"));
        if !ok {
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type {t}: \"{actual}\""
                ),
            ));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        let allowed: Vec<String> = e.iter().map(|x| x.to_string()).collect();
        causes.push((
            path.to_string(),
            format!(
                "Unsupported value: {v}: supported values: {}",
                allowed.join(", ")
            ),
        ));
    }
    match v {
        Value::Object(m) => {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        causes.push((join(path, r), "Required value".to_string()));
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, c) in m {
                if root && (k == "apiVersion" || k == "kind" || k == "metadata") {
                    continue;
                }
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    validate(ps, c, &join(path, k), causes, false);
                } else if let Some(ap) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    validate(ap, c, &join(path, k), causes, false);
                }
            }
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                && (m.len() as u64) < min
            {
                causes.push((
                    path.to_string(),
                    format!("Invalid value: {path} in body should have at least {min} properties"),
                ));
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, c) in a.iter().enumerate() {
                    validate(items, c, &format!("{path}[{i}]"), causes, false);
                }
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (a.len() as u64) < min
            {
                causes.push((
                    path.to_string(),
                    format!(
                        "Invalid value: {}: {path} in body should have at least {min} items",
                        a.len()
                    ),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (a.len() as u64) > max
            {
                causes.push((
                    path.to_string(),
                    format!("Too many: {}: must have at most {max} items", a.len()),
                ));
            }
        }
        Value::String(s) => {
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && (s.chars().count() as u64) < min
            {
                causes.push((
                    path.to_string(),
                    format!(
                        "Invalid value: {v}: {path} in body should be at least {min} chars long"
                    ),
                ));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && (s.chars().count() as u64) > max
            {
                causes.push((
                    path.to_string(),
                    format!("Too long: may not be more than {max} bytes"),
                ));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(s)
            {
                causes.push((
                    path.to_string(),
                    format!("Invalid value: {v}: {path} in body should match '{p}'"),
                ));
            }
        }
        Value::Number(n) => {
            if let (Some(min), Some(x)) =
                (schema.get("minimum").and_then(Value::as_f64), n.as_f64())
                && x < min
            {
                causes.push((path.to_string(), format!("Invalid value: {n}: {path} in body should be greater than or equal to {min}")));
            }
            if let (Some(max), Some(x)) =
                (schema.get("maximum").and_then(Value::as_f64), n.as_f64())
                && x > max
            {
                causes.push((
                    path.to_string(),
                    format!(
                        "Invalid value: {n}: {path} in body should be less than or equal to {max}"
                    ),
                ));
            }
        }
        _ => {}
    }
}

/// Dotted paths of fields the schema does not declare (what pruning would drop).
pub fn unknown_fields(schema: &Value, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    unknown_rec(schema, obj, "", true, &mut out);
    out
}

fn unknown_rec(schema: &Value, v: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, c) in m {
                if root && (k == "apiVersion" || k == "kind" || k == "metadata") {
                    continue;
                }
                let p = join(path, k);
                match (props.and_then(|ps| ps.get(k)), addl) {
                    (Some(ps), _) => unknown_rec(ps, c, &p, false, out),
                    (None, Some(ap)) => unknown_rec(ap, c, &p, false, out),
                    (None, None) => {
                        if !preserves(schema)
                            && (props.is_some()
                                || schema.get("type").and_then(Value::as_str) == Some("object"))
                        {
                            out.push(p);
                        }
                    }
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, c) in a.iter().enumerate() {
                    unknown_rec(items, c, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Prune unknown fields and apply defaults (structural schema semantics).
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    walk(schema, obj, true);
}

fn preserves(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
        || schema.get("additionalProperties").and_then(Value::as_bool) == Some(true)
}

fn walk(schema: &Value, v: &mut Value, root: bool) {
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties").filter(|a| a.is_object());
            if let Some(props) = props {
                for (k, ps) in props {
                    if !m.contains_key(k)
                        && let Some(d) = ps.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if root && (k == "apiVersion" || k == "kind" || k == "metadata") {
                    continue;
                }
                match (props.and_then(|p| p.get(&k)), addl) {
                    (Some(ps), _) => {
                        if let Some(c) = m.get_mut(&k) {
                            walk(ps, c, false);
                        }
                    }
                    (None, Some(ap)) => {
                        if let Some(c) = m.get_mut(&k) {
                            walk(ap, c, false);
                        }
                    }
                    (None, None) => {
                        let prune = !preserves(schema)
                            && (props.is_some()
                                || schema.get("type").and_then(Value::as_str) == Some("object"));
                        if prune {
                            m.remove(&k);
                        }
                    }
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for c in a.iter_mut() {
                    walk(items, c, false);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_prune_validate() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "required": ["image"],
            "properties": {"replicas": {"type": "integer", "default": 1, "minimum": 0}, "image": {"type": "string"}}}}});
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {"image": "i", "junk": 1}, "extra": true});
        apply_defaults(&schema, &mut o);
        assert_eq!(o["spec"], json!({"image": "i", "replicas": 1}));
        assert!(o.get("extra").is_none());
        let mut causes = vec![];
        validate(
            &schema,
            &json!({"spec": {"replicas": "x"}}),
            "",
            &mut causes,
            true,
        );
        assert_eq!(causes.len(), 2, "{causes:?}");
    }
}
