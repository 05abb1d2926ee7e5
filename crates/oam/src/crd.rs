//! CustomResourceDefinitions generated from the Rust types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceSubresourceStatus, CustomResourceSubresources,
    JSONSchemaProps,
};
use kube::CustomResourceExt;

use crate::{
    Application, ApplicationRevision, ComponentDefinition, DefinitionRevision, Policy,
    PolicyDefinition, ResourceTracker, TraitDefinition, Workflow, WorkflowStepDefinition,
};

/// Every CRD Sailplane serves, in install order (definitions first).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        finish(
            ComponentDefinition::crd(),
            "ComponentDefinition is the Schema for the componentdefinitions API",
        ),
        finish(
            TraitDefinition::crd(),
            "A TraitDefinition registers a kind of Kubernetes custom resource as a valid OAM trait kind",
        ),
        finish(
            PolicyDefinition::crd(),
            "PolicyDefinition is the Schema for the policydefinitions API",
        ),
        finish(
            WorkflowStepDefinition::crd(),
            "WorkflowStepDefinition is the Schema for the workflowstepdefinitions API",
        ),
        finish(
            DefinitionRevision::crd(),
            "DefinitionRevision is the Schema for the DefinitionRevision API",
        ),
        finish(Policy::crd(), "Policy is the Schema for the policy API"),
        finish(
            Workflow::crd(),
            "Workflow is the Schema for the workflow API",
        ),
        finish(
            Application::crd(),
            "Application is the Schema for the applications API",
        ),
        finish(
            ApplicationRevision::crd(),
            "ApplicationRevision is the Schema for the ApplicationRevision API",
        ),
        finish(
            ResourceTracker::crd(),
            "An ResourceTracker represents a tracker for track cross namespace resources",
        ),
    ]
}

/// [`crds`] as one multi-document YAML text, ready for `kubectl apply -f -`.
pub fn crds_yaml() -> String {
    let crds = crds();
    match serde_saphyr::to_string_multiple(&crds) {
        Ok(yaml) => yaml,
        // JSON is YAML: fall back to it rather than fail.
        Err(_) => crds
            .iter()
            .filter_map(|c| serde_json::to_string_pretty(c).ok())
            .collect::<Vec<_>>()
            .join("\n---\n"),
    }
}

/// Adds what controller-gen writes and kube's derive does not: `listKind`, and the
/// `apiVersion`, `kind` and `metadata` properties at the root of the schema.
fn finish(mut crd: CustomResourceDefinition, description: &str) -> CustomResourceDefinition {
    let kind = crd.spec.names.kind.clone();
    crd.spec.names.list_kind = Some(format!("{kind}List"));
    for version in &mut crd.spec.versions {
        match kind.as_str() {
            // KubeVela declares an (empty) status subresource without a status schema
            "ResourceTracker" => {
                version.subresources = Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                    scale: None,
                })
            }
            // and an empty `subresources: {}` on these
            "DefinitionRevision" | "Policy" => {
                version.subresources = Some(CustomResourceSubresources::default())
            }
            _ => {}
        }
    }
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        schema.description = Some(description.to_string());
        schema.title = None;
        // KubeVela's CRDs do not require `spec` at the root
        if let Some(required) = schema.required.as_mut() {
            required.retain(|r| r != "spec");
        }
        if schema.required.as_ref().is_some_and(Vec::is_empty) {
            schema.required = None;
        }
        schema.type_ = Some("object".into());
        let props = schema.properties.get_or_insert_with(Default::default);
        props.insert(
            "apiVersion".into(),
            JSONSchemaProps {
                description: Some(
                    "APIVersion defines the versioned schema of this representation of an object."
                        .into(),
                ),
                type_: Some("string".into()),
                ..Default::default()
            },
        );
        props.insert(
            "kind".into(),
            JSONSchemaProps {
                description: Some(
                    "Kind is a string value representing the REST resource this object represents."
                        .into(),
                ),
                type_: Some("string".into()),
                ..Default::default()
            },
        );
        props.insert(
            "metadata".into(),
            JSONSchemaProps {
                type_: Some("object".into()),
                ..Default::default()
            },
        );
    }
    crd
}
