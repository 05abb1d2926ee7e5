//! The providers of CUE workflow steps, end to end through the real `sail` binary: the built-in
//! step definitions that use them and KubeVela-style templates that import `vela/*` packages.

mod common;

use base64::Engine;
use common::{HubProcess, ok, start_members, step, step_opt};

fn message(status: &serde_json::Value, name: &str) -> String {
    step(status, name)["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A Secret on the hub as JSON, or None when it does not exist.
fn secret(hub: &HubProcess, ns: &str, name: &str) -> Option<serde_json::Value> {
    let out = hub.kubectl(&["get", "secret", name, "-n", ns, "-o", "json"]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn decode(v: &serde_json::Value) -> String {
    let b = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64");
    String::from_utf8(b).expect("utf-8")
}

#[test]
fn config_steps_create_read_list_and_delete_kubevela_config_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());

    // A config template, as `vela config-template apply` stores it.
    let template = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: config-template-endpoint
  namespace: vela-system
  labels:
    config.oam.dev/catalog: velacore-config
    config.oam.dev/scope: system
  annotations:
    config.oam.dev/sensitive: "false"
data:
  template: |
    metadata: {name: "endpoint", scope: "system"}
    template: {
      output: {
        apiVersion: "v1"
        kind:       "Secret"
        type:       "sailplane.dev/endpoint"
        stringData: url: "\(parameter.scheme)://\(parameter.host)"
      }
      parameter: {
        host:   string
        scheme: *"https" | "http"
      }
    }
"#;
    testkit::ok_stdout(&testkit::kubectl_stdin(
        &hub.kubeconfig(),
        &["apply", "-f", "-"],
        template,
    ));

    hub.up(dir.path(),
        "configs",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: configs
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: write
      type: create-config
      properties:
        name: db
        config:
          user: app
          port: 5432
          tls: true
    - name: write-endpoint
      type: create-config
      properties:
        name: api
        template: endpoint
        config:
          host: api.example.com
    - name: write-endpoint-2
      type: create-config
      properties:
        name: web
        template: endpoint
        config:
          host: www.example.com
          scheme: http
    - name: read
      type: read-config
      properties:
        name: db
      outputs:
      - name: user
        valueFrom: '"user \(output.$returns.config.user) on port \(output.$returns.config.port)"'
    - name: tell
      type: print-message-in-status
      inputs:
      - from: user
        parameterKey: message
    - name: list
      type: list-config
      properties:
        template: endpoint
      outputs:
      - name: names
        valueFrom: '"\(output.$returns.configs[0].name)=\(output.$returns.configs[0].config.host),\(output.$returns.configs[1].name)=\(output.$returns.configs[1].config.host)"'
    - name: tell-list
      type: print-message-in-status
      inputs:
      - from: names
        parameterKey: message
    - name: drop
      type: delete-config
      properties:
        name: web
"#,
    );
    let st = hub.wait_phase("configs", "running");
    assert_eq!(message(&st, "tell"), "user app on port 5432");
    assert_eq!(
        message(&st, "tell-list"),
        "api=api.example.com,web=www.example.com"
    );

    // The Secrets are KubeVela's config format.
    let db = secret(&hub, "default", "db").expect("config db is a Secret");
    assert_eq!(
        db["metadata"]["labels"]["config.oam.dev/catalog"],
        "velacore-config"
    );
    assert_eq!(db["metadata"]["labels"]["config.oam.dev/type"], "");
    let props: serde_json::Value =
        serde_json::from_str(&decode(&db["data"]["input-properties"])).unwrap();
    assert_eq!(
        props,
        serde_json::json!({"user": "app", "port": 5432, "tls": true})
    );
    let api = secret(&hub, "default", "api").expect("config api is a Secret");
    assert_eq!(api["metadata"]["labels"]["config.oam.dev/type"], "endpoint");
    assert_eq!(api["metadata"]["labels"]["config.oam.dev/scope"], "system");
    assert_eq!(
        api["metadata"]["annotations"]["config.oam.dev/template-namespace"],
        "vela-system"
    );
    assert_eq!(api["type"], "sailplane.dev/endpoint");
    assert_eq!(decode(&api["data"]["url"]), "https://api.example.com");
    // delete-config removed web, and only it.
    assert!(secret(&hub, "default", "web").is_none());
    assert!(secret(&hub, "default", "db").is_some());

    // Reading a config that does not exist fails the step, naming it; a config cannot change
    // its template.
    hub.up(
        dir.path(),
        "missing",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: missing
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: retemplate
      type: create-config
      properties:
        name: db
        template: endpoint
        config:
          host: db.example.com
"#,
    );
    let st = hub.wait_phase("missing", "workflowFailed");
    let m = message(&st, "retemplate");
    assert!(
        m.contains("config.create default/db") && m.contains("cannot change to \"endpoint\""),
        "{m}"
    );
    hub.stop();
}

#[test]
fn time_and_util_operations_in_a_step_defined_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let def = dir.path().join("clock.cue");
    std::fs::write(
        &def,
        r#"import ("vela/time", "vela/util", "vela/op", "vela/builtin")

"clock": {
	type: "workflow-step"
}
template: {
	ts: time.#DateToTimestamp & {$params: date: parameter.date}
	day: time.#TimestampToDate & {$params: {timestamp: ts.$returns.timestamp + 86400, layout: "Jan 2, 2006 15:04 MST"}}
	legacy: op.#DateToTimestamp & {date: "2021-11-07", layout: "2006-01-02"}
	patched: util.#PatchK8sObject & {$params: {
		value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "a", data: x: "1"}
		patch: data: y: "2"
	}}
	say: builtin.#Message & {$params: message: "\(ts.$returns.timestamp) \(day.$returns.date) \(legacy.timestamp) \(patched.$returns.result.data.x)\(patched.$returns.result.data.y)"}
	parameter: date: string
}
"#,
    )
    .unwrap();
    ok(
        &hub.sail(&["def", "apply", def.to_str().unwrap()]),
        "def apply clock",
    );
    hub.up(
        dir.path(),
        "clock",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: clock
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: tick
      type: clock
      properties:
        date: "2021-11-07T09:47:51+08:00"
    - name: bad
      type: clock
      properties:
        date: yesterday
"#,
    );
    let st = hub.wait_phase("clock", "workflowFailed");
    assert_eq!(
        message(&st, "tick"),
        "1636249671 Nov 8, 2021 01:47 UTC 1636243200 12"
    );
    // Input that no retry can fix fails the step at once, naming the operation.
    let m = message(&st, "bad");
    assert!(
        m.contains("ts (time.timestamp)") && m.contains("\"yesterday\" is not an RFC 3339 date"),
        "{m}"
    );
    assert_eq!(step(&st, "bad")["phase"], "failed");
    hub.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn multicluster_and_oam_operations_deploy_through_the_controller() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["edge"]).await;
    hub.join(&members[0], "edge", "");
    let def = dir.path().join("ship.cue");
    std::fs::write(
        &def,
        r#"import ("vela/multicluster", "vela/oam", "vela/op", "vela/builtin")

"ship": {
	type: "workflow-step"
}
template: {
	clusters: multicluster.#ListClusters
	load: oam.#LoadComponets
	policies: oam.#LoadPolicies
	apply: oam.#ApplyComponent & {$params: {value: load.$returns.value.settings, cluster: "edge", namespace: "side"}}
	rendered: oam.#RenderComponent & {$params: value: load.$returns.value.settings}
	placements: multicluster.#GetPlacementsFromTopologyPolicies & {$params: policies: ["to-edge"]}
	deploy: multicluster.#Deploy & {$params: policies: ["to-edge"]}
	legacy: op.#Load
	hub: op.#ApplyComponent & {value: legacy.value.settings}
	say: builtin.#Message & {$params: message: "clusters \(clusters.$returns.outputs.clusters[0]); policy \(policies.$returns.value["to-edge"].type); placed \(placements.$returns.placements[0].cluster)/\(placements.$returns.placements[0].namespace); applied \(apply.$returns.output.kind) \(apply.$returns.output.metadata.name), aux \(rendered.$returns.outputs["objects-1"].metadata.name); hub \(hub.output.kind)"}
}
"#,
    )
    .unwrap();
    ok(
        &hub.sail(&["def", "apply", def.to_str().unwrap()]),
        "def apply ship",
    );
    hub.up(
        dir.path(),
        "ship",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: ship
  namespace: default
spec:
  components:
  - name: settings
    type: k8s-objects
    properties:
      objects:
      - apiVersion: v1
        kind: ConfigMap
        metadata:
          name: ship-settings
        data:
          mode: fast
      - apiVersion: v1
        kind: ConfigMap
        metadata:
          name: ship-extra
        data:
          extra: "yes"
  policies:
  - name: to-edge
    type: topology
    properties:
      clusters: ["edge"]
      namespace: prod
  workflow:
    steps:
    - name: go
      type: ship
"#,
    );
    let st = hub.wait_phase("ship", "running");
    assert_eq!(
        message(&st, "go"),
        "clusters edge; policy topology; placed edge/prod; applied ConfigMap ship-settings, aux ship-extra; hub ConfigMap"
    );
    // oam.#ApplyComponent put it on edge in `side`, multicluster.#Deploy in `prod` (the
    // policy's namespace), op.#ApplyComponent on the hub.
    for ns in ["side", "prod"] {
        let got = members[0].kubectl(&[
            "get",
            "configmap",
            "ship-settings",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.mode}",
        ]);
        assert_eq!(testkit::ok_stdout(&got), "fast", "edge/{ns}");
    }
    let got = hub.kubectl(&[
        "get",
        "configmap",
        "ship-extra",
        "-n",
        "default",
        "-o",
        "jsonpath={.data.extra}",
    ]);
    assert_eq!(testkit::ok_stdout(&got), "yes");
    // Everything they applied is in the application's ResourceTracker, so it is collected.
    let rt = ok(
        &hub.kubectl(&["get", "resourcetrackers.core.oam.dev", "-o", "json"]),
        "get resourcetrackers",
    );
    for want in ["\"side\"", "\"prod\"", "ship-extra"] {
        assert!(rt.contains(want), "{want} not tracked: {rt}");
    }
    hub.stop();
}

