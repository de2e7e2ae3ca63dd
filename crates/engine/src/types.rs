//! The engine's public types: policy kinds, schemas, commits and their deltas, errors,
//! proofs, warnings and simulate requests. The [`Engine`](crate::Engine) itself lives in
//! `engine.rs`, transaction staging in `transaction.rs`.

use crate::syntax::diag::{MAX_MESSAGE, MAX_RULE_TEXT, clip};
use crate::syntax::{Diagnostic, Term};
use crate::value::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The kind of a policy, as in Congress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    Nonrecursive,
    Action,
    Database,
    Materialized,
    Datasource,
    Z3,
}

impl FromStr for PolicyKind {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "nonrecursive" => PolicyKind::Nonrecursive,
            "action" => PolicyKind::Action,
            "database" => PolicyKind::Database,
            "materialized" => PolicyKind::Materialized,
            "datasource" => PolicyKind::Datasource,
            "z3" => PolicyKind::Z3,
            _ => return Err(EngineError::UnknownKind(s.to_string())),
        })
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyKind::Nonrecursive => "nonrecursive",
            PolicyKind::Action => "action",
            PolicyKind::Database => "database",
            PolicyKind::Materialized => "materialized",
            PolicyKind::Datasource => "datasource",
            PolicyKind::Z3 => "z3",
        })
    }
}

/// A datasource's schema: table name -> column names.
pub type Schema = BTreeMap<String, Vec<String>>;

/// Rows of one table that appeared and disappeared in one commit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableDelta {
    pub policy: String,
    /// The table as named inside its policy (`servers`, or `nova:servers.pause` for an
    /// execute table, with `modal` set).
    pub table: String,
    pub execute: bool,
    pub added: Vec<Vec<Value>>,
    pub removed: Vec<Vec<Value>>,
}

/// An action to send to the one service that owns it. The names are shared by every
/// action of one execute table (a commit may fire tens of thousands: one allocation per
/// name per action was a fifth of such a commit's time).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionEvent {
    pub service: Arc<str>,
    pub action: Arc<str>,
    pub args: Vec<Value>,
    /// The policy whose execute rule produced the row.
    pub policy: Arc<str>,
}

/// What one committed transaction changed.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    /// Net row changes per table (tables with no net change are absent).
    pub changes: Vec<TableDelta>,
    /// Actions that fire: rows newly present in an `execute[...]` table.
    pub actions: Vec<ActionEvent>,
}

/// Everything that can go wrong in a change or a query.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("syntax error: {}", describe_diags(.source_text, .diagnostics))]
    Syntax { source_text: String, diagnostics: Vec<Diagnostic> },
    #[error("{}", describe_diags(.source_text, .diagnostics))]
    Analysis { source_text: String, diagnostics: Vec<Diagnostic> },
    #[error("empty string passed: not a valid rule")]
    EmptyRule,
    #[error("received multiple rules: {}", clip(.0, MAX_MESSAGE))]
    MultipleRules(String),
    #[error("rule already exists in policy {policy}: {}", clip(.rule, MAX_RULE_TEXT))]
    RuleExists { policy: String, rule: String },
    #[error("no rule `{}` in policy {policy}", clip(.rule, MAX_RULE_TEXT))]
    NoSuchRule { policy: String, rule: String },
    #[error("policy {0} does not exist")]
    NoSuchPolicy(String),
    #[error("policy {0} already exists")]
    PolicyExists(String),
    #[error("cannot delete system-maintained policy {0}")]
    SystemPolicy(String),
    #[error("unknown kind of policy: {0}")]
    UnknownKind(String),
    #[error("table {table} does not exist in policy {policy}")]
    NoSuchTable { policy: String, table: String },
    #[error("rules cannot be inserted into {kind} policy {policy}")]
    RuleNotPermitted { policy: String, kind: PolicyKind },
    #[error("{table}: row has {got} values but the table has {expected} columns")]
    RowArity { table: String, expected: usize, got: usize },
    #[error("table {table} would have {columns} columns, but rules already use it with {used}")]
    SchemaConflict { table: String, columns: usize, used: usize },
    #[error("invalid simulate sequence: {0}")]
    Sequence(String),
    #[error("invalid query: {0}")]
    Query(String),
    #[error("no proof: {0}")]
    NoProof(String),
}

/// `line:col: message (in rule ...)` for each diagnostic, the first
/// [`MAX_LISTED`](crate::syntax::diag::MAX_LISTED) of them and how many more there are.
fn describe_diags(src: &str, d: &[Diagnostic]) -> String {
    let max = crate::syntax::diag::MAX_LISTED;
    let mut out = d
        .iter()
        .take(max)
        .map(|d| {
            let (l, c) = d.span.line_col(src);
            format!("{l}:{c}: {d}")
        })
        .collect::<Vec<_>>()
        .join("; ");
    if d.len() > max {
        out.push_str(&format!("; and {} more", d.len() - max));
    }
    out
}

impl EngineError {
    /// The diagnostics behind a syntax or analysis error, with the text they point into.
    pub fn diagnostics(&self) -> Option<(&str, &[Diagnostic])> {
        match self {
            EngineError::Syntax { source_text, diagnostics } | EngineError::Analysis { source_text, diagnostics } => {
                Some((source_text, diagnostics))
            }
            _ => None,
        }
    }
}

/// A derived row's explanation: the rule that derived it and the proofs of its body.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    /// The literal proved, in Congress's printing (`p("a", 1)`).
    pub literal: String,
    /// How: `fact`, `rule: <text>`, `not ...` (absence), `builtin`.
    pub how: String,
    pub children: Vec<Proof>,
}

/// Builtin failures (errors Congress would swallow) counted for one rule.
#[derive(Clone, Debug, PartialEq)]
pub struct BuiltinFailures {
    pub policy: String,
    pub rule: String,
    pub count: u64,
    pub last_error: String,
}

/// A non-fatal finding about the loaded policies.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineWarning {
    pub policy: String,
    pub rule: String,
    pub message: String,
}

/// A simulate request, as Congress's `?action=simulate`.
#[derive(Clone, Debug)]
pub struct SimulateRequest<'a> {
    pub policy: &'a str,
    pub query: &'a str,
    pub sequence: &'a str,
    pub action_policy: &'a str,
    pub delta: bool,
}

/// One answer cell: a value, or (only in `action` policies) an unbound variable.
pub type Answer = Vec<Term>;
