//! The built-in workflow steps written in CUE (definitions/workflow-step), each run by the real
//! `sail` hub and its effect checked on the hub: export2config, export2secret, depends-on-app
//! (waiting for another application, and creating one from its ConfigMap), apply-deployment,
//! vela-cli and build-push-image (Jobs) and clean-jobs.

mod common;

use common::{HubProcess, ok, step, step_opt, wait_until};
use std::time::Duration;

fn get(hub: &HubProcess, args: &[&str]) -> String {
    let mut all = vec!["get"];
    all.extend(args);
    all.extend(["-n", "default"]);
    ok(&hub.kubectl(&all), &format!("kubectl get {args:?}"))
}

const STEPS_APP: &str = r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: builtins
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: wait-base
      type: depends-on-app
      properties:
        name: base
        namespace: default
    - name: cfg
      type: export2config
      properties:
        configName: exported
        data:
          color: blue
          size: "3"
    - name: sec
      type: export2secret
      properties:
        secretName: creds
        data:
          token: abc
    - name: reg
      type: export2secret
      properties:
        secretName: regcred
        kind: docker-registry
        dockerRegistry:
          username: u
          password: p
          server: registry.example
    - name: web
      type: apply-deployment
      properties:
        image: nginx:1.27
        replicas: 2
        cmd: ["nginx", "-g", "daemon off;"]
    - name: cli
      type: vela-cli
      properties:
        command: ["vela", "version"]
        serviceAccountName: default
    - name: build
      type: build-push-image
      properties:
        context:
          git: github.com/example/app
          branch: main
        image: registry.example/app:1
        credentials:
          image:
            name: regcred
    - name: clean
      type: clean-jobs
"#;

const BASE_APP: &str = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: base\n  namespace: default\nspec:\n  components:\n  - name: base-web\n    type: webservice\n    properties:\n      image: nginx:1.27\n";

