//! The engine's public API: policies, transactions, queries, simulate and explain.
//!
//! An [`Engine`] owns every policy and table. Every change goes through a
//! [`Transaction`] that either commits as a whole or leaves no trace; a [`Commit`] says
//! which rows of which tables appeared and disappeared and which actions fire.

use crate::datalog::syntax::{Diagnostic, Term};
use crate::datalog::value::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

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

/// An action to send to the one service that owns it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionEvent {
    pub service: String,
    pub action: String,
    pub args: Vec<Value>,
    /// The policy whose execute rule produced the row.
    pub policy: String,
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
    #[error("received multiple rules: {0}")]
    MultipleRules(String),
    #[error("rule already exists in policy {policy}: {rule}")]
    RuleExists { policy: String, rule: String },
    #[error("no rule `{rule}` in policy {policy}")]
    NoSuchRule { policy: String, rule: String },
    #[error("policy {0} does not exist")]
    NoSuchPolicy(String),
    #[error("policy {0} already exists")]
    PolicyExists(String),
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

/// `line:col: message (in rule ...)` for each diagnostic.
fn describe_diags(src: &str, d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| {
            let (l, c) = d.span.line_col(src);
            format!("{l}:{c}: {d}")
        })
        .collect::<Vec<_>>()
        .join("; ")
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

use crate::datalog::analysis::{self, CLit, CRule, CTerm, Compiled, SchemaLookup, TableKey, stratify};
use crate::datalog::eval::relation::EXPLICIT;
use crate::datalog::eval::store::{RuleEntry, RuleId, Store, TxnState};
use crate::datalog::eval::{LLit, LRule, LTerm, TableId};
use crate::datalog::intern::Sym;
use crate::datalog::syntax::{self, ParseOneError, Rule};
use std::collections::{HashMap, HashSet};

/// One statement (rule or fact) of a policy.
#[derive(Clone, Debug)]
pub(crate) struct Statement {
    pub(crate) id: RuleId,
    pub(crate) text: String,
    /// Identity for duplicate detection: Congress compares rules structurally with
    /// Python equality, so `p(1)` and `p(1.0)` are the same statement.
    pub(crate) dup: String,
    pub(crate) compiled: Compiled,
}

#[derive(Clone, Debug)]
pub(crate) struct PolicyState {
    pub(crate) kind: PolicyKind,
    pub(crate) schema: Option<Schema>,
    /// In insertion order (ids grow).
    pub(crate) statements: BTreeMap<RuleId, Statement>,
    /// Duplicate-detection key -> statement id.
    dups: HashMap<String, RuleId>,
}

/// The policy engine. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) policies: BTreeMap<String, PolicyState>,
    next_rule: RuleId,
}

#[derive(Clone, Debug)]
enum Op {
    CreatePolicy(String, PolicyKind, Option<Schema>),
    DeletePolicy(String),
    InsertRule { policy: String, text: String, single: bool },
    DeleteRule { policy: String, text: String },
    Rows { policy: String, table: String, rows: Vec<Vec<Value>>, insert: bool },
    ReplaceTable { policy: String, table: String, rows: Vec<Vec<Value>> },
}

/// A batch of changes applied as one unit by [`Transaction::commit`].
pub struct Transaction<'e> {
    engine: &'e mut Engine,
    ops: Vec<Op>,
    report_rows: bool,
}

