//! The walking skeleton, end to end: the real `sail` binary runs the embedded hub, applies the
//! quick start example, waits for it to be healthy; kubectl, an independent client, checks what
//! was created; the hub restarts and still has the application; delete removes everything.

mod common;

use common::{HubProcess, ok, one_line_failure, repo_root};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

#[test]
fn quickstart_app_delivered_survives_restart_and_is_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    let app = repo_root().join("examples/quickstart/app.yaml");
    let app = app.to_str().expect("utf-8 path");

    let out = ok(
        &hub.sail(&["up", "-f", app, "--wait", "--timeout", "2m"]),
        "sail up --wait",
    );
    assert!(
        out.contains("step hello-web"),
        "the workflow's steps are shown:\n{out}"
    );
    assert!(out.contains("is running"), "{out}");

    // kubectl, an independent client, sees what the definitions rendered.
    let deploy = json(&ok(
        &hub.kubectl(&["get", "deploy", "hello-web", "-n", "default", "-o", "json"]),
        "kubectl get deploy",
    ));
    assert_eq!(deploy["spec"]["replicas"], 2, "scaler trait");
    assert_eq!(
        deploy["metadata"]["labels"]["team"], "platform",
        "labels trait"
    );
    assert_eq!(
        deploy["spec"]["template"]["metadata"]["labels"]["tier"], "frontend",
        "labels trait on pods"
    );
    assert_eq!(deploy["metadata"]["labels"]["app.oam.dev/name"], "hello");
    assert_eq!(
        deploy["metadata"]["labels"]["app.oam.dev/component"],
        "hello-web"
    );
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(
        deploy["status"]["readyReplicas"], 2,
        "the simulator made the pods ready"
    );
    let svc = json(&ok(
        &hub.kubectl(&["get", "svc", "hello-web", "-n", "default", "-o", "json"]),
        "kubectl get svc",
    ));
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(
        svc["spec"]["selector"]["app.oam.dev/component"],
        "hello-web"
    );

    let status = json(&ok(
        &hub.sail(&["status", "hello", "-o", "json"]),
        "sail status",
    ));
    assert_eq!(status["status"]["status"], "running");
    assert_eq!(status["status"]["services"][0]["healthy"], true);
    assert_eq!(status["status"]["services"][0]["message"], "Ready:2/2");
    let generation = status["metadata"]["generation"].clone();
    let tree = ok(
        &hub.sail(&["status", "hello", "--tree"]),
        "sail status --tree",
    );
    assert!(
        tree.contains("Deployment default/hello-web  2/2 ready"),
        "{tree}"
    );
    assert_eq!(tree.matches("Pod hello-web-").count(), 2, "{tree}");
    assert!(tree.contains("Service default/hello-web"), "{tree}");
    let revs = ok(
        &hub.sail(&["revision", "list", "hello"]),
        "sail revision list",
    );
    assert!(
        revs.contains("hello-v1") && revs.contains("true"),
        "revision 1 succeeded:\n{revs}"
    );
    let rev = ok(
        &hub.sail(&["revision", "get", "hello-v1"]),
        "sail revision get",
    );
    assert!(
        rev.contains("image: nginx:1.27") && rev.contains("component/webservice"),
        "{rev}"
    );

    // A restart finds everything again.
    hub.stop();
    let hub = HubProcess::start(dir.path());
    let status = json(&ok(
        &hub.sail(&["status", "hello", "-o", "json"]),
        "sail status after restart",
    ));
    assert_eq!(status["spec"]["components"][0]["name"], "hello-web");
    let ls = ok(&hub.sail(&["ls"]), "sail ls");
    assert!(ls.contains("hello"), "{ls}");

    // Idempotent: applying the same file again changes nothing and is running at once.
    ok(
        &hub.sail(&["up", "-f", app, "--wait", "--timeout", "1m"]),
        "sail up again",
    );
    let status = json(&ok(
        &hub.sail(&["status", "hello", "-o", "json"]),
        "sail status",
    ));
    assert_eq!(status["metadata"]["generation"], generation);
    assert_eq!(status["status"]["latestRevision"]["revision"], 1);

    // Delete removes every resource the application created.
    ok(
        &hub.sail(&["delete", "hello", "--wait"]),
        "sail delete --wait",
    );
    for kind in ["deploy/hello-web", "svc/hello-web", "application/hello"] {
        let out = hub.kubectl(&["get", kind, "-n", "default"]);
        assert!(!out.status.success(), "{kind} still exists after delete");
        assert!(
            common::text(&out.stderr).contains("NotFound"),
            "{}",
            common::text(&out.stderr)
        );
    }
    hub.stop();
}

