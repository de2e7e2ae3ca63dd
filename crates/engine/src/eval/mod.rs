//! Rule evaluation over interned relations: linked rules, join plans and their execution.
//!
//! A rule is linked once (table ids, interned constants) and planned per use: a full
//! plan, a plan driven by the delta of one body literal (semi-naive and counting
//! maintenance), and a plan with the head bound (re-derivation and explain). Every plan
//! runs against a *view* of each table: its current (new) contents, or its contents
//! before the running transaction (old), reconstructed from the transaction's record of
//! changed rows, so nothing is copied to evaluate "before".

mod batch;
mod closure;
mod counts;
mod direct;
pub mod relation;
pub mod rowset;
pub mod store;
pub(crate) mod strata;
mod weights;

use crate::builtins::Builtin;
use crate::intern::{Interner, Sym, ValueRef};
use crate::value::Value;
use hashbrown::HashMap;
use relation::Relation;
use rowset::RowSet;
use smallvec::SmallVec;
use std::sync::OnceLock;

/// Index of a table in the engine's table list.
pub type TableId = usize;

/// A linked term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LTerm {
    Var(usize),
    Const(Sym),
}

impl LTerm {
    /// The symbol this term stands for under `binds`.
    #[inline]
    fn value(self, binds: &[Sym]) -> Sym {
        match self {
            LTerm::Var(v) => binds[v],
            LTerm::Const(s) => s,
        }
    }
}

/// A linked body literal.
#[derive(Clone, Debug)]
pub enum LLit {
    Pos { table: TableId, terms: Vec<LTerm> },
    Neg { table: TableId, terms: Vec<LTerm> },
    Builtin { builtin: &'static Builtin, terms: Vec<LTerm>, negated: bool },
    Const(bool),
}

impl LLit {
    /// The table read by this literal, if any.
    pub fn table(&self) -> Option<TableId> {
        match self {
            LLit::Pos { table, .. } | LLit::Neg { table, .. } => Some(*table),
            _ => None,
        }
    }
}

/// A linked rule, ready to plan.
#[derive(Clone, Debug)]
pub struct LRule {
    pub head: TableId,
    pub head_terms: Vec<LTerm>,
    pub body: Vec<LLit>,
    pub nvars: usize,
    /// Initial variable bindings: unused except for head variables no body literal
    /// binds (allowed in action policies), which hold a variable marker.
    pub init_binds: Vec<Sym>,
}

/// How one column of a matched row is treated.
#[derive(Clone, Copy, Debug)]
enum ColOp {
    Bind(usize),
    Check(usize),
    CheckConst(Sym),
}

#[derive(Clone, Debug)]
enum Step {
    /// Iterate the rows driving a delta plan.
    Delta {
        lit: usize,
        ops: Vec<(usize, ColOp)>,
    },
    /// Rows of a table whose bound columns `cols` equal `key`: every row when nothing
    /// is bound (a scan), else an index lookup.
    Lookup {
        lit: usize,
        table: TableId,
        cols: Vec<usize>,
        key: Vec<LTerm>,
        ops: Vec<(usize, ColOp)>,
        /// The index on `cols`, resolved by [`Plan::prepare`] (indexes are never dropped).
        index: OnceLock<usize>,
    },
    /// A fully bound positive literal (membership test).
    Member {
        lit: usize,
        table: TableId,
        terms: Vec<LTerm>,
    },
    /// A fully bound negated literal.
    Absent {
        lit: usize,
        table: TableId,
        terms: Vec<LTerm>,
    },
    Builtin {
        builtin: &'static Builtin,
        inputs: Vec<LTerm>,
        outputs: Vec<ColOp>,
        negated: bool,
    },
    Fail,
}

/// An ordered join plan for one rule.
#[derive(Clone, Debug)]
pub struct Plan {
    steps: Vec<Step>,
}

/// Rows of one arity, flattened into one buffer, each with a weight (+1 inserted, -1
/// deleted, or a derivation count): the currency of deltas and plan outputs, one
/// allocation for a whole batch instead of one per row. Weights are stored only once one
/// differs from 1: a recursive stratum's rounds (every weight 1, rows of two or three
/// columns) would otherwise move twice the bytes they need.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    pub arity: usize,
    syms: Vec<Sym>,
    /// Empty while every weight is 1; else one per row.
    weights: Vec<i64>,
    len: usize,
}

