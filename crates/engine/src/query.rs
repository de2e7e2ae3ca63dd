//! Reading the engine: queries (constants, repeated variables, answers as sets), table
//! rows and names, statements, and the findings that do not stop evaluation (builtin
//! failures, references to policies that do not exist).

use crate::analysis::{CLit, Compiled, TableKey};
use crate::engine::Engine;
use crate::eval::TableId;
use crate::intern::Sym;
use crate::syntax::{self, Modal, Sign, Term};
use crate::types::{Answer, BuiltinFailures, EngineError, EngineWarning};
use crate::value::Value;
use hashbrown::HashMap;
use std::collections::BTreeSet;

/// The rows of one table.
pub type Rows = Vec<Vec<Value>>;

/// A query literal resolved against the engine.
pub(crate) struct ResolvedQuery {
    pub table: Option<TableId>,
    pub terms: Vec<Term>,
    /// The name to print answers with (`error`, `nova:servers`, `execute[nova:p]`).
    pub printed: String,
    pub modal: bool,
}

impl Engine {
    /// Resolve the table a query literal reads in `policy`.
    pub(crate) fn resolve_query(&self, policy: &str, query: &str) -> Result<ResolvedQuery, EngineError> {
        if !self.policies.contains_key(policy) {
            return Err(EngineError::NoSuchPolicy(policy.to_string()));
        }
        let rule = syntax::parse_one(query).map_err(|e| EngineError::Query(e.to_string()))?;
        if rule.heads.len() != 1 || !rule.body.is_empty() || rule.heads[0].negated {
            return Err(EngineError::Query(format!("a query is one literal, not `{rule}`")));
        }
        let lit = &rule.heads[0];
        let atom = &lit.atom;
        let qualified = match &atom.policy {
            Some(p) => format!("{p}:{}", atom.table),
            None => atom.table.clone(),
        };
        let sign = match atom.sign {
            Some(Sign::Plus) => "+",
            Some(Sign::Minus) => "-",
            None => "",
        };
        let (key, printed) = match lit.modal {
            Some(Modal::Execute) => (
                TableKey { policy: policy.to_string(), name: qualified.clone(), execute: true },
                format!("execute[{qualified}"),
            ),
            Some(m) => {
                return Err(EngineError::Query(format!("`{}[...]` cannot be queried", m.keyword())));
            }
            None => {
                let pol = atom.policy.clone().unwrap_or_else(|| policy.to_string());
                (TableKey::new(&pol, &format!("{}{sign}", atom.table)), format!("{qualified}{sign}"))
            }
        };
        // Congress's select() does not expand column references: such a query is empty.
        let positional = atom.args.iter().all(|a| matches!(a, syntax::Arg::Positional { .. }));
        let terms: Vec<Term> = atom.args.iter().map(|a| a.term().clone()).collect();
        let table = self.store.id_of(&key).filter(|&id| positional && self.store.tables[id].arity() == terms.len());
        Ok(ResolvedQuery { table, terms, printed, modal: lit.modal.is_some() })
    }

    /// Rows of `table` matching a query's constants and repeated variables.
    pub(crate) fn match_rows(&self, table: TableId, terms: &[Term]) -> Vec<Vec<Sym>> {
        let mut consts: Vec<(usize, Option<Sym>)> = Vec::new();
        let mut first: HashMap<&str, usize> = HashMap::new();
        let mut same: Vec<(usize, usize)> = Vec::new();
        for (i, t) in terms.iter().enumerate() {
            match t {
                Term::Const(v) => consts.push((i, self.store.interner.lookup(v))),
                Term::Var(name) => match first.get(name.as_str()) {
                    Some(&j) => same.push((i, j)),
                    None => {
                        first.insert(name, i);
                    }
                },
            }
        }
        if consts.iter().any(|(_, s)| s.is_none()) {
            return Vec::new();
        }
        self.store.tables[table]
            .iter()
            .filter(|(_, r)| consts.iter().all(|(i, s)| Some(r[*i]) == *s) && same.iter().all(|(i, j)| r[*i] == r[*j]))
            .map(|(_, r)| r.to_vec())
            .collect()
    }

    pub(crate) fn answer(&self, row: &[Sym]) -> Answer {
        row.iter()
            .map(|&s| match self.store.interner.marker_name(s) {
                Some(name) => Term::Var(name.to_string()),
                None => Term::Const(self.store.interner.value(s)),
            })
            .collect()
    }

    /// Answers to a query literal in `policy`, as a sorted set.
    pub fn query(&self, policy: &str, query: &str) -> Result<Vec<Answer>, EngineError> {
        let q = self.resolve_query(policy, query)?;
        let Some(table) = q.table else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Answer> = self.match_rows(table, &q.terms).iter().map(|r| self.answer(r)).collect();
        out.sort_by_key(answer_key);
        Ok(out)
    }