#[test]
fn query_operations_and_collect_service_endpoints_read_what_the_app_deployed() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let def = dir.path().join("inventory.cue");
    std::fs::write(
        &def,
        r#"import ("vela/query", "vela/ql", "vela/builtin")

"inventory": {
	type: "workflow-step"
}
template: {
	resources: query.#ListResourcesInApp & {$params: app: {name: context.name, namespace: context.namespace}}
	services: query.#ListResourcesInApp & {$params: app: {name: context.name, namespace: context.namespace, filter: kind: "Service"}}
	pods: query.#CollectPods & {$params: app: {name: context.name, namespace: context.namespace}}
	tree: query.#GetApplicationTree & {$params: app: {name: context.name, namespace: context.namespace}}
	legacy: ql.#CollectServiceEndpoints & {app: {name: context.name, namespace: context.namespace}}
	ready: builtin.#ConditionalWait & {$params: continue: len(pods.$returns.list) > 0}
	say: builtin.#Message & {$params: message: "\(len(resources.$returns.list)) resources, service \(services.$returns.list[0].object.metadata.name), pod of \(pods.$returns.list[0].component), tracked \(tree.$returns.list[0].kind)/\(tree.$returns.list[1].kind), legacy \(legacy.list[0].endpoint.host)"}
}
"#,
    )
    .unwrap();
    ok(
        &hub.sail(&["def", "apply", def.to_str().unwrap()]),
        "def apply inventory",
    );
    hub.up(
        dir.path(),
        "shop",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  namespace: default
spec:
  components:
  - name: web
    type: webservice
    properties:
      image: nginx
      ports:
      - port: 80
        expose: true
  workflow:
    steps:
    - name: deploy
      type: deploy
    - name: endpoints
      type: collect-service-endpoints
      outputs:
      - name: url
        valueFrom: value.url
    - name: show
      type: print-message-in-status
      inputs:
      - from: url
        parameterKey: message
    - name: count
      type: inventory
"#,
    );
    let st = hub.wait_phase("shop", "running");
    assert_eq!(message(&st, "show"), "http://web.default:80");
    assert_eq!(
        message(&st, "count"),
        "2 resources, service web, pod of web, tracked Deployment/Service, legacy web.default"
    );
    hub.stop();
}

