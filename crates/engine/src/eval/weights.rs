//! The counting algorithm's accumulator: rows of several head tables, each with a change
//! of its number of derivations, summed per row before they are applied.
//!
//! Rows are kept flat in one array and summed by sorting once at the end, where a hash
//! map keyed by `(table, Vec<Sym>)` allocated a vector per row. The store keeps one
//! accumulator and reuses its arrays, so a small delta allocates nothing here.

use super::TableId;
use crate::intern::Sym;

/// One weighted row: its table, where it starts in [`Weights::syms`], its length.
#[derive(Clone, Copy, Debug)]
struct Item {
    table: TableId,
    start: usize,
    len: usize,
    weight: i64,
}

/// Weighted rows, summed per `(table, row)` by [`Weights::drain_sums`].
#[derive(Clone, Debug, Default)]
pub struct Weights {
    syms: Vec<Sym>,
    items: Vec<Item>,
}

impl Weights {
    /// Add `weight` derivations (negative: removed) of `row` in `table`.
    pub fn add(&mut self, table: TableId, row: &[Sym], weight: i64) {
        self.items.push(Item { table, start: self.syms.len(), len: row.len(), weight });
        self.syms.extend_from_slice(row);
    }

    /// Call `f` once per distinct `(table, row)` with the sum of its weights (which may be
    /// 0), in table then row order, and empty the accumulator (keeping its arrays).
    pub fn drain_sums(&mut self, mut f: impl FnMut(TableId, &[Sym], i64)) {
        let syms = &self.syms;
        let row = |i: &Item| &syms[i.start..i.start + i.len];
        self.items.sort_unstable_by(|a, b| a.table.cmp(&b.table).then_with(|| row(a).cmp(row(b))));
        let mut rest = &self.items[..];
        while let Some(first) = rest.first() {
            let same = rest.iter().take_while(|i| i.table == first.table && row(i) == row(first)).count();
            f(first.table, row(first), rest[..same].iter().map(|i| i.weight).sum());
            rest = &rest[same..];
        }
        self.items.clear();
        self.syms.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Against a map of vectors (what the store used before), through a reuse.
    #[test]
    fn sums_match_a_map_and_the_arrays_are_reused() {
        let mut w = Weights::default();
        for round in 0..2u32 {
            let mut model: HashMap<(TableId, Vec<Sym>), i64> = HashMap::new();
            for k in 0..500u32 {
                let table = (k % 3) as TableId;
                let row: Vec<Sym> = (0..1 + table as u32).map(|c| (k * 7 + c + round) % 11).collect();
                let weight = i64::from(k % 5) - 2;
                w.add(table, &row, weight);
                *model.entry((table, row)).or_default() += weight;
            }
            let mut got = HashMap::new();
            let mut order = Vec::new();
            w.drain_sums(|t, row, sum| {
                assert!(got.insert((t, row.to_vec()), sum).is_none(), "one call per row");
                order.push((t, row.to_vec()));
            });
            assert_eq!(got, model, "round {round}");
            assert!(order.is_sorted(), "table then row order");
            assert!(w.items.is_empty() && w.syms.is_empty() && w.items.capacity() >= 500);
        }
    }
}
