//! Full evaluation of a *linear closure*: a recursive table `P` whose one recursive rule
//! moves one column through a step table and carries every other column unchanged,
//!
//! ```text
//! path(x, z) :- path(x, y), graph:edge(y, z)
//! reach(t, a, z) :- reach(t, a, y), net:link(y, _, z, "up")
//! ```
//!
//! Such a fixpoint falls apart by the carried columns: the rows of `P` for one value of
//! them are the nodes reachable, through the step table's `(y, z)` pairs, from that
//! value's seeds (the rows the exit rules derive and the explicit facts of `P`). So it is
//! evaluated as one breadth-first search per carried value over an adjacency array built
//! once, deduplicated by a visit stamp per node, instead of semi-naive rounds that probe
//! one big membership set for every candidate row (a cache miss per candidate: that set
//! outgrows every cache on the closures policies compute). The rows come out distinct, so
//! they are stored without a round of membership tests.
//!
//! Written by hand: it is a specialised join, and its speed is the reason for it.

use super::relation::Relation;
use super::{LLit, LRule, LTerm, Rows, TableId};
use crate::intern::Sym;
use hashbrown::HashMap;

/// A rule of the closure shape, read by [`Closure::of`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Closure {
    /// The column of `P` that moves; every other column is carried.
    moving: usize,
    /// The step table and the columns of its `y` (from) and `z` (to) terms.
    step: TableId,
    from: usize,
    to: usize,
    /// Columns of the step table that must hold a constant.
    consts: Vec<(usize, Sym)>,
}

impl Closure {
    /// The closure a rule of recursive table `p` computes, if it has the shape:
    /// head `P(.., z, ..)`, body exactly `P(.., y, ..)` and one positive literal of another
    /// table; every head term a variable equal to the recursive literal's term at the
    /// same column except at one column (`z` against `y`); the carried variables
    /// distinct and in neither `y`, `z` nor the step literal; the step literal holding
    /// `y` and `z` once each and otherwise constants or variables used nowhere else.
    pub(super) fn of(rule: &LRule, p: TableId) -> Option<Closure> {
        if rule.head != p || rule.body.len() != 2 {
            return None;
        }
        let (rec, step, step_terms) = match (&rule.body[0], &rule.body[1]) {
            (LLit::Pos { table: a, terms: ra }, LLit::Pos { table: b, terms: rb }) if *a == p && *b != p => {
                (ra, *b, rb)
            }
            (LLit::Pos { table: a, terms: ra }, LLit::Pos { table: b, terms: rb }) if *b == p && *a != p => {
                (rb, *a, ra)
            }
            _ => return None,
        };
        let var = |t: &LTerm| match t {
            LTerm::Var(v) => Some(*v),
            LTerm::Const(_) => None,
        };
        let head: Vec<usize> = rule.head_terms.iter().map(var).collect::<Option<_>>()?;
        let body: Vec<usize> = rec.iter().map(var).collect::<Option<_>>()?;
        if head.len() != body.len() {
            return None;
        }
        let mut moving = None;
        for (i, (h, b)) in head.iter().zip(&body).enumerate() {
            if h != b {
                if moving.is_some() {
                    return None;
                }
                moving = Some(i);
            }
        }
        let moving = moving?;
        let (y, z) = (body[moving], head[moving]);
        // Every variable's uses across the rule: carried ones twice (head and body), `y`
        // and `z` twice (one of them in the step literal), anonymous ones once.
        let mut uses = vec![0usize; rule.nvars];
        for v in head.iter().chain(&body).copied().chain(step_terms.iter().filter_map(var)) {
            uses[v] += 1;
        }
        let carried_ok =
            head.iter().enumerate().filter(|&(i, _)| i != moving).all(|(_, &v)| v != y && v != z && uses[v] == 2);
        if !carried_ok || y == z {
            return None;
        }
        let (mut from, mut to, mut consts) = (None, None, Vec::new());
        for (c, t) in step_terms.iter().enumerate() {
            match *t {
                LTerm::Var(v) if v == y && from.is_none() => from = Some(c),
                LTerm::Var(v) if v == z && to.is_none() => to = Some(c),
                LTerm::Var(v) if uses[v] == 1 => {}
                LTerm::Var(_) => return None,
                LTerm::Const(s) => consts.push((c, s)),
            }
        }
        Some(Closure { moving, step, from: from?, to: to?, consts })
    }

    /// The table the step literal reads.
    pub(super) fn step(&self) -> TableId {
        self.step
    }

