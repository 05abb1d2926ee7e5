#![allow(clippy::collapsible_if)]
//! cue-lang/cue's own evaluator tests (../shared/conformance/cue-lang/testdata, v0.14.1).
//!
//! For archives with an authoritative `out/json`, the whole-file export is compared. For the
//! others the `out/evalalpha` (v0.14's default evaluator) or `out/eval` debug output is read
//! coarsely: every concrete scalar leaf must match our value at that path, and every leaf error
//! (`_|_` with no fields) must be an error (or, for `[incomplete]`, a non-concrete value) here.
//!
//! Ratchet: `tests/cuelang-known-failures.txt` lists archives allowed to fail today.
//! `CUE_LANG_ONLY=<substring>` runs a subset, `CUE_LANG_VERBOSE=1` prints the known failures.
//!
//! `cuelang_eval_oracle` compares our `cue eval` text ([`cue::Program::eval_syntax`] after a
//! whole-file validation, as `sail cue eval` does) with the oracle's (`cue eval` of CUE
//! v0.4, `<archive>.oracle-v0.4.eval.cue`, 58 archives). Ratchet:
//! `tests/cuelang-eval-known-differences.txt`, one archive per line with the reason it
//! differs (a v0.4/v0.14 difference, or our gap). `CUE_LANG_EVAL_DIFF=1` prints every diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/cue-lang")
}

fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        let t = line.trim_end();
        if t.starts_with("-- ") && t.ends_with(" --") && t.len() > 6 {
            out.push((t[3..t.len() - 3].to_string(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line);
        }
    }
    out
}

#[derive(Debug)]
enum Leaf {
    Json(serde_json::Value),
    Error,
    Incomplete,
}

/// Parses CUE's debug printer output into (path, leaf) checks.
fn parse_eval(text: &str) -> Vec<(String, Leaf)> {
    let body = match text.find("\nResult:\n") {
        Some(i) => &text[i + 9..],
        None => text,
    };
    let lines: Vec<&str> = body.lines().collect();
    let mut out = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    // Each open block: (is_error_block, had_fields, first comment, path, checks before it)
    let mut blocks: Vec<(bool, bool, String, String, usize)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() {
            continue;
        }
        if line == "}" || line.starts_with("})") || line == "})" {
            if let Some((is_err, had_fields, comment, path, start)) = blocks.pop() {
                // An error block whose own message names its path (`// [eval] y: …`, not a bare
                // `// [eval]` propagated from a child) is itself bottom: the fields the debug
                // printer shows inside it are diagnostics, so only the error is checked.
                let own = comment
                    .split_once("] ")
                    .is_some_and(|(_, m)| m.starts_with(&format!("{path}: ")));
                if is_err && !path.is_empty() && (own || !had_fields) {
                    out.truncate(start);
                    let leaf = if comment.contains("[incomplete]") || comment.contains("[cycle]") {
                        Leaf::Incomplete
                    } else {
                        Leaf::Error
                    };
                    out.push((path, leaf));
                }
                stack.pop();
            }
            continue;
        }
        if line.starts_with("//") {
            if let Some(b) = blocks.last_mut() {
                if b.2.is_empty() {
                    b.2 = line.to_string();
                }
            }
            continue;
        }
        // field line: `name: (kind){ ... }` or `name: (kind){`
        let Some(colon) = find_label_end(line) else {
            // e.g. `let X#18 = (_|_){`: not a field; skip its block so that its closing brace
            // does not close the enclosing field.
            // (or the multi-line form of a validator, `matchN(1, (#list){`, inside a value)
            if line.ends_with('{') && (line.starts_with("let ") || !blocks.is_empty()) {
                skip_block(&lines, &mut i);
            }
            continue;
        };
        let name = line[..colon].trim();
        let rest = line[colon + 1..].trim();
        if let Some(b) = blocks.last_mut() {
            b.1 = true;
        }
        let name = if name.starts_with('"') {
            serde_json::from_str::<String>(name).unwrap_or_default()
        } else if name.starts_with('_') && name.ends_with(')') && name.contains("(:") {
            // hidden labels are printed with their package: `_hidden(:p)`
            name[..name.find("(:").unwrap_or(name.len())].to_string()
        } else {
            name.to_string()
        };
        let other_pkg_hidden = name.starts_with('_') && name.ends_with(')');
        if other_pkg_hidden // `_x(mod.test/pkg)`: private to another package, not addressable
            || name.starts_with("let ")
            || name.contains(' ')
            || name.contains('?')
            || name.contains('!')
            || name.starts_with('[')
        {
            // skip let bindings, optional/required and pattern constraints (and their blocks)
            if rest.ends_with('{') {
                skip_block(&lines, &mut i);
            }
            continue;
        }
        let path = if stack.is_empty() {
            name.clone()
        } else {
            format!("{}.{}", stack.last().cloned().unwrap_or_default(), name)
        };
        if rest.contains("|(") {
            // a disjunction: its alternatives are not paths; skip to the balancing paren
            let mut depth: i64 =
                rest.matches('(').count() as i64 - rest.matches(')').count() as i64;
            while depth > 0 && i < lines.len() {
                let l = lines[i];
                depth += l.matches('(').count() as i64 - l.matches(')').count() as i64;
                i += 1;
            }
            continue;
        }
        if rest.starts_with("(_|_){//") && !rest.ends_with('}') {
            // an error leaf whose message is on the same line: `a: (_|_){// msg`, then `}`
            let leaf = if rest.contains("[incomplete]") || rest.contains("[cycle]") {
                Leaf::Incomplete
            } else {
                Leaf::Error
            };
            out.push((path, leaf));
            skip_block(&lines, &mut i);
            continue;
        }
        if rest.ends_with('{') && !rest.ends_with("}{") {
            let is_err = rest.starts_with("(_|_)");
            stack.push(path.clone());
            blocks.push((is_err, false, String::new(), path, out.len()));
            continue;
        }
        // single-line value: (kind){ value }
        if let Some(open) = rest.find("){ ") {
            let kind = &rest[1..open];
            let val = rest[open + 3..].trim_end_matches('}').trim();
            if kind == "_|_" {
                out.push((path, Leaf::Error));
                continue;
            }
            if ["int", "float", "string", "bool", "null", "number"].contains(&kind) {
                if let Ok(j) = serde_json::from_str::<serde_json::Value>(val) {
                    if j.is_number() || j.is_string() || j.is_boolean() || j.is_null() {
                        out.push((path, Leaf::Json(j)));
                    }
                }
            }
        }
    }
    let _ = &mut stack;
    out
}