#[test]
fn builtin_steps_do_what_they_say() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    hub.up(dir.path(), "builtins", STEPS_APP);

    // depends-on-app waits while `base` does not exist (and has no ConfigMap to make it from).
    let st = hub.wait_status(
        "builtins",
        "wait-base running",
        Duration::from_secs(30),
        |v| step_opt(v, "wait-base").is_some_and(|s| s["phase"] == "running"),
    );
    let s = step(&st, "wait-base");
    assert!(
        s["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot run yet"),
        "{s}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let st = hub.status_json("builtins").unwrap_or_default();
    assert_eq!(step(&st, "wait-base")["phase"], "running", "{st}");
    assert_eq!(step(&st, "cfg")["phase"], "pending", "{st}");

    // Once base runs, the rest goes.
    hub.up(dir.path(), "base", BASE_APP);
    let st = hub.wait_phase("builtins", "running");
    for s in st["status"]["workflow"]["steps"].as_array().unwrap() {
        assert_eq!(s["phase"], "succeeded", "{s}");
    }

    // export2config
    assert_eq!(
        get(
            &hub,
            &[
                "configmap",
                "exported",
                "-o",
                "jsonpath={.data.color}/{.data.size}"
            ]
        ),
        "blue/3"
    );
    // export2secret: generic, and a registry login
    assert_eq!(
        get(&hub, &["secret", "creds", "-o", "jsonpath={.data.token}"]),
        "YWJj"
    );
    assert_eq!(
        get(&hub, &["secret", "regcred", "-o", "jsonpath={.type}"]),
        "kubernetes.io/dockerconfigjson"
    );
    let login = get(
        &hub,
        &[
            "secret",
            "regcred",
            "-o",
            "jsonpath={.data.\\.dockerconfigjson}",
        ],
    );
    use base64::Engine;
    let login = base64::engine::general_purpose::STANDARD
        .decode(login.trim())
        .unwrap_or_else(|e| panic!("not base64 ({e}): {login}"));
    let login = String::from_utf8(login).expect("utf-8");
    let login: serde_json::Value = serde_json::from_str(&login).expect("docker config JSON");
    assert_eq!(login["auths"]["registry.example"]["username"], "u");
    assert_eq!(login["auths"]["registry.example"]["auth"], "dTpw");
    // apply-deployment: named after the step, ready before the step succeeded
    assert_eq!(
        get(
            &hub,
            &[
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.replicas}/{.status.readyReplicas}/{.spec.template.spec.containers[0].image}"
            ]
        ),
        "2/2/nginx:1.27"
    );
    // vela-cli and build-push-image ran as Jobs that succeeded (their steps waited for that);
    // clean-jobs then deleted the Jobs and Pods labelled with the application.
    let jobs = get(
        &hub,
        &["jobs", "-l", "workflow.oam.dev/name=builtins", "-o", "name"],
    );
    assert_eq!(jobs.trim(), "", "jobs left: {jobs}");
    wait_until("the jobs' pods to go", Duration::from_secs(20), || {
        let pods = get(
            &hub,
            &["pods", "-l", "workflow.oam.dev/name=builtins", "-o", "name"],
        );
        (!pods.trim().is_empty()).then(|| format!("pods left: {pods}"))
    });
    let msg = |n: &str| step(&st, n)["message"].as_str().unwrap_or("").to_string();
    assert!(!msg("cli").contains("failed"), "{}", msg("cli"));

    // depends-on-app creates a missing application from the ConfigMap of its name.
    let late = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: late\n  namespace: default\nspec:\n  components:\n  - name: late-web\n    type: webservice\n    properties:\n      image: nginx:1.27\n";
    testkit::ok_stdout(&testkit::kubectl_stdin(
        &hub.kubeconfig(),
        &[
            "create",
            "configmap",
            "late",
            "-n",
            "default",
            "--from-file=application=/dev/stdin",
        ],
        late,
    ));
    hub.up(dir.path(),
        "needs-late",
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: needs-late\n  namespace: default\nspec:\n  components: []\n  workflow:\n    steps:\n    - name: wait-late\n      type: depends-on-app\n      properties:\n        name: late\n        namespace: default\n",
    );
    hub.wait_phase("needs-late", "running");
    let late_st = hub.wait_phase("late", "running");
    assert_eq!(late_st["spec"]["components"][0]["name"], "late-web");
    hub.stop();
}

/// Outputs of the built-in apply-component and deploy steps read the applied component as it
/// is live (`output`, `outputs`, and for deploy `placements`), and later steps take them in.
#[test]
fn apply_component_and_deploy_export_outputs_from_what_they_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    hub.up(dir.path(),
        "outs",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: outs
  namespace: default
spec:
  components:
  - name: web
    type: webservice
    properties:
      image: nginx:1.27
      ports:
      - port: 80
        expose: true
  workflow:
    steps:
    - name: apply-web
      type: apply-component
      properties:
        component: web
      outputs:
      - name: ready
        valueFrom: '"\(output.metadata.name) has \(output.status.readyReplicas) ready"'
      - name: svc-port
        valueFrom: outputs.webserviceExpose.spec.ports[0].port
    - name: deploy-all
      type: deploy
      outputs:
      - name: where
        valueFrom: '"\(placements[0].component) on \(placements[0].cluster) in \(placements[0].namespace)"'
    - name: say-ready
      type: print-message-in-status
      inputs:
      - from: ready
        parameterKey: message
    - name: say-where
      type: print-message-in-status
      inputs:
      - from: where
        parameterKey: message
    - name: bad-output
      type: apply-component
      properties:
        component: web
      outputs:
      - name: nope
        valueFrom: output.status.noSuchField
"#,
    );
    let st = hub.wait_phase("outs", "workflowFailed");
    assert_eq!(step(&st, "apply-web")["phase"], "succeeded", "{st}");
    assert_eq!(step(&st, "say-ready")["message"], "web has 1 ready", "{st}");
    assert_eq!(
        step(&st, "say-where")["message"],
        "web on local in default",
        "{st}"
    );
    let bad = step(&st, "bad-output");
    assert_eq!(bad["reason"], "Output", "{bad}");
    assert!(
        bad["message"]
            .as_str()
            .unwrap_or("")
            .contains("noSuchField"),
        "{bad}"
    );
    let vars = get(
        &hub,
        &[
            "configmap",
            "workflow-outs-context",
            "-o",
            "jsonpath={.data.vars}",
        ],
    );
    let vars: serde_json::Value = serde_json::from_str(&vars).expect("vars JSON");
    assert_eq!(vars["svc-port"], 80, "{vars}");
    hub.stop();
}

