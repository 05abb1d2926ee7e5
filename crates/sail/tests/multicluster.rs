//! Multi-cluster delivery through the `sail` CLI: a hub and three member kubelite clusters over
//! HTTPS. Placement by labels, overrides per cluster, garbage collection across clusters, and a
//! member that goes away in the middle of a rollout.

mod common;

use common::{HubProcess, member_jsonpath, ok, start_members, text, wait_until};
use std::time::{Duration, Instant};

fn replicas(member: &testkit::TestCluster, ns: &str, name: &str) -> Option<String> {
    member_jsonpath(member, ns, &["deployment", name], "{.spec.replicas}")
}

const APP: &str = r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  namespace: default
spec:
  components:
  - name: web
    type: webservice
    properties:
      image: nginx:1.27
  policies:
  - name: eu
    type: topology
    properties:
      clusterLabelSelector:
        region: eu
      namespace: shop
  - name: us
    type: topology
    properties:
      clusters: ["us-1"]
      namespace: shop
  - name: big
    type: override
    properties:
      components:
      - name: web
        traits:
        - type: scaler
          properties:
            replicas: 3
  workflow:
    steps:
    - name: deploy-eu
      type: deploy
      properties:
        policies: ["eu"]
    - name: deploy-us
      type: deploy
      properties:
        policies: ["us", "big"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn placement_overrides_status_and_garbage_collection_across_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["eu-1", "eu-2", "us-1"]).await;
    hub.join(&members[0], "eu-1", "region=eu");
    hub.join(&members[1], "eu-2", "region=eu");
    hub.join(&members[2], "us-1", "region=us");

    let file = dir.path().join("app.yaml");
    std::fs::write(&file, APP).unwrap();
    ok(
        &hub.sail(&[
            "up",
            "-f",
            file.to_str().unwrap(),
            "--wait",
            "--timeout",
            "90s",
        ]),
        "sail up --wait",
    );
    // eu clusters by label, one replica; us-1 by name, overridden to three.
    assert_eq!(replicas(&members[0], "shop", "web").as_deref(), Some("1"));
    assert_eq!(replicas(&members[1], "shop", "web").as_deref(), Some("1"));
    assert_eq!(replicas(&members[2], "shop", "web").as_deref(), Some("3"));
    // Nothing on the hub itself.
    let on_hub = hub.kubectl(&["get", "deployment", "web", "-n", "shop"]);
    assert!(!on_hub.status.success());

    // One status: a service entry per cluster.
    let status = ok(&hub.sail(&["status", "shop", "-o", "json"]), "status");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let services = v["status"]["services"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut clusters: Vec<String> = services
        .iter()
        .map(|s| s["cluster"].as_str().unwrap_or("local").to_string())
        .collect();
    clusters.sort();
    assert_eq!(clusters, ["eu-1", "eu-2", "us-1"], "{status}");
    assert!(services.iter().all(|s| s["healthy"] == true), "{status}");

    // The tree shows each cluster with its resources and pods, read from the members.
    let tree = ok(&hub.sail(&["status", "shop", "--tree"]), "status --tree");
    for cluster in ["eu-1", "eu-2", "us-1"] {
        assert!(
            tree.contains(&format!("cluster {cluster} (healthy)")),
            "{tree}"
        );
    }
    assert!(tree.contains("Deployment shop/web  3/3 ready"), "{tree}");
    assert!(tree.contains("Pod web-"), "pods from the members:\n{tree}");

    // The tracker records the cluster of each resource.
    let rts = ok(
        &hub.kubectl(&["get", "resourcetrackers", "-o", "json"]),
        "trackers",
    );
    assert!(
        rts.contains("\"cluster\":\"us-1\"") || rts.contains("\"cluster\": \"us-1\""),
        "{rts}"
    );

    // eu-2 leaves the eu region: the next revision no longer places web there, and once its
    // workflow succeeds the Deployment on eu-2 is collected.
    ok(
        &hub.sail(&["cluster", "labels", "del", "eu-2", "region"]),
        "labels del",
    );
    let changed = APP.replace("image: nginx:1.27", "image: nginx:1.28");
    std::fs::write(&file, changed).unwrap();
    ok(
        &hub.sail(&[
            "up",
            "-f",
            file.to_str().unwrap(),
            "--wait",
            "--timeout",
            "90s",
        ]),
        "sail up v2",
    );
    wait_until("web removed from eu-2", Duration::from_secs(30), || {
        replicas(&members[1], "shop", "web").map(|r| format!("still there with {r} replicas"))
    });
    assert!(replicas(&members[0], "shop", "web").is_some());
    assert!(replicas(&members[2], "shop", "web").is_some());

    // Deleting the application removes it from every cluster.
    ok(
        &hub.sail(&["delete", "shop", "--wait", "--timeout", "60s"]),
        "delete",
    );
    for (i, m) in members.iter().enumerate() {
        assert!(
            replicas(m, "shop", "web").is_none(),
            "member {i} still has web"
        );
    }
    hub.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_down_and_a_hub_restart_during_rollout_and_it_completes() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let mut members = start_members(&["eu-1", "us-1"]).await;
    hub.join(&members[0], "eu-1", "region=eu");
    hub.join(&members[1], "us-1", "region=us");
    let us = members.pop().unwrap();
    let stopped = us.stop().await;

    let app = APP.replace(
        "clusterLabelSelector:\n        region: eu",
        "clusters: [\"eu-1\"]",
    );
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, app).unwrap();
    ok(&hub.sail(&["up", "-f", file.to_str().unwrap()]), "sail up");

    // eu-1 gets its Deployment; the us step waits and says which cluster it waits for.
    wait_until("web on eu-1", Duration::from_secs(30), || {
        replicas(&members[0], "shop", "web")
            .is_none()
            .then(|| "absent".to_string())
    });
    let mut last = String::new();
    wait_until(
        "the step names the unreachable cluster",
        Duration::from_secs(60),
        || {
            let out = hub.sail(&["status", "shop", "-o", "json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let step = v["status"]["workflow"]["steps"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == "deploy-us").cloned())
                .unwrap_or_default();
            last = step.to_string();
            let msg = step["message"].as_str().unwrap_or("");
            (!(step["phase"] == "running" && msg.contains("us-1"))).then(|| last.clone())
        },
    );

    // The hub itself restarts while the rollout waits; it picks up where the status says.
    hub.stop();
    let hub = HubProcess::start(dir.path());

    // The member comes back: the rollout completes without anyone touching the application.
    let us = stopped.start().await;
    wait_until("web on us-1", Duration::from_secs(60), || {
        replicas(&us, "shop", "web").is_none().then(|| last.clone())
    });
    wait_until("the workflow succeeds", Duration::from_secs(60), || {
        let out = hub.sail(&["status", "shop", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (v["status"]["status"] != "running").then(|| v["status"]["status"].to_string())
    });
    hub.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn ref_objects_distribute_existing_hub_objects_to_members() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["edge-1", "edge-2"]).await;
    hub.join(&members[0], "edge-1", "tier=edge");
    hub.join(&members[1], "edge-2", "tier=edge");
    testkit::ok_stdout(&testkit::kubectl_stdin(
        &hub.kubeconfig(),
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: default\n  labels:\n    share: \"yes\"\ndata:\n  mode: fast\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app-token\n  namespace: default\n  labels:\n    share: \"yes\"\nstringData:\n  token: s3cr3t\n",
    ));
    let app = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: spread-config\n  namespace: default\nspec:\n  components:\n  - name: shared\n    type: ref-objects\n    properties:\n      objects:\n      - resource: configmap\n        name: app-config\n      - resource: secret\n        labelSelector:\n          share: \"yes\"\n  policies:\n  - name: edges\n    type: topology\n    properties:\n      clusterLabelSelector:\n        tier: edge\n";
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, app).unwrap();
    ok(
        &hub.sail(&[
            "up",
            "-f",
            file.to_str().unwrap(),
            "--wait",
            "--timeout",
            "60s",
        ]),
        "sail up ref-objects",
    );
    for m in &members {
        let cm = m.kubectl(&[
            "get",
            "configmap",
            "app-config",
            "-n",
            "default",
            "-o",
            "jsonpath={.data.mode}",
        ]);
        assert_eq!(testkit::ok_stdout(&cm), "fast");
        let secret = m.kubectl(&["get", "secret", "app-token", "-n", "default"]);
        testkit::ok_stdout(&secret);
    }
    hub.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_multi_cluster_examples_run_on_three_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["eu-1", "eu-2", "us-1"]).await;
    hub.join(&members[0], "eu-1", "region=eu,zone=a");
    hub.join(&members[1], "eu-2", "region=eu,zone=b");
    hub.join(&members[2], "us-1", "region=us,zone=a");
    let example = |f: &str| {
        common::repo_root()
            .join("examples/multi-cluster")
            .join(f)
            .to_str()
            .unwrap()
            .to_string()
    };

    // Canary: eu-1 only, until approved; then everywhere.
    ok(
        &hub.sail(&["up", "-f", &example("canary.yaml")]),
        "up canary",
    );
    hub.wait_phase("canary-shop", "workflowSuspending");
    assert!(replicas(&members[0], "default", "storefront").is_some());
    assert!(replicas(&members[1], "default", "storefront").is_none());
    assert!(replicas(&members[2], "default", "storefront").is_none());
    ok(&hub.sail(&["workflow", "resume", "canary-shop"]), "approve");
    hub.wait_phase("canary-shop", "running");
    for m in &members {
        assert!(replicas(m, "default", "storefront").is_some());
    }

    // Replica scheduling: 3 in each EU cluster, 1 in the US.
    ok(
        &hub.sail(&[
            "up",
            "-f",
            &example("replica-scheduling.yaml"),
            "--wait",
            "--timeout",
            "90s",
        ]),
        "up replica-scheduling",
    );
    assert_eq!(
        replicas(&members[0], "default", "catalog-api").as_deref(),
        Some("3")
    );
    assert_eq!(
        replicas(&members[1], "default", "catalog-api").as_deref(),
        Some("3")
    );
    assert_eq!(
        replicas(&members[2], "default", "catalog-api").as_deref(),
        Some("1")
    );

    // Disaster recovery: every cluster of both zones, in the payments namespace.
    ok(
        &hub.sail(&[
            "up",
            "-f",
            &example("disaster-recovery.yaml"),
            "--wait",
            "--timeout",
            "90s",
        ]),
        "up disaster-recovery",
    );
    for m in &members {
        assert!(replicas(m, "payments", "payments-api").is_some());
    }
    hub.stop();
}

