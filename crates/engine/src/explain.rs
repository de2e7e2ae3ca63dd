//! Explain: a proof tree for any row of any table, found on demand by searching the
//! materialised tables top-down (one satisfying rule instantiation per derived row), so
//! nothing is recorded while evaluating. Trace: the same search, printed.

use crate::engine::Engine;
use crate::eval::relation::EXPLICIT;
use crate::eval::store::{TxnState, bind_head};
use crate::eval::{Exec, FailureLog, LLit, LTerm, RowsRef, TableId, ViewMode};
use crate::intern::Sym;
use crate::query::print_literal;
use crate::syntax::Term;
use crate::types::{EngineError, Proof};
use hashbrown::HashSet;
use std::fmt::Write as _;

/// Instantiations tried per derived row before giving up on a cyclic search.
const CANDIDATES_PER_ROW: usize = 64;
/// Total search steps for one explanation.
const SEARCH_BUDGET: u64 = 1_000_000;

impl Engine {
    /// The proof tree of a row, e.g. `explain("classification", "error(\"vm-1\")")`.
    pub fn explain(&mut self, policy: &str, row: &str) -> Result<Proof, EngineError> {
        let q = self.resolve_query(policy, row)?;
        if q.terms.iter().any(|t| matches!(t, Term::Var(_))) {
            return Err(EngineError::Query(format!("explain needs a ground row, not `{row}`")));
        }
        let Some(table) = q.table else {
            return Err(EngineError::NoProof(format!("{row} is not in any table")));
        };
        let rows = self.match_rows(table, &q.terms);
        let Some(target) = rows.into_iter().next() else {
            return Err(EngineError::NoProof(format!("{row} does not hold")));
        };
        let mut path = HashSet::new();
        let mut budget = SEARCH_BUDGET;
        self.prove(table, &target, &mut path, &mut budget).ok_or_else(|| {
            EngineError::NoProof(format!("no well-founded proof of {row} found within the search budget"))
        })
    }

    fn lit_name(&self, table: TableId) -> (String, bool) {
        let key = &self.store.info[table].key;
        if key.execute {
            (format!("execute[{}", key.name), true)
        } else {
            (format!("{}:{}", key.policy, key.name), false)
        }
    }

    fn print_row(&self, table: TableId, row: &[Sym]) -> String {
        let (name, modal) = self.lit_name(table);
        let args: Vec<Term> = row.iter().map(|&s| Term::Const(self.store.interner.value(s))).collect();
        print_literal(&name, &args, modal)
    }

    fn prove(
        &mut self,
        table: TableId,
        row: &[Sym],
        path: &mut HashSet<(TableId, Vec<Sym>)>,
        budget: &mut u64,
    ) -> Option<Proof> {
        let id = self.store.tables[table].find(row)?;
        let literal = self.print_row(table, row);
        if self.store.tables[table].count(id) & EXPLICIT != 0 {
            let key = &self.store.info[table].key;
            return Some(Proof { literal, how: format!("fact of {}", key.policy), children: Vec::new() });
        }
        if !path.insert((table, row.to_vec())) {
            return None;
        }
        let result = self.prove_by_rules(table, row, path, budget, literal);
        path.remove(&(table, row.to_vec()));
        result
    }

    fn prove_by_rules(
        &mut self,
        table: TableId,
        row: &[Sym],
        path: &mut HashSet<(TableId, Vec<Sym>)>,
        budget: &mut u64,
        literal: String,
    ) -> Option<Proof> {
        let rids = self.store.info[table].rules.clone();
        for rid in rids {
            let entry = self.store.rules.get(&rid)?.clone();
            entry.head_bound().prepare(&mut self.store.tables);
            let mut binds = entry.rule.init_binds.clone();
            if !bind_head(&entry.rule.head_terms, row, &mut binds) {
                continue;
            }
            let mut candidates: Vec<Vec<Sym>> = Vec::new();
            {
                let changed = TxnState::default().changed;
                let mut fails = FailureLog::default();
                let mut ex = Exec {
                    tables: &self.store.tables,
                    changed: &changed,
                    interner: &mut self.store.interner,
                    failures: &mut fails,
                    budget: *budget,
                };
                let none = RowsRef::default();
                ex.run(&entry.rule, entry.head_bound(), ViewMode::New, none, &mut binds, &mut |h, _, b| {
                    if h == row {
                        candidates.push(b.to_vec());
                    }
                    candidates.len() < CANDIDATES_PER_ROW
                });
                *budget = ex.budget;
            }
            'cand: for b in candidates {
                let mut children = Vec::new();
                for lit in &entry.rule.body {
                    let inst = |terms: &[LTerm]| -> Vec<Sym> {
                        terms
                            .iter()
                            .map(|t| match t {
                                LTerm::Var(v) => b[*v],
                                LTerm::Const(s) => *s,
                            })
                            .collect()
                    };
                    match lit {
                        LLit::Pos { table: t, terms } => {
                            let r = inst(terms);
                            match self.prove(*t, &r, path, budget) {
                                Some(p) => children.push(p),
                                None => continue 'cand,
                            }
                        }
                        LLit::Neg { table: t, terms } => {
                            let r = inst(terms);
                            children.push(Proof {
                                literal: format!("not {}", self.print_row(*t, &r)),
                                how: "absent".into(),
                                children: Vec::new(),
                            });
                        }
                        LLit::Builtin { builtin, terms, negated } => {
                            let args: Vec<Term> =
                                inst(terms).iter().map(|&s| Term::Const(self.store.interner.value(s))).collect();
                            let text = print_literal(&format!("builtin:{}", builtin.name), &args, false);
                            children.push(Proof {
                                literal: if *negated { format!("not {text}") } else { text },
                                how: "builtin".into(),
                                children: Vec::new(),
                            });
                        }
                        LLit::Const(_) => {}
                    }
                }
                return Some(Proof { literal, how: format!("rule: {}", entry.text), children });
            }
        }
        None
    }

    /// A readable trace of a query: the answers, each with the proof that justifies it.
    pub fn trace(&mut self, policy: &str, query: &str) -> Result<String, EngineError> {
        let answers = self.query_strings(policy, query)?;
        let mut out = String::new();
        let _ = writeln!(out, "Call: {query}");
        for a in &answers {
            let _ = writeln!(out, "Exit: {a}");
            if let Ok(p) = self.explain(policy, a) {
                for line in render_proof(&p).lines() {
                    let _ = writeln!(out, "  | {line}");
                }
            }
        }
        if answers.is_empty() {
            let _ = writeln!(out, "Fail: {query}");
        }
        Ok(out)
    }
}

/// A proof as an indented tree, one literal per line.
pub fn render_proof(p: &Proof) -> String {
    fn go(p: &Proof, depth: usize, out: &mut String) {
        let _ = writeln!(out, "{}{}  [{}]", "  ".repeat(depth), p.literal, p.how);
        for c in &p.children {
            go(c, depth + 1, out);
        }
    }
    let mut out = String::new();
    go(p, 0, &mut out);
    out
}
