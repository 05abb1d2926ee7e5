//! `cargo run -p cue --example cue-export -- FILE [EXPR]`: export FILE (or EXPR in it) as JSON,
//! after validating the whole file. Exit status 1 on error.
//!
//! Like `cue export`, the process ends as soon as the output is written: neither the evaluation's
//! working memory (`Runtime::skip_teardown`) nor the evaluated value and program are freed
//! piece by piece first (the operating system reclaims the memory at exit), as in
//! `sail cue export`.

use std::io::Write;

// The allocator `sail` uses, so this measures what `sail cue export` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(file) = args.get(1) else {
        eprintln!("usage: cue-export FILE [EXPR]");
        std::process::exit(2);
    };
    let src = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{file}: {e}");
            std::process::exit(2);
        }
    };
    let expr = args.get(2).cloned().unwrap_or_default();
    let mut runtime = cue::Runtime::new();
    runtime.skip_teardown();
    let program = match runtime.compile(file, &src) {
        Ok(p) => p,
        Err(e) => fail(e),
    };
    let value = match program.eval() {
        Ok(v) => v,
        Err(e) => fail(e),
    };
    if std::env::var("NO_VALIDATE").is_err()
        && let Err(e) = value.validate()
    {
        fail(e);
    }
    let Some(x) = value.lookup(&expr) else {
        fail(cue::Error::new(format!("{expr}: not found")))
    };
    match x.to_json_string(true) {
        Ok(j) => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = writeln!(out, "{j}").and_then(|()| out.flush()) {
                eprintln!("write: {e}");
                std::process::exit(1);
            }
            // exit without dropping `value` and `program`
            std::process::exit(0);
        }
        Err(e) => fail(e),
    }
}

fn fail(e: cue::Error) -> ! {
    eprintln!("{e}");
    std::process::exit(1);
}
