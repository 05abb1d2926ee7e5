//! Trait patch strategies.
//!
//! A trait's `patch` is merged into the workload the way KubeVela's strategic unification does:
//! structs merge field by field, equal scalars agree, different scalars conflict, and comments on
//! a field of the patch change that:
//!
//! - `// +patchKey=name`: the list is merged by the `name` of its elements; new ones are appended.
//! - `// +patchStrategy=retainKeys` or `replace`: the field's value replaces the workload's.
//! - `// +patchStrategy=jsonMergePatch`: the value is an RFC 7386 merge patch (null deletes).
//! - `// +patchStrategy=jsonPatch`: the value is `{operations: [...]}`, an RFC 6902 JSON patch.
//!
//! Lists without a patch key merge element by element and must have the same length. An open
//! list in the patch (`containers: [...{env: ...}]`) patches every element of the workload's
//! list: render gives it as many elements as the workload has before it gets here (see
//! `component::expand_open_lists`).

use serde_json::{Map, Value};
use std::collections::HashMap;

/// How one field of a patch is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldStrategy {
    pub patch_key: Option<String>,
    pub strategy: Option<Strategy>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    RetainKeys,
    Replace,
    JsonMergePatch,
    JsonPatch,
}

/// The strategies found in a patch, by field path. List elements are written `[]`, so
/// `spec.template.spec.containers[].env` names the `env` of every container.
#[derive(Clone, Debug, Default)]
pub struct Strategies {
    by_path: HashMap<String, FieldStrategy>,
}

/// A failed patch: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchError {
    pub path: String,
    pub message: String,
}

impl FieldStrategy {
    /// Read `+patchKey=` and `+patchStrategy=` from a field's doc comments.
    pub fn from_comments(comments: &[String]) -> FieldStrategy {
        let mut s = FieldStrategy::default();
        for line in comments {
            let line = line.trim().trim_start_matches("//").trim();
            if let Some(key) = line.strip_prefix("+patchKey=") {
                s.patch_key = Some(key.trim().to_string());
            } else if let Some(strategy) = line.strip_prefix("+patchStrategy=") {
                s.strategy = match strategy.trim() {
                    "retainKeys" => Some(Strategy::RetainKeys),
                    "replace" => Some(Strategy::Replace),
                    "jsonMergePatch" => Some(Strategy::JsonMergePatch),
                    "jsonPatch" => Some(Strategy::JsonPatch),
                    _ => s.strategy,
                };
            }
        }
        s
    }

    fn is_empty(&self) -> bool {
        self.patch_key.is_none() && self.strategy.is_none()
    }
}

impl Strategies {
    /// Collect the strategies of every field below `value`, which is the patch itself; `root` is
    /// the strategy written on the `patch` field.
    pub fn collect(value: &cue::Value, root: FieldStrategy) -> Strategies {
        let mut s = Strategies::default();
        if !root.is_empty() {
            s.by_path.insert(String::new(), root);
        }
        s.walk(value, String::new(), 0);
        s
    }

    fn walk(&mut self, value: &cue::Value, path: String, depth: usize) {
        // Patches are shallow documents; the bound only guards against pathological input.
        if depth > 64 {
            return;
        }
        match value.kind() {
            cue::Kind::Struct => {
                for f in value.fields() {
                    let p = join(&path, &f.name);
                    let st = FieldStrategy::from_comments(&f.comments);
                    if !st.is_empty() {
                        self.by_path.insert(p.clone(), st);
                    }
                    self.walk(&f.value, p, depth + 1);
                }
            }
            cue::Kind::List => {
                let p = format!("{path}[]");
                for e in value.elements() {
                    self.walk(&e, p.clone(), depth + 1);
                }
            }
            _ => {}
        }
    }

    pub fn get(&self, path: &str) -> Option<&FieldStrategy> {
        self.by_path.get(path)
    }

