//! The materialised state and its incremental maintenance.
//!
//! Every table with rules belongs to a stratum (a strongly connected component of the
//! dependency graph, ordered by [`Strata`]). A committed change is propagated to the
//! strata it reaches, and only to them, in dependency order:
//! - a non-recursive stratum keeps, per row, the number of body instantiations that
//!   derive it (counting, Gupta et al. 1993); a change to an input adds the telescoped
//!   delta joins, so a row vanishes exactly when its count reaches zero;
//! - a recursive stratum uses delete-and-rederive (DRed): over-delete everything that
//!   lost a support, re-derive what still has one, then insert semi-naively;
//! - a stratum whose rules changed, or whose input was bulk-loaded, is rebuilt.
//!
//! Every presence change is recorded in the transaction's [`Changed`] sets, which is
//! both the "old" view for later strata and the commit's report.

use super::batch::BatchBuffers;
use super::closure::Closure;
use super::relation::{EXPLICIT, LOOKUP_CHUNK, Relation};
use super::strata::{Graph, INCREMENTAL_RULES, Members, Strata};
use super::weights::Weights;
use super::{Changed, Exec, FailureLog, LLit, LRule, LTerm, Plan, Rows, RowsRef, TableId, ViewMode, plan};
use crate::analysis::TableKey;
use crate::intern::{Interner, Sym};
use crate::stratify;
use hashbrown::{HashMap, HashSet, HashTable};
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// From this many delta rows on, an incremental plan runs batched ([`Exec::run_batched`]):
/// below it, setting up the batches costs more than the overlapped probes save (a 1-row
/// change stays at its few microseconds).
const BATCHED_DELTA: usize = 64;

/// Rule ids are global and never reused.
pub type RuleId = u64;

/// Metadata of one table.
#[derive(Clone, Debug)]
pub struct TableInfo {
    pub key: TableKey,
    /// Arity in use by rules and facts, with the number of statements using it.
    pub arity: Option<(usize, u32)>,
    /// Rules whose head is this table (most tables have one or none).
    pub rules: SmallVec<[RuleId; 1]>,
    /// The rules reading this table, with their heads.
    pub readers: Readers,
}

/// The rules reading a table, with their heads. Most tables are read by a rule or two:
/// those stay in a short inline list (a hash map would cost ~100 bytes per table); a
/// table read by many rules gets a map, so removing one of 50,000 readers is O(1).
#[derive(Clone, Debug)]
pub enum Readers {
    Few(SmallVec<[(RuleId, TableId); 1]>),
    Many(HashMap<RuleId, TableId>),
}

impl Default for Readers {
    fn default() -> Self {
        Readers::Few(SmallVec::new())
    }
}

impl Readers {
    const FEW: usize = 16;

    pub fn insert(&mut self, rule: RuleId, head: TableId) {
        match self {
            Readers::Few(v) if v.iter().any(|(r, _)| *r == rule) => {}
            Readers::Few(v) if v.len() < Self::FEW => v.push((rule, head)),
            Readers::Few(v) => {
                let mut map: HashMap<RuleId, TableId> = v.drain(..).collect();
                map.insert(rule, head);
                *self = Readers::Many(map);
            }
            Readers::Many(m) => {
                m.insert(rule, head);
            }
        }
    }

    pub fn remove(&mut self, rule: RuleId) {
        match self {
            Readers::Few(v) => v.retain(|(r, _)| *r != rule),
            Readers::Many(m) => {
                m.remove(&rule);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Readers::Few(v) => v.is_empty(),
            Readers::Many(m) => m.is_empty(),
        }
    }

    /// `(rule, head)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (RuleId, TableId)> + '_ {
        let (few, many) = match self {
            Readers::Few(v) => (Some(v.iter().copied()), None),
            Readers::Many(m) => (None, Some(m.iter().map(|(r, h)| (*r, *h)))),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    /// The heads of the reading rules (repeated when several rules share one).
    pub fn heads(&self) -> impl Iterator<Item = TableId> + '_ {
        self.iter().map(|(_, h)| h)
    }
}

/// A linked rule with its plans, each made the first time it is needed: most rules of a
/// large program are never evaluated against a delta, or never at all while a table they
/// read is empty, and plans were two thirds of a loaded rule's memory.
#[derive(Clone, Debug)]
pub struct RuleEntry {
    /// The statement's canonical text (shared with the policy's statement).
    pub text: Arc<str>,
    pub rule: LRule,
    full: OnceLock<Plan>,
    deltas: OnceLock<Vec<Option<Plan>>>,
    head_bound: OnceLock<Plan>,
}

impl RuleEntry {
    pub fn new(text: Arc<str>, rule: LRule) -> Self {
        RuleEntry { text, rule, full: OnceLock::new(), deltas: OnceLock::new(), head_bound: OnceLock::new() }
    }

    /// The plan that evaluates the whole body.
    pub fn full(&self) -> &Plan {
        self.full.get_or_init(|| plan(&self.rule, None, false))
    }

    /// The plan driven by a delta of body literal `i` (none for a builtin).
    pub fn delta(&self, i: usize) -> Option<&Plan> {
        let deltas = self.deltas.get_or_init(|| {
            let r = &self.rule;
            r.body.iter().enumerate().map(|(i, l)| l.table().map(|_| plan(r, Some(i), false))).collect()
        });
        deltas.get(i)?.as_ref()
    }

    /// The plan that checks one head row (its variables bound first).
    pub fn head_bound(&self) -> &Plan {
        self.head_bound.get_or_init(|| plan(&self.rule, None, true))
    }

