//! Workflow steps defined in CUE (WorkflowStepDefinitions), run by the controller with its
//! providers: webhooks and notifications to a server the test runs, objects applied to a
//! member cluster, messages, failures, and a step definition applied while the hub runs.

mod common;

use common::{HubProcess, Receiver, ok, start_members, step};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn cue_steps_call_webhooks_apply_to_members_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["edge"]).await;
    hub.join(&members[0], "edge", "");
    let hook = Receiver::start(200);
    let slack = Receiver::start(200);

    let app = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: release
  namespace: default
spec:
  components:
  - name: web
    type: webservice
    properties:
      image: nginx
  workflow:
    steps:
    - name: deploy
      type: deploy
    - name: config-on-edge
      type: apply-object
      properties:
        cluster: edge
        value:
          apiVersion: v1
          kind: ConfigMap
          metadata:
            name: release-info
            namespace: default
          data:
            version: "1.0"
    - name: say
      type: print-message-in-status
      properties:
        message: deployed to the hub and edge
    - name: tell-ci
      type: webhook
      properties:
        url:
          value: {hook}/deployed
        data:
          app: release
          version: "1.0"
    - name: tell-team
      type: notification
      properties:
        slack:
          url:
            value: {slack}/services/T000
          message:
            text: release 1.0 is out
