//! Dev helper: `cargo run -p cue --example cue-eval -- FILE...`: print the evaluated tree, one
//! line per leaf (`path: json` or `path: ERROR message`), including hidden fields and definitions.

fn walk(v: &cue::Value, path: &str, out: &mut String) {
    match v.kind() {
        cue::Kind::Struct => {
            let fs = v.all_fields();
            if fs.is_empty() {
                out.push_str(&format!("{path}: {{}}\n"));
            }
            for f in fs {
                let p = if path.is_empty() {
                    f.name.clone()
                } else {
                    format!("{path}.{}", f.name)
                };
                walk(&f.value, &p, out);
            }
        }
        cue::Kind::List => {
            let es = v.elements();
            if es.is_empty() {
                out.push_str(&format!("{path}: []\n"));
            }
            for (i, e) in es.iter().enumerate() {
                walk(e, &format!("{path}.{i}"), out);
            }
        }
        _ => match v.to_json() {
            Ok(j) => out.push_str(&format!("{path}: {j}\n")),
            Err(e) => out.push_str(&format!(
                "{path}: ERROR {}{}\n",
                if e.is_incomplete() {
                    "(incomplete) "
                } else {
                    ""
                },
                e.message()
            )),
        },
    }
}

fn main() {
    let files: Vec<(String, String)> = std::env::args()
        .skip(1)
        .map(|f| {
            let s = std::fs::read_to_string(&f).unwrap_or_default();
            (f, s)
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    match cue::Runtime::new()
        .compile_files(&refs)
        .and_then(|p| p.eval())
    {
        Ok(v) => {
            let mut out = String::new();
            walk(&v, "", &mut out);
            print!("{out}");
            if let Err(e) = v.to_json() {
                println!("EXPORT ERROR: {e}");
            }
        }
        Err(e) => println!("ERROR: {e}"),
    }
}