    /// Whether a positive body literal reads an empty table among `tables`: the rule then
    /// derives nothing, and needs no plan to say so.
    fn reads_empty(&self, tables: &[Relation]) -> bool {
        self.rule.body.iter().any(|l| matches!(l, LLit::Pos { table, .. } if tables[*table].is_empty()))
    }
}

/// The tables of one stratum, evaluated together.
#[derive(Clone, Debug)]
struct Stratum {
    tables: Members,
    recursive: bool,
}

/// All tables, rules and the interner.
#[derive(Clone, Debug, Default)]
pub struct Store {
    pub tables: Vec<Relation>,
    pub info: Vec<TableInfo>,
    /// Table ids by key, the keys kept once (in `info`): a hash table of ids.
    ids: HashTable<TableId>,
    pub rules: BTreeMap<RuleId, Arc<RuleEntry>>,
    pub interner: Interner,
    pub failures: HashMap<RuleId, FailureLog>,
    strata: Strata,
    queue: StrataQueue,
    /// The counting algorithm's accumulator, kept between transactions for its arrays.
    weights: Weights,
    /// The batched executor's step buffers, kept between runs.
    batch_buffers: BatchBuffers,
}

/// The running transaction's bookkeeping.
#[derive(Debug, Default)]
pub struct TxnState {
    /// Record changes of tables no rule reads (needed only to report them).
    pub track_unread: bool,
    pub changed: HashMap<TableId, Changed>,
    /// Tables whose stratum must be rebuilt.
    pub dirty: HashSet<TableId>,
    /// Tables with rules whose explicit facts changed (a recursive stratum is rebuilt).
    pub explicit: HashSet<TableId>,
    /// Rules added so far.
    pub rules_added: usize,
    /// Rules added to non-recursive strata that are not rebuilt, by head: each is
    /// evaluated once, in full, over the new state and its derivations added.
    pub new_rules: HashMap<TableId, Vec<RuleId>>,
    /// Rules removed from such strata, by head: evaluated once over the old state and
    /// their derivations subtracted. Changing one rule of a 100,000-rule head costs one
    /// rule's evaluation, not the head's.
    pub gone_rules: HashMap<TableId, Vec<(RuleId, Arc<RuleEntry>)>>,
}

impl TxnState {
    fn note(&mut self, table: TableId, row: &[Sym], appeared: bool) {
        self.changed.entry(table).or_default().note(row, appeared);
    }
}

/// A row's count with `w` more derivations (saturating below [`EXPLICIT`], which keeps its
/// place).
fn plus_derivations(count: u32, w: u64) -> u32 {
    let derived = ((count & !EXPLICIT) as u64 + w).min((EXPLICIT - 1) as u64) as u32;
    (count & EXPLICIT) | derived
}

impl Store {
    /// Give back most of the spare capacity of the per-table vectors after a bulk change
    /// (they grow by doubling: up to half of a large program's table memory was slack),
    /// keeping an eighth as headroom so that the next new table does not copy them all.
    pub fn shrink(&mut self) {
        let keep = self.tables.len() + self.tables.len() / 8 + 16;
        self.tables.shrink_to(keep);
        self.info.shrink_to(keep);
        let info = &self.info;
        self.ids.shrink_to_fit(|&i| key_hash(&info[i].key));
        self.strata.shrink();
    }

    /// The id of an existing table.
    pub fn id_of(&self, key: &TableKey) -> Option<TableId> {
        let info = &self.info;
        self.ids.find(key_hash(key), |&id| info[id].key == *key).copied()
    }

    /// The id of a table, creating it (empty) when new.
    pub fn table_id(&mut self, key: &TableKey, arity: usize) -> TableId {
        if let Some(id) = self.id_of(key) {
            return id;
        }
        let id = self.tables.len();
        self.tables.push(Relation::new(arity));
        self.info.push(TableInfo {
            key: key.clone(),
            arity: None,
            rules: SmallVec::new(),
            readers: Readers::default(),
        });
        let info = &self.info;
        self.ids.insert_unique(key_hash(key), id, |&i| key_hash(&info[i].key));
        id
    }

    /// A table's relation with the given arity. A table's arity can change only while it
    /// is empty and unused (a policy deleted and re-created differently).
    pub fn ensure_arity(&mut self, id: TableId, arity: usize) {
        if self.tables[id].arity() != arity && self.tables[id].is_empty() {
            self.tables[id] = Relation::new(arity);
        }
    }

    pub fn intern_row(&mut self, row: &[crate::value::Value]) -> Vec<Sym> {
        row.iter().map(|v| self.interner.intern(v)).collect()
    }

    /// Assert an explicit fact of `table`.
    pub fn set_explicit(&mut self, txn: &mut TxnState, table: TableId, row: &[Sym]) {
        self.change_explicit(txn, table, row, 1, true);
    }

    /// Retract an explicit fact of `table`.
    pub fn clear_explicit(&mut self, txn: &mut TxnState, table: TableId, row: &[Sym]) {
        self.change_explicit(txn, table, row, 1, false);
    }

    /// Assert (`insert`) or retract `n` explicit facts of `table`, given flat in `rows`
    /// (the table's arity each). They are looked up a chunk at a time, in stages, so that
    /// the cache misses of different rows overlap, as [`Store::insert_all`] does.
    pub fn change_explicit(&mut self, txn: &mut TxnState, table: TableId, rows: &[Sym], n: usize, insert: bool) {
        let arity = self.tables[table].arity();
        // Staging checks every row's width against the table's.
        debug_assert_eq!(rows.len(), n * arity);
        if rows.len() != n * arity {
            return;
        }
        let noted = txn.track_unread || !self.info[table].readers.is_empty();
        let (mut hashes, mut found) =
            (Vec::with_capacity(LOOKUP_CHUNK.min(n)), Vec::with_capacity(LOOKUP_CHUNK.min(n)));
        for start in (0..n).step_by(LOOKUP_CHUNK) {
            let m = LOOKUP_CHUNK.min(n - start);
            let chunk = &rows[start * arity..(start + m) * arity];
            self.tables[table].find_batch(chunk, m, &mut hashes, &mut found);
            for k in 0..m {
                let row = &chunk[k * arity..(k + 1) * arity];
                let rel = &mut self.tables[table];
                if insert {
                    if rel.is_empty() && !txn.changed.contains_key(&table) {
                        txn.changed.insert(table, Changed { all_new: true, ..Default::default() });
                    }
                    let (id, inserted) = match found[k] {
                        Some(id) => (id, false),
                        // Looked up again: an earlier row of this chunk may be the same row.
                        None => rel.find_or_insert_hashed(row, EXPLICIT, hashes[k]),
                    };
                    if inserted {
                        if noted {
                            txn.note(table, row, true);
                        }
                    } else {
                        let c = rel.count(id);
                        rel.set_count(id, c | EXPLICIT);
                    }
                } else if let Some(id) = found[k]
                    // Emptied by an earlier row of this chunk: its slots are gone.
                    && !rel.is_empty()
                {
                    let c = rel.count(id);
                    if c & EXPLICIT != 0 {
                        rel.set_count(id, c & !EXPLICIT);
                        if c & !EXPLICIT == 0 && noted {
                            txn.note(table, row, false);
                        }
                    }
                }
            }
        }
        if !self.info[table].rules.is_empty() {
            txn.explicit.insert(table);
        }
    }