"#,
        hook = hook.url,
        slack = slack.url
    );
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, app).unwrap();
    ok(&hub.sail(&["up", "-f", file.to_str().unwrap()]), "sail up");
    let status = hub.wait_phase("release", "running");

    let got = hook.wait_for(1, Duration::from_secs(5));
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/deployed");
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"app": "release", "version": "1.0"})
    );
    assert!(
        got[0]
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json")
    );
    let note = slack.wait_for(1, Duration::from_secs(5));
    assert_eq!(note[0].path, "/services/T000");
    assert!(
        note[0].body.contains("release 1.0 is out"),
        "{}",
        note[0].body
    );

    let cm = members[0].kubectl(&[
        "get",
        "configmap",
        "release-info",
        "-n",
        "default",
        "-o",
        "jsonpath={.data.version}",
    ]);
    assert_eq!(testkit::ok_stdout(&cm), "1.0");
    let say = step(&status, "say");
    assert_eq!(say["phase"], "succeeded");
    assert!(
        say["message"]
            .as_str()
            .unwrap_or("")
            .contains("deployed to the hub and edge"),
        "{say}"
    );
    // Step and workflow durations, on the hub's /metrics for callers with its token.
    let metrics = ok(&hub.kubectl(&["get", "--raw", "/metrics"]), "GET /metrics");
    assert!(
        metrics.contains(
            "sailplane_workflow_step_duration_seconds_count{type=\"webhook\",phase=\"succeeded\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("sailplane_workflow_duration_seconds_count{phase=\"succeeded\"} 1"),
        "{metrics}"
    );

    // Finished steps do not run again at the next reconcile: still one call each.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook.requests().len(), 1);
    assert_eq!(slack.requests().len(), 1);
    hub.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_webhook_and_a_custom_step_applied_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let broken = Receiver::start(500);

    // A step type nobody defined yet: the workflow fails naming it.
    let custom_app = dir.path().join("custom.yaml");
    std::fs::write(
        &custom_app,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: gated\n  namespace: default\nspec:\n  components: []\n  workflow:\n    steps:\n    - name: gate\n      type: wait-for-config\n      properties:\n        name: go-live\n",
    )
    .unwrap();
    ok(
        &hub.sail(&["up", "-f", custom_app.to_str().unwrap()]),
        "up gated",
    );
    let st = hub.wait_phase("gated", "workflowFailed");
    let gate = step(&st, "gate");
    assert!(
        gate["message"]
            .as_str()
            .unwrap_or("")
            .contains("no WorkflowStepDefinition \"wait-for-config\""),
        "{gate}"
    );

    // Define it at run time: wait until a ConfigMap says go.
    let def = dir.path().join("wait-for-config.cue");
    std::fs::write(
        &def,
        r#"import ("vela/kube", "vela/builtin")

"wait-for-config": {
	type: "workflow-step"
	description: "Wait until a ConfigMap's data.go is \"true\""
}
template: {
	read: kube.#Read & {
		$params: value: {
			apiVersion: "v1"
			kind:       "ConfigMap"
			metadata: {name: parameter.name, namespace: context.namespace}
		}
	}
	wait: builtin.#ConditionalWait & {
		$params: {
			continue: read.$returns.value.data.go == "true"
			message:  "waiting for ConfigMap \(parameter.name) to say go"
		}
	}
	parameter: name: string
}
"#,
    )
    .unwrap();
    ok(
        &hub.sail(&["def", "apply", def.to_str().unwrap()]),
        "def apply",
    );
    ok(&hub.sail(&["workflow", "restart", "gated"]), "restart");
    testkit::ok_stdout(&testkit::kubectl_stdin(
        &hub.kubeconfig(),
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: go-live\n  namespace: default\ndata:\n  go: \"false\"\n",
    ));
    hub.wait_status("gated", "the wait message", Duration::from_secs(30), |v| {
        v["status"]["workflow"]["steps"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("waiting for ConfigMap go-live to say go"))
    });
    testkit::ok_stdout(&hub.kubectl(&[
        "patch",
        "configmap",
        "go-live",
        "-n",
        "default",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"go":"true"}}"#,
    ]));
    hub.wait_phase("gated", "running");

    // A webhook that answers 500 fails its step with the status code.
    let failing = dir.path().join("failing.yaml");
    std::fs::write(
        &failing,
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: noisy\n  namespace: default\nspec:\n  components: []\n  workflow:\n    steps:\n    - name: hook\n      type: webhook\n      properties:\n        url:\n          value: {}/x\n        data:\n          a: b\n",
            broken.url
        ),
    )
    .unwrap();
    ok(
        &hub.sail(&["up", "-f", failing.to_str().unwrap()]),
        "up noisy",
    );
    let st = hub.wait_phase("noisy", "workflowFailed");
    let hook = step(&st, "hook");
    assert!(
        hook["message"]
            .as_str()
            .unwrap_or("")
            .contains("webhook answered 500"),
        "{hook}"
    );
    hub.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_inputs_conditions_and_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let api = Receiver::start(200);

    let never = dir.path().join("never.cue");
    std::fs::write(
        &never,
        "import \"vela/builtin\"\n\n\"never\": {\n\ttype: \"workflow-step\"\n}\ntemplate: {\n\twait: builtin.#ConditionalWait & {$params: {continue: false, message: \"the sky is not falling\"}}\n}\n",
    )
    .unwrap();
    ok(
        &hub.sail(&["def", "apply", never.to_str().unwrap()]),
        "def apply never",
    );

    let app = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: flow
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: ask
      type: request
      properties:
        url: {url}/status
      outputs:
      - name: verdict
        valueFrom: '"answer was \(response.ok)"'
    - name: tell
      type: print-message-in-status
      inputs:
      - from: verdict
        parameterKey: message
    - name: only-if-yes
      type: print-message-in-status
      if: inputs.verdict == "answer was true"
      properties:
        message: yes indeed
    - name: only-if-no
      type: print-message-in-status
      if: inputs.verdict == "answer was false"
      properties:
        message: never shown
    - name: hang
      type: never
      timeout: 2s
    - name: after-failure
      type: print-message-in-status
      if: status.hang.phase == "failed"
      properties:
        message: hang failed, cleaning up
