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
