//! Differential test against the official CUE: small programs generated from the language's
//! features (structs, definitions, disjunctions with defaults, bounds, comprehensions,
//! interpolation, lists, builtins, arithmetic, closedness, deliberate conflicts) are exported by
//! this engine and by `node oracle.mjs --batch` (official CUE v0.4 compiled to wasm, see
//! ../shared/conformance/README.md); the JSON (or the fact of failing) must agree.
//!
//! Not part of the default `cargo test` (it needs node and `npm ci`):
//!
//! ```text
//! (cd ../shared/conformance && npm ci)          # once; or CUEJS_DIR=<dir with node_modules>
//! cargo test -p cue --test differential -- --ignored --nocapture
//! CUE_DIFF_N=500 CUE_DIFF_SEED=7 cargo test -p cue --test differential -- --ignored --nocapture
//! ```
//!
//! The generator avoids the constructs where v0.4 (the oracle) and v0.14 (our target) are known
//! to differ (docs/conformance.md): erroring defaults, bare comprehension values as labels,
//! field order inside marshalled strings, list `!=`. One known v0.4 difference that generated
//! programs do meet is counted apart, not as a failure: defaults inside list arguments of
//! builtins (`list.Sum([x])` with `x: *7 | int`: v0.4 calls the element non-concrete, current
//! CUE takes the default).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn int(&mut self) -> i64 {
        self.below(21) as i64 - 5
    }
    fn word(&mut self) -> &'static str {
        const W: &[&str] = &["web", "db", "api", "x", "nginx", "Port", "tcp", "UDP", ""];
        W[self.below(W.len())]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Int,
    Str,
    Bool,
    IntList,
    Struct,
    /// Not reused by later fields.
    Other,
}

struct Gen {
    rng: Rng,
    /// Top-level fields defined so far and their types.
    vars: Vec<(String, Ty)>,
    defs: Vec<String>,
    out: String,
    imports: Vec<&'static str>,
}

impl Gen {
    fn var(&mut self, t: Ty) -> Option<String> {
        let c: Vec<String> = self
            .vars
            .iter()
            .filter(|(_, vt)| *vt == t)
            .map(|(n, _)| n.clone())
            .collect();
        if c.is_empty() {
            None
        } else {
            Some(c[self.rng.below(c.len())].clone())
        }
    }

    fn import(&mut self, p: &'static str) {
        if !self.imports.contains(&p) {
            self.imports.push(p);
        }
    }

    fn int_expr(&mut self, depth: u32) -> String {
        let k = if depth > 2 { 0 } else { self.rng.below(9) };
        match k {
            1 => self
                .var(Ty::Int)
                .unwrap_or_else(|| self.rng.int().to_string()),
            2 => format!(
                "{} + {}",
                self.int_expr(depth + 1),
                self.int_expr(depth + 1)
            ),
            3 => format!("({}) * {}", self.int_expr(depth + 1), self.rng.int()),
            4 => format!(
                "{} - {}",
                self.int_expr(depth + 1),
                self.int_expr(depth + 1)
            ),
            5 => match self.var(Ty::IntList) {
                Some(l) => format!("len({l})"),
                None => "len(\"abc\")".into(),
            },
            6 => {
                let d = self.rng.below(4) + 1;
                let op = ["div", "mod", "quo", "rem"][self.rng.below(4)];
                format!("{op}({}, {d})", self.int_expr(depth + 1))
            }
            7 => match self.var(Ty::Str) {
                Some(s) => format!("len({s})"),
                None => "3".into(),
            },
            8 => match self.var(Ty::IntList) {
                Some(l) => {
                    self.import("list");
                    format!("list.Sum({l})")
                }
                None => "7".into(),
            },
            _ => self.rng.int().to_string(),
        }
    }

