//! Application revisions against kubelite: identical applications reuse their revision, the
//! revision limit, rollback.

mod common;

use common::{Hub, app, web};
use oam::{ApplicationPhase, ResourceTracker};
use serde_json::json;

async fn revision_names(hub: &Hub, app: &str) -> Vec<String> {
    controller::list_revisions(&hub.client(), "default", app)
        .await
        .expect("list revisions")
        .into_iter()
        .map(|r| r.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_application_reuses_its_revision() {
    let hub = Hub::start().await;
    let a = app("rev", json!([web("frontend", "nginx:1")]), json!([]));
    let b = app("rev", json!([web("frontend", "nginx:2")]), json!([]));

    let g = hub.apply(&a).await;
    hub.wait_running("rev", g, 1).await;
    let g = hub.apply(&b).await;
    hub.wait_running("rev", g, 2).await;
    // A again: the same spec and definitions as v1, so v1 is used again (KubeVela reuses an
    // existing revision of the same hash and publish version) and its workflow runs again.
    let g = hub.apply(&a).await;
    let back = hub.wait_running("rev", g, 1).await;
    let latest = back.status.and_then(|s| s.latest_revision).expect("latest");
    assert_eq!(latest.name, "rev-v1");
    assert_eq!(revision_names(&hub, "rev").await, ["rev-v1", "rev-v2"]);
    hub.eventually("the image of v1 to be back", || async {
        let d = hub.deployments().get("frontend").await.expect("get");
        d.data.pointer("/spec/template/spec/containers/0/image") == Some(&json!("nginx:1"))
    })
    .await;
    // The revision applied last keeps its tracker; v2's is swept.
    let trackers: kube::Api<ResourceTracker> = kube::Api::all(hub.client());
    hub.eventually("v2's tracker to be swept", || async {
        trackers
            .get_opt("rev-v2-default")
            .await
            .expect("get")
            .is_none()
    })
    .await;
    assert!(
        trackers
            .get_opt("rev-v1-default")
            .await
            .expect("get")
            .is_some()
    );

    // Something new takes the next number after the highest one.
    let c = app("rev", json!([web("frontend", "nginx:3")]), json!([]));
    let g = hub.apply(&c).await;
    hub.wait_running("rev", g, 3).await;

    // A new publish version makes a new revision even for the same spec.
    let mut c2 = c.clone();
    c2["metadata"]["annotations"]["app.oam.dev/publishVersion"] = json!("beta1");
    hub.apply(&c2).await;
    hub.wait_app("rev", |st| {
        st.latest_revision.as_ref().map(|r| r.name.as_str()) == Some("rev-v4")
            && st.status == Some(ApplicationPhase::Running)
    })
    .await;
    let revs = controller::list_revisions(&hub.client(), "default", "rev")
        .await
        .expect("list");
    let v4 = revs.iter().find(|r| r.name == "rev-v4").expect("v4");
    assert_eq!(v4.publish_version.as_deref(), Some("beta1"));
    assert!(v4.succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revision_limit_deletes_the_oldest_unused_revisions() {
    let hub = Hub::start().await;
    let gc = json!([{"name": "gc", "type": "garbage-collect",
                     "properties": {"applicationRevisionLimit": 2}}]);
    for i in 1..=5 {
        let a = app(
            "lim",
            json!([web("frontend", &format!("nginx:{i}"))]),
            gc.clone(),
        );
        let g = hub.apply(&a).await;
        hub.wait_running("lim", g, i).await;
    }
    // When v5 was made, v5 (the latest) and v4 (its resources still tracked) were in use; of
    // v1..v3 two are kept: v1, the oldest, went.
    assert_eq!(
        revision_names(&hub, "lim").await,
        ["lim-v2", "lim-v3", "lim-v4", "lim-v5"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_returns_to_the_last_revision_that_succeeded() {
    let hub = Hub::start().await;
    let good = app(
        "rb",
        json!([web("frontend", "nginx:1"), web("backend", "api:1")]),
        json!([]),
    );
    let g = hub.apply(&good).await;
    hub.wait_running("rb", g, 1).await;

    // v2 never becomes healthy: its workflow keeps waiting.
    let bad = app(
        "rb",
        json!([{
            "name": "frontend", "type": "webservice", "properties": {"image": "nginx:broken"},
            "traits": [{"type": "annotations",
                        "properties": {"kubelite.sailplane.dev/fail": "never-ready"}}]
        }, web("extra", "x:1")]),
        json!([]),
    );
    hub.apply(&bad).await;
    hub.wait_app("rb", |st| {
        st.latest_revision.as_ref().map(|r| r.revision) == Some(2)
            && st.status == Some(ApplicationPhase::RunningWorkflow)
    })
    .await;
    hub.eventually("v2's extra deployment", || async {
        hub.exists(&hub.deployments(), "extra").await
    })
    .await;
    // Nothing of v1 went while v2 was not done.
    assert!(hub.exists(&hub.deployments(), "backend").await);

    let unknown = controller::rollback(&hub.client(), "default", "rb", Some("rb-v9")).await;
    assert!(
        unknown
            .as_ref()
            .is_err_and(|e| e.to_string().contains("rb-v1")),
        "{unknown:?}"
    );
    let done = controller::rollback(&hub.client(), "default", "rb", None)
        .await
        .expect("rollback");
    assert_eq!(done.revision, "rb-v1");
    hub.wait_app("rb", |st| {
        st.latest_revision.as_ref().map(|r| r.name.as_str()) == Some("rb-v1")
            && st.status == Some(ApplicationPhase::Running)
    })
    .await;
    hub.eventually("v2's extra deployment to be collected", || async {
        !hub.exists(&hub.deployments(), "extra").await
    })
    .await;
    let d = hub.deployments().get("frontend").await.expect("frontend");
    assert_eq!(
        d.data.pointer("/spec/template/spec/containers/0/image"),
        Some(&json!("nginx:1"))
    );
    assert!(hub.exists(&hub.deployments(), "backend").await);
    assert_eq!(revision_names(&hub, "rb").await, ["rb-v1", "rb-v2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_is_written_once_per_step() {
    let hub = Hub::start().await;
    let mut a = app(
        "batch",
        json!([web("a", "x:1"), web("b", "x:1"), web("c", "x:1")]),
        json!([]),
    );
    a["spec"]["workflow"] = json!({"steps": [{"name": "all", "type": "deploy"}]});
    let g = hub.apply(&a).await;
    hub.wait_running("batch", g, 1).await;
    // Several rounds of the step and of state keep later, the tracker was written once: by the
    // step's first round, with the three components' objects.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let trackers: kube::Api<ResourceTracker> = kube::Api::all(hub.client());
    let rt = trackers.get("batch-v1-default").await.expect("tracker");
    assert_eq!(rt.spec.managed_resources.len(), 3);
    assert_eq!(rt.metadata.generation, Some(1), "written once");
}

fn cm_definition(version: &str) -> serde_json::Value {
    json!({
        "apiVersion": "core.oam.dev/v1beta1", "kind": "ComponentDefinition",
        "metadata": {"name": "versioned-cm", "namespace": "vela-system"},
        "spec": {
            "workload": {"definition": {"apiVersion": "v1", "kind": "ConfigMap"}},
            "schematic": {"cue": {"template": format!(
                "output: {{\n\tapiVersion: \"v1\"\n\tkind: \"ConfigMap\"\n\tdata: {{version: \"{version}\", p: parameter.p}}\n}}\nparameter: {{p: string}}\n"
            )}}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_added_or_changed_on_the_hub_is_seen_and_makes_a_new_revision() {
    let hub = Hub::start().await;
    let defs = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        hub.client(),
        "vela-system",
        &kube::discovery::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("core.oam.dev", "v1beta1", "ComponentDefinition"),
            "componentdefinitions",
        ),
    );
    let put = |version: &'static str| {
        let defs = defs.clone();
        async move {
            defs.patch(
                "versioned-cm",
                &kube::api::PatchParams::apply("test").force(),
                &kube::api::Patch::Apply(&cm_definition(version)),
            )
            .await
            .expect("apply definition");
        }
    };
    // Added after the controller started (its definition cache learns it from the watch).
    put("1").await;
    let a = app(
        "defs",
        json!([{"name": "cfg", "type": "versioned-cm", "properties": {"p": "x"}}]),
        json!([]),
    );
    let g = hub.apply(&a).await;
    hub.wait_running("defs", g, 1).await;
    let cm = hub.configmaps().get("cfg").await.expect("configmap");
    assert_eq!(cm.data.pointer("/data/version"), Some(&json!("1")));

    // Changed: the application's next reconcile makes a revision with the new definition.
    put("2").await;
    hub.wait_app("defs", |st| {
        st.latest_revision.as_ref().map(|r| r.revision) == Some(2)
            && st.status == Some(ApplicationPhase::Running)
    })
    .await;
    let cm = hub.configmaps().get("cfg").await.expect("configmap");
    assert_eq!(cm.data.pointer("/data/version"), Some(&json!("2")));
    // v1 keeps the definition as it was.
    let revs: kube::Api<oam::ApplicationRevision> = kube::Api::namespaced(hub.client(), "default");
    let v1 = revs.get("defs-v1").await.expect("v1");
    let snap = serde_json::to_string(&v1.spec.component_definitions).unwrap_or_default();
    assert!(snap.contains(r#"version: \"1\""#), "{snap}");

    // Rolled back to v1 (the same spec as v2): v1 is used again and rendered with the
    // definition it snapshotted, not the hub's current one, which still says "2".
    let done = controller::rollback(&hub.client(), "default", "defs", Some("defs-v1"))
        .await
        .expect("rollback");
    assert_eq!(done.revision, "defs-v1");
    hub.wait_app("defs", |st| {
        st.latest_revision.as_ref().map(|r| r.name.as_str()) == Some("defs-v1")
            && st.status == Some(ApplicationPhase::Running)
    })
    .await;
    let version = || async {
        hub.configmaps()
            .get("cfg")
            .await
            .expect("configmap")
            .data
            .pointer("/data/version")
            .cloned()
    };
    hub.eventually("v1's rendering to be back", || async {
        version().await == Some(json!("1"))
    })
    .await;
    // And it stays so: the state keep renders v1 the same way on every round.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(version().await, Some(json!("1")));
    assert_eq!(revision_names(&hub, "defs").await, ["defs-v1", "defs-v2"]);
    let st = hub.status("defs").await;
    assert_eq!(
        st.latest_revision.map(|r| r.name).as_deref(),
        Some("defs-v1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_publish_version_only_a_new_publish_version_makes_a_new_revision() {
    let hub = Hub::start().await;
    let defs = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        hub.client(),
        "vela-system",
        &kube::discovery::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("core.oam.dev", "v1beta1", "ComponentDefinition"),
            "componentdefinitions",
        ),
    );
    let put = |version: &'static str| {
        let defs = defs.clone();
        async move {
            defs.patch(
                "versioned-cm",
                &kube::api::PatchParams::apply("test").force(),
                &kube::api::Patch::Apply(&cm_definition(version)),
            )
            .await
            .expect("apply definition");
        }
    };
    let published = |p: &str, version: &str| {
        let mut a = app(
            "pub",
            json!([{"name": "cfg", "type": "versioned-cm", "properties": {"p": p}}]),
            json!([]),
        );
        a["metadata"]["annotations"]["app.oam.dev/publishVersion"] = json!(version);
        a
    };
    let data = || async {
        let cm = hub.configmaps().get("cfg").await.expect("configmap");
        (
            cm.data.pointer("/data/version").cloned(),
            cm.data.pointer("/data/p").cloned(),
        )
    };
    put("1").await;
    let g = hub.apply(&published("x", "alpha1")).await;
    hub.wait_running("pub", g, 1).await;
    assert_eq!(data().await, (Some(json!("1")), Some(json!("x"))));

    // The definition changes on the hub: with the same publish version, nothing new is made and
    // the application keeps being rendered with the definition its revision snapshotted (the
    // test application is kept every second, so a few seconds see several rounds).
    put("2").await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(revision_names(&hub, "pub").await, ["pub-v1"]);
    assert_eq!(data().await, (Some(json!("1")), Some(json!("x"))));

    // The spec changes, still with the same publish version: the new generation is seen, and the
    // application stays at v1 as v1 has it.
    let g = hub.apply(&published("y", "alpha1")).await;
    hub.wait_running("pub", g, 1).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(revision_names(&hub, "pub").await, ["pub-v1"]);
    assert_eq!(data().await, (Some(json!("1")), Some(json!("x"))));

    // A new publish version: a new revision, with the spec and the definition as they are now.
    let g = hub.apply(&published("y", "alpha2")).await;
    hub.wait_running("pub", g, 2).await;
    hub.eventually("v2's rendering", || async {
        data().await == (Some(json!("2")), Some(json!("y")))
    })
    .await;
    let revs = controller::list_revisions(&hub.client(), "default", "pub")
        .await
        .expect("list");
    let versions: Vec<(String, Option<String>)> = revs
        .into_iter()
        .map(|r| (r.name, r.publish_version))
        .collect();
    assert_eq!(
        versions,
        [
            ("pub-v1".to_string(), Some("alpha1".to_string())),
            ("pub-v2".to_string(), Some("alpha2".to_string()))
        ]
    );
}
