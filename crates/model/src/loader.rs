//! The policy loader: the one code path by which both the command line (`congress eval`,
//! `check`, `test`, ...) and the operator turn a `Policy` into engine state.
//!
//! spec (+ the `LibraryPolicy` its `libraryRef` names) -> [`statements_from_spec`] (the kind
//! and the labelled, trimmed statements) -> [`stage`] (replace the old version or create, one
//! `insert_rule` per statement, inside the caller's one all-or-nothing transaction) -> on a
//! failed commit, [`diagnose`] (every problem, each with its rule label and `line:col`).
//!
//! The rules, decided here once (and documented in `docs/cli.md` and `docs/operator.md`):
//!
//! - **Kind**: an explicit `spec.kind` wins; else the kind of the `LibraryPolicy` that
//!   `libraryRef` names; else `nonrecursive`.
//! - **Statements**: each `rules[]` entry is one statement. A `text` block is split into one
//!   statement per rule; comment lines (`//` or `#`) right before a statement become its
//!   comment. A block that does not parse stays whole, so all its syntax errors are reported
//!   together; a block of comments only has no statements.
//! - **Trimming**: every statement's text is trimmed on both sides.
//! - **Labels**: a `rules[]` entry is labelled by its `name`, else `rules[i]`; a statement of a
//!   `text` block by `text`; statements taken from a `LibraryPolicy` are prefixed with its name
//!   and a slash (`LIB/name`, `LIB/rules[0]`, `LIB/text`).
//! - **Positions**: `line:col` (1-based, columns in characters) are relative to the statement's
//!   rule entry (`rules[i].rule` as written) or to its `text` block; when the statement was read
//!   from a file, its [`Origin`] gives the file position as well.

use crate::resources::{LibraryPolicySpec, Parameter, ParameterType, PolicySpec, RuleEntry};
use congress_engine::syntax::{self, Diagnostic, LineIndex, Span};
use congress_engine::{Engine, EngineError, PolicyKind, Transaction};
use std::fmt;
use std::path::PathBuf;

/// Where something is in the input files.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: PathBuf,
    /// 1-based YAML document in the file, 0 if not applicable (`.congress`, JSON).
    pub document: usize,
    /// 1-based line in the file.
    pub line: usize,
    /// 1-based column (in characters) in the file.
    pub col: usize,
}

impl Origin {
    pub fn new(file: impl Into<PathBuf>, document: usize, line: usize, col: usize) -> Origin {
        Origin { file: file.into(), document, line, col }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)?;
        if self.document > 0 {
            write!(f, " (document {})", self.document)?;
        }
        Ok(())
    }
}

/// The part of a spec a statement was taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The `rules[i]` entry.
    Rule(usize),
    /// The `text` block (or a whole `.congress` file).
    Text,
    /// A parameter row (a library default, or one the activating Policy gives).
    Parameter,
}

/// One statement (rule or fact) of a policy, labelled for diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// The rule's `name`, `rules[i]` or `text`, prefixed `LIB/` when taken from LibraryPolicy `LIB`.
    pub label: String,
    /// Where in the spec (the policy's own, or the library's) the statement is.
    pub part: Part,
    /// The rule entry's `name`.
    pub name: Option<String>,
    /// The rule entry's `comment`, or the comment lines right before a statement of a block.
    pub comment: Option<String>,
    /// The statement, trimmed.
    pub text: String,
    /// 1-based line of `text`'s first character within its rule entry or text block.
    pub line: usize,
    /// 1-based column (in characters) of `text`'s first character within that line.
    pub column: usize,
    /// Where `text` starts in its file, when read from one (the command line).
    pub origin: Option<Origin>,
}

impl Statement {
    /// A position in [`Statement::text`] as a position in the statement's rule entry or text
    /// block (the position the operator reports).
    pub fn source_position(&self, line: usize, column: usize) -> (usize, usize) {
        if line <= 1 { (self.line, self.column + column.max(1) - 1) } else { (self.line + line - 1, column) }
    }

