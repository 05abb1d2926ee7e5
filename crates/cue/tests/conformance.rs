//! Conformance against ../shared/conformance/kubevela/{render,health}: each case folder's
//! `input.cue` is compiled and evaluated, the whole file validated (render cases), `expr`
//! exported and compared with `expected.current.*` or `expected.*`.
//!
//! Ratchet: `tests/known-failures.txt` lists cases allowed to fail today. Any other failure fails
//! the test; listed cases that now pass are reported so the list can shrink.
//! Set `CUE_CONF_ONLY=<substring>` to run a subset.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
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
        // Embedded JSON text (json.Marshal): key order depends on the CUE version, compare parsed.
        (J::String(x), J::String(y)) if x != y && (x.starts_with('{') || x.starts_with('[')) => {
            match (
                serde_json::from_str::<serde_json::Value>(x),
                serde_json::from_str::<serde_json::Value>(y),
            ) {
                (Ok(p), Ok(q)) => numbers_equal(&p, &q),
                _ => false,
            }
        }
        _ => a == b,
    }
}

enum Expect {
    Json(serde_json::Value),
    Error,
}

fn load_expect(dir: &Path) -> Option<Expect> {
    for name in [
        "expected.current.json",
        "expected.current.error",
        "expected.json",
        "expected.error",
    ] {
        let p = dir.join(name);
        if p.exists() {
            if name.ends_with(".error") {
                return Some(Expect::Error);
            }
            let text = std::fs::read_to_string(&p).ok()?;
            return serde_json::from_str(&text).ok().map(Expect::Json);
        }
    }
    None
}

fn run_case(dir: &Path, validate_whole: bool) -> Result<(), String> {
    let input = std::fs::read_to_string(dir.join("input.cue"))
        .map_err(|e| format!("read input.cue: {e}"))?;
    let expr = std::fs::read_to_string(dir.join("expr"))
        .map_err(|e| format!("read expr: {e}"))?
        .trim()
        .to_string();
    let expect = load_expect(dir).ok_or("no expected.* file")?;
    let got: Result<serde_json::Value, String> = (|| {
        let prog = cue::Runtime::new()
            .compile("input.cue", &input)
            .map_err(|e| e.to_string())?;
        let v = prog.eval().map_err(|e| e.to_string())?;
        if validate_whole {
            v.validate().map_err(|e| e.to_string())?;
        }
        let x = v
            .lookup(&expr)
            .ok_or_else(|| format!("{expr}: field not found"))?;
        let j = x.to_json().map_err(|e| e.to_string());
        // the streaming export gives the same text, or the same error
        let text = x.to_json_string(true).map_err(|e| e.to_string());
        let via_value = j
            .clone()
            .map(|j| serde_json::to_string_pretty(&j).unwrap_or_default());
        if text != via_value {
            return Err(format!(
                "to_json_string differs from to_json: {text:?} vs {via_value:?}"
            ));
        }
        j
    })();
    match (expect, got) {
        (Expect::Error, Err(_)) => Ok(()),
        (Expect::Error, Ok(v)) => Err(format!(
            "expected an error, got {}",
            truncate(&v.to_string())
        )),
        (Expect::Json(_), Err(e)) => Err(format!("error: {e}")),
        (Expect::Json(want), Ok(got)) => {
            if numbers_equal(&want, &got) {
                Ok(())
            } else {
                Err(format!(
                    "mismatch:\n    want {}\n    got  {}",
                    truncate(&want.to_string()),
                    truncate(&got.to_string())
                ))
            }
        }
    }
}

fn truncate(s: &str) -> String {
    if s.len() > 600 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(600).map(|x| x.0).unwrap_or(s.len())]
        )
    } else {
        s.to_string()
    }
}

fn known_failures() -> BTreeSet<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/known-failures.txt");
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn kubevela_conformance() {
    let root = corpus_root().join("kubevela");
    assert!(
        root.is_dir(),
        "conformance corpus not found at {} (expected ../shared/conformance next to the workspace)",
        root.display()
    );
    let only = std::env::var("CUE_CONF_ONLY").ok();
    let known = known_failures();
    let mut unexpected = Vec::new();
    let mut now_passing = Vec::new();
    let mut counts = Vec::new();
    for suite in ["render", "health"] {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(suite))
            .expect("read suite")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        assert!(!dirs.is_empty(), "no cases in {suite}");
        let (mut pass, mut fail) = (0, 0);
        for d in dirs {
            let name = format!(
                "{suite}/{}",
                d.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
                continue;
            }
            if std::env::var("CUE_CONF_TRACE").is_ok() {
                eprintln!("RUN {name}");
            }
            let r = std::panic::catch_unwind(|| run_case(&d, suite == "render"))
                .unwrap_or_else(|_| Err("panic".into()));
            let note = std::fs::read_to_string(d.join("note")).unwrap_or_default();
            let has_current = d.join("expected.current.json").exists()
                || d.join("expected.current.error").exists();
            if !has_current && note.to_lowercase().contains("informational") {
                // The recorded result is CUE v0.4's and known to differ from current CUE.
                match &r {
                    Ok(()) => println!("informational {name}: agrees with the v0.4 oracle"),
                    Err(e) => println!(
                        "informational {name}: differs from the v0.4 oracle: {}",
                        e.lines().next().unwrap_or("")
                    ),
                }
                continue;
            }
            match r {
                Ok(()) => {
                    pass += 1;
                    if known.contains(&name) {
                        now_passing.push(name);
                    }
                }
                Err(e) => {
                    fail += 1;
                    if !known.contains(&name) {
                        unexpected.push(format!("FAIL {name}: {e}"));
                    } else if std::env::var("CUE_CONF_VERBOSE").is_ok() {
                        println!("known FAIL {name}: {e}");
                    }
                }
            }
        }
        counts.push(format!("{suite}: {pass} passed, {fail} failed"));
    }
    for u in &unexpected {
        println!("{u}");
    }
    for n in &now_passing {
        println!("NOW PASSING (remove from known-failures.txt): {n}");
    }
    for c in &counts {
        println!("{c}");
    }
    assert!(
        unexpected.is_empty(),
        "{} unexpected failures (see above); {}",
        unexpected.len(),
        counts.join("; ")
    );
}