fn image(member: &testkit::TestCluster, ns: &str, name: &str) -> Option<String> {
    member_jsonpath(
        member,
        ns,
        &["deployment", name],
        "{.spec.template.spec.containers[0].image}",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_example_configures_staging_and_production_differently() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["staging", "production"]).await;
    hub.join(&members[0], "staging", "env=staging");
    hub.join(&members[1], "production", "env=production");
    let app = common::repo_root().join("examples/multi-env/app.yaml");
    ok(
        &hub.sail(&["up", "-f", app.to_str().unwrap()]),
        "up multi-env",
    );
    hub.wait_phase("shop", "workflowSuspending");
    assert_eq!(
        image(&members[0], "shop-staging", "frontend").as_deref(),
        Some("nginx:1.27-rc")
    );
    assert_eq!(
        replicas(&members[0], "shop-staging", "frontend").as_deref(),
        Some("1")
    );
    assert!(
        image(&members[1], "shop", "frontend").is_none(),
        "not before approval"
    );
    ok(
        &hub.sail(&["workflow", "resume", "shop"]),
        "approve production",
    );
    hub.wait_phase("shop", "running");
    assert_eq!(
        image(&members[1], "shop", "frontend").as_deref(),
        Some("nginx:1.27")
    );
    assert_eq!(
        replicas(&members[1], "shop", "frontend").as_deref(),
        Some("3")
    );
    hub.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_an_application_on_a_detached_cluster_says_what_was_left_there() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["far"]).await;
    hub.join(&members[0], "far", "");
    let file = dir.path().join("app.yaml");
    std::fs::write(
        &file,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: remote\n  namespace: default\nspec:\n  components:\n  - name: web\n    type: webservice\n    properties:\n      image: nginx\n  policies:\n  - name: there\n    type: topology\n    properties:\n      clusters: [\"far\"]\n",
    )
    .unwrap();
    ok(
        &hub.sail(&[
            "up",
            "-f",
            file.to_str().unwrap(),
            "--wait",
            "--timeout",
            "60s",
        ]),
        "up",
    );
    assert!(replicas(&members[0], "default", "web").is_some());
    let refused = hub.sail(&["cluster", "detach", "far"]);
    assert!(!refused.status.success(), "in use: refused");
    ok(
        &hub.sail(&["cluster", "detach", "far", "--force"]),
        "detach --force",
    );
    let out = ok(
        &hub.sail(&["delete", "remote", "--wait", "--timeout", "60s"]),
        "delete",
    );
    assert!(out.contains("no longer registered"), "{out}");
    // Nothing could reach it, so it is still there, as the deletion said.
    assert!(replicas(&members[0], "default", "web").is_some());
    hub.stop();
}