    fn in_recursive_stratum(&self, table: TableId) -> bool {
        !self.strata.is_stale() && self.strata.recursive(table)
    }

    /// Whether the evaluation order is up to date (it is after every propagation).
    pub fn strata_current(&self) -> bool {
        !self.strata.is_stale()
    }

    /// The level of a table in the evaluation order (see [`Strata`]).
    pub fn level(&self, t: TableId) -> u32 {
        self.strata.level(t)
    }

    /// Heads of the rules reading `t`.
    pub fn dependents(&self, t: TableId) -> impl Iterator<Item = TableId> + '_ {
        self.info[t].readers.heads()
    }

    /// Add a rule (already linked); its head's stratum is rebuilt at the end.
    pub fn add_rule(&mut self, txn: &mut TxnState, id: RuleId, entry: RuleEntry) {
        let head = entry.rule.head;
        self.info[head].rules.push(id);
        let body: Vec<TableId> = entry.rule.body.iter().filter_map(LLit::table).collect();
        for &t in &body {
            self.info[t].readers.insert(id, head);
        }
        self.rules.insert(id, Arc::new(entry));
        txn.rules_added += 1;
        if txn.rules_added > INCREMENTAL_RULES {
            self.strata.invalidate();
        } else {
            let graph = StoreGraph { info: &self.info, rules: &self.rules };
            self.strata.rule_added(&graph, head, &body);
        }
        if self.strata.is_stale() || self.strata.recursive(head) {
            txn.dirty.insert(head);
        } else {
            txn.new_rules.entry(head).or_default().push(id);
        }
    }

    /// Remove a rule; its head's stratum is rebuilt at the end.
    pub fn remove_rule(&mut self, txn: &mut TxnState, id: RuleId) -> Option<Arc<RuleEntry>> {
        let entry = self.rules.remove(&id)?;
        let head = entry.rule.head;
        self.info[head].rules.retain(|r| *r != id);
        let body: Vec<TableId> = entry.rule.body.iter().filter_map(LLit::table).collect();
        for &t in &body {
            self.info[t].readers.remove(id);
        }
        self.failures.remove(&id);
        let recursive = self.strata.recursive(head);
        self.strata.rule_removed(head, &body);
        let added_here = txn.new_rules.get_mut(&head).and_then(|v| v.iter().position(|r| *r == id).map(|i| (v, i)));
        if let Some((v, i)) = added_here {
            // Added and removed in one transaction: it never derived anything.
            v.swap_remove(i);
        } else if self.strata.is_stale() || recursive || self.info[head].rules.is_empty() {
            txn.dirty.insert(head);
        } else {
            txn.gone_rules.entry(head).or_default().push((id, entry.clone()));
        }
        Some(entry)
    }

    /// The stratum of a table with rules.
    fn stratum(&self, t: TableId) -> (TableId, Stratum) {
        let (leader, tables, recursive) = self.strata.stratum(t);
        (leader, Stratum { tables, recursive })
    }

    /// Bring every derived table up to date with the transaction's changes: only the
    /// strata that a changed table or a changed rule reaches are visited, in level order.
    pub fn propagate(&mut self, txn: &mut TxnState) {
        if self.strata.is_stale() {
            let graph = StoreGraph { info: &self.info, rules: &self.rules };
            // Strata that changed shape are rebuilt (counts mean different things in
            // recursive and non-recursive strata).
            let reshaped = self.strata.rebuild(&graph);
            txn.dirty.extend(reshaped);
        }
        // Explicit facts inside a recursive stratum seed its fixpoint: rebuild it.
        let seeded: Vec<TableId> = txn.explicit.iter().copied().filter(|&t| self.in_recursive_stratum(t)).collect();
        txn.dirty.extend(seeded);
        // Tables that lost their last rule keep only their explicit facts.
        let orphans: Vec<TableId> = txn.dirty.iter().copied().filter(|t| self.info[*t].rules.is_empty()).collect();
        for t in orphans {
            self.clear_derived(txn, t);
        }
        let mut queue = std::mem::take(&mut self.queue);
        let seeds = txn.dirty.iter().chain(txn.new_rules.keys()).chain(txn.gone_rules.keys());
        for &t in seeds {
            if !self.info[t].rules.is_empty() {
                queue.push(&self.strata, t);
            }
        }
        let changed: Vec<TableId> = txn.changed.keys().copied().filter(|&t| self.changed(txn, t)).collect();
        for t in changed {
            self.push_readers(&mut queue, t);
        }
        while let Some(leader) = queue.pop() {
            let (_, stratum) = self.stratum(leader);
            let new_rules = txn.new_rules.remove(&leader).unwrap_or_default();
            let gone_rules = txn.gone_rules.remove(&leader).unwrap_or_default();
            let inside: HashSet<TableId> =
                if stratum.recursive { stratum.tables.iter().copied().collect() } else { HashSet::new() };
            let is_inside = |t: &TableId| if stratum.recursive { inside.contains(t) } else { *t == leader };
            let dirty = stratum.tables.iter().any(|t| txn.dirty.contains(t));
            let mut inputs = if !stratum.recursive && self.info[leader].rules.len() <= FEW_RULES {
                self.scan_inputs(txn, leader)
            } else {
                queue.take_inputs(leader)
            };
            inputs.retain(|t| !is_inside(t));
            let bulk = inputs.iter().any(|t| txn.changed.get(t).is_some_and(|c| c.all_new));
            let all_rules = |s: &Self| -> Vec<RuleId> {
                stratum.tables.iter().flat_map(|t| s.info[*t].rules.iter().copied()).collect()
            };
            if dirty || bulk {
                let rules = all_rules(self);
                self.rebuild(txn, &stratum, &rules);
            } else {
                if !inputs.is_empty() {
                    if stratum.recursive {
                        let rules = all_rules(self);
                        self.dred(txn, &stratum, &rules, &inside);
                    } else {
                        // Only the rules reading a changed input; rules new in this
                        // transaction are counted in full by `rule_deltas`.
                        let mut rules: Vec<RuleId> = inputs
                            .iter()
                            .flat_map(|t| self.info[*t].readers.iter())
                            .filter(|(r, h)| is_inside(h) && !new_rules.contains(r))
                            .map(|(r, _)| r)
                            .collect();
                        rules.sort_unstable();
                        rules.dedup();
                        self.counting(txn, &stratum, &rules);
                    }
                }
                self.rule_deltas(txn, &new_rules, &gone_rules);
            }
            for &t in stratum.tables.iter() {
                if self.changed(txn, t) {
                    self.push_readers(&mut queue, t);
                }
            }
        }
        queue.clear();
        self.queue = queue;
    }