/// Prometheus' answer to an instant query that gives one sample.
fn prometheus(value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000.0,"{value}"]}}]}}}}"#
    )
}

#[test]
fn check_metrics_passes_after_its_duration_and_fails_after_its_fail_duration() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let good = common::Receiver::start_with(200, &prometheus("0.97"));
    let bad = common::Receiver::start_with(200, &prometheus("0.5"));
    hub.up(
        dir.path(),
        "canary",
        &format!(
            r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: canary
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: healthy-enough
      type: check-metrics
      properties:
        query: sum(rate(http_requests_total{{code="200"}}[5m]))/sum(rate(http_requests_total[5m]))
        metricEndpoint: {good}
        condition: ">=0.95"
        duration: 2s
    - name: not-healthy
      type: check-metrics
      properties:
        query: up
        metricEndpoint: {bad}
        condition: ">=0.95"
        failDuration: 1s
"#,
            good = good.url,
            bad = bad.url
        ),
    );
    let st = hub.wait_phase("canary", "workflowFailed");
    let ok_step = step(&st, "healthy-enough");
    assert_eq!(ok_step["phase"], "succeeded", "{ok_step}");
    let failed = step(&st, "not-healthy");
    assert_eq!(failed["phase"], "failed", "{failed}");
    let m = message(&st, "not-healthy");
    assert!(
        m.contains("the condition >=0.95 did not hold") && m.contains("the query gave 0.5"),
        "{m}"
    );
    // The query went to Prometheus' HTTP API, encoded, more than once (the clock ran).
    let asked = good.requests();
    assert!(asked.len() >= 2, "{asked:?}");
    assert!(
        asked[0].path.starts_with(
            "/api/v1/query?query=sum%28rate%28http_requests_total%7Bcode%3D%22200%22%7D"
        ),
        "{}",
        asked[0].path
    );
    hub.stop();
}