    fn str_expr(&mut self, depth: u32) -> String {
        let k = if depth > 2 { 0 } else { self.rng.below(7) };
        match k {
            1 => self
                .var(Ty::Str)
                .unwrap_or_else(|| format!("{:?}", self.rng.word())),
            2 => format!("\"{}-\\({})\"", self.rng.word(), self.int_expr(depth + 1)),
            3 => {
                self.import("strings");
                format!("strings.ToUpper({})", self.str_expr(depth + 1))
            }
            4 => {
                // (v0.4 does not pick defaults of list elements given to builtins: only
                // default-free strings here)
                self.import("strings");
                format!(
                    "strings.Join([{:?}, \"\\({})\"], \"/\")",
                    self.rng.word(),
                    self.int_expr(depth + 1)
                )
            }
            5 => format!(
                "{} + {}",
                self.str_expr(depth + 1),
                self.str_expr(depth + 1)
            ),
            6 => {
                self.import("strconv");
                format!("strconv.FormatInt({}, 10)", self.int_expr(depth + 1))
            }
            _ => format!("{:?}", self.rng.word()),
        }
    }

    fn bool_expr(&mut self, depth: u32) -> String {
        let k = if depth > 2 { 0 } else { self.rng.below(6) };
        match k {
            1 => format!(
                "{} < {}",
                self.int_expr(depth + 1),
                self.int_expr(depth + 1)
            ),
            2 => format!(
                "{} == {}",
                self.str_expr(depth + 1),
                self.str_expr(depth + 1)
            ),
            3 => format!("!({})", self.bool_expr(depth + 1)),
            4 => format!(
                "{} && {}",
                self.bool_expr(depth + 1),
                self.bool_expr(depth + 1)
            ),
            5 => self.var(Ty::Bool).unwrap_or_else(|| "true".into()),
            _ => ["true", "false"][self.rng.below(2)].into(),
        }
    }

    fn list_expr(&mut self) -> String {
        match self.rng.below(4) {
            1 => match self.var(Ty::IntList) {
                Some(l) => format!(
                    "[for i, x in {l} if x > {} {{x * {} + i}}]",
                    self.rng.int(),
                    self.rng.int()
                ),
                None => "[1, 2, 3]".into(),
            },
            2 => {
                let a = self.list_expr_lit();
                let b = self.var(Ty::IntList).unwrap_or_else(|| "[0]".into());
                self.import("list");
                format!("list.Concat([{a}, {b}])")
            }
            3 => format!("[...int] & {}", self.list_expr_lit()),
            _ => self.list_expr_lit(),
        }
    }

    fn list_expr_lit(&mut self) -> String {
        let n = self.rng.below(4);
        let items: Vec<String> = (0..n).map(|_| self.int_expr(2)).collect();
        format!("[{}]", items.join(", "))
    }

    fn struct_expr(&mut self, depth: u32) -> String {
        match self.rng.below(6) {
            1 if !self.defs.is_empty() => {
                let d = self.defs[self.rng.below(self.defs.len())].clone();
                let mut fields = vec![format!("a: {}", self.int_expr(1))];
                if self.rng.chance(50) {
                    fields.push(format!("n: {}", self.int_expr(1)));
                }
                if self.rng.chance(30) {
                    fields.push(format!("b: {}", self.str_expr(1)));
                }
                if self.rng.chance(15) {
                    // not declared by the definition: closedness error
                    fields.push("extra: 1".into());
                }
                format!("{d} & {{{}}}", fields.join(", "))
            }
            2 => match self.var(Ty::IntList) {
                Some(l) => format!("{{for i, x in {l} {{\"k\\(i)\": x}}}}"),
                None => "{a: 1}".into(),
            },
            3 => format!(
                "{{if {} {{on: true}}, v: {}}}",
                self.bool_expr(1),
                self.int_expr(1)
            ),
            4 if depth < 2 => format!(
                "{{x: {}, y: {}}}",
                self.int_expr(1),
                self.struct_expr(depth + 1)
            ),
            5 => match self.var(Ty::Struct) {
                Some(s) => format!("{s} & {{z: {}}}", self.str_expr(1)),
                None => "{}".into(),
            },
            _ => format!("{{a: {}, b: {}}}", self.int_expr(1), self.str_expr(1)),
        }
    }

