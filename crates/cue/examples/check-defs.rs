//! Dev helper: compile and validate every definition template under a directory
//! (`check-defs DIR`), printing non-incomplete errors.

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_default();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for p in files {
        let Ok(src) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Ok(file) = cue::parse("def.cue", &src) else {
            println!("{}: parse error", p.display());
            continue;
        };
        let imports = file
            .imports
            .iter()
            .map(|i| format!("import \"{}\"\n", i.path))
            .collect::<String>();
        let Some(t) = file.body.decls.iter().find_map(|d| match d {
            cue::ast::Decl::Field(f) if matches!(&f.label, cue::ast::Label::Ident(n, _) if n == "template") => Some(f.value.span),
            _ => None,
        }) else {
            continue;
        };
        let body = &src[t.start as usize + 1..t.end as usize - 1];
        let text = format!("{imports}{body}\ncontext: _\nparameter: _\n");
        match cue::Runtime::new()
            .compile("t.cue", &text)
            .and_then(|p| p.eval())
            .and_then(|v| v.validate())
        {
            Ok(()) => {}
            Err(e) => println!(
                "{}: {e}",
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        }
    }
}
