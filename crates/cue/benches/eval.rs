//! Criterion benchmarks: compile+export of the bench corpus, and per-render cost of the
//! webservice component and the scaler / labels traits (compiled once, evaluated per render).

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

fn bench_render(c: &mut Criterion) {
    let rt = cue::Runtime::new();
    let (ws, ws_param, ws_ctx) = split_case("component.webservice.doc.output");
    let (sc, sc_param, sc_ctx) = split_case("trait.scaler.doc.patch");
    let (lb, lb_param, lb_ctx) = split_case("trait.labels.doc.patch");
    let ws_p = rt
        .compile("webservice.cue", &ws)
        .expect("compile webservice");
    let sc_p = rt.compile("scaler.cue", &sc).expect("compile scaler");
    let lb_p = rt.compile("labels.cue", &lb).expect("compile labels");
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
    c.bench_function("render webservice+scaler+labels", |b| {
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
            (out, p1, p2)
        })
    });
}

criterion_group!(benches, bench_render, bench_files);
criterion_main!(benches);