/// Skips the lines of a block whose opening line was just read (`*i` is the next line).
fn skip_block(lines: &[&str], i: &mut usize) {
    let mut depth = 1;
    while *i < lines.len() && depth > 0 {
        let l = lines[*i].trim();
        // a block opens at a line ending in `{`, or at `(_|_){// msg` (message inline)
        if l.ends_with('{') || (l.contains("){//") && !l.starts_with("//")) {
            depth += 1;
        }
        if l == "}" || l.starts_with('}') {
            depth -= 1;
        }
        *i += 1;
    }
}

fn find_label_end(line: &str) -> Option<usize> {
    if line.starts_with('"') {
        let mut esc = false;
        for (i, c) in line.char_indices().skip(1) {
            if esc {
                esc = false;
                continue;
            }
            if c == '\\' {
                esc = true;
            } else if c == '"' {
                return line[i..].find(':').map(|j| i + j);
            }
        }
        return None;
    }
    line.find(": ")
}

fn numbers_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q || (p - q).abs() <= 1e-9 * p.abs().max(q.abs()),
            _ => x == y,
        },
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| numbers_equal(v, w)))
        }
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| numbers_equal(p, q))
        }
        _ => a == b,
    }
}

fn run_archive(path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let secs = sections(&text);
    let mut inputs: Vec<(String, String)> = secs
        .iter()
        .filter(|(n, _)| n.ends_with(".cue") && !n.contains('/'))
        .cloned()
        .collect();
    inputs.sort_by_key(|(n, _)| if n == "in.cue" { 0 } else { 1 });
    if inputs.is_empty() {
        if secs.is_empty() {
            // e.g. builtins/or.txtar in v0.14.1: a bare comment, no input and no expectation.
            return Ok(0);
        }
        return Err("no inputs".into());
    }
    let files: Vec<(&str, &str)> = inputs
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let get = |name: &str| secs.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone());
    let mut rt = cue::Runtime::new();
    for (path, pfiles) in archive_packages(&secs) {
        let pf: Vec<(&str, &str)> = pfiles
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        rt.register_package(&path, &pf);
    }
    let value = rt.compile_files(&files).and_then(|p| p.eval());
    if let Some(js) = get("out/json").filter(|s| !s.trim().is_empty()) {
        let want: serde_json::Value =
            serde_json::from_str(&js).map_err(|e| format!("bad out/json: {e}"))?;
        let got = value
            .and_then(|v| v.to_json())
            .map_err(|e| format!("export error: {e}"))?;
        return if numbers_equal(&want, &got) {
            Ok(1)
        } else {
            Err(format!("json mismatch:\n    want {want}\n    got  {got}"))
        };
    }
    let Some(ev) = get("out/evalalpha").or_else(|| get("out/eval")) else {
        return Ok(0);
    };
    let checks = parse_eval(&ev);
    let v = match value {
        Ok(v) => v,
        Err(e) => {
            // A compile error: acceptable only when the expectation is an error everywhere.
            if checks.iter().all(|(_, l)| !matches!(l, Leaf::Json(_))) {
                return Ok(1);
            }
            return Err(format!("compile/eval error: {e}"));
        }
    };
    let mut fails = Vec::new();
    for (p, leaf) in &checks {
        let got = v.lookup(p);
        match leaf {
            Leaf::Json(want) => match got.as_ref().map(|g| g.to_json()) {
                Some(Ok(g)) if numbers_equal(want, &g) => {}
                Some(Ok(g)) => fails.push(format!("{p}: want {want}, got {g}")),
                Some(Err(e)) => fails.push(format!("{p}: want {want}, got error {e}")),
                None => fails.push(format!("{p}: want {want}, not found")),
            },
            Leaf::Error => match &got {
                Some(g) if g.kind() == cue::Kind::Bottom => {}
                None => {}
                Some(g) => fails.push(format!(
                    "{p}: want error, got {:?}",
                    g.to_json().map(|j| j.to_string())
                )),
            },
            Leaf::Incomplete => match &got {
                Some(g)
                    if g.to_json().is_ok()
                        && g.kind() != cue::Kind::Struct
                        && g.kind() != cue::Kind::List =>
                {
                    fails.push(format!(
                        "{p}: want incomplete, got {:?}",
                        g.to_json().map(|j| j.to_string())
                    ))
                }
                _ => {}
            },
        }
    }
    if fails.is_empty() {
        Ok(checks.len())
    } else {
        Err(fails.join("\n    "))
    }
}

