//! Comprehensions whose conditions depend on fields other comprehensions of the same struct
//! define. Expected results are the official CUE's (checked with `node oracle.mjs` in
//! ../shared/conformance).

fn export(src: &str, expr: &str) -> String {
    let p = cue::Runtime::new()
        .compile("t.cue", src)
        .unwrap_or_else(|e| panic!("compile: {e}"));
    let v = p.eval().unwrap_or_else(|e| panic!("eval: {e}"));
    v.validate().unwrap_or_else(|e| panic!("validate: {e}"));
    let x = v.lookup(expr).unwrap_or_else(|| panic!("{expr} not found"));
    let j = x.to_json().unwrap_or_else(|e| panic!("export: {e}"));
    serde_json::to_string(&j).unwrap_or_default()
}

/// Equal as JSON values, in any field order (the oracle is CUE v0.4, whose order of fields
/// yielded by comprehensions differs from current CUE's).
fn same_fields(got: &str, want: &str) {
    let g: serde_json::Value = serde_json::from_str(got).expect("JSON text");
    let w: serde_json::Value = serde_json::from_str(want).expect("JSON text");
    assert_eq!(g, w, "got {got}, want {want}");
}

/// A field set inside a nested `if` is seen by a later `if` at the same level.
#[test]
fn nested_if_field_seen_by_later_if() {
    let src = r#"
x: {
	if true {
		if true { a: 1 }
	}
	if x.a == 1 { b: 2 }
}
"#;
    assert_eq!(export(src, "x"), r#"{"a":1,"b":2}"#);
}

/// The same through a deeper nesting and a `for` in between.
#[test]
fn deeply_nested_comprehension_field_seen_by_later_if() {
    let src = r#"
x: {
	if true {
		for k in ["a"] {
			if true { "\(k)": 1 }
		}
	}
	if x.a == 1 { b: 2 }
	c: 3
}
"#;
    same_fields(&export(src, "x"), r#"{"a":1,"b":2,"c":3}"#);
}

/// A condition written before the comprehension that defines the field it tests.
#[test]
fn if_before_the_comprehension_defining_its_field() {
    let src = r#"
x: {
	if x.a == 1 { b: 2 }
	if true {
		if true { a: 1 }
	}
}
"#;
    same_fields(&export(src, "x"), r#"{"a":1,"b":2}"#);
}

/// A condition that never becomes true or complete still fails: deferring it must not hide it.
#[test]
fn condition_on_missing_field_still_incomplete() {
    let src = r#"
x: {
	if true { a: 1 }
	if x.nope == 1 { b: 2 }
}
"#;
    let p = cue::Runtime::new().compile("t.cue", src).expect("compiles");
    let v = p.eval().expect("evaluates");
    let x = v.lookup("x").expect("field exists");
    let e = x.to_json().expect_err("an error");
    assert!(e.to_string().contains("nope"), "{e}");
}
