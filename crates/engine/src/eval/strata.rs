//! The evaluation order of the tables with rules, kept up to date as rules come and go.
//!
//! Every table has a *level*. A table without rules is at 0; a table with rules is above
//! every table its rules read, except the tables of its own recursive component (a
//! strongly connected component of the dependency graph with a cycle), which all share one
//! level and form one stratum; every other table with rules is a stratum of its own.
//! Propagation visits strata in level order, so no total order of all strata is needed:
//! - adding a rule raises only the levels above it that must move, after a search bounded
//!   by levels shows it closes no cycle (levels grow along every edge between strata, so
//!   a path back from the head can only pass through tables at or below the body's level;
//!   the bound is what keeps the search to the affected region, as in incremental
//!   topological ordering, Marchetti-Spaccamela et al. 1996);
//! - removing a rule moves nothing (levels need only be consistent, not tight), unless it
//!   was an edge inside a recursive component, which may split;
//! - a rule that closes a cycle, a component that may split and bulk changes (many rules in
//!   one transaction) recompute everything once, in time linear in the rules (Tarjan).
//!
//! Written here rather than taken from a crate: the order must be maintained in place
//! against the store's own rule index, which no graph crate can see.

use super::TableId;
use crate::stratify;
use hashbrown::{HashMap, HashSet};
use std::sync::Arc;

/// More rules than this added in one transaction are ordered by one recomputation
/// rather than one by one (a chain loaded top down would raise every level per rule).
pub(crate) const INCREMENTAL_RULES: usize = 64;

/// The dependency graph as the store holds it: who reads a table, what a rule reads.
pub(crate) trait Graph {
    /// Heads of the rules with a body literal reading `t` (repeats allowed).
    fn dependents(&self, t: TableId, out: &mut Vec<TableId>);
    /// For each table with rules: the tables its rules read, with whether negated.
    fn edges(&self) -> Vec<stratify::Edge>;
    fn table_count(&self) -> usize;
}

/// The tables of one stratum: one table, or a recursive component (shared, not copied).
#[derive(Clone, Debug)]
pub(crate) enum Members {
    One(TableId),
    Many(Arc<[TableId]>),
}

impl std::ops::Deref for Members {
    type Target = [TableId];

    fn deref(&self) -> &[TableId] {
        match self {
            Members::One(t) => std::slice::from_ref(t),
            Members::Many(m) => m,
        }
    }
}

/// Levels and recursive components. See the module documentation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Strata {
    level: Vec<u32>,
    /// Table -> the smallest table of its recursive component (tables in one only).
    leader: HashMap<TableId, TableId>,
    /// Leader -> the sorted tables of its recursive component.
    members: HashMap<TableId, Arc<[TableId]>>,
    /// The order must be recomputed before it is used.
    stale: bool,
}

impl Strata {
    pub(crate) fn is_stale(&self) -> bool {
        self.stale
    }

    /// Force a full recomputation at the next [`Strata::rebuild`].
    pub(crate) fn invalidate(&mut self) {
        self.stale = true;
    }

    pub(crate) fn shrink(&mut self) {
        self.level.shrink_to_fit();
    }

    pub(crate) fn level(&self, t: TableId) -> u32 {
        self.level.get(t).copied().unwrap_or(0)
    }

    fn set_level(&mut self, t: TableId, l: u32) {
        if t >= self.level.len() {
            self.level.resize(t + 1, 0);
        }
        self.level[t] = l;
    }

    /// Whether `t` is in a recursive component.
    pub(crate) fn recursive(&self, t: TableId) -> bool {
        !self.leader.is_empty() && self.leader.contains_key(&t)
    }

    /// The table that names the stratum of `t`: the smallest of its recursive component,
    /// or `t` itself.
    pub(crate) fn leader(&self, t: TableId) -> TableId {
        if self.leader.is_empty() {
            return t;
        }
        self.leader.get(&t).copied().unwrap_or(t)
    }

    /// The stratum of `t` (a table with rules): its leader and tables.
    pub(crate) fn stratum(&self, t: TableId) -> (TableId, Members, bool) {
        if self.leader.is_empty() {
            return (t, Members::One(t), false);
        }
        match self.leader.get(&t) {
            Some(&l) => (l, Members::Many(self.members[&l].clone()), true),
            None => (t, Members::One(t), false),
        }
    }

