//! The controller against a real kubelite API server over HTTPS: revisions, garbage collection
//! after an update, drift correction, deletion.

mod common;

use common::Hub;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use oam::ResourceTracker;
use serde_json::json;

/// Deployments of the default namespace, typed (the shared hub gives dynamic objects).
fn deployments(hub: &Hub) -> Api<Deployment> {
    Api::namespaced(hub.cluster.client.clone(), "default")
}

fn app(components: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": "default",
                     "annotations": {"app.oam.dev/reconcile-interval": "1s"}},
        "spec": {"components": components},
    })
}

fn web(name: &str, image: &str) -> serde_json::Value {
    json!({"name": name, "type": "webservice", "properties": {"image": image}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_collects_garbage_only_after_success_and_delete_removes_everything() {
    let hub = Hub::start().await;
    let g1 = hub
        .apply(&app(json!([
            web("frontend", "nginx:1"),
            web("backend", "api:1")
        ])))
        .await;
    let v1 = hub.wait_running("shop", g1, 1).await;
    assert_eq!(v1.status.as_ref().map(|s| s.services.len()), Some(2));
    assert!(
        deployments(&hub)
            .get_opt("backend")
            .await
            .expect("get")
            .is_some()
    );

    // The revision snapshots the definitions it used.
    let revs: Api<oam::ApplicationRevision> =
        Api::namespaced(hub.cluster.client.clone(), "default");
    let rev = revs.get("shop-v1").await.expect("revision shop-v1");
    assert!(rev.spec.component_definitions.contains_key("webservice"));

    // v2 drops backend and changes frontend's image.
    let g2 = hub.apply(&app(json!([web("frontend", "nginx:2")]))).await;
    hub.wait_running("shop", g2, 2).await;
    hub.eventually("backend to be garbage collected", || async {
        deployments(&hub)
            .get_opt("backend")
            .await
            .expect("get")
            .is_none()
    })
    .await;
    let frontend = deployments(&hub)
        .get("frontend")
        .await
        .expect("frontend stays");
    let image = frontend
        .spec
        .template
        .spec
        .map(|p| p.containers[0].image.clone().unwrap_or_default());
    assert_eq!(image.as_deref(), Some("nginx:2"));
    let trackers: Api<ResourceTracker> = Api::all(hub.cluster.client.clone());
    assert!(
        trackers
            .get_opt("shop-v1-default")
            .await
            .expect("get")
            .is_none(),
        "v1's tracker is swept"
    );
    assert!(
        trackers
            .get_opt("shop-v2-default")
            .await
            .expect("get")
            .is_some()
    );

    // Re-applying the same spec makes no new revision.
    let g3 = hub.apply(&app(json!([web("frontend", "nginx:2")]))).await;
    assert_eq!(g3, g2);

    // Delete: everything the application created goes, then the application.
    hub.apps()
        .delete("shop", &DeleteParams::default())
        .await
        .expect("delete");
    hub.eventually("the application to be gone", || async {
        hub.apps().get_opt("shop").await.expect("get").is_none()
    })
    .await;
    assert!(
        deployments(&hub)
            .get_opt("frontend")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        trackers
            .get_opt("shop-v2-default")
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_corrected() {
    let hub = Hub::start().await;
    let mut a = app(json!([{
        "name": "frontend", "type": "webservice",
        "properties": {"image": "nginx:1"},
        "traits": [{"type": "scaler", "properties": {"replicas": 2}}]
    }]));
    a["metadata"]["name"] = json!("drift");
    let g = hub.apply(&a).await;
    hub.wait_running("drift", g, 1).await;

    // Someone scales it by hand: the application's replicas come back.
    deployments(&hub)
        .patch(
            "frontend",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("scale by hand");
    hub.eventually("replicas to be put back", || async {
        let d = deployments(&hub).get("frontend").await.expect("get");
        d.spec.replicas == Some(2)
    })
    .await;

    // Someone deletes it: it comes back.
    deployments(&hub)
        .delete("frontend", &DeleteParams::default())
        .await
        .expect("delete by hand");
    hub.eventually("the deployment to be recreated", || async {
        deployments(&hub)
            .get_opt("frontend")
            .await
            .expect("get")
            .is_some()
    })
    .await;
}
