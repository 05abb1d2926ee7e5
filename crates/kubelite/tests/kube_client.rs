//! kubelite driven by kube-rs, as the controller will use it.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;
use testkit::TestCluster;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"}
    }))
    .expect("configmap")
}

fn deployment(name: &str, replicas: i32, annotations: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}}
        }
    }))
    .expect("deployment")
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn api_code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected API error, got {other:?}"),
    }
}

fn api_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.reason.clone(),
        other => panic!("expected API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_conflicts_and_selectors() {
    let tc = TestCluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let a = api
        .create(
            &PostParams::default(),
            &cm("a", json!({"app": "x", "tier": "fe"})),
        )
        .await
        .expect("create a");
    api.create(&PostParams::default(), &cm("b", json!({"app": "y"})))
        .await
        .expect("create b");
    api.create(&PostParams::default(), &cm("c", json!({})))
        .await
        .expect("create c");
    let md = &a.metadata;
    assert!(md.uid.is_some() && md.creation_timestamp.is_some() && md.resource_version.is_some());

    let err = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .expect_err("dup");
    assert_eq!(
        (api_code(&err), api_reason(&err).as_str()),
        (409, "AlreadyExists")
    );

    // stale update
    let mut a2 = a.clone();
    a2.data = Some([("k".to_string(), "v2".to_string())].into());
    let a3 = api
        .replace("a", &PostParams::default(), &a2)
        .await
        .expect("replace");
    assert_ne!(a3.metadata.resource_version, a.metadata.resource_version);
    let err = api
        .replace("a", &PostParams::default(), &a2)
        .await
        .expect_err("stale");
    assert_eq!(
        (api_code(&err), api_reason(&err).as_str()),
        (409, "Conflict")
    );

    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        let mut v: Vec<String> = l
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        v.sort();
        v
    };
    for (sel, want) in [
        ("app=x", vec!["a"]),
        ("app==x", vec!["a"]),
        ("app!=x", vec!["b", "c"]),
        ("app in (x,y)", vec!["a", "b"]),
        ("app notin (x)", vec!["b", "c"]),
        ("app", vec!["a", "b"]),
        ("!app", vec!["c"]),
        ("app=x,tier=fe", vec!["a"]),
    ] {
        let l = api
            .list(&ListParams::default().labels(sel))
            .await
            .expect("list");
        assert_eq!(names(l), want, "selector {sel}");
    }
    let l = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .expect("list");
    assert_eq!(names(l), vec!["b"]);
    let err = api
        .list(&ListParams::default().labels("app in x"))
        .await
        .expect_err("bad selector");
    assert_eq!(api_code(&err), 400);
    let err = api
        .list(&ListParams::default().fields("data.k=v"))
        .await
        .expect_err("bad field");
    assert_eq!(api_code(&err), 400);

    // limit / continue
    let p1 = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(p1.items.len(), 2);
    let token = p1.metadata.continue_.clone().expect("continue token");
    let p2 = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(p2.items.len(), 1);
    assert!(p2.metadata.continue_.as_deref().unwrap_or("").is_empty());

    // metadata-only API (PartialObjectMetadata), as kube-rs metadata_watcher uses
    let pm = api.get_metadata("a").await.expect("get_metadata");
    assert_eq!(pm.metadata.name.as_deref(), Some("a"));
    let pml = api
        .list_metadata(&ListParams::default().labels("app"))
        .await
        .expect("list_metadata");
    assert_eq!(pml.items.len(), 2);
    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(tc.client.clone(), "default");
    let mw = kube::runtime::watcher(meta_api, kube::runtime::watcher::Config::default());
    let first = kube::runtime::WatchStreamExt::applied_objects(mw)
        .boxed()
        .try_next()
        .await
        .expect("metadata watcher")
        .expect("an object");
    assert!(first.metadata.name.is_some());

    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let err = api.get("a").await.expect_err("gone");
    assert_eq!(
        (api_code(&err), api_reason(&err).as_str()),
        (404, "NotFound")
    );

    // unknown kind is 404
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Nope"));
    let nope: Api<DynamicObject> = Api::namespaced_with(tc.client.clone(), "default", &ar);
    assert_eq!(
        api_code(&nope.list(&ListParams::default()).await.expect_err("404")),
        404
    );
    tc.shutdown().await;
}

