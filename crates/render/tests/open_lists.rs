//! Trait patches with open lists: `containers: [...{...}]` patches every element of the
//! workload's list, as CUE unification does in KubeVela.

// Test helpers panic on purpose: the panic is the failure report.
#![allow(clippy::unwrap_used)]

use render::catalog::CompileCache;
use render::{Catalog, Definition, RenderContext};
use serde_json::{Value, json};

const WORKLOAD: &str = r#"
"two-containers": {
	type: "component"
	attributes: workload: definition: {apiVersion: "apps/v1", kind: "Deployment"}
}
template: {
	output: {
		apiVersion: "apps/v1"
		kind:       "Deployment"
		spec: template: spec: {
			containers: [{
				name:  "app"
				image: parameter.image
				env: [{name: "MODE", value: "prod"}]
			}, {
				name:  "proxy"
				image: "envoy"
			}]
			volumes: [{name: "data", emptyDir: {}}]
		}
	}
	parameter: image: string
}
"#;

const ENV_EVERYWHERE: &str = r#"
"env-everywhere": {
	type: "trait"
	attributes: appliesToWorkloads: ["*"]
}
template: {
	patch: spec: template: spec: containers: [...{
		// +patchKey=name
		env: [for k, v in parameter.env {name: k, value: v}]
	}]
	parameter: env: [string]: string
}
"#;

const LIFECYCLE_AND_CLOSED: &str = r#"
"stop-hook": {
	type: "trait"
	attributes: appliesToWorkloads: ["*"]
}
template: {
	patch: spec: template: spec: {
		containers: [...{lifecycle: preStop: exec: command: parameter.command}]
		// A closed empty list stays what it is: it does not match the workload's volumes.
		if parameter.noVolumes {
			volumes: []
		}
	}
	parameter: {
		command: [...string]
		noVolumes: *false | bool
	}
}
"#;

fn catalog() -> Catalog {
    let cache = CompileCache::default();
    let mut cat = Catalog::new();
    for (f, src) in [
        ("two-containers.cue", WORKLOAD),
        ("env-everywhere.cue", ENV_EVERYWHERE),
        ("stop-hook.cue", LIFECYCLE_AND_CLOSED),
    ] {
        cat.insert(
            cache
                .compile(Definition::from_cue_file(f, src).unwrap())
                .unwrap(),
        );
    }
    cat
}

fn render(traits: Value) -> Result<Value, render::Error> {
    let component: oam::ApplicationComponent = serde_json::from_value(json!({
        "name": "api", "type": "two-containers", "properties": {"image": "shop/api:1"},
        "traits": traits,
    }))
    .unwrap();
    let ctx = RenderContext {
        app_name: "shop".into(),
        namespace: "prod".into(),
        ..Default::default()
    };
    let r = render::render_component(&component, &catalog(), &ctx)?;
    Ok(r.workload.unwrap().object)
}

#[test]
fn open_list_patch_applies_to_every_element_with_its_patch_key() {
    let w = render(json!([{"type": "env-everywhere", "properties": {"env": {"REGION": "eu", "MODE": "prod"}}}]))
        .unwrap();
    let containers = &w["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "MODE", "value": "prod"}, {"name": "REGION", "value": "eu"}])
    );
    // The proxy had no env: it gets the trait's list, in the trait's order.
    let mut proxy_env: Vec<String> = containers[1]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}={}",
                e["name"].as_str().unwrap(),
                e["value"].as_str().unwrap()
            )
        })
        .collect();
    proxy_env.sort();
    assert_eq!(proxy_env, vec!["MODE=prod", "REGION=eu"]);
    assert_eq!(containers[1]["image"], "envoy");
}

#[test]
fn open_list_conflicts_are_errors() {
    let e = render(json!([{"type": "env-everywhere", "properties": {"env": {"MODE": "dev"}}}]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("env-everywhere") && e.contains("\"prod\""),
        "{e}"
    );
}

#[test]
fn open_list_of_structs_and_a_closed_empty_list() {
    let w =
        render(json!([{"type": "stop-hook", "properties": {"command": ["sleep", "5"]}}])).unwrap();
    let containers = &w["spec"]["template"]["spec"]["containers"];
    for c in containers.as_array().unwrap() {
        assert_eq!(
            c["lifecycle"]["preStop"]["exec"]["command"],
            json!(["sleep", "5"])
        );
    }
    // Both traits in order: the second sees the first's patch.
    let w = render(json!([
        {"type": "stop-hook", "properties": {"command": ["sleep", "5"]}},
        {"type": "env-everywhere", "properties": {"env": {"REGION": "eu"}}},
    ]))
    .unwrap();
    let proxy = &w["spec"]["template"]["spec"]["containers"][1];
    assert_eq!(proxy["env"], json!([{"name": "REGION", "value": "eu"}]));
    assert!(proxy["lifecycle"].is_object());
    // `volumes: []` is closed: it does not patch each volume, it conflicts with the list.
    let e =
        render(json!([{"type": "stop-hook", "properties": {"command": ["x"], "noVolumes": true}}]))
            .unwrap_err()
            .to_string();
    assert!(e.contains("volumes"), "{e}");
}

const WITH_SERVICE: &str = r#"
"with-service": {
	type: "component"
	attributes: workload: definition: {apiVersion: "apps/v1", kind: "Deployment"}
}
template: {
	output: {
		apiVersion: "apps/v1"
		kind:       "Deployment"
		spec: template: spec: containers: [{name: "app", image: "nginx"}]
	}
	outputs: svc: {
		apiVersion: "v1"
		kind:       "Service"
		spec: ports: [{port: 80}, {port: 443}]
	}
}
"#;

const PORT_PROTOCOL: &str = r#"
"udp-ports": {
	type: "trait"
	attributes: appliesToWorkloads: ["*"]
}
template: {
	patchOutputs: svc: spec: ports: [...{protocol: "UDP"}]
}
"#;

#[test]
fn open_lists_in_patch_outputs() {
    let cache = CompileCache::default();
    let mut cat = Catalog::new();
    for (f, src) in [
        ("with-service.cue", WITH_SERVICE),
        ("udp-ports.cue", PORT_PROTOCOL),
    ] {
        cat.insert(
            cache
                .compile(Definition::from_cue_file(f, src).unwrap())
                .unwrap(),
        );
    }
    let component: oam::ApplicationComponent = serde_json::from_value(json!({
        "name": "api", "type": "with-service", "traits": [{"type": "udp-ports"}],
    }))
    .unwrap();
    let r = render::render_component(&component, &cat, &RenderContext::default()).unwrap();
    let svc = r
        .auxiliaries
        .iter()
        .find(|o| o.output_name.as_deref() == Some("svc"))
        .unwrap();
    assert_eq!(
        svc.object["spec"]["ports"],
        json!([{"port": 80, "protocol": "UDP"}, {"port": 443, "protocol": "UDP"}])
    );
}
