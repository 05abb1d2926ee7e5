//! Our generated CRDs against KubeVela's own (`../shared/reference/kubevela-crds`): same
//! group, names, scope, versions, printer columns and subresources, and every property path
//! KubeVela declares exists in ours with a compatible type, the same free-form marking and
//! the same required fields.

mod common;

use std::collections::BTreeMap;

use common::reference_dir;
use serde_json::Value;

/// Kinds KubeVela ships that Sailplane deliberately does not serve, with the reason.
const NOT_SERVED: &[(&str, &str)] = &[
    (
        "workloaddefinitions.core.oam.dev",
        "legacy kind: the type exists (oam::WorkloadDefinition, recorded in ApplicationRevisions) but Sailplane does not serve it",
    ),
    (
        "packages.cue.oam.dev",
        "CUE packages are provided by the built-in cue engine, not a CRD",
    ),
];

/// Property paths allowed to differ, with the reason. Empty: none needed today.
const PATH_EXCEPTIONS: &[(&str, &str)] = &[];

fn load_reference() -> BTreeMap<String, Value> {
    let dir = reference_dir("kubevela-crds");
    let mut out = BTreeMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "no CRD YAML in {}", dir.display());
    for path in entries {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(!name.is_empty(), "{}: CRD without a name", path.display());
            out.insert(name, doc);
        }
    }
    out
}

fn ours() -> BTreeMap<String, Value> {
    oam::crds()
        .into_iter()
        .map(|c| {
            let v = serde_json::to_value(&c).unwrap_or_else(|e| panic!("{e}"));
            (
                v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                v,
            )
        })
        .collect()
}

/// Every schema node by path: `.spec.components[].name`, `{}` for map values.
fn flatten(schema: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    out.insert(path.clone(), schema.clone());
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            flatten(v, format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = schema.get("items") {
        flatten(items, format!("{path}[]"), out);
    }
    if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        flatten(ap, format!("{path}{{}}"), out);
    }
}

