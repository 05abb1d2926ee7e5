//! `cue`: a native evaluator for the CUE configuration language, as used by KubeVela
//! definitions.
//!
//! Pipeline: [`parse`] (lexer + parser to a spanned [`ast`]) → [`Runtime::compile`] (checks
//! imports, keeps the AST behind an `Arc`) → [`Program::eval`] / [`Program::eval_with`]
//! (unification in an arena, see `eval`) → an immutable [`Value`] tree that can be
//! exported to JSON, validated and inspected. Pure: no I/O.

#![forbid(unsafe_code)]
#![allow(clippy::collapsible_if)]

pub mod ast;
mod builtins;
mod error;
mod eval;
mod export;
mod lexer;
mod parser;
mod syntax;
mod unused;
mod value;

use std::sync::Arc;

pub use ast::Comments;
pub use error::{Error, Pos};
pub use export::{Field, Kind, Value};
pub use syntax::SyntaxOptions;

/// Resource limits for one evaluation.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Maximum nesting of evaluation (and of the exported value).
    pub max_depth: usize,
    /// Maximum number of evaluation steps.
    pub max_steps: u64,
    /// Maximum size in bytes of any string, and (approximately) of all values together.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 1000,
            max_steps: 20_000_000,
            max_bytes: 256 << 20,
        }
    }
}

const PARSE_STACK: usize = 256 << 20;

/// Nesting the parser may reach on the caller's stack: a file nested deeper is parsed again
/// on a thread whose stack ([`PARSE_STACK`]) fits the full limit ([`parser::MAX_NEST`]).
/// Starting that thread costs more than parsing a render's parameters (a 256 MB stack is
/// mapped and unmapped); files that nest less, nearly all, skip it. In a release build the
/// deepest parse this budget allows needs between 256 and 512 KB of stack, whatever construct
/// nests (`caller_stack_budget_fits_a_small_thread` runs it on a 2 MB thread, a worker
/// thread's usual stack); a debug build's frames are several times larger.
const FAST_NEST: usize = if cfg!(debug_assertions) { 16 } else { 150 };

/// Why a parse or compilation on the caller's stack did not produce its result.
enum ParseFail {
    Error(Error),
    /// Deeper than the caller-stack budget ([`FAST_NEST`]): to be done again on the parser
    /// thread.
    OverBudget,
}

impl From<Error> for ParseFail {
    fn from(e: Error) -> ParseFail {
        ParseFail::Error(e)
    }
}

impl ParseFail {
    fn into_error(self) -> Error {
        match self {
            ParseFail::Error(e) => e,
            ParseFail::OverBudget => Error::new(parser::TOO_DEEP),
        }
    }
}

/// Runs `f` with the budget [`FAST_NEST`] on the caller's stack, and again with the full
/// nesting limit on a thread with a stack that fits it if the budget was not enough.
fn with_parse_stack<T: Send>(
    what: &str,
    f: impl Fn(usize) -> Result<T, ParseFail> + Sync,
) -> Result<T, Error> {
    match f(FAST_NEST) {
        Ok(x) => return Ok(x),
        Err(ParseFail::Error(e)) => return Err(e),
        Err(ParseFail::OverBudget) => {}
    }
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(PARSE_STACK)
            .spawn_scoped(s, || f(parser::MAX_NEST).map_err(ParseFail::into_error))
            .map_err(|e| Error::new(format!("cannot start {what} thread: {e}")))?
            .join()
            .map_err(|_| Error::new(format!("internal error: {what} panicked")))?
    })
}

/// A function implemented by the embedder, callable from CUE as `<import>.<name>(args…)`:
/// concrete JSON arguments in, JSON out (`Err` is reported as an error at the call).
pub type HostFn =
    Arc<dyn Fn(&[serde_json::Value]) -> Result<serde_json::Value, String> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct HostFunc {
    pub path: String,
    pub name: String,
    pub f: HostFn,
}

/// Holds limits and the host packages registered by the embedder.
#[derive(Clone, Default)]
pub struct Runtime {
    limits: Limits,
    hosts: Vec<HostFunc>,
    /// CUE packages importable by path: (import path, files (name, source)).
    packages: Vec<(String, Vec<(String, String)>)>,
    /// See [`Runtime::skip_teardown`].
    skip_teardown: bool,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .hosts
            .iter()
            .map(|h| format!("{}.{}", h.path, h.name))
            .collect();
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .field("host_functions", &names)
            .field("skip_teardown", &self.skip_teardown)
            .finish()
    }
}

