//! Profiling helper: `render-loop CASE_DIR N` evaluates a render case N times in-process.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_default());
    let n: usize = args.get(2).and_then(|x| x.parse().ok()).unwrap_or(1000);
    let src = std::fs::read_to_string(dir.join("input.cue")).unwrap_or_default();
    let expr = std::fs::read_to_string(dir.join("expr"))
        .unwrap_or_default()
        .trim()
        .to_string();
    let (Some(pi), Some(ci)) = (src.rfind("\nparameter: {\n"), src.rfind("\ncontext: {\n")) else {
        eprintln!("not a render case");
        std::process::exit(2);
    };
    let param: serde_json::Value = serde_json::from_str(&src[pi + 12..ci]).unwrap_or_default();
    let ctx: serde_json::Value = serde_json::from_str(&src[ci + 10..]).unwrap_or_default();
    let Ok(p) = cue::Runtime::new().compile("t.cue", &src[..pi]) else {
        eprintln!("compile error");
        std::process::exit(1);
    };
    let t = std::time::Instant::now();
    for _ in 0..n {
        let v = p.eval_with(&[("parameter", &param), ("context", &ctx)]);
        let _ = v.map(|v| v.lookup(&expr).map(|x| x.to_json()));
    }
    eprintln!("{:?} per render", t.elapsed() / n as u32);
}
