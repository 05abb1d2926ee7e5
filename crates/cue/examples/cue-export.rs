//! `cargo run -p cue --example cue-export -- FILE [EXPR]`: export FILE (or EXPR in it) as JSON,
//! after validating the whole file. Exit status 1 on error.

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
    let r = (|| -> Result<serde_json::Value, cue::Error> {
        let p = cue::Runtime::new().compile(file, &src)?;
        let v = p.eval()?;
        if std::env::var("NO_VALIDATE").is_err() {
            v.validate()?;
        }
        let x = v
            .lookup(&expr)
            .ok_or_else(|| cue::Error::new(format!("{expr}: not found")))?;
        x.to_json()
    })();
    match r {
        Ok(j) => println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