/// The CUE packages an archive's module provides, by import path: `cue.mod/pkg/<path>/*.cue`
/// and `<dir>/*.cue` under the module path of `cue.mod/module.cue`.
fn archive_packages(secs: &[(String, String)]) -> Vec<(String, Vec<(String, String)>)> {
    let module = secs
        .iter()
        .find(|(n, _)| n == "cue.mod/module.cue")
        .and_then(|(_, s)| {
            let l = s.lines().find(|l| l.trim_start().starts_with("module:"))?;
            let q = l.split('"').nth(1)?;
            Some(q.split('@').next().unwrap_or(q).to_string())
        });
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (name, src) in secs {
        let Some((dir, _)) = name.rsplit_once('/') else {
            continue;
        };
        if !name.ends_with(".cue") || dir == "cue.mod" {
            continue;
        }
        let path = if let Some(p) = dir.strip_prefix("cue.mod/pkg/") {
            p.to_string()
        } else if dir.starts_with("cue.mod/") || dir.starts_with("out/") {
            continue;
        } else if let Some(m) = &module {
            format!("{m}/{dir}")
        } else {
            continue;
        };
        match out.iter_mut().find(|(p, _)| *p == path) {
            Some((_, fs)) => fs.push((name.clone(), src.clone())),
            None => out.push((path, vec![(name.clone(), src.clone())])),
        }
    }
    out
}