#[test]
fn notification_and_send_email_deliver_over_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let smtp = common::SmtpReceiver::start();
    // The password comes from a Secret: it is sent to the server, never shown.
    testkit::ok_stdout(&hub.kubectl(&[
        "create",
        "secret",
        "generic",
        "smtp",
        "-n",
        "default",
        "--from-literal=password=s3cret-pw",
    ]));
    hub.up(
        dir.path(),
        "mailer",
        &format!(
            r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: mailer
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: tell
      type: notification
      properties:
        email:
          from:
            address: release@example.com
            alias: Release Bot
            password:
              secretRef:
                name: smtp
                key: password
            host: 127.0.0.1
            port: {port}
          to: [dev@example.com, ops@example.com]
          content:
            subject: release 1.0 is out
            body: <p>shipped</p>
"#,
            port = smtp.port
        ),
    );
    hub.wait_phase("mailer", "running");
    let mails = smtp.wait_for(1, std::time::Duration::from_secs(5));
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(m.login, "\0release@example.com\0s3cret-pw");
    assert_eq!(m.from, "<release@example.com>");
    assert_eq!(m.to, ["<dev@example.com>", "<ops@example.com>"]);
    assert!(m.data.contains("Subject: release 1.0 is out"), "{}", m.data);
    assert!(
        m.data
            .contains("From: \"Release Bot\" <release@example.com>"),
        "{}",
        m.data
    );
    assert!(m.data.contains("<p>shipped</p>"), "{}", m.data);
    assert!(m.data.contains("Message-ID: <"), "{}", m.data);
    // The password is nowhere in the hub's log or the application's status.
    let status = ok(&hub.sail(&["status", "mailer", "-o", "json"]), "status");
    assert!(!status.contains("s3cret-pw"));
    assert!(!hub.log().contains("s3cret-pw"));

    // A server that is not there: the step retries, saying where it sent.
    hub.up(
        dir.path(),
        "nomail",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: nomail
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: tell
      type: notification
      properties:
        email:
          from:
            address: release@example.com
            password:
              value: pw-that-must-not-show
            host: 127.0.0.1
            port: 1
          to: [dev@example.com]
          content:
            subject: s
            body: b
"#,
    );
    let st = hub.wait_status(
        "nomail",
        "the first retry of tell",
        std::time::Duration::from_secs(60),
        |v| {
            step_opt(v, "tell")
                .and_then(|s| s["message"].as_str())
                .is_some_and(|m| m.contains("retry 1/"))
        },
    );
    let m = message(&st, "tell");
    assert!(
        m.contains("through 127.0.0.1:1 as release@example.com"),
        "{m}"
    );
    assert!(!m.contains("pw-that-must-not-show"), "{m}");
    hub.stop();
}