    /// Add a strategy by hand (tests, and definitions that declare them outside comments).
    pub fn insert(&mut self, path: &str, strategy: FieldStrategy) {
        self.by_path.insert(path.to_string(), strategy);
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Apply `patch` to `base` in place.
pub fn apply(base: &mut Value, patch: &Value, strategies: &Strategies) -> Result<(), PatchError> {
    merge(base, patch, strategies, "", None)
}

/// `inherited` carries an annotation down a chain of one-field structs: a comment above
/// `spec: template: spec: containers: [...]` (the shorthand of nested one-field structs) is meant
/// for the innermost field, `containers`, not for `spec`.
fn merge(
    base: &mut Value,
    patch: &Value,
    s: &Strategies,
    path: &str,
    inherited: Option<&FieldStrategy>,
) -> Result<(), PatchError> {
    let field = match (s.get(path), inherited) {
        (Some(own), Some(up)) => Some(FieldStrategy {
            patch_key: own.patch_key.clone().or_else(|| up.patch_key.clone()),
            strategy: own.strategy.or(up.strategy),
        }),
        (Some(own), None) => Some(own.clone()),
        (None, up) => up.cloned(),
    };
    let whole_value = matches!(
        field.as_ref().and_then(|f| f.strategy),
        Some(Strategy::JsonMergePatch | Strategy::JsonPatch)
    );
    if let Some(f) = field.as_ref().filter(|f| !f.is_empty() && !whole_value)
        && let (Some(p), Some(b)) = (patch.as_object(), base.as_object_mut())
        && p.len() == 1
        && let Some((k, pv)) = p.iter().next()
    {
        let child = join(path, k);
        return match b.get_mut(k) {
            Some(bv) => merge(bv, pv, s, &child, Some(f)),
            None => {
                b.insert(k.clone(), pv.clone());
                Ok(())
            }
        };
    }
    match field.as_ref().and_then(|f| f.strategy) {
        Some(Strategy::RetainKeys | Strategy::Replace) => {
            *base = patch.clone();
            return Ok(());
        }
        Some(Strategy::JsonMergePatch) => {
            json_patch::merge(base, patch);
            return Ok(());
        }
        Some(Strategy::JsonPatch) => {
            let ops = patch.get("operations").cloned().unwrap_or(Value::Null);
            let ops: json_patch::Patch = serde_json::from_value(ops).map_err(|e| PatchError {
                path: display(path),
                message: format!(
                    "+patchStrategy=jsonPatch expects {{operations: [{{op, path, value}}...]}}: {e}"
                ),
            })?;
            return json_patch::patch(base, &ops).map_err(|e| PatchError {
                path: display(path),
                message: format!("JSON patch failed: {e}"),
            });
        }
        None => {}
    }
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => merge_objects(b, p, s, path),
        (Value::Array(b), Value::Array(p)) => {
            let key = field.as_ref().and_then(|f| f.patch_key.as_deref());
            merge_lists(b, p, key, s, path)
        }
        (b @ Value::Null, p) => {
            *b = p.clone();
            Ok(())
        }
        (b, p) if b == p => Ok(()),
        (b, p) => Err(PatchError {
            path: display(path),
            message: format!(
                "conflicting values {} (workload) and {} (patch); mark the field with // +patchStrategy=retainKeys to replace it",
                short(b),
                short(p)
            ),
        }),
    }
}

fn merge_objects(
    base: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    s: &Strategies,
    path: &str,
) -> Result<(), PatchError> {
    for (k, pv) in patch {
        let p = join(path, k);
        match base.get_mut(k) {
            Some(bv) => merge(bv, pv, s, &p, None)?,
            None => {
                // A field new to the workload still honours a jsonPatch/mergePatch strategy
                // written on it or below it only through the value itself: insert as is.
                base.insert(k.clone(), pv.clone());
            }
        }
    }
    Ok(())
}

fn merge_lists(
    base: &mut Vec<Value>,
    patch: &[Value],
    key: Option<&str>,
    s: &Strategies,
    path: &str,
) -> Result<(), PatchError> {
    let elem_path = format!("{path}[]");
    match key {
        Some(key) => {
            for (i, pe) in patch.iter().enumerate() {
                let found = match pe.get(key) {
                    Some(k) => base.iter().position(|be| be.get(key) == Some(k)),
                    // An element without the key is merged with the element at its position,
                    // as plain unification would.
                    None => (i < base.len()).then_some(i),
                };
                match found {
                    Some(i) => merge(&mut base[i], pe, s, &elem_path, None)?,
                    None => base.push(pe.clone()),
                }
            }
            Ok(())
        }
        None if base.len() == patch.len() => {
            for (be, pe) in base.iter_mut().zip(patch) {
                merge(be, pe, s, &elem_path, None)?;
            }
            Ok(())
        }
        None => Err(PatchError {
            path: display(path),
            message: format!(
                "the workload's list has {} elements and the patch's {}; mark the field with // +patchKey=<field> to merge by key, or // +patchStrategy=replace",
                base.len(),
                patch.len()
            ),
        }),
    }
}

fn display(path: &str) -> String {
    if path.is_empty() {
        "patch".into()
    } else {
        path.to_string()
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(path: &str, k: &str) -> Strategies {
        let mut s = Strategies::default();
        s.insert(
            path,
            FieldStrategy {
                patch_key: Some(k.into()),
                strategy: None,
            },
        );
        s
    }

    #[test]
    fn structs_merge_and_scalars_conflict() {
        let mut base = json!({"spec": {"replicas": 1, "x": "a"}});
        apply(
            &mut base,
            &json!({"spec": {"y": 2}}),
            &Strategies::default(),
        )
        .expect("merge");
        assert_eq!(base, json!({"spec": {"replicas": 1, "x": "a", "y": 2}}));
        let err = apply(
            &mut base,
            &json!({"spec": {"replicas": 3}}),
            &Strategies::default(),
        )
        .unwrap_err();
        assert_eq!(err.path, "spec.replicas");
        assert!(
            err.message.contains("conflicting values 1"),
            "{}",
            err.message
        );
    }

    #[test]
    fn retain_keys_replaces() {
        let mut base = json!({"spec": {"replicas": 1}});
        let mut s = Strategies::default();
        s.insert(
            "spec.replicas",
            FieldStrategy {
                patch_key: None,
                strategy: Some(Strategy::RetainKeys),
            },
        );
        apply(&mut base, &json!({"spec": {"replicas": 3}}), &s).expect("merge");
        assert_eq!(base, json!({"spec": {"replicas": 3}}));
    }

    #[test]
    fn retain_keys_on_a_chain_replaces_the_innermost_field() {
        // `// +patchStrategy=retainKeys` above `patch: spec: replicas: 3`
        let mut base = json!({"apiVersion": "apps/v1", "spec": {"replicas": 1, "x": true}});
        let mut s = Strategies::default();
        s.insert(
            "",
            FieldStrategy {
                patch_key: None,
                strategy: Some(Strategy::RetainKeys),
            },
        );
        apply(&mut base, &json!({"spec": {"replicas": 3}}), &s).expect("merge");
        assert_eq!(
            base,
            json!({"apiVersion": "apps/v1", "spec": {"replicas": 3, "x": true}})
        );
        // a struct of several fields is replaced as a whole
        apply(&mut base, &json!({"spec": {"replicas": 4, "y": 1}}), &s).expect("merge");
        assert_eq!(
            base,
            json!({"apiVersion": "apps/v1", "spec": {"replicas": 4, "y": 1}})
        );
    }

    #[test]
    fn patch_key_on_a_chain_reaches_the_list() {
        // `// +patchKey=name` above `spec: template: spec: containers: [...]`
        let mut base = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}}});
        let s = key("spec", "name");
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy"}]}}}});
        apply(&mut base, &patch, &s).expect("merge");
        assert_eq!(
            base["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "image": "x"}, {"name": "proxy", "image": "envoy"}])
        );
    }

    #[test]
    fn patch_key_element_without_the_key_merges_by_position() {
        let mut base = json!({"containers": [{"name": "a", "image": "x"}]});
        let patch = json!({"containers": [{"resources": {"limits": {"cpu": "1"}}}]});
        apply(&mut base, &patch, &key("containers", "name")).expect("merge");
        assert_eq!(
            base,
            json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}}}]})
        );
    }

    #[test]
    fn patch_key_merges_lists_by_key() {
        let mut base = json!({"containers": [{"name": "a", "image": "x"}]});
        let patch = json!({"containers": [{"name": "a", "env": [1]}, {"name": "b"}]});
        apply(&mut base, &patch, &key("containers", "name")).expect("merge");
        assert_eq!(
            base,
            json!({"containers": [{"name": "a", "image": "x", "env": [1]}, {"name": "b"}]})
        );
    }

    #[test]
    fn lists_without_key_must_match_in_length() {
        let mut base = json!({"l": [1]});
        let err = apply(&mut base, &json!({"l": [1, 2]}), &Strategies::default()).unwrap_err();
        assert!(err.message.contains("+patchKey"), "{}", err.message);
    }

    #[test]
    fn json_merge_patch_deletes_with_null() {
        let mut base = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let mut s = Strategies::default();
        s.insert(
            "",
            FieldStrategy {
                patch_key: None,
                strategy: Some(Strategy::JsonMergePatch),
            },
        );
        apply(
            &mut base,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
            &s,
        )
        .expect("merge");
        assert_eq!(base, json!({"metadata": {"labels": {"b": "2", "c": "3"}}}));
    }

    #[test]
    fn json_patch_operations() {
        let mut base = json!({"spec": {"replicas": 1}});
        let mut s = Strategies::default();
        s.insert(
            "",
            FieldStrategy {
                patch_key: None,
                strategy: Some(Strategy::JsonPatch),
            },
        );
        let patch =
            json!({"operations": [{"op": "replace", "path": "/spec/replicas", "value": 5}]});
        apply(&mut base, &patch, &s).expect("patch");
        assert_eq!(base, json!({"spec": {"replicas": 5}}));
        let bad = json!({"operations": [{"op": "remove", "path": "/nope"}]});
        assert!(apply(&mut base, &bad, &s).is_err());
    }

    #[test]
    fn comments_are_read() {
        let s = FieldStrategy::from_comments(&[
            "A null value removes the label.".into(),
            "+patchStrategy=retainKeys".into(),
            "+patchKey=name".into(),
        ]);
        assert_eq!(s.patch_key.as_deref(), Some("name"));
        assert_eq!(s.strategy, Some(Strategy::RetainKeys));
    }
}