impl Rows {
    pub fn new(arity: usize) -> Self {
        Rows { arity, syms: Vec::new(), weights: Vec::new(), len: 0 }
    }

    pub fn push(&mut self, row: &[Sym], weight: i64) {
        self.syms.extend_from_slice(row);
        if weight != 1 && self.weights.is_empty() {
            self.weights.resize(self.len, 1);
        }
        if weight != 1 || !self.weights.is_empty() {
            self.weights.push(weight);
        }
        self.len += 1;
    }

    /// Append rows given as one flat array, every weight 1.
    pub fn extend_syms(&mut self, syms: Vec<Sym>) {
        let n = syms.len() / self.arity.max(1);
        debug_assert_eq!(n * self.arity, syms.len());
        if self.len == 0 && self.weights.is_empty() {
            self.syms = syms;
        } else {
            self.syms.extend_from_slice(&syms);
            if !self.weights.is_empty() {
                self.weights.resize(self.len + n, 1);
            }
        }
        self.len += n;
    }

    /// Every row's symbols, one row after another.
    pub fn flat(&self) -> &[Sym] {
        &self.syms
    }

    /// Empty, keeping the buffers.
    pub fn clear(&mut self) {
        self.syms.clear();
        self.weights.clear();
        self.len = 0;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn row(&self, i: usize) -> &[Sym] {
        &self.syms[i * self.arity..(i + 1) * self.arity]
    }

    fn weight(&self, i: usize) -> i64 {
        if self.weights.is_empty() { 1 } else { self.weights[i] }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[Sym], i64)> + '_ {
        (0..self.len).map(move |i| (self.row(i), self.weight(i)))
    }

    /// The rows as a borrowed batch, to drive a delta plan.
    pub fn view(&self) -> RowsRef<'_> {
        RowsRef { arity: self.arity, syms: &self.syms, weights: &self.weights, len: self.len }
    }
}

/// Rows driving a delta plan, borrowed: a [`Rows`] buffer's ([`Rows::view`]), or a run of
/// a relation's slots read in place ([`RowsRef::ones`]: a recursive round's new rows,
/// which need no copy of their own).
#[derive(Clone, Copy, Debug, Default)]
pub struct RowsRef<'a> {
    arity: usize,
    syms: &'a [Sym],
    /// Empty while every weight is 1, as in [`Rows`].
    weights: &'a [i64],
    len: usize,
}