impl Transaction<'_> {
    pub fn create_policy(&mut self, name: &str, kind: PolicyKind) -> &mut Self {
        self.ops.push(Op::CreatePolicy(name.to_string(), kind, None));
        self
    }
    pub fn create_datasource(&mut self, name: &str, schema: Schema) -> &mut Self {
        self.ops.push(Op::CreatePolicy(name.to_string(), PolicyKind::Datasource, Some(schema)));
        self
    }
    pub fn delete_policy(&mut self, name: &str) -> &mut Self {
        self.ops.push(Op::DeletePolicy(name.to_string()));
        self
    }
    /// Insert exactly one formula (Congress's `POST .../rules`).
    pub fn insert_rule(&mut self, policy: &str, text: &str) -> &mut Self {
        self.ops.push(Op::InsertRule { policy: policy.to_string(), text: text.to_string(), single: true });
        self
    }
    /// Insert every formula of a text.
    pub fn insert_rules(&mut self, policy: &str, text: &str) -> &mut Self {
        self.ops.push(Op::InsertRule { policy: policy.to_string(), text: text.to_string(), single: false });
        self
    }
    pub fn delete_rule(&mut self, policy: &str, text: &str) -> &mut Self {
        self.ops.push(Op::DeleteRule { policy: policy.to_string(), text: text.to_string() });
        self
    }
    pub fn insert_row(&mut self, policy: &str, table: &str, row: Vec<Value>) -> &mut Self {
        self.ops.push(Op::Rows { policy: policy.to_string(), table: table.to_string(), rows: vec![row], insert: true });
        self
    }
    pub fn delete_row(&mut self, policy: &str, table: &str, row: Vec<Value>) -> &mut Self {
        self.ops.push(Op::Rows {
            policy: policy.to_string(),
            table: table.to_string(),
            rows: vec![row],
            insert: false,
        });
        self
    }
    /// Insert many rows into a datasource table (a page of a driver's poll).
    pub fn insert_rows(&mut self, policy: &str, table: &str, rows: Vec<Vec<Value>>) -> &mut Self {
        self.ops.push(Op::Rows { policy: policy.to_string(), table: table.to_string(), rows, insert: true });
        self
    }
    /// Delete many rows from a datasource table.
    pub fn delete_rows(&mut self, policy: &str, table: &str, rows: Vec<Vec<Value>>) -> &mut Self {
        self.ops.push(Op::Rows { policy: policy.to_string(), table: table.to_string(), rows, insert: false });
        self
    }
    pub fn replace_table(&mut self, policy: &str, table: &str, rows: Vec<Vec<Value>>) -> &mut Self {
        self.ops.push(Op::ReplaceTable { policy: policy.to_string(), table: table.to_string(), rows });
        self
    }
    /// Whether the commit lists changed rows (default). With `false` a commit lists
    /// only which derived (or rule-read) tables changed, with empty row lists, and
    /// skips the bookkeeping for tables no rule reads: the fast path for bulk loads.
    /// Actions are always reported.
    pub fn report_rows(&mut self, yes: bool) -> &mut Self {
        self.report_rows = yes;
        self
    }
    /// Validate every change, then apply them all; on error nothing is applied.
    pub fn commit(self) -> Result<Commit, EngineError> {
        let Transaction { engine, ops, report_rows } = self;
        engine.commit(ops, report_rows)
    }
}

/// A validated change, ready to apply.
#[derive(Clone, Debug)]
enum Action {
    CreatePolicy(String, PolicyKind, Option<Schema>),
    DropPolicy(String),
    AddStatement(String, Statement),
    RemoveStatement(String, RuleId),
    Rows(TableKey, Vec<Vec<Value>>, bool),
    Replace(TableKey, Vec<Vec<Value>>),
}

/// Validation state: the policies as they will be after the actions so far.
struct Stage<'e> {
    engine: &'e Engine,
    policies: BTreeMap<String, PolicyState>,
    arity: HashMap<TableKey, Option<(usize, u32)>>,
    next_rule: RuleId,
    actions: Vec<Action>,
    rules_changed: bool,
}

impl SchemaLookup for Stage<'_> {
    fn kind(&self, policy: &str) -> Option<PolicyKind> {
        self.policies.get(policy).map(|p| p.kind)
    }
    fn columns(&self, policy: &str, table: &str) -> Option<Vec<String>> {
        self.policies.get(policy)?.schema.as_ref()?.get(table).cloned()
    }
    fn known_arity(&self, key: &TableKey) -> Option<usize> {
        if let Some(a) = self.arity.get(key) {
            return a.map(|(n, _)| n);
        }
        let id = *self.engine.store.ids.get(key)?;
        self.engine.store.info[id].arity.map(|(n, _)| n)
    }
}