#[test]
fn a_smaller_retry_limit_set_on_the_hub_stops_the_workflow_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start_with(
        dir.path(),
        &[
            "--max-workflow-step-error-retry-times",
            "2",
            "--max-workflow-failed-backoff-time",
            "1",
            "--max-workflow-wait-backoff-time",
            "1",
        ],
    );
    // Nothing listens on port 1: every try is a provider error.
    hub.up(
        dir.path(),
        "unanswered",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: unanswered
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: hook
      type: webhook
      properties:
        url:
          value: http://127.0.0.1:1/deployed
        data:
          app: unanswered
    - name: after
      type: print-message-in-status
      properties:
        message: never
"#,
    );
    let st = hub.wait_phase("unanswered", "workflowFailed");
    let hook = step(&st, "hook");
    assert_eq!(hook["phase"], "failed", "{hook}");
    assert_eq!(hook["reason"], "FailedAfterRetries", "{hook}");
    let m = message(&st, "hook");
    assert!(m.starts_with("failed after 2 retries: "), "{m}");
    assert!(m.contains("127.0.0.1:1"), "{m}");
    assert_eq!(step(&st, "after")["phase"], "skipped", "{st}");
    let wf = st["status"]["workflow"]["message"].as_str().unwrap_or("");
    assert!(wf.starts_with("step hook: failed after 2 retries"), "{wf}");
    // `sail workflow logs` tells the same.
    let logs = ok(&hub.sail(&["workflow", "logs", "unanswered"]), "logs");
    assert!(logs.contains("failed after 2 retries"), "{logs}");
    // A flag out of range is refused by name.
    let out = std::process::Command::new(common::SAIL)
        .args(["server", "--max-workflow-failed-backoff-time", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        common::text(&out.stderr).contains("--max-workflow-failed-backoff-time"),
        "{}",
        common::text(&out.stderr)
    );
    hub.stop();
}