/// A CustomResourceDefinition of the Terraform controller's (`terraform.core.oam.dev`), open
/// schema, with a status subresource: enough for the steps that write and read its objects.
fn terraform_crd(kind: &str, version: &str) -> String {
    let singular = kind.to_lowercase();
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {singular}s.terraform.core.oam.dev
spec:
  group: terraform.core.oam.dev
  scope: Namespaced
  names:
    kind: {kind}
    plural: {singular}s
    singular: {singular}
  versions:
  - name: {version}
    served: true
    storage: true
    subresources:
      status: {{}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"
    )
}

/// apply-terraform-config over the Terraform controller's Configuration (kubelite plays the
/// controller: the Configuration becomes Available), and generate-jdbc-connection from a
/// database's connection Secret.
#[test]
fn terraform_steps_apply_a_configuration_and_make_a_jdbc_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    testkit::ok_stdout(&testkit::kubectl_stdin(
        &hub.kubeconfig(),
        &["apply", "-f", "-"],
        &terraform_crd("Configuration", "v1beta2"),
    ));
    ok(
        &hub.kubectl(&[
            "create",
            "secret",
            "generic",
            "db-conn",
            "-n",
            "default",
            "--from-literal=DB_HOST=db.example",
            "--from-literal=DB_PORT=3306",
            "--from-literal=DB_NAME=shop",
            "--from-literal=DB_USER=app",
            "--from-literal=DB_PASSWORD=s3cret",
        ]),
        "create the connection secret",
    );
    hub.up(
        dir.path(),
        "cloud",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: cloud
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: bucket
      type: apply-terraform-config
      properties:
        source:
          hcl: |
            resource "null_resource" "x" {}
        variable:
          name: my-bucket
        writeConnectionSecretToRef:
          name: bucket-conn
    - name: jdbc
      type: generate-jdbc-connection
      properties:
        name: db-conn
      outputs:
      - name: url
        valueFrom: env[0].value
      - name: user
        valueFrom: env[1].value
    - name: show
      type: print-message-in-status
      inputs:
      - from: url
        parameterKey: message
"#,
    );
    let st = hub.wait_phase("cloud", "running");
    assert_eq!(step(&st, "bucket")["phase"], "succeeded", "{st}");
    assert_eq!(
        step(&st, "show")["message"],
        "jdbc://db.example:3306/shop?characterEncoding=utf8&useSSL=false",
        "{st}"
    );
    assert_eq!(
        get(
            &hub,
            &[
                "configuration",
                "cloud-bucket",
                "-o",
                "jsonpath={.spec.variable.name}/{.spec.writeConnectionSecretToRef.name}/{.status.apply.state}"
            ]
        ),
        "my-bucket/bucket-conn/Available"
    );
    let vars = get(
        &hub,
        &[
            "configmap",
            "workflow-cloud-context",
            "-o",
            "jsonpath={.data.vars}",
        ],
    );
    let vars: serde_json::Value = serde_json::from_str(&vars).expect("vars JSON");
    assert_eq!(vars["user"], "app", "{vars}");
    hub.stop();
}