impl Stage<'_> {
    fn arity_entry(&mut self, key: &TableKey) -> Option<(usize, u32)> {
        if let Some(a) = self.arity.get(key) {
            return *a;
        }
        let a = self.engine.store.ids.get(key).and_then(|&id| self.engine.store.info[id].arity);
        self.arity.insert(key.clone(), a);
        a
    }

    fn use_arities(&mut self, c: &Compiled, add: bool) {
        for (key, n) in c.table_arities() {
            let cur = self.arity_entry(&key);
            let next = match (cur, add) {
                (None, true) => Some((n, 1)),
                (Some((a, k)), true) => Some((a, k + 1)),
                (Some((a, k)), false) if k > 1 => Some((a, k - 1)),
                (_, false) => None,
            };
            self.arity.insert(key, next);
        }
    }

    fn policy(&self, name: &str) -> Result<&PolicyState, EngineError> {
        self.policies.get(name).ok_or_else(|| EngineError::NoSuchPolicy(name.to_string()))
    }

    fn stage(&mut self, op: Op) -> Result<(), EngineError> {
        match op {
            Op::CreatePolicy(name, kind, schema) => {
                if self.policies.contains_key(&name) {
                    return Err(EngineError::PolicyExists(name));
                }
                if name.is_empty() || name == "builtin" || name.contains(':') {
                    return Err(EngineError::Query(format!("invalid policy name `{name}`")));
                }
                // Rules elsewhere may already read tables of this (re-created)
                // datasource: their arity must agree with the schema.
                for (table, cols) in schema.iter().flatten() {
                    let key = TableKey::new(&name, table);
                    if let Some(used) = self.known_arity(&key)
                        && used != cols.len()
                    {
                        return Err(EngineError::SchemaConflict { table: key.to_string(), columns: cols.len(), used });
                    }
                }
                self.policies.insert(
                    name.clone(),
                    PolicyState { kind, schema: schema.clone(), statements: BTreeMap::new(), dups: HashMap::new() },
                );
                self.actions.push(Action::CreatePolicy(name, kind, schema));
            }
            Op::DeletePolicy(name) => {
                let p = self.policy(&name)?.clone();
                for st in p.statements.values() {
                    self.use_arities(&st.compiled, false);
                    self.actions.push(Action::RemoveStatement(name.clone(), st.id));
                    self.rules_changed |= matches!(st.compiled, Compiled::Rule(_));
                }
                self.policies.remove(&name);
                self.actions.push(Action::DropPolicy(name));
            }
            Op::InsertRule { policy, text, single } => {
                let kind = self.policy(&policy)?.kind;
                if kind == PolicyKind::Datasource {
                    return Err(EngineError::RuleNotPermitted { policy, kind });
                }
                let parsed = if single {
                    let rule = syntax::parse_one(&text).map_err(|e| parse_error(e, &text))?;
                    syntax::Parsed { rules: vec![rule], diagnostics: Vec::new() }
                } else {
                    syntax::parse(&text)
                };
                // Report every problem at once: syntax errors, then analysis errors of
                // the statements that did parse.
                let mut diags: Vec<Diagnostic> = parsed.diagnostics.into_iter().filter(Diagnostic::is_error).collect();
                let syntax_failed = !diags.is_empty();
                let rules = parsed.rules;
                for rule in rules {
                    match self.add_statement(&policy, kind, &rule, &text) {
                        Ok(()) => {}
                        Err(EngineError::Analysis { diagnostics, .. }) => diags.extend(diagnostics),
                        Err(e) => return Err(e),
                    }
                }
                if syntax_failed {
                    return Err(EngineError::Syntax { source_text: text, diagnostics: diags });
                }
                if !diags.is_empty() {
                    return Err(EngineError::Analysis { source_text: text, diagnostics: diags });
                }
            }
            Op::DeleteRule { policy, text } => {
                self.policy(&policy)?;
                let rule = syntax::parse_one(&text).map_err(|e| parse_error(e, &text))?;
                let dup = dup_key(&rule);
                let p = self.policy(&policy)?;
                let Some(&id) = p.dups.get(&dup) else {
                    return Err(EngineError::NoSuchRule { policy, rule: rule.to_string() });
                };
                let Some(st) = p.statements.get(&id).cloned() else {
                    return Err(EngineError::NoSuchRule { policy, rule: rule.to_string() });
                };
                self.use_arities(&st.compiled, false);
                self.rules_changed |= matches!(st.compiled, Compiled::Rule(_));
                if let Some(p) = self.policies.get_mut(&policy) {
                    p.statements.remove(&id);
                    p.dups.remove(&dup);
                }
                self.actions.push(Action::RemoveStatement(policy, st.id));
            }
            op @ (Op::Rows { .. } | Op::ReplaceTable { .. }) => {
                let action = data_action(&self.policies, op)?;
                self.actions.push(action);
            }
        }
        Ok(())
    }

    fn add_statement(&mut self, policy: &str, kind: PolicyKind, rule: &Rule, text: &str) -> Result<(), EngineError> {
        let compiled = analysis::compile(policy, kind, rule, self)
            .map_err(|diagnostics| EngineError::Analysis { source_text: text.to_string(), diagnostics })?;
        let dup = dup_key(rule);
        let p = self.policy(policy)?;
        if let Some(&existing) = p.dups.get(&dup) {
            // A statement repeated inside one batch is kept once (as Congress does when
            // a policy is created with rules); repeating one that was already loaded
            // is an error.
            if existing >= self.engine.next_rule {
                return Ok(());
            }
            return Err(EngineError::RuleExists { policy: policy.to_string(), rule: rule.to_string() });
        }
        self.use_arities(&compiled, true);
        self.rules_changed |= matches!(compiled, Compiled::Rule(_));
        let st = Statement { id: self.next_rule, text: rule.to_string(), dup, compiled };
        self.next_rule += 1;
        if let Some(p) = self.policies.get_mut(policy) {
            p.dups.insert(st.dup.clone(), st.id);
            p.statements.insert(st.id, st.clone());
        }
        self.actions.push(Action::AddStatement(policy.to_string(), st));
        Ok(())
    }

    /// Reject programs with negation inside a cycle, naming the cycle.
    fn check_stratified(&self) -> Result<(), EngineError> {
        let mut ids: HashMap<TableKey, usize> = HashMap::new();
        let mut keys: Vec<TableKey> = Vec::new();
        let mut edges = Vec::new();
        let mut where_: Vec<(&str, &str)> = Vec::new();
        for (pname, p) in &self.policies {
            for st in p.statements.values() {
                let Compiled::Rule(r) = &st.compiled else {
                    continue;
                };
                let mut id = |k: &TableKey| -> usize {
                    if let Some(&i) = ids.get(k) {
                        return i;
                    }
                    keys.push(k.clone());
                    ids.insert(k.clone(), keys.len() - 1);
                    keys.len() - 1
                };
                let h = id(&r.head);
                for l in &r.body {
                    match l {
                        CLit::Pos { key, .. } => edges.push(stratify::Edge { from: id(key), to: h, negative: false }),
                        CLit::Neg { key, .. } => edges.push(stratify::Edge { from: id(key), to: h, negative: true }),
                        _ => continue,
                    }
                    where_.push((pname.as_str(), st.text.as_str()));
                }
            }
        }
        for comp in stratify::components(keys.len(), &edges) {
            let self_neg = comp.len() == 1 && edges.iter().any(|e| e.negative && e.from == comp[0] && e.to == comp[0]);
            if comp.len() < 2 && !self_neg {
                continue;
            }
            if let Some(cycle) = stratify::negative_cycle(&comp, &edges) {
                let names: Vec<String> = cycle.iter().map(|&i| keys[i].to_string()).collect();
                let neg_edge = edges
                    .iter()
                    .position(|e| e.negative && comp.contains(&e.from) && comp.contains(&e.to))
                    .map(|i| where_[i]);
                let (policy, rule) = neg_edge.unwrap_or(("", ""));
                let d = Diagnostic::error(
                    "negative-cycle",
                    format!("negation inside a recursive cycle cannot be stratified: {}", names.join(" -> ")),
                    syntax::Span::default(),
                )
                .with_rule(format!("{policy}: {rule}"));
                return Err(EngineError::Analysis { source_text: rule.to_string(), diagnostics: vec![d] });
            }
        }
        Ok(())
    }
}

