//! A hub for controller tests: a kubelite server over HTTPS with the CRDs and built-in
//! definitions installed and a controller running against it.

#![allow(dead_code)]

use controller::{Controller, ControllerConfig};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use oam::{Application, ApplicationPhase, ApplicationStatus};
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, Instant};
use testkit::TestCluster;

pub struct Hub {
    pub cluster: TestCluster,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Hub {
    pub async fn start() -> Hub {
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

    pub fn client(&self) -> kube::Client {
        self.cluster.client.clone()
    }

    pub fn apps(&self) -> Api<Application> {
        Api::namespaced(self.client(), "default")
    }

    /// An API for any kind in `default` (or cluster-scoped when `namespaced` is false).
    pub fn api(&self, api_version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        Api::namespaced_with(self.client(), "default", &ar)
    }

    pub fn deployments(&self) -> Api<DynamicObject> {
        self.api("apps/v1", "Deployment", "deployments")
    }

    pub fn configmaps(&self) -> Api<DynamicObject> {
        self.api("v1", "ConfigMap", "configmaps")
    }

    /// Server-side apply an application (as the user would with `sail up`); its generation.
    pub async fn apply(&self, app: &Value) -> i64 {
        let name = app["metadata"]["name"].as_str().expect("name").to_string();
        let out = self
            .apps()
            .patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(app),
            )
            .await
            .expect("apply application");
        out.metadata.generation.expect("generation")
    }

    pub async fn status(&self, name: &str) -> ApplicationStatus {
        self.apps()
            .get(name)
            .await
            .expect("get application")
            .status
            .unwrap_or_default()
    }

    /// Wait until the application runs at `generation` with revision `revision`.
    pub async fn wait_running(&self, name: &str, generation: i64, revision: i64) -> Application {
        self.wait_app(name, |st| {
            st.observed_generation == Some(generation)
                && st.status == Some(ApplicationPhase::Running)
                && st.latest_revision.as_ref().map(|r| r.revision) == Some(revision)
        })
        .await
    }

    /// Wait until the application's status satisfies `ok`.
    pub async fn wait_app(
        &self,
        name: &str,
        ok: impl Fn(&ApplicationStatus) -> bool,
    ) -> Application {
        let start = Instant::now();
        loop {
            let app = self.apps().get(name).await.expect("get application");
            let st = app.status.clone().unwrap_or_default();
            if ok(&st) {
                return app;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "application {name} did not reach the expected state: {}",
                serde_json::to_string_pretty(&st).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn eventually<F, Fut>(&self, what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
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

    pub async fn exists(&self, api: &Api<DynamicObject>, name: &str) -> bool {
        api.get_opt(name).await.expect("get").is_some()
    }

    pub async fn delete_app(&self, name: &str) {
        self.apps()
            .delete(name, &Default::default())
            .await
            .expect("delete application");
        self.eventually(&format!("application {name} to be gone"), || async {
            self.apps().get_opt(name).await.expect("get").is_none()
        })
        .await;
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// An application in `default` that the controller re-checks every second.
pub fn app(name: &str, components: Value, policies: Value) -> Value {
    json!({
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "default",
                     "annotations": {"app.oam.dev/reconcile-interval": "1s"}},
        "spec": {"components": components, "policies": policies},
    })
}

pub fn web(name: &str, image: &str) -> Value {
    json!({"name": name, "type": "webservice", "properties": {"image": image}})
}

/// A k8s-objects component with one object.
pub fn objects(name: &str, object: Value) -> Value {
    json!({"name": name, "type": "k8s-objects", "properties": {"objects": [object]}})
}

pub fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

pub fn label(o: &DynamicObject, key: &str) -> Option<String> {
    o.metadata.labels.as_ref().and_then(|l| l.get(key)).cloned()
}

pub fn annotation(o: &DynamicObject, key: &str) -> Option<String> {
    o.metadata
        .annotations
        .as_ref()
        .and_then(|l| l.get(key))
        .cloned()
}