impl<'a> RowsRef<'a> {
    /// `len` rows of `arity` symbols each, one after another in `syms`, every weight 1.
    pub fn ones(arity: usize, syms: &'a [Sym], len: usize) -> Self {
        debug_assert_eq!(len * arity, syms.len());
        RowsRef { arity, syms, weights: &[], len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(self) -> impl Iterator<Item = (&'a [Sym], i64)> + 'a {
        let RowsRef { arity, syms, weights, len } = self;
        (0..len).map(move |i| (&syms[i * arity..(i + 1) * arity], if weights.is_empty() { 1 } else { weights[i] }))
    }
}

/// Which version of each body literal's table a plan reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewMode {
    /// Every literal reads the current contents.
    New,
    /// Every literal reads the contents before the transaction.
    Old,
    /// Literals before the delta literal read new, after it read old (the telescoping
    /// sum that makes counting exact).
    Telescoping(usize),
}

impl ViewMode {
    fn old_for(self, lit: usize) -> bool {
        match self {
            ViewMode::New => false,
            ViewMode::Old => true,
            ViewMode::Telescoping(d) => lit > d,
        }
    }
}

fn term_bound(t: &LTerm, bound: &[bool]) -> bool {
    match t {
        LTerm::Const(_) => true,
        LTerm::Var(v) => bound[*v],
    }
}

fn match_ops(terms: &[LTerm], bound: &mut [bool], skip: &[usize]) -> Vec<(usize, ColOp)> {
    let mut ops = Vec::new();
    for (c, t) in terms.iter().enumerate() {
        if skip.contains(&c) {
            continue;
        }
        match t {
            LTerm::Const(s) => ops.push((c, ColOp::CheckConst(*s))),
            LTerm::Var(v) if bound[*v] => ops.push((c, ColOp::Check(*v))),
            LTerm::Var(v) => {
                bound[*v] = true;
                ops.push((c, ColOp::Bind(*v)));
            }
        }
    }
    ops
}

/// Plan a rule. `delta`: the body literal driven by a delta; `head_bound`: head
/// variables are bound before the body runs.
pub fn plan(rule: &LRule, delta: Option<usize>, head_bound: bool) -> Plan {
    let mut bound = vec![false; rule.nvars];
    if head_bound {
        for t in &rule.head_terms {
            if let LTerm::Var(v) = t {
                bound[*v] = true;
            }
        }
    }
    let mut steps = Vec::new();
    let mut done = vec![false; rule.body.len()];
    if let Some(d) = delta {
        let terms = match &rule.body[d] {
            LLit::Pos { terms, .. } | LLit::Neg { terms, .. } => terms,
            _ => &Vec::new(),
        };
        steps.push(Step::Delta { lit: d, ops: match_ops(terms, &mut bound, &[]) });
        done[d] = true;
    }
    loop {
        // Filters first: anything fully bound.
        let mut progressed = false;
        for (i, lit) in rule.body.iter().enumerate() {
            if done[i] {
                continue;
            }
            match lit {
                LLit::Const(true) => {
                    done[i] = true;
                    progressed = true;
                }
                LLit::Const(false) => {
                    steps.insert(0, Step::Fail);
                    done[i] = true;
                    progressed = true;
                }
                LLit::Neg { table, terms } if terms.iter().all(|t| term_bound(t, &bound)) => {
                    steps.push(Step::Absent { lit: i, table: *table, terms: terms.clone() });
                    done[i] = true;
                    progressed = true;
                }
                LLit::Pos { table, terms } if terms.iter().all(|t| term_bound(t, &bound)) => {
                    steps.push(Step::Member { lit: i, table: *table, terms: terms.clone() });
                    done[i] = true;
                    progressed = true;
                }
                LLit::Builtin { builtin, terms, negated } => {
                    let upto = if *negated { terms.len() } else { builtin.inputs };
                    if terms[..upto].iter().all(|t| term_bound(t, &bound)) {
                        let inputs = terms[..builtin.inputs].to_vec();
                        let outputs = if *negated {
                            terms[builtin.inputs..]
                                .iter()
                                .map(|t| match *t {
                                    LTerm::Const(s) => ColOp::CheckConst(s),
                                    LTerm::Var(v) => ColOp::Check(v),
                                })
                                .collect()
                        } else {
                            match_ops(&terms[builtin.inputs..], &mut bound, &[]).into_iter().map(|(_, op)| op).collect()
                        };
                        steps.push(Step::Builtin { builtin, inputs, outputs, negated: *negated });
                        done[i] = true;
                        progressed = true;
                    }
                }
                _ => {}
            }
        }
        if progressed {
            continue;
        }
        // Then the positive literal with the most bound columns.
        let best = rule
            .body
            .iter()
            .enumerate()
            .filter(|(i, l)| !done[*i] && matches!(l, LLit::Pos { .. }))
            .max_by_key(|(i, l)| {
                let n = match l {
                    LLit::Pos { terms, .. } => terms.iter().filter(|t| term_bound(t, &bound)).count(),
                    _ => 0,
                };
                (n, usize::MAX - i)
            })
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        let LLit::Pos { table, terms } = &rule.body[i] else {
            break;
        };
        let mut cols: Vec<usize> = (0..terms.len()).filter(|&c| term_bound(&terms[c], &bound)).collect();
        // A full evaluation reads a literal bound by constants alone once: a scan that
        // checks the constants reads the rows in order, where an index on a status-like
        // column would cost a pass to build, hold big groups of rows and hand them out
        // in no order. (Plans run per row, delta-driven or with the head bound, keep
        // the index.)
        if delta.is_none() && !head_bound && cols.iter().all(|&c| matches!(terms[c], LTerm::Const(_))) {
            cols.clear();
        }
        let key: Vec<LTerm> = cols.iter().map(|&c| terms[c]).collect();
        let ops = match_ops(terms, &mut bound, &cols);
        steps.push(Step::Lookup { lit: i, table: *table, cols, key, ops, index: OnceLock::new() });
        done[i] = true;
    }
    // Anything left is unsafe (only possible in action policies): it cannot hold.
    if done.iter().any(|d| !d) {
        steps.insert(0, Step::Fail);
    }
    Plan { steps }
}

impl Plan {
    /// Make sure every index this plan looks up exists.
    pub fn prepare(&self, tables: &mut [Relation]) {
        for s in &self.steps {
            if let Step::Lookup { table, cols, index, .. } = s
                && !cols.is_empty()
            {
                let ix = tables[*table].ensure_index(cols);
                index.get_or_init(|| ix);
            }
        }
    }
}

/// Rows of one table changed by the running transaction: the state before is the
/// current state minus `added` plus `removed`. When `all_new` is set the table was empty
/// before the transaction, every current row is new and the sets are not kept (bulk
/// loads and rebuilds skip the per-row bookkeeping).
#[derive(Clone, Debug, Default)]
pub struct Changed {
    pub added: RowSet,
    pub removed: RowSet,
    pub all_new: bool,
}

impl Changed {
    pub fn is_empty(&self) -> bool {
        !self.all_new && self.added.is_empty() && self.removed.is_empty()
    }

    /// Whether `row` was present before the transaction, given whether it is now
    /// (asked only when needed).
    pub fn was_present(&self, row: &[Sym], now: impl FnOnce() -> bool) -> bool {
        !self.all_new && !self.added.contains(row) && (now() || self.removed.contains(row))
    }

    /// Record that `row` appeared (`true`) or disappeared (`false`), netting out.
    pub fn note(&mut self, row: &[Sym], appeared: bool) {
        if self.all_new {
            return;
        }
        if appeared {
            if !self.removed.remove(row) {
                self.added.insert(row);
            }
        } else if !self.added.remove(row) {
            self.removed.insert(row);
        }
    }
}

/// A builtin failure seen while evaluating a rule.
#[derive(Clone, Debug, Default)]
pub struct FailureLog {
    pub count: u64,
    pub last: String,
}

/// Receives each body instantiation: the head row, its weight and the bindings;
/// returns false to stop the search.
pub type Emit<'e> = dyn FnMut(&[Sym], i64, &[Sym]) -> bool + 'e;

/// Everything a plan reads, plus where it writes side information.
pub struct Exec<'a> {
    pub tables: &'a [Relation],
    pub changed: &'a HashMap<TableId, Changed>,
    pub interner: &'a mut Interner,
    pub failures: &'a mut FailureLog,
    /// Safety valve for explain-style searches; `u64::MAX` for normal evaluation.
    pub budget: u64,
}

impl Exec<'_> {
    fn old_contains(&self, table: TableId, row: &[Sym]) -> bool {
        match self.changed.get(&table) {
            Some(ch) => ch.was_present(row, || self.tables[table].contains(row)),
            None => self.tables[table].contains(row),
        }
    }