fn known() -> BTreeSet<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cuelang-known-failures.txt");
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn cuelang_testdata() {
    let base = root().join("testdata");
    assert!(
        base.is_dir(),
        "cue-lang corpus not found at {}",
        base.display()
    );
    let only = std::env::var("CUE_LANG_ONLY").ok();
    let verbose = std::env::var("CUE_LANG_VERBOSE").is_ok();
    let known = known();
    let mut files = Vec::new();
    for d in std::fs::read_dir(&base).expect("read testdata").flatten() {
        if let Ok(rd) = std::fs::read_dir(d.path()) {
            for f in rd.flatten() {
                let p = f.path();
                if p.extension().is_some_and(|e| e == "txtar") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    let (mut pass, mut fail, mut skipped) = (0, 0, 0);
    let mut unexpected = Vec::new();
    let mut now_passing = Vec::new();
    for f in files {
        let name = f
            .strip_prefix(&base)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let r =
            std::panic::catch_unwind(|| run_archive(&f)).unwrap_or_else(|_| Err("panic".into()));
        match r {
            Ok(0) => skipped += 1,
            Ok(_) => {
                pass += 1;
                if known.contains(&name) {
                    now_passing.push(name);
                }
            }
            Err(e) => {
                fail += 1;
                if !known.contains(&name) {
                    unexpected.push(format!("FAIL {name}: {e}"));
                } else if verbose {
                    println!("known FAIL {name}: {e}");
                }
            }
        }
    }
    for u in &unexpected {
        println!("{u}");
    }
    for n in &now_passing {
        println!("NOW PASSING (remove from cuelang-known-failures.txt): {n}");
    }
    let total = pass + fail;
    println!(
        "cue-lang: {pass} passed, {fail} failed, {skipped} without comparable expectations ({:.1}%)",
        100.0 * pass as f64 / total.max(1) as f64
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected failures",
        unexpected.len()
    );
}

/// Our `sail cue eval` of an archive's root `.cue` files (in.cue first, as the oracle was
/// given them): the errors, one per line, when validation fails, else the CUE text.
fn eval_text(archive: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(archive).map_err(|e| e.to_string())?;
    let secs = sections(&text);
    let mut inputs: Vec<(String, String)> = secs
        .iter()
        .filter(|(n, _)| n.ends_with(".cue") && !n.contains('/'))
        .cloned()
        .collect();
    inputs.sort_by_key(|(n, _)| if n == "in.cue" { 0 } else { 1 });
    let files: Vec<(&str, &str)> = inputs
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let mut rt = cue::Runtime::new();
    for (path, pfiles) in archive_packages(&secs) {
        let pf: Vec<(&str, &str)> = pfiles
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        rt.register_package(&path, &pf);
    }
    let program = rt.compile_files(&files).map_err(|e| e.to_string())?;
    let value = program.eval().map_err(|e| e.to_string())?;
    let errs = value.errors();
    if !errs.is_empty() {
        return Err(errs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"));
    }
    program
        .eval_syntax(None, &cue::SyntaxOptions::default())
        .map_err(|e| e.to_string())
}

/// `tests/cuelang-eval-known-differences.txt`: archive → reason.
fn known_eval_differences() -> Vec<(String, String)> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cuelang-eval-known-differences.txt");
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((a, r)) => (a.to_string(), r.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[test]
fn cuelang_eval_oracle() {
    let base = root().join("testdata");
    let only = std::env::var("CUE_LANG_ONLY").ok();
    let show = std::env::var("CUE_LANG_EVAL_DIFF").is_ok();
    let known = known_eval_differences();
    for (a, reason) in &known {
        assert!(
            !reason.is_empty(),
            "{a}: a known difference needs its reason"
        );
    }
    let mut oracles = Vec::new();
    for d in std::fs::read_dir(&base).expect("read testdata").flatten() {
        if let Ok(rd) = std::fs::read_dir(d.path()) {
            for f in rd.flatten() {
                let p = f.path();
                if p.to_string_lossy().ends_with(".txtar.oracle-v0.4.eval.cue") {
                    oracles.push(p);
                }
            }
        }
    }
    oracles.sort();
    assert_eq!(oracles.len(), 58, "oracle eval files");
    let (mut same, mut differ) = (0, 0);
    let mut unexpected = Vec::new();
    let mut now_same = Vec::new();
    for o in &oracles {
        let s = o.to_string_lossy();
        let archive = PathBuf::from(s.trim_end_matches(".oracle-v0.4.eval.cue"));
        let name = archive
            .strip_prefix(&base)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.as_ref().is_some_and(|x| !name.contains(x.as_str())) {
            continue;
        }
        let want = std::fs::read_to_string(o).expect("oracle");
        let got = std::panic::catch_unwind(|| eval_text(&archive))
            .unwrap_or_else(|_| Err("panic".into()));
        let is_known = known.iter().any(|(a, _)| *a == name);
        let matches = got.as_ref().is_ok_and(|g| g.trim_end() == want.trim_end());
        if matches {
            same += 1;
            if is_known {
                now_same.push(name.clone());
            }
            continue;
        }
        differ += 1;
        let got_text = match &got {
            Ok(g) => g.clone(),
            Err(e) => format!("<error>\n{e}\n"),
        };
        if show || !is_known {
            let report = format!("{name}:\n--- oracle (v0.4)\n{want}--- ours\n{got_text}");
            if is_known {
                println!("known difference {report}");
            } else {
                unexpected.push(report);
            }
        }
    }
    for u in &unexpected {
        println!("UNEXPECTED DIFFERENCE {u}");
    }
    for n in &now_same {
        println!("NOW MATCHING (remove from cuelang-eval-known-differences.txt): {n}");
    }
    println!(
        "cue eval vs oracle: {same} match, {differ} differ of {}",
        same + differ
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected differences",
        unexpected.len()
    );
}
