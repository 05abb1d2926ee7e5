//! `Program::eval_syntax`: an evaluated program printed in CUE syntax as `cue eval` (v0.14)
//! prints it, one construct per test. Expectations are `cue eval`'s output; where the v0.4
//! oracle (`node oracle.mjs --cue eval`) prints something else, the comment says which.

use cue::{Runtime, SyntaxOptions};

fn eval_opts(src: &str, path: Option<&str>, opts: SyntaxOptions) -> String {
    Runtime::new()
        .compile("t.cue", src)
        .and_then(|p| p.eval_syntax(path, &opts))
        .unwrap_or_else(|e| panic!("eval_syntax of {src:?}: {e}"))
}

fn eval(src: &str) -> String {
    eval_opts(src, None, SyntaxOptions::default())
}

const ISSUE_EXAMPLE: &str = r#"#D: {x: int, y?: string}
a: int
b: >=0 & <10
c: *"x" | string
d: {e: 1, f: [1, 2, ...int]}
_h: 3
g: a + 1
"#;

/// The issue's example: definitions printed, optional and hidden fields left out, types and
/// bounds as CUE, the default chosen, the open list tail dropped, the incomplete expression
/// as written (the oracle prints exactly this).
#[test]
fn issue_example() {
    assert_eq!(
        eval(ISSUE_EXAMPLE),
        r#"#D: {
    x: int
}
a: int
b: >=0 & <10
c: "x"
d: {
    e: 1
    f: [1, 2]
}
g: a + 1
"#
    );
}

/// `-H` shows hidden fields, `-O` optional ones (with their `?`); a field of the new run of
/// aligned fields (`_h`, `g`) shares one value column.
#[test]
fn hidden_and_optional_on_request() {
    let all = SyntaxOptions {
        hidden: true,
        optional: true,
    };
    let out = eval_opts(ISSUE_EXAMPLE, None, all);
    assert!(
        out.contains("#D: {\n    x:  int\n    y?: string\n}\n"),
        "{out}"
    );
    assert!(out.ends_with("_h: 3\ng:  a + 1\n"), "{out}");
    let hidden_only = SyntaxOptions {
        hidden: true,
        optional: false,
    };
    let out = eval_opts(ISSUE_EXAMPLE, None, hidden_only);
    assert!(!out.contains("y?"), "{out}");
    assert!(out.contains("_h: 3\n"), "{out}");
    // hidden definitions are hidden fields too
    let src = "_#p: {a: 1}\nx: 1\n";
    assert_eq!(eval(src), "x: 1\n");
    assert_eq!(eval_opts(src, None, all), "_#p: {\n    a: 1\n}\nx: 1\n");
}

/// A required field that is not given is printed with its `!` (v0.14 syntax; v0.4 cannot
/// parse it).
#[test]
fn required_fields() {
    assert_eq!(
        eval("r: {y!: int, z?: int}\ns: {y!: int, y: 2}\n"),
        "r: {\n    y!: int\n}\ns: {\n    y: 2\n}\n"
    );
}

/// Strings quoted and escaped the CUE way; a computed string with a newline is a `"""` block
/// indented one level below its field, with `#` when it holds `"""`; bytes use `\x` for
/// control bytes.
#[test]
fn strings_and_bytes() {
    let src = r###"s1: "a\"b\\c\t\u0001 é"
_x: "x"
s2: "\(_x)\ny\n\nz"
s3: "q\"\"\"r\n\(_x)"
n: {s: "l1\n\(_x)"}
by: '\x00ab\xff'
"###;
    assert_eq!(
        eval(src),
        r###"s1: "a\"b\\c\t\u0001 é"
s2: """
    x
    y

    z
    """
s3: #"""
    q"""r
    x
    """#
n: {
    s: """
        l1
        x
        """
}
by: '\x00ab\xff'
"###
    );
}

/// A string literal written on one line keeps that form even with `\n` inside (`cue`
/// prints a literal as written); a computed string with a newline is a block.
#[test]
fn literal_strings_as_written() {
    assert_eq!(
        eval("cmd: [\"sh\", \"a\\nb\"]\ns: \"x\\ny\"\nc: \"\\(s)!\"\n"),
        "cmd: [\"sh\", \"a\\nb\"]\ns: \"x\\ny\"\nc: \"\"\"\n    x\n    y!\n    \"\"\"\n"
    );
}

/// Predeclared sized types keep their names as written (`uint16 & >=1`), as the oracle
/// prints them; `int & >=0 & <=255` written out stays so.
#[test]
fn sized_types_by_name() {
    assert_eq!(
        eval("p: uint16 & >=1\nu: uint8\nf: float64\nw: int & >=0 & <=255\n"),
        "p: uint16 & >=1\nu: uint8\nf: float64\nw: int & >=0 & <=255\n"
    );
}