    /// Every row of the fixpoint that is derived, each once, into `out`: the rows a
    /// search from each carried value's seeds reaches in one step or more, and the
    /// `derived` seeds themselves. `explicit` seeds (facts of `P`) are searched from but
    /// not derived unless reached.
    pub(super) fn run(&self, step: &Relation, derived: &Rows, explicit: &Rows, out: &mut Rows) {
        let arity = out.arity;
        // Nodes numbered densely; the step table's pairs as an adjacency array.
        let mut number: HashMap<Sym, u32> = HashMap::new();
        let mut syms: Vec<Sym> = Vec::new();
        let mut node = |s: Sym| -> u32 {
            *number.entry(s).or_insert_with(|| {
                syms.push(s);
                (syms.len() - 1) as u32
            })
        };
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(step.len());
        for (_, row) in step.iter() {
            if self.consts.iter().all(|&(c, s)| row[c] == s) {
                pairs.push((node(row[self.from]), node(row[self.to])));
            }
        }
        // Seeds, tagged derived or explicit, grouped by their carried columns.
        let seeds: Vec<(&[Sym], bool)> =
            derived.iter().map(|(r, _)| (r, true)).chain(explicit.iter().map(|(r, _)| (r, false))).collect();
        let seed_nodes: Vec<u32> = seeds.iter().map(|(r, _)| node(r[self.moving])).collect();
        let n = syms.len();
        let (offsets, targets) = adjacency(n, pairs);
        let moving = self.moving;
        let mut order: Vec<u32> = (0..seeds.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| carried(seeds[a as usize].0, moving).cmp(carried(seeds[b as usize].0, moving)));

        // Per node, the last group that reached it: `2 * stamp` when it was only queued
        // (an explicit seed), `2 * stamp + 1` once derived (and queued).
        let mut seen = vec![0u32; n];
        let mut queue: Vec<u32> = Vec::new();
        let mut row: Vec<Sym> = Vec::with_capacity(arity);
        let mut buf: Vec<Sym> = Vec::new();
        let mut stamp = 0u32;
        let mut start = 0;
        while start < order.len() {
            let first = seeds[order[start] as usize].0;
            let mut end = start + 1;
            while end < order.len() && carried(seeds[order[end] as usize].0, moving).eq(carried(first, moving)) {
                end += 1;
            }
            if stamp == u32::MAX / 2 {
                // Out of stamps (2^31 groups): start over with every node unseen.
                seen.fill(0);
                stamp = 0;
            }
            stamp += 1;
            let (queued, derived) = (2 * stamp, 2 * stamp + 1);
            row.clear();
            row.extend_from_slice(first);
            queue.clear();
            let emit = |v: u32, buf: &mut Vec<Sym>| {
                buf.extend(row.iter().enumerate().map(|(i, &s)| if i == moving { syms[v as usize] } else { s }));
            };
            for &k in &order[start..end] {
                let (v, is_derived) = (seed_nodes[k as usize], seeds[k as usize].1);
                let was = seen[v as usize];
                if was < queued {
                    queue.push(v);
                }
                if is_derived && was != derived {
                    seen[v as usize] = derived;
                    emit(v, &mut buf);
                } else if was < queued {
                    seen[v as usize] = queued;
                }
            }
            let mut i = 0;
            while i < queue.len() {
                let v = queue[i] as usize;
                i += 1;
                for &w in &targets[offsets[v] as usize..offsets[v + 1] as usize] {
                    let was = seen[w as usize];
                    if was != derived {
                        if was < queued {
                            queue.push(w);
                        }
                        seen[w as usize] = derived;
                        emit(w, &mut buf);
                    }
                }
            }
            start = end;
        }
        out.extend_syms(buf);
    }
}