fn parse_error(e: ParseOneError, text: &str) -> EngineError {
    match e {
        ParseOneError::Syntax(diagnostics) => EngineError::Syntax { source_text: text.to_string(), diagnostics },
        ParseOneError::Empty => EngineError::EmptyRule,
        ParseOneError::MultipleRules(r) => {
            EngineError::MultipleRules(r.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; "))
        }
    }
}

/// Validate a data change (rows of a datasource table) against `policies`.
fn data_action(policies: &BTreeMap<String, PolicyState>, op: Op) -> Result<Action, EngineError> {
    let (policy, table, rows, insert) = match op {
        Op::Rows { policy, table, rows, insert } => (policy, table, rows, Some(insert)),
        Op::ReplaceTable { policy, table, rows } => (policy, table, rows, None),
        _ => return Err(EngineError::Query("not a data change".into())),
    };
    let p = policies.get(&policy).ok_or_else(|| EngineError::NoSuchPolicy(policy.clone()))?;
    let Some(schema) = &p.schema else {
        return Err(EngineError::RuleNotPermitted { policy, kind: p.kind });
    };
    let n = schema
        .get(&table)
        .map(Vec::len)
        .ok_or_else(|| EngineError::NoSuchTable { policy: policy.clone(), table: table.clone() })?;
    if let Some(bad) = rows.iter().find(|r| r.len() != n) {
        return Err(EngineError::RowArity { table: format!("{policy}:{table}"), expected: n, got: bad.len() });
    }
    let key = TableKey::new(&policy, &table);
    Ok(match insert {
        Some(insert) => Action::Rows(key, rows, insert),
        None => Action::Replace(key, rows),
    })
}

/// Statement identity: the canonical text with integral floats printed as integers.
fn dup_key(rule: &Rule) -> String {
    let mut r = rule.clone();
    let fix = |a: &mut syntax::Atom| {
        for arg in &mut a.args {
            let t = match arg {
                syntax::Arg::Positional { term, .. }
                | syntax::Arg::Named { term, .. }
                | syntax::Arg::Numbered { term, .. } => term,
            };
            if let Term::Const(Value::Float(f)) = t
                && f.fract() == 0.0
                && f.abs() < 9e15
            {
                *t = Term::Const(Value::Int(*f as i64));
            }
        }
    };
    for l in r.heads.iter_mut().chain(r.body.iter_mut()) {
        fix(&mut l.atom);
    }
    r.to_string()
}

impl Engine {
    /// An engine with no policies.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// An engine with Congress's two standing policies: `classification`
    /// (nonrecursive) and `action` (action).
    pub fn with_default_policies() -> Engine {
        let mut e = Engine::new();
        let mut t = e.transaction();
        t.create_policy("classification", PolicyKind::Nonrecursive).create_policy("action", PolicyKind::Action);
        // Creating two empty policies on an empty engine cannot fail.
        let _ = t.commit();
        e
    }

    pub fn transaction(&mut self) -> Transaction<'_> {
        Transaction { engine: self, ops: Vec::new(), report_rows: true }
    }

    pub fn policy_kind(&self, name: &str) -> Option<PolicyKind> {
        self.policies.get(name).map(|p| p.kind)
    }

    pub fn policy_names(&self) -> Vec<String> {
        self.policies.keys().cloned().collect()
    }

    /// A datasource policy's schema.
    pub fn schema(&self, name: &str) -> Option<&Schema> {
        self.policies.get(name)?.schema.as_ref()
    }

    fn one(&mut self, op: Op) -> Result<Commit, EngineError> {
        self.commit(vec![op], true)
    }

    pub fn create_policy(&mut self, name: &str, kind: PolicyKind) -> Result<Commit, EngineError> {
        self.one(Op::CreatePolicy(name.to_string(), kind, None))
    }
    pub fn create_datasource(&mut self, name: &str, schema: Schema) -> Result<Commit, EngineError> {
        self.one(Op::CreatePolicy(name.to_string(), PolicyKind::Datasource, Some(schema)))
    }
    pub fn delete_policy(&mut self, name: &str) -> Result<Commit, EngineError> {
        self.one(Op::DeletePolicy(name.to_string()))
    }
    pub fn insert_rule(&mut self, policy: &str, text: &str) -> Result<Commit, EngineError> {
        self.one(Op::InsertRule { policy: policy.to_string(), text: text.to_string(), single: true })
    }
    pub fn insert_rules(&mut self, policy: &str, text: &str) -> Result<Commit, EngineError> {
        self.one(Op::InsertRule { policy: policy.to_string(), text: text.to_string(), single: false })
    }
    pub fn delete_rule(&mut self, policy: &str, text: &str) -> Result<Commit, EngineError> {
        self.one(Op::DeleteRule { policy: policy.to_string(), text: text.to_string() })
    }
    pub fn replace_table(&mut self, policy: &str, table: &str, rows: Vec<Vec<Value>>) -> Result<Commit, EngineError> {
        self.one(Op::ReplaceTable { policy: policy.to_string(), table: table.to_string(), rows })
    }
    pub fn update_table(
        &mut self,
        policy: &str,
        table: &str,
        add: Vec<Vec<Value>>,
        delete: Vec<Vec<Value>>,
    ) -> Result<Commit, EngineError> {
        let mut t = self.transaction();
        t.delete_rows(policy, table, delete).insert_rows(policy, table, add);
        t.commit()
    }

    fn commit(&mut self, ops: Vec<Op>, report_rows: bool) -> Result<Commit, EngineError> {
        let structural = ops.iter().any(|o| !matches!(o, Op::Rows { .. } | Op::ReplaceTable { .. }));
        let span = tracing::debug_span!("commit", ops = ops.len(), structural);
        let _entered = span.enter();
        let (actions, next_rule) = {
            let mut stage = Stage {
                engine: self,
                policies: if structural { self.policies.clone() } else { BTreeMap::new() },
                arity: HashMap::new(),
                next_rule: self.next_rule,
                actions: Vec::new(),
                rules_changed: false,
            };
            if !structural {
                // Data-only: validate against the live policies without copying them.
                for op in ops {
                    stage.actions.push(data_action(&self.policies, op)?);
                }
            } else {
                for op in ops {
                    stage.stage(op)?;
                }
                if stage.rules_changed {
                    stage.check_stratified()?;
                }
            }
            (stage.actions, stage.next_rule)
        };
        self.next_rule = next_rule;
        let mut txn = TxnState { track_unread: report_rows, ..TxnState::default() };
        for a in actions {
            self.apply(&mut txn, a);
        }
        self.store.propagate(&mut txn);
        let commit = self.report(&txn, report_rows);
        tracing::debug!(tables = commit.changes.len(), actions = commit.actions.len(), "committed");
        Ok(commit)
    }

    fn arity_use(&mut self, c: &Compiled, add: bool) {
        for (key, n) in c.table_arities() {
            let id = self.store.table_id(&key, n);
            let info = &mut self.store.info[id];
            info.arity = match (info.arity, add) {
                (None, true) => Some((n, 1)),
                (Some((a, k)), true) => Some((a, k + 1)),
                (Some((a, k)), false) if k > 1 => Some((a, k - 1)),
                (_, false) => None,
            };
        }
    }

    fn link(&mut self, policy: &str, r: &CRule) -> LRule {
        let store = &mut self.store;
        let term = |store: &mut Store, t: &CTerm| match t {
            CTerm::Var(v) => LTerm::Var(*v),
            CTerm::Const(c) => LTerm::Const(store.interner.intern(c)),
        };
        let head = store.table_id(&r.head, r.head_terms.len());
        store.ensure_arity(head, r.head_terms.len());
        let head_terms: Vec<LTerm> = r.head_terms.iter().map(|t| term(store, t)).collect();
        let mut body = Vec::new();
        for l in &r.body {
            body.push(match l {
                CLit::Pos { key, terms, .. } | CLit::Neg { key, terms, .. } => {
                    let table = store.table_id(key, terms.len());
                    store.ensure_arity(table, terms.len());
                    let terms: Vec<LTerm> = terms.iter().map(|t| term(store, t)).collect();
                    if matches!(l, CLit::Pos { .. }) { LLit::Pos { table, terms } } else { LLit::Neg { table, terms } }
                }
                CLit::Builtin { builtin, terms, negated, .. } => {
                    LLit::Builtin { builtin, terms: terms.iter().map(|t| term(store, t)).collect(), negated: *negated }
                }
                CLit::Const(b) => LLit::Const(*b),
            });
        }
        let nvars = r.var_names.len();
        let mut init_binds = vec![0; nvars];
        if self.policies.get(policy).is_some_and(|p| p.kind == PolicyKind::Action) {
            let mut bound = HashSet::new();
            for l in &body {
                match l {
                    LLit::Pos { terms, .. } => bound.extend(terms.iter().filter_map(|t| match t {
                        LTerm::Var(v) => Some(*v),
                        _ => None,
                    })),
                    LLit::Builtin { builtin, terms, negated: false } => {
                        bound.extend(terms[builtin.inputs..].iter().filter_map(|t| match *t {
                            LTerm::Var(v) => Some(v),
                            LTerm::Const(_) => None,
                        }))
                    }
                    _ => {}
                }
            }
            for (v, name) in r.var_names.iter().enumerate() {
                if !bound.contains(&v) {
                    init_binds[v] = self.store.interner.var_marker(name);
                }
            }
        }
        LRule { head, head_terms, body, nvars, init_binds }
    }

    fn apply(&mut self, txn: &mut TxnState, a: Action) {
        match a {
            Action::CreatePolicy(name, kind, schema) => {
                if let Some(s) = &schema {
                    for (table, cols) in s {
                        let key = TableKey::new(&name, table);
                        let id = self.store.table_id(&key, cols.len());
                        self.store.ensure_arity(id, cols.len());
                        let info = &mut self.store.info[id];
                        // Rules of other policies may already use the table (with the
                        // same arity: staging checked it); the schema is one more use.
                        info.arity = Some(match info.arity {
                            Some((a, k)) => (a, k + 1),
                            None => (cols.len(), 1),
                        });
                    }
                }
                self.policies
                    .insert(name, PolicyState { kind, schema, statements: BTreeMap::new(), dups: HashMap::new() });
            }
            Action::DropPolicy(name) => {
                if let Some(p) = self.policies.remove(&name)
                    && let Some(s) = p.schema
                {
                    for table in s.keys() {
                        let key = TableKey::new(&name, table);
                        if let Some(&id) = self.store.ids.get(&key) {
                            let rows: Vec<Vec<Sym>> = self.store.tables[id].iter().map(|(_, r)| r.to_vec()).collect();
                            for row in rows {
                                self.store.clear_explicit(txn, id, &row);
                            }
                            let info = &mut self.store.info[id];
                            info.arity = match info.arity {
                                Some((a, k)) if k > 1 => Some((a, k - 1)),
                                _ => None,
                            };
                        }
                    }
                }
            }
            Action::AddStatement(policy, st) => {
                self.arity_use(&st.compiled, true);
                match &st.compiled {
                    Compiled::Fact { key, row } => {
                        let id = self.store.table_id(key, row.len());
                        self.store.ensure_arity(id, row.len());
                        let row = self.store.intern_row(row);
                        self.store.set_explicit(txn, id, &row);
                    }
                    Compiled::Rule(r) => {
                        let linked = self.link(&policy, r);
                        let entry = RuleEntry::new(policy.clone(), st.text.clone(), linked);
                        self.store.add_rule(txn, st.id, entry);
                    }
                }
                if let Some(p) = self.policies.get_mut(&policy) {
                    p.dups.insert(st.dup.clone(), st.id);
                    p.statements.insert(st.id, st);
                }
            }
            Action::RemoveStatement(policy, id) => {
                let Some(p) = self.policies.get_mut(&policy) else {
                    return;
                };
                let Some(st) = p.statements.remove(&id) else { return };
                p.dups.remove(&st.dup);
                match &st.compiled {
                    Compiled::Fact { key, row } => {
                        if let Some(&tid) = self.store.ids.get(key) {
                            let row = self.store.intern_row(row);
                            self.store.clear_explicit(txn, tid, &row);
                        }
                    }
                    Compiled::Rule(_) => {
                        self.store.remove_rule(txn, id);
                    }
                }
                self.arity_use(&st.compiled, false);
            }
            Action::Rows(key, rows, insert) => {
                let width = rows.first().map_or(0, Vec::len);
                let id = self.store.table_id(&key, width);
                if insert {
                    self.store.tables[id].reserve(rows.len());
                }
                let mut buf = Vec::with_capacity(width);
                for r in &rows {
                    buf.clear();
                    buf.extend(r.iter().map(|v| self.store.interner.intern(v)));
                    if insert {
                        self.store.set_explicit(txn, id, &buf);
                    } else {
                        self.store.clear_explicit(txn, id, &buf);
                    }
                }
            }
            Action::Replace(key, rows) => {
                let width = rows.first().map_or(0, Vec::len);
                let id = self.store.table_id(&key, width);
                if self.store.tables[id].is_empty() {
                    // Bulk load: nothing to diff against.
                    let mut buf = Vec::with_capacity(width);
                    self.store.tables[id].reserve(rows.len());
                    for r in rows {
                        buf.clear();
                        buf.extend(r.into_iter().map(|v| self.store.interner.intern(&v)));
                        self.store.set_explicit(txn, id, &buf);
                    }
                    return;
                }
                let new: HashSet<Vec<Sym>> = rows.iter().map(|r| self.store.intern_row(r)).collect();
                let old: Vec<Vec<Sym>> = self.store.tables[id]
                    .iter()
                    .filter(|(rid, r)| self.store.tables[id].count(*rid) & EXPLICIT != 0 && !new.contains(*r))
                    .map(|(_, r)| r.to_vec())
                    .collect();
                for row in old {
                    self.store.clear_explicit(txn, id, &row);
                }
                for row in new {
                    self.store.set_explicit(txn, id, &row);
                }
            }
        }
    }

    pub(crate) fn values(&self, row: &[Sym]) -> Vec<Value> {
        row.iter().map(|&s| self.store.interner.value(s)).collect()
    }

    fn report(&self, txn: &TxnState, rows: bool) -> Commit {
        let mut commit = Commit::default();
        let mut ids: Vec<&TableId> = txn.changed.keys().collect();
        ids.sort();
        for &id in ids {
            let ch = &txn.changed[&id];
            if ch.is_empty() {
                continue;
            }
            let key = &self.store.info[id].key;
            let rel = &self.store.tables[id];
            let any_added = if ch.all_new { !rel.is_empty() } else { !ch.added.is_empty() };
            if !any_added && ch.removed.is_empty() {
                continue;
            }
            // Rows are built only when reported or when they are actions.
            let added: Vec<Vec<Value>> = match (rows || key.execute, ch.all_new) {
                (false, _) => Vec::new(),
                (true, true) => rel.iter().map(|(_, r)| self.values(r)).collect(),
                (true, false) => ch.added.iter().map(|r| self.values(r)).collect(),
            };
            if key.execute {
                let (service, action) = match key.name.split_once(':') {
                    Some((s, a)) => (s.to_string(), a.to_string()),
                    None => (key.policy.clone(), key.name.clone()),
                };
                for args in &added {
                    commit.actions.push(ActionEvent {
                        service: service.clone(),
                        action: action.clone(),
                        args: args.clone(),
                        policy: key.policy.clone(),
                    });
                }
            }
            commit.changes.push(TableDelta {
                policy: key.policy.clone(),
                table: key.name.clone(),
                execute: key.execute,
                added: if rows { added } else { Vec::new() },
                removed: if rows { ch.removed.iter().map(|r| self.values(r)).collect() } else { Vec::new() },
            });
        }
        commit.actions.sort();
        commit
    }
}
