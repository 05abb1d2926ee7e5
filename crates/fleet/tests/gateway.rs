//! The gateway against a kubelite cluster over HTTPS: server-side apply as `sailplane`, read,
//! list by label, delete, and the errors a caller must be able to tell apart.

use fleet::{DeleteOutcome, Error, FIELD_MANAGER, Fleet, LOCAL};
use serde_json::json;
use testkit::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_read_list_delete() {
    let cluster = TestCluster::start().await;
    let fleet = Fleet::new(cluster.client.clone());
    let local = fleet.local();
    assert_eq!(local.name(), LOCAL);
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "labels": {"app.oam.dev/name": "shop"}},
        "data": {"mode": "fast"}
    });
    let applied = local.apply(&cm, "default", true).await.expect("apply");
    assert_eq!(
        applied["metadata"]["namespace"], "default",
        "namespace defaulted"
    );
    let managers: Vec<&str> = applied["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&FIELD_MANAGER), "{managers:?}");

    let r = local.object_ref(&cm, "default").await.expect("ref");
    assert_eq!(r.namespace.as_deref(), Some("default"));
    let live = local.get(&r).await.expect("get").expect("exists");
    assert_eq!(live["data"]["mode"], "fast");
    let listed = local
        .list("v1", "ConfigMap", Some("default"), "app.oam.dev/name=shop")
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);

    // A cluster-scoped kind loses any namespace it was given.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "namespace": "default"}});
    let applied = local
        .apply(&ns, "default", true)
        .await
        .expect("apply namespace");
    assert!(applied["metadata"].get("namespace").is_none());

    assert_eq!(
        local.delete(&r).await.expect("delete"),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        local.delete(&r).await.expect("delete again"),
        DeleteOutcome::AlreadyGone
    );
    assert!(local.get(&r).await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_what_is_wrong() {
    let cluster = TestCluster::start().await;
    let fleet = Fleet::new(cluster.client.clone());
    let err = fleet.cluster("prod").err().expect("unknown cluster");
    assert!(matches!(err, Error::UnknownCluster { .. }));
    assert!(
        err.to_string().contains("\"prod\"") && err.to_string().contains("local"),
        "{err}"
    );

    let widget =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let err = fleet
        .local()
        .apply(&widget, "default", true)
        .await
        .expect_err("unknown kind");
    assert!(matches!(err, Error::UnknownKind { .. }), "{err}");
    assert!(err.to_string().contains("Widget"), "{err}");

    let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
    let err = fleet
        .local()
        .apply(&nameless, "default", true)
        .await
        .expect_err("no name");
    assert!(err.to_string().contains("metadata.name"), "{err}");

    // Another manager owns a field: without force the server's 409 comes through as a conflict.
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"k": v}});
    let other = kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
        cluster.client.clone(),
        "default",
    );
    other
        .patch(
            "shared",
            &kube::api::PatchParams::apply("someone-else"),
            &kube::api::Patch::Apply(cm("theirs")),
        )
        .await
        .expect("other manager applies");
    let err = fleet
        .local()
        .apply(&cm("ours"), "default", false)
        .await
        .expect_err("conflict");
    assert!(err.is_conflict(), "{err}");
    fleet
        .local()
        .apply(&cm("ours"), "default", true)
        .await
        .expect("force takes the field");
}

/// Watch caches: served once listed, never older than what this process saw, never "gone" for
/// an object they do not hold, not used once the cluster stops answering; changes reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_caches_say_only_what_they_know() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let cluster = TestCluster::start().await;
    let fleet = Fleet::new(cluster.client.clone());
    let changes: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let seen = changes.clone();
    fleet.on_change(Arc::new(move |cluster, obj| {
        seen.lock().expect("lock").push((
            cluster.to_string(),
            obj.metadata.name.clone().unwrap_or_default(),
            obj.metadata.resource_version.clone().unwrap_or_default(),
        ));
    }));
    let local = fleet.local();
    let labelled = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "tracked", "labels": {"app.oam.dev/name": "shop"}},
        "data": {"v": "1"}
    });
    let plain = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "untracked"}, "data": {"v": "1"}});
    local
        .apply(&labelled, "default", true)
        .await
        .expect("apply");
    local.apply(&plain, "default", true).await.expect("apply");
    let tracked = local.object_ref(&labelled, "default").await.expect("ref");
    let untracked = local.object_ref(&plain, "default").await.expect("ref");

    async fn until<F, Fut>(what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !f().await {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out: {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The first read starts the cache; until it has listed, it says nothing.
    until("the cache to list ConfigMaps", || async {
        local.cached(&tracked).await.expect("cached").is_some()
    })
    .await;
    assert_eq!(local.cached_kinds(), 1);
    // Not in the cache (no app.oam.dev/name label): not "gone", read from the server.
    assert!(local.cached(&untracked).await.expect("cached").is_none());
    let got = local
        .get_cached(&untracked)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got["data"]["v"], "1");
    // A missing object is not taken from the cache either: the server says it is missing.
    let missing = fleet::ObjectRef {
        name: "missing".into(),
        ..tracked.clone()
    };
    assert!(local.get_cached(&missing).await.expect("get").is_none());

    // This process writes v2: the cache never shows it v1 again, even before the watch caught up.
    let mut v2 = labelled.clone();
    v2["data"]["v"] = json!("2");
    let written = local.apply(&v2, "default", true).await.expect("apply");
    let rv2 = written["metadata"]["resourceVersion"].clone();
    let now = local
        .get_cached(&tracked)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(now["data"]["v"], "2");
    if let Some(c) = local.cached(&tracked).await.expect("cached") {
        assert_eq!(
            c["metadata"]["resourceVersion"], rv2,
            "never behind what was written"
        );
    }
    // Someone else changes it: the change is reported, and the cache follows.
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::default_namespaced_with(
        cluster.client.clone(),
        &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    );
    api.patch(
        "tracked",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"data": {"v": "3"}})),
    )
    .await
    .expect("their patch");
    until("the change to be reported", || async {
        changes
            .lock()
            .expect("lock")
            .iter()
            .any(|(c, n, _)| c == LOCAL && n == "tracked")
    })
    .await;
    until("the cache to serve v3", || async {
        local
            .get_cached(&tracked)
            .await
            .expect("get")
            .is_some_and(|o| o["data"]["v"] == "3")
    })
    .await;

    // The cluster stops answering: the cache is not used any more, and nothing is "gone".
    let stopped = cluster.stop().await;
    until("the cache to stop answering", || async {
        local.cached(&tracked).await.expect("cached").is_none()
    })
    .await;
    assert!(
        local.get_cached(&tracked).await.is_err(),
        "an error, not gone"
    );
    assert!(
        local.get_cached(&missing).await.is_err(),
        "an error, not gone"
    );
    drop(stopped);
}