fn required(v: &Value) -> Vec<String> {
    let mut r: Vec<String> = v
        .get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    r.sort();
    r
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn compatible_type(theirs: Option<&str>, ours: Option<&str>) -> bool {
    theirs == ours || (theirs == Some("number") && ours == Some("integer"))
}

#[test]
fn every_reference_crd_is_served_or_excused() {
    let reference = load_reference();
    let ours = ours();
    let mut missing = Vec::new();
    for name in reference.keys() {
        if !ours.contains_key(name) && !NOT_SERVED.iter().any(|(n, _)| n == name) {
            missing.push(name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "KubeVela CRDs we do not generate: {missing:?}"
    );
    for name in ours.keys() {
        assert!(
            reference.contains_key(name),
            "we generate {name}, which KubeVela does not have"
        );
    }
}

#[test]
fn crds_match_kubevela() {
    let reference = load_reference();
    let ours = ours();
    let mut problems: Vec<String> = Vec::new();
    let mut checked_paths = 0;
    for (name, mine) in &ours {
        let Some(theirs) = reference.get(name) else {
            continue;
        };
        let (ts, os) = (&theirs["spec"], &mine["spec"]);
        for key in ["group", "scope"] {
            if ts[key] != os[key] {
                problems.push(format!(
                    "{name}: spec.{key} is {} in KubeVela, {} here",
                    ts[key], os[key]
                ));
            }
        }
        for key in [
            "kind",
            "listKind",
            "plural",
            "singular",
            "shortNames",
            "categories",
        ] {
            if ts["names"][key] != os["names"][key] {
                problems.push(format!(
                    "{name}: names.{key} is {} in KubeVela, {} here",
                    ts["names"][key], os["names"][key]
                ));
            }
        }
        // served versions: every served KubeVela version whose storage is true must be ours
        let their_versions: Vec<&Value> = ts["versions"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let our_versions: Vec<&Value> = os["versions"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        for tv in &their_versions {
            let vname = tv["name"].as_str().unwrap_or_default();
            let Some(ov) = our_versions.iter().find(|v| v["name"] == tv["name"]) else {
                problems.push(format!("{name}: version {vname} is not served"));
                continue;
            };
            for key in ["served", "storage"] {
                if tv[key] != ov[key] {
                    problems.push(format!(
                        "{name} {vname}: {key} is {} in KubeVela, {} here",
                        tv[key], ov[key]
                    ));
                }
            }
            let norm = |v: &Value| {
                if v.is_null() {
                    serde_json::json!({})
                } else {
                    v.clone()
                }
            };
            if norm(&tv["subresources"]) != norm(&ov["subresources"]) {
                problems.push(format!(
                    "{name} {vname}: subresources {} vs {}",
                    tv["subresources"], ov["subresources"]
                ));
            }
            let cols = |v: &Value| -> Vec<(String, String, String)> {
                v["additionalPrinterColumns"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| {
                                (
                                    c["name"].as_str().unwrap_or_default().to_string(),
                                    c["jsonPath"].as_str().unwrap_or_default().to_string(),
                                    c["type"].as_str().unwrap_or_default().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if cols(tv) != cols(ov) {
                problems.push(format!(
                    "{name} {vname}: printer columns {:?} vs {:?}",
                    cols(tv),
                    cols(ov)
                ));
            }
            let mut tpaths = BTreeMap::new();
            let mut opaths = BTreeMap::new();
            flatten(&tv["schema"]["openAPIV3Schema"], String::new(), &mut tpaths);
            flatten(&ov["schema"]["openAPIV3Schema"], String::new(), &mut opaths);
            for (path, t) in &tpaths {
                let shown = if path.is_empty() { "<root>" } else { path };
                if PATH_EXCEPTIONS.iter().any(|(p, _)| p == path) {
                    continue;
                }
                checked_paths += 1;
                let Some(o) = opaths.get(path) else {
                    problems.push(format!("{name} {vname}: missing {shown}"));
                    continue;
                };
                let (tt, ot) = (
                    t.get("type").and_then(Value::as_str),
                    o.get("type").and_then(Value::as_str),
                );
                if !compatible_type(tt, ot) {
                    problems.push(format!(
                        "{name} {vname}: {shown} has type {tt:?} in KubeVela, {ot:?} here"
                    ));
                }
                if t.get("format").is_some() && t.get("format") != o.get("format") {
                    problems.push(format!(
                        "{name} {vname}: {shown} format {} vs {}",
                        t["format"], o["format"]
                    ));
                }
                for key in [
                    "x-kubernetes-preserve-unknown-fields",
                    "x-kubernetes-int-or-string",
                ] {
                    if flag(t, key) != flag(o, key) {
                        problems.push(format!(
                            "{name} {vname}: {shown} {key} is {} in KubeVela, {} here",
                            flag(t, key),
                            flag(o, key)
                        ));
                    }
                }
                if required(t) != required(o) {
                    problems.push(format!(
                        "{name} {vname}: {shown} requires {:?} in KubeVela, {:?} here",
                        required(t),
                        required(o)
                    ));
                }
                if t.get("default") != o.get("default") {
                    problems.push(format!(
                        "{name} {vname}: {shown} default {} vs {}",
                        t["default"], o["default"]
                    ));
                }
                if t.get("enum").is_some() && t.get("enum") != o.get("enum") {
                    problems.push(format!(
                        "{name} {vname}: {shown} enum {} vs {}",
                        t["enum"], o["enum"]
                    ));
                }
            }
            // anything we add beyond KubeVela must sit where KubeVela keeps unknown fields anyway
            for path in opaths.keys() {
                if !tpaths.contains_key(path) {
                    problems.push(format!(
                        "{name} {vname}: extra property {path} (not in KubeVela)"
                    ));
                }
            }
        }
    }
    assert!(
        checked_paths > 1000,
        "only {checked_paths} paths compared: reference CRDs look wrong"
    );
    assert!(
        problems.is_empty(),
        "{} differences from KubeVela's CRDs:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn generated_schemas_are_structural() {
    // Every node has a type (or is a free-form node), and free-form objects say so.
    for crd in oam::crds() {
        let v = serde_json::to_value(&crd).unwrap_or_else(|e| panic!("{e}"));
        let name = v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for version in v["spec"]["versions"].as_array().into_iter().flatten() {
            let mut paths = BTreeMap::new();
            flatten(
                &version["schema"]["openAPIV3Schema"],
                String::new(),
                &mut paths,
            );
            for (path, node) in paths {
                assert!(
                    node.get("type").is_some() || flag(&node, "x-kubernetes-int-or-string"),
                    "{name}: {path} has no type"
                );
                for forbidden in ["anyOf", "oneOf", "allOf", "$ref"] {
                    assert!(
                        node.get(forbidden).is_none(),
                        "{name}: {path} uses {forbidden}"
                    );
                }
            }
        }
    }
}

#[test]
fn crds_yaml_is_multi_document_and_reads_back() {
    let yaml = oam::crds_yaml();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let expected: Vec<Value> = oam::crds()
        .iter()
        .map(|c| serde_json::to_value(c).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert_eq!(docs.len(), expected.len());
    for (d, e) in docs.iter().zip(&expected) {
        assert_eq!(d, e);
    }
}
