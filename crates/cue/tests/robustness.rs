//! No input may panic, hang or overflow the stack: truncated and mutated corpus files,
//! pathological nesting and runaway recursion must all end in a value or an error.

use std::path::Path;

fn run(src: &str) {
    let rt = cue::Runtime::with_limits(cue::Limits {
        max_depth: 400,
        max_steps: 200_000,
        max_bytes: 16 << 20,
    });
    if let Ok(v) = rt.compile("fuzz.cue", src).and_then(|p| p.eval()) {
        let _ = v.validate();
        let _ = v.to_json();
    }
}

#[test]
fn truncated_and_mutated_inputs_do_not_panic() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kubevela/render");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus present")
        .flatten()
        .map(|e| e.path())
        .collect();
    cases.sort();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in cases.iter().step_by(16) {
        let src = std::fs::read_to_string(case.join("input.cue")).expect("input");
        let bytes = src.as_bytes();
        for _ in 0..6 {
            // truncate at a char boundary
            let mut cut = (next() as usize) % (bytes.len() + 1);
            while !src.is_char_boundary(cut) {
                cut -= 1;
            }
            run(&src[..cut]);
            // delete a small range
            let a = (next() as usize) % bytes.len().max(1);
            let b = (a + (next() as usize) % 40).min(bytes.len());
            let mut m = bytes[..a].to_vec();
            m.extend_from_slice(&bytes[b..]);
            run(&String::from_utf8_lossy(&m));
            // replace a byte with a syntax character
            let pos = (next() as usize) % bytes.len().max(1);
            let mut m = bytes.to_vec();
            let syntax = b"{}[]()\":,|&*!?_#@\\\n";
            m[pos] = syntax[(next() as usize) % syntax.len()];
            run(&String::from_utf8_lossy(&m));
        }
    }
}

#[test]
fn pathological_inputs_end_in_errors() {
    let deep_list = format!("a: {}1{}", "[".repeat(5000), "]".repeat(5000));
    let deep_struct = format!("a: {}1{}", "{b: ".repeat(5000), "}".repeat(5000));
    let deep_parens = format!("a: {}1{}", "(".repeat(5000), ")".repeat(5000));
    for src in [
        deep_list.as_str(),
        deep_struct.as_str(),
        deep_parens.as_str(),
        "#L: {next: #L}\nx: #L",
        "a: b\nb: a\nc: a + 1",
        "x: [for i in list.Range(0, 1000000, 1) {i}]\nimport \"list\"",
        "import \"strings\"\nx: strings.Repeat(\"ab\", 100000000)",
        "a: \"\\(a)x\"",
        "#T: {sub: #T | null}\nv: #T",
        "l: [1, 2] + l",
        "\"\\u",
        "a: 1Ki + 0x + _|",
    ] {
        run(src);
    }
    // A program exceeding the step limit reports it.
    let rt = cue::Runtime::with_limits(cue::Limits {
        max_depth: 100,
        max_steps: 1000,
        max_bytes: 1 << 20,
    });
    let p = rt.compile("t.cue", "x: [for i in [1,2,3,4,5,6,7,8,9,10] for j in [1,2,3,4,5,6,7,8,9,10] for k in [1,2,3,4,5,6,7,8,9,10] {i*j*k}]").expect("compile");
    let r = p.eval().and_then(|v| v.to_json());
    assert!(r.is_err(), "step limit not enforced");
}

/// Fuzz finding (cargo fuzz, target `eval`, 2026-11-25): a mutated resource-update policy whose
/// `#Strategy` has a regular field `strategy: #Strategy`. It unrolled until the limits stopped it,
/// ~10 s per run with the fuzzer's 100,000-step limit and over a minute with the default limits.
/// It must be reported as a structural cycle where it is declared.
#[test]
fn fuzz_self_embedding_definition_is_a_structural_cycle() {
    const ARTIFACT: &str = r####""resource-update": {
	annotations: {}
	description: "Configure the update strategy for selected resources."
	labels: {}
	attributes: {}
	type: "policy"
}

template: {
	#PolicyRule: {
		// +uLsage=Specify how to select the targets of the rule
		selector: #RuleSelector
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating 		oamTypes?: [...string]
		// +usage=Select resources by trait types
		traitTypes?: [...string]
		// +usage=Select resources by resource types (like rule
		selector: #RuleSelector
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=Specify which fields would trigger recreation when updated
		recreateFields?: [...string]
	}

	#RuleSelector: {
		// +usage=Select resources by component names
		componentNames?: [...string]
		// +usage=Select resources by component types
		componentTypes?: [...string]
		// +usage=Select resources by oamTypes (COMPONENT or TRAIT)
		oamTypes?: [...string]
		// +usage=Select resources by trait types
		traitTypes?: [...string]
		// +usage=Select resources by resource types (like Deployment)
		resourceTypes?: [...string]
		// +usage=Select resources by their names
		resourceNames?: [...string]
	ames
		resourceNames?: [...string]
	}

	parameter: {
		// +usage=Specify the list of rules to control resource update strategy at resource level.
		rules?: [...#PolicyRule]
	}
}
"####;
    // two more units of the same fuzz run (a timeout and a slow unit), same root cause
    const ARTIFACT2: &str = r####""resource-update": {
	annotations: {}
	description: "Configure the update strategy for selected resources."
	labels: {}
	attributes: {}
	type: "policy"
}