    /// A position in [`Statement::text`] as a position in its file, when known. The lines of
    /// a statement are assumed to share the indentation of the source's lines (YAML block
    /// scalars strip a common indentation).
    pub fn file_position(&self, line: usize, column: usize) -> Option<Origin> {
        let o = self.origin.as_ref()?;
        let (line, col) = if line <= 1 {
            (o.line, o.col + column.max(1) - 1)
        } else {
            // The source's indentation in the file: the origin's column is `self.column`
            // in the source.
            (o.line + line - 1, (o.col + column).saturating_sub(self.column).max(1))
        };
        Some(Origin { line, col, ..o.clone() })
    }
}

/// What loading a policy version puts into the engine: its kind and its statements.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyStatements {
    pub kind: PolicyKind,
    pub statements: Vec<Statement>,
}

impl PolicyStatements {
    /// A digest of what [`stage`] loads (kind and texts): equal digests load the same rules.
    pub fn digest(&self) -> String {
        let mut d = self.kind.to_string();
        for st in &self.statements {
            d.push('\u{0}');
            d.push_str(&st.text);
        }
        d
    }
}

/// A spec that cannot be turned into statements.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The Policy's spec is invalid (see [`PolicySpec::validate`]).
    #[error("{0}")]
    InvalidSpec(String),
    /// The spec has a `libraryRef`, and the LibraryPolicy it names was not given.
    #[error("LibraryPolicy {0} does not exist")]
    LibraryNotFound(String),
    /// The LibraryPolicy's spec is invalid (see [`LibraryPolicySpec::validate`]).
    #[error("LibraryPolicy {name}: {message}")]
    InvalidLibrary { name: String, message: String },
    /// `libraryRef.version` asks for a version the LibraryPolicy given is not.
    #[error("LibraryPolicy {name} is version {found}, not {wanted}")]
    VersionNotFound { name: String, wanted: String, found: String },
    /// `libraryRef.parameters` names a table the library does not declare, or a row does not
    /// fit its table.
    #[error("{0}")]
    InvalidParameters(#[from] ParameterError),
}

/// A parameter row that does not fit its table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    #[error("libraryRef.parameters.{table}: the library has no parameter table `{table}` (it has: {known})")]
    UnknownTable { table: String, known: String },
    #[error("{at}: {message}")]
    BadRow { at: String, message: String },
}

/// The facts of parameter table `p` with `rows`, labelled `{prefix}parameters.TABLE[i]`: each
/// row checked against the table's columns (count, names, types) and written as a fact the
/// language can read back.
pub fn parameter_facts(
    p: &Parameter,
    rows: &[serde_json::Value],
    prefix: &str,
) -> Result<Vec<Statement>, ParameterError> {
    use serde_json::Value as J;
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let at = format!("{prefix}parameters.{}[{i}]", p.table);
        let bad = |message: String| ParameterError::BadRow { at: at.clone(), message };
        let names = || p.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
        let cells: Vec<&J> = match row {
            J::Array(cells) if cells.len() == p.columns.len() => cells.iter().collect(),
            J::Array(cells) => {
                return Err(bad(format!("{} values for {} columns ({})", cells.len(), p.columns.len(), names())));
            }
            J::Object(m) => {
                if let Some(k) = m.keys().find(|k| !p.columns.iter().any(|c| &c.name == *k)) {
                    return Err(bad(format!("no column `{k}` (columns: {})", names())));
                }
                let mut cells = Vec::new();
                for c in &p.columns {
                    cells.push(m.get(&c.name).ok_or_else(|| bad(format!("column `{}` is missing", c.name)))?);
                }
                cells
            }
            scalar if p.columns.len() == 1 => vec![scalar],
            _ => {
                return Err(bad(format!(
                    "a row of {} columns must be a list or an object ({})",
                    p.columns.len(),
                    names()
                )));
            }
        };
        let mut literals = Vec::with_capacity(cells.len());
        for (c, v) in p.columns.iter().zip(cells) {
            let lit = match (c.type_, v) {
                (ParameterType::String, J::String(s)) if !s.contains('"') => format!("\"{s}\""),
                (ParameterType::String, J::String(s)) if !s.contains('\'') => format!("'{s}'"),
                (ParameterType::String, J::String(_)) => {
                    return Err(bad(format!("column `{}`: a string cannot hold both kinds of quote", c.name)));
                }
                (ParameterType::Integer, J::Number(n)) if n.as_u64().is_some() => n.to_string(),
                (ParameterType::Number, J::Number(n)) if n.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0) => {
                    n.to_string()
                }
                (ParameterType::Integer | ParameterType::Number, J::Number(n)) => {
                    return Err(bad(format!(
                        "column `{}`: {n} cannot be written in the policy language (no negative literals)",
                        c.name
                    )));
                }
                (t, v) => {
                    let want = match t {
                        ParameterType::String => "a string",
                        ParameterType::Integer => "a whole number",
                        ParameterType::Number => "a number",
                    };
                    return Err(bad(format!("column `{}` wants {want}, not {v}", c.name)));
                }
            };
            literals.push(lit);
        }
        let text = format!("{}({})", p.table, literals.join(", "));
        if let Err(e) = syntax::parse_one(&text) {
            return Err(bad(format!("the row cannot be written as a fact: {e}")));
        }
        out.push(Statement {
            label: at.clone(),
            part: Part::Parameter,
            name: None,
            comment: None,
            text,
            line: 1,
            column: 1,
            origin: None,
        });
    }
    Ok(out)
}

