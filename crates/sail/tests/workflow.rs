//! A workflow with an approval: deploy one component, suspend, resume with `sail workflow
//! resume`, deploy the next.

mod common;

use common::{HubProcess, ok};
use serde_json::Value;
use std::time::Duration;

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
    let st = hub.wait_phase("staged", "running");
    assert_eq!(st["status"]["workflow"]["steps"][2]["phase"], "succeeded");
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

/// The hub is killed (SIGKILL) while a webhook's request is in flight: its intent is recorded,
/// its outcome is not. The restarted hub sends it once more with the same Idempotency-Key, the
/// step's status says so, and nothing is sent a third time.
#[test]
fn a_crash_while_a_webhook_is_in_flight_resends_it_once_with_the_same_key() {
    use common::Receiver;
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    // The first request is answered only after two minutes: the hub dies before that.
    let hook = Receiver::start_delayed(200, Duration::from_secs(120));
    let app = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: crashy\n  namespace: default\nspec:\n  components: []\n  workflow:\n    steps:\n    - name: tell-ci\n      type: webhook\n      properties:\n        url:\n          value: {url}/deployed\n        data:\n          app: crashy\n    - name: after\n      type: print-message-in-status\n      properties:\n        message: done\n",
        url = hook.url
    );
    let file = dir.path().join("crashy.yaml");
    std::fs::write(&file, app).expect("write app");
    ok(
        &hub.sail(&["up", "-f", file.to_str().expect("path")]),
        "sail up",
    );
    let first = hook.wait_for(1, Duration::from_secs(30));
    let key = first[0].idempotency_key();
    assert!(
        key.contains("/crashy-v1/") && key.ends_with("/tell-ci/send"),
        "{key}"
    );
    // The intent is on record, visible to anyone, before any outcome.
    let record = ok(
        &hub.kubectl(&[
            "get",
            "configmap",
            "workflow-crashy-context",
            "-n",
            "default",
            "-o",
            "jsonpath={.data.send\\.tell-ci\\.send}",
        ]),
        "read the send record",
    );
    let record: Value = serde_json::from_str(&record).expect("record is JSON");
    assert_eq!(record["state"], "sending", "{record}");
    assert_eq!(record["idempotencyKey"], key.as_str());

    // Crash: no graceful shutdown, the request is still waiting for its answer.
    hub.kill();
    let hub = HubProcess::start(dir.path());
    let st = hub.wait_phase("crashy", "running");
    let step = &st["status"]["workflow"]["steps"][0];
    assert_eq!(step["phase"], "succeeded", "{step}");
    let message = step["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("resending after restart, Idempotency-Key {key}")),
        "{message}"
    );
    assert_eq!(st["status"]["workflow"]["steps"][1]["phase"], "succeeded");
    // Received at most twice, both times with the same key, and not again later.
    std::thread::sleep(Duration::from_secs(3));
    let all = hook.requests();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|r| r.idempotency_key() == key), "{all:?}");
    assert_eq!(all[0].body, all[1].body);
    // The record now holds the outcome; the logs show it.
    let logs = ok(
        &hub.sail(&["workflow", "logs", "crashy", "--step", "tell-ci"]),
        "sail workflow logs",
    );
    assert!(logs.contains("step tell-ci (webhook): succeeded"), "{logs}");
    assert!(
        logs.contains(&format!(
            "sent send POST {} (Idempotency-Key {key}): answered 200",
            hook.url
        )),
        "{logs}"
    );
    assert!(logs.contains("resent after a restart"), "{logs}");
    assert!(!logs.contains("step after"), "{logs}");
    hub.stop();
}

