//! `sail cue export` over KubeVela's conformance cases, through the corpus's own runner
//! (../shared/conformance/run-cases.sh --current), exactly as the README of the corpus says an
//! evaluator is checked. A case may fail only if it carries a `note` (current CUE and the v0.4
//! oracle are known to differ there) and docs/conformance.md explains it.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn corpus() -> PathBuf {
    let p = common::repo_root().join("../shared/conformance");
    assert!(
        p.join("run-cases.sh").exists(),
        "the conformance corpus is missing at {}: it must sit beside the repository as ../shared",
        p.display()
    );
    p
}

#[test]
fn kubevela_cases_through_sail_cue_export() {
    let corpus = corpus();
    let out = Command::new("bash")
        .arg(corpus.join("run-cases.sh"))
        .args(["--current", "-j", "2", "kubevela", "--", common::SAIL])
        .args(["cue", "export", "--out", "json", "-e", "{expr}", "{file}"])
        .current_dir(&corpus)
        .output()
        .expect("run run-cases.sh (needs bash and python3)");
    let stdout = common::text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let (passed, failed) = parse_counts(&last).unwrap_or_else(|| {
        panic!(
            "run-cases.sh did not end with `N passed, N failed`:\n{stdout}\n{}",
            common::text(&out.stderr)
        )
    });
    assert!(passed >= 350, "too few cases ran: {last}");
    let explained = std::fs::read_to_string(common::repo_root().join("docs/conformance.md"))
        .unwrap_or_default();
    let mut unexplained = Vec::new();
    for line in stdout.lines().filter(|l| l.starts_with("FAIL ")) {
        let case = line["FAIL ".len()..]
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let noted = corpus.join("kubevela").join(&case).join("note").exists();
        let name = case.rsplit('/').next().unwrap_or_default();
        if !(noted && explained.contains(name)) {
            unexplained.push(line.to_string());
        }
    }
    assert!(
        unexplained.is_empty(),
        "{failed} failed; these are neither noted in the corpus nor explained in docs/conformance.md:\n{}",
        unexplained.join("\n")
    );
}

fn parse_counts(line: &str) -> Option<(usize, usize)> {
    let (p, rest) = line.split_once(" passed, ")?;
    let f = rest.split_whitespace().next()?;
    Some((p.trim().parse().ok()?, f.parse().ok()?))
}
