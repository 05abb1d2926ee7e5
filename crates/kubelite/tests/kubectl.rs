//! kubectl as an independent client of kubelite.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{TestCluster, kubectl_stdin, ok_stdout};

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  labels: {app: web}
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - {name: A, value: "1"}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
"#;

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_patch_wait() {
    let tc = TestCluster::start().await;
    let kc = tc.kubeconfig_path();
    let out = ok_stdout(&kubectl_stdin(&kc, &["apply", "-f", "-"], APP));
    assert!(
        out.contains("configmap/cfg created")
            && out.contains("deployment.apps/web created")
            && out.contains("service/web created"),
        "{out}"
    );
    // idempotent re-apply (client-side apply computes a strategic merge patch)
    let out = ok_stdout(&kubectl_stdin(&kc, &["apply", "-f", "-"], APP));
    assert!(out.contains("configmap/cfg unchanged"), "{out}");

    ok_stdout(&tc.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deploy/web",
        "--timeout=20s",
    ]));
    let d = json_of(&ok_stdout(
        &tc.kubectl(&["get", "deploy", "web", "-o", "json"]),
    ));
    assert_eq!(d["status"]["readyReplicas"], 2);

    // strategic merge: containers merge by name, env by name
    ok_stdout(&tc.kubectl(&["patch", "deploy", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26","env":[{"name":"B","value":"2"}]}]}}}}"#]));
    let d = json_of(&ok_stdout(
        &tc.kubectl(&["get", "deploy", "web", "-o", "json"]),
    ));
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.26");
    assert_eq!(c["env"].as_array().map(Vec::len), Some(2));
    assert_eq!(d["metadata"]["generation"], 2);
    // merge and json patches
    ok_stdout(&tc.kubectl(&[
        "patch",
        "cm",
        "cfg",
        "--type=merge",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ]));
    ok_stdout(&tc.kubectl(&[
        "patch",
        "cm",
        "cfg",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/c","value":"3"},{"op":"remove","path":"/data/a"}]"#,
    ]));
    let c = json_of(&ok_stdout(&tc.kubectl(&["get", "cm", "cfg", "-o", "json"])));
    assert_eq!(c["data"], serde_json::json!({"b": "2", "c": "3"}));
    // a failing json patch test op is rejected
    let out = tc.kubectl(&[
        "patch",
        "cm",
        "cfg",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/b","value":"nope"}]"#,
    ]);
    assert!(!out.status.success());
    // list with a label selector, table output
    let out = ok_stdout(&tc.kubectl(&["get", "cm,deploy", "-l", "app=web"]));
    assert!(
        out.contains("cfg") && out.contains("web") && out.contains("READY"),
        "{out}"
    );
    // The patch above rolled out a new ReplicaSet: once the rollout is done, the old one's Pods
    // are gone (the simulator scales it down when the new one is available).
    ok_stdout(&tc.kubectl(&["rollout", "status", "deploy/web", "--timeout=20s"]));
    let out = ok_stdout(&tc.kubectl(&["get", "pods", "-l", "app=web", "-o", "name"]));
    assert_eq!(out.lines().count(), 2, "{out}");
    // scale subresource
    ok_stdout(&tc.kubectl(&["scale", "deploy/web", "--replicas=3"]));
    ok_stdout(&tc.kubectl(&["rollout", "status", "deploy/web", "--timeout=20s"]));
    let d = json_of(&ok_stdout(
        &tc.kubectl(&["get", "deploy", "web", "-o", "json"]),
    ));
    assert_eq!(d["status"]["availableReplicas"], 3);
    // cascading delete
    ok_stdout(&tc.kubectl(&["delete", "deploy", "web", "--wait=true", "--timeout=20s"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ok_stdout(&tc.kubectl(&["get", "pods,rs", "-l", "app=web", "-o", "name"]));
        if out.trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "pods not collected: {out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_finalizer() {
    let tc = TestCluster::start().await;
    let kc = tc.kubeconfig_path();
    ok_stdout(&kubectl_stdin(
        &kc,
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fin\n  finalizers: [example.com/hold]\n",
    ));
    ok_stdout(&tc.kubectl(&["delete", "cm", "fin", "--wait=false"]));
    let c = json_of(&ok_stdout(&tc.kubectl(&["get", "cm", "fin", "-o", "json"])));
    assert!(c["metadata"]["deletionTimestamp"].is_string());
    ok_stdout(&tc.kubectl(&[
        "patch",
        "cm",
        "fin",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]));
    let out = tc.kubectl(&["get", "cm", "fin"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_receives_events() {
    let tc = TestCluster::start().await;
    let mut child = Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(tc.kubeconfig_path())
        .args(["get", "cm", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ok_stdout(&kubectl_stdin(
        &tc.kubeconfig_path(),
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\ndata:\n  a: b\n",
    ));
    ok_stdout(&tc.kubectl(&["delete", "configmap", "watched"]));
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !lines.iter().any(|l: &String| l.contains("DELETED")) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ADDED") && l.contains("watched")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("DELETED") && l.contains("watched")),
        "{lines:?}"
    );
    tc.shutdown().await;
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string}
              replicas: {type: integer}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_then_objects() {
    let tc = TestCluster::start().await;
    let kc = tc.kubeconfig_path();
    ok_stdout(&kubectl_stdin(&kc, &["apply", "-f", "-"], CRD));
    ok_stdout(&tc.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/gadgets.example.com",
        "--timeout=10s",
    ]));
    ok_stdout(&kubectl_stdin(
        &kc,
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  color: red\n",
    ));
    // re-apply with a change (client-side apply uses a JSON merge patch for custom kinds)
    ok_stdout(&kubectl_stdin(
        &kc,
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  color: blue\n",
    ));
    let out = ok_stdout(&tc.kubectl(&["get", "gadgets"]));
    assert!(out.contains("COLOR") && out.contains("blue"), "{out}");
    let out = ok_stdout(&tc.kubectl(&["get", "gd", "g1", "-o", "jsonpath={.spec.color}"]));
    assert_eq!(out, "blue");
    let out = tc.kubectl(&["patch", "gadget", "g1", "-p", r#"{"spec":{"color":"x"}}"#]);
    assert!(
        !out.status.success(),
        "strategic merge patch must be refused for custom kinds"
    );
    // kubectl asks for fieldValidation=Strict: unknown fields are reported, not silently dropped
    let out = kubectl_stdin(
        &kc,
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g2\nspec:\n  colour: red\n",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.colour\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // scale subresource
    ok_stdout(&tc.kubectl(&["scale", "gadget/g1", "--replicas=3"]));
    let out = ok_stdout(&tc.kubectl(&["get", "gd", "g1", "-o", "jsonpath={.spec.replicas}"]));
    assert_eq!(out, "3");
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflict() {
    let tc = TestCluster::start().await;
    let kc = tc.kubeconfig_path();
    let a = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: one\n";
    let b = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: two\n";
    ok_stdout(&kubectl_stdin(
        &kc,
        &["apply", "--server-side", "--field-manager=alice", "-f", "-"],
        a,
    ));
    let out = kubectl_stdin(
        &kc,
        &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
        b,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("conflict") && err.contains("alice"), "{err}");
    ok_stdout(&kubectl_stdin(
        &kc,
        &[
            "apply",
            "--server-side",
            "--field-manager=bob",
            "--force-conflicts",
            "-f",
            "-",
        ],
        b,
    ));
    let out = ok_stdout(&tc.kubectl(&["get", "cm", "ssa", "-o", "jsonpath={.data.k}"]));
    assert_eq!(out, "two");
    let out = ok_stdout(&tc.kubectl(&["get", "cm", "ssa", "-o", "json", "--show-managed-fields"]));
    let v = json_of(&out);
    let managers: Vec<&str> = v["metadata"]["managedFields"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, vec!["bob"], "alice lost her only field");
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_generators_send_protobuf() {
    let tc = TestCluster::start().await;
    ok_stdout(&tc.kubectl(&["create", "configmap", "gen", "--from-literal=a=b"]));
    ok_stdout(&tc.kubectl(&["create", "secret", "generic", "sec", "--from-literal=p=q"]));
    ok_stdout(&tc.kubectl(&["create", "namespace", "made"]));
    let out = ok_stdout(&tc.kubectl(&["get", "cm", "gen", "-o", "jsonpath={.data.a}"]));
    assert_eq!(out, "b");
    let out = ok_stdout(&tc.kubectl(&["get", "secret", "sec", "-o", "jsonpath={.data.p}"]));
    assert_eq!(out, "cQ==");
    ok_stdout(&tc.kubectl(&[
        "create",
        "deployment",
        "gen",
        "--image=nginx:1.25",
        "--replicas=2",
        "--port=80",
    ]));
    ok_stdout(&tc.kubectl(&["create", "service", "clusterip", "gen", "--tcp=80:8080"]));
    ok_stdout(&tc.kubectl(&[
        "create",
        "job",
        "once",
        "--image=busybox",
        "--",
        "echo",
        "hi",
    ]));
    ok_stdout(&tc.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deploy/gen",
        "--timeout=20s",
    ]));
    ok_stdout(&tc.kubectl(&[
        "wait",
        "--for=condition=Complete",
        "job/once",
        "--timeout=20s",
    ]));
    let d = json_of(&ok_stdout(
        &tc.kubectl(&["get", "deploy", "gen", "-o", "json"]),
    ));
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.25");
    assert_eq!(
        c["ports"],
        serde_json::json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    let s = json_of(&ok_stdout(
        &tc.kubectl(&["get", "svc", "gen", "-o", "json"]),
    ));
    assert_eq!(s["spec"]["ports"][0]["targetPort"], 8080);
    tc.shutdown().await;
}

/// The worked examples of "Update API Objects in Place Using kubectl patch" (kubernetes.io).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_examples_from_the_docs() {
    let tc = TestCluster::start().await;
    let kc = tc.kubeconfig_path();
    let demo = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: patch-demo
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: patch-demo-ctr
        image: nginx
      tolerations:
      - effect: NoSchedule
        key: dedicated
        value: test-team
"#;
    ok_stdout(&kubectl_stdin(&kc, &["apply", "-f", "-"], demo));
    let get = || {
        json_of(&ok_stdout(&tc.kubectl(&[
            "get",
            "deploy",
            "patch-demo",
            "-o",
            "json",
        ])))
    };
    // containers have a merge key: the new container is added
    ok_stdout(&tc.kubectl(&["patch", "deployment", "patch-demo", "--patch", "spec:\n  template:\n    spec:\n      containers:\n      - name: patch-demo-ctr-2\n        image: redis\n"]));
    let d = get();
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["patch-demo-ctr", "patch-demo-ctr-2"]);
    // tolerations have no patch strategy: the list is replaced
    ok_stdout(&tc.kubectl(&["patch", "deployment", "patch-demo", "--patch", "spec:\n  template:\n    spec:\n      tolerations:\n      - effect: NoSchedule\n        key: disktype\n        value: ssd\n"]));
    let d = get();
    assert_eq!(
        d["spec"]["template"]["spec"]["tolerations"],
        serde_json::json!([{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}])
    );
    // a JSON merge patch replaces the containers list
    ok_stdout(&tc.kubectl(&["patch", "deployment", "patch-demo", "--type", "merge", "--patch", "spec:\n  template:\n    spec:\n      containers:\n      - name: patch-demo-ctr-3\n        image: gcr.io/google-samples/hello-app:2.0\n"]));
    let d = get();
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["patch-demo-ctr-3"]);
    // strategy type Recreate alone is refused while rollingUpdate is set ...
    let out = tc.kubectl(&[
        "patch",
        "deployment",
        "patch-demo",
        "--patch",
        "spec:\n  strategy:\n    type: Recreate\n",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rollingUpdate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ... and $retainKeys clears it
    ok_stdout(&tc.kubectl(&[
        "patch",
        "deployment",
        "patch-demo",
        "--patch",
        "spec:\n  strategy:\n    $retainKeys:\n    - type\n    type: Recreate\n",
    ]));
    let d = get();
    assert_eq!(
        d["spec"]["strategy"],
        serde_json::json!({"type": "Recreate"})
    );
    tc.shutdown().await;
}

/// KubeVela's own CRDs (large structural schemas) install and serve Applications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubevela_crds_and_an_application() {
    let crds = std::path::Path::new("/work/shared/reference/kubevela-crds");
    if !crds.exists() {
        eprintln!("skipping: {} not present", crds.display());
        return;
    }
    let tc = TestCluster::start().await;
    let dir = crds.to_string_lossy().into_owned();
    ok_stdout(&tc.kubectl(&["apply", "--server-side", "-f", &dir]));
    let app = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: first-vela-app
spec:
  components:
    - name: express-server
      type: webservice
      properties:
        image: oamdev/hello-world
        ports:
         - port: 8000
           expose: true
      traits:
        - type: scaler
          properties:
            replicas: 1
  policies:
    - name: target-default
      type: topology
      properties:
        clusters: ["local"]
  workflow:
    steps:
      - name: deploy2default
        type: deploy
        properties:
          policies: ["target-default"]
"#;
    tc.apply(app);
    let v = json_of(&ok_stdout(&tc.kubectl(&[
        "get",
        "app",
        "first-vela-app",
        "-o",
        "json",
    ])));
    assert_eq!(
        v["spec"]["components"][0]["properties"]["ports"][0]["port"], 8000,
        "{v}"
    );
    assert_eq!(
        v["spec"]["workflow"]["steps"][0]["properties"]["policies"][0],
        "target-default"
    );
    ok_stdout(&tc.kubectl(&[
        "patch",
        "app",
        "first-vela-app",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"status":"running"}}"#,
    ]));
    let out = ok_stdout(&tc.kubectl(&["get", "app"]));
    assert!(
        out.contains("running") && out.contains("webservice"),
        "{out}"
    );
    tc.shutdown().await;
}
