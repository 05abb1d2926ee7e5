//! Server-side apply and managedFields bookkeeping (a simplified structured-merge-diff).
//!
//! A field set is a set of paths; each path is a list of fieldsV1 tokens ("f:name",
//! `k:{"name":"x"}`, `v:"x"`, and "." for a list item itself).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::patch::merge_key;
use crate::status::ApiError;

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

/// How lists are treated: associative by merge key (built-in kinds), by the CRD schema's
/// `x-kubernetes-list-type`/`x-kubernetes-list-map-keys`, or atomic.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub assoc_lists: bool,
    pub skip_status: bool,
    pub only_status: bool,
    pub schema: Option<&'a Value>,
}

enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

fn child_schema<'a>(sch: Option<&'a Value>, k: &str) -> Option<&'a Value> {
    let s = sch?;
    s.get("properties")
        .and_then(|p| p.get(k))
        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
}

fn items_schema(sch: Option<&Value>) -> Option<&Value> {
    sch?.get("items")
}

fn list_kind(field: &str, items: &[Value], sch: Option<&Value>, rules: Rules) -> ListKind {
    let scalars = items.iter().all(|i| !i.is_object() && !i.is_array());
    if let Some(s) = sch {
        match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let keys: Vec<String> = s
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if !keys.is_empty()
                    && items
                        .iter()
                        .all(|i| keys.iter().all(|k| i.get(k).is_some()))
                {
                    return ListKind::Map(keys);
                }
                return ListKind::Atomic;
            }
            Some("set") if scalars => return ListKind::Set,
            Some(_) => return ListKind::Atomic,
            None => {}
        }
    }
    if set_list(field) && scalars {
        return ListKind::Set;
    }
    if rules.assoc_lists {
        let sample: Vec<&Value> = items.iter().collect();
        if let Some(mk) = merge_key(field, &sample)
            && items.iter().all(|i| i.get(mk).is_some())
        {
            return ListKind::Map(vec![mk.to_string()]);
        }
    }
    ListKind::Atomic
}

fn same_item(keys: &[String], a: &Value, b: &Value) -> bool {
    keys.iter()
        .all(|k| a.get(k).is_some() && a.get(k) == b.get(k))
}

const META_SKIP: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

fn set_list(field: &str) -> bool {
    field == "finalizers"
}

/// The fields an object sets.
pub fn field_set(obj: &Value, rules: Rules) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(m) = obj.as_object() else {
        return out;
    };
    for (k, v) in m {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        if k == "status" && rules.skip_status {
            continue;
        }
        if k != "status" && rules.only_status {
            continue;
        }
        let path = vec![format!("f:{k}")];
        if k == "metadata" {
            if let Some(mm) = v.as_object() {
                for (mk, mv) in mm {
                    if META_SKIP.contains(&mk.as_str()) {
                        continue;
                    }
                    let mut p = path.clone();
                    p.push(format!("f:{mk}"));
                    let meta_rules = Rules {
                        assoc_lists: true,
                        ..rules
                    };
                    walk(mk, mv, p, meta_rules, None, &mut out);
                }
            }
            continue;
        }
        walk(k, v, path, rules, child_schema(rules.schema, k), &mut out);
    }
    out
}

fn item_key(keys: &[String], item: &Value) -> Option<String> {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut m = Map::new();
    for k in sorted {
        m.insert(k.clone(), item.get(k)?.clone());
    }
    Some(format!("k:{}", Value::Object(m)))
}

fn walk(field: &str, v: &Value, path: Path, rules: Rules, sch: Option<&Value>, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                walk(k, c, p, rules, child_schema(sch, k), out);
            }
        }
        Value::Array(items) if !items.is_empty() => match list_kind(field, items, sch, rules) {
            ListKind::Set => {
                for i in items {
                    let mut p = path.clone();
                    p.push(format!("v:{i}"));
                    out.insert(p);
                }
            }
            ListKind::Map(keys) => {
                let isch = items_schema(sch);
                for i in items {
                    let Some(key) = item_key(&keys, i) else {
                        continue;
                    };
                    let mut p = path.clone();
                    p.push(key);
                    let mut dot = p.clone();
                    dot.push(".".into());
                    out.insert(dot);
                    if let Some(im) = i.as_object() {
                        for (k, c) in im {
                            let mut pp = p.clone();
                            pp.push(format!("f:{k}"));
                            walk(k, c, pp, rules, child_schema(isch, k), out);
                        }
                    }
                }
            }
            ListKind::Atomic => {
                out.insert(path);
            }
        },
        _ => {
            out.insert(path);
        }
    }
}

