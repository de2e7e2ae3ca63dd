//! The engine's public API: policies, transactions, queries, simulate and explain.
//!
//! An [`Engine`] owns every policy and table. Every change goes through a
//! [`Transaction`] that either commits as a whole or leaves no trace; a [`Commit`] says
//! which rows of which tables appeared and disappeared and which actions fire.

use crate::analysis::{CLit, CRule, CTerm, Compiled, TableKey};
use crate::eval::relation::EXPLICIT;
use crate::eval::store::{RuleEntry, RuleId, Store, TxnState};
use crate::eval::{LLit, LRule, LTerm, TableId};
use crate::intern::Sym;
use crate::transaction::{Action, Op, Stage, Transaction, data_action};
use crate::types::*;
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet};

use hashbrown::{HashMap, HashSet};
use std::sync::Arc;

/// The policies Congress creates itself and refuses to delete.
pub const SYSTEM_POLICIES: [&str; 2] = ["classification", "action"];

/// One statement (rule or fact) of a policy.
#[derive(Clone, Debug)]
pub(crate) struct Statement {
    pub(crate) id: RuleId,
    pub(crate) text: Arc<str>,
    /// Identity for duplicate detection: Congress compares rules structurally with
    /// Python equality, so `p(1)` and `p(1.0)` are the same statement. Usually the
    /// same allocation as `text`.
    pub(crate) dup: Arc<str>,
    pub(crate) compiled: Compiled,
}

/// A policy's statements. The maps are persistent (`imbl`): a transaction stages its
/// changes on a copy that costs O(1) to make and O(log n) per change, so changing one rule
/// of a 100,000-rule policy does not copy the other 99,999.
#[derive(Clone, Debug)]
pub(crate) struct PolicyState {
    pub(crate) kind: PolicyKind,
    pub(crate) schema: Option<Schema>,
    /// In insertion order (ids grow).
    pub(crate) statements: imbl::OrdMap<RuleId, Arc<Statement>>,
    /// Duplicate-detection key -> statement id.
    pub(crate) dups: DupMap,
}

/// Statement identities of a policy (foldhash: SipHash was a tenth of loading time).
pub(crate) type DupMap =
    imbl::GenericHashMap<Arc<str>, RuleId, foldhash::fast::RandomState, imbl::shared_ptr::DefaultSharedPtr>;

impl PolicyState {
    pub(crate) fn new(kind: PolicyKind, schema: Option<Schema>) -> Self {
        PolicyState { kind, schema, statements: imbl::OrdMap::new(), dups: DupMap::default() }
    }
}