/// The send records (`send.<step>.…`) of an application's workflow context.
fn send_records(hub: &HubProcess, app: &str, step: &str) -> Vec<serde_json::Value> {
    let out = hub.kubectl(&[
        "get",
        "configmap",
        &format!("workflow-{app}-context"),
        "-n",
        "default",
        "-o",
        "json",
    ]);
    let cm: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    cm["data"]
        .as_object()
        .map(|d| {
            d.iter()
                .filter(|(k, _)| k.starts_with(&format!("send.{step}.")))
                .filter_map(|(_, v)| serde_json::from_str(v.as_str()?).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_crash_while_a_mail_is_in_flight_resends_it_once_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    // The first mail is taken, but the server's answer waits two minutes: the hub dies first.
    let smtp = common::SmtpReceiver::start_delayed(std::time::Duration::from_secs(120));
    let app = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: mailcrash
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: tell
      type: notification
      properties:
        email:
          from:
            address: release@example.com
            password:
              value: pw
            host: 127.0.0.1
            port: {port}
          to: [dev@example.com]
          content:
            subject: release 2.0
            body: <p>shipped</p>
    - name: after
      type: print-message-in-status
      properties:
        message: done
"#,
        port = smtp.port
    );
    hub.up(dir.path(), "mailcrash", &app);
    let first = smtp.wait_for(1, std::time::Duration::from_secs(30));
    let key = first[0].header("X-Idempotency-Key");
    assert!(
        key.contains("/mailcrash-v1/") && key.contains("/tell/"),
        "{key}"
    );
    // The intent is on record before any outcome.
    let records = send_records(&hub, "mailcrash", "tell");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["state"], "sending", "{records:?}");
    assert_eq!(records[0]["method"], "SMTP");
    assert_eq!(
        records[0]["to"],
        format!("smtp://127.0.0.1:{}", smtp.port).as_str()
    );
    assert_eq!(records[0]["idempotencyKey"], key.as_str());

    // Crash while the server has not answered.
    hub.kill();
    let hub = HubProcess::start(dir.path());
    let st = hub.wait_phase("mailcrash", "running");
    let m = message(&st, "tell");
    assert!(
        m.contains(&format!("resending after restart, Idempotency-Key {key}")),
        "{m}"
    );
    assert_eq!(step(&st, "after")["phase"], "succeeded");
    // Taken twice, the same mail both times, and not again later.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let all = smtp.mails();
    assert_eq!(all.len(), 2, "{all:?}");
    for h in ["X-Idempotency-Key", "Message-ID"] {
        assert_eq!(all[0].header(h), all[1].header(h), "{h}");
    }
    let records = send_records(&hub, "mailcrash", "tell");
    assert_eq!(records[0]["state"], "sent", "{records:?}");
    assert_eq!(records[0]["resentAfterRestart"], true, "{records:?}");
    let logs = ok(
        &hub.sail(&["workflow", "logs", "mailcrash", "--step", "tell"]),
        "logs",
    );
    assert!(
        logs.contains(&format!(
            "SMTP smtp://127.0.0.1:{} (Idempotency-Key {key}): accepted at",
            smtp.port
        )),
        "{logs}"
    );
    assert!(logs.contains("resent after a restart"), "{logs}");

    // Once recorded done, it is never sent again: a later reconcile (a change of the
    // application that keeps its revision's workflow finished) sends nothing.
    ok(
        &hub.kubectl(&[
            "annotate",
            "application",
            "mailcrash",
            "-n",
            "default",
            "touched=yes",
        ]),
        "annotate",
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(smtp.mails().len(), 2);
    hub.stop();
}

#[test]
fn a_restarted_workflow_sends_again_with_a_key_of_its_own_run() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let hooks = common::Receiver::start(200);
    let smtp = common::SmtpReceiver::start();
    let app = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rerun
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: hook
      type: webhook
      properties:
        url:
          value: {url}/deployed
        data:
          app: rerun
    - name: mail
      type: notification
      properties:
        email:
          from:
            address: release@example.com
            password:
              value: pw
            host: 127.0.0.1
            port: {port}
          to: [dev@example.com]
          content:
            subject: rerun
            body: again
"#,
        url = hooks.url,
        port = smtp.port
    );
    hub.up(dir.path(), "rerun", &app);
    hub.wait_phase("rerun", "running");
    let first = hooks.wait_for(1, std::time::Duration::from_secs(10));
    let k1 = first[0].idempotency_key();
    assert!(
        k1.contains("/rerun-v1/") && k1.ends_with("/hook/send"),
        "{k1}"
    );
    let m1 = smtp.wait_for(1, std::time::Duration::from_secs(10))[0].header("X-Idempotency-Key");

    // The hub restarting within the run keeps the run's keys: nothing is sent again.
    hub.stop();
    let hub = HubProcess::start(dir.path());
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(hooks.requests().len(), 1);
    assert_eq!(smtp.mails().len(), 1);

    // A restart of the same revision is a new run: sent again, with new keys.
    std::thread::sleep(std::time::Duration::from_secs(1));
    ok(&hub.sail(&["workflow", "restart", "rerun"]), "restart");
    let all = hooks.wait_for(2, std::time::Duration::from_secs(30));
    let k2 = all[1].idempotency_key();
    assert_ne!(k1, k2, "a new run sends with a new key");
    assert!(
        k2.contains("/rerun-v1/") && k2.ends_with("/hook/send"),
        "{k2}"
    );
    let mails = smtp.wait_for(2, std::time::Duration::from_secs(30));
    let m2 = mails[1].header("X-Idempotency-Key");
    assert_ne!(m1, m2);
    assert_ne!(mails[0].header("Message-ID"), mails[1].header("Message-ID"));
    let st = hub.wait_phase("rerun", "running");
    assert!(!message(&st, "hook").contains("resending"), "{st}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(hooks.requests().len(), 2);
    assert_eq!(smtp.mails().len(), 2);
    hub.stop();
}

#[test]
fn search_events_and_collect_logs_in_pod_read_a_pod_of_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let def = dir.path().join("diagnose.cue");
    std::fs::write(
        &def,
        r#"import ("vela/query", "vela/ql", "vela/builtin", "vela/util", "encoding/base64", "strings")

"diagnose": {
	type: "workflow-step"
}
template: {
	pods: query.#CollectPods & {$params: app: {name: context.name, namespace: context.namespace}}
	ready: builtin.#ConditionalWait & {$params: continue: len(pods.$returns.list) > 0}
	_pod: pods.$returns.list[0]
	events: query.#SearchEvents & {$params: {value: _pod.object, cluster: _pod.cluster}}
	seen: builtin.#ConditionalWait & {$params: continue: len(events.$returns.list) > 0}
	logs: query.#CollectLogsInPod & {$params: {
		cluster:   _pod.cluster
		namespace: _pod.object.metadata.namespace
		pod:       _pod.object.metadata.name
		options: {container: "web", tailLines: 10, sinceSeconds: 60}
	}}
	text: util.#ConvertString & {$params: bt: base64.Decode(null, logs.$returns.outputs.logs)}
	missing: ql.#CollectLogsInPod & {namespace: context.namespace, pod: "no-such-pod", options: container: "web"}
	say: builtin.#Message & {$params: message: "events \(strings.Join([for e in events.$returns.list {e.reason}], ",")) about \(strings.Join([for e in events.$returns.list {"\(e.involvedObject.kind) \(e.involvedObject.name)"}], ",")); log \(strings.TrimSpace(text.$returns.str)); from \(logs.$returns.outputs.info.fromDate); missing: \(missing.outputs.err)"}
}
"#,
    )
    .unwrap();
    ok(
        &hub.sail(&["def", "apply", def.to_str().unwrap()]),
        "def apply diagnose",
    );
    hub.up(
        dir.path(),
        "clinic",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: clinic
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
    - name: look
      type: diagnose
"#,
    );
    let st = hub.wait_phase("clinic", "running");
    let m = message(&st, "look");
    // Every Event found is about that Pod, and the simulator's Scheduled is among them.
    let events = m
        .strip_prefix("events ")
        .and_then(|r| r.split(';').next())
        .unwrap_or_default();
    let (reasons, about) = events.split_once(" about ").unwrap_or_default();
    assert!(reasons.split(',').any(|r| r == "Scheduled"), "{m}");
    let pods: Vec<&str> = about.split(',').collect();
    assert!(
        pods.iter()
            .all(|p| p.starts_with("Pod web-") && *p == pods[0]),
        "{m}"
    );
    assert!(
        m.contains("; log kubelite: simulated container log for pod default/web-"),
        "{m}"
    );
    // sinceSeconds: 60 makes the log's start a minute before now, an RFC 3339 time.
    let from = m
        .split("; from ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap_or_default();
    assert!(
        from.len() >= 20 && from.contains('T') && from.ends_with('Z'),
        "{m}"
    );
    assert!(
        m.contains("missing: failed to get pod: pods \"no-such-pod\" not found"),
        "{m}"
    );
    hub.stop();
}