/// The value at a path, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for tok in path {
        if tok == "." {
            return Some(cur);
        }
        if let Some(f) = tok.strip_prefix("f:") {
            cur = cur.get(f)?;
        } else if let Some(k) = tok.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur = cur
                .as_array()?
                .iter()
                .find(|i| key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))?;
        } else if let Some(v) = tok.strip_prefix("v:") {
            let val: Value = serde_json::from_str(v).ok()?;
            cur = cur.as_array()?.iter().find(|i| **i == val)?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Remove the value at a path (list items for "."/v: paths).
fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    if last == "." {
        // remove the list item designated by the parent path's last token
        if let Some((item_tok, list_path)) = parent_path.split_last() {
            remove_item(obj, list_path, item_tok);
        }
        return;
    }
    if last.starts_with("v:") || last.starts_with("k:") {
        remove_item(obj, parent_path, last);
        return;
    }
    let Some(parent) = value_at_mut(obj, parent_path) else {
        return;
    };
    if let (Some(f), Some(m)) = (last.strip_prefix("f:"), parent.as_object_mut()) {
        m.remove(f);
    }
}

fn remove_item(obj: &mut Value, list_path: &[String], tok: &str) {
    let Some(Value::Array(list)) = value_at_mut(obj, list_path) else {
        return;
    };
    if let Some(k) = tok.strip_prefix("k:") {
        if let Ok(key) = serde_json::from_str::<Map<String, Value>>(k) {
            list.retain(|i| !key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)));
        }
    } else if let Some(v) = tok.strip_prefix("v:")
        && let Ok(val) = serde_json::from_str::<Value>(v)
    {
        list.retain(|i| *i != val);
    }
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for tok in path {
        if let Some(f) = tok.strip_prefix("f:") {
            cur = cur.get_mut(f)?;
        } else if let Some(k) = tok.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur = cur
                .as_array_mut()?
                .iter_mut()
                .find(|i| key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Render a field set as fieldsV1.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for tok in path {
            let e = cur
                .entry(tok.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            match e {
                Value::Object(m) => cur = m,
                _ => break,
            }
        }
    }
    Value::Object(root)
}

pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    fn rec(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        if let Some(m) = v.as_object() {
            for (k, c) in m {
                prefix.push(k.clone());
                if c.as_object().is_none_or(|cm| cm.is_empty()) {
                    out.insert(prefix.clone());
                } else {
                    rec(c, prefix, out);
                }
                prefix.pop();
            }
        }
    }
    rec(v, &mut Vec::new(), &mut out);
    out
}

pub fn read_managed(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or("Update")
                        .to_string(),
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    time: e
                        .get("time")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_managed(obj: &mut Value, entries: &[Entry]) {
    let arr: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if arr.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(arr));
        }
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Merge an applied configuration into the live object.
fn apply_merge(
    live: &Value,
    applied: &Value,
    field: &str,
    rules: Rules,
    sch: Option<&Value>,
) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            let mut out = l.clone();
            for (k, v) in a {
                let csch = if field.is_empty() && sch.is_none() && k != "metadata" {
                    child_schema(rules.schema, k)
                } else {
                    child_schema(sch, k)
                };
                let r = if k == "metadata" && field.is_empty() {
                    Rules {
                        assoc_lists: true,
                        ..rules
                    }
                } else {
                    rules
                };
                let merged = match out.get(k) {
                    Some(lv) => apply_merge(lv, v, k, r, csch),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => match list_kind(field, a, sch, rules) {
            ListKind::Set => {
                let mut out = l.clone();
                for i in a {
                    if !out.contains(i) {
                        out.push(i.clone());
                    }
                }
                Value::Array(out)
            }
            ListKind::Map(keys) => {
                let isch = items_schema(sch);
                let mut out = l.clone();
                for item in a {
                    match out.iter().position(|o| same_item(&keys, o, item)) {
                        Some(i) => out[i] = apply_merge(&out[i], item, "-item-", rules, isch),
                        None => out.push(item.clone()),
                    }
                }
                Value::Array(out)
            }
            ListKind::Atomic => applied.clone(),
        },
        _ => applied.clone(),
    }
}

fn path_str(p: &Path) -> String {
    let mut s = String::new();
    for t in p {
        if let Some(f) = t.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if t != "." {
            s.push('[');
            s.push_str(&t[2..]);
            s.push(']');
        }
    }
    s
}