/// The kind and statements of a `Policy`. `library` is the `LibraryPolicy` that
/// `spec.libraryRef` names, `(name, spec)`, resolved by the caller (the operator reads it
/// from the API server, the command line from the loaded files); it is ignored when the
/// spec has no `libraryRef`.
pub fn statements_from_spec(
    spec: &PolicySpec,
    library: Option<(&str, &LibraryPolicySpec)>,
) -> Result<PolicyStatements, SpecError> {
    spec.validate().map_err(SpecError::InvalidSpec)?;
    let Some(lib) = &spec.library_ref else {
        return Ok(PolicyStatements {
            kind: spec.kind.unwrap_or_default().into(),
            statements: spec_statements(&spec.rules, &spec.text, ""),
        });
    };
    let Some((name, lspec)) = library.filter(|(n, _)| *n == lib.name) else {
        return Err(SpecError::LibraryNotFound(lib.name.clone()));
    };
    lspec.validate().map_err(|message| SpecError::InvalidLibrary { name: name.to_string(), message })?;
    if let Some(wanted) = &lib.version
        && wanted != lspec.version()
    {
        return Err(SpecError::VersionNotFound {
            name: name.to_string(),
            wanted: wanted.clone(),
            found: lspec.version().to_string(),
        });
    }
    if let Some(t) = lib.parameters.keys().find(|t| !lspec.parameters.iter().any(|p| &p.table == *t)) {
        let known: Vec<&str> = lspec.parameters.iter().map(|p| p.table.as_str()).collect();
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        return Err(ParameterError::UnknownTable { table: t.clone(), known }.into());
    }
    let prefix = format!("{name}/");
    let mut statements = Vec::new();
    for p in &lspec.parameters {
        statements.extend(match lib.parameters.get(&p.table) {
            Some(rows) => parameter_facts(p, rows, "libraryRef.")?,
            None => parameter_facts(p, &p.default, &prefix)?,
        });
    }
    statements.extend(spec_statements(&lspec.rules, &lspec.text, &prefix));
    Ok(PolicyStatements { kind: spec.kind.or(lspec.kind).unwrap_or_default().into(), statements })
}

/// The kind and statements of a `LibraryPolicy` on its own (`congress check` analyses the
/// ones no Policy activates): its kind, else `nonrecursive`; its parameters' default rows,
/// then its rules; labels without a prefix.
pub fn library_statements(spec: &LibraryPolicySpec) -> Result<PolicyStatements, String> {
    spec.validate()?;
    let mut statements = Vec::new();
    for p in &spec.parameters {
        statements.extend(parameter_facts(p, &p.default, "").map_err(|e| e.to_string())?);
    }
    statements.extend(spec_statements(&spec.rules, &spec.text, ""));
    Ok(PolicyStatements { kind: spec.kind.unwrap_or_default().into(), statements })
}

fn spec_statements(rules: &Option<Vec<RuleEntry>>, text: &Option<String>, prefix: &str) -> Vec<Statement> {
    match (rules, text) {
        (Some(rules), _) => rule_statements(rules, prefix),
        (None, Some(text)) => text_statements(text, &format!("{prefix}text")),
        (None, None) => Vec::new(),
    }
}

