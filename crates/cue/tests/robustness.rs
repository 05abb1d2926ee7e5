//! No input may panic, hang or overflow the stack: truncated and mutated corpus files,
//! pathological nesting and runaway recursion must all end in a value or an error.

use std::path::Path;

fn run(src: &str) {
    let rt = cue::Runtime::with_limits(cue::Limits {
        max_depth: 400,
        max_steps: 200_000,
        max_bytes: 16 << 20,
    });
    if let Ok(v) = rt.compile("fuzz.cue", src).and_then(|p| p.eval()) {
        let _ = v.validate();
        let _ = v.to_json();
    }
}

#[test]
fn truncated_and_mutated_inputs_do_not_panic() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kubevela/render");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus present")
        .flatten()
        .map(|e| e.path())
        .collect();
    cases.sort();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in cases.iter().step_by(16) {
        let src = std::fs::read_to_string(case.join("input.cue")).expect("input");
        let bytes = src.as_bytes();
        for _ in 0..6 {
            // truncate at a char boundary
            let mut cut = (next() as usize) % (bytes.len() + 1);
            while !src.is_char_boundary(cut) {
                cut -= 1;
            }
            run(&src[..cut]);
            // delete a small range
            let a = (next() as usize) % bytes.len().max(1);
            let b = (a + (next() as usize) % 40).min(bytes.len());
            let mut m = bytes[..a].to_vec();
            m.extend_from_slice(&bytes[b..]);
            run(&String::from_utf8_lossy(&m));
            // replace a byte with a syntax character
            let pos = (next() as usize) % bytes.len().max(1);
            let mut m = bytes.to_vec();
            let syntax = b"{}[]()\":,|&*!?_#@\\\n";
            m[pos] = syntax[(next() as usize) % syntax.len()];
            run(&String::from_utf8_lossy(&m));
        }
    }
}

#[test]
fn pathological_inputs_end_in_errors() {
    let deep_list = format!("a: {}1{}", "[".repeat(5000), "]".repeat(5000));
    let deep_struct = format!("a: {}1{}", "{b: ".repeat(5000), "}".repeat(5000));
    let deep_parens = format!("a: {}1{}", "(".repeat(5000), ")".repeat(5000));
    for src in [
        deep_list.as_str(),
        deep_struct.as_str(),
        deep_parens.as_str(),
        "#L: {next: #L}\nx: #L",
        "a: b\nb: a\nc: a + 1",
        "x: [for i in list.Range(0, 1000000, 1) {i}]\nimport \"list\"",
        "import \"strings\"\nx: strings.Repeat(\"ab\", 100000000)",
        "a: \"\\(a)x\"",
        "#T: {sub: #T | null}\nv: #T",
        "l: [1, 2] + l",
        "\"\\u",
        "a: 1Ki + 0x + _|",
    ] {
        run(src);
    }
    // A program exceeding the step limit reports it.
    let rt = cue::Runtime::with_limits(cue::Limits {
        max_depth: 100,
        max_steps: 1000,
        max_bytes: 1 << 20,
    });
    let p = rt.compile("t.cue", "x: [for i in [1,2,3,4,5,6,7,8,9,10] for j in [1,2,3,4,5,6,7,8,9,10] for k in [1,2,3,4,5,6,7,8,9,10] {i*j*k}]").expect("compile");
    let r = p.eval().and_then(|v| v.to_json());
    assert!(r.is_err(), "step limit not enforced");
}
