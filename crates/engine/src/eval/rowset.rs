//! The rows a transaction added to or removed from one table ([`super::Changed`]).
//!
//! A transaction that clears a derived table of 100,000 rows records each of them: as a
//! `HashSet<Vec<Sym>>` that is a heap allocation per row plus a 24-byte slot, some 70
//! bytes for a one-column row. Here rows sit in one flat vector and the hash table holds
//! their slots (4 bytes each), about 11 bytes for the same row.

use crate::intern::Sym;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hasher};

const HASHER: FixedState = FixedState::with_seed(0x0dd5);

fn hash(row: &[Sym]) -> u64 {
    let mut h = HASHER.build_hasher();
    row.iter().for_each(|&s| h.write_u32(s));
    h.write_usize(row.len());
    h.finish()
}

/// A set of rows of one arity. Removed rows leave their slot unused until the set is
/// dropped (it lives for one transaction).
#[derive(Clone, Debug, Default)]
pub struct RowSet {
    arity: usize,
    data: Vec<Sym>,
    live: Vec<bool>,
    table: HashTable<u32>,
}

impl RowSet {
    fn slot(&self, i: u32) -> &[Sym] {
        let s = i as usize * self.arity;
        &self.data[s..s + self.arity]
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn contains(&self, row: &[Sym]) -> bool {
        row.len() == self.arity && self.table.find(hash(row), |&i| self.slot(i) == row).is_some()
    }

    /// Add `row`; false if it was there.
    pub fn insert(&mut self, row: &[Sym]) -> bool {
        if self.live.is_empty() {
            self.arity = row.len();
        }
        debug_assert_eq!(row.len(), self.arity, "one arity per set");
        if self.contains(row) {
            return false;
        }
        let i = self.live.len() as u32;
        self.data.extend_from_slice(row);
        self.live.push(true);
        let (data, arity) = (&self.data, self.arity);
        self.table.insert_unique(hash(row), i, |&j| hash(&data[j as usize * arity..(j as usize + 1) * arity]));
        true
    }

    /// Remove `row`; false if it was absent.
    pub fn remove(&mut self, row: &[Sym]) -> bool {
        if row.len() != self.arity {
            return false;
        }
        let (data, arity) = (&self.data, self.arity);
        match self.table.find_entry(hash(row), |&i| &data[i as usize * arity..(i as usize + 1) * arity] == row) {
            Ok(e) => {
                let (i, _) = e.remove();
                self.live[i as usize] = false;
                true
            }
            Err(_) => false,
        }
    }

    /// The rows, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &[Sym]> + '_ {
        self.live.iter().enumerate().filter(|(_, l)| **l).map(|(i, _)| self.slot(i as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The set agrees with a `BTreeSet` over a run of inserts and removes, zero-arity
    /// rows included.
    #[test]
    fn behaves_as_a_set() {
        for arity in [0usize, 1, 3] {
            let mut s = RowSet::default();
            let mut model: BTreeSet<Vec<Sym>> = BTreeSet::new();
            for step in 0..5000u32 {
                let row: Vec<Sym> = (0..arity as u32).map(|c| (step * 7 + c) % 97).collect();
                let added = step % 3 != 0;
                if added {
                    assert_eq!(s.insert(&row), model.insert(row.clone()));
                } else {
                    assert_eq!(s.remove(&row), model.remove(&row));
                }
                assert_eq!(s.contains(&row), model.contains(&row));
                assert_eq!(s.len(), model.len());
            }
            let got: BTreeSet<Vec<Sym>> = s.iter().map(<[Sym]>::to_vec).collect();
            assert_eq!(got, model);
            assert_eq!(s.iter().count(), model.len());
            assert_eq!(s.is_empty(), model.is_empty());
        }
    }
}
