//! The counting algorithm's accumulator: rows of several head tables, each with a change
//! of its number of derivations, summed per row before they are applied.
//!
//! Rows are kept flat in one array, found again through a hash table of their places,
//! where a hash map keyed by `(table, Vec<Sym>)` allocated a vector per row. The store
//! keeps one accumulator and reuses its arrays, so a small delta allocates nothing here.

use super::TableId;
use super::relation::HASHER;
use crate::intern::Sym;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hasher};

/// One distinct row: its table, where it starts in [`Weights::syms`], its length, and
/// the sum of its weights so far.
#[derive(Clone, Copy, Debug)]
struct Item {
    table: TableId,
    start: usize,
    len: usize,
    weight: i64,
}

/// Weighted rows, summed per `(table, row)` as they are added.
#[derive(Clone, Debug, Default)]
pub struct Weights {
    syms: Vec<Sym>,
    items: Vec<Item>,
    /// Indexes into `items`, by the hash of the table and row.
    places: HashTable<u32>,
}

fn hash(table: TableId, row: &[Sym]) -> u64 {
    let mut h = HASHER.build_hasher();
    h.write_usize(table);
    row.iter().for_each(|&s| h.write_u32(s));
    h.finish()
}

impl Weights {
    /// Add `weight` derivations (negative: removed) of `row` in `table`.
    pub fn add(&mut self, table: TableId, row: &[Sym], weight: i64) {
        let (syms, items) = (&self.syms, &mut self.items);
        let h = hash(table, row);
        let same = |&i: &u32| {
            let it = &items[i as usize];
            it.table == table && &syms[it.start..it.start + it.len] == row
        };
        if let Some(&i) = self.places.find(h, same) {
            items[i as usize].weight += weight;
            return;
        }
        // More than 2^32 rows in one transaction's accumulator is beyond any memory.
        let i = u32::try_from(items.len()).unwrap_or(u32::MAX);
        items.push(Item { table, start: syms.len(), len: row.len(), weight });
        self.syms.extend_from_slice(row);
        let (syms, items) = (&self.syms, &self.items);
        self.places.insert_unique(h, i, |&j| {
            let it = &items[j as usize];
            hash(it.table, &syms[it.start..it.start + it.len])
        });
    }

    /// Call `f` once per distinct `(table, row)` with the sum of its weights (which may be
    /// 0), in the order the rows were first added, and empty the accumulator (keeping its
    /// arrays).
    pub fn drain_sums(&mut self, mut f: impl FnMut(TableId, &[Sym], i64)) {
        for it in &self.items {
            f(it.table, &self.syms[it.start..it.start + it.len], it.weight);
        }
        self.items.clear();
        self.syms.clear();
        self.places.clear();
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
            w.drain_sums(|t, row, sum| {
                assert!(got.insert((t, row.to_vec()), sum).is_none(), "one call per row");
            });
            assert_eq!(got, model, "round {round}");
            assert!(w.items.is_empty() && w.syms.is_empty() && w.places.is_empty());
            assert!(w.items.capacity() >= model.len(), "arrays kept for the next transaction");
        }
    }
}