pub(crate) struct SourceFile {
    pub name: String,
    pub line_starts: Vec<usize>,
}

pub(crate) struct ProgramInner {
    /// The main package's files first (`main_files` of them), then imported CUE packages'.
    pub files: Vec<ast::File>,
    pub main_files: usize,
    /// Imported CUE packages: (import path, indices into `files`).
    pub packages: Vec<(String, Vec<usize>)>,
    pub sources: Vec<SourceFile>,
    pub limits: Limits,
    pub hosts: Vec<HostFunc>,
    /// See [`Runtime::skip_teardown`].
    pub skip_teardown: bool,
}

/// A compiled CUE file (or package of files). Cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Program {
    inner: Arc<ProgramInner>,
}

/// The byte offset of every line's start. Looks at 8 bytes at a time: most words of a source
/// have no newline.
fn line_starts(src: &str) -> Vec<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let b = src.as_bytes();
    let mut v = Vec::with_capacity(b.len() / 24 + 2);
    v.push(0);
    let mut chunks = b.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) ^ (ONES * b'\n' as u64);
        // a zero byte of `w` (a newline) sets its high bit here, and a borrow from it may set
        // the bit of a byte above it: each set bit is checked
        let mut m = w.wrapping_sub(ONES) & !w & (ONES << 7);
        while m != 0 {
            let i = (m.trailing_zeros() / 8) as usize;
            if c.get(i) == Some(&b'\n') {
                v.push(base + i + 1);
            }
            m &= m - 1;
        }
        base += 8;
    }
    for (i, &ch) in chunks.remainder().iter().enumerate() {
        if ch == b'\n' {
            v.push(base + i + 1);
        }
    }
    v
}

pub(crate) fn pos_of(sources: &[SourceFile], span: ast::Span) -> Option<Pos> {
    let sf = sources.get(span.file as usize)?;
    let off = span.start as usize;
    let line = match sf.line_starts.binary_search(&off) {
        Ok(i) => i,
        Err(i) => i.saturating_sub(1),
    };
    let col = off - sf.line_starts.get(line).copied().unwrap_or(0) + 1;
    Some(Pos {
        file: sf.name.clone(),
        line: line as u32 + 1,
        col: col as u32,
    })
}

/// Parses a file of the program (file number `index` in spans) with the nesting limit
/// `max_nest`; also returns the file's line index, which the lexer records as it goes.
fn parse_indexed(
    filename: &str,
    source: &str,
    index: u32,
    max_nest: usize,
) -> Result<(ast::File, Vec<usize>), ParseFail> {
    let fail = |e: parser::PErr| {
        if e.msg == parser::TOO_DEEP && max_nest < parser::MAX_NEST {
            ParseFail::OverBudget
        } else {
            ParseFail::Error(parse_err(filename, source, e))
        }
    };
    let mut p = parser::Parser::new(source, 0, source.len(), index);
    p.set_max_nest(max_nest);
    let r = p.parse_file(filename);
    let f = p.finish(r).map_err(fail)?;
    Ok((f, p.take_line_starts()))
}

fn parse_err(filename: &str, source: &str, e: parser::PErr) -> Error {
    let sf = [SourceFile {
        name: filename.to_string(),
        line_starts: line_starts(source),
    }];
    let mut err = Error::new(e.msg);
    if let Some(p) = pos_of(
        &sf,
        ast::Span {
            file: 0,
            start: e.offset as u32,
            end: e.offset as u32,
        },
    ) {
        err = err.with_pos(p);
    }
    err
}

