//! Lexer and parser for Congress's policy language.
//!
//! [`parse`] reads a whole text (a file, a Policy's rule block, a simulate sequence) and
//! reports every error it finds, recovering at statement boundaries; [`parse_one`] is the
//! API form that takes exactly one formula, as Congress's `POST .../rules` does.

pub mod ast;
pub mod diag;
mod lexer;
mod parser;

pub use ast::{Arg, Atom, Literal, Modal, Rule, Sign, Term};
pub use diag::{Diagnostic, LineIndex, Severity, Span};

/// The result of parsing a text: every statement that parsed, and every diagnostic.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub rules: Vec<Rule>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// True when no diagnostic is an error.
    pub fn is_ok(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Why a text is not exactly one formula.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseOneError {
    #[error("syntax error: {}", listed(.0.iter().map(|d| d.message.clone()), .0.len()))]
    Syntax(Vec<Diagnostic>),
    #[error("empty string passed: not a valid rule")]
    Empty,
    #[error("received multiple rules: {}", diag::clip(&listed(.0.iter().map(|r| r.to_string()), .0.len()), diag::MAX_MESSAGE))]
    MultipleRules(Vec<Rule>),
}

/// The first [`diag::MAX_LISTED`] items joined with `; `, and how many more there are.
fn listed(items: impl Iterator<Item = String>, len: usize) -> String {
    let mut out = items.take(diag::MAX_LISTED).collect::<Vec<_>>().join("; ");
    if len > diag::MAX_LISTED {
        out.push_str(&format!("; and {} more", len - diag::MAX_LISTED));
    }
    out
}

/// Parse a whole text. Never panics; errors carry spans into `src`.
pub fn parse(src: &str) -> Parsed {
    parser::parse(src)
}

/// Parse a text that must hold exactly one formula.
pub fn parse_one(src: &str) -> Result<Rule, ParseOneError> {
    let parsed = parse(src);
    if !parsed.is_ok() {
        return Err(ParseOneError::Syntax(parsed.diagnostics));
    }
    let mut rules = parsed.rules;
    match rules.len() {
        0 => Err(ParseOneError::Empty),
        1 => Ok(rules.remove(0)),
        _ => Err(ParseOneError::MultipleRules(rules)),
    }
}