/// Numbers, kinds and bounds: `int & >0` keeps its kind, a bound alone implies it; kinds
/// that stay a union are joined with `|`.
#[test]
fn types_and_bounds() {
    let src = r#"f1: 2.0
f2: 1.5
i: -3
b1: =~"^a"
b3: !=1
b4: int & >0
b5: >=0 & <=10 & !=1
k: int | string
n: number
t: _
nu: null
bo: bool
"#;
    assert_eq!(
        eval(src),
        r#"f1: 2.0
f2: 1.5
i:  -3
b1: =~"^a"
b3: !=1
b4: int & >0
b5: >=0 & <=10 & !=1
k:  int | string
n:  number
t:  _
nu: null
bo: bool
"#
    );
}

/// Defaults are resolved; several defaults leave their disjunction, without marks (v0.14 and
/// v0.4 agree); no default leaves all alternatives; conflicting defaults leave the whole
/// disjunction (v0.14; v0.4 prints `_|_`).
#[test]
fn disjunctions_and_defaults() {
    let src = r#"d0: *"x" | string
d1: *1 | *2
d2: "a" | "b"
a: *"a" | "b"
b: *"b" | "a"
c: a & b
"#;
    assert_eq!(
        eval(src),
        r#"d0: "x"
d1: 1 | 2
d2: "a" | "b"
a:  "a"
b:  "b"
c:  "a" | "b"
"#
    );
    // an unresolved disjunction of structs: each alternative a block
    assert_eq!(
        eval("x: {a: 1} | {a: 2}\n"),
        "x: {\n    a: 1\n} | {\n    a: 2\n}\n"
    );
}

/// Alignment as `cue fmt` does it: consecutive fields share a value column unless the value
/// is a struct or list (those break the run); a value spanning lines ends its run.
#[test]
fn alignment_runs() {
    let src = r#"a: 1
long: 2
st: {x: 1}
b: 3
l: [1]
cc: 4
dd: "\(a)\ny"
e: 5
"#;
    assert_eq!(
        eval(src),
        r#"a:    1
long: 2
st: {
    x: 1
}
b: 3
l: [1]
cc: 4
dd: """
    1
    y
    """
e: 5
"#
    );
}

/// Lists on one line, struct elements as blocks in place.
#[test]
fn lists() {
    assert_eq!(
        eval("l: [{x: 1}, 2]\ne: []\no: [1, ...int]\nn: [[1, 2], [3]]\n"),
        "l: [{\n    x: 1\n}, 2]\ne: []\no: [1]\nn: [[1, 2], [3]]\n"
    );
}

/// Incomplete expressions as written, binary operators spaced as `cue fmt` spaces them
/// (mixed `*` and `+` drop the spaces around `*`; parentheses kept).
#[test]
fn incomplete_expressions() {
    let src = r#"a: int
e1: a*2 + 1
e2: (a + 1) * 2
e3: a + a
e4: "v\(a)"
e5: len(a)
e6: -a
s: {x: int, y: x * 2}
c: a + 1 & >=5
"#;
    assert_eq!(
        eval(src),
        r#"a:  int
e1: a*2 + 1
e2: (a + 1) * 2
e3: a + a
e4: "v\(a)"
e5: len(a)
e6: -a
s: {
    x: int
    y: x * 2
}
c: a+1 & >=5
"#
    );
}

/// A cycle of fields that cannot be computed prints the expressions (the oracle, and v0.14
/// printing its incomplete values).
#[test]
fn cyclic_expressions() {
    assert_eq!(
        eval("n1: {\n\tmin: <max\n\tmax: >min\n}\n"),
        "n1: {\n    min: <max\n    max: >min\n}\n"
    );
}

/// Labels: identifiers bare, anything else quoted; a regular field whose name looks hidden
/// or like a definition keeps its quotes.
#[test]
fn labels() {
    assert_eq!(
        eval("\"a-b\": 1\n\"_x\": 2\n\"#y\": 3\n$t: 4\n\"x y\": 5\n"),
        "\"a-b\": 1\n\"_x\":  2\n\"#y\":  3\n$t:    4\n\"x y\": 5\n"
    );
    // a label with a newline or a quote stays one quoted line
    assert_eq!(
        eval("\"a\\nb\": 1\n\"q\\\"\": 2\n"),
        "\"a\\nb\": 1\n\"q\\\"\":  2\n"
    );
}

/// A scalar embedded in a struct with definitions stays beside them; an embedded `_` too,
/// and a struct that is only an embedded value is that value (the oracle prints the same).
#[test]
fn scalar_with_definitions() {
    assert_eq!(eval("x: {1, #y: 2}\n"), "x: {\n    1\n    #y: 2\n}\n");
    assert_eq!(
        eval("#D: {_, #foo: string}\na: {_}\nb: {string}\nc: {{{number}}}\nd: {}\n"),
        "#D: {\n    _\n    #foo: string\n}\na: _\nb: string\nc: number\nd: {}\n"
    );
}