/// One statement per `rules[]` entry, labelled by its `name` (else `rules[i]`) after `prefix`.
pub fn rule_statements(rules: &[RuleEntry], prefix: &str) -> Vec<Statement> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let lead = r.rule.len() - r.rule.trim_start().len();
            let (line, column) = Span::new(lead, lead).line_col(&r.rule);
            Statement {
                label: format!("{prefix}{}", r.name.clone().unwrap_or_else(|| format!("rules[{i}]"))),
                part: Part::Rule(i),
                name: r.name.clone(),
                comment: r.comment.clone(),
                text: r.rule.trim().to_string(),
                line,
                column,
                origin: None,
            }
        })
        .collect()
}

/// Split a block of statements (a `text` block, a `.congress` file) into one statement per
/// rule, each labelled `label`, with its position in the block and the comment lines right
/// before it. A block that does not parse stays whole, so the engine reports all of its
/// syntax errors at once; a block with no statements (blank, or comments only) gives none.
pub fn text_statements(block: &str, label: &str) -> Vec<Statement> {
    let lead = block.len() - block.trim_start().len();
    let text = block.trim();
    if text.is_empty() {
        return Vec::new();
    }
    let lines = LineIndex::new(block);
    let statement = |start: usize, end: usize, comment: Option<String>| {
        let (line, column) = lines.line_col(block, lead + start);
        Statement {
            label: label.to_string(),
            part: Part::Text,
            name: None,
            comment,
            text: text[start..end].to_string(),
            line,
            column,
            origin: None,
        }
    };
    let parsed = syntax::parse(text);
    if !parsed.is_ok() {
        return vec![statement(0, text.len(), None)];
    }
    let mut out = Vec::new();
    let mut prev_end = 0usize;
    for r in &parsed.rules {
        let (s, e) = ((r.span.start as usize).min(text.len()), (r.span.end as usize).min(text.len()));
        let s = s + (text[s..e].len() - text[s..e].trim_start().len());
        let e = s + text[s..e].trim_end().len();
        // Comment lines right before a statement become its comment.
        let comment: Vec<&str> = text[prev_end.min(s)..s]
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("//").or_else(|| l.strip_prefix('#')))
            .map(str::trim)
            .collect();
        out.push(statement(s, e, (!comment.is_empty()).then(|| comment.join("\n"))));
        prev_end = e;
    }
    out
}

/// Stage a policy version in `txn`: replace the version loaded before by an empty policy
/// (when `replace_existing`; otherwise create the policy), and insert every statement on its own
/// (`insert_rule`: exactly one statement each). Nothing happens until the caller commits
/// `txn`, which takes all of it or nothing.
pub fn stage(
    txn: &mut Transaction<'_>,
    policy: &str,
    kind: PolicyKind,
    statements: &[Statement],
    replace_existing: bool,
) {
    if replace_existing {
        // Replaced, not deleted: a system policy (`classification`, `action`) cannot be
        // deleted, but its rules can be replaced.
        txn.replace_policy(policy, kind);
    } else {
        txn.create_policy(policy, kind);
    }
    for st in statements {
        txn.insert_rule(policy, &st.text);
    }
}

/// One policy of a transaction that [`stage`] built, for [`diagnose`].
#[derive(Clone, Copy, Debug)]
pub struct Staged<'a> {
    /// The policy's name in the engine.
    pub policy: &'a str,
    pub kind: PolicyKind,
    pub statements: &'a [Statement],
}

/// What kind of problem a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// The statement does not parse.
    Syntax,
    /// The statement parses but is refused by analysis (safety, arity, recursion, kinds).
    Analysis,
    /// Anything else the engine refused (a duplicate statement, two statements in one rule
    /// entry, a policy that cannot be created, ...).
    Other,
}

impl ProblemKind {
    fn of(e: &EngineError) -> ProblemKind {
        match e {
            EngineError::Syntax { .. } => ProblemKind::Syntax,
            EngineError::Analysis { .. } => ProblemKind::Analysis,
            _ => ProblemKind::Other,
        }
    }
}