/// export-data and export-service put a ConfigMap, and a Service with its Endpoints, on every
/// cluster the named topology policy places the application in (here a member cluster).
#[tokio::test(flavor = "multi_thread")]
async fn export_data_and_service_reach_the_clusters_of_a_topology() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    let members = common::start_members(&["edge"]).await;
    hub.join(&members[0], "edge", "");
    hub.up(
        dir.path(),
        "exporter",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: exporter
  namespace: default
spec:
  components:
  - name: web
    type: webservice
    properties:
      image: nginx:1.27
  policies:
  - name: on-edge
    type: topology
    properties:
      clusters: [edge]
  workflow:
    steps:
    - name: data
      type: export-data
      properties:
        name: shared-settings
        topology: on-edge
        data:
          region: eu
    - name: db
      type: export-service
      properties:
        name: legacy-db
        topology: on-edge
        ip: 10.0.0.7
        port: 5432
        targetPort: 5432
"#,
    );
    // The component is never deployed (no deploy step): wait for the workflow, not for health.
    hub.wait_status(
        "exporter",
        "workflow succeeded",
        Duration::from_secs(60),
        |v| v["status"]["workflow"]["status"] == "succeeded",
    );
    let edge = |args: &[&str]| {
        let mut all = vec!["get"];
        all.extend(args);
        all.extend(["-n", "default"]);
        testkit::ok_stdout(&members[0].kubectl(&all))
    };
    assert_eq!(
        edge(&[
            "configmap",
            "shared-settings",
            "-o",
            "jsonpath={.data.region}"
        ]),
        "eu"
    );
    assert_eq!(
        edge(&[
            "service",
            "legacy-db",
            "-o",
            "jsonpath={.spec.ports[0].port}"
        ]),
        "5432"
    );
    assert_eq!(
        edge(&[
            "endpoints",
            "legacy-db",
            "-o",
            "jsonpath={.subsets[0].addresses[0].ip}"
        ]),
        "10.0.0.7"
    );
    // Not on the hub: the topology names only edge.
    let on_hub = hub.kubectl(&["get", "configmap", "shared-settings", "-n", "default"]);
    assert!(!on_hub.status.success(), "exported to the hub too");
    hub.stop();
}

fn restart_app(name: &str, props: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {name}
  namespace: default
spec:
  components: []
  workflow:
    steps:
    - name: hello
      type: print-message-in-status
      properties:
        message: hi
    - name: again
      type: restart-workflow
      properties:
{props}
"#
    )
}