template: {
	#PolicyRule: {
		// +usage=Specify how to select the targets of the rule
		selector: #RuleSelector
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=Specify which fields would trigger recreation when updated
		recreateFields?: [...string]
	}

	#RuleSelector: {
		// +usage=Select resources by component names
		componentNames?: [...string]
		//OOOOOOOOOOOOOOOOOOOOOOOOOOOO +usage=Select resources by component types
		componentTypes?: [...string]
		// +usage=Select resources by oamTypes (COMPONENT or TRAIT)
		oamTypes?: [...string]
		// +usage=Select resources by trait types
		traitTypes?: [...string]
		// +usage=Select resources by resource types (like rule
		selector: #RuleSelector
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=Specify which fields would trigger recreation when updated
		recreateFields?: [...string]
	}

	#RuleSelector: {
		// +usage=Select resources by component names
		componentNames?: [...string]
		// +usage=Select resources by component types
		componentTypes?: [...string]
		// +usage=Select resources by oamTypes (COMPting target resources
		op: *"patch" | "replace"
		// +usage=Specify which fields would trigger recreation when updated
		recreateFields?: [...string]
	}

	#RuleSelector: {
		// +usage=Select resources by component names
		componentNames?: [...string]
		// +usage=Select resources by component types
		componentTypes?: [...string]
		// +usage=Select resources by oamTypes (COMPONENT or TRAIT)
		oamTypes?: [...string]
		// +usage=Select resources by trait types
		traitTypes?: [...string]
		// +usage=Select resources by resource types (like rule
		selector: #RuleSelector
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=Specify which fields woONENT or TRAIT)
		oamTypes?: [...string]
		// +usage=Select resources by trait types
		traitTypes?: [...string]
		// +usage=Select resources by resource types (like Deployment)
		resourceTypes?: [...string]
		// +usage=Select resources by their names
		resourceNames?: [...string]
	ames
		resourceNames?: [...string]
	}

	parameter: {
		// +usage=Specify the list of rules to control resource update strategy at resource level.
		rules?: [...#PolicyRule]
	}
}
"####;
    const ARTIFACT3: &str = r####""resource-update": {
	annotations: {}
	description: "Configure the update strategy for selected resources."
	labels: {}
	attributes: {}
	ttpe: "policy"
}

template: {
	#PolicyRule: {
		// +usage=Specify how to select the targets of the rule
		selector: #RuleSelector
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=Specify which fields would trigger recraetion when updated
		recreateFields?: [...string]
	}

	#RuleSelector: {
		// +usage=Select resources by component names
		componentNames?: [...string]
		// +usage=Select resources by component types
		componentTypes?: [...string]
		// +usage=Select resources by oamTypes (COMPONENT or TRAIT)
		oamTypes?: [...string]
		// +usage=Select resources by trait types
		traitTypes?: [...string]
		// +usage=Select resources by resource types (like rule
		selector: #RuleSelector
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=Specify which fields would trigger recreation when updated
		recreateFields?: [...string]
	}

	#RuleSelector: {
		// +usage=Select resources by component names
		componentNames?: [...string]
		// +usage=Select resources by component types
		componentTypes?: [...string]
		// +usage=Select resources by oamTypes (COMPting target resources
		op: *"patch" | "replace"
		// +usage=Specify which fields would trigger recreation when updated
		recreateFields?: [...string]
	}

	#RuleSelector: {
		// +usage=Select resources by component names
		componentNames?: [...string]
		// +usage=Select resources by component types
		componentTypes?: [...string]
		// +usage=Select resources by oamTypes (COMPONENT or TRAIT)
		oamTypes?: [...string]
		// +usage=Select resources by trait types
		traitTypes?: [...string]
		// +usage=Select resources by resource types (like rule
		selector: #RuleSelector
		// +usage=The update strategy for the target resources
		strategy: #Strategy
	}

	#Strategy: {
		// +usage=Specify the op for updating target resources
		op: *"patch" | "replace"
		// +usage=Specify which fields woONENT or TRAIT)
		oamTypes?: [...string]
		// +usage=Select resources by trait types
		traitTypes?: [...string]
		// +usage=Select resources by resource types (like Deployment)
		resourceTypes?: [...string]
		// +usage=Select resources by their names
		resourceNames?: [...string]
	ames
		resourceNames?: [...string]
	}

	parameter: {
		// +usage=Specify the list of rules to control resource update strategy at resource level.
		rules?: [...#PolicyRule]
	}
}
"####;
    for src in [
        ARTIFACT,
        ARTIFACT2,
        ARTIFACT3,
        "#S: {s: #S}\nx: #S",
        "#S: {a: {b: #S & {}}}\nx: #S",
        "x: {y: x}",
    ] {
        let rt = cue::Runtime::with_limits(cue::Limits {
            max_depth: 200,
            max_steps: 100_000,
            max_bytes: 8 << 20,
        });
        let v = rt
            .compile("fuzz.cue", src)
            .and_then(|p| p.eval())
            .expect("eval");
        let errs: Vec<String> = v
            .all_fields()
            .iter()
            .flat_map(|f| walk_errors(&f.value))
            .collect();
        assert!(
            errs.iter()
                .any(|e| e.contains("structural cycle") && e.contains("own declaration")),
            "{src}: {errs:?}"
        );
        assert!(
            !errs.iter().any(|e| e.contains("limit exceeded")),
            "{errs:?}"
        );
    }
    // an optional self reference is not a cycle: the data decides how deep it goes
    let v = cue::Runtime::new()
        .compile(
            "t.cue",
            "#S: {next?: #S, v: int}\nx: #S & {v: 1, next: {v: 2, next: {v: 3}}}",
        )
        .and_then(|p| p.eval())
        .and_then(|v| v.to_json())
        .expect("optional recursion");
    assert_eq!(
        v,
        serde_json::json!({"x": {"v": 1, "next": {"v": 2, "next": {"v": 3}}}})
    );
}

fn walk_errors(v: &cue::Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = v.error() {
        out.push(e.to_string());
    }
    for f in v.all_fields() {
        out.extend(walk_errors(&f.value));
    }
    out
}