    fn same_stratum(&self, a: TableId, b: TableId) -> bool {
        a == b || matches!((self.leader.get(&a), self.leader.get(&b)), (Some(x), Some(y)) if x == y)
    }

    fn for_members(&self, t: TableId, mut f: impl FnMut(TableId)) {
        match self.leader.get(&t) {
            Some(l) => self.members[l].iter().for_each(|&m| f(m)),
            None => f(t),
        }
    }

    /// A rule with `head` reading `body` was added to `graph`.
    pub(crate) fn rule_added(&mut self, graph: &impl Graph, head: TableId, body: &[TableId]) {
        for &b in body {
            if self.stale {
                return;
            }
            if b == head {
                // A self-loop makes `head` recursive: a new component unless it is one.
                if !self.recursive(head) {
                    self.stale = true;
                }
                continue;
            }
            if self.same_stratum(b, head) || self.level(head) > self.level(b) {
                continue;
            }
            let bound = self.level(b);
            if self.reaches(graph, head, b, bound) {
                // The rule closes a cycle: components merge.
                self.stale = true;
                return;
            }
            self.raise(graph, head, bound + 1);
        }
    }

    /// A rule with `head` reading `body` was removed. Levels stay valid; a recursive
    /// component that lost an inner edge may split, so it is recomputed.
    pub(crate) fn rule_removed(&mut self, head: TableId, body: &[TableId]) {
        if body.iter().any(|&b| self.same_stratum(b, head)) {
            self.stale = true;
        }
    }

    /// Whether `target` is reachable from `from` through tables at levels `<= bound`.
    fn reaches(&self, graph: &impl Graph, from: TableId, target: TableId, bound: u32) -> bool {
        let mut seen: HashSet<TableId> = HashSet::from_iter([from]);
        let mut stack = vec![from];
        let mut next = Vec::new();
        while let Some(x) = stack.pop() {
            if x == target {
                return true;
            }
            next.clear();
            self.for_members(x, |m| graph.dependents(m, &mut next));
            for &d in &next {
                if self.level(d) <= bound && seen.insert(d) {
                    stack.push(d);
                }
            }
        }
        false
    }

    /// Put `start`'s stratum at level `l` at least, and everything that reads it above.
    /// The graph has no cycle through `start` outside its component (checked first).
    fn raise(&mut self, graph: &impl Graph, start: TableId, l: u32) {
        let mut stack = vec![(start, l)];
        let mut next = Vec::new();
        // A cycle here would be a bug of `reaches`; this bound turns it into a rebuild.
        let mut budget = 4 * graph.table_count() + 16;
        while let Some((t, l)) = stack.pop() {
            if self.level(t) >= l {
                continue;
            }
            if budget == 0 {
                self.stale = true;
                return;
            }
            budget -= 1;
            let mut tables = Vec::new();
            self.for_members(t, |m| tables.push(m));
            next.clear();
            for &m in &tables {
                self.set_level(m, l);
                graph.dependents(m, &mut next);
            }
            for &d in &next {
                if !self.same_stratum(d, t) && self.level(d) <= l {
                    stack.push((d, l + 1));
                }
            }
        }
    }

