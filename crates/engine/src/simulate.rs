//! Simulate: a query answered after a hypothetical sequence of data updates, rule
//! updates and action invocations, then everything rolled back. Nothing persists and no
//! action fires.

use crate::analysis::{CLit, Compiled, TableKey};
use crate::engine::Engine;
use crate::intern::Sym;
use crate::query::print_literal;
use crate::syntax::{self, Arg, Rule, Sign, Term};
use crate::types::{Answer, EngineError, PolicyKind, SimulateRequest};
use crate::value::Value;
use std::collections::{BTreeSet, HashSet};

/// One applied step and how to undo it.
enum Undo {
    Row { policy: String, table: String, row: Vec<Value>, was_insert: bool },
    Rule { policy: String, text: String, was_insert: bool },
}

impl Engine {
    /// Congress's simulate: answers to `query` in `policy` after `sequence`.
    pub fn simulate(&mut self, req: &SimulateRequest<'_>) -> Result<Vec<String>, EngineError> {
        if self.policy_kind(req.policy).is_none() {
            return Err(EngineError::NoSuchPolicy(req.policy.to_string()));
        }
        if self.policy_kind(req.action_policy).is_none() {
            return Err(EngineError::NoSuchPolicy(req.action_policy.to_string()));
        }
        let parsed = syntax::parse(req.sequence);
        if !parsed.is_ok() {
            return Err(EngineError::Syntax { source_text: req.sequence.to_string(), diagnostics: parsed.diagnostics });
        }
        let q = self.resolve_query(req.policy, req.query)?;
        let before = self.answers(req.policy, req.query)?;
        let mut undo = Vec::new();
        let result = self.run_sequence(req, &parsed.rules, &mut undo);
        let after = match result {
            Ok(()) => self.answers(req.policy, req.query),
            Err(e) => Err(e),
        };
        for u in undo.into_iter().rev() {
            self.undo(u);
        }
        let after = after?;
        let name = q.printed.clone();
        let mut out: Vec<String> = if req.delta {
            // Each answer printed once; the delta compares the printed forms (answers hold
            // floats, so they cannot be hashed themselves).
            let b: HashSet<String> = before.iter().map(|a| print_literal(&name, a, q.modal)).collect();
            let a: HashSet<String> = after.iter().map(|a| print_literal(&name, a, q.modal)).collect();
            let signed = |printed: &String, sign: char| format!("{name}{sign}{}", &printed[name.len()..]);
            let mut v: Vec<String> = a.iter().filter(|x| !b.contains(*x)).map(|x| signed(x, '+')).collect();
            v.extend(b.iter().filter(|x| !a.contains(*x)).map(|x| signed(x, '-')));
            v
        } else {
            after.iter().map(|a| print_literal(&name, a, q.modal)).collect()
        };
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn answers(&self, policy: &str, query: &str) -> Result<Vec<Answer>, EngineError> {
        self.query(policy, query)
    }

    fn run_sequence(
        &mut self,
        req: &SimulateRequest<'_>,
        seq: &[Rule],
        undo: &mut Vec<Undo>,
    ) -> Result<(), EngineError> {
        for st in seq {
            if st.heads.len() != 1 {
                return Err(EngineError::Sequence(format!("Sequence contained non-action, non-update: {st}")));
            }
            let head = &st.heads[0];
            let atom = &head.atom;
            if let Some(sign) = atom.sign {
                let policy = atom.policy.clone().unwrap_or_else(|| req.policy.to_string());
                let mut plain = st.clone();
                plain.heads[0].atom.sign = None;
                if st.body.is_empty() {
                    plain.heads[0].atom.policy = None;
                    let columns = self.schema(&policy).and_then(|s| s.get(&atom.table)).cloned();
                    let row = ground(&plain, columns.as_deref())?;
                    self.sim_row(&policy, &atom.table, row, sign == Sign::Plus, undo)?;
                } else {
                    plain.heads[0].atom.policy = None;
                    let text = plain.to_string();
                    let insert = sign == Sign::Plus;
                    let r = if insert { self.insert_rule(&policy, &text) } else { self.delete_rule(&policy, &text) };
                    if r.is_ok() {
                        undo.push(Undo::Rule { policy, text, was_insert: insert });
                    }
                }
                continue;
            }
            if st.body.is_empty() && atom.policy.is_none() && self.is_action(req.action_policy, &atom.table) {
                let row = ground(st, None)?;
                self.invoke_action(req, &atom.table, row, undo)?;
                continue;
            }
            return Err(EngineError::Sequence(format!("Sequence contained non-action, non-update: {st}")));
        }
        Ok(())
    }

    fn is_action(&self, action_policy: &str, name: &str) -> bool {
        self.query_values(action_policy, &format!("action({})", Value::str(name))).is_ok_and(|r| !r.is_empty())
    }

    /// Apply one data update; statements for policies with rules, rows for datasources.
    fn sim_row(
        &mut self,
        policy: &str,
        table: &str,
        row: Vec<Value>,
        insert: bool,
        undo: &mut Vec<Undo>,
    ) -> Result<(), EngineError> {
        let kind = self.policy_kind(policy).ok_or_else(|| EngineError::NoSuchPolicy(policy.to_string()))?;
        if kind == PolicyKind::Datasource {
            let present = self.rows(policy, table).map(|r| r.contains(&row)).unwrap_or(false);
            if present == insert {
                return Ok(());
            }
            let mut t = self.transaction();
            if insert {
                t.insert_row(policy, table, row.clone());
            } else {
                t.delete_row(policy, table, row.clone());
            }
            t.commit()?;
            undo.push(Undo::Row { policy: policy.to_string(), table: table.to_string(), row, was_insert: insert });
            return Ok(());
        }
        let args: Vec<String> = row.iter().map(Value::to_string).collect();
        let text = format!("{table}({})", args.join(", "));
        let r = if insert { self.insert_rule(policy, &text) } else { self.delete_rule(policy, &text) };
        match r {
            Ok(_) => {
                undo.push(Undo::Rule { policy: policy.to_string(), text, was_insert: insert });
                Ok(())
            }
            // Inserting a fact that exists, or deleting one that does not: no change.
            Err(EngineError::RuleExists { .. } | EngineError::NoSuchRule { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Run an action: its effects are the `+`/`-` tables of the action policy computed
    /// with the action's row asserted; inserts win over deletes; unbound variables
    /// become fresh identifiers. An update head names a table of the simulated policy
    /// (`p+`) or of another policy or datasource (`nova:servers-`).
    fn invoke_action(
        &mut self,
        req: &SimulateRequest<'_>,
        action: &str,
        row: Vec<Value>,
        undo: &mut Vec<Undo>,
    ) -> Result<(), EngineError> {
        let args: Vec<String> = row.iter().map(Value::to_string).collect();
        let fact = format!("{action}({})", args.join(", "));
        let inserted = self.insert_rule(req.action_policy, &fact).is_ok();
        let included = self.include_simulated(req, action)?;
        let mut effects: Vec<(String, String, Vec<Value>, bool)> = Vec::new();
        for t in self.tables(req.action_policy)? {
            let (base, insert) = match (t.strip_suffix('+'), t.strip_suffix('-')) {
                (Some(b), _) => (b.to_string(), true),
                (_, Some(b)) => (b.to_string(), false),
                _ => continue,
            };
            let (policy, table) = match base.split_once(':') {
                Some((p, t)) => (p.to_string(), t.to_string()),
                None => (req.policy.to_string(), base.clone()),
            };
            // The head's table as the action policy holds it (`nova:servers+` included:
            // a query would read the datasource's own table instead).
            let Some(id) = self.store.id_of(&TableKey::new(req.action_policy, &t)) else { continue };
            for (_, r) in self.store.tables[id].iter() {
                let values: Vec<Value> = self
                    .answer(r)
                    .into_iter()
                    .map(|c| match c {
                        Term::Const(v) => v,
                        Term::Var(_) => Value::str(uuid::Uuid::new_v4().to_string()),
                    })
                    .collect();
                effects.push((policy.clone(), table.clone(), values, insert));
            }
        }
        if !included.is_empty() {
            let mut t = self.transaction();
            for text in &included {
                t.delete_rule(req.action_policy, text);
            }
            t.commit()?;
        }
        if inserted {
            self.delete_rule(req.action_policy, &fact)?;
        }
        // Deletes first, then inserts: an insert of the same row wins.
        effects.sort_by_key(|e| e.3);
        for (policy, table, values, insert) in effects {
            self.sim_row(&policy, &table, values, insert, undo)?;
        }
        Ok(())
    }

    /// Congress includes the simulated policy in the action policy while an action runs:
    /// an unqualified body literal of an action description (`kv(k, old)`) reads the
    /// simulated policy's table as well as the action policy's own. The simulated rows
    /// are asserted as facts of the action policy; the texts returned are removed after.
    fn include_simulated(&mut self, req: &SimulateRequest<'_>, action: &str) -> Result<Vec<String>, EngineError> {
        if req.policy == req.action_policy {
            return Ok(Vec::new());
        }
        let Some(p) = self.policies.get(req.action_policy) else {
            return Ok(Vec::new());
        };
        let mut read: BTreeSet<String> = BTreeSet::new();
        for st in p.statements.values() {
            let Compiled::Rule(r) = &st.compiled else { continue };
            for l in &r.body {
                if let CLit::Pos { key, .. } | CLit::Neg { key, .. } = l
                    && key.policy == req.action_policy
                    && !key.execute
                    && key.name != "action"
                    && key.name != action
                    && !key.name.contains(':')
                {
                    read.insert(key.name.clone());
                }
            }
        }
        let mut texts = Vec::new();
        for name in read {
            let Some(from) = self.store.id_of(&TableKey::new(req.policy, &name)) else { continue };
            let Some(to) = self.store.id_of(&TableKey::new(req.action_policy, &name)) else { continue };
            if self.store.tables[from].arity() != self.store.tables[to].arity() {
                continue;
            }
            let have: BTreeSet<Vec<Sym>> = self.store.tables[to].iter().map(|(_, r)| r.to_vec()).collect();
            for (_, r) in self.store.tables[from].iter() {
                if have.contains(r) {
                    continue;
                }
                let args: Vec<String> = self.values(r).iter().map(Value::to_string).collect();
                texts.push(format!("{name}({})", args.join(", ")));
            }
        }
        if !texts.is_empty() {
            let mut t = self.transaction();
            for text in &texts {
                t.insert_rule(req.action_policy, text);
            }
            t.commit()?;
        }
        Ok(texts)
    }

    fn undo(&mut self, u: Undo) {
        // Undo steps invert changes this engine just applied; they cannot fail.
        let _ = match u {
            Undo::Row { policy, table, row, was_insert } => {
                let mut t = self.transaction();
                if was_insert {
                    t.delete_row(&policy, &table, row);
                } else {
                    t.insert_row(&policy, &table, row);
                }
                t.commit()
            }
            Undo::Rule { policy, text, was_insert } => {
                if was_insert {
                    self.delete_rule(&policy, &text)
                } else {
                    self.insert_rule(&policy, &text)
                }
            }
        };
    }
}

/// The row a ground data update writes. Column references (`id="vm-1"`) are resolved
/// against the datasource's columns; every column must then be given.
fn ground(st: &Rule, columns: Option<&[String]>) -> Result<Vec<Value>, EngineError> {
    let bad = |why: &str| EngineError::Sequence(format!("{why}: {st}"));
    let mut row: Vec<Option<Value>> = Vec::new();
    for arg in &st.heads[0].atom.args {
        let value = match arg.term() {
            Term::Const(v) => v.clone(),
            Term::Var(_) => return Err(bad("data updates must be ground")),
        };
        let index = match arg {
            Arg::Positional { .. } => row.len(),
            Arg::Named { column, .. } => columns
                .and_then(|c| c.iter().position(|n| n == column))
                .ok_or_else(|| bad(&format!("no column `{column}` in this table")))?,
            Arg::Numbered { index, .. } => *index as usize,
        };
        if let Some(c) = columns
            && index >= c.len()
        {
            return Err(bad(&format!("the table has {} columns", c.len())));
        }
        if row.len() <= index {
            row.resize(index + 1, None);
        }
        if row[index].replace(value).is_some() {
            return Err(bad(&format!("column {index} is given twice")));
        }
    }
    if let Some(c) = columns {
        row.resize(c.len(), None);
    }
    row.into_iter().map(|v| v.ok_or_else(|| bad("a data update must give every column"))).collect()
}

/// One datasource table's hypothetical change for [`Engine::hypothetically`]: rows out,
/// rows in (an admitted object's old rows and new rows).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowChange {
    pub policy: String,
    pub table: String,
    pub removed: Vec<Vec<Value>>,
    pub added: Vec<Vec<Value>>,
}

impl Engine {
    /// Apply `changes` (removals, then additions) in one transaction, call `inspect` with the
    /// engine in that state and the commit (the net change of every table: what the change
    /// would add to an `error` table), then restore the engine exactly: the base rows that
    /// changed are changed back. Nothing persists and no action fires; the engine is
    /// borrowed mutably throughout, so no other change or query sees the hypothetical rows.
    /// A removed row that is not there, or an added one that already is, changes nothing.
    pub fn hypothetically<T>(
        &mut self,
        changes: &[RowChange],
        inspect: impl FnOnce(&mut Engine, &crate::types::Commit) -> T,
    ) -> Result<T, EngineError> {
        // What is there before, so the undo restores exactly that (a lookup per row: the
        // cost follows the change, not the tables).
        let mut present: Vec<(usize, Vec<bool>, Vec<bool>)> = Vec::with_capacity(changes.len());
        for (i, c) in changes.iter().enumerate() {
            match self.schema(&c.policy) {
                None if self.policy_kind(&c.policy).is_none() => {
                    return Err(EngineError::NoSuchPolicy(c.policy.clone()));
                }
                Some(s) if s.contains_key(&c.table) => {}
                _ => return Err(EngineError::NoSuchTable { policy: c.policy.clone(), table: c.table.clone() }),
            }
            let removed = c.removed.iter().map(|r| self.has_row(&c.policy, &c.table, r)).collect();
            let added = c.added.iter().map(|r| self.has_row(&c.policy, &c.table, r)).collect();
            present.push((i, removed, added));
        }
        let mut txn = self.transaction();
        for c in changes {
            txn.delete_rows(&c.policy, &c.table, c.removed.clone());
            txn.insert_rows(&c.policy, &c.table, c.added.clone());
        }
        let commit = txn.commit()?;
        let out = inspect(self, &commit);
        let mut undo = self.transaction();
        for (i, removed_was, added_was) in present {
            let c = &changes[i];
            // Added rows that were not there go; removed rows that were there come back
            // (a row both removed and added ends as it was added: present).
            let added_new: Vec<Vec<Value>> =
                c.added.iter().zip(&added_was).filter(|(_, was)| !**was).map(|(r, _)| r.clone()).collect();
            let removed_back: Vec<Vec<Value>> = c
                .removed
                .iter()
                .zip(&removed_was)
                .filter(|(r, was)| **was && !c.added.contains(r))
                .map(|(r, _)| r.clone())
                .collect();
            undo.delete_rows(&c.policy, &c.table, added_new);
            undo.insert_rows(&c.policy, &c.table, removed_back);
        }
        undo.commit()?;
        Ok(out)
    }
}