/// Parses one CUE file into its AST (spans are byte offsets into `source`).
pub fn parse(filename: &str, source: &str) -> Result<ast::File, Error> {
    with_parse_stack("parser", |max_nest| {
        parse_indexed(filename, source, 0, max_nest).map(|(f, _)| f)
    })
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime::default()
    }

    pub fn with_limits(limits: Limits) -> Runtime {
        Runtime {
            limits,
            hosts: Vec::new(),
            packages: Vec::new(),
            skip_teardown: false,
        }
    }

    /// For a process that exits as soon as it has used the results (a command like
    /// `sail cue export`): every evaluation of the programs compiled from here on leaves its
    /// working memory (the evaluation arena, several times the size of the value it yields) to
    /// the operating system instead of freeing it piece by piece, which costs about 4 % of an
    /// evaluation. That memory is never freed while the process runs: never use this in a
    /// process that evaluates more than a few programs or keeps running (the default frees
    /// everything).
    pub fn skip_teardown(&mut self) -> &mut Runtime {
        self.skip_teardown = true;
        self
    }

    /// Registers a CUE package written in CUE (e.g. a module's `cue.mod/pkg/<path>` files),
    /// so programs may `import "<path>"` and refer to its fields. Re-registering replaces.
    pub fn register_package(&mut self, import_path: &str, files: &[(&str, &str)]) -> &mut Runtime {
        self.packages.retain(|(p, _)| p != import_path);
        self.packages.push((
            import_path.to_string(),
            files
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .collect(),
        ));
        self
    }

    /// Registers a function implemented in Rust under an import path (e.g. `vela/op`), so
    /// programs may `import "vela/op"` and call `op.Name(...)`. Re-registering replaces.
    pub fn register_function(&mut self, import_path: &str, name: &str, f: HostFn) -> &mut Runtime {
        self.hosts
            .retain(|h| !(h.path == import_path && h.name == name));
        self.hosts.push(HostFunc {
            path: import_path.to_string(),
            name: name.to_string(),
            f,
        });
        self
    }

    /// Parses and compiles one file.
    pub fn compile(&self, filename: &str, source: &str) -> Result<Program, Error> {
        self.compile_files(&[(filename, source)])
    }

    /// Parses and compiles several files of one package (evaluated as one unit).
    pub fn compile_files(&self, files: &[(&str, &str)]) -> Result<Program, Error> {
        // The parser recurses on nesting: files that nest little are compiled on the caller's
        // stack, the others on a thread whose stack fits the nesting limit.
        with_parse_stack("compiler", |max_nest| self.compile_here(files, max_nest))
    }

    fn compile_here(&self, files: &[(&str, &str)], max_nest: usize) -> Result<Program, ParseFail> {
        let mut asts = Vec::new();
        let mut sources = Vec::new();
        let mut packages: Vec<(String, Vec<usize>)> = Vec::new();
        // the main package's files, then the files of every CUE package imported (transitively)
        let mut queue: Vec<(Option<usize>, &str, &str)> =
            files.iter().map(|(n, s)| (None, *n, *s)).collect();
        let mut i = 0;
        while i < queue.len() {
            let (pkg, name, src) = queue[i];
            let (f, line_starts) = parse_indexed(name, src, i as u32, max_nest)?;
            sources.push(SourceFile {
                name: name.to_string(),
                line_starts,
            });
            if let Some(p) = pkg {
                if let Some(e) = packages.get_mut(p) {
                    e.1.push(i);
                }
            }
            i += 1;
            for imp in &f.imports {
                if packages.iter().any(|(p, _)| *p == imp.path) {
                    continue;
                }
                if let Some((path, pfiles)) = self.packages.iter().find(|(p, _)| *p == imp.path) {
                    packages.push((path.clone(), Vec::new()));
                    let k = packages.len() - 1;
                    queue.extend(
                        pfiles
                            .iter()
                            .map(|(n, s)| (Some(k), n.as_str(), s.as_str())),
                    );
                    continue;
                }
                if !builtins::is_known_package(&imp.path)
                    && !self.hosts.iter().any(|h| h.path == imp.path)
                {
                    let mut e = Error::new(format!(
                        "unsupported import \"{}\": package not found",
                        imp.path
                    ));
                    if let Some(p) = pos_of(&sources, imp.span) {
                        e = e.with_pos(p);
                    }
                    return Err(e.into());
                }
            }
            if let Some(b) = unused::check_binds(&f) {
                let mut e = Error::new(b.to_string());
                if let Some(p) = pos_of(&sources, b.span()) {
                    e = e.with_pos(p);
                }
                return Err(e.into());
            }
            asts.push(f);
        }
        Ok(Program {
            inner: Arc::new(ProgramInner {
                files: asts,
                main_files: files.len(),
                packages,
                sources,
                limits: self.limits.clone(),
                hosts: self.hosts.clone(),
                skip_teardown: self.skip_teardown,
            }),
        })
    }
}

