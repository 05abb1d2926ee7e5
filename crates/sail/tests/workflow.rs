//! A workflow with an approval: deploy one component, suspend, resume with `sail workflow
//! resume`, deploy the next.

mod common;

use common::{HubProcess, ok};
use serde_json::Value;
use std::time::{Duration, Instant};

const APP: &str = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: staged
  namespace: default
spec:
  components:
    - name: staging
      type: webservice
      properties:
        image: nginx:1.27
    - name: production
      type: webservice
      properties:
        image: nginx:1.27
  workflow:
    steps:
      - name: deploy-staging
        type: apply-component
        properties:
          component: staging
      - name: approve
        type: suspend
      - name: deploy-production
        type: apply-component
        properties:
          component: production
"#;

fn status(hub: &HubProcess) -> Value {
    let out = ok(
        &hub.sail(&["status", "staged", "-o", "json"]),
        "sail status",
    );
    serde_json::from_str(&out).expect("status is JSON")
}

#[test]
fn approval_suspends_until_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    let file = dir.path().join("staged.yaml");
    std::fs::write(&file, APP).expect("write app");

    let out = ok(
        &hub.sail(&[
            "up",
            "-f",
            file.to_str().expect("path"),
            "--wait",
            "--timeout",
            "1m",
        ]),
        "sail up --wait",
    );
    assert!(out.contains("waits for approval"), "{out}");
    let st = status(&hub);
    assert_eq!(st["status"]["status"], "workflowSuspending");
    assert_eq!(st["status"]["workflow"]["steps"][0]["phase"], "succeeded");
    assert_eq!(st["status"]["workflow"]["steps"][1]["phase"], "suspending");
    assert!(
        st["status"]["workflow"]["steps"][2]["phase"] == "pending",
        "{st}"
    );
    let prod = hub.kubectl(&["get", "deploy", "production", "-n", "default"]);
    assert!(
        !prod.status.success(),
        "production must not be deployed before approval"
    );

    ok(
        &hub.sail(&["workflow", "resume", "staged"]),
        "sail workflow resume",
    );
    let start = Instant::now();
    loop {
        let st = status(&hub);
        if st["status"]["status"] == "running" {
            assert_eq!(st["status"]["workflow"]["steps"][2]["phase"], "succeeded");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not running after resume: {st}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(
        &hub.kubectl(&["get", "deploy", "production", "-n", "default"]),
        "production deployed after approval",
    );

    // Resuming a workflow that is not suspended is refused with a reason.
    let again = hub.sail(&["workflow", "resume", "staged"]);
    assert!(!again.status.success());
    assert!(common::text(&again.stderr).contains("not suspended"));
    hub.stop();
}