#[test]
fn bad_input_is_one_clear_line_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());

    let malformed = dir.path().join("malformed.yaml");
    std::fs::write(
        &malformed,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: [name: x\n",
    )
    .expect("write");
    let line = one_line_failure(
        &hub.sail(&["up", "-f", malformed.to_str().expect("path")]),
        "malformed yaml",
    );
    assert!(line.contains("malformed.yaml"), "names the file: {line}");

    let unknown = dir.path().join("unknown.yaml");
    std::fs::write(
        &unknown,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: typo\nspec:\n  components:\n    - name: web\n      type: webservce\n      properties:\n        image: nginx\n",
    )
    .expect("write");
    let line = one_line_failure(
        &hub.sail(&["up", "-f", unknown.to_str().expect("path")]),
        "unknown type",
    );
    assert!(line.contains("webservce"), "names the type: {line}");
    assert!(
        line.contains("did you mean \"webservice\""),
        "suggests the closest: {line}"
    );

    let wrong_param = dir.path().join("wrong-param.yaml");
    std::fs::write(
        &wrong_param,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: badport\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: nginx\n        ports:\n          - port: \"eighty\"\n",
    )
    .expect("write");
    let line = one_line_failure(
        &hub.sail(&["up", "-f", wrong_param.to_str().expect("path")]),
        "wrong parameter type",
    );
    assert!(line.contains("port"), "names the parameter: {line}");

    // Nothing was written on the hub.
    let apps = ok(
        &hub.kubectl(&["get", "applications", "-A", "-o", "json"]),
        "kubectl get applications",
    );
    assert_eq!(
        json(&apps)["items"].as_array().map(Vec::len),
        Some(0),
        "{apps}"
    );
    hub.stop();

    // No hub running: the kubeconfig points at a closed port.
    let line = one_line_failure(
        &std::process::Command::new(common::SAIL)
            .args(["ls", "--kubeconfig"])
            .arg(dir.path().join("kubeconfig"))
            .output()
            .expect("run sail"),
        "no hub",
    );
    assert!(line.contains("cannot reach the hub"), "{line}");
    let line = one_line_failure(
        &std::process::Command::new(common::SAIL)
            .args(["ls", "--kubeconfig", "/nonexistent/kubeconfig"])
            .output()
            .expect("run sail"),
        "no kubeconfig",
    );
    assert!(line.contains("/nonexistent/kubeconfig"), "{line}");
}

/// `sail quickstart`, the README's first command: twice (idempotent), then stop the hub it
/// started in the background.
#[test]
fn quickstart_command_is_idempotent() {
    let home = tempfile::tempdir().expect("tempdir");
    // Whatever happens below, the background hub does not outlive the test.
    struct StopHub<'a>(&'a std::path::Path);
    impl Drop for StopHub<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new(common::SAIL)
                .args(["server", "--stop"])
                .env("SAIL_HOME", self.0)
                .output();
        }
    }
    let _guard = StopHub(home.path());
    let run = || {
        std::process::Command::new(common::SAIL)
            .arg("quickstart")
            .env("SAIL_HOME", home.path())
            .env_remove("KUBECONFIG")
            .output()
            .expect("run sail quickstart")
    };
    let first = ok(&run(), "sail quickstart");
    assert!(first.contains("started the embedded hub"), "{first}");
    assert!(
        first.contains("application default/hello is running"),
        "{first}"
    );
    assert!(
        first.contains("get deploy,svc -A"),
        "prints the kubectl line: {first}"
    );
    let second = ok(&run(), "sail quickstart again");
    assert!(second.contains("using the hub already running"), "{second}");
    assert!(second.contains("Ready:2/2"), "{second}");
    let kubeconfig = home.path().join("kubeconfig");
    let deploy = ok(
        &std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "get",
                "deploy",
                "hello-web",
                "-n",
                "default",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .output()
            .expect("kubectl"),
        "kubectl get deploy",
    );
    assert_eq!(deploy, "2");
    let stop = std::process::Command::new(common::SAIL)
        .args(["server", "--stop"])
        .env("SAIL_HOME", home.path())
        .output()
        .expect("run sail server --stop");
    ok(&stop, "sail server --stop");
}