#[test]
fn legacy_op_apply_remaining_and_apply_application_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    // KubeVela's deprecated apply-remaining step, and a step over op's parallel apply.
    let def = dir.path().join("remaining.cue");
    std::fs::write(
        &def,
        r#"import ("vela/op")

"apply-remaining": {
	type: "workflow-step"
}
template: {
	apply: op.#ApplyRemaining & {
		parameter
	}
	parameter: {
		exceptions?: [...string]
	}
}
"#,
    )
    .unwrap();
    ok(
        &hub.sail(&["def", "apply", def.to_str().unwrap()]),
        "def apply apply-remaining",
    );
    let def = dir.path().join("parallel.cue");
    std::fs::write(
        &def,
        r#"import ("vela/op")

"apply-all-now": {
	type: "workflow-step"
}
template: {
	apply: op.#ApplyApplicationInParallel
	partial: op.#ApplyRemaining & {exceptions: "all-back": skipApplyWorkload: false}
}
"#,
    )
    .unwrap();
    ok(
        &hub.sail(&["def", "apply", def.to_str().unwrap()]),
        "def apply apply-all-now",
    );
    let components = |p: &str| {
        format!(
            "  components:\n  - name: {p}front\n    type: webservice\n    properties:\n      image: nginx\n  - name: {p}back\n    type: webservice\n    properties:\n      image: nginx\n  - name: {p}batch\n    type: webservice\n    properties:\n      image: busybox\n"
        )
    };
    hub.up(
        dir.path(),
        "rest",
        &format!(
            r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rest
  namespace: default
spec:
{}  workflow:
    steps:
    - name: most
      type: apply-remaining
      properties:
        exceptions: [batch]
"#,
            components("")
        ),
    );
    // The workflow succeeds; the application stays unhealthy, as batch was left out.
    let st = hub.wait_status(
        "rest",
        "the workflow succeeding",
        std::time::Duration::from_secs(60),
        |v| v["status"]["workflow"]["status"] == "succeeded",
    );
    assert_eq!(step(&st, "most")["phase"], "succeeded", "{st}");
    let deployments = ok(
        &hub.kubectl(&[
            "get",
            "deployments",
            "-n",
            "default",
            "-l",
            "app.oam.dev/name=rest",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]),
        "list deployments",
    );
    let mut names: Vec<&str> = deployments.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["back", "front"], "{deployments}");

    // All at once; a partial exception is refused, naming it.
    hub.up(
        dir.path(),
        "all",
        &format!(
            r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: all
  namespace: default
spec:
{}  workflow:
    steps:
    - name: now
      type: apply-all-now
"#,
            components("all-")
        ),
    );
    let st = hub.wait_phase("all", "workflowFailed");
    let m = message(&st, "now");
    assert!(
        m.contains("exceptions.all-back.skipApplyWorkload: false is not supported"),
        "{m}"
    );
    let deployments = ok(
        &hub.kubectl(&[
            "get",
            "deployments",
            "-n",
            "default",
            "-l",
            "app.oam.dev/name=all",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]),
        "list deployments",
    );
    assert_eq!(deployments.split_whitespace().count(), 3, "{deployments}");
    hub.stop();
}