fn run_start(v: &serde_json::Value) -> String {
    v["status"]["workflow"]["startTime"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn finished(v: &serde_json::Value) -> bool {
    v["status"]["workflow"]["finished"] == true
}

/// restart-workflow schedules the workflow to run again through the
/// `app.oam.dev/restart-workflow` annotation, which the controller honours once a run has
/// finished: `every` after each run, `at` once at its time, `after` that long after the step
/// ran; giving two of them fails the step.
#[test]
fn restart_workflow_runs_the_workflow_again_when_scheduled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    let at = k8s_openapi::jiff::Timestamp::from_second(
        k8s_openapi::jiff::Timestamp::now().as_second() + 20,
    )
    .expect("a time")
    .to_string();
    hub.up(
        dir.path(),
        "every",
        &restart_app("every", "        every: 2s"),
    );
    hub.up(
        dir.path(),
        "once",
        &restart_app("once", &format!("        at: \"{at}\"")),
    );
    hub.up(
        dir.path(),
        "later",
        &restart_app("later", "        after: 3s"),
    );
    hub.up(
        dir.path(),
        "both",
        &restart_app("both", &format!("        at: \"{at}\"\n        every: 1m")),
    );
    let minute = Duration::from_secs(60);

    // at: the time goes into the status and the annotation away; one restart at that time,
    // and no more (the second run sets the same, now past, time again: spent).
    let once = hub.wait_status("once", "scheduled its restart", minute, |v| {
        v["status"]["workflowRestartScheduledAt"].is_string()
    });
    assert_eq!(
        once["status"]["workflowRestartScheduledAt"],
        at.as_str(),
        "{once}"
    );

    // every: a run, then another, then another; the annotation stays.
    let first = hub.wait_status("every", "finished a run", minute, finished);
    let first = run_start(&first);
    let second = hub.wait_status("every", "ran again", minute, |v| {
        finished(v) && run_start(v) != first
    });
    let second = run_start(&second);
    hub.wait_status("every", "ran a third time", minute, |v| {
        finished(v) && run_start(v) != first && run_start(v) != second
    });
    assert_eq!(
        get(
            &hub,
            &[
                "application",
                "every",
                "-o",
                "jsonpath={.metadata.annotations.app\\.oam\\.dev/restart-workflow}"
            ]
        ),
        "2s"
    );

    // (at, continued) The restart comes at its time.
    let first = run_start(&once);
    let st = hub.wait_status("once", "ran again", minute, |v| {
        finished(v) && run_start(v) != first
    });
    let again = run_start(&st);
    let ts = |s: &str| -> k8s_openapi::jiff::Timestamp {
        s.parse()
            .unwrap_or_else(|e| panic!("not a time ({e}): {s}"))
    };
    assert!(ts(&again) >= ts(&at), "restarted at {again}, before {at}");
    std::thread::sleep(Duration::from_secs(4));
    let st = hub.status_json("once").expect("status");
    assert_eq!(run_start(&st), again, "restarted more than once: {st}");
    assert!(st["status"]["workflowRestartScheduledAt"].is_null(), "{st}");
    let annotations = get(
        &hub,
        &[
            "application",
            "once",
            "-o",
            "jsonpath={.metadata.annotations}",
        ],
    );
    assert!(!annotations.contains("restart-workflow"), "{annotations}");

    // after: a time 3s after the step ran; it comes, and the workflow runs again.
    let st = hub.wait_status("later", "scheduled its restart", minute, |v| {
        v["status"]["workflowRestartScheduledAt"].is_string()
    });
    let when = st["status"]["workflowRestartScheduledAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let step_ran = step(&st, "again")["lastExecuteTime"]
        .as_str()
        .or(step(&st, "again")["firstExecuteTime"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        ts(&when) > ts(&step_ran),
        "{when} not after {step_ran}: {st}"
    );
    let first = run_start(&st);
    hub.wait_status("later", "ran again", minute, |v| {
        finished(v) && run_start(v) != first
    });

    // both: the step fails and says why.
    let st = hub.wait_phase("both", "workflowFailed");
    let msg = step(&st, "again")["message"].as_str().unwrap_or_default();
    assert!(msg.contains("exactly one of at, after and every"), "{st}");

    // An annotation that is no time, interval or `true` is reported, not acted on.
    ok(
        &hub.kubectl(&[
            "annotate",
            "application",
            "both",
            "-n",
            "default",
            "app.oam.dev/restart-workflow=soon",
        ]),
        "annotate",
    );
    let st = hub.wait_status("both", "reported the bad annotation", minute, |v| {
        v["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "WorkflowRestart"))
    });
    let cond = st["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "WorkflowRestart"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(cond["status"], "False", "{cond}");
    assert!(
        cond["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"soon\""),
        "{cond}"
    );
    assert!(st["status"]["workflowRestartScheduledAt"].is_null(), "{st}");
    hub.stop();
}

/// apply-terraform-provider makes a Provider and its credentials Secret and waits until the
/// Provider is ready; deploy-cloud-resource makes the Terraform component for an environment on
/// the hub and copies its connection Secret to the clusters of the environment's topology;
/// share-cloud-resource copies it to more places. The test plays the Terraform controller
/// where kubelite does not (the Provider's state, the connection Secret).
#[tokio::test(flavor = "multi_thread")]
async fn terraform_provider_and_cloud_resources_reach_their_clusters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    let members = common::start_members(&["edge"]).await;
    hub.join(&members[0], "edge", "");
    for crd in [
        terraform_crd("Configuration", "v1beta2"),
        terraform_crd("Provider", "v1beta1"),
    ] {
        testkit::ok_stdout(&testkit::kubectl_stdin(
            &hub.kubeconfig(),
            &["apply", "-f", "-"],
            &crd,
        ));
    }
    ok(
        &hub.kubectl(&["create", "namespace", "team-b"]),
        "namespace",
    );
    testkit::ok_stdout(&members[0].kubectl(&["create", "namespace", "shared"]));
    hub.up(
        dir.path(),
        "rds",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rds
  namespace: default
spec:
  components:
  - name: db
    type: terraform
    properties:
      hcl: |
        resource "null_resource" "db" {}
      instance_name: db
      writeConnectionSecretToRef:
        name: db-conn
  - name: web
    type: webservice
    properties:
      image: nginx:1.27
  policies:
  - name: prod
    type: topology
    properties:
      clusters: [edge]
  workflow:
    steps:
    - name: provider
      type: apply-terraform-provider
      properties:
        type: aws
        name: aws
        accessKey: AKIA-TEST
        secretKey: not-so-secret
        region: eu-west-1
    - name: deploy-db
      type: deploy-cloud-resource
      properties:
        env: prod
    - name: share-db
      type: share-cloud-resource
      properties:
        env: prod
        placements:
        - namespace: team-b
        - cluster: edge
          namespace: shared
"#,
    );
    let minute = Duration::from_secs(60);
    let st = hub.wait_status("rds", "waited for the Provider", minute, |v| {
        step_opt(v, "provider").is_some_and(|s| {
            s["phase"] == "running"
                && s["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Provider aws to be ready")
        })
    });
    assert_eq!(step(&st, "deploy-db")["phase"], "pending", "{st}");
    assert_eq!(
        get(
            &hub,
            &[
                "provider.terraform.core.oam.dev",
                "aws",
                "-o",
                "jsonpath={.spec.provider}/{.spec.region}/{.spec.credentials.secretRef.name}/{.spec.credentials.secretRef.key}"
            ]
        ),
        "aws/eu-west-1/rds-provider/credentials"
    );
    use base64::Engine;
    let decode = |b: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .unwrap_or_else(|e| panic!("not base64 ({e}): {b}")),
        )
        .expect("utf-8")
    };
    let creds = decode(&get(
        &hub,
        &[
            "secret",
            "rds-provider",
            "-o",
            "jsonpath={.data.credentials}",
        ],
    ));
    assert!(creds.contains("AWS_ACCESS_KEY_ID: AKIA-TEST"), "{creds}");
    assert!(creds.contains("AWS_DEFAULT_REGION: eu-west-1"), "{creds}");

    // The Terraform controller finds the Provider ready.
    ok(
        &hub.kubectl(&[
            "patch",
            "provider.terraform.core.oam.dev",
            "aws",
            "-n",
            "default",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"state":"ready"}}"#,
        ]),
        "mark the Provider ready",
    );
    // deploy-cloud-resource makes db-prod on the hub and waits for its connection Secret.
    hub.wait_status("rds", "waited for the connection Secret", minute, |v| {
        step_opt(v, "deploy-db").is_some_and(|s| {
            s["message"]
                .as_str()
                .unwrap_or_default()
                .contains("connection Secret default/db-conn-prod")
        })
    });
    assert_eq!(
        get(
            &hub,
            &[
                "configuration",
                "db-prod",
                "-o",
                "jsonpath={.spec.variable.instance_name}/{.spec.writeConnectionSecretToRef.name}/{.status.apply.state}"
            ]
        ),
        "db/db-conn-prod/Available"
    );
    // The Terraform controller writes the connection Secret.
    ok(
        &hub.kubectl(&[
            "create",
            "secret",
            "generic",
            "db-conn-prod",
            "-n",
            "default",
            "--from-literal=DB_HOST=db.prod.example",
            "--from-literal=DB_PASSWORD=s3cret",
        ]),
        "create the connection secret",
    );
    hub.wait_status("rds", "the workflow succeeded", minute, |v| {
        v["status"]["workflow"]["status"] == "succeeded"
    });
    let edge = |ns: &str| {
        testkit::ok_stdout(&members[0].kubectl(&[
            "get",
            "secret",
            "db-conn",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.DB_HOST}",
        ]))
    };
    // deploy-cloud-resource: to the prod topology's cluster (edge, the app's namespace).
    assert_eq!(decode(&edge("default")), "db.prod.example");
    // share-cloud-resource: to the hub's team-b and edge's shared.
    assert_eq!(decode(&edge("shared")), "db.prod.example");
    let hub_copy = ok(
        &hub.kubectl(&[
            "get",
            "secret",
            "db-conn",
            "-n",
            "team-b",
            "-o",
            "jsonpath={.data.DB_PASSWORD}",
        ]),
        "the copy on the hub",
    );
    assert_eq!(decode(&hub_copy), "s3cret");
    // Only the terraform component was made for the environment.
    let web = hub.kubectl(&["get", "deploy", "web-prod", "-n", "default"]);
    assert!(!web.status.success(), "web-prod made too");
    hub.stop();
}

