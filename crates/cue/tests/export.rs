//! Export paths: `to_json_string` against `to_json`, and fields that are plain references to
//! other fields (whose built value the exporter shares) against the same values written out.

fn eval(src: &str) -> cue::Value {
    let p = cue::Runtime::new()
        .compile("t.cue", src)
        .unwrap_or_else(|e| panic!("compile: {e}"));
    p.eval().unwrap_or_else(|e| panic!("eval: {e}"))
}

fn json(v: &cue::Value, path: &str) -> String {
    let x = v.lookup(path).unwrap_or_else(|| panic!("{path} not found"));
    let s = x
        .to_json_string(false)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let j = x.to_json().unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(s, serde_json::to_string(&j).unwrap_or_default(), "{path}");
    s
}

#[test]
fn references_export_like_the_field_they_name() {
    let v = eval(
        r#"
a: {x: 1, y: {z: "s", l: [1, 2]}}
b: a
c: [a.y, a, b.y.l]
d: a.y & {w: 2}
e: #D
#D: {k: int | *3, m: [...string]}
_h: {p: true}
f: _h
g: {for k, v in a {"\(k)": v}}
h: g
"#,
    );
    let a = json(&v, "a");
    assert_eq!(a, r#"{"x":1,"y":{"z":"s","l":[1,2]}}"#);
    assert_eq!(json(&v, "b"), a);
    assert_eq!(
        json(&v, "c"),
        format!(r#"[{{"z":"s","l":[1,2]}},{a},[1,2]]"#)
    );
    assert_eq!(json(&v, "d"), r#"{"z":"s","l":[1,2],"w":2}"#);
    assert_eq!(json(&v, "e"), r#"{"k":3,"m":[]}"#);
    assert_eq!(json(&v, "f"), r#"{"p":true}"#);
    assert_eq!(json(&v, "h"), a);
}

/// A reference to a field with an error reports the error at the referring field's path.
#[test]
fn reference_to_an_erroring_field_names_its_own_path() {
    let v = eval(
        r#"
bad: {x: 1 & 2}
ref: bad
"#,
    );
    let e = v
        .lookup("ref")
        .expect("ok")
        .to_json_string(false)
        .expect_err("an error");
    assert!(e.to_string().starts_with("ref.x:"), "{e}");
    let e = v
        .lookup("bad")
        .expect("ok")
        .to_json()
        .expect_err("an error");
    assert!(e.to_string().starts_with("bad.x:"), "{e}");
}

/// A reference unified with more (`r: a & {…}`, a second declaration of `r`, a pattern
/// constraint or list element type of the enclosing value) is evaluated in its own right, never
/// shared with the field it names. Results checked against the official CUE (oracle).
#[test]
fn reference_with_other_conjuncts_is_not_shared() {
    let v = eval(
        r#"
a: {x: 1}
r: a
r: {y: 2}
s: a & {z: 3}
t: {
	a: {x: 1}
	b: a
	[=~"^b"]: {z: 2}
}
l: [...{k: 1}] & [m.n, m.n]
m: n: {j: 0}
"#,
    );
    assert_eq!(json(&v, "a"), r#"{"x":1}"#);
    assert_eq!(json(&v, "r"), r#"{"x":1,"y":2}"#);
    assert_eq!(json(&v, "s"), r#"{"x":1,"z":3}"#);
    // a pattern of the enclosing struct applies to the referring field only
    assert_eq!(json(&v, "t"), r#"{"a":{"x":1},"b":{"x":1,"z":2}}"#);
    assert_eq!(json(&v, "l"), r#"[{"j":0,"k":1},{"j":0,"k":1}]"#);
}

/// Incomplete values and non-finite numbers fail the streaming export as they fail `to_json`.
#[test]
fn streaming_export_errors_match() {
    let v = eval(
        r#"
i: {a: int, b: 1}
bytes: 'abc'
"#,
    );
    let x = v.lookup("i").expect("field exists");
    assert_eq!(
        x.to_json_string(true).expect_err("an error").to_string(),
        x.to_json().expect_err("an error").to_string()
    );
    assert_eq!(json(&v, "bytes"), r#""YWJj""#);
}

/// A field that is a plain reference to a concrete scalar already evaluated (or whose value
/// refers to nothing, so that it can be evaluated first) takes the scalar without being
/// evaluated again; any other reference is evaluated in its own right, so a reference cycle
/// reports what evaluation in field order reports (checked against the evaluator before the
/// shortcut existed).
#[test]
fn scalar_references_export_like_their_targets() {
    let v = eval(
        r#"
p: {image: "nginx", port: 80, on: true, n: null, f: 1.5, d: *"x" | "y", b: 'by'}
o: {image: p.image, port: p.port, on: p.on, n: p.n, f: p.f, d: p.d, b: p.b}
early: later.s
later: {s: "late"}
"#,
    );
    let want = r#"{"image":"nginx","port":80,"on":true,"n":null,"f":1.5,"d":"x","b":"Ynk="}"#;
    assert_eq!(json(&v, "p"), want);
    assert_eq!(json(&v, "o"), want);
    assert_eq!(json(&v, "early"), r#""late""#);

    // targets declared later whose values refer to nothing (literals, predeclared types) are
    // evaluated first; one naming a field (`string` below is a field) is not
    let v = eval("x: {a: y.b, c: y.c}\ny: {b: string, b: \"s\", c: int & >=1, c: 5}\n");
    assert_eq!(json(&v, "x"), r#"{"a":"s","c":5}"#);
    let v = eval("a: b\nb: string & \"x\"\nstring: a\n");
    assert_eq!(json(&v, "a"), r#""x""#);
    assert_eq!(json(&v, "string"), r#""x""#);

    // an unresolved disjunction is not taken: the referring field reports it at its own path
    let v = eval("a: 1 | 2\nb: a\n");
    let e = v.lookup("b").expect("b").to_json().expect_err("incomplete");
    assert!(e.to_string().starts_with("b: incomplete value"), "{e}");

    let v = eval("a: b\nb: c + 1\nc: a - 1\n");
    let e = v.lookup("a").expect("a").to_json().expect_err("a cycle");
    assert_eq!(
        e.to_string(),
        "a: non-concrete value _ in operand to + at t.cue:2:4"
    );
}

/// `Value::errors` lists every conflict of the value (hidden fields and definitions included),
/// sorted by path and each once, where `validate` stops at the first; `export_errors` lists every
/// field `to_json` would stop at, incomplete ones included.
#[test]
fn all_errors_are_listed_sorted_by_path() {
    let v = eval("b: 1 & 2\nok: 3\n_h: 3 & 4\n#D: {x: \"a\" & \"b\", y: int}\nl: [1 & 2, 3]\n");
    let first = v.validate().expect_err("the file has conflicts");
    let all = v.errors();
    let paths: Vec<&str> = all.iter().map(|e| e.path()).collect();
    assert_eq!(paths, ["#D.x", "_h", "b", "l.0"]);
    assert!(all.iter().all(|e| !e.is_incomplete()));
    assert!(
        all.iter().any(|e| e.to_string() == first.to_string()),
        "validate's error is among them: {first}"
    );
    assert!(eval("a: 1\n_h: int\n").errors().is_empty());

    let v = eval("a: int\nb: {c: string, d: 1, e?: int}\nf: [1, float]\n");
    assert!(v.errors().is_empty(), "incomplete values are not conflicts");
    let first = v.to_json().expect_err("not concrete");
    let all = v.export_errors();
    let paths: Vec<&str> = all.iter().map(|e| e.path()).collect();
    assert_eq!(paths, ["a", "b.c", "f.1"]);
    assert_eq!(first.to_string(), all[0].to_string());
    assert!(eval("a: 1\n").export_errors().is_empty());
}

/// Plain data literals (scalars, and structs and lists of plain data) that nothing else is
/// unified with are exported from the syntax tree without evaluation; everything that makes a
/// literal more than data (a repeated label, a label that looks like a definition or hidden
/// field, a comment, a constraint, another conjunct, a pattern, closedness, the depth limit)
/// still goes through evaluation. Each case is exported alone and as `x: _` plus the data
/// (two conjuncts: evaluated, the old path) and must give the same JSON or the same error.
#[test]
fn plain_data_exports_like_evaluated_data() {
    let cases = [
        (
            r#"{a: 1, b: "s", c: true, d: null, e: 1.5, f: {}, g: [], h: [1, [2, [3]], {i: "j"}]}"#,
            r#"{"a":1,"b":"s","c":true,"d":null,"e":1.5,"f":{},"g":[],"h":[1,[2,[3]],{"i":"j"}]}"#,
        ),
        // quoted labels that look like definitions or hidden fields are regular fields
        (
            r##"{"#a": 1, "_b": 2, "c-d": {"_": 3}}"##,
            r##"{"#a":1,"_b":2,"c-d":{"_":3}}"##,
        ),
        // definitions and hidden fields are not exported
        (r#"{#a: 1, _b: {c: 2}, d: 3}"#, r#"{"d":3}"#),
        // repeated labels unify
        (r#"{p: 1, p: 1, "q": [1], q: [1]}"#, r#"{"p":1,"q":[1]}"#),
        (
            r#"[{a: {b: {c: {d: [[[[[[[[[[1]]]]]]]]]]}}}}]"#,
            r#"[{"a":{"b":{"c":{"d":[[[[[[[[[[1]]]]]]]]]]}}}}]"#,
        ),
    ];
    for (data, want) in cases {
        for src in [format!("x: {data}"), format!("x: _\nx: {data}")] {
            let v = eval(&src);
            assert_eq!(json(&v, "x"), want, "{src}");
        }
    }
    // conflicting repeated labels are an error either way
    for src in ["x: {p: 1, p: 2}", "x: _\nx: {p: 1, p: 2}"] {
        let v = eval(src);
        let e = v.lookup("x").expect("x").to_json_string(false);
        assert!(
            e.as_ref()
                .is_err_and(|e| e.to_string().contains("conflicting values")),
            "{src}: {e:?}"
        );
    }
    // a field's doc comment is kept
    for src in [
        "x: {\n\t// doc\n\ta: 1\n}",
        "x: _\nx: {\n\t// doc\n\ta: 1\n}",
    ] {
        let v = eval(src);
        let f = v.lookup("x").expect("x").fields();
        assert_eq!(f.len(), 1, "{src}");
        assert_eq!(f[0].comments, vec!["doc".to_string()], "{src}");
    }
    // patterns and closedness still apply to data fields
    let v = eval(
        r#"
p: {[string]: {n: int}}
p: {a: {n: 1}, b: {n: "s"}}
#C: {a: {b: int}}
c: #C & {a: {b: 1, z: 2}}
d: {a: {b: 1}}
e: d.a
"#,
    );
    assert!(v.lookup("p.b.n").expect("p.b.n").to_json().is_err());
    assert_eq!(json(&v, "p.a"), r#"{"n":1}"#);
    let c = v.lookup("c").expect("c").to_json();
    assert!(
        c.as_ref()
            .is_err_and(|e| e.to_string().contains("field not allowed")),
        "{c:?}"
    );
    assert_eq!(json(&v, "e"), r#"{"b":1}"#);
    // nesting past the depth limit is the same error with or without the shortcut
    let rt = cue::Runtime::with_limits(cue::Limits {
        max_depth: 4,
        ..cue::Limits::default()
    });
    let mut errs = Vec::new();
    for src in ["x: {a: {b: {c: {d: 1}}}}", "x: _\nx: {a: {b: {c: {d: 1}}}}"] {
        let v = rt
            .compile("t.cue", src)
            .and_then(|p| p.eval())
            .expect("evaluates");
        let e = v.lookup("x").expect("x").to_json_string(false);
        errs.push(e.expect_err("too deep").to_string());
    }
    assert_eq!(errs[0], errs[1]);
    assert!(errs[0].contains("nested deeper than 4"), "{}", errs[0]);
}

/// `float32`/`float64` are number bounds, not the float kind, and `int128`/`uint128` are
/// predeclared (cue-lang export/016, v0.14.1 out/eval: `fi: float64 & int` is an int bounded
/// by ±1.797…e+308).
#[test]
fn sized_number_types_as_cue_v014() {
    let v = eval(
        "fi: float64 & int & 3\nf32: float32 & 1\nf64: float64 & 1.5\ni: int128 & -5\nu: uint128 & 7\n",
    );
    assert_eq!(json(&v, "fi"), "3");
    assert_eq!(json(&v, "f32"), "1");
    assert_eq!(json(&v, "f64"), "1.5");
    assert_eq!(json(&v, "i"), "-5");
    assert_eq!(json(&v, "u"), "7");
    let bad = eval("u: uint128 & -1\nf: float32 & 1e39\n");
    for p in ["u", "f"] {
        let x = bad.lookup(p).unwrap_or_else(|| panic!("{p} not found"));
        assert_eq!(x.kind(), cue::Kind::Bottom, "{p}");
    }
    // still incomplete, not an error: `int & float64` is a bounded int
    let open = eval("fi: float64 & int\n");
    assert!(open.errors().is_empty(), "{:?}", open.errors());
}

/// An unexported name of a package (`list.max`) is an undefined field, incomplete as in CUE
/// v0.14 (cue-lang references/let: `incompleteLet.bar.max`, `incompleteLet.x` are
/// `[incomplete] undefined field: max`); an unknown exported name stays an error.
#[test]
fn unexported_package_member_is_incomplete() {
    let v = eval("import \"list\"\na: list.max\nb: {if list.max < 0 {}}\nc: 1\n");
    assert!(v.errors().is_empty(), "{:?}", v.errors());
    assert_eq!(json(&v, "c"), "1");
    let a = v.lookup("a").unwrap_or_else(|| panic!("a not found"));
    let e = a.to_json().expect_err("a is incomplete");
    assert!(e.to_string().contains("undefined field: max"), "{e}");
    let bad = eval("import \"list\"\nd: list.Foo\n");
    let errs: Vec<String> = bad.errors().iter().map(|e| e.to_string()).collect();
    assert!(
        errs.iter().any(|e| e.contains("undefined: list.Foo")),
        "{errs:?}"
    );
}

/// `encoding/csv` (cue-lang fulleval/044_Issue_#178 and pkg/encoding/csv's own test: Decode
/// of `"1,2,3\n4,5,6"`, Encode of `[[1, 2, 3], [4, 5], [7, 8, 9]]` and `[["a", "b"], ["c"]]`);
/// Decode of a non-concrete `bytes` is incomplete, as is `hex.EncodedLen` of an `int`.
#[test]
fn encoding_csv() {
    let v = eval(
        r#"import "encoding/csv"
t1: csv.Decode("1,2,3\n4,5,6")
t2: csv.Encode([[1, 2, 3], [4, 5], [7, 8, 9]])
t3: csv.Encode([["a", "b"], ["c"]])
"#,
    );
    assert_eq!(json(&v, "t1"), r#"[["1","2","3"],["4","5","6"]]"#);
    assert_eq!(json(&v, "t2"), r#""1,2,3\n4,5\n7,8,9\n""#);
    assert_eq!(json(&v, "t3"), r#""a,b\nc\n""#);
    let open = eval(
        "import \"encoding/csv\"\nimport \"encoding/hex\"\nfoo: csv.Decode(data)\ndata: bytes\nlen: int\nbar: hex.EncodedLen(len)\nbaz: hex.EncodedLen(3)\n",
    );
    assert!(open.errors().is_empty(), "{:?}", open.errors());
    assert_eq!(json(&open, "baz"), "6");
    let bad = eval("import \"encoding/csv\"\nx: csv.Decode(\"a,b\\nc\")\n");
    let errs: Vec<String> = bad.errors().iter().map(|e| e.to_string()).collect();
    assert!(
        errs.iter().any(|e| e.contains("wrong number of fields")),
        "{errs:?}"
    );
}

/// A `let` or alias nothing refers to is a compile error, as in CUE ("unreferenced alias or
/// let clause y", at the declaration; the v0.4 oracle reports the same for these programs).
#[test]
fn unreferenced_let_is_an_error() {
    let rt = cue::Runtime::new();
    for (src, name, pos) in [
        ("a: {let y = 1, b: 2}\n", "y", "t.cue:1:5"),
        ("let x = 1\nlet y = x\nb: 2\n", "y", "t.cue:2:1"),
        ("a: X=1\nb: 2\n", "X", "t.cue:1:4"),
    ] {
        let e = match rt.compile("t.cue", src) {
            Ok(_) => panic!("{src:?} compiled"),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            e,
            format!("unreferenced alias or let clause {name} at {pos}"),
            "{src:?}"
        );
    }
    assert_eq!(json(&eval("let x = 1\nlet y = x\nb: y\n"), "b"), "1");
}

/// An incomplete value at export says where it comes from: the declaration of the value
/// (`image: string`) and the expression that makes the field (`img: parameter.image`). A
/// disjunction without a default is printed without marks, as CUE prints it.
#[test]
fn incomplete_values_point_at_their_lines() {
    let src = "parameter: {image: string}\n\
               output: {img: parameter.image}\n\
               c: {y: \"a\" | \"b\"}\n\
               d: {y: *\"a\" | \"b\" | \"c\"}\n\
               d: y: \"b\" | \"c\"\n";
    let v = eval(src);
    let lines = |e: &cue::Error| -> Vec<(u32, u32)> {
        e.positions().iter().map(|p| (p.line, p.col)).collect()
    };
    let e = v
        .lookup("output")
        .expect("output")
        .to_json()
        .expect_err("incomplete");
    assert_eq!(
        e.to_string().lines().next(),
        Some("output.img: incomplete value string at t.cue:1:20 and t.cue:2:15"),
        "{e}"
    );
    assert_eq!(lines(&e), vec![(1, 20), (2, 15)]);
    let e = v.lookup("c").expect("c").to_json().expect_err("incomplete");
    assert!(
        e.to_string()
            .starts_with("c.y: incomplete value \"a\" | \"b\" at t.cue:3:8"),
        "{e}"
    );
    let e = v.lookup("d").expect("d").to_json().expect_err("incomplete");
    assert!(
        e.to_string()
            .starts_with("d.y: incomplete value \"b\" | \"c\""),
        "{e}"
    );
    assert_eq!(lines(&e), vec![(4, 8), (5, 7)]);
}
