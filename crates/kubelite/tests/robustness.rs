//! Malformed input, faults, propagation policies, dry runs, relisting after 410, crash safety.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use serde_json::{Value, json};
use testkit::TestCluster;

async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    ct: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", ct)
        .body(kube::client::Body::from(body))
        .expect("request");
    let resp = client.send(req).await.expect("send");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (code, v)
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})).expect("cm")
}

#[tokio::test]
async fn malformed_requests_get_status_answers() {
    let tc = TestCluster::start_with(|c| c.max_body_bytes = 64 * 1024).await;
    let c = &tc.client;
    let p = "/api/v1/namespaces/default/configmaps";
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("POST", p, "application/json", b"{not json".to_vec(), 400, "BadRequest"),
        ("POST", p, "application/json", b"[1,2]".to_vec(), 400, "BadRequest"),
        ("POST", p, "application/json", b"".to_vec(), 400, "BadRequest"),
        ("POST", p, "text/plain", b"hello".to_vec(), 415, "UnsupportedMediaType"),
        ("POST", p, "application/vnd.kubernetes.protobuf", b"garbage".to_vec(), 400, "BadRequest"),
        ("POST", p, "application/json", vec![b' '; 70 * 1024], 413, "RequestEntityTooLarge"),
        ("POST", p, "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#.to_vec(), 422, "Invalid"),
        ("POST", p, "application/json", br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#.to_vec(), 400, "BadRequest"),
        ("POST", p, "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"other"}}"#.to_vec(), 400, "BadRequest"),
        ("POST", p, "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","labels":{"a":1}}}"#.to_vec(), 422, "Invalid"),
        ("POST", "/api/v1/namespaces/nope/configmaps", "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(), 404, "NotFound"),
        ("GET", "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20b", "", vec![], 400, "BadRequest"),
        ("GET", "/api/v1/namespaces/default/configmaps?fieldSelector=spec.x%3Dy", "", vec![], 400, "BadRequest"),
        ("GET", "/api/v1/namespaces/default/configmaps?limit=abc", "", vec![], 400, "BadRequest"),
        ("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=abc", "", vec![], 400, "BadRequest"),
        ("GET", "/api/v1/namespaces/default/configmaps?continue=%%%", "", vec![], 400, "BadRequest"),
        ("POST", "/api/v1/namespaces/default/configmaps?dryRun=Bogus", "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(), 400, "BadRequest"),
        ("GET", "/apis/example.com/v1/widgets", "", vec![], 404, "NotFound"),
        ("GET", "/api/v1/namespaces/default/configmaps/missing", "", vec![], 404, "NotFound"),
        ("PUT", "/api/v1/namespaces/default/configmaps/missing", "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"missing"}}"#.to_vec(), 404, "NotFound"),
        ("PATCH", "/api/v1/namespaces/default/configmaps/missing", "application/json", b"{}".to_vec(), 415, "UnsupportedMediaType"),
        ("PATCH", "/api/v1/namespaces/default/configmaps/missing", "application/merge-patch+json", b"{}".to_vec(), 404, "NotFound"),
        ("PATCH", "/api/v1/namespaces/default/configmaps/x", "application/apply-patch+yaml", b"kind: ConfigMap\napiVersion: v1\n".to_vec(), 422, "Invalid"),
        ("PATCH", "/api/v1/namespaces/default/configmaps/x?fieldManager=m", "application/apply-patch+yaml", b"{{{{".to_vec(), 400, "BadRequest"),
        ("DELETE", "/api/v1/namespaces/default/configmaps/missing", "", vec![], 404, "NotFound"),
        ("DELETE", "/api/v1/namespaces/default", "", vec![], 403, "Forbidden"),
    ];
    for (method, path, ct, body, code, reason) in cases {
        let (got, v) = raw(c, method, path, ct, body).await;
        assert_eq!(got, code, "{method} {path} ({ct}): {v}");
        assert_eq!(v["kind"], "Status", "{method} {path}: {v}");
        assert_eq!(v["reason"], reason, "{method} {path}: {v}");
        assert_eq!(v["code"], code, "{method} {path}: {v}");
    }
    // still alive
    let (code, v) = raw(c, "GET", "/version", "", vec![]).await;
    assert_eq!(code, 200);
    assert_eq!(v["major"], "1");
    tc.shutdown().await;
}

#[tokio::test]
async fn injected_faults() {
    let tc = TestCluster::start_with(|c| c.faults.error_rate = 1.0).await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 500),
        other => panic!("expected 500, got {other:?}"),
    }
    tc.shutdown().await;

    let tc = TestCluster::start_with(|c| {
        c.faults.drop_watches_after = Some(Duration::from_millis(300));
        c.faults.latency = Duration::from_millis(20);
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let started = std::time::Instant::now();
    let stream = api
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .expect("watch");
    let n = tokio::time::timeout(Duration::from_secs(5), stream.count())
        .await
        .expect("watch dropped by the server");
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(300));
    tc.shutdown().await;
}

#[tokio::test]
async fn faults_and_compaction_at_run_time() {
    let tc = TestCluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &cm("x"))
        .await
        .expect("create");
    tc.handle.set_faults(kubelite::Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    assert!(api.list(&ListParams::default()).await.is_err());
    tc.handle.set_faults(kubelite::Faults::default());
    api.list(&ListParams::default())
        .await
        .expect("healthy again");
    api.create(&PostParams::default(), &cm("y"))
        .await
        .expect("create");
    tc.handle.compact();
    let rv = created.metadata.resource_version.expect("rv");
    let mut s = api
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match s.next().await {
        Some(Ok(kube::api::WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        Some(Err(kube::Error::Api(e))) => assert_eq!(e.code, 410),
        other => panic!("expected 410 after compaction, got {other:?}"),
    }
    tc.shutdown().await;
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let tc = TestCluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let out = api
        .create(
            &PostParams {
                dry_run: true,
                field_manager: None,
            },
            &cm("dry"),
        )
        .await
        .expect("dry create");
    assert_eq!(out.metadata.name.as_deref(), Some("dry"));
    assert!(api.get_opt("dry").await.expect("get").is_none());
    api.create(&PostParams::default(), &cm("real"))
        .await
        .expect("create");
    api.delete(
        "real",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .expect("dry delete");
    assert!(api.get_opt("real").await.expect("get").is_some());
    let pp = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    api.patch(
        "real",
        &pp,
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .expect("dry patch");
    assert_eq!(
        api.get("real")
            .await
            .expect("get")
            .data
            .and_then(|d| d.get("k").cloned())
            .as_deref(),
        Some("v")
    );
    tc.shutdown().await;
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .expect("deployment")
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out: {what}");
}

#[tokio::test]
async fn foreground_and_orphan_propagation() {
    let tc = TestCluster::start().await;
    let deps: Api<Deployment> = Api::namespaced(tc.client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(tc.client.clone(), "default");
    for n in ["fg", "or"] {
        deps.create(&PostParams::default(), &deployment(n))
            .await
            .expect("create");
    }
    eventually("replica sets", async || {
        rss.list(&ListParams::default())
            .await
            .map(|l| l.items.len() == 2)
            .unwrap_or(false)
    })
    .await;

    deps.delete("fg", &DeleteParams::foreground())
        .await
        .expect("foreground delete");
    eventually("fg gone with its replica set", async || {
        deps.get_opt("fg").await.ok().flatten().is_none()
            && rss
                .list(&ListParams::default().labels("app=fg"))
                .await
                .map(|l| l.items.is_empty())
                .unwrap_or(false)
    })
    .await;

    deps.delete("or", &DeleteParams::orphan())
        .await
        .expect("orphan delete");
    eventually("or gone", async || {
        deps.get_opt("or").await.ok().flatten().is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = rss
        .list(&ListParams::default().labels("app=or"))
        .await
        .expect("list");
    assert_eq!(left.items.len(), 1, "orphaned replica set stays");
    assert!(
        left.items[0]
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(|r| r.is_empty())
    );
    tc.shutdown().await;
}

#[tokio::test]
async fn controller_relists_after_410() {
    // tiny history + watches dropped often: re-watches land on a too-old resourceVersion
    let tc = TestCluster::start_with(|c| {
        c.watch_history = 3;
        c.faults.drop_watches_after = Some(Duration::from_millis(400));
        c.simulate = None;
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(tc.client.clone(), "default");
    let reconciled = Arc::new(AtomicUsize::new(0));
    let ctx = reconciled.clone();
    let ctrl = Controller::new(api.clone(), kube::runtime::watcher::Config::default())
        .run(
            |obj: Arc<ConfigMap>, ctx: Arc<AtomicUsize>| async move {
                let name = obj.metadata.name.clone().unwrap_or_default();
                if name.starts_with("obj-")
                    && obj
                        .metadata
                        .annotations
                        .as_ref()
                        .is_none_or(|a| !a.contains_key("seen"))
                {
                    ctx.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_obj, _err, _ctx| Action::requeue(Duration::from_millis(100)),
            ctx,
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(ctrl);
    let other: Api<DynamicObject> = Api::namespaced_with(
        tc.client.clone(),
        "default",
        &kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("", "v1", "Secret")),
    );
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("obj-{i}")))
            .await
            .expect("create");
        // churn on another kind pushes the configmap watch's resourceVersion out of history
        for j in 0..5 {
            let s: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("s-{i}-{j}")}})).expect("secret");
            other
                .create(&PostParams::default(), &s)
                .await
                .expect("secret");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    eventually("all 10 reconciled", async || {
        reconciled.load(Ordering::SeqCst) >= 10
    })
    .await;
    handle.abort();
    tc.shutdown().await;
}

#[tokio::test]
async fn flux_and_terraform_objects_become_ready() {
    let tc = TestCluster::start().await;
    let crds: Api<DynamicObject> = Api::all_with(
        tc.client.clone(),
        &kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        )),
    );
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "helmreleases.helm.toolkit.fluxcd.io"},
        "spec": {"group": "helm.toolkit.fluxcd.io", "scope": "Namespaced",
            "names": {"plural": "helmreleases", "singular": "helmrelease", "kind": "HelmRelease"},
            "versions": [{"name": "v2", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .expect("crd");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("crd");
    let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
    ));
    let hr: Api<DynamicObject> = Api::namespaced_with(tc.client.clone(), "default", &ar);
    eventually("helmreleases served", async || {
        hr.list(&ListParams::default()).await.is_ok()
    })
    .await;
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "r"}, "spec": {"chart": {"spec": {"chart": "x", "version": "1.2.3"}}}})).expect("hr");
    hr.create(&PostParams::default(), &obj)
        .await
        .expect("create");
    eventually("HelmRelease Ready", async || {
        hr.get("r")
            .await
            .ok()
            .is_some_and(|o| o.data["status"]["conditions"][0]["status"] == "True")
    })
    .await;
    tc.shutdown().await;
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    let bin = env!("CARGO_BIN_EXE_kubelite");
    let spawn = || {
        let _ = std::fs::remove_file(dir.path().join("kubeconfig"));
        std::process::Command::new(bin)
            .args(["--data-dir"])
            .arg(dir.path())
            .args(["--addr", "127.0.0.1:0", "--no-sim"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn kubelite")
    };
    let wait_kc = async || {
        for _ in 0..200 {
            if dir.path().join("kubeconfig").exists() {
                return testkit::kube_client_for(&dir.path().join("kubeconfig")).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("kubelite did not write its kubeconfig");
    };
    let mut child = spawn();
    let client = wait_kc().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writer = {
        let acked = acked.clone();
        let api = api.clone();
        tokio::spawn(async move {
            let mut i = 0;
            let mut futs = futures::stream::FuturesUnordered::new();
            loop {
                while futs.len() < 4 {
                    let api = api.clone();
                    let name = format!("c-{i}");
                    i += 1;
                    futs.push(async move {
                        api.create(&PostParams::default(), &cm(&name))
                            .await
                            .map(|_| name)
                    });
                }
                match futs.next().await {
                    Some(Ok(name)) => acked.lock().unwrap_or_else(|e| e.into_inner()).push(name),
                    Some(Err(_)) | None => return,
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    let acked = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        acked.len() > 5,
        "too few writes before the kill: {}",
        acked.len()
    );

    let mut child = spawn();
    let client = wait_kc().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let names: std::collections::HashSet<String> = api
        .list(&ListParams::default())
        .await
        .expect("list after restart")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|n| !names.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes lost: {missing:?} (of {})",
        acked.len()
    );
    child.kill().expect("kill");
    let _ = child.wait();
}

#[tokio::test]
async fn random_bodies_never_crash_the_server() {
    let tc = TestCluster::start().await;
    let paths = [
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps/x",
        "/apis/apps/v1/namespaces/default/deployments",
        "/apis/apps/v1/namespaces/default/deployments/x",
        "/apis/apps/v1/namespaces/default/deployments/x/status",
        "/apis/apps/v1/namespaces/default/deployments/x/scale",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "/api/v1/namespaces",
    ];
    let cts = [
        "application/json",
        "application/yaml",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "application/vnd.kubernetes.protobuf",
        "",
    ];
    let seeds: [&[u8]; 8] = [
        b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}",
        b"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"replicas\":\"many\"}}",
        b"[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":3}]",
        b"{\"metadata\":null,\"spec\":[]}",
        b"---\nfoo: [\n",
        b"k8s\x00\x0a\x05\x0a\x02v1\x12",
        b"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"x\",\"labels\":[1]},\"spec\":{\"template\":7}}",
        b"\xff\xfe\x00{}",
    ];
    let methods = ["POST", "PUT", "PATCH", "DELETE", "GET"];
    let mut n = 0u32;
    for (pi, path) in paths.iter().enumerate() {
        for (ci, ct) in cts.iter().enumerate() {
            for (si, seed) in seeds.iter().enumerate() {
                let method = methods[(pi + ci + si) % methods.len()];
                // mutate the seed deterministically
                let mut body = seed.to_vec();
                if (pi + si) % 3 == 0 && !body.is_empty() {
                    let at = (ci * 7 + si) % body.len();
                    body[at] ^= 0x20;
                }
                let (code, v) = raw(&tc.client, method, path, ct, body).await;
                assert!(code < 500, "{method} {path} ({ct}) seed {si}: {code} {v}");
                if code >= 400 {
                    assert_eq!(v["kind"], "Status", "{method} {path}: {v}");
                }
                n += 1;
            }
        }
    }
    assert!(n > 400);
    let (code, _) = raw(&tc.client, "GET", "/version", "", vec![]).await;
    assert_eq!(code, 200);
    tc.shutdown().await;
}

#[tokio::test]
async fn aggregated_discovery_by_content_negotiation() {
    let tc = TestCluster::start().await;
    for (path, core) in [("/apis", false), ("/api", true)] {
        let req = http::Request::builder()
            .uri(path)
            .header(
                "Accept",
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            )
            .body(kube::client::Body::empty())
            .expect("request");
        let resp = tc.client.send(req).await.expect("send");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            ct.contains("as=APIGroupDiscoveryList") && ct.contains("v=v2"),
            "{ct}"
        );
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["kind"], "APIGroupDiscoveryList");
        assert_eq!(v["apiVersion"], "apidiscovery.k8s.io/v2");
        let items = v["items"].as_array().expect("items");
        if core {
            assert_eq!(items.len(), 1);
            let res = items[0]["versions"][0]["resources"]
                .as_array()
                .expect("resources");
            assert!(
                res.iter()
                    .any(|r| r["resource"] == "pods" && r["scope"] == "Namespaced")
            );
        } else {
            let apps = items
                .iter()
                .find(|g| g["metadata"]["name"] == "apps")
                .expect("apps group");
            let deploy = apps["versions"][0]["resources"]
                .as_array()
                .and_then(|a| a.iter().find(|r| r["resource"] == "deployments"))
                .expect("deployments");
            let subs: Vec<&str> = deploy["subresources"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s["subresource"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(subs, vec!["status", "scale"]);
        }
    }
    // legacy discovery without the header
    let (code, v) = raw(&tc.client, "GET", "/apis", "", vec![]).await;
    assert_eq!(code, 200);
    assert_eq!(v["kind"], "APIGroupList");
    tc.shutdown().await;
}
