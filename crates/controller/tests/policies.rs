//! One-cluster policies against kubelite: apply-once, read-only, take-over, shared-resource,
//! resource-update, garbage-collect; and what a deletion keeps.

mod common;

use common::{Hub, annotation, app, configmap, label, objects, web};
use kube::api::{Patch, PatchParams, PostParams};
use oam::ApplicationPhase;
use serde_json::json;
use std::time::Duration;

fn failed_with(st: &oam::ApplicationStatus, text: &str) -> bool {
    st.status == Some(ApplicationPhase::WorkflowFailed)
        && st
            .workflow
            .as_ref()
            .is_some_and(|w| serde_json::to_string(w).is_ok_and(|s| s.contains(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_once_leaves_selected_fields_to_others() {
    let hub = Hub::start().await;
    let a = app(
        "once",
        json!([{
            "name": "frontend", "type": "webservice", "properties": {"image": "nginx:1"},
            "traits": [{"type": "scaler", "properties": {"replicas": 2}}]
        }]),
        json!([{"name": "once", "type": "apply-once", "properties": {"enable": true,
            "rules": [{"selector": {"resourceTypes": ["Deployment"]},
                       "strategy": {"path": ["spec.replicas"]}}]}}]),
    );
    let g = hub.apply(&a).await;
    hub.wait_running("once", g, 1).await;
    // An autoscaler (or someone) scales it, and someone changes the image.
    hub.deployments()
        .patch(
            "frontend",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [
                {"name": "frontend", "image": "hand:9"}]}}}}),
            ),
        )
        .await
        .expect("change by hand");
    // The image is put back (it is not an apply-once path) ...
    hub.eventually("the image to be put back", || async {
        let d = hub.deployments().get("frontend").await.expect("get");
        d.data.pointer("/spec/template/spec/containers/0/image") == Some(&json!("nginx:1"))
    })
    .await;
    // ... and the replicas stay what the autoscaler set, state keep after state keep.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d = hub.deployments().get("frontend").await.expect("get");
    assert_eq!(d.data.pointer("/spec/replicas"), Some(&json!(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_reads_and_never_writes() {
    let hub = Hub::start().await;
    let ro = json!([{"name": "ro", "type": "read-only",
                     "properties": {"rules": [{"selector": {"resourceTypes": ["ConfigMap"]}}]}}]);
    // Absent: an error that says so; nothing is created.
    let a = app(
        "ro",
        json!([objects("cfg", configmap("existing", json!({"k": "app"})))]),
        ro.clone(),
    );
    hub.apply(&a).await;
    hub.wait_app("ro", |st| {
        serde_json::to_string(&st.workflow).is_ok_and(|s| s.contains("read-only"))
    })
    .await;
    assert!(!hub.exists(&hub.configmaps(), "existing").await);

    // Present: read (the application runs) and never written.
    let cm: kube::api::DynamicObject =
        serde_json::from_value(configmap("existing", json!({"k": "mine"}))).expect("cm");
    hub.configmaps()
        .create(&PostParams::default(), &cm)
        .await
        .expect("create by hand");
    hub.wait_app("ro", |st| st.status == Some(ApplicationPhase::Running))
        .await;
    let live = hub.configmaps().get("existing").await.expect("get");
    assert_eq!(live.data.pointer("/data/k"), Some(&json!("mine")));
    assert_eq!(label(&live, "app.oam.dev/name"), None);
    // Deleting the application leaves it.
    hub.delete_app("ro").await;
    assert!(hub.exists(&hub.configmaps(), "existing").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_over_adopts_an_existing_deployment_and_without_it_adoption_is_refused() {
    let hub = Hub::start().await;
    let existing: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"made": "by-hand"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nginx"}},
                 "template": {"metadata": {"labels": {"app": "nginx"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:0"}]}}}
    }))
    .expect("deployment");
    hub.deployments()
        .create(&PostParams::default(), &existing)
        .await
        .expect("create by hand");

    let comps = json!([{
        "name": "nginx", "type": "webservice", "properties": {"image": "nginx:1"},
        "traits": [{"type": "scaler", "properties": {"replicas": 3}}]
    }]);
    // Without take-over: refused, with a message that says why and what to do.
    let g = hub.apply(&app("adopt", comps.clone(), json!([]))).await;
    hub.wait_app("adopt", |st| {
        st.observed_generation == Some(g) && failed_with(st, "take-over")
    })
    .await;
    let d = hub.deployments().get("nginx").await.expect("get");
    assert_eq!(label(&d, "app.oam.dev/name"), None, "not touched");

    // With take-over: adopted.
    let take = json!([{"name": "take", "type": "take-over",
                       "properties": {"rules": [{"selector": {"resourceTypes": ["Deployment"]}}]}}]);
    let g = hub.apply(&app("adopt", comps.clone(), take)).await;
    hub.wait_running("adopt", g, 2).await;
    let d = hub.deployments().get("nginx").await.expect("get");
    assert_eq!(label(&d, "app.oam.dev/name").as_deref(), Some("adopt"));
    assert_eq!(d.data.pointer("/spec/replicas"), Some(&json!(3)));

    // Another application cannot have it, take-over aside.
    let g = hub.apply(&app("other", comps, json!([]))).await;
    hub.wait_app("other", |st| {
        st.observed_generation == Some(g) && failed_with(st, "belongs to application default/adopt")
    })
    .await;

    // It was adopted: it goes with the application.
    hub.delete_app("adopt").await;
    assert!(!hub.exists(&hub.deployments(), "nginx").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_configmap_goes_with_the_last_sharer() {
    let hub = Hub::start().await;
    let shared = json!([{"name": "share", "type": "shared-resource",
                         "properties": {"rules": [{"selector": {"resourceTypes": ["ConfigMap"]}}]}}]);
    let a1 = app(
        "one",
        json!([objects("cfg", configmap("common", json!({"from": "one"})))]),
        shared.clone(),
    );
    let a2 = app(
        "two",
        json!([objects("cfg", configmap("common", json!({"from": "two"})))]),
        shared,
    );
    let g = hub.apply(&a1).await;
    hub.wait_running("one", g, 1).await;
    let g = hub.apply(&a2).await;
    hub.wait_running("two", g, 1).await;

    let cm = hub.configmaps().get("common").await.expect("get");
    assert_eq!(
        annotation(&cm, "app.oam.dev/shared-by").as_deref(),
        Some("default/one,default/two")
    );
    // The first one owns the content.
    assert_eq!(cm.data.pointer("/data/from"), Some(&json!("one")));
    assert_eq!(label(&cm, "app.oam.dev/name").as_deref(), Some("one"));

    // The owner goes: the ConfigMap stays, handed to the other sharer.
    hub.delete_app("one").await;
    let cm = hub.configmaps().get("common").await.expect("still there");
    assert_eq!(
        annotation(&cm, "app.oam.dev/shared-by").as_deref(),
        Some("default/two")
    );
    assert_eq!(label(&cm, "app.oam.dev/name").as_deref(), Some("two"));
    // The new owner's state keep writes its content.
    hub.eventually("the new owner's content", || async {
        let cm = hub.configmaps().get("common").await.expect("get");
        cm.data.pointer("/data/from") == Some(&json!("two"))
    })
    .await;
    // The last sharer goes: so does the ConfigMap.
    hub.delete_app("two").await;
    assert!(!hub.exists(&hub.configmaps(), "common").await);

    // Without the policy the second application is refused.
    let plain = |n: &str| {
        app(
            n,
            json!([objects("cfg", configmap("solo", json!({"from": n})))]),
            json!([]),
        )
    };
    let g = hub.apply(&plain("three")).await;
    hub.wait_running("three", g, 1).await;
    let g = hub.apply(&plain("four")).await;
    hub.wait_app("four", |st| {
        st.observed_generation == Some(g) && failed_with(st, "belongs to application default/three")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_update_recreates_on_the_named_fields() {
    let hub = Hub::start().await;
    let policy = json!([{"name": "upd", "type": "resource-update", "properties": {"rules": [
        {"selector": {"resourceTypes": ["ConfigMap"]}, "strategy": {"recreateFields": ["data.key"]}}]}}]);
    let v = |key: &str, other: &str| {
        app(
            "upd",
            json!([objects(
                "cfg",
                configmap("re", json!({"key": key, "other": other}))
            )]),
            policy.clone(),
        )
    };
    let g = hub.apply(&v("a", "1")).await;
    hub.wait_running("upd", g, 1).await;
    let uid = |o: kube::api::DynamicObject| o.metadata.uid.expect("uid");
    let first = uid(hub.configmaps().get("re").await.expect("get"));
    // Another field: a patch, the same object.
    let g = hub.apply(&v("a", "2")).await;
    hub.wait_running("upd", g, 2).await;
    let same = hub.configmaps().get("re").await.expect("get");
    assert_eq!(same.data.pointer("/data/other"), Some(&json!("2")));
    assert_eq!(uid(same), first);
    // The named field: deleted and created again.
    let g = hub.apply(&v("b", "2")).await;
    hub.wait_running("upd", g, 3).await;
    let re = hub.configmaps().get("re").await.expect("get");
    assert_eq!(re.data.pointer("/data/key"), Some(&json!("b")));
    assert_ne!(uid(re), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collect_rules_and_what_a_deletion_keeps() {
    let hub = Hub::start().await;
    let gc = json!([{"name": "gc", "type": "garbage-collect", "properties": {"rules": [
        {"selector": {"componentNames": ["keep-till-delete"]}, "strategy": "onAppDelete"},
        {"selector": {"componentNames": ["forever"]}, "strategy": "never"}]}}]);
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let v1 = app(
        "gc",
        json!([
            objects("keep-till-delete", configmap("till-delete", json!({}))),
            objects("forever", configmap("forever", json!({}))),
            objects("plain", configmap("plain", json!({}))),
            objects("volume", pvc),
        ]),
        gc.clone(),
    );
    let g = hub.apply(&v1).await;
    hub.wait_running("gc", g, 1).await;
    let uid = hub
        .apps()
        .get("gc")
        .await
        .expect("get")
        .metadata
        .uid
        .expect("uid");

    // v2 wants none of them.
    let v2 = app(
        "gc",
        json!([objects("other", configmap("other", json!({})))]),
        gc,
    );
    let g = hub.apply(&v2).await;
    hub.wait_running("gc", g, 2).await;
    hub.eventually("plain to be collected", || async {
        !hub.exists(&hub.configmaps(), "plain").await
    })
    .await;
    for kept in ["till-delete", "forever"] {
        assert!(
            hub.exists(&hub.configmaps(), kept).await,
            "{kept} kept on update"
        );
    }
    let pvcs = hub.api("v1", "PersistentVolumeClaim", "persistentvolumeclaims");
    assert!(hub.exists(&pvcs, "data").await, "PVCs are kept on update");

    hub.delete_app("gc").await;
    assert!(!hub.exists(&hub.configmaps(), "till-delete").await);
    assert!(!hub.exists(&hub.configmaps(), "other").await);
    assert!(hub.exists(&hub.configmaps(), "forever").await);
    assert!(hub.exists(&pvcs, "data").await, "PVCs are kept on delete");

    // What `sail delete` reports.
    let kept = controller::kept_on_delete(&hub.client(), "default", "gc", Some(&uid))
        .await
        .expect("read")
        .expect("something was kept");
    assert!(
        kept.kept
            .iter()
            .any(|k| k.contains("ConfigMap default/forever")),
        "{kept:?}"
    );
    assert!(
        kept.kept
            .iter()
            .any(|k| k.contains("PersistentVolumeClaim default/data")),
        "{kept:?}"
    );
    assert_eq!(kept.kept.len(), 2, "{kept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_legacy_resource_keeps_what_older_revisions_applied() {
    let hub = Hub::start().await;
    let gc = json!([{"name": "gc", "type": "garbage-collect",
                     "properties": {"keepLegacyResource": true}}]);
    let g = hub
        .apply(&app("legacy", json!([web("old", "nginx:1")]), gc.clone()))
        .await;
    hub.wait_running("legacy", g, 1).await;
    let g = hub
        .apply(&app("legacy", json!([web("new", "nginx:1")]), gc))
        .await;
    hub.wait_running("legacy", g, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hub.exists(&hub.deployments(), "old").await);
    hub.delete_app("legacy").await;
    assert!(!hub.exists(&hub.deployments(), "old").await);
    assert!(!hub.exists(&hub.deployments(), "new").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_propagation_leaves_the_dependents() {
    let hub = Hub::start().await;
    let gc = json!([{"name": "gc", "type": "garbage-collect", "properties": {"rules": [
        {"selector": {"componentNames": ["orphaned"]}, "strategy": "onAppUpdate",
         "propagation": "orphan"}]}}]);
    let g = hub
        .apply(&app(
            "orph",
            json!([web("orphaned", "nginx:1"), web("cascaded", "nginx:1")]),
            gc.clone(),
        ))
        .await;
    hub.wait_running("orph", g, 1).await;
    let replicasets = hub.api("apps/v1", "ReplicaSet", "replicasets");
    let owned_by = |d: &'static str| {
        let replicasets = replicasets.clone();
        async move {
            replicasets
                .list(&kube::api::ListParams::default())
                .await
                .expect("list")
                .items
                .into_iter()
                .filter(|rs| {
                    label(rs, "app.oam.dev/component").as_deref() == Some(d)
                        || rs
                            .metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with(&format!("{d}-")))
                })
                .count()
        }
    };
    assert!(owned_by("orphaned").await > 0);
    assert!(owned_by("cascaded").await > 0);

    let g = hub
        .apply(&app("orph", json!([web("other", "nginx:1")]), gc))
        .await;
    hub.wait_running("orph", g, 2).await;
    hub.eventually("both deployments to go", || async {
        !hub.exists(&hub.deployments(), "orphaned").await
            && !hub.exists(&hub.deployments(), "cascaded").await
    })
    .await;
    hub.eventually("the cascaded one's ReplicaSets to go", || async {
        owned_by("cascaded").await == 0
    })
    .await;
    assert!(
        owned_by("orphaned").await > 0,
        "the orphaned one's ReplicaSets stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collect_in_dependency_order_waits_for_dependents() {
    let hub = Hub::start().await;
    // top depends on middle (dependsOn), middle takes bottom's output as an input: deleted in
    // the order top, middle, bottom. top's ConfigMap carries a finalizer, so its deletion hangs
    // until the test lets it go.
    let mut top = configmap("top", json!({}));
    top["metadata"]["finalizers"] = json!(["test.sailplane.dev/hold"]);
    let mut top = objects("top", top);
    top["dependsOn"] = json!(["middle"]);
    let mut middle = objects("middle", configmap("middle", json!({})));
    middle["inputs"] = json!([{"from": "bottom-name", "parameterKey": "unused"}]);
    let mut bottom = objects("bottom", configmap("bottom", json!({})));
    bottom["outputs"] = json!([{"name": "bottom-name", "valueFrom": "output.metadata.name"}]);
    let a = app(
        "ordered",
        json!([top, middle, bottom]),
        json!([{"name": "gc", "type": "garbage-collect", "properties": {"order": "dependency"}}]),
    );
    let g = hub.apply(&a).await;
    hub.wait_running("ordered", g, 1).await;

    hub.apps()
        .delete("ordered", &Default::default())
        .await
        .expect("delete application");
    let cms = hub.configmaps();
    hub.eventually("top to be deleted (held by its finalizer)", || async {
        cms.get("top")
            .await
            .is_ok_and(|o| o.metadata.deletion_timestamp.is_some())
    })
    .await;
    // While top is still there, what it depends on stays, and so does the application.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hub.exists(&cms, "middle").await, "middle waits for top");
    assert!(hub.exists(&cms, "bottom").await, "bottom waits for middle");
    assert!(
        hub.apps().get_opt("ordered").await.expect("get").is_some(),
        "the application stays until everything is gone"
    );

    cms.patch(
        "top",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release top");
    hub.eventually("the application to be gone", || async {
        hub.apps().get_opt("ordered").await.expect("get").is_none()
    })
    .await;
    for name in ["top", "middle", "bottom"] {
        assert!(!hub.exists(&cms, name).await, "{name} deleted");
    }

    // An order garbage-collect does not know is an error naming it.
    let bad = app(
        "badorder",
        json!([objects("x", configmap("x", json!({})))]),
        json!([{"name": "gc", "type": "garbage-collect", "properties": {"order": "alphabetical"}}]),
    );
    hub.apply(&bad).await;
    hub.wait_app("badorder", |st| {
        st.condition("Parsed").is_some_and(|c| {
            c.message
                .as_deref()
                .is_some_and(|m| m.contains("alphabetical"))
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_update_replace_clears_what_others_set_and_patch_keeps_it() {
    let hub = Hub::start().await;
    let replace = json!([{"name": "upd", "type": "resource-update", "properties": {"rules": [
        {"selector": {"componentNames": ["replaced"]}, "strategy": {"op": "replace"}}]}}]);
    let v = |n: &str| {
        app(
            "repl",
            json!([
                objects("replaced", configmap("replaced", json!({"mine": n}))),
                objects("patched", configmap("patched", json!({"mine": n}))),
            ]),
            replace.clone(),
        )
    };
    let g = hub.apply(&v("1")).await;
    hub.wait_running("repl", g, 1).await;
    // Someone else adds a field to both.
    let cms = hub.configmaps();
    for name in ["replaced", "patched"] {
        cms.patch(
            name,
            &PatchParams::apply("someone-else"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name}, "data": {"theirs": "x"}})),
        )
        .await
        .expect("their apply");
    }
    let g = hub.apply(&v("2")).await;
    hub.wait_running("repl", g, 2).await;
    let data = |name: &'static str| {
        let cms = cms.clone();
        async move { cms.get(name).await.expect("get").data["data"].clone() }
    };
    // replace: the object as the application renders it, nothing else.
    assert_eq!(data("replaced").await, json!({"mine": "2"}));
    // patch (server-side apply): their field stays.
    assert_eq!(data("patched").await, json!({"mine": "2", "theirs": "x"}));

    // An op resource-update does not know is an error naming it.
    let bad = app(
        "badop",
        json!([objects("x", configmap("x", json!({})))]),
        json!([{"name": "upd", "type": "resource-update", "properties": {"rules": [
            {"selector": {"resourceTypes": ["ConfigMap"]}, "strategy": {"op": "skip"}}]}}]),
    );
    hub.apply(&bad).await;
    hub.wait_app("badop", |st| {
        st.condition("Parsed")
            .is_some_and(|c| c.message.as_deref().is_some_and(|m| m.contains("\"skip\"")))
    })
    .await;
}