impl Program {
    /// The package clause of each file given to [`Runtime::compile_files`], in order (`None`
    /// for a file without one).
    pub fn packages(&self) -> Vec<Option<String>> {
        self.inner
            .files
            .iter()
            .take(self.inner.main_files)
            .map(|f| f.package.clone())
            .collect()
    }

    /// Evaluates the file as is.
    pub fn eval(&self) -> Result<Value, Error> {
        self.eval_with(&[])
    }

    /// Unifies concrete JSON data into the file's top-level fields before evaluating, e.g.
    /// `[("parameter", &json), ("context", &ctx)]`. A path may be dotted (`context.output`).
    pub fn eval_with(&self, inputs: &[(&str, &serde_json::Value)]) -> Result<Value, Error> {
        let paths: Vec<Vec<String>> = inputs
            .iter()
            .map(|(p, _)| {
                if p.is_empty() {
                    Vec::new()
                } else {
                    p.split('.').map(String::from).collect()
                }
            })
            .collect();
        let ins: Vec<(&[String], &serde_json::Value)> = paths
            .iter()
            .zip(inputs)
            .map(|(p, (_, v))| (p.as_slice(), *v))
            .collect();
        export::evaluate(&self.inner, &ins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(src: &str) -> Result<serde_json::Value, Error> {
        let p = Runtime::new().compile("t.cue", src)?;
        p.eval()?.to_json()
    }

    /// The word-at-a-time line index agrees with a byte-by-byte one, newlines anywhere.
    #[test]
    fn line_starts_finds_every_newline() {
        let naive = |s: &str| -> Vec<usize> {
            let mut v = vec![0];
            v.extend(
                s.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            );
            v
        };
        let mut cases: Vec<String> = vec![
            String::new(),
            "\n".into(),
            "a: 1\nb: \"é\"\n\n\tc: 2".into(),
            "\n".repeat(19),
            "\u{10a}\u{a0a}x\n\u{b0a}".into(),
        ];
        for n in 0..40 {
            let mut s: String = "x".repeat(n);
            s.push('\n');
            s.push_str(&"y".repeat(40 - n));
            cases.push(s);
        }
        for s in &cases {
            assert_eq!(line_starts(s), naive(s), "{s:?}");
        }
    }

    /// A file nested deeper than the caller-stack budget is parsed again on the parser thread
    /// with the full limit (same result); past the full limit it is an error with its position.
    #[test]
    fn nesting_past_the_caller_stack_budget() {
        let n = FAST_NEST + 10;
        let src = format!("a: {}1{}\n", "{b: ".repeat(n), "}".repeat(n));
        let v = export(&src).expect("nested file");
        let mut x = &v["a"];
        for _ in 0..n {
            x = &x["b"];
        }
        assert_eq!(*x, serde_json::json!(1));
        let f = parse("t.cue", &src).expect("parse");
        assert_eq!(f.body.decls.len(), 1);
        // three levels per `{b: …}` (field value, expression, literal): past MAX_NEST
        let deep = format!("a: {}1{}", "{b: ".repeat(400), "}".repeat(400));
        for e in [
            Runtime::new().compile("t.cue", &deep).err(),
            parse("t.cue", &deep).err(),
        ] {
            let e = e.expect("too deep").to_string();
            assert!(
                e.contains("nesting too deep") && e.contains("t.cue:1:"),
                "{e}"
            );
        }
    }

    /// The caller-stack budget fits a 2 MB thread (a worker thread's usual stack) with the
    /// constructs whose parsing takes the most stack per level, nested right up to the budget
    /// (meaningful in a release build: `cargo test --release -p cue --lib budget`).
    #[test]
    fn caller_stack_budget_fits_a_small_thread() {
        let interp = |k: usize| (0..k).fold("1".to_string(), |s, _| format!("\"\\({s})\""));
        let cases: [(&str, &(dyn Fn(usize) -> String + Sync)); 6] = [
            ("parens", &|k| {
                format!("a: {}1{}", "(".repeat(k), ")".repeat(k))
            }),
            ("unary", &|k| format!("a: {}1", "-".repeat(k))),
            ("structs", &|k| {
                format!("a: {}1{}", "{b: ".repeat(k), "}".repeat(k))
            }),
            ("lists", &|k| {
                format!("a: {}1{}", "[".repeat(k), "]".repeat(k))
            }),
            ("fields", &|k| format!("a: {}1", "b: ".repeat(k))),
            ("interpolations", &|k| format!("a: {}", interp(k))),
        ];
        for (what, make) in cases {
            // nest one more level at a time until the budget stops the parse: the deepest
            // parse the budget allows runs on a 2 MB stack
            let levels = std::thread::scope(|s| {
                std::thread::Builder::new()
                    .stack_size(2 << 20)
                    .spawn_scoped(s, || {
                        (1..=FAST_NEST + 1)
                            .find(|&k| {
                                matches!(
                                    parse_indexed("t.cue", &make(k), 0, FAST_NEST),
                                    Err(ParseFail::OverBudget)
                                )
                            })
                            .unwrap_or(0)
                    })
                    .expect("thread")
                    .join()
                    .expect("join")
            });
            assert!(levels > 1, "{what}: the budget stopped nothing ({levels})");
        }
    }

    /// The line index the lexer records while parsing is the one a pass over the file gives,
    /// with newlines in comments, multi-line strings, interpolations and attributes.
    #[test]
    fn lexer_records_every_line_start() {
        let cases = [
            "",
            "\n",
            "a: 1",
            "a: 1\n",
            "// c\n\n// d\na: 1 // e\n\nb: \"x\"\n",
            "a: \"\"\"\n\tx\n\n\ty\n\t\"\"\"\nb: 2\n",
            "a: #\"\"\"\n\tx \\#(1 +\n\t2)\n\t\"\"\"#\n",
            "a: \"\\(b +\n1)\"\nb: 1\n",
            "a: 1 @x(y,\nz)\nb: [\n1,\n2,\n]\r\nc: 3",
            "\"é\": \"\u{10a}\"\n\n\n",
        ];
        for src in cases {
            let Ok((_, got)) = parse_indexed("t.cue", src, 0, parser::MAX_NEST) else {
                panic!("{src:?} does not parse");
            };
            assert_eq!(got, line_starts(src), "{src:?}");
        }
    }

    /// Data unified in from outside (`eval_with`) is as open as the same data written in the
    /// source: a definition that iterates over it must not call its fields "not allowed".
    #[test]
    fn input_data_is_not_closed_by_definitions() {
        let src = "context: _\n_cs: context.output.spec.containers\n#A: { r: string, _found: [for c in _cs if c.name == r {c}], n: _found[0].name }\nout: #A & {r: \"a\"}\n";
        let p = Runtime::new().compile("t.cue", src).expect("compile");
        let ctx =
            serde_json::json!({"output": {"spec": {"containers": [{"name": "a", "image": "x"}]}}});
        let v = p.eval_with(&[("context", &ctx)]).expect("eval");
        let out = v.lookup("out").expect("out").to_json().expect("export");
        assert_eq!(out, serde_json::json!({"r": "a", "n": "a"}));
    }

    #[test]
    fn basic_unification() {
        let v = export("a: int\na: 1\nb: a + 1\nc: \"x\\(b)\"").expect("ok");
        assert_eq!(v, serde_json::json!({"a": 1, "b": 2, "c": "x2"}));
    }

    #[test]
    fn defaults_and_disjunctions() {
        let v = export("a: *\"TCP\" | \"UDP\"\nb: *1 | int\nb: 2\nc: a").expect("ok");
        assert_eq!(v, serde_json::json!({"a": "TCP", "b": 2, "c": "TCP"}));
    }

    #[test]
    fn conflicts_are_errors() {
        let e = export("a: string\na: 1").expect_err("conflict");
        assert!(e.to_string().contains("conflicting values"), "{e}");
        assert_eq!(e.path(), "a");
    }

    #[test]
    fn closed_definitions() {
        let e = export("#A: {a: int}\nx: #A & {a: 1, b: 1}").expect_err("closed");
        assert!(e.to_string().contains("not allowed"), "{e}");
        let v = export("#A: {a: int, b: a + 1}\nx: #A & {a: 1}").expect("ok");
        assert_eq!(v, serde_json::json!({"x": {"a": 1, "b": 2}}));
    }

    #[test]
    fn comprehensions() {
        let v = export(
            "l: [1, 2, 3]\nm: {for i, x in l if x > 1 {\"k\\(i)\": x}}\nn: [for x in l {x * 2}]",
        )
        .expect("ok");
        assert_eq!(
            v,
            serde_json::json!({"l": [1, 2, 3], "m": {"k1": 2, "k2": 3}, "n": [2, 4, 6]})
        );
    }

    #[test]
    fn eval_with_inputs() {
        let p = Runtime::new()
            .compile("t.cue", "parameter: {port: *80 | int}\nout: parameter.port")
            .expect("compile");
        let j = serde_json::json!({"port": 8080});
        let v = p.eval_with(&[("parameter", &j)]).expect("eval");
        assert_eq!(v.lookup("out").and_then(|x| x.as_i64()), Some(8080));
        let bad = serde_json::json!({"port": "80"});
        let v = p.eval_with(&[("parameter", &bad)]).expect("eval");
        assert!(v.validate().is_err());
    }

    #[test]
    fn field_comments_reach_callers() {
        let src = "parameter: {name: string}\npatch: spec: template: spec: {\n\t// +patchKey=name\n\tcontainers: [{name: parameter.name}]\n}\n// +patchStrategy=retainKeys\nother: 1\n";
        let p = Runtime::new().compile("t.cue", src).expect("compile");
        let j = serde_json::json!({"name": "sidecar"});
        let v = p.eval_with(&[("parameter", &j)]).expect("eval");
        let spec = v.lookup("patch.spec.template.spec").expect("spec");
        let f = spec.fields();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, "containers");
        assert_eq!(f[0].comments, vec!["+patchKey=name".to_string()]);
        let top = v.fields();
        let other = top.iter().find(|f| f.name == "other").expect("other");
        assert_eq!(
            other.comments,
            vec!["+patchStrategy=retainKeys".to_string()]
        );
        assert_eq!(
            spec.to_json().expect("json"),
            serde_json::json!({"containers": [{"name": "sidecar"}]})
        );
    }

    #[test]
    fn dotted_inputs_and_lookups() {
        let p = Runtime::new()
            .compile("t.cue", "context: {name: string}\nout: context.output.kind")
            .expect("compile");
        let o = serde_json::json!({"kind": "Deployment"});
        let n = serde_json::json!("app");
        let v = p
            .eval_with(&[("context.output", &o), ("context.name", &n)])
            .expect("eval");
        assert_eq!(
            v.lookup("out").and_then(|x| x.as_str()).as_deref(),
            Some("Deployment")
        );
        assert_eq!(
            v.lookup("context.name").and_then(|x| x.as_str()).as_deref(),
            Some("app")
        );
        assert!(v.lookup("context.missing").is_none());
        assert_eq!(v.lookup("context").map(|c| c.kind()), Some(Kind::Struct));
        let p = Runtime::new()
            .compile("t.cue", "l: \"app.oam.dev/name\": \"x\"\nxs: [{a: 1}]")
            .expect("compile");
        let v = p.eval().expect("eval");
        assert_eq!(
            v.lookup("l.\"app.oam.dev/name\"")
                .and_then(|x| x.as_str())
                .as_deref(),
            Some("x")
        );
        assert_eq!(v.lookup("xs.0.a").and_then(|x| x.as_i64()), Some(1));
    }

    #[test]
    fn error_display_names_path_and_positions() {
        let p = Runtime::new()
            .compile("webservice.cue", "parameter: port: int\n")
            .expect("compile");
        let j = serde_json::json!({"port": "80"});
        let v = p.eval_with(&[("parameter", &j)]).expect("eval");
        let e = v.validate().expect_err("type error");
        let s = e.to_string();
        assert!(s.starts_with("parameter.port: conflicting values"), "{s}");
        assert!(s.contains("mismatched types"), "{s}");
        assert!(s.contains("webservice.cue:1:18"), "{s}");
        assert!(!e.is_incomplete());
    }

    #[test]
    fn shared_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Program>();
        assert_send_sync::<Value>();
        assert_send_sync::<Error>();
        let p = Runtime::new()
            .compile("t.cue", "parameter: n: int\nout: parameter.n * 2")
            .expect("compile");
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let j = serde_json::json!({"n": i});
                    p.eval_with(&[("parameter", &j)])
                        .ok()
                        .and_then(|v| v.lookup("out"))
                        .and_then(|v| v.as_i64())
                })
            })
            .collect();
        let got: Vec<Option<i64>> = handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect();
        assert_eq!(got, vec![Some(0), Some(2), Some(4), Some(6)]);
    }

    #[test]
    fn host_functions() {
        let mut rt = Runtime::new();
        let f: HostFn =
            Arc::new(
                |args: &[serde_json::Value]| match args.first().and_then(|a| a.as_str()) {
                    Some(s) => Ok(serde_json::json!({"greeting": format!("hello {s}")})),
                    None => Err("want a string".into()),
                },
            );
        rt.register_function("vela/op", "Hello", f);
        let p = rt
            .compile(
                "t.cue",
                "import \"vela/op\"\nx: op.Hello(\"bob\").greeting\ny: op.Hello(1)",
            )
            .expect("compile");
        let v = p.eval().expect("eval");
        assert_eq!(
            v.lookup("x").and_then(|x| x.as_str()).as_deref(),
            Some("hello bob")
        );
        let e = v.lookup("y").and_then(|y| y.error()).expect("error");
        assert!(e.message().contains("want a string"), "{e}");
    }

    #[test]
    fn registered_cue_packages() {
        let mut rt = Runtime::new();
        rt.register_package(
            "example.com/lib",
            &[(
                "lib.cue",
                "package lib\n#Port: int & >0 & <65536\n_secret: 1\nname: \"lib\"\nn: _secret + 1\n",
            )],
        );
        let src = "import \"example.com/lib\"\n_secret: 5\np: lib.#Port & 80\nn: lib.n + _secret\nbad: lib.#Port & 0\n";
        let v = rt
            .compile("t.cue", src)
            .expect("compile")
            .eval()
            .expect("eval");
        assert_eq!(v.lookup("p").and_then(|x| x.as_i64()), Some(80));
        // hidden fields are private to their package: lib's _secret is not ours
        assert_eq!(v.lookup("n").and_then(|x| x.as_i64()), Some(7));
        assert!(v.lookup("bad").and_then(|x| x.error()).is_some());
        assert!(Runtime::new().compile("t.cue", src).is_err());
    }

    #[test]
    fn validators_and_bits() {
        let v = export(
            "import (\"strings\"\n\"math/bits\")\na: strings.MinRunes(3) & \"abc\"\nb: strings.HasPrefix(\"x\") & \"xy\"\nc: bits.Or(1, 4)\nd: bits.Lsh(1, 3)\n",
        )
        .expect("ok");
        assert_eq!(
            v,
            serde_json::json!({"a": "abc", "b": "xy", "c": 5, "d": 8})
        );
        let e =
            export("import \"strings\"\na: strings.MaxRunes(2)\na: \"abc\"").expect_err("too long");
        assert!(
            e.to_string()
                .contains("does not satisfy strings.MaxRunes(2)"),
            "{e}"
        );
        let e = export("import \"strings\"\na: strings.MaxRunes(2)").expect_err("incomplete");
        assert!(e.is_incomplete(), "{e}");
    }

    #[test]
    fn text_template_subset() {
        let v = export(
            "import \"text/template\"\nout: template.Execute(\"{{.x}} {{- .y.z -}} !\", {x: \"a \", y: z: 2})",
        )
        .expect("ok");
        assert_eq!(v, serde_json::json!({"out": "a 2!"}));
        let e = export(
            "import \"text/template\"\nout: template.Execute(\"{{range .x}}{{end}}\", {x: [1]})",
        )
        .expect_err("unsupported");
        assert!(
            e.to_string().contains("unsupported: text/template action"),
            "{e}"
        );
    }

    #[test]
    fn match_n_and_match_if() {
        let v = export("a: matchN(1, [int, string]) & 3\nb: matchIf(int, >0, string) & 2\n")
            .expect("ok");
        assert_eq!(v, serde_json::json!({"a": 3, "b": 2}));
        let e = export("a: matchN(1, [int, >0]) & 3").expect_err("two match");
        assert!(e.to_string().contains("does not satisfy matchN"), "{e}");
        let e = export("b: matchIf(int, >0, string) & -2").expect_err("then fails");
        assert!(e.to_string().contains("does not satisfy matchIf"), "{e}");
        // as an operand, through a reference
        let v = export("_m: matchN(1, [int, string])\na: [_m & 3][0]\n").expect("ok");
        assert_eq!(v, serde_json::json!({"a": 3}));
        assert!(export("_m: matchN(1, [int, string])\na: [_m & 3.5][0]\n").is_err());
        // in a definition the value is not concrete: not an error there
        let v = export("#S: matchN(1, [{run!: _}])\nx: #S & {run: 1}").expect("ok");
        assert_eq!(v, serde_json::json!({"x": {"run": 1}}));
    }

    #[test]
    fn definition_fields_from_a_definition_stay_closed() {
        let eval = |src: &str| {
            Runtime::new()
                .compile("t.cue", src)
                .and_then(|p| p.eval())
                .expect("eval")
        };
        let v = eval("#D: {#foo: a: int}\na: #D\na: {#foo: b: 1}\n");
        let e = v
            .lookup("a.#foo.b")
            .and_then(|b| b.error())
            .expect("b not allowed");
        assert!(e.to_string().contains("not allowed"), "{e}");
        let v = eval("#D: {}\na: #D\na: {#foo: b: 1}\n");
        assert_eq!(v.lookup("a.#foo.b").and_then(|b| b.as_i64()), Some(1));
    }

    #[test]
    fn bounds_of_bounds_and_byte_ranges() {
        let v = export("a: !=(!=3)\nb: !=(<3) & 3\nc: <(<=3) & 2\n").expect("ok");
        assert_eq!(v, serde_json::json!({"a": 3, "b": 3, "c": 2}));
        assert!(export("b: !=(<3) & 2").is_err());
        let e = export("a: >(null)").expect_err("null is not ordered");
        assert!(!e.is_incomplete(), "{e}");
        let e = export("a: <'a' & >'b'").expect_err("empty byte range");
        assert!(!e.is_incomplete(), "{e}");
    }

    #[test]
    fn unknown_import_is_error() {
        let e = Runtime::new()
            .compile("t.cue", "import \"vela/op\"\na: 1")
            .err()
            .expect("error");
        assert!(e.to_string().contains("vela/op"));
    }

    /// `to_json_string` writes JSON itself: byte for byte what serde_json makes of `to_json`.
    #[test]
    fn json_text_is_serde_json_text() {
        let src = r#"
a: "q\"b\\s\n\r\t\b\f\u0001\u001f\u007f é ☃ 𝄞 /"
"odd key\n": {}
e: []
n: [1, -2, 9223372036854775807, -9223372036854775807, 0]
f: [1.5, -0.0, 1e300, 2.5e-8, 0.1, 100.0]
b: [true, false, null]
y: 'by\x00tes'
nest: {x: [{}, [], [{z: "w"}]], _hidden: 1, #def: 2}
"#;
        let v = Runtime::new()
            .compile("t.cue", src)
            .and_then(|p| p.eval())
            .expect("eval");
        let j = v.to_json().expect("json");
        assert_eq!(
            v.to_json_string(true).expect("pretty"),
            serde_json::to_string_pretty(&j).expect("serde")
        );
        assert_eq!(
            v.to_json_string(false).expect("compact"),
            serde_json::to_string(&j).expect("serde")
        );
        for x in ["e", "n", "a", "nest.x"] {
            let x = v.lookup(x).expect("field");
            let j = x.to_json().expect("json");
            assert_eq!(
                x.to_json_string(true).expect("pretty"),
                serde_json::to_string_pretty(&j).expect("serde")
            );
        }
    }

    /// `skip_teardown` changes what is freed, not what is computed.
    #[test]
    fn skip_teardown_gives_the_same_value() {
        let src = "#D: {a: int, b: a + 1}\nx: #D & {a: 1}\nbad: int & \"s\"\n";
        let mut rt = Runtime::new();
        rt.skip_teardown();
        let v = rt
            .compile("t.cue", src)
            .and_then(|p| p.eval())
            .expect("eval");
        let w = Runtime::new()
            .compile("t.cue", src)
            .and_then(|p| p.eval())
            .expect("eval");
        let x = v.lookup("x").expect("x");
        assert_eq!(
            x.to_json().ok(),
            w.lookup("x").and_then(|x| x.to_json().ok())
        );
        assert_eq!(x.to_json().ok(), Some(serde_json::json!({"a": 1, "b": 2})));
        let (e, f) = (
            v.validate().expect_err("bad"),
            w.validate().expect_err("bad"),
        );
        assert_eq!(e.to_string(), f.to_string());
    }

    #[test]
    fn limits_stop_runaway() {
        let rt = Runtime::with_limits(Limits {
            max_depth: 50,
            max_steps: 10_000,
            max_bytes: 1 << 20,
        });
        let p = rt
            .compile("t.cue", "#L: {next: #L}\nx: #L")
            .expect("compile");
        let r = p.eval().and_then(|v| v.to_json());
        assert!(r.is_err());
    }
}
