//! `sail dry-run` and `sail def`: rendering without a cluster.

mod common;

use common::{SAIL, ok, one_line_failure, repo_root};
use std::process::Command;

fn sail(args: &[&str]) -> std::process::Output {
    Command::new(SAIL)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run sail")
}

#[test]
fn dry_run_offline_renders_the_quickstart() {
    let app = repo_root().join("examples/quickstart/app.yaml");
    let out = ok(
        &sail(&["dry-run", "--offline", "-f", app.to_str().expect("path")]),
        "sail dry-run",
    );
    assert!(out.contains("kind: Deployment"), "{out}");
    assert!(out.contains("replicas: 2"), "scaler applied:\n{out}");
    assert!(out.contains("team: platform"), "labels applied:\n{out}");
    assert!(out.contains("kind: Service"), "exposed port:\n{out}");
    assert!(out.contains("app.oam.dev/appRevision: hello-v1"), "{out}");
}

#[test]
fn dry_run_with_kubevela_definitions_from_a_folder() {
    // KubeVela's own webservice definition, loaded with -d, renders the quick start too.
    let defs =
        repo_root().join("../shared/conformance/kubevela/definitions/component/webservice.cue");
    assert!(
        defs.exists(),
        "conformance corpus missing at {}",
        defs.display()
    );
    let app = repo_root().join("examples/quickstart/app.yaml");
    let out = ok(
        &sail(&[
            "dry-run",
            "--offline",
            "-f",
            app.to_str().expect("path"),
            "-d",
            defs.to_str().expect("path"),
        ]),
        "sail dry-run -d",
    );
    assert!(out.contains("containerPort: 80"), "{out}");
}

#[test]
fn def_vet_and_render() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = repo_root().join("definitions/trait/scaler.cue");
    let out = ok(
        &sail(&["def", "vet", good.to_str().expect("path")]),
        "sail def vet",
    );
    assert!(out.contains("trait scaler: ok"), "{out}");
    let out = ok(
        &sail(&["def", "render", good.to_str().expect("path")]),
        "sail def render",
    );
    assert!(
        out.contains("kind: TraitDefinition") && out.contains("name: scaler"),
        "{out}"
    );

    let bad = dir.path().join("bad.cue");
    std::fs::write(&bad, "bad: {\n\ttype: \"trait\"\n}\ntemplate: {\n\tpatch: spec: replicas: parameter.replicas +\n}\n").expect("write");
    let line = one_line_failure(
        &sail(&["def", "vet", bad.to_str().expect("path")]),
        "vet of a broken file",
    );
    assert!(line.contains("bad.cue"), "names the file: {line}");
}

#[test]
fn dry_run_applies_topology_and_override_policies_per_cluster() {
    let app = repo_root().join("examples/multi-env/app.yaml");
    let out = ok(
        &sail(&["dry-run", "--offline", "-f", app.to_str().expect("path")]),
        "sail dry-run multi-env",
    );
    // One document per object; its header says where it goes.
    let docs: Vec<&str> = out
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    let deployment = |cluster: &str| {
        docs.iter()
            .find(|d| d.contains(&format!("cluster {cluster},")) && d.contains("kind: Deployment"))
            .unwrap_or_else(|| panic!("no Deployment for {cluster} in:\n{out}"))
            .to_string()
    };
    let staging = deployment("staging");
    assert!(staging.contains("step deploy-staging"), "{staging}");
    assert!(
        staging.contains("cluster staging, namespace shop-staging,"),
        "{staging}"
    );
    assert!(staging.contains("image: nginx:1.27-rc"), "{staging}");
    assert!(staging.contains("replicas: 1"), "{staging}");
    let production = deployment("production");
    assert!(
        production.contains("cluster production, namespace shop,"),
        "{production}"
    );
    assert!(production.contains("image: nginx:1.27\n"), "{production}");
    assert!(production.contains("replicas: 3"), "{production}");
    assert!(
        !out.contains("cluster local"),
        "nothing goes to the hub:\n{out}"
    );
}

#[test]
fn dry_run_names_the_policy_that_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.yaml");
    std::fs::write(
        &app,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: a\nspec:\n  components:\n  - name: web\n    type: webservice\n    properties:\n      image: nginx\n  workflow:\n    steps:\n    - name: go\n      type: deploy\n      properties:\n        policies: [\"everywhere\"]\n",
    )
    .expect("write");
    let out = sail(&["dry-run", "--offline", "-f", app.to_str().expect("path")]);
    let line = one_line_failure(&out, "dry-run with an undefined policy");
    assert!(
        line.contains("step go") && line.contains("everywhere"),
        "{line}"
    );
}

#[test]
fn dry_run_follows_a_workflow_ref_and_external_policies_in_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.yaml");
    let objects = "apiVersion: core.oam.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: prod\ntype: topology\nproperties:\n  clusters: [\"prod-1\"]\n  namespace: shop\n---\napiVersion: core.oam.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: ha\ntype: override\nproperties:\n  components:\n  - type: webservice\n    traits:\n    - type: scaler\n      properties:\n        replicas: 3\n---\napiVersion: core.oam.dev/v1alpha1\nkind: Workflow\nmetadata:\n  name: release\nsteps:\n- name: deploy-prod\n  type: deploy\n  properties:\n    policies: [\"ha\", \"prod\"]\n";
    let app = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: a\nspec:\n  components:\n  - name: web\n    type: webservice\n    properties:\n      image: nginx\n  workflow:\n    ref: release\n";
    std::fs::write(&file, format!("{objects}---\n{app}")).expect("write");
    let out = ok(
        &sail(&["dry-run", "--offline", "-f", file.to_str().expect("path")]),
        "dry-run with a workflow ref",
    );
    assert!(
        out.contains("step deploy-prod, cluster prod-1, namespace shop,"),
        "{out}"
    );
    assert!(out.contains("replicas: 3"), "{out}");

    // Without the Workflow object the ref cannot be followed, and the message says so.
    std::fs::write(&file, app).expect("write");
    let out = sail(&["dry-run", "--offline", "-f", file.to_str().expect("path")]);
    let line = one_line_failure(&out, "dry-run with a dangling ref");
    assert!(line.contains("no Workflow \"release\""), "{line}");
}
