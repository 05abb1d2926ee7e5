//! JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

use serde_json::{Map, Value};

use crate::status::ApiError;

/// RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &p).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

/// Merge key of a list field in built-in kinds (patchMergeKey), judged from the field name
/// and the items.
pub fn merge_key(field: &str, sample: &[&Value]) -> Option<&'static str> {
    let has = |k: &str| sample.iter().any(|i| i.get(k).is_some());
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "secrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "hostAliases" => Some("ip"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "ports" => {
            if has("containerPort") {
                Some("containerPort")
            } else if has("port") {
                Some("port")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Primitive lists merged as sets.
fn merge_primitive_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|x| x.get("$patch").and_then(Value::as_str) != Some("delete"))
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Strategic merge patch for built-in kinds.
pub fn strategic_merge(original: &Value, patch: &Value) -> Result<Value, ApiError> {
    match patch {
        Value::Object(p) => {
            match p.get("$patch").and_then(Value::as_str) {
                Some("replace") => return Ok(strip_directives(patch)),
                Some("delete") => return Ok(Value::Object(Map::new())),
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "unknown patch type: {other} in map"
                    )));
                }
                None => {}
            }
            let mut out = match original {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            };
            if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
                let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
                out.retain(|k, _| keep.contains(&k.as_str()));
            }
            for (k, v) in p {
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(cur)), Value::Array(del)) = (out.get_mut(field), v) {
                        cur.retain(|x| !del.contains(x));
                    }
                    continue;
                }
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match (out.get(k), v) {
                    (Some(Value::Array(o)), Value::Array(pa)) => merge_list(k, o, pa)?,
                    (Some(o @ Value::Object(_)), Value::Object(_)) => strategic_merge(o, v)?,
                    (None, Value::Object(pm))
                        if pm.get("$patch").and_then(Value::as_str) == Some("delete") =>
                    {
                        continue;
                    }
                    (_, Value::Object(_)) => strategic_merge(&Value::Object(Map::new()), v)?,
                    (_, Value::Array(pa)) => merge_list(k, &[], pa)?,
                    _ => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            // $setElementOrder/<field>: order the merged list as the client asks
            for (k, v) in p {
                if let Some(field) = k.strip_prefix("$setElementOrder/")
                    && let (Some(Value::Array(cur)), Value::Array(order)) = (out.get_mut(field), v)
                {
                    reorder(field, cur, order);
                }
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

fn reorder(field: &str, cur: &mut [Value], order: &[Value]) {
    let sample: Vec<&Value> = order.iter().collect();
    let key = merge_key(field, &sample);
    let pos = |item: &Value| -> usize {
        order
            .iter()
            .position(|o| match key {
                Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
                None => o == item,
            })
            .unwrap_or(usize::MAX)
    };
    cur.sort_by_key(|i| pos(i));
}

fn merge_list(field: &str, original: &[Value], patch: &[Value]) -> Result<Value, ApiError> {
    // {"$patch": "replace"} anywhere in the list replaces the whole list
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(Value::Array(
            patch
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        ));
    }
    if patch.iter().all(|i| !i.is_object()) {
        if merge_primitive_list(field) {
            let mut out = original.to_vec();
            for i in patch {
                if !out.contains(i) {
                    out.push(i.clone());
                }
            }
            return Ok(Value::Array(out));
        }
        return Ok(Value::Array(patch.to_vec()));
    }
    let sample: Vec<&Value> = patch.iter().chain(original.iter()).collect();
    let Some(key) = merge_key(field, &sample) else {
        return Ok(strip_directives(&Value::Array(patch.to_vec())));
    };
    let mut out: Vec<Value> = original.to_vec();
    for item in patch {
        let kv = item.get(key);
        let idx = out.iter().position(|o| kv.is_some() && o.get(key) == kv);
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = idx {
                out.remove(i);
            }
            continue;
        }
        match idx {
            Some(i) => {
                let merged = strategic_merge(&out[i], item)?;
                out[i] = merged;
            }
            None => out.push(strategic_merge(&Value::Object(Map::new()), item)?),
        }
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smp_merges_containers_by_name() {
        let orig = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
            {"name": "b", "$patch": "delete"}
        ]}});
        let out = strategic_merge(&orig, &patch).expect("patch");
        assert_eq!(
            out,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}
            ]}})
        );
    }

    #[test]
    fn smp_replace_and_null() {
        let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"args": ["x"]}});
        let patch = json!({"metadata": {"labels": {"a": null}}, "spec": {"args": ["y", "z"]}});
        let out = strategic_merge(&orig, &patch).expect("patch");
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"args": ["y", "z"]}})
        );
    }

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
    }
}
