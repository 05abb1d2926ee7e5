//! Data between components in KubeVela's default workflow (one apply-component step per
//! component, as a DAG): a component's `outputs` are read from its live objects and join the
//! workflow context; a component with `inputs` waits for them and gets them in its properties.

mod common;

use common::{Hub, app, configmap, objects, web};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_takes_another_components_output_as_input() {
    let hub = Hub::start().await;
    let mut producer = web("web", "nginx:1.27");
    producer["outputs"] = json!([
        {"name": "image", "valueFrom": "output.spec.template.spec.containers[0].image"},
        {"name": "ready", "valueFrom": "import \"strconv\"\nstrconv.FormatInt(output.status.readyReplicas, 10)"},
    ]);
    // No dependsOn: the inputs alone make it wait for web.
    let mut consumer = objects("settings", configmap("settings", json!({"owner": "shop"})));
    consumer["inputs"] = json!([
        {"from": "image", "parameterKey": "objects[0].data.image"},
        {"from": "ready", "parameterKey": "properties.objects[0].data.ready"},
    ]);
    let g = hub
        .apply(&app("shop", json!([consumer, producer]), json!([])))
        .await;
    hub.wait_running("shop", g, 1).await;

    let cm = hub
        .configmaps()
        .get("settings")
        .await
        .expect("the consumer's ConfigMap");
    assert_eq!(cm.data["data"]["image"], "nginx:1.27");
    assert_eq!(cm.data["data"]["ready"], "1");
    assert_eq!(cm.data["data"]["owner"], "shop");
    // The outputs are in the workflow context for later steps.
    let ctx = hub
        .configmaps()
        .get("workflow-shop-context")
        .await
        .expect("the workflow context");
    let vars: serde_json::Value =
        serde_json::from_str(ctx.data["data"]["vars"].as_str().unwrap_or("{}")).unwrap();
    assert_eq!(vars["image"], "nginx:1.27", "{vars}");
}

/// Server-side apply any object into `default`.
async fn put(hub: &Hub, api_version: &str, kind: &str, plural: &str, obj: serde_json::Value) {
    let name = obj["metadata"]["name"].as_str().expect("name").to_string();
    hub.api(api_version, kind, plural)
        .patch(
            &name,
            &kube::api::PatchParams::apply("test").force(),
            &kube::api::Patch::Apply(&obj),
        )
        .await
        .expect("apply object");
}

fn topology(namespace: &str) -> serde_json::Value {
    json!({"apiVersion": "core.oam.dev/v1alpha1", "kind": "Policy",
           "metadata": {"name": "to-team", "namespace": "default"},
           "type": "topology",
           "properties": {"clusters": ["local"], "namespace": namespace}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_ref_and_external_policies_are_resolved_and_snapshotted() {
    let hub = Hub::start().await;
    let mut application = app("shop", json!([web("web", "nginx:1.27")]), json!([]));
    application["spec"]["workflow"] = json!({"ref": "release"});

    // The Workflow is not there yet: the application says so and waits.
    let g = hub.apply(&application).await;
    let st = hub
        .wait_app("shop", |st| {
            st.conditions.iter().any(|c| c.reason == "WorkflowNotFound")
        })
        .await;
    let msg = serde_json::to_string(
        &st.status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Parsed")),
    )
    .unwrap_or_default();
    assert!(msg.contains("there is no Workflow"), "{msg}");

    put(
        &hub,
        "core.oam.dev/v1alpha1",
        "Workflow",
        "workflows",
        json!({"apiVersion": "core.oam.dev/v1alpha1", "kind": "Workflow",
               "metadata": {"name": "release", "namespace": "default"},
               "steps": [{"name": "deploy-team", "type": "deploy",
                          "properties": {"policies": ["to-team"]}}]}),
    )
    .await;
    put(
        &hub,
        "core.oam.dev/v1alpha1",
        "Policy",
        "policies",
        topology("team-a"),
    )
    .await;
    let running = hub.wait_running("shop", g, 1).await;
    let steps: Vec<String> = running
        .status
        .as_ref()
        .and_then(|s| s.workflow.as_ref())
        .map(|w| w.steps.iter().filter_map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    assert_eq!(steps, ["deploy-team"]);
    let in_team = |ns: &'static str| {
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            hub.client(),
            ns,
            &kube::discovery::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        );
        async move { api.get_opt("web").await.expect("get").is_some() }
    };
    assert!(
        in_team("team-a").await,
        "the external topology placed web in team-a"
    );

    // The revision holds the steps and the policy as they were.
    let revs: kube::Api<oam::ApplicationRevision> = kube::Api::namespaced(hub.client(), "default");
    let rev1 = serde_json::to_string(&revs.get("shop-v1").await.expect("shop-v1")).unwrap();
    assert!(
        rev1.contains("deploy-team") && rev1.contains("team-a"),
        "{rev1}"
    );

    // Changing the external policy makes a new revision, which moves web and collects the old.
    put(
        &hub,
        "core.oam.dev/v1alpha1",
        "Policy",
        "policies",
        topology("team-b"),
    )
    .await;
    hub.wait_running("shop", g, 2).await;
    assert!(in_team("team-b").await);
    hub.eventually("web to leave team-a", || async { !in_team("team-a").await })
        .await;
}