#[test]
fn legacy_op_chat_messages_and_apply_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let chat = common::Receiver::start(200);
    let def = dir.path().join("legacy-chat.cue");
    std::fs::write(
        &def,
        r#"import ("vela/op")

"legacy-chat": {
	type: "workflow-step"
}
template: {
	objects: op.#ApplyInParallel & {
		value: [ for n in ["left", "right"] {
			apiVersion: "v1"
			kind:       "ConfigMap"
			metadata: {name: n, namespace: context.namespace}
			data: side: n
		}]
	}
	slack: op.#Slack & {message: text: "to slack", slackUrl: parameter.url + "/slack"}
	ding: op.#DingTalk & {message: {msgtype: "text", text: content: "to ding"}, dingUrl: parameter.url + "/ding"}
	lark: op.#Lark & {message: {msg_type: "text", content: text: "to lark"}, larkUrl: parameter.url + "/lark"}
	parameter: url: string
}
"#,
    )
    .unwrap();
    ok(
        &hub.sail(&["def", "apply", def.to_str().unwrap()]),
        "def apply legacy-chat",
    );
    hub.up(
        dir.path(),
        "chatty",
        &format!(
            r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: chatty
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: tell
      type: legacy-chat
      properties:
        url: {}
"#,
            chat.url
        ),
    );
    hub.wait_phase("chatty", "running");
    let sent = chat.wait_for(3, std::time::Duration::from_secs(10));
    // Three sends of one step to one receiver: each with a key of its own, so that a receiver
    // that drops repeated keys takes all three.
    let mut keys: Vec<String> = sent.iter().map(|r| r.idempotency_key()).collect();
    assert!(keys.iter().all(|k| k.contains("/tell/")), "{keys:?}");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let mut got: Vec<(String, String, String)> = sent
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.body.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "POST".to_string(),
                "/ding".to_string(),
                r#"{"msgtype":"text","text":{"content":"to ding"}}"#.to_string()
            ),
            (
                "POST".to_string(),
                "/lark".to_string(),
                r#"{"msg_type":"text","content":{"text":"to lark"}}"#.to_string()
            ),
            (
                "POST".to_string(),
                "/slack".to_string(),
                r#"{"text":"to slack"}"#.to_string()
            ),
        ]
    );
    for side in ["left", "right"] {
        let data = ok(
            &hub.kubectl(&[
                "get",
                "configmap",
                side,
                "-n",
                "default",
                "-o",
                "jsonpath={.data.side}",
            ]),
            "read configmap",
        );
        assert_eq!(data, side);
    }
    hub.stop();
}