#[tokio::test]
async fn watch_events_and_bookmarks() {
    let tc = TestCluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let first = api
        .create(&PostParams::default(), &cm("w1", json!({"w": "1"})))
        .await
        .expect("create");
    let rv = first.metadata.resource_version.clone().expect("rv");
    let wp = WatchParams::default().labels("w").timeout(10);
    let mut stream = api.watch(&wp, &rv).await.expect("watch").boxed();
    api.create(&PostParams::default(), &cm("w2", json!({"w": "1"})))
        .await
        .expect("create");
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "y"}})),
    )
    .await
    .expect("patch");
    api.delete("w2", &DeleteParams::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("watch event in time")
            .expect("watch ok")
            .expect("stream open");
        match ev {
            WatchEvent::Added(o) => {
                seen.push(format!("ADDED {}", o.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Modified(o) => {
                seen.push(format!("MODIFIED {}", o.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Deleted(o) => {
                seen.push(format!("DELETED {}", o.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    assert_eq!(seen, vec!["ADDED w2", "MODIFIED w1", "DELETED w2"]);
    // a bookmark arrives eventually
    let got_bookmark = tokio::time::timeout(Duration::from_secs(6), async {
        while let Ok(Some(ev)) = stream.try_next().await {
            if matches!(ev, WatchEvent::Bookmark(_)) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(got_bookmark, "expected a BOOKMARK");
    tc.shutdown().await;
}

#[tokio::test]
async fn watch_too_old_resource_version_is_410() {
    let tc = TestCluster::start_with(|c| c.watch_history = 5).await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("g{i}"), json!({})))
            .await
            .expect("create");
    }
    let mut stream = api
        .watch(&WatchParams::default(), "1")
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await {
        Ok(Some(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
    // kube-runtime's watcher recovers by relisting
    let w = kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default());
    let objs: Vec<ConfigMap> = kube::runtime::WatchStreamExt::applied_objects(w)
        .take(10)
        .try_collect()
        .await
        .expect("watcher");
    assert_eq!(objs.len(), 10);
    // streaming lists (sendInitialEvents + initial-events-end bookmark)
    let w = kube::runtime::watcher(
        api.clone(),
        kube::runtime::watcher::Config::default().streaming_lists(),
    );
    let objs: Vec<ConfigMap> = kube::runtime::WatchStreamExt::applied_objects(w)
        .take(10)
        .try_collect()
        .await
        .expect("streaming watcher");
    assert_eq!(objs.len(), 10);
    tc.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_managers_conflicts_and_removal() {
    let tc = TestCluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1", "b": "2"}});
    let o = api
        .patch(
            "ssa",
            &PatchParams::apply("sailplane").force(),
            &Patch::Apply(&desired),
        )
        .await
        .expect("apply creates");
    let mf = o.metadata.managed_fields.clone().expect("managedFields");
    assert_eq!(mf[0].manager.as_deref(), Some("sailplane"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    // other manager, different value: 409 unless forced
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "9"}});
    let err = api
        .patch(
            "ssa",
            &PatchParams::apply("intruder"),
            &Patch::Apply(&other),
        )
        .await
        .expect_err("conflict");
    assert_eq!(api_code(&err), 409);
    let forced = api
        .patch(
            "ssa",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&other),
        )
        .await
        .expect("force");
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("9")
    );

    // sailplane stops applying b: b is removed; a now belongs to intruder and stays
    let smaller = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"c": "3"}});
    let o = api
        .patch(
            "ssa",
            &PatchParams::apply("sailplane").force(),
            &Patch::Apply(&smaller),
        )
        .await
        .expect("apply");
    let data = o.data.expect("data");
    assert_eq!(data.get("a").map(String::as_str), Some("9"));
    assert_eq!(data.get("b"), None);
    assert_eq!(data.get("c").map(String::as_str), Some("3"));

    // SSA of a Deployment keeps list items of other managers (containers merge by name)
    let dapi: Api<Deployment> = Api::namespaced(tc.client.clone(), "default");
    let d = serde_json::to_value(deployment("ssa-d", 1, json!({}))).expect("json");
    dapi.patch(
        "ssa-d",
        &PatchParams::apply("sailplane").force(),
        &Patch::Apply(&d),
    )
    .await
    .expect("apply deploy");
    dapi.patch("ssa-d", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}})))
        .await
        .expect("strategic patch");
    let again = dapi
        .patch(
            "ssa-d",
            &PatchParams::apply("sailplane").force(),
            &Patch::Apply(&d),
        )
        .await
        .expect("re-apply");
    let names: Vec<String> = again
        .spec
        .template
        .spec
        .map(|s| s.containers.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["main", "sidecar"]);
    // re-applying the same configuration is a no-op (no new resourceVersion)
    let c1 = api
        .patch(
            "ssa",
            &PatchParams::apply("sailplane").force(),
            &Patch::Apply(&smaller),
        )
        .await
        .expect("re-apply");
    let c2 = api
        .patch(
            "ssa",
            &PatchParams::apply("sailplane").force(),
            &Patch::Apply(&smaller),
        )
        .await
        .expect("re-apply");
    assert_eq!(c1.metadata.resource_version, c2.metadata.resource_version);
    // dry run changes nothing
    let dr = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"a": "1"}});
    let mut pp = PatchParams::apply("sailplane").force();
    pp.dry_run = true;
    api.patch("dry", &pp, &Patch::Apply(&dr))
        .await
        .expect("dry-run apply");
    assert!(api.get_opt("dry").await.expect("get").is_none());
    tc.shutdown().await;
}