    /// Whether the transaction changed the rows of `t` (a table that was empty and
    /// stays empty has not changed, though it may be marked as all new).
    fn changed(&self, txn: &TxnState, t: TableId) -> bool {
        match txn.changed.get(&t) {
            Some(c) if c.all_new => !self.tables[t].is_empty(),
            Some(c) => !c.is_empty(),
            None => false,
        }
    }

    /// Add what rules new to a non-recursive stratum derive (over the new state) and
    /// subtract what removed rules derived (over the old state).
    fn rule_deltas(&mut self, txn: &mut TxnState, new: &[RuleId], gone: &[(RuleId, Arc<RuleEntry>)]) {
        let none = Rows::default();
        for &rid in new {
            let Some(entry) = self.rules.get(&rid).cloned() else { continue };
            if entry.reads_empty(&self.tables) {
                continue;
            }
            let mut out = Rows::default();
            self.run_entry(txn, rid, &entry, None, ViewMode::New, Delta::Rows(&none), &mut out);
            let head = entry.rule.head;
            if self.tables[head].is_empty() && !txn.changed.contains_key(&head) {
                // Everything is new: no per-row change records (as in a rebuild).
                txn.changed.insert(head, Changed { all_new: true, ..Default::default() });
            }
            self.add_all_derived(txn, head, &out);
        }
        for (rid, entry) in gone {
            let mut out = Rows::default();
            self.run_entry(txn, *rid, entry, None, ViewMode::Old, Delta::Rows(&none), &mut out);
            for (row, w) in out.iter() {
                self.add_derived(txn, entry.rule.head, row, -w);
            }
        }
    }

    /// Queue the strata of the rules reading `t`, which changed.
    fn push_readers(&self, queue: &mut StrataQueue, t: TableId) {
        for h in self.info[t].readers.heads() {
            // A stratum of a few rules finds its changed inputs itself when its turn
            // comes (cheaper than recording them); a large one gets them recorded, so
            // that one changed input of a 100,000-rule head costs one rule, not all.
            if self.info[h].rules.len() <= FEW_RULES && !self.strata.recursive(h) {
                queue.push(&self.strata, h);
            } else {
                queue.push_input(&self.strata, h, t);
            }
        }
    }

    /// The changed inputs of a stratum of a few rules, each once.
    fn scan_inputs(&self, txn: &TxnState, head: TableId) -> SmallVec<[TableId; 2]> {
        let mut inputs = SmallVec::new();
        for r in &self.info[head].rules {
            for t in self.rules[r].rule.body.iter().filter_map(LLit::table) {
                if t != head && !inputs.contains(&t) && self.changed(txn, t) {
                    inputs.push(t);
                }
            }
        }
        inputs
    }