    fn contains(&self, table: TableId, row: &[Sym], old: bool) -> bool {
        if old { self.old_contains(table, row) } else { self.tables[table].contains(row) }
    }

    /// Run `plan` for `rule`, calling `emit(head_row, weight)` for every body
    /// instantiation. `delta` supplies the rows (with weights) for a delta plan;
    /// `binds` may carry pre-bound head variables.
    pub fn run(
        &mut self,
        rule: &LRule,
        plan: &Plan,
        mode: ViewMode,
        delta: RowsRef<'_>,
        binds: &mut [Sym],
        emit: &mut Emit<'_>,
    ) {
        let mut head = vec![0; rule.head_terms.len()];
        self.step(rule, plan, 0, mode, delta, binds, 1, &mut head, emit);
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        rule: &LRule,
        plan: &Plan,
        k: usize,
        mode: ViewMode,
        delta: RowsRef<'_>,
        binds: &mut [Sym],
        weight: i64,
        head: &mut Vec<Sym>,
        emit: &mut Emit<'_>,
    ) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        let Some(step) = plan.steps.get(k) else {
            for (i, t) in rule.head_terms.iter().enumerate() {
                head[i] = match t {
                    LTerm::Var(v) => binds[*v],
                    LTerm::Const(s) => *s,
                };
            }
            return emit(head, weight, binds);
        };
        match step {
            Step::Fail => true,
            Step::Delta { lit, ops } => {
                let negated = matches!(rule.body[*lit], LLit::Neg { .. });
                for (row, w) in delta.iter() {
                    if apply_ops(ops, row, binds) {
                        let w = if negated { -w } else { w };
                        if !self.step(rule, plan, k + 1, mode, delta, binds, weight * w, head, emit) {
                            return false;
                        }
                    }
                }
                true
            }
            Step::Lookup { lit, table, cols, key, ops, index } => {
                let keyv = instantiate(key, binds);
                let (tables, changed) = (self.tables, self.changed);
                let rel = &tables[*table];
                // The old view is the current rows minus those added, plus those removed.
                let ch = if mode.old_for(*lit) { changed.get(table) } else { None };
                if ch.is_some_and(|c| c.all_new) {
                    return true;
                }
                let (all, matching) = if cols.is_empty() {
                    (Some(rel.iter().map(|(_, r)| r)), None)
                } else {
                    let cached = index.get().copied().filter(|&ix| rel.index_cols(ix) == Some(cols.as_slice()));
                    let Some(ix) = cached.or_else(|| rel.index_id(cols)) else {
                        return true;
                    };
                    (None, Some(rel.lookup(ix, &keyv).map(|id| rel.row(id))))
                };
                let current = all.into_iter().flatten().chain(matching.into_iter().flatten());
                let added = ch.map(|c| &c.added).filter(|a| !a.is_empty());
                let removed = ch.into_iter().flat_map(|c| c.removed.iter());
                let removed = removed.filter(|row| cols.iter().zip(&keyv).all(|(&c, &kv)| row[c] == kv));
                for row in current.filter(|row| !added.is_some_and(|a| a.contains(row))).chain(removed) {
                    if apply_ops(ops, row, binds)
                        && !self.step(rule, plan, k + 1, mode, delta, binds, weight, head, emit)
                    {
                        return false;
                    }
                }
                true
            }
            Step::Member { lit, table, terms } | Step::Absent { lit, table, terms } => {
                let row = instantiate(terms, binds);
                let present = self.contains(*table, &row, mode.old_for(*lit));
                let want = matches!(step, Step::Member { .. });
                if present == want {
                    return self.step(rule, plan, k + 1, mode, delta, binds, weight, head, emit);
                }
                true
            }
            Step::Builtin { builtin, inputs, outputs, negated } => {
                if self.builtin_holds(builtin, inputs, outputs, *negated, binds) {
                    return self.step(rule, plan, k + 1, mode, delta, binds, weight, head, emit);
                }
                true
            }
        }
    }

    /// Whether a builtin step lets a body instantiation through (outputs bound into
    /// `binds`); a failing call is counted and does not hold.
    fn builtin_holds(
        &mut self,
        builtin: &Builtin,
        inputs: &[LTerm],
        outputs: &[ColOp],
        negated: bool,
        binds: &mut [Sym],
    ) -> bool {
        let syms = instantiate(inputs, binds);
        if let Some(cmp) = fast_compare(builtin, &syms, self.interner) {
            return cmp != negated;
        }
        let args: SmallVec<[Value; 4]> = syms.iter().map(|&s| self.interner.value(s)).collect();
        let holds = match builtin.call(&args) {
            Ok(Some(outs)) => {
                let syms: Vec<Sym> = outs.into_iter().map(|v| self.interner.intern(&v)).collect();
                if negated {
                    outputs.iter().zip(&syms).all(|(op, s)| check_op(*op, *s, binds))
                } else {
                    apply_col_ops(outputs, &syms, binds)
                }
            }
            Ok(None) => false,
            Err(e) => {
                self.failures.count += 1;
                self.failures.last = e.to_string();
                false
            }
        };
        holds != negated
    }
}