#[tokio::test]
async fn status_subresource_generation_and_simulated_rollout() {
    let tc = TestCluster::start().await;
    let api: Api<Deployment> = Api::namespaced(tc.client.clone(), "default");
    let d = api
        .create(&PostParams::default(), &deployment("web", 2, json!({})))
        .await
        .expect("create");
    assert_eq!(d.metadata.generation, Some(1));
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(api.clone(), "web", conditions::is_deployment_completed()),
    )
    .await
    .expect("deployment completes in time")
    .expect("wait ok")
    .expect("exists");
    let st = done.status.clone().expect("status");
    assert_eq!(
        (
            st.ready_replicas,
            st.available_replicas,
            st.updated_replicas
        ),
        (Some(2), Some(2), Some(2))
    );
    let conds = st.conditions.expect("conditions");
    assert!(conds.iter().any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")));
    assert!(
        conds
            .iter()
            .any(|c| c.type_.as_deref() == Some("Progressing")
                && c.status.as_deref() == Some("True"))
    );
    let pods: Api<Pod> = Api::namespaced(tc.client.clone(), "default");
    let ps = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("pods");
    assert_eq!(ps.items.len(), 2);
    assert!(
        ps.items
            .iter()
            .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    );

    // status written through the main resource is ignored; metadata change does not bump generation
    let cur = api.get("web").await.expect("get");
    let g = cur.metadata.generation;
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}, "status": {"replicas": 99}})),
    )
    .await
    .expect("patch");
    let cur = api.get("web").await.expect("get");
    assert_eq!(cur.metadata.generation, g);
    assert_ne!(cur.status.and_then(|s| s.replicas), Some(99));
    // spec change bumps generation
    let cur = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale");
    assert_eq!(cur.metadata.generation, g.map(|x| x + 1));
    // status subresource writes status only
    let s = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 42}, "spec": {"replicas": 7}})),
        )
        .await
        .expect("patch status");
    assert_eq!(s.spec.replicas, Some(3));

    // deleting the deployment garbage-collects replica sets and pods
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until("pods to be collected", || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels("app=web"))
                .await
                .map(|l| l.items.is_empty())
                .unwrap_or(false)
        }
    })
    .await;
    tc.shutdown().await;
}

#[tokio::test]
async fn failure_annotations() {
    let tc = TestCluster::start().await;
    let api: Api<Deployment> = Api::namespaced(tc.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment(
            "bad",
            1,
            json!({"kubelite.sailplane.dev/fail": "image-pull"}),
        ),
    )
    .await
    .expect("create");
    let pods: Api<Pod> = Api::namespaced(tc.client.clone(), "default");
    wait_until("image pull failure", || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels("app=bad"))
                .await
                .ok()
                .is_some_and(|l| {
                    l.items.iter().any(|p| {
                        p.status
                            .as_ref()
                            .and_then(|s| s.container_statuses.as_ref())
                            .is_some_and(|cs| {
                                cs.iter().any(|c| {
                                    c.state
                                        .as_ref()
                                        .and_then(|s| s.waiting.as_ref())
                                        .and_then(|w| w.reason.as_deref())
                                        .is_some_and(|r| r.contains("ImagePull"))
                                })
                            })
                    })
                })
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let d = api.get("bad").await.expect("get");
    let avail = d
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("Available"))
        .expect("Available condition");
    assert_eq!(avail.status.as_deref(), Some("False"));

    let jobs: Api<Job> = Api::namespaced(tc.client.clone(), "default");
    let job: Job = serde_json::from_value(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})).expect("job");
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create job");
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(jobs.clone(), "j", conditions::is_job_completed()),
    )
    .await
    .expect("job completes")
    .expect("wait ok");
    tc.shutdown().await;
}

