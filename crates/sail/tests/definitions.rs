//! `sail def apply | get | list` against a running hub: a definition written for KubeVela is
//! applied at run time and used by an application without a restart.

mod common;

use common::{HubProcess, ok, one_line_failure, text, wait_until};
use std::time::Duration;

const TRAIT: &str = r#"// A trait written the KubeVela way.
"team-label": {
	type: "trait"
	description: "Adds a team label to the workload"
	attributes: appliesToWorkloads: ["deployments.apps"]
}
template: {
	patch: metadata: labels: team: parameter.team
	parameter: team: string
}
"#;

const BROKEN: &str =
    "\"broken\": {\n\ttype: \"trait\"\n}\ntemplate: {\n\tpatch: metadata: labels: x: ]\n}\n";

const YAML_DEF: &str = r#"apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata:
  name: plain-config
spec:
  workload:
    definition:
      apiVersion: v1
      kind: ConfigMap
  schematic:
    cue:
      template: |
        output: {
          apiVersion: "v1"
          kind: "ConfigMap"
          metadata: name: context.name
          data: parameter.data
        }
        parameter: data: [string]: string
"#;

#[test]
fn apply_get_list_and_use_a_definition_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path());
    let trait_file = dir.path().join("team-label.cue");
    std::fs::write(&trait_file, TRAIT).unwrap();

    // --dry-run prints the object and writes nothing.
    let dry = ok(
        &hub.sail(&["def", "apply", trait_file.to_str().unwrap(), "--dry-run"]),
        "def apply --dry-run",
    );
    assert!(dry.contains("kind: TraitDefinition"), "{dry}");
    let absent = hub.kubectl(&["get", "traitdefinition", "team-label", "-n", "vela-system"]);
    assert!(!absent.status.success(), "dry-run wrote the definition");

    let applied = ok(
        &hub.sail(&["def", "apply", trait_file.to_str().unwrap()]),
        "def apply",
    );
    assert!(
        applied.contains("trait team-label applied in vela-system"),
        "{applied}"
    );

    let list = ok(&hub.sail(&["def", "list"]), "def list");
    let row = list
        .lines()
        .find(|l| l.trim_start().starts_with("team-label "))
        .unwrap_or_else(|| panic!("team-label not listed:\n{list}"));
    assert!(row.contains("vela-system/team-label"), "{row}");

    let got = ok(&hub.sail(&["def", "get", "team-label"]), "def get");
    assert!(
        got.contains("kind: TraitDefinition") && got.contains("parameter.team"),
        "{got}"
    );
    let template = ok(
        &hub.sail(&["def", "get", "webservice", "--template"]),
        "def get --template",
    );
    assert!(template.contains("parameter") && !template.contains("kind: ComponentDefinition"));
    let typo = hub.sail(&["def", "get", "webservervice"]);
    assert!(one_line_failure(&typo, "def get a typo").contains("did you mean \"webservice\""));

    // YAML definition objects apply the same way.
    let yaml_file = dir.path().join("plain-config.yaml");
    std::fs::write(&yaml_file, YAML_DEF).unwrap();
    ok(
        &hub.sail(&["def", "apply", yaml_file.to_str().unwrap()]),
        "def apply yaml",
    );

    // Used at once by an application, no restart.
    let app = dir.path().join("app.yaml");
    std::fs::write(
        &app,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: labelled\n  namespace: default\nspec:\n  components:\n  - name: web\n    type: webservice\n    properties:\n      image: nginx\n    traits:\n    - type: team-label\n      properties:\n        team: payments\n  - name: settings\n    type: plain-config\n    properties:\n      data:\n        mode: fast\n",
    )
    .unwrap();
    ok(
        &hub.sail(&["up", "-f", app.to_str().unwrap(), "--wait"]),
        "sail up with the new definitions",
    );
    let label = ok(
        &hub.kubectl(&[
            "get",
            "deployment",
            "web",
            "-n",
            "default",
            "-o",
            "jsonpath={.metadata.labels.team}",
        ]),
        "read the label",
    );
    assert_eq!(label, "payments");
    wait_until(
        "the configmap with mode fast",
        Duration::from_secs(30),
        || {
            let cm = hub.kubectl(&[
                "get",
                "configmap",
                "settings",
                "-n",
                "default",
                "-o",
                "jsonpath={.data.mode}",
            ]);
            let mode = text(&cm.stdout);
            (!cm.status.success() || mode != "fast").then(|| format!("mode {mode:?}"))
        },
    );

    // A definition that does not compile is refused with its line, and nothing is written.
    let broken = dir.path().join("broken.cue");
    std::fs::write(&broken, BROKEN).unwrap();
    let out = hub.sail(&["def", "apply", broken.to_str().unwrap()]);
    let line = one_line_failure(&out, "apply a broken definition");
    assert!(line.contains("broken.cue:5"), "{line}");
    let absent = hub.kubectl(&["get", "traitdefinition", "broken", "-n", "vela-system"]);
    assert!(!absent.status.success(), "a broken definition was written");

    let not_def = dir.path().join("not-a-def.yaml");
    std::fs::write(
        &not_def,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .unwrap();
    let out = hub.sail(&["def", "apply", not_def.to_str().unwrap()]);
    assert!(
        one_line_failure(&out, "apply a ConfigMap as a definition").contains("not a definition")
    );
    hub.stop();
}
