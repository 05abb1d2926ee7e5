//! Criterion benchmarks: compile+export of the bench corpus, compile of every KubeVela
//! definition of the conformance corpus, and per-render cost of the webservice component and the
//! scaler / labels / sidecar traits (compiled once, evaluated per render).

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Splits a render case's input.cue into (template, parameter JSON, context JSON).
fn split_case(name: &str) -> (String, serde_json::Value, serde_json::Value) {
    let src = read(
        &corpus()
            .join("kubevela/render")
            .join(name)
            .join("input.cue"),
    );
    let pi = src.rfind("\nparameter: {\n").expect("parameter block");
    let ci = src.rfind("\ncontext: {\n").expect("context block");
    let template = src[..pi].to_string();
    let param: serde_json::Value = serde_json::from_str(&src[pi + 12..ci]).expect("parameter json");
    let ctx: serde_json::Value = serde_json::from_str(&src[ci + 10..]).expect("context json");
    (template, param, ctx)
}

fn bench_files(c: &mut Criterion) {
    let mut g = c.benchmark_group("bench-files");
    g.sample_size(10);
    for name in ["bench1", "bench400"] {
        let src = read(&corpus().join("bench").join(format!("{name}.cue")));
        g.bench_function(format!("{name} compile+export all"), |b| {
            b.iter(|| {
                let p = cue::Runtime::new()
                    .compile("bench.cue", &src)
                    .expect("compile");
                let v = p.eval().expect("eval");
                let all = v.lookup("all").expect("all");
                all.to_json().expect("export")
            })
        });
    }
    g.finish();
}

/// Every definition file of ../shared/conformance/kubevela/definitions (components, traits,
/// policies, workflow steps), as it is written.
fn definition_files() -> Vec<(String, String)> {
    let root = corpus().join("kubevela/definitions");
    let mut files = Vec::new();
    for kind in ["component", "trait", "policy", "workflow-step"] {
        let dir = root.join(kind);
        let rd = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "cue") {
                files.push((p.display().to_string(), read(&p)));
            }
        }
    }
    files.sort();
    assert!(files.len() > 100, "only {} definition files", files.len());
    files
}

/// A runtime with Sailplane's `vela/*` packages (definitions/packages/vela of this repository),
/// which the definitions import.
fn vela_runtime() -> cue::Runtime {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../definitions/packages/vela");
    let mut pkgs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cue"))
        .map(|p| {
            let stem = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (stem, read(&p))
        })
        .collect();
    pkgs.sort();
    let mut rt = cue::Runtime::new();
    for (stem, src) in &pkgs {
        rt.register_package(
            &format!("vela/{stem}"),
            &[(&format!("vela/{stem}.cue"), src)],
        );
    }
    rt
}

/// Compiles the definition files (parse, imports resolved) with one runtime that has the `vela/*`
/// packages, as the controller compiles definitions when they are applied.
fn bench_definitions(c: &mut Criterion) {
    let all = definition_files();
    let total = all.len();
    // A definition importing a package Sailplane does not have (e.g. `vela/helm`) is left out,
    // named on stderr, and counted in the benchmark's name.
    let rt = vela_runtime();
    let files: Vec<(String, String)> = all
        .into_iter()
        .filter(|(name, src)| match rt.compile(name, src) {
            Ok(_) => true,
            Err(e) => {
                eprintln!("left out of the compile benchmark: {e}");
                false
            }
        })
        .collect();
    assert!(
        files.len() * 10 >= total * 9,
        "only {} of {total} definitions compile",
        files.len()
    );
    let mut g = c.benchmark_group("definitions");
    g.sample_size(20);
    let name = format!(
        "compile kubevela definitions ({} of {total} files)",
        files.len()
    );
    g.bench_function(name, |b| {
        b.iter(|| {
            files
                .iter()
                .map(|(name, src)| rt.compile(name, src).map_err(|e| format!("{name}: {e}")))
                .collect::<Result<Vec<_>, _>>()
                .expect("compiles")
        })
    });
    g.finish();
}

fn bench_render(c: &mut Criterion) {
    let rt = cue::Runtime::new();
    let (ws, ws_param, ws_ctx) = split_case("component.webservice.doc.output");
    let (sc, sc_param, sc_ctx) = split_case("trait.scaler.doc.patch");
    let (lb, lb_param, lb_ctx) = split_case("trait.labels.doc.patch");
    let (sd, sd_param, sd_ctx) = split_case("trait.sidecar.doc.patch");
    let ws_p = rt
        .compile("webservice.cue", &ws)
        .expect("compile webservice");
    let sc_p = rt.compile("scaler.cue", &sc).expect("compile scaler");
    let lb_p = rt.compile("labels.cue", &lb).expect("compile labels");
    let sd_p = rt.compile("sidecar.cue", &sd).expect("compile sidecar");
    c.bench_function(
        "render webservice (eval_with + validate + export output)",
        |b| {
            b.iter(|| {
                let v = ws_p
                    .eval_with(&[("parameter", &ws_param), ("context", &ws_ctx)])
                    .expect("eval");
                v.validate().expect("valid");
                v.lookup("output")
                    .expect("output")
                    .to_json()
                    .expect("export")
            })
        },
    );
    c.bench_function("render webservice+scaler+labels+sidecar", |b| {
        b.iter(|| {
            let v = ws_p
                .eval_with(&[("parameter", &ws_param), ("context", &ws_ctx)])
                .expect("eval");
            v.validate().expect("valid");
            let out = v
                .lookup("output")
                .expect("output")
                .to_json()
                .expect("export");
            let s = sc_p
                .eval_with(&[("parameter", &sc_param), ("context", &sc_ctx)])
                .expect("eval");
            s.validate().expect("valid");
            let p1 = s.lookup("patch").expect("patch").to_json().expect("export");
            let l = lb_p
                .eval_with(&[("parameter", &lb_param), ("context", &lb_ctx)])
                .expect("eval");
            l.validate().expect("valid");
            let p2 = l.lookup("patch").expect("patch").to_json().expect("export");
            let d = sd_p
                .eval_with(&[("parameter", &sd_param), ("context", &sd_ctx)])
                .expect("eval");
            d.validate().expect("valid");
            let p3 = d.lookup("patch").expect("patch").to_json().expect("export");
            (out, p1, p2, p3)
        })
    });
}

criterion_group!(benches, bench_render, bench_definitions, bench_files);
criterion_main!(benches);
