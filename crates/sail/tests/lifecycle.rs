//! Rollback and deletion through the CLI: `sail revision rollback`, `sail workflow rollback`,
//! and `sail delete --wait` saying what it kept.

mod common;

use common::{HubProcess, ok, one_line_failure, text, wait_until};
use std::time::Duration;

fn app(image: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\n  namespace: default\nspec:\n  components:\n  - name: web\n    type: webservice\n    properties:\n      image: {image}\n    traits:\n    - type: storage\n      properties:\n        pvc:\n        - name: data\n          mountPath: /data\n"
    )
}

fn wait_for_image(hub: &HubProcess, want: &str) {
    wait_until(&format!("image {want}"), Duration::from_secs(60), || {
        let out = hub.kubectl(&[
            "get",
            "deployment",
            "web",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]);
        let image = text(&out.stdout);
        (!out.status.success() || image != want).then(|| format!("image {image:?}"))
    });
}

#[test]
fn rollback_then_delete_reports_the_kept_volume_claim() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let file = dir.path().join("app.yaml");
    for image in ["nginx:1.26", "nginx:1.27"] {
        std::fs::write(&file, app(image)).unwrap();
        ok(
            &hub.sail(&["up", "-f", file.to_str().unwrap(), "--wait"]),
            &format!("sail up {image}"),
        );
    }
    wait_for_image(&hub, "nginx:1.27");

    let bad = hub.sail(&["revision", "rollback", "shop", "--to", "shop-v9"]);
    let line = one_line_failure(&bad, "rollback to a revision that does not exist");
    assert!(
        line.contains("shop-v1") && line.contains("shop-v2"),
        "{line}"
    );

    let out = ok(&hub.sail(&["revision", "rollback", "shop"]), "rollback");
    assert!(out.contains("rolled back to shop-v1"), "{out}");
    wait_for_image(&hub, "nginx:1.26");
    // The identical revision is reused, not copied.
    let revs = ok(&hub.sail(&["revision", "list", "shop"]), "revision list");
    assert!(!revs.contains("shop-v3"), "{revs}");

    // And forward again through the workflow command: the last good revision other than the
    // current one (shop-v1, whose rollout above is done) is shop-v2.
    let out = ok(
        &hub.sail(&["workflow", "rollback", "shop"]),
        "workflow rollback",
    );
    assert!(out.contains("rolled back to shop-v2"), "{out}");
    wait_for_image(&hub, "nginx:1.27");

    let out = ok(&hub.sail(&["delete", "shop", "--wait"]), "delete --wait");
    assert!(out.contains("kept"), "{out}");
    assert!(
        out.contains("PersistentVolumeClaim") && out.contains("data"),
        "{out}"
    );
    let pvc = hub.kubectl(&["get", "pvc", "data", "-n", "default"]);
    assert!(pvc.status.success(), "the claim is still there");
    let gone = hub.kubectl(&["get", "deployment", "web", "-n", "default"]);
    assert!(!gone.status.success(), "the deployment is gone");
    hub.stop();
}
