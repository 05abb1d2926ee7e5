//! KubeVela Applications (and the other kinds) decode into the typed API and encode back to
//! exactly the same object.

mod common;

use common::{assert_same_json, fixture, yaml_values};
use oam::{
    Application, ApplicationPhase, Definition, DefinitionKind, OamObject, WorkflowMode,
    WorkflowRunPhase, WorkflowStepPhase,
};
use serde_json::Value;

fn roundtrip_file(name: &str) -> Vec<OamObject> {
    let text = fixture(name);
    let objects = oam::parse_objects_yaml(name, &text).unwrap_or_else(|e| panic!("{e}"));
    let values = yaml_values(&text);
    assert_eq!(objects.len(), values.len(), "{name}: document count");
    for (i, (obj, expected)) in objects.iter().zip(&values).enumerate() {
        let actual = match obj {
            OamObject::Application(o) => serde_json::to_value(o),
            OamObject::ComponentDefinition(o) => serde_json::to_value(o),
            OamObject::TraitDefinition(o) => serde_json::to_value(o),
            OamObject::PolicyDefinition(o) => serde_json::to_value(o),
            OamObject::WorkflowStepDefinition(o) => serde_json::to_value(o),
            OamObject::Workflow(o) => serde_json::to_value(o),
            OamObject::Policy(o) => serde_json::to_value(o),
            OamObject::ApplicationRevision(o) => serde_json::to_value(o),
            OamObject::DefinitionRevision(o) => serde_json::to_value(o),
            OamObject::ResourceTracker(o) => serde_json::to_value(o),
            OamObject::Other { value, .. } => Ok(value.clone()),
        }
        .unwrap_or_else(|e| panic!("{name}: cannot serialise document {}: {e}", i + 1));
        assert_same_json(&format!("{name} document {}", i + 1), expected, &actual);
        // and the JSON form decodes back to the same typed value
        if let OamObject::Application(app) = obj {
            let again: Application = serde_json::from_value(actual.clone())
                .unwrap_or_else(|e| panic!("{name}: JSON does not decode: {e}"));
            assert_eq!(&again, app);
        }
    }
    objects
}

