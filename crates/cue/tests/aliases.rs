//! The alias forms of a label (the spec's "Aliases"): `[X=expr]: value` binds the label a
//! pattern constraint matched, `(X=expr): value` the label a dynamic field got. Expectations are
//! the official CUE's (`node oracle.mjs FILE EXPR`, v0.4, for the pattern forms; the spec's
//! text for the dynamic one, which v0.4 does not parse).

use cue::{Runtime, SyntaxOptions};

fn export(src: &str) -> serde_json::Value {
    Runtime::new()
        .compile("t.cue", src)
        .and_then(|p| p.eval())
        .and_then(|v| v.to_json())
        .unwrap_or_else(|e| panic!("export of {src:?}: {e}"))
}

fn error(src: &str) -> String {
    match Runtime::new()
        .compile("t.cue", src)
        .and_then(|p| p.eval())
        .and_then(|v| v.to_json())
    {
        Ok(v) => panic!("{src:?} exported {v}, expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn pattern_alias_binds_the_matched_label() {
    let src = "a: [Name=string]: {name: Name, n: len(Name)}\n\
               a: foo: {}\n\
               a: barbaz: {x: 1}\n\
               b: [X=string]: X\n\
               b: q: _\n\
               #D: [N=string]: {id: N}\n\
               d: #D & {x: {}}\n\
               e: [X=string]: [Y=string]: \"\\(X)/\\(Y)\"\n\
               e: a: b: _\n\
               f: [X=string]: {v: 1}\n\
               f: q: {}\n";
    let want = serde_json::json!({
        "a": {"foo": {"name": "foo", "n": 3}, "barbaz": {"x": 1, "name": "barbaz", "n": 6}},
        "b": {"q": "q"},
        "d": {"x": {"id": "x"}},
        "e": {"a": {"b": "a/b"}},
        "f": {"q": {"v": 1}},
    });
    assert_eq!(export(src), want);
}

#[test]
fn dynamic_field_alias_binds_the_label() {
    let src = "c: (K=\"dyn\" + \"amic\"): \"label \\(K)\"\n\
               l: [\"x\", \"y\"]\n\
               m: {for i, s in l {(N=\"\\(s)\\(i)\"): {name: N}}}\n";
    let want = serde_json::json!({
        "c": {"dynamic": "label dynamic"},
        "l": ["x", "y"],
        "m": {"x0": {"name": "x0"}, "y1": {"name": "y1"}},
    });
    assert_eq!(export(src), want);
}

/// The alias is a label's only: elsewhere it is an explicit error at the alias (CUE does not
/// implement list element aliases), and a wrong pattern still fails where it applies.
#[test]
fn alias_outside_a_label_is_an_explicit_error() {
    for (src, at) in [
        ("a: [X=2]\n", "t.cue:1:5"),
        ("a: [1, X=2]\n", "t.cue:1:8"),
        ("a: (X=2)\n", "t.cue:1:5"),
        ("a: [X=string]\n", "t.cue:1:5"),
    ] {
        let e = error(src);
        assert!(e.starts_with("unsupported: alias `X=`"), "{src:?}: {e}");
        assert!(e.contains(at), "{src:?}: {e}");
    }
    // the alias is the label, a string: used as an int it conflicts where the pattern applies
    let e = error("a: [X=string]: {v: X & int}\na: q: {}\n");
    assert!(e.starts_with("a.q.v: conflicting values"), "{e}");
}

/// `cue eval` of a program with a pattern alias, as the oracle prints it (`node oracle.mjs --cue
/// eval`): the definition's pattern constraint is not printed, the matched field is.
#[test]
fn eval_prints_the_matched_field() {
    let text = Runtime::new()
        .compile(
            "t.cue",
            "#A: [Name=string]: {name: Name}\nx: #A\nx: foo: {}\n",
        )
        .and_then(|p| p.eval_syntax(None, &SyntaxOptions::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        text,
        "#A: {}\nx: {\n    foo: {\n        name: \"foo\"\n    }\n}\n"
    );
}

/// An alias in front of a pattern constraint (`X=[expr]: value`) names the matched field in
/// `value` (the spec's text; v0.4 does not implement it), and one in front of a dynamic field
/// (`X=(expr): value`) names that field in its struct, before or after it (after it, the
/// oracle's answer: `y: 1`; v0.4 panics on the reference before the field).
#[test]
fn field_aliases_of_patterns_and_dynamic_fields() {
    let src = "a: X=[N=string]: {v: 1, w: X.v, n: N}\n\
               a: q: {}\n\
               b: {y: X.v, X=(\"k\" + \"1\"): {v: 1}, z: X.v + 1}\n";
    let want = serde_json::json!({
        "a": {"q": {"v": 1, "w": 1, "n": "q"}},
        "b": {"y": 1, "k1": {"v": 1}, "z": 2},
    });
    assert_eq!(export(src), want);
    let e = error("a: {X=(\"k\" + \"1\"): {v: 1}}\n");
    assert!(e.starts_with("unreferenced alias or let clause X"), "{e}");
}

/// Two lets or aliases of one name in one struct are an error at the second, as the official
/// CUE says it (`alias "X" redeclared in same scope`, the oracle's message and position); in
/// two structs they are two scopes.
#[test]
fn alias_redeclared_in_one_scope() {
    for src in [
        "X=a: 1\nX=b: 2\nc: X\n",
        "let x = 1\nlet x = 2\nc: x\n",
        "let X = 1\nX=b: 2\nc: X\n",
    ] {
        let e = error(src);
        let name = if src.contains("let x") { "x" } else { "X" };
        assert_eq!(
            e,
            format!("alias \"{name}\" redeclared in same scope at t.cue:2:1"),
            "{src:?}"
        );
    }
    let v = export("a: {X=b: 1, c: X}\nd: {X=e: 2, f: X}\n");
    assert_eq!(
        v,
        serde_json::json!({"a": {"b": 1, "c": 1}, "d": {"e": 2, "f": 2}})
    );
}
