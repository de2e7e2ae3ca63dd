//! Property tests for the policy-language parser: on any input it must return (never
//! panic), and every span it reports must lie inside the input on char boundaries.

use congress_engine::Value;
use congress_engine::syntax::{Arg, Literal, Parsed, Rule, Span, Term, parse};
use proptest::prelude::*;

/// Pieces of the language (and near misses) for building "token soups".
const TOKENS: &[&str] = &[
    "p",
    "q",
    "nova",
    "x",
    "_",
    "not",
    "NOT",
    "!",
    "execute",
    "insert",
    "delete",
    "(",
    ")",
    ",",
    ":-",
    ":",
    "=",
    "+",
    "-",
    ".",
    ";",
    "[",
    "]",
    "\"s\"",
    "'t'",
    "u\"x\"",
    "\"\"\"tq\"\"\"",
    "\"",
    "'",
    "1",
    "0",
    "007",
    "0x1F",
    "1.5",
    ".5",
    "2.",
    "1e3",
    "99999999999999999999",
    "//c\n",
    "# h\n",
    "/*",
    "*/",
    "\n",
    " ",
    "\t",
    "@",
    "é",
    "\\",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..64).prop_map(|tokens| tokens.concat())
}

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..256).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

fn assert_span_ok(src: &str, span: Span, what: &str) {
    let (start, end) = (span.start as usize, span.end as usize);
    assert!(start <= end && end <= src.len(), "{what} span {span:?} outside input of {} bytes: {src:?}", src.len());
    assert!(src.is_char_boundary(start) && src.is_char_boundary(end), "{what} span {span:?} splits a char: {src:?}");
}

fn literal_spans(literal: &Literal) -> impl Iterator<Item = Span> + '_ {
    let atom = &literal.atom;
    [literal.span, atom.span, atom.name_span].into_iter().chain(atom.args.iter().map(Arg::span))
}

/// Strings print in double quotes with no escaping, so one holding a quote, a backslash
/// or a line break does not print as a literal that reads back the same.
fn prints_faithfully(rule: &Rule) -> bool {
    let awkward = |s: &str| s.contains(['"', '\\', '\n', '\r']);
    rule.heads.iter().chain(&rule.body).flat_map(|l| &l.atom.args).all(|arg| match arg.term() {
        Term::Const(Value::Str(s)) => !awkward(s),
        _ => true,
    })
}

fn check(src: &str) -> Parsed {
    let parsed = parse(src);
    for d in &parsed.diagnostics {
        assert_span_ok(src, d.span, "diagnostic");
        assert!(!d.message.is_empty());
        assert!(d.code == "lex" || d.code == "parse", "unexpected code {}", d.code);
    }
    for rule in &parsed.rules {
        assert_span_ok(src, rule.span, "rule");
        for literal in rule.heads.iter().chain(&rule.body) {
            for span in literal_spans(literal) {
                assert_span_ok(src, span, "literal");
            }
        }
    }
    parsed
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(src in arbitrary_text()) {
        check(&src);
    }

    #[test]
    fn token_soups_never_panic(src in token_soup()) {
        check(&src);
    }

    /// Printing a parsed rule and parsing the text again gives the same rule text.
    #[test]
    fn printed_rules_reparse(src in token_soup()) {
        let parsed = check(&src);
        for rule in parsed.rules.iter().filter(|r| prints_faithfully(r)) {
            let text = rule.to_string();
            let again = parse(&text);
            prop_assert!(again.diagnostics.is_empty(), "{:?} -> {:?}: {:?}", src, text, again.diagnostics);
            prop_assert_eq!(again.rules.len(), 1);
            prop_assert_eq!(again.rules[0].to_string(), text);
        }
    }
}

#[test]
fn error_recovery_terminates_on_every_prefix() {
    let src = "p(x) :- q(x), not r(\"a\", 1.5, id=y)\nexecute[nova:s+(x)] :- p(x).\nbad(-1) ; good(1)";
    for end in (0..=src.len()).filter(|i| src.is_char_boundary(*i)) {
        check(&src[..end]);
    }
}