    fn field(&mut self, i: usize) {
        let name = format!("f{i}");
        let (text, ty) = match self.rng.below(19) {
            11 => (
                format!(
                    "{} & {}",
                    ["=~\"^[a-z]+$\"", "!~\"^x\"", "!=\"web\"", "=~\"p\""][self.rng.below(4)],
                    self.str_expr(1)
                ),
                Ty::Str,
            ),
            12 => {
                // hidden field and let
                let h = self.int_expr(1);
                self.out.push_str(&format!("_h{i}: {h}\n"));
                let l = self.int_expr(1);
                self.out.push_str(&format!("let L{i} = {l}\n"));
                (format!("_h{i} * 2 + L{i}"), Ty::Int)
            }
            13 => match self.var(Ty::IntList) {
                Some(l) => (format!("{l}[{}]", self.rng.below(3)), Ty::Int),
                None => ("[7, 8][1]".into(), Ty::Int),
            },
            14 => (
                format!(
                    "{{[string]: int}} & {{a: {}, b: {}}}",
                    self.int_expr(1),
                    if self.rng.chance(80) {
                        self.int_expr(1)
                    } else {
                        self.str_expr(1)
                    }
                ),
                Ty::Struct,
            ),
            15 => (
                format!(
                    "close({{a: {}}}) & {{{}}}",
                    self.int_expr(1),
                    if self.rng.chance(70) {
                        "a: int"
                    } else {
                        "b: 1"
                    }
                ),
                Ty::Struct,
            ),
            16 => match self.var(Ty::Struct) {
                Some(st) => (
                    format!("{{for k, v in {st} if (v & int) != _|_ {{\"\\(k)_\": v}}}}"),
                    Ty::Struct,
                ),
                None => ("{}".into(), Ty::Struct),
            },
            17 => {
                let t = match self.rng.below(4) {
                    0 => {
                        self.import("strings");
                        format!("len(strings.Split({}, \"-\"))", self.str_expr(1))
                    }
                    1 => {
                        self.import("list");
                        let l = self.var(Ty::IntList).unwrap_or_else(|| "[1]".into());
                        let x = self.int_expr(1);
                        return self.push_field(
                            &name,
                            format!("list.Contains({l}, {x})"),
                            Ty::Bool,
                        );
                    }
                    2 => format!("*{} | int & {}", self.int_expr(1), self.int_expr(1)),
                    _ => match self.var(Ty::Struct) {
                        Some(st) => format!("len({st})"),
                        None => "0".into(),
                    },
                };
                (t, Ty::Int)
            }
            18 if !self.defs.is_empty() => {
                let d = self.defs[self.rng.below(self.defs.len())].clone();
                (
                    format!(
                        "{{{d}, a: {}{}}}",
                        self.int_expr(1),
                        if self.rng.chance(20) { ", zz: 1" } else { "" }
                    ),
                    Ty::Struct,
                )
            }
            0 => (self.int_expr(0), Ty::Int),
            1 => (self.str_expr(0), Ty::Str),
            2 => (self.bool_expr(0), Ty::Bool),
            3 => (self.list_expr(), Ty::IntList),
            4 => (self.struct_expr(0), Ty::Struct),
            5 => {
                // disjunction with a default, maybe resolved by a later conjunct
                let a = self.rng.word();
                let b = self.rng.word();
                let mut t = format!("*{a:?} | {b:?} | string");
                if self.rng.chance(40) {
                    t = format!("({t}) & {:?}", self.rng.word());
                }
                (t, Ty::Str)
            }
            6 => {
                let lo = self.rng.int();
                let hi = lo + self.rng.below(30) as i64;
                (format!(">={lo} & <={hi} & ({})", self.int_expr(1)), Ty::Int)
            }
            7 => {
                let d = format!("#D{i}");
                self.out.push_str(&format!(
                    "{d}: {{\n\ta: int\n\tn: *{} | int & >=0 & <{}\n\tb?: string\n\tc: \"\\(a)-\\(n)\"\n}}\n",
                    self.rng.below(5),
                    self.rng.below(20) + 1
                ));
                self.defs.push(d);
                (self.struct_expr(0), Ty::Struct)
            }
            8 => (format!("*{} | int", self.int_expr(1)), Ty::Int),
            9 => {
                let t = format!(
                    "[for x in {} {{ {{v: x, s: \"n\\(x)\"}} }}]",
                    self.var(Ty::IntList).unwrap_or_else(|| "[1, 2]".into())
                );
                (t, Ty::Other)
            }
            _ => {
                // a field unified twice: agreement or a conflict
                let a = self.int_expr(1);
                let b = if self.rng.chance(70) {
                    a.clone()
                } else {
                    self.int_expr(1)
                };
                self.out.push_str(&format!("{name}: {a}\n"));
                (b, Ty::Int)
            }
        };
        self.push_field(&name, text, ty);
    }