#[tokio::test]
async fn finalizers_and_namespace_deletion() {
    let tc = TestCluster::start().await;
    let nss: Api<Namespace> = Api::all(tc.client.clone());
    for n in ["default", "kube-system", "kube-public", "vela-system"] {
        nss.get(n)
            .await
            .unwrap_or_else(|e| panic!("namespace {n}: {e}"));
    }
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tmp"}}),
    )
    .expect("ns");
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "tmp");
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held)
        .await
        .expect("create");
    api.create(&PostParams::default(), &cm("free", json!({})))
        .await
        .expect("create");
    api.delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let h = api.get("held").await.expect("still there");
    assert!(h.metadata.deletion_timestamp.is_some());
    nss.delete("tmp", &DeleteParams::default())
        .await
        .expect("delete ns");
    // creating in a terminating namespace is forbidden
    let err = api
        .create(&PostParams::default(), &cm("late", json!({})))
        .await
        .expect_err("terminating");
    assert_eq!(api_code(&err), 403);
    wait_until("free to go", || {
        let api = api.clone();
        async move {
            api.get_opt("free")
                .await
                .map(|o| o.is_none())
                .unwrap_or(false)
        }
    })
    .await;
    assert!(
        nss.get_opt("tmp").await.expect("get").is_some(),
        "namespace waits for finalizer"
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    wait_until("namespace gone", || {
        let nss = nss.clone();
        async move {
            nss.get_opt("tmp")
                .await
                .map(|o| o.is_none())
                .unwrap_or(false)
        }
    })
    .await;
    let err = nss
        .delete("default", &DeleteParams::default())
        .await
        .expect_err("protected");
    assert_eq!(api_code(&err), 403);
    tc.shutdown().await;
}

#[tokio::test]
async fn crds_serve_their_resources() {
    let tc = TestCluster::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(tc.client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 3, "minimum": 1}, "color": {"type": "string"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    }))
    .expect("crd");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create crd");
    tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(
            crds.clone(),
            "widgets.example.com",
            conditions::is_crd_established(),
        ),
    )
    .await
    .expect("established")
    .expect("ok");
    let discovery = kube::Discovery::new(tc.client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("widget discovered");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "widgets/status" || s.plural == "status"),
        "{:?}",
        caps.subresources
    );
    let api: Api<DynamicObject> = Api::namespaced_with(tc.client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"color": "red", "junk": 1}})).expect("w");
    let created = api
        .create(&PostParams::default(), &w)
        .await
        .expect("create widget");
    assert_eq!(
        created.data["spec"],
        json!({"color": "red", "size": 3}),
        "defaulted and pruned"
    );
    let bad: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"}, "spec": {"size": 0}})).expect("bad");
    let err = api
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("invalid");
    assert_eq!(
        (api_code(&err), api_reason(&err).as_str()),
        (422, "Invalid")
    );
    // status subresource separation
    let s = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ok": true}, "spec": {"color": "blue"}})),
        )
        .await
        .expect("status");
    assert_eq!(s.data["spec"]["color"], json!("red"));
    assert_eq!(s.data["status"]["ok"], json!(true));
    // strategic merge patch is 415 for custom resources
    let err = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"color": "x"}})),
        )
        .await
        .expect_err("415");
    assert_eq!(api_code(&err), 415);
    // deleting the CRD removes the resource
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete crd");
    wait_until("widgets unserved", || {
        let api = api.clone();
        async move { matches!(api.list(&ListParams::default()).await, Err(kube::Error::Api(e)) if e.code == 404) }
    })
    .await;
    tc.shutdown().await;
}

#[tokio::test]
async fn services_get_cluster_ip_and_endpoints() {
    let tc = TestCluster::start().await;
    let svcs: Api<Service> = Api::namespaced(tc.client.clone(), "default");
    let s: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"app": "s"}, "ports": [{"port": 80}]}})).expect("svc");
    let s = svcs
        .create(&PostParams::default(), &s)
        .await
        .expect("create");
    let ip = s.spec.and_then(|s| s.cluster_ip).expect("clusterIP");
    assert!(ip.starts_with("10.96."));
    tc.shutdown().await;
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let tc = TestCluster::start().await;
    let kc = std::fs::read_to_string(tc.kubeconfig_path()).expect("kubeconfig");
    let bad = kc.replace(tc.handle.token(), "wrong-token");
    let path = tc.dir.path().join("bad-kubeconfig");
    std::fs::write(&path, bad).expect("write");
    let client = testkit::kube_client_for(&path).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let err = api.list(&ListParams::default()).await.expect_err("401");
    assert_eq!(api_code(&err), 401);
    tc.shutdown().await;
}

