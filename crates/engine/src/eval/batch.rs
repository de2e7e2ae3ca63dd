//! Batched plan execution, for full evaluations and large deltas.
//!
//! [`Exec::run`] walks a plan depth first, one body instantiation at a time: right for a
//! small delta, but in a full evaluation (or a delta of a thousand rows) every index
//! probe then waits on two dependent
//! cache misses (the bucket, then the candidate row) before the next probe can start.
//! Here each step takes a batch of up to [`BATCH`] partial bindings and produces the
//! next batch: a lookup hashes every key of the batch, then finds every bucket, then
//! compares every candidate ([`Relation::lookup_batch`]), so the loads of different
//! bindings overlap (vectorised probing, as in MonetDB/X100 and DuckDB). A step whose
//! output fills a batch hands it on at once, so memory stays at one batch per step
//! however much a join fans out, and head rows come out in the depth-first order.
//!
//! Literals that read the state before the transaction (`ViewMode::Old` and
//! `Telescoping`) see the current rows minus the transaction's `added` plus its
//! `removed`, exactly as in [`Exec::run`].

use super::relation::Relation;
use super::{
    Changed, ColOp, Exec, IntCompare, LLit, LRule, LTerm, Plan, Rows, RowsRef, Step, TableId, ViewMode, apply_ops,
};
use crate::intern::Sym;
use hashbrown::HashMap;
use smallvec::SmallVec;

/// Bindings per batch: enough independent probes to hide memory latency, small enough
/// that a batch's bindings and keys stay in the L1/L2 cache.
const BATCH: usize = 1024;

/// Partial bindings of a rule's variables (`width` symbols each), with their weights.
#[derive(Clone, Debug, Default)]
struct Tuples {
    width: usize,
    syms: Vec<Sym>,
    weights: Vec<i64>,
}

/// The buffers of [`Exec::run_batched`]'s steps, kept by the store between runs: each
/// holds up to a batch, and a delta's many small runs would otherwise allocate them anew
/// (and, with the allocator purging at once, fault their pages in) every time.
#[derive(Clone, Debug, Default)]
pub struct BatchBuffers {
    pool: Vec<Tuples>,
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

    /// Push `binds` extended by the variables `bound` binds from `row` (whose checks
    /// have passed: [`Split::passes`]).
    #[inline]
    fn push_bound(&mut self, binds: &[Sym], bound: &[(usize, usize)], row: &[Sym], weight: i64) {
        let start = self.syms.len();
        self.syms.extend_from_slice(binds);
        let tail = &mut self.syms[start..];
        for &(c, v) in bound {
            tail[v] = row[c];
        }
        self.weights.push(weight);
    }

    fn clear(&mut self) {
        self.syms.clear();
        self.weights.clear();
    }
}

/// The transaction's changes to the table literal `lit` reads, when it reads the old
/// view and there are any.
fn old_view(changed: &HashMap<TableId, Changed>, mode: ViewMode, lit: usize, table: TableId) -> Option<&Changed> {
    if mode.old_for(lit) { changed.get(&table).filter(|c| !c.is_empty()) } else { None }
}

/// Whether no check of `ops` reads a variable that `ops` itself binds (as the second
/// `x` of `a(x, x)` does).
fn checks_read_earlier_binds(ops: &[(usize, ColOp)]) -> bool {
    ops.iter().all(|&(_, op)| match op {
        ColOp::Check(v) => !ops.iter().any(|&(_, o)| matches!(o, ColOp::Bind(b) if b == v)),
        _ => true,
    })
}

/// A step's column ops, split once per batch into the checks (column, what it must
/// equal: an earlier binding or a constant) and the bindings (column, variable), so that
/// no row pays for matching each op's kind. Only for ops whose checks read variables
/// bound before the step ([`checks_read_earlier_binds`]): a row is then tested before
/// anything is copied, and only a passing row's bindings are built.
#[derive(Default)]
struct Split {
    checks: SmallVec<[(usize, LTerm); 8]>,
    bound: SmallVec<[(usize, usize); 8]>,
}