/// A comprehension whose condition is not known yet is printed as written, where it stands.
#[test]
fn stalled_comprehensions() {
    assert_eq!(
        eval("a: int\nd: {\n\tx: 1\n\tif a > 1 {b: 3}\n\ty: 2\n}\n"),
        "a: int\nd: {\n    x: 1\n    if a > 1 {\n        b: 3\n    }\n    y: 2\n}\n"
    );
    // a comprehension that ran is its result
    assert_eq!(
        eval("d: {for k, v in {a: 1} {(k): v + 1}}\n"),
        "d: {\n    a: 2\n}\n"
    );
}

/// Imports that printed expressions refer to are printed above them.
#[test]
fn imports_of_printed_expressions() {
    assert_eq!(
        eval("import \"strings\"\n\ns: string\nu: strings.ToUpper(s)\n"),
        "import \"strings\"\n\ns: string\nu: strings.ToUpper(s)\n"
    );
    // an import only used by concrete results is not printed
    assert_eq!(
        eval("import \"strings\"\n\nu: strings.ToUpper(\"a\")\n"),
        "u: \"A\"\n"
    );
}

/// `-e`: a struct prints as its fields, anything else as the value; a path that is not there
/// is an error naming it.
#[test]
fn selected_values() {
    let o = SyntaxOptions::default();
    assert_eq!(eval_opts(ISSUE_EXAMPLE, Some("d"), o), "e: 1\nf: [1, 2]\n");
    assert_eq!(eval_opts(ISSUE_EXAMPLE, Some("a"), o), "int\n");
    assert_eq!(eval_opts(ISSUE_EXAMPLE, Some("d.f"), o), "[1, 2]\n");
    assert_eq!(eval_opts(ISSUE_EXAMPLE, Some("#D"), o), "x: int\n");
    let e = Runtime::new()
        .compile("t.cue", ISSUE_EXAMPLE)
        .and_then(|p| p.eval_syntax(Some("nope"), &o))
        .expect_err("missing");
    assert!(e.to_string().contains("\"nope\" not found"), "{e}");
}

/// Concrete data evaluates to the same values `cue export` gives, in CUE syntax.
#[test]
fn concrete_data() {
    assert_eq!(
        eval("a: {b: [1, \"x\", true, null], c: 1.5}\nd: a.b[1]\n"),
        "a: {\n    b: [1, \"x\", true, null]\n    c: 1.5\n}\nd: \"x\"\n"
    );
}