fn apps(objects: &[OamObject]) -> Vec<&Application> {
    objects
        .iter()
        .filter_map(|o| match o {
            OamObject::Application(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn webservice_with_traits() {
    let objects = roundtrip_file("webservice-traits.yaml");
    let app = apps(&objects)[0];
    app.validate().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(app.spec.components.len(), 3);
    let frontend = app.component("frontend").expect("frontend");
    assert_eq!(frontend.type_, "webservice");
    assert_eq!(frontend.depends_on, vec!["backend"]);
    let types: Vec<&str> = frontend.traits.iter().map(|t| t.type_.as_str()).collect();
    assert_eq!(types, ["scaler", "gateway", "sidecar", "labels"]);
    assert_eq!(
        frontend.traits[0]
            .properties
            .as_ref()
            .and_then(|p| p.get("replicas")),
        Some(&Value::from(3))
    );
    let backend = app.component("backend").expect("backend");
    assert_eq!(backend.external_revision.as_deref(), Some("backend-v3"));
    assert_eq!(
        backend
            .scopes
            .get("healthscopes.core.oam.dev")
            .map(String::as_str),
        Some("website-health")
    );
    // the same via the Application-only entry point
    let parsed =
        oam::parse_application_yaml("webservice-traits.yaml", &fixture("webservice-traits.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.len(), 1);
    assert_eq!(&parsed[0], app);
}

#[test]
fn multicluster_policies() {
    let objects = roundtrip_file("multicluster-policies.yaml");
    let app = apps(&objects)[0];
    app.validate().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(app.spec.policies.len(), 6);
    let topo: oam::policy::TopologyPolicySpec = app
        .policy("topology-prod")
        .expect("policy")
        .typed_properties()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        topo.cluster_label_selector
            .as_ref()
            .and_then(|s| s.get("region"))
            .map(String::as_str),
        Some("eu")
    );
    let ov: oam::policy::OverridePolicySpec = app
        .policy("override-high-availability")
        .expect("policy")
        .typed_properties()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ov.components[0].traits[1].disable, Some(true));
    let gc: oam::policy::GarbageCollectPolicySpec = app
        .policy("gc")
        .expect("policy")
        .typed_properties()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gc.rules[0].strategy, "onAppDelete");
    let wf = app.spec.workflow.as_ref().expect("workflow");
    assert_eq!(wf.steps[1].timeout.as_deref(), Some("24h"));
}

#[test]
fn workflow_with_every_feature() {
    let objects = roundtrip_file("workflow-full.yaml");
    let app = apps(&objects)[0];
    app.validate().unwrap_or_else(|e| panic!("{e}"));
    let wf = app.spec.workflow.as_ref().expect("workflow");
    let mode = wf.mode.as_ref().expect("mode");
    assert_eq!(mode.steps, Some(WorkflowMode::Dag));
    assert_eq!(mode.sub_steps, Some(WorkflowMode::StepByStep));
    let notify = &wf.steps[1];
    assert_eq!(
        notify.if_.as_deref(),
        Some("status[\"apply-db\"].succeeded")
    );
    assert_eq!(
        notify.inputs[0].parameter_key.as_deref(),
        Some("slack.message.text")
    );
    let group = &wf.steps[2];
    assert_eq!(group.type_, "step-group");
    assert_eq!(group.mode, Some(WorkflowMode::Dag));
    assert_eq!(group.sub_steps.len(), 3);
    assert_eq!(group.sub_steps[1].depends_on, vec!["apply-api"]);
    assert_eq!(
        group.sub_steps[1].outputs[0].value_from,
        "response.statusCode"
    );
    assert_eq!(
        group.sub_steps[2]
            .meta
            .as_ref()
            .and_then(|m| m.alias.as_deref()),
        Some("Wait for approval")
    );
    assert_eq!(wf.steps[0].display_name(), "Deploy the database");
    let api = app.component("api").expect("api");
    assert_eq!(api.inputs[0].from, "db-host");
}

#[test]
fn workflow_ref_and_external_objects() {
    let objects = roundtrip_file("workflow-ref.yaml");
    assert_eq!(
        objects.iter().map(OamObject::kind).collect::<Vec<_>>(),
        ["Application", "Workflow", "Policy"]
    );
    let OamObject::Workflow(w) = &objects[1] else {
        panic!("not a workflow")
    };
    assert_eq!(w.spec.steps[1].sub_steps[0].timeout.as_deref(), Some("1m"));
    let OamObject::Policy(p) = &objects[2] else {
        panic!("not a policy")
    };
    assert_eq!(p.spec.type_, "topology");
    assert_eq!(
        apps(&objects)[0]
            .spec
            .workflow
            .as_ref()
            .and_then(|w| w.ref_.as_deref()),
        Some("make-release-in-hangzhou")
    );
}

#[test]
fn status_as_kubevela_writes_it() {
    let objects = roundtrip_file("app-with-status.yaml");
    let app = apps(&objects)[0];
    let status = app.status.as_ref().expect("status");
    assert_eq!(status.status, Some(ApplicationPhase::WorkflowSuspending));
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(
        status
            .condition("WorkflowFinished")
            .and_then(|c| c.message.as_deref()),
        Some("workflow is suspending")
    );
    assert_eq!(status.services[0].traits[1].pending, Some(true));
    assert_eq!(
        status.services[0]
            .workload_definition
            .as_ref()
            .map(|w| w.kind.as_str()),
        Some("Deployment")
    );
    let wf = status.workflow.as_ref().expect("workflow status");
    assert_eq!(wf.phase, Some(WorkflowRunPhase::Suspending));
    assert!(wf.suspend && !wf.finished && !wf.terminated);
    assert_eq!(wf.steps[0].phase, Some(WorkflowStepPhase::Succeeded));
    assert_eq!(
        wf.steps[2].sub_steps[0].phase,
        Some(WorkflowStepPhase::Pending)
    );
    assert_eq!(
        wf.context_backend.as_ref().and_then(|c| c.kind.as_deref()),
        Some("ConfigMap")
    );
    assert_eq!(status.latest_revision.as_ref().map(|r| r.revision), Some(2));
}

#[test]
fn definitions() {
    let objects = roundtrip_file("definitions.yaml");
    let OamObject::ComponentDefinition(web) = &objects[0] else {
        panic!("not a component definition")
    };
    assert_eq!(
        <oam::ComponentDefinition as Definition>::definition_kind(),
        DefinitionKind::Component
    );
    assert!(
        web.template()
            .is_some_and(|t| t.contains("parameter.image"))
    );
    assert!(web.health_policy().is_some_and(|h| h.contains("isHealth")));
    assert!(web.custom_status().is_some_and(|h| h.contains("message")));
    assert!(web.details().is_some());
    assert!(
        web.description()
            .is_some_and(|d| d.starts_with("Describes"))
    );
    assert_eq!(web.definition_name(), "webservice");
    let OamObject::TraitDefinition(scaler) = &objects[1] else {
        panic!("not a trait definition")
    };
    assert_eq!(scaler.spec.stage, Some(oam::TraitStage::PostDispatch));
    let deployment = oam::WorkloadGvk {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
    };
    assert!(scaler.applies_to("webservice", None));
    assert!(scaler.applies_to("worker", Some(&deployment)));
    assert!(!scaler.applies_to(
        "task",
        Some(&oam::WorkloadGvk {
            api_version: "batch/v1".into(),
            kind: "Job".into()
        })
    ));
    let OamObject::PolicyDefinition(topo) = &objects[2] else {
        panic!("not a policy definition")
    };
    assert_eq!(topo.health_policy(), None);
    let OamObject::WorkflowStepDefinition(suspend) = &objects[3] else {
        panic!("not a step definition")
    };
    assert!(
        suspend
            .template()
            .is_some_and(|t| t.contains("builtin.#Suspend"))
    );
    for kind in DefinitionKind::ALL {
        assert_eq!(DefinitionKind::from_kind_name(kind.kind_name()), Some(kind));
        assert!(kind.plural().ends_with("definitions"));
    }
}

#[test]
fn tracker_and_revisions() {
    let objects = roundtrip_file("tracker-and-revision.yaml");
    let OamObject::ResourceTracker(rt) = &objects[0] else {
        panic!("not a resource tracker")
    };
    assert_eq!(rt.spec.type_, Some(oam::ResourceTrackerType::Versioned));
    assert_eq!(
        rt.spec.managed_resources[0].key(),
        "local/apps/v1/Deployment/default/express-server"
    );
    assert!(rt.spec.managed_resources[1].deleted && rt.spec.managed_resources[1].skip_gc);
    assert_eq!(
        rt.spec.managed_resources[1].trait_.as_deref(),
        Some("gateway")
    );
    let OamObject::ApplicationRevision(rev) = &objects[2] else {
        panic!("not a revision")
    };
    assert_eq!(
        rev.spec.application.spec.components[0].name,
        "express-server"
    );
    assert!(rev.spec.component_definitions.contains_key("webservice"));
    assert_eq!(
        rev.spec.policies["topology-hangzhou-clusters"].spec.type_,
        "topology"
    );
    assert!(rev.status.as_ref().is_some_and(|s| s.succeeded));
    let OamObject::DefinitionRevision(dr) = &objects[3] else {
        panic!("not a definition revision")
    };
    assert_eq!(dr.spec.definition_type, oam::DefinitionType::Trait);
}

#[test]
fn phases_keep_unknown_values() {
    let p: ApplicationPhase =
        serde_json::from_value(Value::from("running")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p, ApplicationPhase::Running);
    let p: ApplicationPhase =
        serde_json::from_value(Value::from("somethingNew")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p, ApplicationPhase::Other("somethingNew".into()));
    assert_eq!(
        serde_json::to_value(&p).ok(),
        Some(Value::from("somethingNew"))
    );
    for known in ApplicationPhase::KNOWN {
        assert_eq!(&ApplicationPhase::from(known.as_str()), known);
    }
}

#[test]
fn empty_fields_are_not_written() {
    let app = Application::new(
        "minimal",
        oam::ApplicationSpec {
            components: vec![oam::ApplicationComponent {
                name: "web".into(),
                type_: "webservice".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let v = serde_json::to_value(&app).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v,
        serde_json::json!({
            "apiVersion": "core.oam.dev/v1beta1",
            "kind": "Application",
            "metadata": {"name": "minimal"},
            "spec": {"components": [{"name": "web", "type": "webservice"}]}
        })
    );
}

#[test]
fn definitions_validate() {
    let objects = oam::parse_objects_yaml("definitions.yaml", &fixture("definitions.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    for o in &objects {
        let result = match o {
            OamObject::ComponentDefinition(d) => oam::validate_definition(d),
            OamObject::TraitDefinition(d) => oam::validate_definition(d),
            OamObject::PolicyDefinition(d) => oam::validate_definition(d),
            OamObject::WorkflowStepDefinition(d) => oam::validate_definition(d),
            _ => Ok(()),
        };
        result.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut empty = oam::TraitDefinition::new("Bad_Name", Default::default());
    empty.spec.schematic = Some(oam::Schematic::default());
    let e = oam::validate_definition(&empty)
        .err()
        .unwrap_or_else(|| panic!("no error"));
    let fields: Vec<&str> = e.issues().iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["metadata.name", "spec.schematic.cue"]);
    assert!(
        e.to_string()
            .starts_with("TraitDefinition \"Bad_Name\" is invalid"),
        "{e}"
    );
}

#[test]
fn workflow_objects_validate() {
    let objects = oam::parse_objects_yaml("workflow-ref.yaml", &fixture("workflow-ref.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let OamObject::Workflow(w) = &objects[1] else {
        panic!("not a workflow")
    };
    w.validate().unwrap_or_else(|e| panic!("{e}"));
    let app = apps(&objects)[0];
    assert_eq!(app.name(), "with-ref");
    assert_eq!(app.namespace(), "default");
    assert_eq!(app.publish_version(), None);
}

#[test]
fn helpers() {
    let c = oam::Condition::new("Ready", true, "Available", None);
    assert!(c.is_true());
    let mut status = oam::ApplicationStatus::default();
    status.set_condition(c);
    status.set_condition(oam::Condition::new(
        "Ready",
        false,
        "Unavailable",
        Some("x".into()),
    ));
    assert_eq!(status.conditions.len(), 1);
    assert!(
        !status
            .condition("Ready")
            .is_some_and(oam::Condition::is_true)
    );
    let mode = oam::WorkflowExecuteMode {
        steps: Some(WorkflowMode::StepByStep),
        sub_steps: None,
    };
    assert_eq!(
        oam::WorkflowStatus::mode_string(Some(&mode), WorkflowMode::Dag),
        "StepByStep-DAG"
    );
    let objects =
        oam::parse_objects_yaml("webservice-traits.yaml", &fixture("webservice-traits.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
    let app = apps(&objects)[0];
    let frontend = app.component("frontend").expect("frontend");
    assert!(frontend.trait_of_type("gateway").is_some());
    let props: serde_json::Map<String, Value> = frontend
        .typed_properties()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(props.get("memory"), Some(&Value::from("256Mi")));
    assert_eq!(app.publish_version(), Some("alpha1"));
}

#[test]
fn policy_rule_selectors_match_like_kubevela() {
    use oam::policy::{GarbageCollectPolicySpec, ResourceLabels};
    let objects = oam::parse_objects_yaml(
        "multicluster-policies.yaml",
        &fixture("multicluster-policies.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let app = apps(&objects)[0];
    let gc: GarbageCollectPolicySpec = app
        .policy("gc")
        .expect("gc")
        .typed_properties()
        .unwrap_or_else(|e| panic!("{e}"));
    let manifest = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "redis-master", "labels": {"app.oam.dev/component": "redis"}}
    });
    assert_eq!(
        gc.strategy_for(&ResourceLabels::from_manifest(&manifest)),
        Some("onAppDelete")
    );
    let other = serde_json::json!({"kind": "Deployment", "metadata": {"name": "nginx"}});
    assert_eq!(
        gc.strategy_for(&ResourceLabels::from_manifest(&other)),
        None
    );
}