impl Split {
    fn of(ops: &[(usize, ColOp)]) -> Split {
        let mut split = Split::default();
        for &(c, op) in ops {
            match op {
                ColOp::Bind(v) => split.bound.push((c, v)),
                ColOp::Check(v) => split.checks.push((c, LTerm::Var(v))),
                ColOp::CheckConst(s) => split.checks.push((c, LTerm::Const(s))),
            }
        }
        split
    }

    /// Whether `row` passes the checks under the earlier bindings `binds`.
    #[inline]
    fn passes(&self, row: &[Sym], binds: &[Sym]) -> bool {
        self.checks.iter().all(|&(c, want)| row[c] == want.value(binds))
    }
}

/// What every stage of one batched run shares.
#[derive(Clone, Copy)]
struct Run<'r> {
    rule: &'r LRule,
    plan: &'r Plan,
    mode: ViewMode,
    delta: RowsRef<'r>,
}

impl Exec<'_> {
    /// Run `plan` for `rule` with each literal reading the view `mode` gives it,
    /// appending each body instantiation's head row and weight to `out` (the rows and
    /// weights [`Exec::run`] would emit, in the same order). `delta` supplies the rows of
    /// a delta plan; the rule's `init_binds` are the initial bindings; `buffers` are the
    /// steps' buffers, reused.
    pub fn run_batched(
        &mut self,
        rule: &LRule,
        plan: &Plan,
        mode: ViewMode,
        delta: RowsRef<'_>,
        buffers: &mut BatchBuffers,
        out: &mut Rows,
    ) {
        let init = &rule.init_binds;
        let width = init.len();
        let mut first = Tuples { width, ..Default::default() };
        first.push(init, 1);
        let steps = plan.steps.len();
        if buffers.pool.len() < steps {
            buffers.pool.resize_with(steps, Tuples::default);
        }
        let run = Run { rule, plan, mode, delta };
        // `stage` sets each buffer's width and clears it before use.
        self.stage(&run, 0, &first, &mut buffers.pool[..steps], out);
    }

    /// Pass the bindings of `input` through step `k` and everything after it.
    fn stage(&mut self, run: &Run<'_>, k: usize, input: &Tuples, pool: &mut [Tuples], out: &mut Rows) {
        let Run { rule, plan, mode, delta } = *run;
        let Some(step) = plan.steps.get(k) else {
            let mut head: smallvec::SmallVec<[Sym; 8]> = smallvec::smallvec![0; rule.head_terms.len()];
            for i in 0..input.len() {
                let binds = input.get(i);
                for (h, t) in head.iter_mut().zip(&rule.head_terms) {
                    *h = t.value(binds);
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
                    self.stage(run, k + 1, &next, pool, out);
                    next.clear();
                }
            };
        }
        // Pass binding `i` joined with `row` on, if the row matches.
        // `$split` is `Some` when the ops' checks read only earlier bindings.
        macro_rules! emit_row {
            ($i:expr, $row:expr, $ops:expr, $split:expr) => {
                let (i, row) = ($i, $row);
                if let Some(split) = $split {
                    if split.passes(row, input.get(i)) {
                        next.push_bound(input.get(i), &split.bound, row, input.weights[i]);
                        if next.len() >= BATCH {
                            self.stage(run, k + 1, &next, pool, out);
                            next.clear();
                        }
                    }
                } else {
                    b.copy_from_slice(input.get(i));
                    if apply_ops($ops, row, &mut b) {
                        emit!(&b, input.weights[i]);
                    }
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
            Step::Lookup { lit, table, cols, key, ops, index } => {
                let rel: &Relation = &tables[*table];
                let old = old_view(self.changed, mode, *lit, *table);
                if old.is_some_and(|c| c.all_new) {
                    // Empty before the transaction.
                } else if cols.is_empty() {
                    let added = old.map(|c| &c.added).filter(|a| !a.is_empty());
                    let removed = old.map(|c| &c.removed);
                    let split = checks_read_earlier_binds(ops).then(|| Split::of(ops));
                    let split = split.as_ref();
                    if let (None, None, Some(rows)) = (added, removed, rel.dense_rows()) {
                        // A table without holes read as it is now (the usual first step
                        // of a full evaluation): its rows walked as one array.
                        for i in 0..input.len() {
                            for row in rows.clone() {
                                emit_row!(i, row, ops, split);
                            }
                        }
                    } else {
                        for i in 0..input.len() {
                            let current = rel.iter().map(|(_, r)| r).filter(|r| !added.is_some_and(|a| a.contains(r)));
                            for row in current.chain(removed.into_iter().flat_map(|r| r.iter())) {
                                emit_row!(i, row, ops, split);
                            }
                        }
                    }
                } else {
                    let cached = index.get().copied().filter(|&ix| rel.index_cols(ix) == Some(cols.as_slice()));
                    if let Some(ix) = cached.or_else(|| rel.index_id(cols)) {
                        let mut keys = Vec::with_capacity(input.len() * key.len());
                        for i in 0..input.len() {
                            let binds = input.get(i);
                            keys.extend(key.iter().map(|t| t.value(binds)));
                        }
                        let width = key.len();
                        let split = checks_read_earlier_binds(ops).then(|| Split::of(ops));
                        let split = split.as_ref();
                        let added = old.map(|c| &c.added).filter(|a| !a.is_empty());
                        let removed = old.map(|c| &c.removed).filter(|r| !r.is_empty());
                        // The old view's removed rows of binding `i` come right after its
                        // current rows, as in the depth-first order: `done` is the first
                        // binding whose removed rows are still to come.
                        let mut done = 0;
                        macro_rules! removed_upto {
                            ($end:expr) => {
                                if let Some(removed) = removed {
                                    for i in done..$end {
                                        let kv = &keys[i * width..(i + 1) * width];
                                        for row in removed.iter() {
                                            if cols.iter().zip(kv).all(|(&c, &v)| row[c] == v) {
                                                emit_row!(i, row, ops, split);
                                            }
                                        }
                                    }
                                }
                                done = done.max($end);
                            };
                        }
                        rel.lookup_batch(ix, &keys, width, |i, id| {
                            removed_upto!(i);
                            let row = rel.row(id);
                            if added.is_some_and(|a| a.contains(row)) {
                                return;
                            }
                            emit_row!(i, row, ops, split);
                        });
                        removed_upto!(input.len());
                        debug_assert_eq!(done, input.len());
                    }
                }
            }
            Step::Member { lit, table, terms } | Step::Absent { lit, table, terms } => {
                let want = matches!(step, Step::Member { .. });
                let mut rows = Vec::with_capacity(input.len() * terms.len());
                for i in 0..input.len() {
                    let binds = input.get(i);
                    rows.extend(terms.iter().map(|t| t.value(binds)));
                }
                let mut present = Vec::new();
                tables[*table].contains_batch(&rows, input.len(), &mut present);
                if let Some(ch) = old_view(self.changed, mode, *lit, *table) {
                    let width = terms.len();
                    for (i, p) in present.iter_mut().enumerate() {
                        let row = &rows[i * width..(i + 1) * width];
                        *p = ch.was_present(row, || *p);
                    }
                }
                for (i, &p) in present.iter().enumerate() {
                    if p == want {
                        emit!(input.get(i), input.weights[i]);
                    }
                }
            }
            Step::Builtin { builtin, inputs, outputs, negated } => {
                // A comparison of integers binds nothing: tested on the binding as it
                // is, without a copy.
                let compare = match inputs.as_slice() {
                    [x, y] if outputs.is_empty() => IntCompare::of(builtin).map(|c| (c, *x, *y)),
                    _ => None,
                };
                for i in 0..input.len() {
                    let binds = input.get(i);
                    if let Some((c, x, y)) = compare
                        && let Some(cmp) = c.holds(x.value(binds), y.value(binds), self.interner)
                    {
                        if cmp != *negated {
                            emit!(input.get(i), input.weights[i]);
                        }
                        continue;
                    }
                    b.copy_from_slice(input.get(i));
                    if self.builtin_holds(builtin, inputs, outputs, *negated, &mut b) {
                        emit!(&b, input.weights[i]);
                    }
                }
            }
        }
        if next.len() > 0 {
            self.stage(run, k + 1, &next, pool, out);
        }
        pool[k] = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Changed, FailureLog, LTerm, ViewMode, plan};
    use crate::intern::Interner;
    use hashbrown::HashMap;

    /// What each executor emits for plan `p` of `rule`: (depth first, batched).
    fn run_both(
        rule: &LRule,
        p: &Plan,
        (mode, delta): (ViewMode, &Rows),
        tables: &[Relation],
        changed: &HashMap<TableId, Changed>,
        interner: &mut Interner,
    ) -> (Rows, Rows) {
        let mut failures = FailureLog::default();
        let mut ex = Exec { tables, changed, interner, failures: &mut failures, budget: u64::MAX };
        let arity = rule.head_terms.len();
        let mut depth_first = Rows::new(arity);
        let mut binds = rule.init_binds.clone();
        ex.run(rule, p, mode, delta.view(), &mut binds, &mut |h, w, _| {
            depth_first.push(h, w);
            true
        });
        let mut batched = Rows::new(arity);
        ex.run_batched(rule, p, mode, delta.view(), &mut BatchBuffers::default(), &mut batched);
        (depth_first, batched)
    }

    /// `p(x, y) :- a(x, y), lt(x, y), not equal(y, 5)` and the same with `gteq` on
    /// integers (computed in place) and on strings (through the builtin): both
    /// executors emit the rows the comparison keeps.
    #[test]
    fn batched_comparisons_keep_what_depth_first_ones_keep() {
        use crate::value::Value;
        let mut interner = Interner::default();
        let mut tables = vec![Relation::new(2)];
        let mut want_lt = 0;
        for x in 0..40i64 {
            for y in [x - 1, x, x + 3, 5] {
                let row = [interner.intern(&Value::Int(x)), interner.intern(&Value::Int(y))];
                if tables[0].find(&row).is_none() {
                    tables[0].insert_new(&row, 1);
                    want_lt += usize::from(x < y && y != 5);
                }
            }
        }
        let strings = [interner.intern(&Value::str("b")), interner.intern(&Value::str("a"))];
        tables[0].insert_new(&strings, 1);
        let five = interner.intern(&Value::Int(5));
        let var = LTerm::Var;
        for (name, want) in [("lt", Some(want_lt)), ("gteq", None)] {
            let builtin = crate::builtins::lookup(name, 2).expect("a comparison");
            let rule = LRule {
                head: 1,
                head_terms: vec![var(0), var(1)],
                body: vec![
                    LLit::Pos { table: 0, terms: vec![var(0), var(1)] },
                    LLit::Builtin { builtin, terms: vec![var(0), var(1)], negated: false },
                    LLit::Builtin {
                        builtin: crate::builtins::lookup("equal", 2).expect("equal"),
                        terms: vec![var(1), LTerm::Const(five)],
                        negated: true,
                    },
                ],
                nvars: 2,
                init_binds: vec![0; 2],
            };
            let p = plan(&rule, None, false);
            p.prepare(&mut tables);
            let none = Rows::default();
            let (depth_first, batched) =
                run_both(&rule, &p, (ViewMode::New, &none), &tables, &HashMap::new(), &mut interner);
            assert_eq!(batched.iter().collect::<Vec<_>>(), depth_first.iter().collect::<Vec<_>>(), "{name}");
            if let Some(want) = want {
                assert_eq!(batched.len(), want, "{name}");
            } else {
                // "b" >= "a": the string row passes through the builtin itself.
                assert!(batched.iter().any(|(r, _)| r == strings), "{name}");
            }
        }
    }

    /// A full scan walks a table without holes as one array, and a table some of whose
    /// rows were removed row by row, skipping the holes: both give the live rows the
    /// depth-first executor gives, with the checks of the scanned literal applied.
    #[test]
    fn batched_scans_see_live_rows_with_or_without_holes() {
        // p(x) :- a(x, 7, y), b(y)
        let (a, b) = (0, 1);
        let mut tables = vec![Relation::new(3), Relation::new(1)];
        let mut ids = Vec::new();
        for x in 0..3000u32 {
            ids.push(tables[a].insert_new(&[x, 7 - x % 2, x % 5], 1));
        }
        tables[b].insert_new(&[1], 1);
        tables[b].insert_new(&[3], 1);
        let var = LTerm::Var;
        let rule = LRule {
            head: 2,
            head_terms: vec![var(0)],
            body: vec![
                LLit::Pos { table: a, terms: vec![var(0), LTerm::Const(7), var(1)] },
                LLit::Pos { table: b, terms: vec![var(1)] },
            ],
            nvars: 2,
            init_binds: vec![0; 2],
        };
        let p = plan(&rule, None, false);
        let mut interner = Interner::default();
        let none = Rows::default();
        let live = |tables: &[Relation]| {
            tables[a]
                .iter()
                .filter(|(_, r)| r[1] == 7 && (r[2] == 1 || r[2] == 3))
                .map(|(_, r)| vec![r[0]])
                .collect::<Vec<_>>()
        };
        for holes in [false, true] {
            if holes {
                for &id in ids.iter().step_by(3) {
                    tables[a].remove(id);
                }
            }
            assert_eq!(tables[a].dense_rows().is_some(), !holes);
            p.prepare(&mut tables);
            let (want, got) = run_both(&rule, &p, (ViewMode::New, &none), &tables, &HashMap::new(), &mut interner);
            let got: Vec<Vec<Sym>> = got.iter().map(|(r, _)| r.to_vec()).collect();
            assert_eq!(got, want.iter().map(|(r, _)| r.to_vec()).collect::<Vec<_>>(), "holes: {holes}");
            assert_eq!(got, live(&tables), "holes: {holes}");
            assert!(!got.is_empty());
        }
    }

    /// Both executors, every plan of a rule (full and delta-driven), reading the state
    /// after a transaction, before it and both (telescoping): the same rows and weights
    /// in the same order, with joins fanning out past a batch.
    #[test]
    fn batched_runs_emit_what_depth_first_runs_emit() {
        // p(x, y) :- a(x, z), b(z, y), not c(y), a(x, 7), a(w, w)
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
                // A check of a variable the same literal binds: bindings are built before
                // the row is tested.
                LLit::Pos { table: a, terms: vec![var(3), var(3)] },
            ],
            nvars: 4,
            init_binds: vec![0; 4],
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
        // The transaction added some rows of b and c (present now, absent before) and
        // removed others (absent now, present before).
        let mut changed: HashMap<usize, Changed> = HashMap::new();
        let ch_b = changed.entry(b).or_default();
        for y in (0..3000u32).step_by(7) {
            ch_b.added.insert(&[y % 4, y]);
        }
        for y in 3000..3050u32 {
            ch_b.removed.insert(&[y % 4, y]);
        }
        let ch_c = changed.entry(c).or_default();
        ch_c.added.insert(&[10]);
        ch_c.removed.insert(&[11]);
        ch_c.removed.insert(&[3001]);
        let modes = [ViewMode::New, ViewMode::Old, ViewMode::Telescoping(0), ViewMode::Telescoping(1)];
        let mut interner = Interner::default();
        for ((p, d), mode) in plans.iter().flat_map(|pd| modes.iter().map(move |m| (pd, *m))) {
            p.prepare(&mut tables);
            let (want, got) = run_both(&rule, p, (mode, d), &tables, &changed, &mut interner);
            assert!(!want.is_empty());
            assert_eq!(got.iter().collect::<Vec<_>>(), want.iter().collect::<Vec<_>>());
        }
    }
}