    /// Recompute levels and components from scratch (when stale). Returns the tables
    /// whose stratum changed shape (joined, left or split a recursive component): their
    /// strata must be rebuilt, as counts mean different things in the two kinds.
    pub(crate) fn rebuild(&mut self, graph: &impl Graph) -> Vec<TableId> {
        let n = graph.table_count();
        let edges = graph.edges();
        let comps = stratify::components(n, &edges);
        let mut comp_of = vec![0usize; n];
        for (i, c) in comps.iter().enumerate() {
            for &t in c {
                comp_of[t] = i;
            }
        }
        let mut incoming: Vec<Vec<TableId>> = vec![Vec::new(); n];
        let mut self_loop = HashSet::new();
        for e in &edges {
            if e.from == e.to {
                self_loop.insert(e.to);
            }
            incoming[e.to].push(e.from);
        }
        let mut level = vec![0u32; n];
        let mut leader = HashMap::new();
        let mut members = HashMap::new();
        // Components come in dependency order: every input's level is final when read.
        for (i, comp) in comps.iter().enumerate() {
            let mut l = 0;
            for &t in comp {
                for &b in &incoming[t] {
                    if comp_of[b] != i {
                        l = l.max(level[b] + 1);
                    }
                }
            }
            for &t in comp {
                level[t] = l;
            }
            if comp.len() > 1 || self_loop.contains(&comp[0]) {
                let mut sorted = comp.clone();
                sorted.sort_unstable();
                let lead = sorted[0];
                for &t in &sorted {
                    leader.insert(t, lead);
                }
                members.insert(lead, Arc::from(sorted));
            }
        }
        // Tables whose component changed (only tables in an old or a new component can).
        let mut changed = Vec::new();
        for (&t, new_lead) in &leader {
            let same = self.leader.get(&t).is_some_and(|old| self.members[old] == members[new_lead]);
            if !same {
                changed.push(t);
            }
        }
        for &t in self.leader.keys() {
            if !leader.contains_key(&t) {
                changed.push(t);
            }
        }
        self.level = level;
        self.leader = leader;
        self.members = members;
        self.stale = false;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graph of rules `(head, body)`.
    struct Rules(usize, Vec<(TableId, Vec<TableId>)>);

    impl Graph for Rules {
        fn dependents(&self, t: TableId, out: &mut Vec<TableId>) {
            for (h, body) in &self.1 {
                out.extend(body.iter().filter(|&&b| b == t).map(|_| *h));
            }
        }
        fn edges(&self) -> Vec<stratify::Edge> {
            self.1
                .iter()
                .flat_map(|(h, body)| body.iter().map(|&b| stratify::Edge { from: b, to: *h, negative: false }))
                .collect()
        }
        fn table_count(&self) -> usize {
            self.0
        }
    }

    /// Every edge between strata goes up; tables of one component share a level.
    fn consistent(s: &Strata, g: &Rules) -> bool {
        g.1.iter().all(|(h, body)| {
            body.iter()
                .all(|&b| if s.same_stratum(b, *h) { s.level(b) == s.level(*h) } else { s.level(b) < s.level(*h) })
        })
    }

    #[test]
    fn adding_rules_keeps_levels_consistent_and_finds_cycles() {
        let mut g = Rules(5, Vec::new());
        let mut s = Strata::default();
        s.rebuild(&g);
        // 1 :- 0, 2 :- 1, 3 :- 2 added one by one, bottom rule last.
        for (h, b) in [(2, 1), (3, 2), (1, 0)] {
            g.1.push((h, vec![b]));
            s.rule_added(&g, h, &[b]);
            assert!(!s.is_stale());
            assert!(consistent(&s, &g), "{:?}", s.level);
        }
        assert_eq!(s.level(3), 3);
        // 1 :- 3 closes the cycle 1 -> 2 -> 3 -> 1.
        g.1.push((1, vec![3]));
        s.rule_added(&g, 1, &[3]);
        assert!(s.is_stale());
        let changed = s.rebuild(&g);
        assert_eq!(changed.len(), 3);
        assert!(s.recursive(2) && !s.recursive(0));
        assert!(consistent(&s, &g));
        // 4 :- 2 reads the component from above.
        g.1.push((4, vec![2]));
        s.rule_added(&g, 4, &[2]);
        assert!(!s.is_stale() && consistent(&s, &g));
        // Removing an edge inside the component may split it.
        g.1.retain(|r| *r != (1, vec![3]));
        s.rule_removed(1, &[3]);
        assert!(s.is_stale());
        assert_eq!(s.rebuild(&g).len(), 3);
        assert!(!s.recursive(1) && consistent(&s, &g));
    }

    #[test]
    fn a_long_chain_is_ordered_without_recursion() {
        let n = 100_000;
        let g = Rules(n, (0..n - 1).map(|i| (i, vec![i + 1])).collect());
        let mut s = Strata::default();
        s.invalidate();
        assert!(s.rebuild(&g).is_empty());
        assert_eq!(s.level(0) as usize, n - 1);
        assert!(consistent(&s, &g));
    }
}