/// A step group whose webhook sub-step fails: `sail workflow logs` says what each step did, and
/// `sail workflow restart --step GROUP` runs again only the sub-steps that did not succeed.
#[test]
fn a_failed_step_group_is_retried_from_the_group_and_logged() {
    use common::Receiver;
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    let broken = Receiver::start(500);
    let app = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: grp\n  namespace: default\nspec:\n  components: []\n  workflow:\n    steps:\n    - name: group\n      type: step-group\n      subSteps:\n      - name: note\n        type: print-message-in-status\n        properties:\n          message: noted\n      - name: hook\n        type: webhook\n        timeout: 1m\n        properties:\n          url:\n            value: {url}/x\n          data:\n            a: b\n      - name: cleanup\n        type: print-message-in-status\n        dependsOn: [hook]\n        if: status.hook.failed\n        properties:\n          message: cleaned up after hook\n      - name: after-hook\n        type: print-message-in-status\n        dependsOn: [hook]\n        properties:\n          message: never\n",
        url = broken.url
    );
    let file = dir.path().join("grp.yaml");
    std::fs::write(&file, app).expect("write app");
    ok(
        &hub.sail(&["up", "-f", file.to_str().expect("path")]),
        "sail up",
    );
    let st = hub.wait_phase("grp", "workflowFailed");
    let subs = st["status"]["workflow"]["steps"][0]["subSteps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sub = |n: &str| {
        subs.iter()
            .find(|s| s["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no sub-step {n}: {st}"))
    };
    assert_eq!(sub("note")["phase"], "succeeded");
    assert_eq!(sub("hook")["phase"], "failed");
    assert_eq!(sub("cleanup")["phase"], "succeeded", "{st}");
    assert_eq!(sub("after-hook")["phase"], "skipped");
    let note_ran_at = sub("note")["firstExecuteTime"].clone();
    let first_start = st["status"]["workflow"]["startTime"].clone();
    assert_eq!(broken.requests().len(), 1);

    let logs = ok(&hub.sail(&["workflow", "logs", "grp"]), "logs");
    assert!(logs.contains("step group (step-group): failed"), "{logs}");
    assert!(
        logs.contains("sub-step of group hook (webhook): failed"),
        "{logs}"
    );
    assert!(logs.contains("webhook answered 500"), "{logs}");
    assert!(logs.contains("answered 500 at"), "{logs}");
    assert!(
        logs.contains("sub-step of group cleanup (print-message-in-status): succeeded"),
        "{logs}"
    );
    let unknown = hub.sail(&["workflow", "logs", "grp", "--step", "nope"]);
    let line = common::one_line_failure(&unknown, "logs of an unknown step");
    assert!(line.contains("no step \"nope\""), "{line}");
    assert!(line.contains("group/hook"), "{line}");

    // Retry the group: only what did not succeed runs again (a new run: the hook is sent again).
    let out = ok(
        &hub.sail(&["workflow", "restart", "grp", "--step", "group"]),
        "restart --step group",
    );
    assert!(out.contains("restarted from step group"), "{out}");
    broken.wait_for(2, Duration::from_secs(30));
    // The new run (its own start time) fails again, the same way.
    let st = hub.wait_status("grp", "a new run failing", Duration::from_secs(60), |v| {
        let wf = &v["status"]["workflow"];
        wf["startTime"] != first_start && wf["status"] == "failed"
    });
    let subs = st["status"]["workflow"]["steps"][0]["subSteps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let note = subs.iter().find(|s| s["name"] == "note").cloned();
    assert_eq!(
        note.map(|n| n["firstExecuteTime"].clone()),
        Some(note_ran_at),
        "a sub-step that succeeded does not run again"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(broken.requests().len(), 2);
    hub.stop();
}

/// `deploy` with `auto: false` suspends before it deploys (nothing is applied), and deploys once
/// `sail workflow resume` approves it; `auto` that is not a bool fails the step saying so.
#[test]
fn deploy_with_auto_false_waits_for_approval_then_deploys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    hub.up(
        dir.path(),
        "gated",
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: gated\n  namespace: default\nspec:\n  components:\n  - name: gated-web\n    type: webservice\n    properties:\n      image: nginx:1.27\n  workflow:\n    steps:\n    - name: deploy-web\n      type: deploy\n      properties:\n        auto: false\n    - name: done\n      type: print-message-in-status\n      properties:\n        message: deployed\n",
    );
    let st = hub.wait_phase("gated", "workflowSuspending");
    let deploy = &st["status"]["workflow"]["steps"][0];
    assert_eq!(deploy["phase"], "suspending", "{st}");
    assert!(
        deploy["message"]
            .as_str()
            .unwrap_or_default()
            .contains("waiting for approval before deploying"),
        "{st}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let web = hub.kubectl(&["get", "deploy", "gated-web", "-n", "default"]);
    assert!(!web.status.success(), "deployed before approval");

    ok(&hub.sail(&["workflow", "resume", "gated"]), "resume");
    let st = hub.wait_phase("gated", "running");
    assert_eq!(
        st["status"]["workflow"]["steps"][0]["phase"], "succeeded",
        "{st}"
    );
    assert_eq!(
        st["status"]["workflow"]["steps"][1]["message"], "deployed",
        "{st}"
    );
    ok(
        &hub.kubectl(&["get", "deploy", "gated-web", "-n", "default"]),
        "deployed after approval",
    );

    hub.up(
        dir.path(),
        "bad-auto",
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: bad-auto\n  namespace: default\nspec:\n  components:\n  - name: bad-web\n    type: webservice\n    properties:\n      image: nginx:1.27\n  workflow:\n    steps:\n    - name: deploy-web\n      type: deploy\n      properties:\n        auto: \"no\"\n",
    );
    let st = hub.wait_phase("bad-auto", "workflowFailed");
    let msg = st["status"]["workflow"]["steps"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("properties.auto must be true or false"),
        "{msg}"
    );
    hub.stop();
}