/// The policy engine. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) policies: BTreeMap<String, PolicyState>,
    pub(crate) next_rule: RuleId,
    /// Policies the engine maintains itself and that cannot be deleted (Congress's
    /// `classification` and `action`): only in an engine made by
    /// [`Engine::with_default_policies`].
    pub(crate) system: BTreeSet<String>,
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
        e.system = SYSTEM_POLICIES.iter().map(|p| p.to_string()).collect();
        e
    }

    /// Whether `name` is a system policy of this engine (it cannot be deleted).
    pub fn is_system_policy(&self, name: &str) -> bool {
        self.system.contains(name)
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
    /// Whether some rule of a loaded policy reads table `table` of `policy` (a datasource's
    /// table nobody reads need not be fetched: Congress's lazy tables).
    pub fn is_read(&self, policy: &str, table: &str) -> bool {
        self.store.id_of(&TableKey::new(policy, table)).is_some_and(|id| !self.store.info[id].readers.is_empty())
    }

    pub fn schema(&self, name: &str) -> Option<&Schema> {
        self.policies.get(name)?.schema.as_ref()
    }

    /// A copy of every policy and rule without the rows of any table: enough to tell
    /// whether a change of policies or rules would be accepted (that never depends on
    /// rows), for a fraction of the cost of a clone when the tables are large.
    pub fn without_rows(&self) -> Engine {
        let mut copy = Engine::new();
        let mut t = copy.transaction();
        for (name, p) in &self.policies {
            match &p.schema {
                Some(schema) if p.kind == PolicyKind::Datasource => t.create_datasource(name, schema.clone()),
                _ => t.create_policy(name, p.kind),
            };
        }
        for (name, p) in &self.policies {
            for st in p.statements.values() {
                t.insert_rule(name, &st.text);
            }
        }
        match t.commit() {
            Ok(_) => {
                copy.system = self.system.clone();
                copy
            }
            // Every statement was accepted once, in this order; should a canonical text not
            // read back the same, a full copy is still right.
            Err(_) => self.clone(),
        }
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
    /// Delete a policy; a system policy is refused ([`EngineError::SystemPolicy`]).
    pub fn delete_policy(&mut self, name: &str) -> Result<Commit, EngineError> {
        self.one(Op::DeletePolicy(name.to_string()))
    }
    /// See [`Transaction::replace_policy`].
    pub fn replace_policy(&mut self, name: &str, kind: PolicyKind) -> Result<Commit, EngineError> {
        self.one(Op::ReplacePolicy(name.to_string(), kind))
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

    pub(crate) fn commit(&mut self, ops: Vec<Op>, report_rows: bool) -> Result<Commit, EngineError> {
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
        if txn.rules_added > crate::eval::strata::INCREMENTAL_RULES {
            self.store.shrink();
        }
        let commit = self.report(&txn, report_rows);
        tracing::debug!(tables = commit.changes.len(), actions = commit.actions.len(), "committed");
        Ok(commit)
    }

    fn arity_use(&mut self, c: &Compiled, add: bool) {
        for (key, n) in c.table_arities() {
            let id = self.store.table_id(key, n);
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
                self.policies.insert(name, PolicyState::new(kind, schema));
            }
            Action::DropPolicy(name) => {
                if let Some(p) = self.policies.remove(&name)
                    && let Some(s) = p.schema
                {
                    for table in s.keys() {
                        let key = TableKey::new(&name, table);
                        if let Some(id) = self.store.id_of(&key) {
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
                        let entry = RuleEntry::new(st.text.clone(), linked);
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
                        if let Some(tid) = self.store.id_of(key) {
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
                let interner = &mut self.store.interner;
                let syms: Vec<Sym> = rows.iter().flatten().map(|v| interner.intern(v)).collect();
                self.store.change_explicit(txn, id, &syms, rows.len(), insert);
            }
            Action::Replace(key, rows) => {
                let width = rows.first().map_or(0, Vec::len);
                let id = self.store.table_id(&key, width);
                if self.store.tables[id].is_empty() {
                    // Bulk load: nothing to diff against. Each row's values are dropped
                    // as soon as they are interned.
                    let n = rows.len();
                    self.store.tables[id].reserve(n);
                    let interner = &mut self.store.interner;
                    let mut syms = Vec::with_capacity(n * width);
                    rows.into_iter().for_each(|r| syms.extend(r.into_iter().map(|v| interner.intern(&v))));
                    self.store.change_explicit(txn, id, &syms, n, true);
                    return;
                }
                let new: HashSet<Vec<Sym>> = rows.iter().map(|r| self.store.intern_row(r)).collect();
                let rel = &self.store.tables[id];
                let (mut old, mut n_old) = (Vec::new(), 0);
                for (_, r) in rel.iter().filter(|(rid, r)| rel.count(*rid) & EXPLICIT != 0 && !new.contains(*r)) {
                    old.extend_from_slice(r);
                    n_old += 1;
                }
                self.store.change_explicit(txn, id, &old, n_old, false);
                let added: Vec<Sym> = new.iter().flatten().copied().collect();
                self.store.change_explicit(txn, id, &added, new.len(), true);
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
            let mut added: Vec<Vec<Value>> = match (rows || key.execute, ch.all_new) {
                (false, _) => Vec::new(),
                (true, true) => rel.iter().map(|(_, r)| self.values(r)).collect(),
                (true, false) => ch.added.iter().map(|r| self.values(r)).collect(),
            };
            if key.execute {
                let (service, action): (Arc<str>, Arc<str>) = match key.name.split_once(':') {
                    Some((s, a)) => (s.into(), a.into()),
                    None => (key.policy.as_str().into(), key.name.as_str().into()),
                };
                let policy: Arc<str> = key.policy.as_str().into();
                let event = |args| ActionEvent {
                    service: Arc::clone(&service),
                    action: Arc::clone(&action),
                    args,
                    policy: Arc::clone(&policy),
                };
                // The rows go to the actions; copied only when they are reported too.
                if rows {
                    commit.actions.extend(added.iter().cloned().map(event));
                } else {
                    commit.actions.extend(std::mem::take(&mut added).into_iter().map(event));
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
