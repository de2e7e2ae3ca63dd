//! Batched plan execution over the current state, for full evaluations.
//!
//! [`Exec::run`] walks a plan depth first, one body instantiation at a time: right for a
//! small delta, but in a full evaluation every index probe then waits on two dependent
//! cache misses (the bucket, then the candidate row) before the next probe can start.
//! Here each step takes a batch of up to [`BATCH`] partial bindings and produces the
//! next batch: a lookup hashes every key of the batch, then finds every bucket, then
//! compares every candidate ([`Relation::lookup_batch`]), so the loads of different
//! bindings overlap (vectorised probing, as in MonetDB/X100 and DuckDB). A step whose
//! output fills a batch hands it on at once, so memory stays at one batch per step
//! however much a join fans out, and head rows come out in the depth-first order.
//!
//! Only the new view is read (`ViewMode::New`): the incremental paths that read the
//! state before a transaction keep [`Exec::run`].

use super::relation::Relation;
use super::{Exec, LLit, LRule, LTerm, Plan, Rows, Step, apply_ops};
use crate::intern::Sym;

/// Bindings per batch: enough independent probes to hide memory latency, small enough
/// that a batch's bindings and keys stay in the L1/L2 cache.
const BATCH: usize = 1024;

/// Partial bindings of a rule's variables (`width` symbols each), with their weights.
#[derive(Debug, Default)]
struct Tuples {
    width: usize,
    syms: Vec<Sym>,
    weights: Vec<i64>,
}

impl Tuples {
    fn len(&self) -> usize {
        self.weights.len()
    }

    fn get(&self, i: usize) -> &[Sym] {
        &self.syms[i * self.width..(i + 1) * self.width]
    }

    fn push(&mut self, binds: &[Sym], weight: i64) {
        self.syms.extend_from_slice(binds);
        self.weights.push(weight);
    }

    fn clear(&mut self) {
        self.syms.clear();
        self.weights.clear();
    }
}