/// KubeVela's "cm-with-message" scenario: within one deploy step, on every cluster, the
/// ConfigMap waits for podinfo there to be healthy (`dependsOn`) and gets that cluster's own
/// values of podinfo's outputs (`inputs`), not another cluster's.
const ORCHESTRATED: &str = r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: cm-with-message
  namespace: default
spec:
  components:
  - name: podinfo
    type: webservice
    properties:
      image: stefanprodan/podinfo:4.0.3
    outputs:
    - name: message
      valueFrom: output.status.conditions[0].message
    - name: ip
      valueFrom: outputs.service.spec.clusterIP
    traits:
    - type: expose
      properties:
        port: [80]
  - name: configmap
    type: k8s-objects
    dependsOn: [podinfo]
    inputs:
    - from: message
      parameterKey: objects[0].data.msg
    - from: ip
      parameterKey: objects[0].data.ip
    properties:
      objects:
      - apiVersion: v1
        kind: ConfigMap
        metadata:
          name: deployment-msg
        data:
          origin: sailplane
  policies:
  - name: both
    type: topology
    properties:
      clusters: ["east", "west"]
      namespace: demo
"#;

fn jsonpath(member: &testkit::TestCluster, what: &[&str], path: &str) -> Option<String> {
    member_jsonpath(member, "demo", what, path)
}