    fn push_field(&mut self, name: &str, text: String, ty: Ty) {
        self.out.push_str(&format!("{name}: {text}\n"));
        if ty != Ty::Other {
            self.vars.push((name.to_string(), ty));
        }
    }
}

fn program(seed: u64) -> String {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        vars: Vec::new(),
        defs: Vec::new(),
        out: String::new(),
        imports: Vec::new(),
    };
    let n = 2 + g.rng.below(6);
    for i in 0..n {
        g.field(i);
    }
    let mut src = String::new();
    for p in &g.imports {
        src.push_str(&format!("import \"{p}\"\n"));
    }
    src.push_str(&g.out);
    src
}

fn ours(src: &str) -> Result<serde_json::Value, String> {
    cue::Runtime::new()
        .compile("gen.cue", src)
        .and_then(|p| p.eval())
        .and_then(|v| v.to_json())
        .map_err(|e| e.to_string())
}

fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => a == b,
    }
}

/// The one known difference of the oracle (CUE v0.4) met by generated programs: it does not
/// take the default of a list element passed to a builtin (`list.Sum([x])` with
/// `x: *7 | int`: "non-concrete value *7 | 3 for element 0 of number list argument 0"); current
/// CUE does, and so do we.
fn v04_default_in_builtin_list(oracle_err: &str) -> bool {
    oracle_err.lines().next().is_some_and(|l| {
        l.contains("non-concrete value *")
            && l.contains(" for element ")
            && l.contains("list argument")
    })
}

fn oracle_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/oracle.mjs")
}

