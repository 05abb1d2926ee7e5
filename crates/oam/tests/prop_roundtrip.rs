//! Property: any Application written as YAML (or JSON) reads back equal, whatever the
//! strings look like (`yes`, `~`, `0x1F`, `1e3`, leading spaces, quotes, unicode …).

use oam::{
    AppPolicy, AppWorkflow, Application, ApplicationComponent, ApplicationSpec, ApplicationTrait,
    StepInput, StepOutput, WorkflowStep, WorkflowStepMeta, WorkflowSubStep,
};
use proptest::prelude::*;
use serde_json::Value;

fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}",
        Just("yes".to_string()),
        Just("no".to_string()),
        Just("on".to_string()),
        Just("null".to_string()),
        Just("~".to_string()),
        Just("0x1F".to_string()),
        Just("1e3".to_string()),
        Just("0777".to_string()),
        Just("12:30".to_string()),
        Just("- dash".to_string()),
        Just(" leading space".to_string()),
        Just("a: b".to_string()),
        Just("#hash".to_string()),
        Just("quote\"and'apostrophe".to_string()),
        Just("line\nbreak".to_string()),
        Just("tab\there".to_string()),
        Just("ünïcödé ✓".to_string()),
        Just("".to_string()),
        Just("---".to_string()),
        Just("*alias".to_string()),
        Just("&anchor".to_string()),
        Just("!tag".to_string()),
        Just("{flow}".to_string()),
        Just("[seq]".to_string()),
        Just("%directive".to_string()),
        Just("@at".to_string()),
        Just("`backtick".to_string()),
        "\\PC{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(|f| Value::from((f * 100.0).round() / 100.0)),
        tricky_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(tricky_string(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn properties() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        prop::collection::btree_map(tricky_string(), json_value(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    )
}

fn non_empty(s: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    s.prop_filter("non-empty", |s| !s.is_empty())
}

fn component() -> impl Strategy<Value = ApplicationComponent> {
    (
        non_empty(tricky_string()),
        non_empty(tricky_string()),
        properties(),
        prop::collection::vec((non_empty(tricky_string()), properties()), 0..3),
        prop::collection::vec(tricky_string(), 0..3),
        prop::option::of(tricky_string()),
        prop::collection::btree_map(tricky_string(), tricky_string(), 0..2),
    )
        .prop_map(
            |(name, type_, properties, traits, depends_on, external_revision, scopes)| {
                ApplicationComponent {
                    name,
                    type_,
                    properties,
                    traits: traits
                        .into_iter()
                        .map(|(type_, properties)| ApplicationTrait { type_, properties })
                        .collect(),
                    depends_on,
                    external_revision,
                    scopes,
                    inputs: vec![StepInput {
                        from: "x".into(),
                        parameter_key: Some("a.b".into()),
                    }],
                    outputs: vec![],
                }
            },
        )
}

fn step() -> impl Strategy<Value = WorkflowStep> {
    (
        tricky_string(),
        non_empty(tricky_string()),
        properties(),
        prop::option::of(tricky_string()),
        prop::option::of(tricky_string()),
        prop::collection::vec(
            (tricky_string(), non_empty(tricky_string()), properties()),
            0..3,
        ),
        prop::option::of(tricky_string()),
    )
        .prop_map(
            |(name, type_, properties, if_, timeout, subs, alias)| WorkflowStep {
                name,
                type_,
                properties,
                if_,
                timeout,
                meta: alias.map(|a| WorkflowStepMeta { alias: Some(a) }),
                sub_steps: subs
                    .into_iter()
                    .map(|(name, type_, properties)| WorkflowSubStep {
                        name,
                        type_,
                        properties,
                        ..Default::default()
                    })
                    .collect(),
                outputs: vec![StepOutput {
                    name: "o".into(),
                    value_from: "output.value".into(),
                }],
                ..Default::default()
            },
        )
}

fn application() -> impl Strategy<Value = Application> {
    (
        prop::collection::vec(component(), 0..3),
        prop::collection::vec(
            (tricky_string(), non_empty(tricky_string()), properties()),
            0..3,
        ),
        prop::option::of(prop::collection::vec(step(), 0..3)),
        prop::collection::btree_map(tricky_string(), tricky_string(), 0..3),
    )
        .prop_map(|(components, policies, steps, annotations)| {
            let mut app = Application::new(
                "app",
                ApplicationSpec {
                    components,
                    policies: policies
                        .into_iter()
                        .map(|(name, type_, properties)| AppPolicy {
                            name,
                            type_,
                            properties,
                        })
                        .collect(),
                    workflow: steps.map(|steps| AppWorkflow {
                        steps,
                        ..Default::default()
                    }),
                },
            );
            if !annotations.is_empty() {
                app.metadata.annotations = Some(annotations);
            }
            app
        })
}

/// What we expect back: `null` inside properties stays `null`, empty things are omitted.
fn normalise(app: &Application) -> Value {
    serde_json::to_value(app).unwrap_or_else(|e| panic!("{e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn yaml_roundtrip(app in application()) {
        let yaml = serde_saphyr::to_string(&app).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = oam::parse_application_yaml("gen.yaml", &yaml)
            .map_err(|e| TestCaseError::fail(format!("{e}\n---\n{yaml}")))?;
        prop_assert_eq!(back.len(), 1);
        prop_assert_eq!(normalise(&back[0]), normalise(&app), "yaml was:\n{}", yaml);
    }

    #[test]
    fn json_roundtrip(app in application()) {
        let json = serde_json::to_string(&app).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // JSON is YAML: the YAML reader takes it too
        let back = oam::parse_application_yaml("gen.json", &json)
            .map_err(|e| TestCaseError::fail(format!("{e}\n---\n{json}")))?;
        prop_assert_eq!(normalise(&back[0]), normalise(&app));
    }
}