    fn exec<'a>(&'a mut self, changed: &'a HashMap<TableId, Changed>, failures: &'a mut FailureLog) -> Exec<'a> {
        Exec { tables: &self.tables, changed, interner: &mut self.interner, failures, budget: u64::MAX }
    }

    /// Evaluate a plan of rule `rid` (the full plan, or the one driven by body literal
    /// `which`) and collect the head rows with their weights.
    fn run_collect(&mut self, txn: &TxnState, rid: RuleId, which: Option<usize>, mode: ViewMode, delta: &Rows) -> Rows {
        let mut out = Rows::default();
        if let Some(entry) = self.rules.get(&rid).cloned() {
            self.run_entry(txn, rid, &entry, which, mode, Delta::Rows(delta), &mut out);
        }
        out
    }

    /// [`Store::run_collect`] for a rule given by its entry (a removed rule too), into
    /// `out`, emptied first (a buffer a recursive stratum's rounds keep).
    #[allow(clippy::too_many_arguments)]
    fn run_entry(
        &mut self,
        txn: &TxnState,
        rid: RuleId,
        entry: &RuleEntry,
        which: Option<usize>,
        mode: ViewMode,
        delta: Delta<'_>,
        out: &mut Rows,
    ) {
        out.clear();
        out.arity = entry.rule.head_terms.len();
        let plan = match which {
            None => entry.full(),
            Some(i) => match entry.delta(i) {
                Some(p) => p,
                None => return,
            },
        };
        plan.prepare(&mut self.tables);
        let mut fails = FailureLog::default();
        let mut buffers = std::mem::take(&mut self.batch_buffers);
        {
            let mut ex = self.exec(&txn.changed, &mut fails);
            // A run of slots is read from the tables the executor reads.
            let delta = delta.view(ex.tables);
            if mode == ViewMode::New || delta.len() >= BATCHED_DELTA {
                // Full evaluations, semi-naive rounds and large deltas: batched probes.
                ex.run_batched(&entry.rule, plan, mode, delta, &mut buffers, out);
            } else {
                let mut binds = entry.rule.init_binds.clone();
                ex.run(&entry.rule, plan, mode, delta, &mut binds, &mut |h, w, _| {
                    out.push(h, w);
                    true
                });
            }
        }
        self.batch_buffers = buffers;
        if fails.count > 0 && self.rules.contains_key(&rid) {
            let f = self.failures.entry(rid).or_default();
            f.count += fails.count;
            f.last = fails.last;
        }
    }

    /// Delta rows of table `t` from the transaction: added with +1, removed with -1.
    fn delta_rows(&self, txn: &TxnState, t: TableId, added: bool, removed: bool) -> Rows {
        let mut v = Rows::new(self.tables[t].arity());
        let Some(ch) = txn.changed.get(&t) else { return v };
        if added {
            ch.added.iter().for_each(|r| v.push(r, 1));
        }
        if removed {
            ch.removed.iter().for_each(|r| v.push(r, -1));
        }
        v
    }

    /// Recompute a stratum from its inputs.
    fn rebuild(&mut self, txn: &mut TxnState, stratum: &Stratum, rules: &[RuleId]) {
        // Drop every derived count, keeping explicit facts.
        for &t in stratum.tables.iter() {
            if self.tables[t].is_empty() && !txn.changed.contains_key(&t) {
                txn.changed.insert(t, Changed { all_new: true, ..Default::default() });
            }
            self.clear_derived(txn, t);
        }
        let none = Rows::default();
        if !stratum.recursive {
            for &rid in rules {
                if self.rules.get(&rid).is_none_or(|e| e.reads_empty(&self.tables)) {
                    continue;
                }
                let out = self.run_collect(txn, rid, None, ViewMode::New, &none);
                let head = self.rules[&rid].rule.head;
                self.add_all_derived(txn, head, &out);
            }
            return;
        }
        let inside: HashSet<TableId> = stratum.tables.iter().copied().collect();
        if let Some(closure) = self.closure_of(stratum, rules, &inside) {
            self.rebuild_closure(txn, stratum.tables[0], &closure, rules, &inside);
            return;
        }
        let mut frontier = Frontier::default();
        for &rid in rules {
            // A rule that reads a table of this stratum finds its derivations in the
            // rounds below, driven by that table's rows (every row of the stratum seeds
            // them): a full run here would find nothing more, and would build indexes
            // on the stratum's tables that nothing else reads, kept up to date through
            // every round.
            if self.reads_inside(rid, &inside) {
                continue;
            }
            let out = self.run_collect(txn, rid, None, ViewMode::New, &none);
            let head = self.rules[&rid].rule.head;
            self.insert_all(txn, head, &out, Some(&mut frontier));
        }
        // Explicit facts of the stratum seed the fixpoint too.
        for &t in stratum.tables.iter() {
            frontier.extend(t, &self.explicit_rows(t));
        }
        self.seminaive(txn, rules, &inside, frontier);
    }

    /// The closure a recursive stratum computes, when it is one table whose one
    /// recursive rule has the shape `closure.rs` evaluates.
    fn closure_of(&self, stratum: &Stratum, rules: &[RuleId], inside: &HashSet<TableId>) -> Option<Closure> {
        let [p] = stratum.tables[..] else { return None };
        let mut recursive = rules.iter().filter(|&&rid| self.reads_inside(rid, inside));
        let (Some(rid), None) = (recursive.next(), recursive.next()) else { return None };
        Closure::of(&self.rules[rid].rule, p)
    }

    /// [`Store::rebuild`] of a linear closure over table `p`: the exit rules' rows and
    /// the explicit facts seed one search per carried value (`closure.rs`).
    fn rebuild_closure(
        &mut self,
        txn: &mut TxnState,
        p: TableId,
        closure: &Closure,
        rules: &[RuleId],
        inside: &HashSet<TableId>,
    ) {
        let arity = self.tables[p].arity();
        let none = Rows::default();
        let mut derived = Rows::new(arity);
        for &rid in rules {
            if !self.reads_inside(rid, inside) {
                let out = self.run_collect(txn, rid, None, ViewMode::New, &none);
                out.iter().for_each(|(r, _)| derived.push(r, 1));
            }
        }
        let explicit = self.explicit_rows(p);
        let mut out = Rows::new(arity);
        closure.run(&self.tables[closure.step()], &derived, &explicit, &mut out);
        if explicit.is_empty() {
            // The table is empty (its derived rows were cleared above): every row is new.
            self.tables[p].extend_new(out.flat(), 1);
            if !txn.changed.get(&p).is_some_and(|c| c.all_new) {
                out.iter().for_each(|(r, _)| txn.note(p, r, true));
            }
        } else {
            self.insert_all(txn, p, &out, None);
        }
    }

    /// The explicit facts of table `t`.
    fn explicit_rows(&self, t: TableId) -> Rows {
        let rel = &self.tables[t];
        let mut explicit = Rows::new(rel.arity());
        rel.iter().filter(|(id, _)| rel.count(*id) & EXPLICIT != 0).for_each(|(_, r)| explicit.push(r, 1));
        explicit
    }

    /// Mark every row of `rows` present in recursive table `t`; newly present rows go
    /// to `frontier`, if given: as a run of slots when they all land at the end of the
    /// table (no removed row's slot to reuse) right after the frontier's run, or start
    /// it when it has none; else copied.
    fn insert_all(&mut self, txn: &mut TxnState, t: TableId, rows: &Rows, frontier: Option<&mut Frontier>) {
        if rows.is_empty() {
            return;
        }
        let mut next = frontier.map(|f| f.0.entry(t).or_insert_with(|| Fresh::new(rows.arity)));
        let all_new = txn.changed.get(&t).is_some_and(|c| c.all_new);
        let rel = &mut self.tables[t];
        let start = rel.slots();
        let in_place = next.as_ref().is_some_and(|n| n.slots.is_empty() || n.slots.end == start) && rel.appends();
        rel.reserve(rows.len());
        rel.find_or_insert_each(&rows.syms, rows.len(), |rel, row, id, inserted| {
            if inserted {
                if let Some(next) = next.as_deref_mut().filter(|_| !in_place) {
                    next.rows.push(row, 1);
                }
                if !all_new {
                    txn.note(t, row, true);
                }
            } else {
                let c = rel.count(id);
                if c & !EXPLICIT == 0 {
                    rel.set_count(id, c | 1);
                }
            }
        });
        if let Some(next) = next.filter(|_| in_place) {
            let end = self.tables[t].slots();
            next.slots = if next.slots.is_empty() { start..end } else { next.slots.start..end };
        }
    }

    /// Drop the derived part of every row of `t`, keeping explicit facts.
    fn clear_derived(&mut self, txn: &mut TxnState, t: TableId) {
        // Slots, not copies of the rows: a slot stays put while others are removed (the
        // table resets its slots only when the last row goes, after the last of these).
        let rel = &mut self.tables[t];
        if rel.iter().all(|(id, _)| rel.count(id) & EXPLICIT == 0) {
            // Every row goes: noted in table order, then dropped at once rather than
            // looked up and removed one by one (a deleted closure is millions of rows).
            rel.iter().for_each(|(_, row)| txn.note(t, row, false));
            rel.clear();
            return;
        }
        let derived: Vec<u32> =
            rel.iter().filter(|&(id, _)| rel.count(id) & !EXPLICIT != 0).map(|(id, _)| id).collect();
        let mut row: SmallVec<[Sym; 12]> = SmallVec::new();
        for id in derived {
            let c = rel.count(id);
            row.clear();
            row.extend_from_slice(rel.row(id));
            rel.set_count(id, c & EXPLICIT);
            if c & EXPLICIT == 0 {
                txn.note(t, &row, false);
            }
        }
    }

    /// Mark `row` present in a recursive table; true if it was absent.
    fn insert_flag(&mut self, txn: &mut TxnState, t: TableId, row: &[Sym]) -> bool {
        let (id, inserted) = self.tables[t].find_or_insert(row, 1);
        if inserted {
            txn.note(t, row, true);
        } else {
            let c = self.tables[t].count(id);
            if c & !EXPLICIT == 0 {
                self.tables[t].set_count(id, c | 1);
            }
        }
        inserted
    }

    /// [`Store::add_derived`] for every row of a full run of a rule (`out`). When every
    /// weight is 1 (as in any full run), the rows are looked up a chunk at a time
    /// ([`Relation::find_or_insert_each`]), then counted or inserted.
    fn add_all_derived(&mut self, txn: &mut TxnState, t: TableId, out: &Rows) {
        if !out.weights.is_empty() {
            for (row, w) in out.iter() {
                self.add_derived(txn, t, row, w);
            }
            return;
        }
        let all_new = txn.changed.get(&t).is_some_and(|c| c.all_new);
        let rel = &mut self.tables[t];
        rel.reserve(out.len());
        rel.find_or_insert_each(&out.syms, out.len(), |rel, row, id, inserted| {
            if inserted {
                if !all_new {
                    txn.note(t, row, true);
                }
            } else {
                rel.set_count(id, plus_derivations(rel.count(id), 1));
            }
        });
    }

    /// Add `w` derivations of `row` to a non-recursive table.
    fn add_derived(&mut self, txn: &mut TxnState, t: TableId, row: &[Sym], w: i64) {
        if w == 0 {
            return;
        }
        if w > 0 {
            let init = (w as u64).min((EXPLICIT - 1) as u64) as u32;
            let (id, inserted) = self.tables[t].find_or_insert(row, init);
            if inserted {
                txn.note(t, row, true);
            } else {
                let c = self.tables[t].count(id);
                self.tables[t].set_count(id, plus_derivations(c, w as u64));
            }
            return;
        }
        let rel = &mut self.tables[t];
        if let Some(id) = rel.find(row) {
            let c = rel.count(id);
            let derived = ((c & !EXPLICIT) as i64 + w).clamp(0, (EXPLICIT - 1) as i64) as u32;
            let new = (c & EXPLICIT) | derived;
            rel.set_count(id, new);
            if new == 0 {
                txn.note(t, row, false);
            }
        }
    }

    /// Whether a rule reads a table of the recursive stratum `inside`.
    fn reads_inside(&self, rid: RuleId, inside: &HashSet<TableId>) -> bool {
        self.inside_literals(rid, inside).next().is_some()
    }

    /// The recursive-stratum literals of a rule: (body position, table).
    fn inside_literals<'a>(
        &'a self,
        rid: RuleId,
        inside: &'a HashSet<TableId>,
    ) -> impl Iterator<Item = (usize, TableId)> + 'a {
        self.rules[&rid].rule.body.iter().enumerate().filter_map(|(i, l)| match l {
            LLit::Pos { table, .. } if inside.contains(table) => Some((i, *table)),
            _ => None,
        })
    }

    /// The literals of a rule reading tables below the stratum, with whether negated.
    fn outside_literals(&self, rid: RuleId, inside: &HashSet<TableId>) -> Vec<(usize, TableId, bool)> {
        self.rules[&rid]
            .rule
            .body
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match l {
                LLit::Pos { table, .. } if !inside.contains(table) => Some((i, *table, false)),
                LLit::Neg { table, .. } => Some((i, *table, true)),
                _ => None,
            })
            .collect()
    }

    /// Semi-naive insertion to a fixpoint inside a recursive stratum.
    fn seminaive(&mut self, txn: &mut TxnState, rules: &[RuleId], inside: &HashSet<TableId>, mut frontier: Frontier) {
        // The rounds' buffers (this round's frontier, the next, each rule's output) are
        // reused: growing fresh ones every round was a fifth of a closure's time (copies
        // and page faults).
        let mut next = Frontier::default();
        let mut out = Rows::default();
        // Each rule's entry and the literals that read the stratum, found once: no rule
        // changes during the rounds.
        let reading: Vec<(RuleId, Arc<RuleEntry>, Vec<_>)> = rules
            .iter()
            .filter_map(|&rid| Some((rid, self.rules.get(&rid).cloned()?, self.inside_literals(rid, inside).collect())))
            .collect();
        while !frontier.is_empty() {
            for (rid, entry, literals) in &reading {
                let head = entry.rule.head;
                for &(i, t) in literals {
                    let Some(fresh) = frontier.get(t) else { continue };
                    // A delta plan is linear in its delta, so the parts may drive it one
                    // after the other. The second pass reads the table as the first left
                    // it, a few rows more: what it derives from them holds all the same
                    // (rows are present or not here, not counted), and they are in
                    // `next` anyway.
                    for delta in fresh.parts(t) {
                        self.run_entry(txn, *rid, entry, Some(i), ViewMode::New, delta, &mut out);
                        self.insert_all(txn, head, &out, Some(&mut next));
                    }
                }
            }
            std::mem::swap(&mut frontier, &mut next);
            next.clear();
        }
    }

    /// Counting maintenance of a non-recursive stratum.
    fn counting(&mut self, txn: &mut TxnState, _stratum: &Stratum, rules: &[RuleId]) {
        let mut acc = std::mem::take(&mut self.weights);
        // Each input's delta is built once, however many literals read it.
        let mut deltas: HashMap<TableId, Rows> = HashMap::new();
        for &rid in rules {
            let body: Vec<Option<TableId>> = self.rules[&rid].rule.body.iter().map(LLit::table).collect();
            let head = self.rules[&rid].rule.head;
            for (i, t) in body.iter().enumerate() {
                let Some(t) = *t else { continue };
                let delta = deltas.entry(t).or_insert_with(|| self.delta_rows(txn, t, true, true));
                if delta.is_empty() {
                    continue;
                }
                for (row, w) in self.run_collect(txn, rid, Some(i), ViewMode::Telescoping(i), delta).iter() {
                    acc.add(head, row, w);
                }
            }
        }
        acc.drain_sums(|t, row, w| self.add_derived(txn, t, row, w));
        self.weights = acc;
    }

    /// Delete-and-rederive for a recursive stratum whose inputs changed.
    fn dred(&mut self, txn: &mut TxnState, _stratum: &Stratum, rules: &[RuleId], inside: &HashSet<TableId>) {
        // 1. Over-delete: everything with a derivation (in the old state) that uses a
        //    removed input row, closed under the stratum's rules.
        let mut deleted: HashMap<TableId, HashSet<Vec<Sym>>> = HashMap::new();
        let mut frontier = Frontier::default();
        for &rid in rules {
            let head = self.rules[&rid].rule.head;
            for (i, t, neg) in self.outside_literals(rid, inside) {
                let delta = self.delta_rows(txn, t, neg, !neg);
                if delta.is_empty() {
                    continue;
                }
                let out = self.run_collect(txn, rid, Some(i), ViewMode::Old, &delta);
                self.overdelete(head, &out, &mut deleted, &mut frontier);
            }
        }
        while !frontier.is_empty() {
            let mut next = Frontier::default();
            for &rid in rules {
                let head = self.rules[&rid].rule.head;
                let literals: Vec<(usize, TableId)> = self.inside_literals(rid, inside).collect();
                for (i, t) in literals {
                    let Some(fresh) = frontier.get(t) else { continue };
                    // Over-deleted rows are only ever copied (`Frontier::push`).
                    debug_assert!(fresh.slots.is_empty());
                    let out = self.run_collect(txn, rid, Some(i), ViewMode::Old, &fresh.rows);
                    self.overdelete(head, &out, &mut deleted, &mut next);
                }
            }
            frontier = next;
        }
        // 2. Remove the over-deleted rows.
        for (&t, rows) in &deleted {
            for row in rows {
                if let Some(id) = self.tables[t].find(row) {
                    self.tables[t].remove(id);
                    txn.note(t, row, false);
                }
            }
        }
        // 3. Re-derive those with another support in the new state.
        let mut frontier = Frontier::default();
        for (&t, rows) in &deleted {
            for row in rows {
                if self.derivable(txn, t, row) && self.insert_flag(txn, t, row) {
                    frontier.push(t, row);
                }
            }
        }
        // 4. Insert what new input rows derive, then close under the rules.
        for &rid in rules {
            let head = self.rules[&rid].rule.head;
            for (i, t, neg) in self.outside_literals(rid, inside) {
                let delta = self.delta_rows(txn, t, !neg, neg);
                if delta.is_empty() {
                    continue;
                }
                let out = self.run_collect(txn, rid, Some(i), ViewMode::New, &delta);
                self.insert_all(txn, head, &out, Some(&mut frontier));
            }
        }
        self.seminaive(txn, rules, inside, frontier);
    }

    /// Record rows of `out` (head `t`) as over-deleted unless absent, explicit, or
    /// already recorded; new ones go to `frontier`.
    fn overdelete(
        &self,
        t: TableId,
        out: &Rows,
        deleted: &mut HashMap<TableId, HashSet<Vec<Sym>>>,
        frontier: &mut Frontier,
    ) {
        for (row, _) in out.iter() {
            let Some(id) = self.tables[t].find(row) else { continue };
            if self.tables[t].count(id) & EXPLICIT != 0 {
                continue;
            }
            if deleted.entry(t).or_default().insert(row.to_vec()) {
                frontier.push(t, row);
            }
        }
    }

    /// Whether `row` of `t` has a derivation from the current state (one rule step).
    pub fn derivable(&mut self, txn: &TxnState, t: TableId, row: &[Sym]) -> bool {
        let rids = self.info[t].rules.clone();
        for rid in rids {
            let Some(entry) = self.rules.get(&rid).cloned() else { continue };
            entry.head_bound().prepare(&mut self.tables);
            let mut binds = entry.rule.init_binds.clone();
            if !bind_head(&entry.rule.head_terms, row, &mut binds) {
                continue;
            }
            let mut found = false;
            let mut fails = FailureLog::default();
            let mut ex = self.exec(&txn.changed, &mut fails);
            ex.run(&entry.rule, entry.head_bound(), ViewMode::New, RowsRef::default(), &mut binds, &mut |h, _, _| {
                if h == row {
                    found = true;
                    false
                } else {
                    true
                }
            });
            if found {
                return true;
            }
        }
        false
    }
}