#[tokio::test]
async fn sqlite_data_survives_restart() {
    let tc = TestCluster::start_with(|c| {
        c.storage = kubelite::Storage::Sqlite {
            file_name: "hub.db".into(),
        }
    })
    .await;
    let token = tc.handle.token().to_string();
    let ca = tc.handle.ca_pem().to_string();
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &cm("keep", json!({"k": "v"})))
        .await
        .expect("create");
    let rv: u64 = created
        .metadata
        .resource_version
        .clone()
        .expect("rv")
        .parse()
        .expect("numeric rv");
    let tc = tc.restart().await;
    assert_eq!(tc.handle.token(), token);
    assert_eq!(tc.handle.ca_pem(), ca);
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let got = api.get("keep").await.expect("survived");
    assert_eq!(got.metadata.uid, created.metadata.uid);
    let next = api
        .create(&PostParams::default(), &cm("next", json!({})))
        .await
        .expect("create");
    let rv2: u64 = next
        .metadata
        .resource_version
        .expect("rv")
        .parse()
        .expect("numeric");
    assert!(rv2 > rv, "resourceVersion counter continues ({rv2} > {rv})");
    tc.shutdown().await;
}

#[tokio::test]
async fn unspecified_bind_address_is_reached_over_loopback() {
    let tc = TestCluster::start_with(|c| {
        c.addr = "0.0.0.0:0".parse().expect("addr");
        c.tls_sans = vec!["kubelite.example".into(), "10.1.2.3".into()];
    })
    .await;
    assert!(tc.handle.url().starts_with("https://127.0.0.1:"));
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .expect("list over loopback");
    tc.shutdown().await;
}

#[tokio::test]
async fn statefulset_pods_and_claims() {
    let tc = TestCluster::start().await;
    let sts: Api<DynamicObject> = Api::namespaced_with(
        tc.client.clone(),
        "default",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "StatefulSet")),
    );
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "pg", "image": "postgres:16"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    }))
    .expect("sts");
    sts.create(&PostParams::default(), &obj)
        .await
        .expect("create");
    wait_until("statefulset ready", || {
        let sts = sts.clone();
        async move {
            sts.get("db")
                .await
                .ok()
                .is_some_and(|o| o.data["status"]["readyReplicas"] == 2)
        }
    })
    .await;
    let pvcs: Api<DynamicObject> = Api::namespaced_with(
        tc.client.clone(),
        "default",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "PersistentVolumeClaim")),
    );
    for n in ["data-db-0", "data-db-1"] {
        let p = pvcs.get(n).await.expect("claim");
        assert_eq!(p.data["status"]["phase"], "Bound");
    }
    let pods: Api<Pod> = Api::namespaced(tc.client.clone(), "default");
    pods.get("db-0").await.expect("db-0");
    pods.get("db-1").await.expect("db-1");
    tc.shutdown().await;
}

#[tokio::test]
async fn a_stopped_cluster_refuses_then_comes_back() {
    let tc = TestCluster::start_sqlite().await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    api.create(&PostParams::default(), &cm("kept", json!({})))
        .await
        .expect("create");
    let client = tc.client.clone();
    let stopped = tc.stop().await;
    let down: Api<ConfigMap> = Api::namespaced(client, "default");
    assert!(
        down.list(&ListParams::default()).await.is_err(),
        "server is down"
    );
    let tc = stopped.start().await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    api.get("kept").await.expect("kept across stop/start");
    tc.shutdown().await;
}

#[tokio::test]
async fn cronjobs_start_jobs_on_schedule() {
    let tc = TestCluster::start().await;
    let cjs: Api<DynamicObject> = Api::namespaced_with(
        tc.client.clone(),
        "default",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("batch", "v1", "CronJob")),
    );
    let cj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}
    }))
    .expect("cronjob");
    cjs.create(&PostParams::default(), &cj)
        .await
        .expect("create");
    let jobs: Api<Job> = Api::namespaced(tc.client.clone(), "default");
    wait_until("a job from the cronjob", || {
        let jobs = jobs.clone();
        async move {
            jobs.list(&ListParams::default())
                .await
                .ok()
                .is_some_and(|l| {
                    l.items.iter().any(|j| {
                        j.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with("tick-"))
                    })
                })
        }
    })
    .await;
    let c = cjs.get("tick").await.expect("get");
    assert!(c.data["status"]["lastScheduleTime"].is_string());
    tc.shutdown().await;
}