/// Column values of `terms` under `binds`, without a heap allocation for short rows.
fn instantiate(terms: &[LTerm], binds: &[Sym]) -> SmallVec<[Sym; 12]> {
    terms.iter().map(|t| t.value(binds)).collect()
}

/// Comparisons of two integers decided on the spot, without building values: the
/// common case in policies (`lt(port, lo)`), and exactly what the builtin would answer.
fn fast_compare(builtin: &Builtin, args: &[Sym], interner: &Interner) -> Option<bool> {
    match args {
        [a, b] if builtin.arity == 2 => IntCompare::of(builtin)?.holds(*a, *b, interner),
        _ => None,
    }
}

/// A comparison builtin (`lt`, `lteq`, `gt`, `gteq`, `equal`), which on two integers is
/// computed here rather than through [`Builtin::call`] and its `Value`s.
#[derive(Clone, Copy, Debug)]
enum IntCompare {
    Lt,
    LtEq,
    Gt,
    GtEq,
    Equal,
}

impl IntCompare {
    fn of(builtin: &Builtin) -> Option<IntCompare> {
        if builtin.arity != 2 || builtin.inputs != 2 {
            return None;
        }
        Some(match builtin.name {
            "lt" => IntCompare::Lt,
            "lteq" => IntCompare::LtEq,
            "gt" => IntCompare::Gt,
            "gteq" => IntCompare::GtEq,
            "equal" => IntCompare::Equal,
            _ => return None,
        })
    }