"#,
        url = api.url
    );
    let file = dir.path().join("flow.yaml");
    std::fs::write(&file, app).unwrap();
    ok(&hub.sail(&["up", "-f", file.to_str().unwrap()]), "up flow");
    let st = hub.wait_phase("flow", "workflowFailed");
    let msg = |name: &str| {
        step(&st, name)["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let phase = |name: &str| step(&st, name)["phase"].as_str().unwrap_or("").to_string();
    assert_eq!(phase("ask"), "succeeded");
    assert_eq!(msg("tell"), "answer was true");
    assert_eq!(phase("only-if-yes"), "succeeded");
    assert_eq!(phase("only-if-no"), "skipped");
    assert_eq!(phase("hang"), "failed");
    assert!(
        msg("hang").contains("timed out after 2s"),
        "{}",
        msg("hang")
    );
    assert!(
        msg("hang").contains("the sky is not falling"),
        "{}",
        msg("hang")
    );
    assert_eq!(phase("after-failure"), "succeeded");
    assert_eq!(api.requests().len(), 1, "the request step ran once");
    // The outputs live in the workflow's context ConfigMap, owned by the application.
    let vars = ok(
        &hub.kubectl(&[
            "get",
            "configmap",
            "workflow-flow-context",
            "-n",
            "default",
            "-o",
            "jsonpath={.data.vars}",
        ]),
        "read the context",
    );
    assert_eq!(vars, r#"{"verdict":"answer was true"}"#);
    hub.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_restart_mid_workflow_sends_each_webhook_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let hooks = Receiver::start(200);
    let app = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: restartable\n  namespace: default\nspec:\n  components: []\n  workflow:\n    steps:\n    - name: before\n      type: webhook\n      properties:\n        url:\n          value: {url}/before\n        data:\n          at: before\n    - name: approve\n      type: suspend\n    - name: after\n      type: webhook\n      properties:\n        url:\n          value: {url}/after\n        data:\n          at: after\n",
        url = hooks.url
    );
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, app).unwrap();
    ok(&hub.sail(&["up", "-f", file.to_str().unwrap()]), "up");
    hub.wait_phase("restartable", "workflowSuspending");
    let first = hooks.wait_for(1, Duration::from_secs(5));
    let key = first[0].idempotency_key();
    assert!(
        key.contains("/restartable-v1/") && key.ends_with("/before/send"),
        "{key}"
    );

    // The hub (API server and controller) stops and starts again on the same data.
    hub.stop();
    let hub = HubProcess::start(dir.path());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        hooks.requests().len(),
        1,
        "nothing is sent again after the restart"
    );
    ok(&hub.sail(&["workflow", "resume", "restartable"]), "resume");
    hub.wait_phase("restartable", "running");
    let all = hooks.wait_for(2, Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    let all_now = hooks.requests();
    assert_eq!(all_now.len(), 2, "{all_now:?}");
    assert_eq!(all[0].path, "/before");
    assert_eq!(all[1].path, "/after");
    hub.stop();
}

#[test]
fn a_step_group_runs_its_sub_steps_and_waits_for_approval_inside() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let file = dir.path().join("group.yaml");
    std::fs::write(
        &file,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: grouped\n  namespace: default\nspec:\n  components:\n  - name: web\n    type: webservice\n    properties:\n      image: nginx\n  workflow:\n    steps:\n    - name: prepare\n      type: step-group\n      subSteps:\n      - name: deploy\n        type: deploy\n      - name: note\n        type: print-message-in-status\n        properties:\n          message: prepared\n      - name: approve\n        type: suspend\n        dependsOn: [deploy, note]\n    - name: done\n      type: print-message-in-status\n      properties:\n        message: all done\n",
    )
    .unwrap();
    ok(
        &hub.sail(&["up", "-f", file.to_str().unwrap()]),
        "up grouped",
    );
    let st = hub.wait_phase("grouped", "workflowSuspending");
    let group = step(&st, "prepare");
    let subs = group["subSteps"].as_array().cloned().unwrap_or_default();
    let phase_of = |n: &str| {
        subs.iter()
            .find(|s| s["name"] == n)
            .map(|s| s["phase"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(phase_of("deploy"), "succeeded", "{group}");
    assert_eq!(phase_of("note"), "succeeded", "{group}");
    assert_eq!(phase_of("approve"), "suspending", "{group}");
    ok(&hub.sail(&["workflow", "resume", "grouped"]), "resume");
    let st = hub.wait_phase("grouped", "running");
    assert_eq!(step(&st, "prepare")["phase"], "succeeded");
    assert_eq!(step(&st, "done")["message"], "all done");
    hub.stop();
}

#[test]
fn a_webhook_nobody_answers_is_retried_with_backoff_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    // A port with nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let file = dir.path().join("app.yaml");
    std::fs::write(
        &file,
        format!("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: lonely\n  namespace: default\nspec:\n  components: []\n  workflow:\n    steps:\n    - name: hook\n      type: webhook\n      properties:\n        url:\n          value: {url}/x\n        data:\n          a: b\n"),
    )
    .unwrap();
    ok(&hub.sail(&["up", "-f", file.to_str().unwrap()]), "up");
    let v = hub.wait_status("lonely", "the first retry", Duration::from_secs(30), |v| {
        v["status"]["workflow"]["steps"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("retry 1/10 in 5s:"))
    });
    let first = &v["status"]["workflow"]["steps"][0];
    assert!(
        first["message"]
            .as_str()
            .is_some_and(|m| m.contains("send (http.do)")),
        "{first}"
    );
    assert_eq!(first["phase"], "running");
    hub.stop();
}