/// Sends `requests` (JSON lines, see `oracle.mjs --batch`) to the oracle; one answer each.
fn oracle_batch(requests: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new("node")
        .arg(oracle_script())
        .arg("--batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs (install node, then `npm ci` in ../shared/conformance)");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(requests.as_bytes()).expect("send requests");
    }
    let out = child.wait_with_output().expect("oracle output");
    assert!(out.status.success(), "oracle failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `cue eval` of every KubeVela render input of the corpus (a definition's template with its
/// parameters and context, 256 files), ours (validate, then `eval_syntax`, as `sail cue eval`)
/// against the oracle's text. Reports the files printed identically, those whose lines are
/// the same but in another order or alignment (v0.4 puts fields made by comprehensions after
/// the others, v0.12+ keeps source order, and alignment follows the order), and the others;
/// fails if we reject a file the oracle prints, or if fewer than 138 are identical (a ratchet:
/// raise it as the printer improves).
#[test]
#[ignore = "needs node and the oracle's npm package; see the module docs"]
fn eval_text_of_kubevela_renders_against_official_cue() {
    let base =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kubevela/render");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&base)
        .expect("render cases")
        .flatten()
        .map(|d| d.path().join("input.cue"))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    let requests: String = files
        .iter()
        .map(|f| {
            serde_json::json!({"cmd": "eval", "files": [f.to_string_lossy()], "flags": {}})
                .to_string()
                + "\n"
        })
        .collect();
    let answers = oracle_batch(&requests);
    assert_eq!(answers.len(), files.len(), "one oracle answer per file");
    // the lines of a text, their alignment spaces collapsed, sorted
    let lines = |t: &str| {
        let mut v: Vec<String> = t
            .trim()
            .lines()
            .map(|l| {
                let l = l.trim();
                match l.split_once(": ") {
                    Some((k, v)) => format!("{k}: {}", v.trim_start()),
                    None => l.to_string(),
                }
            })
            .collect();
        v.sort();
        v
    };
    let (mut same, mut reordered, mut both_err, mut oracle_err) = (0, 0, 0, 0);
    let (mut other, mut rejected) = (Vec::new(), Vec::new());
    for (f, a) in files.iter().zip(&answers) {
        let name = f
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let src = std::fs::read_to_string(f).expect("read input");
        let ours = cue::Runtime::new()
            .compile(&f.to_string_lossy(), &src)
            .and_then(|p| {
                p.eval()?.validate()?;
                p.eval_syntax(None, &cue::SyntaxOptions::default())
            });
        let theirs = (a.get("code").and_then(|c| c.as_i64()) == Some(0)).then(|| {
            a.get("stdout")
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_string()
        });
        match (ours, theirs) {
            (Err(_), None) => both_err += 1,
            (Ok(_), None) => oracle_err += 1,
            (Err(e), Some(_)) => rejected.push(format!("{name}: {e}")),
            (Ok(o), Some(t)) if o.trim_end() == t.trim_end() => same += 1,
            (Ok(o), Some(t)) if lines(&o) == lines(&t) => reordered += 1,
            (Ok(_), Some(_)) => other.push(name),
        }
    }
    println!(
        "cue eval of {} KubeVela render inputs: {same} identical, {reordered} the same lines in another order or alignment, {} other differences, {both_err} both errors, {oracle_err} accepted here and rejected by the oracle, {} rejected here only",
        files.len(),
        other.len(),
        rejected.len()
    );
    for o in &other {
        println!("differs: {o}");
    }
    assert!(
        rejected.is_empty(),
        "rejected here, printed by the oracle:\n{}",
        rejected.join("\n")
    );
    assert!(same >= 138, "only {same} identical (ratchet: 138)");
}

#[test]
#[ignore = "needs node and the oracle's npm package; see the module docs"]
fn differential_against_official_cue() {
    let n: u64 = std::env::var("CUE_DIFF_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let seed0: u64 = std::env::var("CUE_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let dir = std::env::temp_dir().join(format!("cue-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut progs = Vec::new();
    let mut requests = String::new();
    for i in 0..n {
        let src = program(seed0.wrapping_add(i));
        let f = dir.join(format!("p{i}.cue"));
        std::fs::write(&f, &src).expect("write program");
        requests.push_str(
            &serde_json::json!({"cmd": "export", "files": [f.to_string_lossy()], "flags": {"--out": "json"}})
                .to_string(),
        );
        requests.push('\n');
        progs.push(src);
    }
    let answers = oracle_batch(&requests);
    assert_eq!(answers.len(), progs.len(), "one oracle answer per program");
    let (mut agree_ok, mut agree_err, mut known, mut diffs) = (0, 0, 0, Vec::new());
    for (i, (src, a)) in progs.iter().zip(&answers).enumerate() {
        let code = a.get("code").and_then(|c| c.as_i64()).unwrap_or(-1);
        let theirs: Result<serde_json::Value, String> = if code == 0 {
            serde_json::from_str(a.get("stdout").and_then(|s| s.as_str()).unwrap_or(""))
                .map_err(|e| format!("bad oracle json: {e}"))
        } else {
            Err(a
                .get("stderr")
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .trim()
                .to_string())
        };
        let mine = ours(src);
        match (&mine, &theirs) {
            (Ok(x), Ok(y)) if same(x, y) => agree_ok += 1,
            (Err(_), Err(_)) => agree_err += 1,
            (Ok(_), Err(e)) if v04_default_in_builtin_list(e) => known += 1,
            _ => diffs.push(format!(
                "--- program {i} (seed {}):\n{src}--- ours: {}\n--- official CUE: {}\n",
                seed0.wrapping_add(i as u64),
                match &mine {
                    Ok(j) => j.to_string(),
                    Err(e) => format!("error: {e}"),
                },
                match &theirs {
                    Ok(j) => j.to_string(),
                    Err(e) => format!("error: {e}"),
                }
            )),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    for d in &diffs {
        println!("{d}");
    }
    println!(
        "differential: {n} programs, {agree_ok} same value, {agree_err} both errors, {known} known v0.4 differences, {} differences",
        diffs.len()
    );
    assert!(
        diffs.is_empty(),
        "{} programs differ from the official CUE",
        diffs.len()
    );
}

/// The generator itself runs in the default test suite: its programs must parse and evaluate
/// without panics, and it must produce both successes and failures.
#[test]
fn generated_programs_evaluate() {
    let (mut ok, mut err) = (0, 0);
    for seed in 0..300 {
        let src = program(seed);
        cue::parse("gen.cue", &src)
            .unwrap_or_else(|e| panic!("generated program must parse: {e}\n{src}"));
        match ours(&src) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert!(ok > 50 && err > 10, "ok {ok}, err {err}");
}

#[test]
#[ignore = "dev helper: prints generated programs and our results"]
fn show_generated() {
    for seed in 0..12 {
        let src = program(seed);
        println!("---- seed {seed}\n{src}=> {:?}\n", ours(&src));
    }
}