    /// The comparison of `a` and `b`, when both are integers.
    #[inline]
    fn holds(self, a: Sym, b: Sym, interner: &Interner) -> Option<bool> {
        // Integers held in the symbol itself (most are) need no trip to the interner.
        let (a, b) = match (crate::intern::inline_value(a), crate::intern::inline_value(b)) {
            (Some(a), Some(b)) => (a, b),
            _ => match (interner.value_ref(a), interner.value_ref(b)) {
                (ValueRef::Int(a), ValueRef::Int(b)) => (a, b),
                _ => return None,
            },
        };
        Some(match self {
            IntCompare::Lt => a < b,
            IntCompare::LtEq => a <= b,
            IntCompare::Gt => a > b,
            IntCompare::GtEq => a >= b,
            IntCompare::Equal => a == b,
        })
    }
}

fn check_op(op: ColOp, s: Sym, binds: &[Sym]) -> bool {
    match op {
        ColOp::Bind(_) => true,
        ColOp::Check(v) => binds[v] == s,
        ColOp::CheckConst(c) => c == s,
    }
}

fn apply_col_ops(ops: &[ColOp], vals: &[Sym], binds: &mut [Sym]) -> bool {
    for (op, &s) in ops.iter().zip(vals) {
        match *op {
            ColOp::Bind(v) => binds[v] = s,
            ColOp::Check(v) => {
                if binds[v] != s {
                    return false;
                }
            }
            ColOp::CheckConst(c) => {
                if c != s {
                    return false;
                }
            }
        }
    }
    true
}

