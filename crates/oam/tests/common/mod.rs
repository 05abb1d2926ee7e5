//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// `crates/oam/tests/fixtures/<name>`, read.
pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// The shared reference directory (`/work/shared/reference` next to the workspace).
/// Fails clearly when it is absent.
pub fn reference_dir(sub: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference")
        .join(sub);
    assert!(
        dir.is_dir(),
        "reference directory {} is missing: these tests compare against KubeVela's own files, \
         expected at <workspace>/../shared/reference/{sub}",
        dir.display()
    );
    dir
}

/// Every document of a YAML text as a JSON value.
pub fn yaml_values(text: &str) -> Vec<Value> {
    oam::parse::split_documents(text)
        .iter()
        .map(|d| {
            serde_saphyr::from_str::<Value>(&d.text)
                .unwrap_or_else(|e| panic!("fixture document {} is not YAML: {e}", d.index))
        })
        .collect()
}

/// Asserts `a == b`, showing the first differing path.
pub fn assert_same_json(what: &str, expected: &Value, actual: &Value) {
    if let Some(diff) = first_diff(expected, actual, String::new()) {
        panic!(
            "{what}: round trip differs at {diff}\nexpected: {}\nactual:   {}",
            serde_json::to_string_pretty(expected).unwrap_or_default(),
            serde_json::to_string_pretty(actual).unwrap_or_default()
        );
    }
}

fn first_diff(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => return Some(format!("{path}.{k} (missing in output)")),
                    Some(w) => {
                        if let Some(d) = first_diff(v, w, format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}.{k} (extra in output)"))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path} (length {} vs {})", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (v, w))| first_diff(v, w, format!("{path}[{i}]")))
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(format!("{path} ({a} vs {b})")),
    }
}
