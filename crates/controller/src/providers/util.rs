//! The `util` operations that are not the workflow crate's builtins: `util.#PatchK8sObject`
//! (`patch-k8s-object`), a patch unified into an object as a trait's patch is (structs merge,
//! equal values agree, different values conflict). A conflict is the operation's `err`, as in
//! KubeVela, not a failure of the step.

use super::{Answer, invalid};
use serde_json::{Value, json};
use workflow::task::Outcome;

pub(crate) fn patch_k8s_object(params: &Value) -> Answer {
    let mut value = match params.get("value") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => {
            return invalid("util.patch-k8s-object: value must be an object");
        }
    };
    let patch = match params.get("patch") {
        Some(p @ Value::Object(_)) => p.clone(),
        _ => {
            return invalid("util.patch-k8s-object: patch must be an object");
        }
    };
    match render::patch::apply(&mut value, &patch, &render::patch::Strategies::default()) {
        Ok(()) => Ok(Outcome::Returns(json!({ "result": value }))),
        Err(e) => Ok(Outcome::Returns(json!({
            "err": format!("patch conflicts with the object at {}: {}", e.path, e.message)
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_merge_and_conflicts_are_err() {
        let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}});
        let out = patch_k8s_object(&json!({"value": base, "patch": {"data": {"y": "2"}}})).unwrap();
        assert_eq!(
            out,
            Outcome::Returns(
                json!({"result": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}}})
            )
        );
        let out = patch_k8s_object(&json!({"value": base, "patch": {"data": {"x": "3"}}})).unwrap();
        match out {
            Outcome::Returns(v) => assert!(v["err"].as_str().unwrap().contains("data"), "{v}"),
            other => panic!("{other:?}"),
        }
        assert!(patch_k8s_object(&json!({"value": 1, "patch": {}})).is_err());
    }
}
