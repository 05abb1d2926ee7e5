//! Compile, evaluate, validate and export arbitrary text with small limits: a value or an
//! error, never a panic, a hang or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let rt = cue::Runtime::with_limits(cue::Limits {
        max_depth: 200,
        max_steps: 100_000,
        max_bytes: 8 << 20,
    });
    if let Ok(v) = rt.compile("fuzz.cue", src).and_then(|p| p.eval()) {
        let _ = v.validate();
        let _ = v.to_json();
        for f in v.fields() {
            let _ = f.value.to_json();
        }
    }
});
