//! The controller against a real kubelite API server over HTTPS: revisions, garbage collection
//! after an update, drift correction, deletion.

use controller::{Controller, ControllerConfig};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use oam::{Application, ApplicationPhase, ResourceTracker};
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::TestCluster;

struct Hub {
    cluster: TestCluster,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Hub {
    async fn start() -> Hub {
        let cluster = TestCluster::start().await;
        controller::install(&cluster.client)
            .await
            .expect("install CRDs and definitions");
        let ctl = Controller::new(
            cluster.client.clone(),
            ControllerConfig {
                resync: Duration::from_secs(1),
                poll: Duration::from_millis(200),
                ..ControllerConfig::default()
            },
        )
        .expect("controller");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(ctl.run(async move {
            let _ = stopped.await;
        }));
        Hub {
            cluster,
            stop: Some(stop),
        }
    }

    fn apps(&self) -> Api<Application> {
        Api::namespaced(self.cluster.client.clone(), "default")
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.cluster.client.clone(), "default")
    }

    async fn apply(&self, app: serde_json::Value) -> i64 {
        let name = app["metadata"]["name"].as_str().expect("name").to_string();
        let out = self
            .apps()
            .patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&app),
            )
            .await
            .expect("apply application");
        out.metadata.generation.expect("generation")
    }

    /// Wait until the application runs at `generation` with revision `revision`.
    async fn wait_running(&self, name: &str, generation: i64, revision: i64) -> Application {
        let start = Instant::now();
        loop {
            let app = self.apps().get(name).await.expect("get application");
            let st = app.status.clone().unwrap_or_default();
            if st.observed_generation == Some(generation)
                && st.status == Some(ApplicationPhase::Running)
                && st.latest_revision.as_ref().map(|r| r.revision) == Some(revision)
            {
                return app;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "application {name} not running at generation {generation}: {}",
                serde_json::to_string_pretty(&st).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn eventually<F, Fut>(&self, what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !f().await {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
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
        .apply(app(json!([
            web("frontend", "nginx:1"),
            web("backend", "api:1")
        ])))
        .await;
    let v1 = hub.wait_running("shop", g1, 1).await;
    assert_eq!(v1.status.as_ref().map(|s| s.services.len()), Some(2));
    assert!(
        hub.deployments()
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
    let g2 = hub.apply(app(json!([web("frontend", "nginx:2")]))).await;
    hub.wait_running("shop", g2, 2).await;
    hub.eventually("backend to be garbage collected", || async {
        hub.deployments()
            .get_opt("backend")
            .await
            .expect("get")
            .is_none()
    })
    .await;
    let frontend = hub
        .deployments()
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
    let g3 = hub.apply(app(json!([web("frontend", "nginx:2")]))).await;
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
        hub.deployments()
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
    let g = hub.apply(a).await;
    hub.wait_running("drift", g, 1).await;

    // Someone scales it by hand: the application's replicas come back.
    hub.deployments()
        .patch(
            "frontend",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("scale by hand");
    hub.eventually("replicas to be put back", || async {
        let d = hub.deployments().get("frontend").await.expect("get");
        d.spec.replicas == Some(2)
    })
    .await;

    // Someone deletes it: it comes back.
    hub.deployments()
        .delete("frontend", &DeleteParams::default())
        .await
        .expect("delete by hand");
    hub.eventually("the deployment to be recreated", || async {
        hub.deployments()
            .get_opt("frontend")
            .await
            .expect("get")
            .is_some()
    })
    .await;
}