/// The pairs `(a, b)` over nodes `0..n` as an adjacency array: node `a`'s successors are
/// `targets[offsets[a]..offsets[a + 1]]`.
fn adjacency(n: usize, pairs: Vec<(u32, u32)>) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; n + 1];
    for &(a, _) in &pairs {
        offsets[a as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut targets = vec![0u32; pairs.len()];
    for (a, b) in pairs {
        targets[fill[a as usize] as usize] = b;
        fill[a as usize] += 1;
    }
    (offsets, targets)
}

/// A row's carried columns: all but the moving one.
fn carried(row: &[Sym], moving: usize) -> impl Iterator<Item = Sym> + '_ {
    row.iter().enumerate().filter(move |&(i, _)| i != moving).map(|(_, &s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, PolicyKind, Schema};

    /// The closure shape of each rule of `program` (policy `p`, over `g:edge(a, b)` and
    /// `g:link(a, kind, b, state)`) that reads its own head, in rule order.
    fn shapes(program: &str) -> Vec<Option<Closure>> {
        let mut e = Engine::new();
        let schema: Schema = [("edge", vec!["a", "b"]), ("link", vec!["a", "kind", "b", "state"])]
            .into_iter()
            .map(|(t, c)| (t.to_string(), c.into_iter().map(String::from).collect()))
            .collect();
        e.create_datasource("g", schema).expect("datasource");
        e.create_policy("p", PolicyKind::Nonrecursive).expect("policy");
        e.insert_rules("p", program).expect("rules");
        e.store
            .rules
            .values()
            .filter(|entry| entry.rule.body.iter().any(|l| l.table() == Some(entry.rule.head)))
            .map(|entry| Closure::of(&entry.rule, entry.rule.head))
            .collect()
    }

    fn one(program: &str) -> Option<Closure> {
        let mut all = shapes(program);
        assert_eq!(all.len(), 1, "{program}");
        all.pop().flatten()
    }

    #[test]
    fn closures_moving_either_column_or_a_middle_one() {
        let right = one("path(x, z) :- path(x, y), g:edge(y, z)").expect("right-linear");
        assert_eq!((right.moving, right.from, right.to), (1, 0, 1));
        let left = one("path(z, x) :- g:edge(z, y), path(y, x)").expect("left-linear, step literal first");
        assert_eq!((left.moving, left.from, left.to), (0, 1, 0));
        let mid = one("r(t, z, u) :- r(t, y, u), g:edge(z, y)").expect("a middle column, the step read backwards");
        assert_eq!((mid.moving, mid.from, mid.to), (1, 1, 0));
    }

    #[test]
    fn a_step_literal_may_filter_on_constants_and_ignore_columns() {
        let c = one("up(x, z) :- up(x, y), g:link(y, _, z, \"up\")").expect("shape");
        assert_eq!((c.from, c.to, c.consts.len()), (0, 2, 1));
        assert_eq!(c.consts[0].0, 3);
    }

    #[test]
    fn other_recursive_rules_are_not_closures() {
        for program in [
            // The carried variable also joins the step.
            "path(x, z) :- path(x, y), g:link(y, x, z, _)",
            // Nonlinear.
            "path(x, z) :- path(x, y), path(y, z)",
            // A third literal.
            "path(x, z) :- path(x, y), g:edge(y, z), g:edge(z, x)",
            // Two columns move.
            "path(z, x) :- path(x, y), g:edge(y, z)",
            // A constant in the head.
            "path(1, z) :- path(1, y), g:edge(y, z)",
            // The step's other column is used again.
            "path(x, z) :- path(x, y), g:link(y, k, z, k)",
            // `y` twice in the step.
            "path(x, z) :- path(x, y), g:link(y, y, z, _)",
            // Nothing moves through the step: `z` is `y`.
            "path(x, y) :- path(x, y), g:edge(y, y)",
        ] {
            assert_eq!(one(program), None, "{program}");
        }
    }

    /// A search per carried value, against a fixpoint computed here, with explicit seeds
    /// (searched from, derived only when reached) and duplicate step pairs.
    #[test]
    fn run_derives_what_a_naive_fixpoint_derives() {
        let closure = Closure { moving: 1, step: 0, from: 0, to: 1, consts: vec![] };
        let edges: Vec<(u32, u32)> = vec![(1, 2), (2, 3), (3, 1), (3, 4), (5, 6), (2, 3), (7, 7)];
        let mut step = Relation::new(2);
        for &(a, b) in &edges {
            step.find_or_insert(&[a, b], 1);
        }
        let mut derived = Rows::new(2);
        for r in [[10, 1], [10, 2], [11, 5], [12, 9], [13, 7]] {
            derived.push(&r, 1);
        }
        let mut explicit = Rows::new(2);
        for r in [[11, 1], [14, 5]] {
            explicit.push(&r, 1);
        }
        let mut out = Rows::new(2);
        closure.run(&step, &derived, &explicit, &mut out);
        let got: Vec<(u32, u32)> = out.iter().map(|(r, _)| (r[0], r[1])).collect();
        let set: std::collections::BTreeSet<(u32, u32)> = got.iter().copied().collect();
        assert_eq!(set.len(), got.len(), "each row once: {got:?}");

        let mut want: std::collections::BTreeSet<(u32, u32)> = derived.iter().map(|(r, _)| (r[0], r[1])).collect();
        let seeds: Vec<(u32, u32)> = want.iter().copied().chain(explicit.iter().map(|(r, _)| (r[0], r[1]))).collect();
        let mut all: std::collections::BTreeSet<(u32, u32)> = seeds.iter().copied().collect();
        loop {
            let more: Vec<(u32, u32)> =
                all.iter().flat_map(|&(x, y)| edges.iter().filter(move |e| e.0 == y).map(move |e| (x, e.1))).collect();
            let before = (all.len(), want.len());
            for r in more {
                all.insert(r);
                want.insert(r);
            }
            if (all.len(), want.len()) == before {
                break;
            }
        }
        assert_eq!(set, want);
        assert!(!set.contains(&(14, 5)), "an explicit seed is not derived unless reached");
        assert!(set.contains(&(11, 1)) && set.contains(&(14, 6)), "explicit seeds are searched from");
        assert!(set.contains(&(10, 1)), "a derived seed reached again stays once");
    }
}