/// The hash of a table key in the store's index.
fn key_hash(key: &TableKey) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x7ab1e).hash_one(key)
}

/// The store's rule index seen as a dependency graph.
struct StoreGraph<'a> {
    info: &'a [TableInfo],
    rules: &'a BTreeMap<RuleId, Arc<RuleEntry>>,
}

impl Graph for StoreGraph<'_> {
    fn dependents(&self, t: TableId, out: &mut Vec<TableId>) {
        out.extend(self.info[t].readers.heads());
    }

    fn edges(&self) -> Vec<stratify::Edge> {
        let mut edges = Vec::new();
        for r in self.rules.values() {
            for l in &r.rule.body {
                match l {
                    LLit::Pos { table, .. } => {
                        edges.push(stratify::Edge { from: *table, to: r.rule.head, negative: false })
                    }
                    LLit::Neg { table, .. } => {
                        edges.push(stratify::Edge { from: *table, to: r.rule.head, negative: true })
                    }
                    _ => {}
                }
            }
        }
        edges
    }

    fn table_count(&self) -> usize {
        self.info.len()
    }
}

/// Strata waiting to be brought up to date, lowest level first; each is queued once
/// per propagation (its inputs are final when its turn comes, since every reader of a
/// stratum is at a higher level).
/// A non-recursive stratum with at most this many rules scans its rules for changed
/// inputs instead of having them recorded.
const FEW_RULES: usize = 8;

