//! The parser on arbitrary text: an AST or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        let _ = cue::parse("fuzz.cue", src);
    }
});
