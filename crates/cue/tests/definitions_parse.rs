//! Every KubeVela definition file of the corpus parses, and the source text of its
//! `template: { ... }` field can be sliced from the spans (what `render` needs).

use std::path::Path;

#[test]
fn all_definitions_parse_and_templates_slice() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/kubevela/definitions");
    assert!(root.is_dir(), "definitions not found at {}", root.display());
    let mut n = 0;
    let mut failures = Vec::new();
    for kind in ["component", "trait", "policy", "workflow-step"] {
        let Ok(rd) = std::fs::read_dir(root.join(kind)) else {
            continue;
        };
        for f in rd.flatten() {
            let p = f.path();
            if p.extension().is_none_or(|e| e != "cue") {
                continue;
            }
            let src = std::fs::read_to_string(&p).expect("read");
            n += 1;
            match cue::parse(&p.display().to_string(), &src) {
                Err(e) => failures.push(format!("{}: {e}", p.display())),
                Ok(file) => {
                    let template = file.body.decls.iter().find_map(|d| match d {
                        cue::ast::Decl::Field(f) if matches!(&f.label, cue::ast::Label::Ident(n, _) if n == "template") => Some(f.value.span),
                        _ => None,
                    });
                    match template {
                        // workflow steps in the corpus are bare templates
                        None if kind == "workflow-step" => {}
                        Some(s) => {
                            let text = &src[s.start as usize..s.end as usize];
                            if !(text.starts_with('{') && text.ends_with('}')) {
                                failures.push(format!(
                                    "{}: template span does not cover a struct",
                                    p.display()
                                ));
                            }
                        }
                        None => {
                            failures.push(format!("{}: no top-level template field", p.display()))
                        }
                    }
                }
            }
        }
    }
    assert!(n > 100, "only {n} definition files found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