/// Kept in the store between propagations, cleared, so a small commit allocates nothing.
#[derive(Clone, Debug, Default)]
struct StrataQueue {
    order: BinaryHeap<Reverse<(u32, TableId)>>,
    queued: HashSet<TableId>,
    /// Per queued stratum (by leader): the changed tables its rules read.
    inputs: HashMap<TableId, SmallVec<[TableId; 2]>>,
}

impl StrataQueue {
    fn push(&mut self, strata: &Strata, t: TableId) {
        let leader = strata.leader(t);
        if self.queued.insert(leader) {
            self.order.push(Reverse((strata.level(leader), leader)));
        }
    }

    fn clear(&mut self) {
        self.order.clear();
        self.queued.clear();
        self.inputs.clear();
    }

    /// Queue the stratum of `head`, one of whose rules reads `input`, which changed.
    fn push_input(&mut self, strata: &Strata, head: TableId, input: TableId) {
        self.push(strata, head);
        let inputs = self.inputs.entry(strata.leader(head)).or_default();
        // The readers of one input are pushed together: repeats are adjacent.
        if inputs.last() != Some(&input) {
            inputs.push(input);
        }
    }

    fn pop(&mut self) -> Option<TableId> {
        self.order.pop().map(|Reverse((_, t))| t)
    }

