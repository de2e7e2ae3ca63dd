//! Transaction staging: a [`Transaction`] records operations; on commit, a [`Stage`]
//! validates them against the policies as they will be (parse, analyse, arity, recursion
//! rules of each policy kind) and turns them into [`Action`]s, which the engine applies only
//! when every one of them is valid.

use crate::analysis::{self, CLit, Compiled, SchemaLookup, TableKey};
use crate::engine::{Engine, PolicyState, Statement};
use crate::eval::store::RuleId;
use crate::eval::strata::INCREMENTAL_RULES;
use crate::stratify;
use crate::syntax::{self, Diagnostic, ParseOneError, Rule, Term};
use crate::types::{Commit, EngineError, PolicyKind, Schema};
use crate::value::Value;
use hashbrown::{HashMap, HashSet};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub(crate) enum Op {
    CreatePolicy(String, PolicyKind, Option<Schema>),
    DeletePolicy(String),
    ReplacePolicy(String, PolicyKind),
    InsertRule { policy: String, text: String, single: bool },
    DeleteRule { policy: String, text: String },
    Rows { policy: String, table: String, rows: Vec<Vec<Value>>, insert: bool },
    ReplaceTable { policy: String, table: String, rows: Vec<Vec<Value>> },
}

/// A batch of changes applied as one unit by [`Transaction::commit`].
pub struct Transaction<'e> {
    pub(crate) engine: &'e mut Engine,
    pub(crate) ops: Vec<Op>,
    pub(crate) report_rows: bool,
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
    /// Delete a policy. The system policies (`classification`, `action` of an engine
    /// made by [`Engine::with_default_policies`]) cannot be deleted, as in Congress.
    pub fn delete_policy(&mut self, name: &str) -> &mut Self {
        self.ops.push(Op::DeletePolicy(name.to_string()));
        self
    }
    /// Replace a policy by an empty one of `kind`: its statements go, the policy stays
    /// (created when absent). This is how a system policy gets new rules.
    pub fn replace_policy(&mut self, name: &str, kind: PolicyKind) -> &mut Self {
        self.ops.push(Op::ReplacePolicy(name.to_string(), kind));
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
pub(crate) enum Action {
    CreatePolicy(String, PolicyKind, Option<Schema>),
    DropPolicy(String),
    AddStatement(String, Arc<Statement>),
    RemoveStatement(String, RuleId),
    Rows(TableKey, Vec<Vec<Value>>, bool),
    Replace(TableKey, Vec<Vec<Value>>),
}

/// Validation state: the policies as they will be after the actions so far.
pub(crate) struct Stage<'e> {
    pub(crate) engine: &'e Engine,
    pub(crate) policies: BTreeMap<String, PolicyState>,
    pub(crate) arity: HashMap<TableKey, Option<(usize, u32)>>,
    pub(crate) next_rule: RuleId,
    pub(crate) actions: Vec<Action>,
    pub(crate) rules_changed: bool,
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
        let id = self.engine.store.id_of(key)?;
        self.engine.store.info[id].arity.map(|(n, _)| n)
    }
}

