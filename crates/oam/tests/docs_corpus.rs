//! Every Application in KubeVela's documentation (`../shared/reference/kubevela-docs`)
//! decodes, round-trips and validates, except the few doc snippets that are not valid
//! objects (listed with the reason); those fail with a clean, located error.

mod common;

use std::path::{Path, PathBuf};

use common::reference_dir;

/// Doc files whose Application snippets are not valid objects (placeholders, shell heredocs,
/// typos), with the reason. They must fail with an error, never a panic.
const KNOWN_BAD: &[(&str, &str)] = &[
    (
        "end-user/components/references.md",
        "tab character inside a plain scalar",
    ),
    ("end-user/policies/gc.md", "shell heredoc around the YAML"),
    (
        "end-user/version-control.md",
        "placeholder syntax (`*`, `<...>`) in place of values",
    ),
    (
        "end-user/workflow/built-in-workflow-defs.md",
        "outputs use `fromKey` instead of `valueFrom`",
    ),
    (
        "end-user/workflow/if-condition.md",
        "traits written as a map",
    ),
    (
        "getting-started/core-concept.md",
        "workflow written as a list of steps (schematic overview)",
    ),
    (
        "platform-engineers/cue/parameter-markers.md",
        "spec elided as `...`",
    ),
    (
        "reference/topology-rule.md",
        "shell heredoc around the YAML",
    ),
    (
        "end-user/workflow/dependency.md",
        "application name `dependsOn-app` is not DNS-1123",
    ),
    (
        "platform-engineers/traits/customize-trait.md",
        "properties elided as `...`",
    ),
];

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "md") {
            out.push(path);
        }
    }
}

fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```yaml") || trimmed.starts_with("```yml") => {
                current = Some(String::new())
            }
            Some(block) if trimmed.starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn kubevela_doc_applications() {
    let root = reference_dir("kubevela-docs");
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    files.sort();
    let (mut decoded, mut failures) = (0, Vec::new());
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        for block in yaml_blocks(&text) {
            if !(block.contains("kind: Application\n") && block.contains("core.oam.dev/v1beta1")) {
                continue;
            }
            let result = oam::parse_objects_yaml(&rel, &block).and_then(|objects| {
                for o in objects {
                    if let oam::OamObject::Application(app) = o {
                        app.validate()?;
                        let json =
                            serde_json::to_value(&app).map_err(|e| oam::Error::Serialize {
                                what: rel.clone(),
                                message: e.to_string(),
                            })?;
                        let again: oam::Application =
                            serde_json::from_value(json).map_err(|e| oam::Error::Serialize {
                                what: rel.clone(),
                                message: e.to_string(),
                            })?;
                        assert_eq!(again, app, "{rel}: JSON round trip changed the application");
                        decoded += 1;
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                let shown = e.to_string();
                assert!(!shown.is_empty());
                failures.push((rel.clone(), shown));
            }
        }
    }
    let unexpected: Vec<_> = failures
        .iter()
        .filter(|(f, _)| !KNOWN_BAD.iter().any(|(k, _)| k == f))
        .collect();
    assert!(
        unexpected.is_empty(),
        "doc Applications that fail: {unexpected:#?}"
    );
    assert!(decoded >= 140, "only {decoded} doc Applications decoded");
    eprintln!(
        "{decoded} doc Applications decoded; {} known-bad snippets rejected",
        failures.len()
    );
}