impl Exec<'_> {
    /// Run `plan` for `rule` over the current contents of every table, appending each
    /// body instantiation's head row and weight to `out` (the rows and weights
    /// [`Exec::run`] with `ViewMode::New` would emit, in the same order). `delta`
    /// supplies the rows of a delta plan; `init` the initial bindings.
    pub fn run_batched(&mut self, rule: &LRule, plan: &Plan, delta: &Rows, init: &[Sym], out: &mut Rows) {
        let width = init.len();
        let mut first = Tuples { width, ..Default::default() };
        first.push(init, 1);
        let mut pool: Vec<Tuples> = (0..plan.steps.len()).map(|_| Tuples { width, ..Default::default() }).collect();
        self.stage(rule, plan, 0, &first, delta, &mut pool, out);
    }

    /// Pass the bindings of `input` through step `k` and everything after it.
    #[allow(clippy::too_many_arguments)]
    fn stage(
        &mut self,
        rule: &LRule,
        plan: &Plan,
        k: usize,
        input: &Tuples,
        delta: &Rows,
        pool: &mut [Tuples],
        out: &mut Rows,
    ) {
        let Some(step) = plan.steps.get(k) else {
            let mut head: smallvec::SmallVec<[Sym; 8]> = smallvec::smallvec![0; rule.head_terms.len()];
            for i in 0..input.len() {
                let binds = input.get(i);
                for (h, t) in head.iter_mut().zip(&rule.head_terms) {
                    *h = match *t {
                        LTerm::Var(v) => binds[v],
                        LTerm::Const(s) => s,
                    };
                }
                out.push(&head, input.weights[i]);
            }
            return;
        };
        let mut next = std::mem::take(&mut pool[k]);
        next.width = input.width;
        next.clear();
        let mut b: Vec<Sym> = vec![0; input.width];
        // Hand a full batch on to the next step.
        macro_rules! emit {
            ($binds:expr, $w:expr) => {
                next.push($binds, $w);
                if next.len() >= BATCH {
                    self.stage(rule, plan, k + 1, &next, delta, pool, out);
                    next.clear();
                }
            };
        }
        let tables = self.tables;
        match step {
            Step::Fail => {}
            Step::Delta { lit, ops } => {
                let negated = matches!(rule.body[*lit], LLit::Neg { .. });
                for i in 0..input.len() {
                    for (row, w) in delta.iter() {
                        b.copy_from_slice(input.get(i));
                        if apply_ops(ops, row, &mut b) {
                            let w = if negated { -w } else { w };
                            emit!(&b, input.weights[i] * w);
                        }
                    }
                }
            }
            Step::Lookup { table, cols, key, ops, index, .. } => {
                let rel: &Relation = &tables[*table];
                if cols.is_empty() {
                    for i in 0..input.len() {
                        for (_, row) in rel.iter() {
                            b.copy_from_slice(input.get(i));
                            if apply_ops(ops, row, &mut b) {
                                emit!(&b, input.weights[i]);
                            }
                        }
                    }
                } else {
                    let cached = index.get().copied().filter(|&ix| rel.index_cols(ix) == Some(cols.as_slice()));
                    if let Some(ix) = cached.or_else(|| rel.index_id(cols)) {
                        let mut keys = Vec::with_capacity(input.len() * key.len());
                        for i in 0..input.len() {
                            let binds = input.get(i);
                            keys.extend(key.iter().map(|t| match *t {
                                LTerm::Var(v) => binds[v],
                                LTerm::Const(s) => s,
                            }));
                        }
                        rel.lookup_batch(ix, &keys, key.len(), |i, id| {
                            b.copy_from_slice(input.get(i));
                            if apply_ops(ops, rel.row(id), &mut b) {
                                emit!(&b, input.weights[i]);
                            }
                        });
                    }
                }
            }
            Step::Member { table, terms, .. } | Step::Absent { table, terms, .. } => {
                let want = matches!(step, Step::Member { .. });
                let mut rows = Vec::with_capacity(input.len() * terms.len());
                for i in 0..input.len() {
                    let binds = input.get(i);
                    rows.extend(terms.iter().map(|t| match *t {
                        LTerm::Var(v) => binds[v],
                        LTerm::Const(s) => s,
                    }));
                }
                let mut present = Vec::new();
                tables[*table].contains_batch(&rows, input.len(), &mut present);
                for (i, &p) in present.iter().enumerate() {
                    if p == want {
                        emit!(input.get(i), input.weights[i]);
                    }
                }
            }
            Step::Builtin { builtin, inputs, outputs, negated } => {
                for i in 0..input.len() {
                    b.copy_from_slice(input.get(i));
                    if self.builtin_holds(builtin, inputs, outputs, *negated, &mut b) {
                        emit!(&b, input.weights[i]);
                    }
                }
            }
        }
        if next.len() > 0 {
            self.stage(rule, plan, k + 1, &next, delta, pool, out);
        }
        pool[k] = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Changed, FailureLog, ViewMode, plan};
    use crate::intern::Interner;
    use hashbrown::HashMap;

    /// Both executors, every plan of a rule (full and delta-driven): the same rows and
    /// weights in the same order, with joins fanning out past a batch.
    #[test]
    fn batched_runs_emit_what_depth_first_runs_emit() {
        // p(x, y) :- a(x, z), b(z, y), not c(y), a(x, 7)
        let (a, b, c) = (0, 1, 2);
        let mut tables = vec![Relation::new(2), Relation::new(2), Relation::new(1)];
        for x in 0..40u32 {
            tables[a].insert_new(&[x, x % 3], 1);
            tables[a].insert_new(&[x, 7], 1);
        }
        for y in 0..3000u32 {
            tables[b].insert_new(&[y % 4, y], 1);
        }
        for y in (0..3000u32).step_by(5) {
            tables[c].insert_new(&[y], 1);
        }
        let var = LTerm::Var;
        let rule = LRule {
            head: 3,
            head_terms: vec![var(0), var(1)],
            body: vec![
                LLit::Pos { table: a, terms: vec![var(0), var(2)] },
                LLit::Pos { table: b, terms: vec![var(2), var(1)] },
                LLit::Neg { table: c, terms: vec![var(1)] },
                LLit::Pos { table: a, terms: vec![var(0), LTerm::Const(7)] },
            ],
            nvars: 3,
            init_binds: vec![0; 3],
        };
        let mut delta = Rows::new(2);
        delta.push(&[1, 2], 1);
        delta.push(&[3, 1], -1);
        delta.push(&[2, 0], 2);
        let mut plans = vec![(plan(&rule, None, false), Rows::default())];
        plans.push((plan(&rule, Some(0), false), delta.clone()));
        plans.push((plan(&rule, Some(1), false), delta));
        let mut one = Rows::new(1);
        one.push(&[10], 1);
        plans.push((plan(&rule, Some(2), false), one));
        let changed: HashMap<usize, Changed> = HashMap::new();
        let mut interner = Interner::default();
        for (p, d) in &plans {
            p.prepare(&mut tables);
            let mut failures = FailureLog::default();
            let mut ex = Exec {
                tables: &tables,
                changed: &changed,
                interner: &mut interner,
                failures: &mut failures,
                budget: u64::MAX,
            };
            let mut want = Rows::new(2);
            let mut binds = rule.init_binds.clone();
            ex.run(&rule, p, ViewMode::New, d, &mut binds, &mut |h, w, _| {
                want.push(h, w);
                true
            });
            let mut got = Rows::new(2);
            ex.run_batched(&rule, p, d, &rule.init_binds, &mut got);
            assert!(!want.is_empty());
            assert_eq!(got.iter().collect::<Vec<_>>(), want.iter().collect::<Vec<_>>());
        }
    }
}