/// Errors are the caller's to check first (`sail cue eval` validates); one met anyway is a
/// `_|_` comment, never a panic; a runaway program is an `Err`.
#[test]
fn errors_do_not_panic() {
    let out = eval("a: 1 & 2\n");
    assert!(out.starts_with("a: _|_ // "), "{out}");
    let p = Runtime::with_limits(cue::Limits {
        max_depth: 50,
        max_steps: 10_000,
        max_bytes: 1 << 20,
    })
    .compile("t.cue", "#L: {next: #L}\nx: #L")
    .expect("compile");
    // either an error or text with the cycle marked: never a hang or a panic
    match p.eval_syntax(None, &SyntaxOptions::default()) {
        Ok(t) => assert!(t.contains("_|_"), "{t}"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// The example of cuelang.org's "working with incomplete CUE" page (v0.14 output there): the
/// interpolation that cannot be computed yet is printed as written, every field aligned.
#[test]
fn incomplete_interpolation_as_cuelang_org_prints_it() {
    let src = r#"connectionString: "\(system)://\(user):\(password)@\(host):\(port)/\(database)"

system:   "postgres"
host:     "prod.db.example.com"
user:     "alex"
port:     "5432"
database: "transactions"
password: string
"#;
    assert_eq!(
        eval(src),
        r#"connectionString: "\(system)://\(user):\(password)@\(host):\(port)/\(database)"
system:           "postgres"
host:             "prod.db.example.com"
user:             "alex"
port:             "5432"
database:         "transactions"
password:         string
"#
    );
}

/// An empty struct selected with `-e` is an empty line, as cue's eval_e.txtar expects.
#[test]
fn empty_struct_is_an_empty_line() {
    let o = SyntaxOptions::default();
    assert_eq!(
        eval_opts("a: 1\nincomplete: {}\n", Some("incomplete"), o),
        "\n"
    );
    assert_eq!(eval(""), "\n");
}

/// A `let` that a printed expression refers to is printed at the top of its struct, so that
/// the text still means what it says (the oracle hoists it to the file; v0.14 keeps it in its
/// struct); one only used by concrete results is not.
#[test]
fn lets_of_printed_expressions() {
    let src = "a: int\nx: {\n\tlet y = a * 2\n\tb: y + 1\n\tc: {d: y}\n\te: 1\n}\nz: {\n\tlet w = 5\n\tv: w\n}\n";
    assert_eq!(
        eval(src),
        "a: int\nx: {\n    let y = a * 2\n    b: y + 1\n    c: {\n        d: y\n    }\n    e: 1\n}\nz: {\n    v: 5\n}\n"
    );
}

/// Defaults of nested disjunctions (CUE spec, "Default values": a nested disjunction's
/// defaults count when the term that holds it is marked, or when its disjunction has no
/// marks; an unmarked term of a marked disjunction loses them). Expected values: the v0.14.1
/// `out/eval` of basicrewrite/014_disjunctions, choosedefault/002_associativity_of_defaults,
/// disjunctions/specdeviation and disjunctions/embed (`cue eval` prints the default, or every
/// disjunct when there is none).
#[test]
fn nested_disjunction_defaults() {
    let cases = [
        // 014: m2, m3 are `*2 | 3`
        ("(1 | (*2 | 3)) & (2 | 3)", "2"),
        ("(*1 | *(*2 | 3)) & (2 | 3)", "2"),
        // 002: a, b, c are `*"a" | "b" | "c"`; s1..s5; e1, e2 keep no default
        (r#"*"a" | ("b" | "c")"#, r#""a""#),
        (r#"(*"a" | "b") | "c""#, r#""a""#),
        (r#"*"a" | (*"b" | "c")"#, r#""a""#),
        ("*1 | ((*2 | 3) & (2 | *3))", "1"),
        ("*1 | *(*2 | 3)", "1 | 2"),
        (r#"*(1&2) | (*"x" | string)"#, r#""x" | string"#),
        (r#"(*"x" | string) | *(1&2)"#, r#""x" | string"#),
        // specdeviation: r masks the inner default, s keeps it
        ("(*3 | (*1 | 2)) & (1 | 2)", "1 | 2"),
        ("(3 | (*1 | 2)) & (1 | 2)", "1"),
        (r#"("a" | "b") & (*(*"a" | string) | string)"#, r#""a""#),
        (r#"(*(*"a" | string) | string) & ("a" | "b")"#, r#""a""#),
        // embed: nested.a is `*7 | 2 | 3 | 4 | 1`
        (
            "1 | 2 | *((3 | 4 | *(5 | 6 | *7)) & (3 | 4 | (*7 | 8)))",
            "7",
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(
            eval(&format!("x: {expr}\n")),
            format!("x: {want}\n"),
            "{expr}"
        );
    }
    // specdeviation: a referenced disjunction resolved by another conjunct keeps the mark
    let p = eval("P: *1 | int\nP: 2\np: *P | int\nQ: *1 | int\nq: *Q | int\n");
    assert_eq!(p, "P: 2\np: 2\nQ: 1\nq: 1\n");
}

/// A disjunction inside the chosen alternative of another takes its own choices, not those
/// meant for the disjunctions after it: every disjunct stays (before, `4` was lost and the
/// second case printed duplicates).
#[test]
fn nested_disjunction_keeps_every_disjunct() {
    assert_eq!(
        eval("x: (1 | (2 | 3 | 4)) & (int | string)\n"),
        "x: 1 | 2 | 3 | 4\n"
    );
    assert_eq!(
        eval("y: (1 | (2 | 3 | 4)) & (1 | 2 | 3 | 4 | 5)\n"),
        "y: 1 | 2 | 3 | 4\n"
    );
}

/// The default of disjunctions of embedded structs (disjunctions/embed, defaultsMulti): the
/// first disjunction's marked `{}` is eliminated (the definition is closed), so that
/// disjunction counts as unmarked and the second one's default `{}` decides (v0.14.1 out/eval:
/// `a: {a: "foo"}`, `b.a: {a: "foo", e: "bar"}`).
#[test]
fn default_of_embedded_struct_disjunctions() {
    let src = r#"a: {
	#def: {
		*{} | {a: string} | {b: string}
		*{} | {c: string} | {d: string}
	}
	a: #def & {a: "foo"}
}
b: {
	#def: {
		*{} | {a: string} | {b: string}
		*{} | {c: string} | {d: string}
		*{} | {d: string} | {e: string}
	}
	a: #def & {a: "foo", e: "bar"}
}
"#;
    let out = eval(src);
    assert_eq!(
        out,
        "a: {\n    #def: {}\n    a: {\n        a: \"foo\"\n    }\n}\nb: {\n    #def: {}\n    a: {\n        a: \"foo\"\n        e: \"bar\"\n    }\n}\n"
    );
}