impl Stage<'_> {
    fn use_arities(&mut self, c: &Compiled, add: bool) {
        let step = |cur: Option<(usize, u32)>, n: usize| match (cur, add) {
            (None, true) => Some((n, 1)),
            (Some((a, k)), true) => Some((a, k + 1)),
            (Some((a, k)), false) if k > 1 => Some((a, k - 1)),
            (_, false) => None,
        };
        for (key, n) in c.table_arities() {
            // The key is copied only the first time this transaction sees the table.
            if let Some(a) = self.arity.get_mut(key) {
                *a = step(*a, n);
            } else {
                let cur = self.engine.store.id_of(key).and_then(|id| self.engine.store.info[id].arity);
                self.arity.insert(key.clone(), step(cur, n));
            }
        }
    }

    fn policy(&self, name: &str) -> Result<&PolicyState, EngineError> {
        self.policies.get(name).ok_or_else(|| EngineError::NoSuchPolicy(name.to_string()))
    }

    pub(crate) fn stage(&mut self, op: Op) -> Result<(), EngineError> {
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
                self.policies.insert(name.clone(), PolicyState::new(kind, schema.clone()));
                self.actions.push(Action::CreatePolicy(name, kind, schema));
            }
            Op::DeletePolicy(name) => {
                self.policy(&name)?;
                if self.engine.system.contains(&name) {
                    return Err(EngineError::SystemPolicy(name));
                }
                self.drop_policy(name);
            }
            Op::ReplacePolicy(name, kind) => {
                if self.policies.contains_key(&name) {
                    self.drop_policy(name.clone());
                }
                self.stage(Op::CreatePolicy(name, kind, None))?;
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
                let Some(&id) = p.dups.get(dup.as_str()) else {
                    return Err(EngineError::NoSuchRule { policy, rule: rule.to_string() });
                };
                let Some(st) = p.statements.get(&id).cloned() else {
                    return Err(EngineError::NoSuchRule { policy, rule: rule.to_string() });
                };
                self.use_arities(&st.compiled, false);
                self.rules_changed |= matches!(st.compiled, Compiled::Rule(_));
                if let Some(p) = self.policies.get_mut(&policy) {
                    p.statements.remove(&id);
                    p.dups.remove(dup.as_str());
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

    /// Stage the deletion of an existing policy with all its statements.
    fn drop_policy(&mut self, name: String) {
        let Some(p) = self.policies.get(&name).cloned() else {
            return;
        };
        for st in p.statements.values() {
            self.use_arities(&st.compiled, false);
            self.actions.push(Action::RemoveStatement(name.clone(), st.id));
            self.rules_changed |= matches!(st.compiled, Compiled::Rule(_));
        }
        self.policies.remove(&name);
        self.actions.push(Action::DropPolicy(name));
    }

    fn add_statement(&mut self, policy: &str, kind: PolicyKind, rule: &Rule, text: &str) -> Result<(), EngineError> {
        let compiled = analysis::compile(policy, kind, rule, self)
            .map_err(|diagnostics| EngineError::Analysis { source_text: text.to_string(), diagnostics })?;
        let text: Arc<str> = Arc::from(rule.to_string());
        let dup: Arc<str> = match has_integral_float(rule) {
            true => Arc::from(dup_key(rule)),
            false => text.clone(),
        };
        let p = self.policy(policy)?;
        if let Some(&existing) = p.dups.get(&*dup) {
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
        let st = Arc::new(Statement { id: self.next_rule, text, dup, compiled });
        self.next_rule += 1;
        if let Some(p) = self.policies.get_mut(policy) {
            p.dups.insert(st.dup.clone(), st.id);
            p.statements.insert(st.id, st.clone());
        }
        self.actions.push(Action::AddStatement(policy.to_string(), st));
        Ok(())
    }

    /// Reject programs with negation inside a cycle, naming the cycle.
    pub(crate) fn check_stratified(&self) -> Result<(), EngineError> {
        if self.closes_no_cycle() {
            return Ok(());
        }
        self.check_stratified_fully()
    }

    /// True when the rules this transaction adds certainly close no cycle, found by
    /// searches bounded by the store's levels (see `eval::strata`): the program stays
    /// stratified, since removing rules never breaks a cycle into existence. False means
    /// "maybe" (a cycle, many rules, a transaction that also removes the rules a path
    /// needs): the full check decides.
    fn closes_no_cycle(&self) -> bool {
        let store = &self.engine.store;
        if !store.strata_current() {
            return false;
        }
        let added: Vec<&analysis::CRule> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::AddStatement(_, st) => match &st.compiled {
                    Compiled::Rule(r) => Some(r),
                    Compiled::Fact { .. } => None,
                },
                _ => None,
            })
            .collect();
        if added.len() > INCREMENTAL_RULES {
            return false;
        }
        // Nodes: the store's tables, then the tables only these rules mention.
        let known = store.tables.len();
        let mut fresh: HashMap<&TableKey, usize> = HashMap::new();
        fn node<'a>(
            store: &crate::eval::store::Store,
            fresh: &mut HashMap<&'a TableKey, usize>,
            known: usize,
            k: &'a TableKey,
        ) -> usize {
            if let Some(id) = store.id_of(k) {
                return id;
            }
            let next = known + fresh.len();
            *fresh.entry(k).or_insert(next)
        }
        let mut edges: Vec<(usize, usize)> = Vec::new();
        for r in &added {
            let h = node(store, &mut fresh, known, &r.head);
            for l in &r.body {
                if let CLit::Pos { key, .. } | CLit::Neg { key, .. } = l {
                    edges.push((node(store, &mut fresh, known, key), h));
                }
            }
        }
        let level = |v: usize| if v < known { store.level(v) } else { 0 };
        let mut new_out: HashMap<usize, Vec<usize>> = HashMap::new();
        for &(b, h) in &edges {
            new_out.entry(b).or_default().push(h);
        }
        let bound = edges.iter().map(|&(b, _)| level(b)).max().unwrap_or(0);
        for &(b, h) in &edges {
            if b == h {
                return false;
            }
            let mut seen: HashSet<usize> = HashSet::from([h]);
            let mut stack = vec![h];
            while let Some(v) = stack.pop() {
                if v == b {
                    return false;
                }
                let old = if v < known { Some(store.dependents(v)) } else { None };
                let new = new_out.get(&v).into_iter().flatten().copied();
                for d in old.into_iter().flatten().chain(new) {
                    if level(d) <= bound && seen.insert(d) {
                        stack.push(d);
                    }
                }
            }
        }
        true
    }

    /// The exact check over every rule, naming a cycle with negation when there is one.
    fn check_stratified_fully(&self) -> Result<(), EngineError> {
        let mut ids: HashMap<&TableKey, usize> = HashMap::new();
        let mut keys: Vec<&TableKey> = Vec::new();
        let mut edges = Vec::new();
        let mut where_: Vec<(&str, &str)> = Vec::new();
        for (pname, p) in &self.policies {
            for st in p.statements.values() {
                let Compiled::Rule(r) = &st.compiled else {
                    continue;
                };
                let h = node_id(&mut ids, &mut keys, &r.head);
                for l in &r.body {
                    match l {
                        CLit::Pos { key, .. } => edges.push(stratify::Edge {
                            from: node_id(&mut ids, &mut keys, key),
                            to: h,
                            negative: false,
                        }),
                        CLit::Neg { key, .. } => edges.push(stratify::Edge {
                            from: node_id(&mut ids, &mut keys, key),
                            to: h,
                            negative: true,
                        }),
                        _ => continue,
                    }
                    where_.push((pname.as_str(), &*st.text));
                }
            }
        }
        // Tables that read their own negation: found once, not per component (which made
        // this quadratic in the number of rules).
        let negated_self: HashSet<usize> =
            edges.iter().filter(|e| e.negative && e.from == e.to).map(|e| e.from).collect();
        for comp in stratify::components(keys.len(), &edges) {
            let self_neg = comp.len() == 1 && negated_self.contains(&comp[0]);
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

/// The node number of a table in the full stratification check (keys borrowed).
fn node_id<'a>(ids: &mut HashMap<&'a TableKey, usize>, keys: &mut Vec<&'a TableKey>, k: &'a TableKey) -> usize {
    *ids.entry(k).or_insert_with(|| {
        keys.push(k);
        keys.len() - 1
    })
}

pub(crate) fn parse_error(e: ParseOneError, text: &str) -> EngineError {
    match e {
        ParseOneError::Syntax(diagnostics) => EngineError::Syntax { source_text: text.to_string(), diagnostics },
        ParseOneError::Empty => EngineError::EmptyRule,
        ParseOneError::MultipleRules(r) => {
            EngineError::MultipleRules(r.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; "))
        }
    }
}

/// Validate a data change (rows of a datasource table) against `policies`.
pub(crate) fn data_action(policies: &BTreeMap<String, PolicyState>, op: Op) -> Result<Action, EngineError> {
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

/// Whether a rule has a float constant with no fractional part (whose identity, for
/// [`dup_key`], is the integer's): otherwise its identity is its canonical text.
fn has_integral_float(rule: &Rule) -> bool {
    rule.heads.iter().chain(rule.body.iter()).flat_map(|l| l.atom.args.iter()).any(|arg| {
        let t = match arg {
            syntax::Arg::Positional { term, .. }
            | syntax::Arg::Named { term, .. }
            | syntax::Arg::Numbered { term, .. } => term,
        };
        matches!(t, Term::Const(Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15)
    })
}

/// Statement identity: the canonical text with integral floats printed as integers.
pub(crate) fn dup_key(rule: &Rule) -> String {
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