#[tokio::test(flavor = "multi_thread")]
async fn components_wait_for_their_dependencies_and_take_inputs_per_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["east", "west"]).await;
    hub.join(&members[0], "east", "");
    hub.join(&members[1], "west", "");
    // A Service already on west, so that its clusterIPs are not the ones east hands out: each
    // ConfigMap must carry its own cluster's address.
    ok(
        &members[1].kubectl(&["create", "namespace", "demo"]),
        "namespace on west",
    );
    ok(
        &members[1].kubectl(&[
            "create",
            "service",
            "clusterip",
            "other",
            "--tcp=80:80",
            "-n",
            "demo",
        ]),
        "a service on west",
    );

    let file = dir.path().join("app.yaml");
    std::fs::write(&file, ORCHESTRATED).unwrap();
    ok(&hub.sail(&["up", "-f", file.to_str().unwrap()]), "sail up");
    // Until podinfo is healthy on a cluster, the ConfigMap is not there, and the step says why.
    let start = Instant::now();
    let mut saw_waiting = false;
    loop {
        let status = ok(
            &hub.sail(&["status", "cm-with-message", "-o", "json"]),
            "status",
        );
        let v: serde_json::Value = serde_json::from_str(&status).unwrap();
        if v["status"]["status"] == "running" {
            break;
        }
        if status.contains("depends on podinfo on") {
            saw_waiting = true;
        }
        for (m, name) in members.iter().zip(["east", "west"]) {
            if jsonpath(m, &["configmap", "deployment-msg"], "{.metadata.name}").is_some() {
                let ready = jsonpath(m, &["deployment", "podinfo"], "{.status.readyReplicas}");
                assert_eq!(
                    ready.as_deref(),
                    Some("1"),
                    "the ConfigMap went out before podinfo was ready on {name}"
                );
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "not running within 90s: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        saw_waiting,
        "the status never said the ConfigMap waits for podinfo"
    );

    let mut ips = Vec::new();
    for (m, name) in members.iter().zip(["east", "west"]) {
        let svc_ip = jsonpath(m, &["service", "podinfo"], "{.spec.clusterIP}").unwrap();
        let cm_ip = jsonpath(m, &["configmap", "deployment-msg"], "{.data.ip}").unwrap();
        let msg = jsonpath(m, &["configmap", "deployment-msg"], "{.data.msg}").unwrap();
        let origin = jsonpath(m, &["configmap", "deployment-msg"], "{.data.origin}").unwrap();
        assert_eq!(
            cm_ip, svc_ip,
            "{name}: the ConfigMap has another cluster's IP"
        );
        assert_eq!(msg, "Deployment has minimum availability.");
        assert_eq!(origin, "sailplane");
        ips.push(svc_ip);
    }
    assert_ne!(
        ips[0], ips[1],
        "both clusters gave the same address; the test shows nothing"
    );
    hub.stop();
}

/// KubeVela's "use policies and workflow outside the application": the Workflow and two
/// Policies are objects beside the application, in the same file.
const EXTERNAL: &str = r#"apiVersion: core.oam.dev/v1alpha1
kind: Policy
metadata:
  name: topology-hangzhou-clusters
type: topology
properties:
  clusterLabelSelector:
    region: hangzhou
  namespace: examples
---
apiVersion: core.oam.dev/v1alpha1
kind: Policy
metadata:
  name: override-high-availability-webservice
type: override
properties:
  components:
    - type: webservice
      traits:
        - type: scaler
          properties:
            replicas: 3
---
apiVersion: core.oam.dev/v1alpha1
kind: Workflow
metadata:
  name: make-release-in-hangzhou
steps:
  - type: deploy
    name: deploy-hangzhou
    properties:
      policies: ["override-high-availability-webservice", "topology-hangzhou-clusters"]
---
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: external-policies-and-workflow
spec:
  components:
    - name: nginx
      type: webservice
      properties:
        image: nginx
  workflow:
    ref: make-release-in-hangzhou
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_application_runs_a_workflow_and_policies_defined_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["hz-1", "hz-2", "sh-1"]).await;
    hub.join(&members[0], "hz-1", "region=hangzhou");
    hub.join(&members[1], "hz-2", "region=hangzhou");
    hub.join(&members[2], "sh-1", "region=shanghai");

    let file = dir.path().join("external.yaml");
    std::fs::write(&file, EXTERNAL).unwrap();
    let out = ok(
        &hub.sail(&[
            "up",
            "-f",
            file.to_str().unwrap(),
            "--wait",
            "--timeout",
            "90s",
        ]),
        "sail up",
    );
    assert!(
        out.contains("workflow default/make-release-in-hangzhou applied"),
        "{out}"
    );
    assert_eq!(
        replicas(&members[0], "examples", "nginx").as_deref(),
        Some("3")
    );
    assert_eq!(
        replicas(&members[1], "examples", "nginx").as_deref(),
        Some("3")
    );
    assert_eq!(replicas(&members[2], "examples", "nginx"), None);
    let status = ok(
        &hub.sail(&["status", "external-policies-and-workflow", "-o", "json"]),
        "status",
    );
    assert!(status.contains("deploy-hangzhou"), "{status}");

    // A file with anything else in it is refused before the hub is touched.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!("{EXTERNAL}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
    )
    .unwrap();
    let refused = hub.sail(&["up", "-f", bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("document 5 is a ConfigMap"),
        "{}",
        text(&refused.stderr)
    );
    hub.stop();
}