/// Server-side apply. Returns the new object (managedFields written).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    subresource: &str,
    rules: Rules,
) -> Result<Value, ApiError> {
    let empty = json!({});
    let live_v = live.unwrap_or(&empty);
    let mut entries = read_managed(live_v);
    let mut applied_clean = applied.clone();
    if let Some(m) = applied_clean
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    let applied_set = field_set(&applied_clean, rules);

    // conflicts
    let mut conflicts: Vec<(String, String, Path)> = Vec::new();
    for e in entries.iter() {
        if e.manager == manager || e.subresource != subresource {
            continue;
        }
        for p in applied_set.intersection(&e.fields) {
            if p.last().is_some_and(|t| t == ".") {
                continue;
            }
            if value_at(live_v, p) != value_at(&applied_clean, p) {
                conflicts.push((e.manager.clone(), e.api_version.clone(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let n = conflicts.len();
        let msg = if n == 1 {
            let (m, av, p) = &conflicts[0];
            format!(
                "Apply failed with 1 conflict: conflict with \"{m}\" using {av}: {}",
                path_str(p)
            )
        } else {
            let lines = conflicts
                .iter()
                .map(|(m, av, p)| format!("- conflict with \"{m}\" using {av}: {}", path_str(p)))
                .collect::<Vec<_>>()
                .join("\n");
            format!("Apply failed with {n} conflicts: {lines}")
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, av, p)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\" using {av}"), "field": path_str(p)})
            })
            .collect();
        let mut e = ApiError::new(409, "Conflict", msg);
        e.details = Some(json!({"causes": causes}));
        return Err(e);
    }
    // forced: take ownership
    for (m, _, p) in &conflicts {
        for e in entries.iter_mut() {
            if &e.manager == m {
                e.fields.remove(p);
            }
        }
    }

    let mut merged = apply_merge(live_v, &applied_clean, "", rules, None);

    // fields this manager stops applying
    let previous: FieldSet = entries
        .iter()
        .filter(|e| e.manager == manager && e.operation == "Apply" && e.subresource == subresource)
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let others: FieldSet = entries
        .iter()
        .filter(|e| {
            !(e.manager == manager && e.operation == "Apply" && e.subresource == subresource)
        })
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut to_remove: Vec<&Path> = previous
        .iter()
        .filter(|p| !applied_set.contains(*p) && !others.contains(*p))
        .filter(|p| {
            // keep a list item whose sub-fields another manager still owns
            let item_prefix = if p.last().is_some_and(|t| t == ".") {
                &p[..p.len() - 1]
            } else {
                &p[..]
            };
            !others
                .iter()
                .chain(applied_set.iter())
                .any(|o| o.len() > item_prefix.len() && o.starts_with(item_prefix))
        })
        .collect();
    to_remove.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in to_remove {
        remove_at(&mut merged, p);
    }

    entries.retain(|e| {
        !(e.manager == manager && e.operation == "Apply" && e.subresource == subresource)
    });
    entries.push(Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: api_version.to_string(),
        time: now(),
        subresource: subresource.to_string(),
        fields: applied_set,
    });
    write_managed(&mut merged, &entries);
    Ok(merged)
}

/// Record a non-apply change (create, update, patch) made by `manager`.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    rules: Rules,
) {
    let empty = json!({});
    let old_v = old.unwrap_or(&empty);
    let mut entries = read_managed(old_v);
    let new_set = field_set(new, rules);
    let old_set = field_set(old_v, rules);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| p.last().is_none_or(|t| t != ".") || !old_set.contains(*p))
        .filter(|p| value_at(old_v, p) != value_at(new, p))
        .cloned()
        .collect();
    for e in entries.iter_mut() {
        // removed fields lose their owners; changed fields move to this manager
        e.fields
            .retain(|p| new_set.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let time = now();
        match entries.iter_mut().find(|e| {
            e.manager == manager && e.operation == "Update" && e.subresource == subresource
        }) {
            Some(e) => {
                e.fields.extend(changed);
                e.time = time;
                e.api_version = api_version.to_string();
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time,
                subresource: subresource.to_string(),
                fields: changed,
            }),
        }
    }
    write_managed(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rules = Rules {
        assoc_lists: true,
        skip_status: true,
        only_status: false,
        schema: None,
    };

    #[test]
    fn fields_v1_roundtrip() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let set = field_set(&obj, R);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn apply_conflict_and_removal() {
        let a1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1", "y": "2"}});
        let o1 = apply(None, &a1, "m1", false, "v1", "", R).expect("apply");
        // m2 sets x differently -> conflict
        let a2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "9"}});
        let err = apply(Some(&o1), &a2, "m2", false, "v1", "", R).expect_err("conflict");
        assert_eq!(err.code, 409);
        // same value -> shared ownership, no conflict
        let a3 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
        let o3 = apply(Some(&o1), &a3, "m2", false, "v1", "", R).expect("apply");
        // m1 stops applying x and y: y removed, x kept (m2 owns it)
        let a4 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"z": "3"}});
        let o4 = apply(Some(&o3), &a4, "m1", false, "v1", "", R).expect("apply");
        assert_eq!(o4["data"], json!({"x": "1", "z": "3"}));
    }

    #[test]
    fn crd_list_type_map_merges_by_key() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}}}}}});
        let r = Rules {
            assoc_lists: false,
            skip_status: true,
            only_status: false,
            schema: Some(&schema),
        };
        let a = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "o"}, "spec": {"items": [{"name": "a", "v": 1}]}});
        let b = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "o"}, "spec": {"items": [{"name": "b", "v": 2}]}});
        let o1 = apply(None, &a, "ma", false, "x/v1", "", r).expect("a");
        let o2 = apply(Some(&o1), &b, "mb", false, "x/v1", "", r).expect("b");
        assert_eq!(
            o2["spec"]["items"],
            json!([{"name": "a", "v": 1}, {"name": "b", "v": 2}])
        );
        let a2 = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "o"}, "spec": {"items": []}});
        let o3 = apply(Some(&o2), &a2, "ma", false, "x/v1", "", r).expect("a2");
        assert_eq!(o3["spec"]["items"], json!([{"name": "b", "v": 2}]));
    }
}