    /// Answers as plain values (variables of action policies print as their names).
    pub fn query_values(&self, policy: &str, query: &str) -> Result<Vec<Vec<Value>>, EngineError> {
        let q = self.resolve_query(policy, query)?;
        let Some(table) = q.table else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Vec<Value>> = self.match_rows(table, &q.terms).iter().map(|r| self.values(r)).collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Answers printed as Congress prints them: `p("a", 1)`.
    pub fn query_strings(&self, policy: &str, query: &str) -> Result<Vec<String>, EngineError> {
        let q = self.resolve_query(policy, query)?;
        let Some(table) = q.table else {
            return Ok(Vec::new());
        };
        let mut out: Vec<String> = self
            .match_rows(table, &q.terms)
            .iter()
            .map(|r| print_literal(&q.printed, &self.answer(r), q.modal))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every row of a table the policy mentions ([`Engine::tables`]). `table` may name
    /// another policy's table (`nova:servers`) that the policy's rules mention. As in
    /// Congress, any other table (one the policy never mentions, the target of an
    /// `execute[...]` head) is [`EngineError::NoSuchTable`].
    pub fn rows(&self, policy: &str, table: &str) -> Result<Vec<Vec<Value>>, EngineError> {
        if !self.policies.contains_key(policy) {
            return Err(EngineError::NoSuchPolicy(policy.to_string()));
        }
        let key = match table.split_once(':') {
            Some((p, t)) => TableKey::new(p, t),
            None => TableKey::new(policy, table),
        };
        // `policy:t` asked of `policy` is its own `t`.
        let listed = if key.policy == policy { key.name.as_str() } else { table };
        if !self.tables(policy)?.iter().any(|t| t == listed) {
            return Err(EngineError::NoSuchTable { policy: policy.to_string(), table: table.to_string() });
        }
        let Some(id) = self.store.id_of(&key) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Vec<Value>> = self.store.tables[id].iter().map(|(_, r)| self.values(r)).collect();
        out.sort();
        Ok(out)
    }

    /// Whether table `table` of policy `policy` holds `row` (one hash lookup; no copy of the
    /// table).
    pub fn has_row(&self, policy: &str, table: &str, row: &[Value]) -> bool {
        let Some(id) = self.store.id_of(&TableKey::new(policy, table)) else { return false };
        let syms: Option<Vec<crate::intern::Sym>> = row.iter().map(|v| self.store.interner.lookup(v)).collect();
        syms.is_some_and(|s| self.store.tables[id].contains(&s))
    }

    /// Every row of every `execute[...]` table of `policy`, by table (`nova:servers.pause`),
    /// tables and rows sorted: the actions its rules ask for now.
    pub fn execute_rows(&self, policy: &str) -> Result<Vec<(String, Rows)>, EngineError> {
        let p = self.policies.get(policy).ok_or_else(|| EngineError::NoSuchPolicy(policy.to_string()))?;
        let mut heads = BTreeSet::new();
        for st in p.statements.values() {
            if let Compiled::Rule(r) = &st.compiled
                && r.head.execute
            {
                heads.insert(r.head.clone());
            }
        }
        Ok(heads
            .into_iter()
            .map(|key| {
                let mut rows: Vec<Vec<Value>> = match self.store.id_of(&key) {
                    Some(id) => self.store.tables[id].iter().map(|(_, r)| self.values(r)).collect(),
                    None => Vec::new(),
                };
                rows.sort();
                (key.name, rows)
            })
            .collect())
    }

    /// The datasources whose tables `policy`'s rules read, directly or through the rules of
    /// the policies they read (an over-approximation by policy, not by table), sorted.
    pub fn datasources_read(&self, policy: &str) -> Result<Vec<String>, EngineError> {
        if !self.policies.contains_key(policy) {
            return Err(EngineError::NoSuchPolicy(policy.to_string()));
        }
        let mut seen = BTreeSet::from([policy.to_string()]);
        let mut todo = vec![policy.to_string()];
        let mut out = BTreeSet::new();
        while let Some(name) = todo.pop() {
            let Some(p) = self.policies.get(&name) else { continue };
            if p.schema.is_some() {
                out.insert(name);
                continue;
            }
            for st in p.statements.values() {
                let Compiled::Rule(r) = &st.compiled else { continue };
                for l in &r.body {
                    if let CLit::Pos { key, .. } | CLit::Neg { key, .. } = l
                        && seen.insert(key.policy.clone())
                    {
                        todo.push(key.policy.clone());
                    }
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The tables a policy mentions (heads, facts, bodies; `policy:table` for other
    /// policies' tables; not builtins or execute tables), sorted.
    pub fn tables(&self, policy: &str) -> Result<Vec<String>, EngineError> {
        let p = self.policies.get(policy).ok_or_else(|| EngineError::NoSuchPolicy(policy.to_string()))?;
        let mut out = BTreeSet::new();
        if let Some(s) = &p.schema {
            out.extend(s.keys().cloned());
        }
        let name = |k: &TableKey| {
            if k.policy == policy { k.name.clone() } else { format!("{}:{}", k.policy, k.name) }
        };
        for st in p.statements.values() {
            match &st.compiled {
                Compiled::Fact { key, .. } => {
                    out.insert(name(key));
                }
                Compiled::Rule(r) => {
                    if !r.head.execute {
                        out.insert(name(&r.head));
                    }
                    for l in &r.body {
                        if let CLit::Pos { key, .. } | CLit::Neg { key, .. } = l {
                            out.insert(name(key));
                        }
                    }
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The statements of a policy, as written (canonical spacing), in insertion order.
    pub fn rules(&self, policy: &str) -> Result<Vec<String>, EngineError> {
        let p = self.policies.get(policy).ok_or_else(|| EngineError::NoSuchPolicy(policy.to_string()))?;
        Ok(p.statements.values().map(|s| s.text.to_string()).collect())
    }

    /// Builtin errors Congress would have swallowed, counted per rule.
    pub fn builtin_failures(&self) -> Vec<BuiltinFailures> {
        let mut out: Vec<BuiltinFailures> = self
            .store
            .failures
            .iter()
            .filter_map(|(id, f)| {
                let r = self.store.rules.get(id)?;
                let policy = self.policies.iter().find(|(_, p)| p.statements.contains_key(id))?.0;
                Some(BuiltinFailures {
                    policy: policy.clone(),
                    rule: r.text.to_string(),
                    count: f.count,
                    last_error: f.last.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.policy, &a.rule).cmp(&(&b.policy, &b.rule)));
        out
    }

    /// Findings that do not stop evaluation: literals over policies that do not exist
    /// (always empty, as in Congress).
    pub fn warnings(&self) -> Vec<EngineWarning> {
        let mut out = Vec::new();
        for (pname, p) in &self.policies {
            for st in p.statements.values() {
                let Compiled::Rule(r) = &st.compiled else {
                    continue;
                };
                for l in &r.body {
                    if let CLit::Pos { key, .. } | CLit::Neg { key, .. } = l
                        && !self.policies.contains_key(&key.policy)
                    {
                        out.push(EngineWarning {
                            policy: pname.clone(),
                            rule: st.text.to_string(),
                            message: format!(
                                "policy `{}` does not exist: `{}:{}` is empty",
                                key.policy, key.policy, key.name
                            ),
                        });
                    }
                }
            }
        }
        out
    }

    /// Number of rows stored in all tables.
    pub fn fact_count(&self) -> usize {
        self.store.tables.iter().map(|t| t.len()).sum()
    }

    /// Where the engine's stored data lives on the heap, in bytes (allocated capacity):
    /// for the bench's memory breakdown.
    pub fn memory(&self) -> MemoryReport {
        let mut r = MemoryReport::default();
        for t in &self.store.tables {
            let h = t.heap_bytes();
            r.rows += h.rows;
            r.sets += h.sets;
            r.indexes += h.indexes;
        }
        (r.symbol_entries, r.symbol_text, r.symbol_table) = self.store.interner.heap_bytes();
        r
    }
}

/// [`Engine::memory`]: heap bytes by part.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryReport {
    /// Row arenas and per-row counts of every table.
    pub rows: usize,
    /// Membership sets.
    pub sets: usize,
    /// Indexes.
    pub indexes: usize,
    /// The interner's per-symbol entries.
    pub symbol_entries: usize,
    /// The interner's string arena (and the few values kept apart).
    pub symbol_text: usize,
    /// The interner's hash table.
    pub symbol_table: usize,
}

impl MemoryReport {
    /// The interner's parts together.
    pub fn symbols(&self) -> usize {
        self.symbol_entries + self.symbol_text + self.symbol_table
    }

    pub fn total(&self) -> usize {
        self.rows + self.sets + self.indexes + self.symbols()
    }
}

fn answer_key(a: &Answer) -> Vec<(u8, Value)> {
    a.iter()
        .map(|t| match t {
            Term::Const(v) => (0, v.clone()),
            Term::Var(n) => (1, Value::str(n)),
        })
        .collect()
}

/// `name(args)` (or `execute[name(args)]`) in Congress's printing.
pub(crate) fn print_literal(name: &str, args: &Answer, modal: bool) -> String {
    let inner: Vec<String> = args
        .iter()
        .map(|t| match t {
            Term::Const(v) => v.to_string(),
            Term::Var(n) => n.clone(),
        })
        .collect();
    if modal { format!("{name}({})]", inner.join(", ")) } else { format!("{name}({})", inner.join(", ")) }
}
