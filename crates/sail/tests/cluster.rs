//! `sail cluster`: the registry of member clusters, through the real binary, against a hub
//! (`sail server`) and member kubelite clusters over HTTPS.

mod common;

use common::{HubProcess, ok, one_line_failure, start_members, text};

#[tokio::test(flavor = "multi_thread")]
async fn join_list_label_probe_export_detach() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let members = start_members(&["eu-1", "us-1"]).await;

    let joined = hub.join(&members[0], "eu-1", "region=eu,tier=prod");
    assert!(joined.contains("cluster eu-1 joined"), "{joined}");
    assert!(joined.contains("ServiceAccountToken"), "{joined}");
    hub.join(&members[1], "us-1", "region=us");

    // KubeVela's format: a Secret in vela-system with the credential-type label and the labels.
    let secret = ok(
        &hub.kubectl(&["get", "secret", "eu-1", "-n", "vela-system", "-o", "json"]),
        "get the cluster Secret",
    );
    let secret: serde_json::Value = serde_json::from_str(&secret).unwrap();
    assert_eq!(
        secret["metadata"]["labels"]["cluster.core.oam.dev/cluster-credential-type"],
        "ServiceAccountToken"
    );
    assert_eq!(secret["metadata"]["labels"]["region"], "eu");
    for key in ["endpoint", "ca.crt", "token"] {
        assert!(secret["data"][key].is_string(), "data.{key} in {secret}");
    }

    // A name that is taken is refused; nothing changes.
    let kc = members[1].kubeconfig_path();
    let taken = hub.sail(&["cluster", "join", kc.to_str().unwrap(), "--name", "eu-1"]);
    let line = one_line_failure(&taken, "join under a taken name");
    assert!(line.contains("already registered"), "{line}");

    let list = ok(&hub.sail(&["cluster", "list"]), "sail cluster list");
    let rows: Vec<&str> = list.lines().collect();
    let row = |name: &str| {
        rows.iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in\n{list}"))
            .to_string()
    };
    for name in ["local", "eu-1", "us-1"] {
        assert!(row(name).contains(" yes "), "{name} reachable:\n{list}");
    }
    assert!(row("eu-1").contains("region=eu,tier=prod"), "{list}");

    ok(
        &hub.sail(&["cluster", "labels", "add", "us-1", "zone=a"]),
        "labels add",
    );
    let out = ok(
        &hub.sail(&["cluster", "labels", "del", "eu-1", "tier"]),
        "labels del",
    );
    assert!(out.contains("region=eu") && !out.contains("tier"), "{out}");
    let missing = hub.sail(&["cluster", "labels", "del", "eu-1", "nope"]);
    assert!(one_line_failure(&missing, "del a missing label").contains("no label \"nope\""));

    let probe = ok(&hub.sail(&["cluster", "probe", "us-1"]), "probe");
    assert!(
        probe.contains("reachable") && probe.contains("node"),
        "{probe}"
    );

    // export-config: kubectl reaches a member through the hub's proxy with the hub's token only.
    let exported = ok(
        &hub.sail(&["cluster", "export-config", "eu-1"]),
        "export-config",
    );
    assert!(exported.contains("/clusters/eu-1/proxy"), "{exported}");
    assert!(!exported.contains(&std::fs::read_to_string(members[0].kubeconfig_path()).unwrap()));
    let exported_path = dir.path().join("members.kubeconfig");
    std::fs::write(&exported_path, &exported).unwrap();
    members[0].apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: only-on-eu\n  namespace: default\ndata:\n  k: v\n",
    );
    let via_proxy = testkit::kubectl(
        &exported_path,
        &[
            "get",
            "configmap",
            "only-on-eu",
            "-n",
            "default",
            "-o",
            "jsonpath={.data.k}",
        ],
    );
    assert_eq!(testkit::ok_stdout(&via_proxy), "v");
    // Writes go through too, and land on the member.
    let created = testkit::kubectl(
        &exported_path,
        &[
            "create",
            "configmap",
            "from-hub",
            "-n",
            "default",
            "--from-literal=a=b",
        ],
    );
    testkit::ok_stdout(&created);
    let on_member = members[0].kubectl(&["get", "configmap", "from-hub", "-n", "default"]);
    testkit::ok_stdout(&on_member);
    // Without the hub's token the proxy answers 401 and forwards nothing.
    let anon = testkit::kubectl(
        &exported_path,
        &[
            "--token",
            "wrong",
            "get",
            "configmap",
            "only-on-eu",
            "-n",
            "default",
        ],
    );
    assert!(!anon.status.success());
    assert!(
        text(&anon.stderr).contains("Unauthorized"),
        "{}",
        text(&anon.stderr)
    );

    // An application whose topology names us-1 keeps it from being detached.
    let app = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: spread\n  namespace: default\nspec:\n  components:\n  - name: web\n    type: webservice\n    properties:\n      image: nginx\n  policies:\n  - name: where\n    type: topology\n    properties:\n      clusterLabelSelector:\n        region: us\n  workflow:\n    steps:\n    - name: hold\n      type: suspend\n";
    let applied = testkit::kubectl_stdin(&hub.kubeconfig(), &["apply", "-f", "-"], app);
    testkit::ok_stdout(&applied);
    let refused = hub.sail(&["cluster", "detach", "us-1"]);
    let line = one_line_failure(&refused, "detach a cluster in use");
    assert!(line.contains("default/spread"), "{line}");
    let refused = hub.sail(&["cluster", "rename", "us-1", "us-2"]);
    assert!(one_line_failure(&refused, "rename a cluster in use").contains("default/spread"));

    // eu-1 is not used: rename it, then detach it.
    ok(&hub.sail(&["cluster", "rename", "eu-1", "eu-2"]), "rename");
    let list = ok(&hub.sail(&["cluster", "list"]), "list after rename");
    assert!(list.contains("eu-2") && !list.contains("eu-1 "), "{list}");
    ok(&hub.sail(&["cluster", "detach", "eu-2"]), "detach");
    let forced = ok(
        &hub.sail(&["cluster", "detach", "us-1", "--force"]),
        "detach --force",
    );
    assert!(forced.contains("--force"), "{forced}");
    let list = ok(&hub.sail(&["cluster", "list"]), "list after detach");
    assert_eq!(list.lines().count(), 2, "header and local only:\n{list}");

    // The proxy forgets detached clusters.
    let gone = testkit::kubectl(&exported_path, &["get", "configmap", "only-on-eu"]);
    assert!(!gone.status.success());
    hub.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn join_refuses_what_the_hub_could_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());

    // A kubeconfig whose user runs an exec plugin: the hub cannot run it.
    let exec = dir.path().join("exec.kubeconfig");
    std::fs::write(
        &exec,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:1\n    certificate-authority-data: UEVN\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: gke-gcloud-auth-plugin\n",
    )
    .unwrap();
    let out = hub.sail(&["cluster", "join", exec.to_str().unwrap(), "--name", "gke"]);
    let line = one_line_failure(&out, "join with an exec plugin");
    assert!(
        line.contains("exec.kubeconfig") && line.contains("exec plugin"),
        "{line}"
    );

    // A member that does not answer is not registered.
    let members = start_members(&["gone"]).await;
    let kc = dir.path().join("gone.kubeconfig");
    std::fs::copy(members[0].kubeconfig_path(), &kc).unwrap();
    for m in members {
        m.shutdown().await;
    }
    let out = hub.sail(&["cluster", "join", kc.to_str().unwrap(), "--name", "gone"]);
    let line = one_line_failure(&out, "join an unreachable cluster");
    assert!(
        line.contains("not reachable") && line.contains("nothing was registered"),
        "{line}"
    );

    let bad_name = hub.sail(&["cluster", "join", kc.to_str().unwrap(), "--name", "local"]);
    assert!(one_line_failure(&bad_name, "join as local").contains("hub"));

    let list = ok(&hub.sail(&["cluster", "list"]), "list");
    assert_eq!(list.lines().count(), 2, "nothing registered:\n{list}");
    // The member's credentials never reach the hub's log.
    assert!(!hub.log().contains("token:"), "{}", hub.log());
    hub.stop();
}
