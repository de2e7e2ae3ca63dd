//! The abstract syntax of Congress's policy language, with source spans on every node.
//!
//! A statement is a [`Rule`]; a fact is a rule with an empty body. Column references
//! (`id=x`, `3=x`) are kept as written here and compiled away by analysis against the
//! schemas the engine knows.

use super::diag::Span;
use crate::value::Value;
use std::fmt;

/// A term in argument position.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// Any identifier in argument position, including `_`, `True` and `False`.
    Var(String),
    /// A string, integer or float literal.
    Const(Value),
}

/// One argument of an atom.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// `x`
    Positional { term: Term, span: Span },
    /// `name=x`
    Named { column: String, term: Term, span: Span },
    /// `3=x` (zero-based column number)
    Numbered { index: u64, term: Term, span: Span },
}

impl Arg {
    /// The argument's term.
    pub fn term(&self) -> &Term {
        match self {
            Arg::Positional { term, .. } | Arg::Named { term, .. } | Arg::Numbered { term, .. } => term,
        }
    }

    /// Where the argument is written.
    pub fn span(&self) -> Span {
        match self {
            Arg::Positional { span, .. } | Arg::Named { span, .. } | Arg::Numbered { span, .. } => *span,
        }
    }
}

/// `+`/`-` suffix on a table name (`p+(x)`), used by action policies and simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sign {
    Plus,
    Minus,
}

/// A modal wrapping an atom: `execute[...]`, `insert[...]`, `delete[...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modal {
    Execute,
    Insert,
    Delete,
}

impl Modal {
    pub fn keyword(self) -> &'static str {
        match self {
            Modal::Execute => "execute",
            Modal::Insert => "insert",
            Modal::Delete => "delete",
        }
    }
}

/// `policy:table(args)`; the first `:` splits policy from table (`a:b:c` is policy `a`,
/// table `b:c`).
#[derive(Clone, Debug, PartialEq)]
pub struct Atom {
    pub policy: Option<String>,
    pub table: String,
    pub sign: Option<Sign>,
    pub args: Vec<Arg>,
    /// The whole atom.
    pub span: Span,
    /// Just the (possibly qualified) name.
    pub name_span: Span,
}

/// An atom, possibly negated, possibly under a modal.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub negated: bool,
    pub modal: Option<Modal>,
    pub atom: Atom,
    pub span: Span,
}

/// `heads :- body`, or a fact when `body` is empty. Multiple heads parse and are rejected
/// by analysis, as in Congress.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub heads: Vec<Literal>,
    pub body: Vec<Literal>,
    pub span: Span,
}

impl Rule {
    /// True for a statement with no body.
    pub fn is_fact(&self) -> bool {
        self.body.is_empty()
    }
}

fn write_term(f: &mut fmt::Formatter<'_>, t: &Term) -> fmt::Result {
    match t {
        Term::Var(v) => f.write_str(v),
        Term::Const(c) => write!(f, "{c}"),
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.policy {
            write!(f, "{p}:")?;
        }
        f.write_str(&self.table)?;
        match self.sign {
            Some(Sign::Plus) => f.write_str("+")?,
            Some(Sign::Minus) => f.write_str("-")?,
            None => {}
        }
        f.write_str("(")?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match a {
                Arg::Positional { term, .. } => write_term(f, term)?,
                Arg::Named { column, term, .. } => {
                    write!(f, "{column}=")?;
                    write_term(f, term)?
                }
                Arg::Numbered { index, term, .. } => {
                    write!(f, "{index}=")?;
                    write_term(f, term)?
                }
            }
        }
        f.write_str(")")
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_str("not ")?;
        }
        match self.modal {
            Some(m) => write!(f, "{}[{}]", m.keyword(), self.atom),
            None => write!(f, "{}", self.atom),
        }
    }
}

/// Canonical text: `head :- a, b` with `, ` separators; facts print as the atom alone.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, h) in self.heads.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{h}")?;
        }
        if !self.body.is_empty() {
            f.write_str(" :- ")?;
            for (i, b) in self.body.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{b}")?;
            }
        }
        Ok(())
    }
}