/// One problem of a failed transaction, placed at its statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The policy's name in the engine.
    pub policy: String,
    /// The statement's index in the policy's statements; `None` for a problem of the policy
    /// itself (it cannot be created) or one no statement could be found for.
    pub statement: Option<usize>,
    /// The statement's label (see [`Statement::label`]); `None` with `statement`.
    pub rule: Option<String>,
    /// 1-based line within the rule entry or text block (1 without a statement).
    pub line: usize,
    /// 1-based column (in characters; 1 without a statement).
    pub column: usize,
    pub message: String,
    pub kind: ProblemKind,
    /// Where the problem is in its file, when the statement was read from one.
    pub origin: Option<Origin>,
    /// The engine's diagnostic, its span relative to the statement's text (for snippets).
    pub diagnostic: Option<Diagnostic>,
}

/// The transaction that [`stage`] built for `staged` failed with `first`: replay it one
/// statement at a time on `before` (a copy of the engine as it was before the transaction)
/// to find every problem, each placed at its statement. Statements of a policy that cannot
/// be created are skipped. When the replay finds nothing (a failure that depends on the
/// order of statements), `first` is placed as well as possible.
pub fn diagnose(mut before: Engine, staged: &[Staged<'_>], first: &EngineError) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut created = Vec::with_capacity(staged.len());
    for p in staged {
        let exists = before.policy_kind(p.policy).is_some();
        let mut txn = before.transaction();
        stage(&mut txn, p.policy, p.kind, &[], exists);
        match txn.commit() {
            Ok(_) => created.push(true),
            Err(e) => {
                created.push(false);
                problems.push(policy_problem(p.policy, &e));
            }
        }
    }
    for (p, created) in staged.iter().zip(created) {
        if !created {
            continue;
        }
        for (i, st) in p.statements.iter().enumerate() {
            if let Err(e) = before.insert_rule(p.policy, &st.text) {
                problems.extend(statement_problems(p.policy, i, st, &e));
            }
        }
    }
    if problems.is_empty() {
        let found = first.diagnostics().and_then(|(src, _)| {
            staged.iter().find_map(|p| {
                p.statements
                    .iter()
                    .position(|s| s.text == src || canonical(&s.text).as_deref() == Some(src))
                    .map(|i| (p, i))
            })
        });
        match found {
            Some((p, i)) => problems.extend(statement_problems(p.policy, i, &p.statements[i], first)),
            None => problems.push(policy_problem(staged.first().map_or("", |p| p.policy), first)),
        }
    }
    problems
}

fn canonical(text: &str) -> Option<String> {
    syntax::parse_one(text).ok().map(|r| r.to_string())
}

fn policy_problem(policy: &str, e: &EngineError) -> Problem {
    Problem {
        policy: policy.to_string(),
        statement: None,
        rule: None,
        line: 1,
        column: 1,
        message: e.to_string(),
        kind: ProblemKind::of(e),
        origin: None,
        diagnostic: None,
    }
}

/// The engine's error for one statement, one problem per diagnostic. Errors without
/// diagnostics (and diagnostics into another text) point at the statement's first line.
fn statement_problems(policy: &str, index: usize, st: &Statement, e: &EngineError) -> Vec<Problem> {
    let first_line = Span::new(0, st.text.lines().next().unwrap_or("").len());
    let mut diags: Vec<Diagnostic> = match e.diagnostics() {
        Some((src, diags)) => diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                let mut d = d.clone();
                if src != st.text {
                    d.span = first_line;
                }
                d
            })
            .collect(),
        None => Vec::new(),
    };
    if diags.is_empty() {
        diags.push(Diagnostic::error("policy", e.to_string(), first_line));
    }
    let kind = ProblemKind::of(e);
    diags
        .into_iter()
        .map(|d| {
            let (l, c) = d.span.line_col(&st.text);
            let (line, column) = st.source_position(l, c);
            Problem {
                policy: policy.to_string(),
                statement: Some(index),
                rule: Some(st.label.clone()),
                line,
                column,
                message: d.message.clone(),
                kind,
                origin: st.file_position(l, c),
                diagnostic: Some(d),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
