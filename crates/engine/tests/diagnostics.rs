//! Diagnostics stay bounded on huge input: a 20,000-literal rule or a 20,000-argument atom
//! gives messages and rendered reports of a few KB that still say where (line:col, caret)
//! and what the limit is. Text of comments only is an empty policy.

use congress_engine::syntax::Span;
use congress_engine::{Engine, EngineError, PolicyKind};

/// Bytes one error may take, message or rendered report.
const BOUND: usize = 4096;

fn refused(text: &str) -> EngineError {
    let mut e = Engine::with_default_policies();
    e.create_policy("p", PolicyKind::Nonrecursive).unwrap();
    e.insert_rules("p", text).expect_err("must be refused")
}

/// Every rendered diagnostic of `err` is under [`BOUND`], has `file:line:col` and a caret.
fn rendered_bounded(err: &EngineError) -> Vec<String> {
    let (src, diags) = err.diagnostics().expect("diagnostics");
    assert!(!diags.is_empty());
    diags
        .iter()
        .map(|d| {
            let out = d.render("big.congress", src);
            assert!(out.len() < BOUND, "{} bytes:\n{}", out.len(), &out[..out.len().min(2000)]);
            let (l, c) = d.span.line_col(src);
            assert!(out.contains(&format!("big.congress:{l}:{c}")), "{out}");
            assert!(out.contains('^'), "{out}");
            out
        })
        .collect()
}

fn literals(n: usize, sep: &str) -> String {
    let body: Vec<String> = (0..n).map(|i| format!("q{i}(x)")).collect();
    format!("p(x) :- {}", body.join(sep))
}

#[test]
fn a_20000_literal_rule_is_refused_in_a_few_kb_and_names_the_limit() {
    for sep in [", ", ",\n  "] {
        let err = refused(&literals(20_000, sep));
        let msg = err.to_string();
        assert!(msg.len() < BOUND, "{} bytes", msg.len());
        assert!(msg.contains("1:1: rule has 20000 body literals; the limit is 512"), "{msg}");
        rendered_bounded(&err);
    }
}

#[test]
fn a_20000_argument_atom_is_refused_in_a_few_kb_and_names_the_limit() {
    let args: Vec<String> = (0..20_000).map(|i| format!("a{i}")).collect();
    let text = format!("p(a0) :- q({})", args.join(", "));
    let err = refused(&text);
    let msg = err.to_string();
    assert!(msg.len() < BOUND, "{} bytes", msg.len());
    assert!(msg.contains("literal has 20000 arguments; the limit is 1024"), "{msg}");
    let out = rendered_bounded(&err);
    assert!(out[0].contains("big.congress:1:10"), "{}", out[0]);
}

#[test]
fn a_syntax_error_at_the_end_of_a_huge_line_is_quoted_around_the_caret() {
    let args: Vec<String> = (0..20_000).map(|i| format!("a{i}")).collect();
    // The closing parenthesis is missing.
    let text = format!("p(a0) :- q({} r(1)", args.join(", "));
    let err = refused(&text);
    assert!(err.to_string().len() < BOUND);
    let out = rendered_bounded(&err);
    assert!(out[0].contains('…'), "{}", out[0]);
}

#[test]
fn many_unbound_variables_are_listed_in_part() {
    let vars: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
    let text = format!("p(x) :- q(x), not r({})", vars.join(", "));
    let err = refused(&text);
    let msg = err.to_string();
    assert!(msg.len() < BOUND, "{} bytes", msg.len());
    assert!(msg.contains("and 990 more"), "{msg}");
    rendered_bounded(&err);
}

#[test]
fn many_errors_in_one_text_are_listed_up_to_a_bound() {
    let text: String = (0..100).map(|i| format!("a{i}(x) :- b(y)\n")).collect();
    let err = refused(&text);
    let msg = err.to_string();
    assert!(msg.contains("; and 80 more"), "{msg}");
    assert!(msg.len() < 20 * BOUND);
}

#[test]
fn comments_only_are_an_empty_policy() {
    let mut e = Engine::with_default_policies();
    e.create_policy("p", PolicyKind::Nonrecursive).unwrap();
    for text in ["", "  \n\t\n", "// nothing yet\n", "# a comment\n\n  // another\n"] {
        e.insert_rules("p", text).unwrap_or_else(|err| panic!("{text:?}: {err}"));
    }
    assert!(e.rules("p").unwrap().is_empty());
    // A span past the end of a text renders without panicking.
    let d = congress_engine::syntax::Diagnostic::error("x", "m", Span::new(100, 200));
    assert!(d.render("f", "p(1)").contains("m"));
}