fn apply_ops(ops: &[(usize, ColOp)], row: &[Sym], binds: &mut [Sym]) -> bool {
    for &(c, op) in ops {
        let s = row[c];
        match op {
            ColOp::Bind(v) => binds[v] = s,
            ColOp::Check(v) => {
                if binds[v] != s {
                    return false;
                }
            }
            ColOp::CheckConst(k) => {
                if k != s {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{IntCompare, LLit, LRule, LTerm, Rows, Step, plan};

    /// Integer comparisons agree with `i64`'s on integers held in the symbol, on those
    /// the interner holds (past 2^30) and on pairs of one of each; a string is no
    /// integer.
    #[test]
    fn integer_comparisons_agree_across_inline_and_interned_ints() {
        use crate::intern::Interner;
        use crate::value::Value;
        let mut interner = Interner::default();
        let ints = [i64::MIN, -(1 << 30) - 1, -(1 << 30), -7, 0, 5, (1 << 30) - 1, 1 << 30, 1 << 40, i64::MAX];
        let syms: Vec<_> = ints.iter().map(|&i| interner.intern(&Value::Int(i))).collect();
        let ops = [IntCompare::Lt, IntCompare::LtEq, IntCompare::Gt, IntCompare::GtEq, IntCompare::Equal];
        for (&a, &sa) in ints.iter().zip(&syms) {
            for (&b, &sb) in ints.iter().zip(&syms) {
                let want = [a < b, a <= b, a > b, a >= b, a == b];
                for (op, want) in ops.iter().zip(want) {
                    assert_eq!(op.holds(sa, sb, &interner), Some(want), "{op:?} {a} {b}");
                }
            }
        }
        let text = interner.intern(&Value::str("5"));
        assert_eq!(IntCompare::Lt.holds(syms[4], text, &interner), None);
    }

    /// The lookups of a plan: (literal, indexed columns).
    fn lookups(rule: &LRule, delta: Option<usize>, head_bound: bool) -> Vec<(usize, Vec<usize>)> {
        let p = plan(rule, delta, head_bound);
        p.steps
            .iter()
            .filter_map(|s| match s {
                Step::Lookup { lit, cols, .. } => Some((*lit, cols.clone())),
                _ => None,
            })
            .collect()
    }

    /// `p(x) :- a(x, "ACTIVE", z), b(x, y)`: a full evaluation scans `a` checking the
    /// constant (no index on a status column) and looks `b` up by `x`; a delta plan or
    /// one with the head bound looks `a` up on everything bound.
    #[test]
    fn full_plans_scan_literals_bound_by_constants_alone() {
        let (active, var) = (99, LTerm::Var);
        let rule = LRule {
            head: 2,
            head_terms: vec![var(0)],
            body: vec![
                LLit::Pos { table: 0, terms: vec![var(0), LTerm::Const(active), var(2)] },
                LLit::Pos { table: 1, terms: vec![var(0), var(1)] },
            ],
            nvars: 3,
            init_binds: vec![0; 3],
        };
        assert_eq!(lookups(&rule, None, false), [(0, vec![]), (1, vec![0])]);
        assert_eq!(lookups(&rule, Some(1), false), [(0, vec![0, 1])]);
        assert_eq!(lookups(&rule, None, true), [(0, vec![0, 1]), (1, vec![0])]);
    }

    /// Weights read back as pushed, whether or not any differs from 1, rows of no
    /// column included; a cleared buffer starts over.
    #[test]
    fn rows_keep_their_weights() {
        for arity in [0usize, 2] {
            let mut rows = Rows::new(arity);
            let pushed: Vec<(Vec<u32>, i64)> =
                [1, 1, -1, 1, 3].iter().enumerate().map(|(i, &w)| (vec![i as u32; arity], w)).collect();
            for (k, (r, w)) in pushed.iter().enumerate() {
                rows.push(r, *w);
                let got: Vec<(Vec<u32>, i64)> = rows.iter().map(|(r, w)| (r.to_vec(), w)).collect();
                assert_eq!(got, pushed[..=k]);
            }
            rows.clear();
            assert!(rows.is_empty());
            rows.push(&vec![7; arity], 1);
            assert_eq!(rows.iter().map(|(_, w)| w).collect::<Vec<_>>(), [1]);
        }
    }
}
