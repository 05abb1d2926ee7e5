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
