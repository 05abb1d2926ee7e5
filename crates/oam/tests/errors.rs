//! Bad input gives one clear error naming the file, the document, the line and the field,
//! and saying what was expected.

use oam::Error;

const HEADER: &str =
    "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: app\n";

fn parse_err(text: &str) -> Error {
    match oam::parse_application_yaml("app.yaml", text) {
        Ok(apps) => panic!("expected an error, parsed {} applications", apps.len()),
        Err(e) => e,
    }
}

fn decode_parts(e: &Error) -> (&str, usize, Option<usize>, Option<&str>, &str) {
    match e.decode() {
        Some(d) => (
            d.file.as_str(),
            d.document,
            d.line,
            d.field.as_deref(),
            d.message.as_str(),
        ),
        None => panic!("expected a decode error, got {e:?}"),
    }
}

#[test]
fn malformed_yaml() {
    let text = format!(
        "{HEADER}spec:\n  components:\n    - name: web\n      type: webservice\n      properties: {{image: [nginx\n"
    );
    let e = parse_err(&text);
    let (file, doc, line, _, message) = decode_parts(&e);
    assert_eq!((file, doc), ("app.yaml", 1));
    assert!(line.is_some_and(|l| l >= 9), "line {line:?}");
    assert!(!message.is_empty());
    let shown = e.to_string();
    assert!(shown.starts_with("app.yaml: document 1, line "), "{shown}");
    // the snippet shows the file name and the offending line
    let Some(snippet) = e.decode().and_then(|d| d.snippet.as_deref()) else {
        panic!("no snippet")
    };
    assert!(snippet.contains("app.yaml"), "{snippet}");
    assert!(snippet.contains("properties: {image: [nginx"), "{snippet}");
}

#[test]
fn malformed_yaml_in_second_document_names_it() {
    let good = format!("{HEADER}spec:\n  components: []\n");
    let text = format!(
        "{good}---\n{HEADER}spec:\n  components:\n  - name: x\n    type: y\n   bad: indent\n"
    );
    let e = parse_err(&text);
    let (_, doc, line, _, _) = decode_parts(&e);
    assert_eq!(doc, 2, "{e}");
    // the second document starts at line 8 of the file; its error lies after that
    assert!(line.is_some_and(|l| l > 8), "{e}");
}

#[test]
fn wrong_field_type() {
    let text = format!(
        "{HEADER}spec:\n  components:\n    - name: web\n      type: webservice\n      traits: {{type: scaler}}\n"
    );
    let e = parse_err(&text);
    let (_, doc, line, field, message) = decode_parts(&e);
    assert_eq!(doc, 1);
    assert_eq!(line, Some(9), "{e}");
    assert_eq!(field, Some("spec.components[0].traits"));
    assert!(message.contains("expected a list"), "{message}");
    assert_eq!(
        e.to_string(),
        "app.yaml: document 1, line 9 column 15: field `spec.components[0].traits`: expected a list (YAML sequence)"
    );
}

#[test]
fn string_where_a_number_is_expected() {
    let text = "apiVersion: core.oam.dev/v1beta1\nkind: ResourceTracker\nmetadata:\n  name: rt\nspec:\n  applicationGeneration: many\n";
    let e = oam::parse_yaml::<oam::ResourceTracker>("rt.yaml", text)
        .err()
        .unwrap_or_else(|| panic!("no error"));
    let (file, _, line, field, message) = decode_parts(&e);
    assert_eq!(file, "rt.yaml");
    assert_eq!(line, Some(6));
    assert_eq!(field, Some("spec.applicationGeneration"));
    assert_eq!(message, "expected an integer, found `many`");
}

#[test]
fn component_without_type() {
    let text = format!(
        "{HEADER}spec:\n  components:\n    - name: web\n      properties:\n        image: nginx\n"
    );
    let e = parse_err(&text);
    let (_, doc, line, field, message) = decode_parts(&e);
    assert_eq!(doc, 1);
    assert_eq!(field, Some("spec.components[0].type"));
    assert_eq!(message, "missing field `type`");
    assert!(line.is_some_and(|l| (7..=9).contains(&l)), "{e}");
}

#[test]
fn unknown_field_is_rejected_with_the_known_ones() {
    let text = format!(
        "{HEADER}spec:\n  components:\n    - name: web\n      type: webservice\n      propertes:\n        image: nginx\n"
    );
    let e = parse_err(&text);
    let (_, doc, line, field, message) = decode_parts(&e);
    assert_eq!(doc, 1);
    assert_eq!(line, Some(9));
    assert_eq!(field, Some("spec.components[0].propertes"));
    assert!(
        message.starts_with("unknown field `propertes`, expected one of: "),
        "{message}"
    );
    assert!(message.contains("properties"), "{message}");
}

#[test]
fn wrong_kind() {
    let text = "apiVersion: core.oam.dev/v1beta1\nkind: ComponentDefinition\nmetadata:\n  name: x\nspec:\n  workload: {}\n";
    let e = parse_err(text);
    assert_eq!(
        e.to_string(),
        "app.yaml: document 1, line 1: expected kind Application (apiVersion core.oam.dev/v1beta1), found kind ComponentDefinition (apiVersion core.oam.dev/v1beta1)"
    );
}

#[test]
fn missing_kind() {
    let e = parse_err("apiVersion: core.oam.dev/v1beta1\nmetadata:\n  name: x\n");
    assert_eq!(e.field(), Some("kind"));
    assert!(e.to_string().contains("missing `kind`"), "{e}");
}