/// Step-level `inputs` of the built-in steps, as KubeVela reads them: on apply-component the
/// `parameterKey` addresses the component's properties (joined to the component's own inputs);
/// on deploy it addresses the step's properties (here its `policies`).
#[test]
fn inputs_fill_the_component_of_apply_component_and_the_properties_of_deploy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start(dir.path());
    ok(
        &hub.kubectl(&["create", "namespace", "staging"]),
        "namespace",
    );
    hub.up(
        dir.path(),
        "fed",
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: fed
  namespace: default
spec:
  components:
  - name: web
    type: webservice
    properties:
      image: nginx:1.27
  - name: api
    type: webservice
    properties:
      image: nginx:1.27
  policies:
  - name: to-staging
    type: topology
    properties:
      clusters: [local]
      namespace: staging
  workflow:
    steps:
    - name: choose-image
      type: print-message-in-status
      properties:
        message: nginx:1.28
      outputs:
      - name: image
        valueFrom: msg.$params.message
    - name: choose-place
      type: print-message-in-status
      properties:
        message: to-staging
      outputs:
      - name: where
        valueFrom: '[msg.$params.message]'
    - name: apply-web
      type: apply-component
      properties:
        component: web
      inputs:
      - from: image
        parameterKey: image
    - name: deploy-all
      type: deploy
      inputs:
      - from: where
        parameterKey: policies
"#,
    );
    let st = hub.wait_status(
        "fed",
        "the workflow succeeded",
        Duration::from_secs(60),
        |v| v["status"]["workflow"]["status"] == "succeeded",
    );
    assert_eq!(step(&st, "deploy-all")["phase"], "succeeded", "{st}");
    let image = |ns: &str, name: &str| {
        ok(
            &hub.kubectl(&[
                "get",
                "deploy",
                name,
                "-n",
                ns,
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ]),
            &format!("deployment {ns}/{name}"),
        )
    };
    // apply-component: the step's input went into the component's properties.image.
    assert_eq!(image("default", "web"), "nginx:1.28");
    // deploy: the input was its policies, so it deployed to the topology's namespace.
    assert_eq!(image("staging", "api"), "nginx:1.27");
    let api_default = hub.kubectl(&["get", "deploy", "api", "-n", "default"]);
    assert!(!api_default.status.success(), "deploy ignored its input");
    hub.stop();
}