    /// The changed inputs of a stratum, each once.
    fn take_inputs(&mut self, leader: TableId) -> SmallVec<[TableId; 2]> {
        let mut v = self.inputs.remove(&leader).unwrap_or_default();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// The rows a delta plan reads: a buffer of rows, or a run of a table's slots.
#[derive(Clone, Debug)]
enum Delta<'a> {
    Rows(&'a Rows),
    Slots(TableId, Range<usize>),
}

impl Delta<'_> {
    /// The rows, as the executors take them; a run of slots is read from `tables`.
    fn view<'t>(&'t self, tables: &'t [Relation]) -> RowsRef<'t> {
        match self {
            Delta::Rows(rows) => rows.view(),
            Delta::Slots(t, slots) => {
                RowsRef::ones(tables[*t].arity(), tables[*t].slot_rows(slots.clone()), slots.len())
            }
        }
    }
}

/// Rows newly derived per table in one round of a fixpoint.
#[derive(Debug, Default)]
struct Frontier(HashMap<TableId, Fresh>);

/// One table's rows new in a round: those appended to the table, as the run of slots
/// they fill (read in place: a copy of a recursive table's millions of new rows costs a
/// pass over memory written for the first time), and copies of the rest (explicit facts
/// seeding the fixpoint; under delete-and-rederive, rows re-derived one by one and rows
/// inserted while removed rows' slots were left to reuse).
#[derive(Debug)]
struct Fresh {
    rows: Rows,
    slots: Range<usize>,
}

impl Fresh {
    fn new(arity: usize) -> Self {
        Fresh { rows: Rows::new(arity), slots: 0..0 }
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.slots.is_empty()
    }

    /// The nonempty parts of table `t`'s new rows, as deltas: the copies, then the run.
    fn parts(&self, t: TableId) -> impl Iterator<Item = Delta<'_>> {
        let rows = (!self.rows.is_empty()).then_some(Delta::Rows(&self.rows));
        let slots = (!self.slots.is_empty()).then(|| Delta::Slots(t, self.slots.clone()));
        rows.into_iter().chain(slots)
    }
}

impl Frontier {
    fn push(&mut self, t: TableId, row: &[Sym]) {
        self.0.entry(t).or_insert_with(|| Fresh::new(row.len())).rows.push(row, 1);
    }

    fn extend(&mut self, t: TableId, rows: &Rows) {
        for (r, w) in rows.iter() {
            self.0.entry(t).or_insert_with(|| Fresh::new(rows.arity)).rows.push(r, w);
        }
    }

    fn get(&self, t: TableId) -> Option<&Fresh> {
        self.0.get(&t).filter(|f| !f.is_empty())
    }

    /// Empty every table's rows, keeping the buffers.
    fn clear(&mut self) {
        for f in self.0.values_mut() {
            f.rows.clear();
            f.slots = 0..0;
        }
    }

    fn is_empty(&self) -> bool {
        self.0.values().all(Fresh::is_empty)
    }
}

/// Bind a rule's head terms to a row; false when a constant or repeated variable
/// does not match.
pub fn bind_head(head: &[LTerm], row: &[Sym], binds: &mut [Sym]) -> bool {
    if head.len() != row.len() {
        return false;
    }
    let mut set = vec![false; binds.len()];
    for (t, &s) in head.iter().zip(row) {
        match t {
            LTerm::Const(c) => {
                if *c != s {
                    return false;
                }
            }
            LTerm::Var(v) => {
                if set[*v] && binds[*v] != s {
                    return false;
                }
                set[*v] = true;
                binds[*v] = s;
            }
        }
    }
    true
}