#[test]
fn not_an_object() {
    let e = parse_err("- just\n- a list\n");
    assert!(
        e.to_string().contains("expected a Kubernetes object"),
        "{e}"
    );
}

#[test]
fn empty_documents_are_skipped() {
    let text = format!("---\n# nothing\n---\n{HEADER}spec:\n  components: []\n---\n");
    let apps = oam::parse_application_yaml("app.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(apps.len(), 1);
}

#[test]
fn validation_names_every_problem() {
    let text = format!(
        "{HEADER}spec:
  components:
    - name: web
      type: webservice
      dependsOn: [db, web]
    - name: web
      type: ''
    - name: -bad-
      type: worker
      traits:
        - type: ''
  policies:
    - name: p
      type: topology
    - name: p
      type: override
  workflow:
    steps:
      - name: a
        type: deploy
        timeout: 5 minutes
        dependsOn: [zzz]
      - name: a
        type: step-group
        subSteps:
          - name: s1
            type: step-group
        outputs:
          - name: out
            valueFrom: ''
"
    );
    let apps = oam::parse_application_yaml("app.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let e = apps[0]
        .validate()
        .err()
        .unwrap_or_else(|| panic!("no error"));
    let fields: Vec<&str> = e.issues().iter().map(|i| i.field.as_str()).collect();
    for expected in [
        "spec.components[0].dependsOn[0]",
        "spec.components[0].dependsOn[1]",
        "spec.components[1].name",
        "spec.components[1].type",
        "spec.components[2].name",
        "spec.components[2].traits[0].type",
        "spec.policies[1].name",
        "spec.workflow.steps[1].name",
        "spec.workflow.steps[0].timeout",
        "spec.workflow.steps[0].dependsOn[0]",
        "spec.workflow.steps[1].subSteps[0].type",
        "spec.workflow.steps[1].outputs[0].valueFrom",
    ] {
        assert!(fields.contains(&expected), "no issue for {expected}: {e}");
    }
    let shown = e.to_string();
    assert!(
        shown.starts_with("Application \"app\" is invalid ("),
        "{shown}"
    );
    assert!(shown.contains("no component named \"db\""), "{shown}");
    assert!(shown.contains("depends on itself"), "{shown}");
}

#[test]
fn dependency_cycles_are_found() {
    let text = format!(
        "{HEADER}spec:\n  components:\n    - {{name: a, type: t, dependsOn: [c]}}\n    - {{name: b, type: t, dependsOn: [a]}}\n    - {{name: c, type: t, dependsOn: [b]}}\n"
    );
    let apps = oam::parse_application_yaml("app.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let e = apps[0]
        .validate()
        .err()
        .unwrap_or_else(|| panic!("no error"));
    assert_eq!(e.issues().len(), 1, "{e}");
    assert_eq!(
        e.issues()[0].message,
        "dependsOn forms a cycle: a -> c -> b -> a"
    );
}

#[test]
fn bad_application_name() {
    let text = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: My_App\nspec:\n  components: []\n";
    let apps = oam::parse_application_yaml("app.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    let e = apps[0]
        .validate()
        .err()
        .unwrap_or_else(|| panic!("no error"));
    assert_eq!(e.field(), Some("metadata.name"));
}

#[test]
fn typed_policy_properties_name_the_field() {
    let text = format!(
        "{HEADER}spec:\n  components: []\n  policies:\n    - name: t\n      type: topology\n      properties:\n        clusters: local\n"
    );
    let apps = oam::parse_application_yaml("app.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let e = apps[0].spec.policies[0]
        .typed_properties::<oam::policy::TopologyPolicySpec>()
        .err()
        .unwrap_or_else(|| panic!("no error"));
    assert_eq!(e.field(), Some("clusters"));
    assert!(
        e.to_string()
            .starts_with("policy \"t\" (topology) properties: clusters: invalid type"),
        "{e}"
    );
}

#[test]
fn null_lists_and_maps_are_empty() {
    // Go (KubeVela) accepts `null` for lists and maps; so do we.
    let text = format!(
        "{HEADER}spec:\n  components:\n    - name: web\n      type: webservice\n      traits:\n      dependsOn: ~\n      scopes:\n      properties:\n  policies:\n"
    );
    let apps = oam::parse_application_yaml("app.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(apps[0].spec.components[0].traits.is_empty());
    assert!(apps[0].spec.policies.is_empty());
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let text = format!(
        "{HEADER}spec:\n  components:\n    - name: web\n      type: webservice\n      properties: &props\n        image: nginx\n        cpu: \"0.5\"\n    - name: web2\n      type: webservice\n      properties:\n        <<: *props\n        image: nginx:2\n"
    );
    let apps = oam::parse_application_yaml("app.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let p = apps[0].spec.components[1]
        .properties
        .as_ref()
        .expect("properties");
    assert_eq!(p["image"], "nginx:2");
    assert_eq!(p["cpu"], "0.5");
}

#[test]
fn unknown_status_fields_are_tolerated() {
    // `kubectl get app -o yaml` from a newer KubeVela may carry status fields we do not know.
    let text = format!(
        "{HEADER}spec:\n  components: []\nstatus:\n  status: running\n  somethingNew: {{a: 1}}\n"
    );
    let apps = oam::parse_application_yaml("app.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(apps[0].phase(), Some(&oam::ApplicationPhase::Running));
}
