//! Errors name what the user has to fix: an unknown type lists the closest names; a parameter of
//! the wrong type names the component, the trait, the parameter and the definition's line.

// Test helpers panic on purpose: the panic is the failure report.
#![allow(clippy::unwrap_used)]

use render::catalog::CompileCache;
use render::{Catalog, RenderContext};
use serde_json::{Value, json};
use std::sync::OnceLock;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let cache = CompileCache::default();
        let mut cat = Catalog::new();
        for d in render::builtin::definitions().unwrap() {
            cat.insert(cache.compile(d).unwrap());
        }
        cat
    })
}

fn err(type_: &str, props: Value, traits: Value) -> String {
    let component: oam::ApplicationComponent = serde_json::from_value(json!({
        "name": "api", "type": type_, "properties": props, "traits": traits,
    }))
    .unwrap();
    let ctx = RenderContext {
        app_name: "shop".into(),
        namespace: "prod".into(),
        ..Default::default()
    };
    match render::render_component(&component, catalog(), &ctx) {
        Ok(r) => panic!("should fail, rendered {:?}", r.workload),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_types_list_the_closest_names() {
    let e = err("webservce", json!({"image": "nginx"}), json!([]));
    assert_eq!(
        e,
        "component type \"webservce\" is not defined (did you mean \"webservice\"?)"
    );
    let e = err(
        "webservice",
        json!({"image": "nginx"}),
        json!([{"type": "scalr", "properties": {"replicas": 2}}]),
    );
    assert_eq!(
        e,
        "trait type \"scalr\" is not defined (did you mean \"scaler\"?)"
    );
    let e = err("zzzzzzzzzzzzzzzz", json!({}), json!([]));
    assert!(
        e.starts_with("component type \"zzzzzzzzzzzzzzzz\" is not defined (known: "),
        "{e}"
    );
    assert!(e.contains("webservice") && e.contains("worker"), "{e}");
}

/// The line of the first `<file>:<line>` in a message.
fn cue_line(e: &str, file: &str) -> Option<usize> {
    let at = e.find(&format!("{file}:"))? + file.len() + 1;
    let digits: String = e[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The 1-based line of the first line of `definitions/<kind>/<name>.cue` containing `needle`.
fn line_of(kind: &str, name: &str, needle: &str) -> usize {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../definitions")
            .join(kind)
            .join(format!("{name}.cue")),
    )
    .unwrap();
    src.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn wrong_component_parameter_names_component_parameter_and_line() {
    let e = err("webservice", json!({"image": 3}), json!([]));
    assert!(e.starts_with("component \"api\" (webservice): "), "{e}");
    assert!(e.contains("parameter.image"), "{e}");
    // The line of `image: string` in definitions/component/webservice.cue itself.
    let line = cue_line(&e, "definitions/component/webservice.cue")
        .unwrap_or_else(|| panic!("no file line in {e}"));
    assert_eq!(
        line,
        line_of("component", "webservice", "\timage: string"),
        "{e}"
    );
}

#[test]
fn wrong_trait_parameter_names_component_trait_parameter_and_line() {
    let e = err(
        "webservice",
        json!({"image": "nginx"}),
        json!([{"type": "scaler", "properties": {"replicas": "three"}}]),
    );
    assert!(
        e.starts_with("component \"api\", trait \"scaler\": "),
        "{e}"
    );
    assert!(e.contains("parameter.replicas"), "{e}");
    // An empty disjunction carries no position: the parameter's declaration is given.
    let line = cue_line(&e, "definitions/trait/scaler.cue")
        .unwrap_or_else(|| panic!("no file line in {e}"));
    assert_eq!(
        line,
        line_of("trait", "scaler", "replicas: *1 | int"),
        "{e}"
    );
}

#[test]
fn hub_definitions_point_at_their_template_lines() {
    // A definition from a hub object: its template text is what the user wrote, so lines are
    // the template's own.
    let def = render::Definition::from_object(&json!({
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "TraitDefinition",
        "metadata": {"name": "replicas", "namespace": "vela-system"},
        "spec": {"schematic": {"cue": {"template": "parameter: {\n\tcount: *1 | int\n}\npatch: spec: replicas: parameter.count\n"}}},
    }))
    .unwrap();
    let cache = CompileCache::default();
    let mut cat = Catalog::new();
    for d in render::builtin::definitions().unwrap() {
        cat.insert(cache.compile(d).unwrap());
    }
    cat.insert(cache.compile(def).unwrap());
    let component: oam::ApplicationComponent = serde_json::from_value(json!({
        "name": "api", "type": "webservice", "properties": {"image": "nginx"},
        "traits": [{"type": "replicas", "properties": {"count": "two"}}],
    }))
    .unwrap();
    let e = render::render_component(&component, &cat, &RenderContext::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("component \"api\", trait \"replicas\": parameter.count"),
        "{e}"
    );
    assert_eq!(cue_line(&e, "replicas.cue"), Some(2), "{e}");
}

#[test]
fn builtins_installed_on_the_hub_still_point_at_their_files() {
    // `sail install` puts the built-ins on the hub; the controller reads them back from there.
    let cache = CompileCache::default();
    let mut cat = Catalog::new();
    for d in render::builtin::definitions().unwrap() {
        let back = render::Definition::from_object(&d.to_object("vela-system")).unwrap();
        cat.insert(cache.compile(back).unwrap());
    }
    let component: oam::ApplicationComponent = serde_json::from_value(json!({
        "name": "api", "type": "webservice", "properties": {"image": 3},
    }))
    .unwrap();
    let e = render::render_component(&component, &cat, &RenderContext::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        cue_line(&e, "definitions/component/webservice.cue"),
        Some(line_of("component", "webservice", "\timage: string")),
        "{e}"
    );
}
