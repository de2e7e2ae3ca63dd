//! Fuzz the policy-language parser: any input, read as lossy UTF-8, must parse without
//! panicking, and every diagnostic span must lie inside the input on char boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let parsed = congress_engine::syntax::parse(&src);
    for d in &parsed.diagnostics {
        let (start, end) = (d.span.start as usize, d.span.end as usize);
        assert!(
            start <= end && end <= src.len(),
            "span {:?} outside the input",
            d.span
        );
        assert!(
            src.is_char_boundary(start) && src.is_char_boundary(end),
            "span {:?} splits a char",
            d.span
        );
    }
    for rule in &parsed.rules {
        let end = rule.span.end as usize;
        assert!(
            end <= src.len() && src.is_char_boundary(end),
            "rule span {:?} is bad",
            rule.span
        );
    }
});
