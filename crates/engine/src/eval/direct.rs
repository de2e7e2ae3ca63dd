//! A one-column index whose key symbols lie in a narrow range: a slot per symbol of the
//! range, holding the row with that key (or a group of rows), so a probe is one array
//! read, with no hash to compute, no control bytes to match and no candidate row to
//! compare.
//!
//! Symbols are dense: strings get consecutive table ids as they are first seen, small
//! integers are the integer itself. So a column of ids (a server's id, a network's, a
//! graph's node) usually spans a range of a few times its row count, and the slots cost
//! less than a hash table's buckets. A column whose range grows past [`SPREAD`] times
//! its rows stops fitting, and its relation turns the index into a hash index.

use super::relation::{Bucket, RowId};
use crate::intern::Sym;

/// No row has this key.
const NONE: u32 = u32::MAX;
/// A slot with this bit set holds the index of a group in [`Direct::groups`]; without
/// it, the one row with that key. Row ids stay below it (2^31 rows is far past memory).
const GROUP: u32 = 1 << 31;

/// Slots allowed per row of the index: past this the range is too sparse to pay.
const SPREAD: usize = 8;
/// Any range up to this many slots fits, however few the rows (16 KiB).
const SMALL: usize = 4096;

/// Whether `range` slots are worth having for `rows` rows.
pub(super) fn fits(range: usize, rows: usize) -> bool {
    range <= SMALL.max(rows.saturating_mul(SPREAD))
}

/// The index: `slots[k - base]` for key `k`.
#[derive(Clone, Debug, Default)]
pub(super) struct Direct {
    base: Sym,
    slots: Vec<u32>,
    /// Keys with more than one row.
    groups: Vec<Bucket>,
    /// Unused entries of `groups`.
    free: Vec<u32>,
    /// Rows in the index.
    rows: usize,
}

/// What a slot holds.
pub(super) enum Hit<'a> {
    One(RowId),
    Many(&'a Bucket),
}

impl Direct {
    /// An empty index whose slots cover `lo..=hi`.
    pub(super) fn with_range(lo: Sym, hi: Sym) -> Self {
        let n = (hi - lo) as usize + 1;
        Direct { base: lo, slots: vec![NONE; n], ..Default::default() }
    }

    #[inline]
    fn slot(&self, key: Sym) -> u32 {
        self.slots.get(key.wrapping_sub(self.base) as usize).copied().unwrap_or(NONE)
    }

    /// The rows with `key`.
    #[inline]
    pub(super) fn get(&self, key: Sym) -> Option<Hit<'_>> {
        self.hit(self.slot(key))
    }

    #[inline]
    fn hit(&self, s: u32) -> Option<Hit<'_>> {
        if s == NONE {
            None
        } else if s & GROUP == 0 {
            Some(Hit::One(s))
        } else {
            Some(Hit::Many(&self.groups[(s & !GROUP) as usize]))
        }
    }

    /// [`Direct::get`] for every key of a batch: `f(k, row)` for each row matching
    /// `keys[k]`. The slots are read in one pass (independent loads that overlap), then
    /// the rows are handed out.
    pub(super) fn get_batch(&self, keys: &[Sym], mut f: impl FnMut(usize, RowId)) {
        let hits: Vec<(usize, u32)> =
            keys.iter().enumerate().map(|(k, &key)| (k, self.slot(key))).filter(|&(_, s)| s != NONE).collect();
        for (k, s) in hits {
            match self.hit(s) {
                Some(Hit::One(id)) => f(k, id),
                Some(Hit::Many(b)) => b.iter().for_each(|id| f(k, id)),
                None => {}
            }
        }
    }

    /// Add row `id` with `key`. False (and nothing changed) when the key lies so far
    /// outside the range that the slots would no longer fit: the caller then switches
    /// to a hash index.
    pub(super) fn insert(&mut self, key: Sym, id: RowId) -> bool {
        if id >= GROUP {
            return false;
        }
        if self.slots.is_empty() {
            self.base = key;
        }
        if !self.cover(key) {
            return false;
        }
        let off = (key - self.base) as usize;
        let s = self.slots[off];
        if s == NONE {
            self.slots[off] = id;
        } else if s & GROUP == 0 {
            let mut b = Bucket::new(s);
            b.push(id);
            let g = match self.free.pop() {
                Some(g) => {
                    self.groups[g as usize] = b;
                    g
                }
                None => {
                    self.groups.push(b);
                    (self.groups.len() - 1) as u32
                }
            };
            self.slots[off] = GROUP | g;
        } else {
            self.groups[(s & !GROUP) as usize].push(id);
        }
        self.rows += 1;
        true
    }

    /// Widen the slots to cover `key`, if the range still fits. Grows by at least half
    /// again so that keys arriving in order cost amortised O(1).
    fn cover(&mut self, key: Sym) -> bool {
        let len = self.slots.len();
        let rows = self.rows + 1;
        if key >= self.base {
            let need = (key - self.base) as usize + 1;
            if need <= len {
                return true;
            }
            if !fits(need, rows) {
                return false;
            }
            let want = need.max(len + len / 2).min(SMALL.max(rows * SPREAD)).max(need);
            self.slots.resize(want, NONE);
        } else {
            let short = (self.base - key) as usize;
            if !fits(len + short, rows) {
                return false;
            }
            // Room below as well, bounded by the range allowed and by symbol zero.
            let extra = (len / 2).min(SMALL.max(rows * SPREAD) - (len + short)).min(key as usize);
            let pad = short + extra;
            let mut slots = vec![NONE; pad + len];
            slots[pad..].copy_from_slice(&self.slots);
            self.slots = slots;
            self.base = key - extra as Sym;
        }
        true
    }

    /// Remove row `id`, stored with `key`.
    pub(super) fn remove(&mut self, key: Sym, id: RowId) {
        let off = key.wrapping_sub(self.base) as usize;
        let Some(&s) = self.slots.get(off) else { return };
        if s == id {
            self.slots[off] = NONE;
            self.rows -= 1;
        } else if s != NONE && s & GROUP != 0 {
            let g = s & !GROUP;
            let b = &mut self.groups[g as usize];
            let before = b.len();
            let empty = b.remove(id);
            if empty || b.is_single() {
                self.slots[off] = if empty { NONE } else { b.first() };
                *b = Bucket::new(0);
                self.free.push(g);
            }
            if empty || b.len() < before {
                self.rows -= 1;
            }
        }
    }

    /// Every row in the index.
    pub(super) fn ids(&self) -> impl Iterator<Item = RowId> + '_ {
        self.slots.iter().filter(|&&s| s != NONE).flat_map(move |&s| {
            let (one, many) = match self.hit(s) {
                Some(Hit::One(id)) => (Some(id), None),
                Some(Hit::Many(b)) => (None, Some(b.iter())),
                None => (None, None),
            };
            one.into_iter().chain(many.into_iter().flatten())
        })
    }

    /// Rows in the index.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// Forget every row (the relation emptied): the next key starts a new range.
    pub(super) fn clear(&mut self) {
        *self = Direct::default();
    }

    /// Heap bytes held (capacities).
    pub(super) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.free.capacity() * 4
            + self.groups.capacity() * std::mem::size_of::<Bucket>()
            + self.groups.iter().map(Bucket::heap_bytes).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn rows_of(d: &Direct, key: Sym) -> BTreeSet<RowId> {
        let mut out = BTreeSet::new();
        d.get_batch(&[key], |_, id| {
            out.insert(id);
        });
        out
    }

    /// Inserts and removes in a pseudo-random order, keys below and above the first
    /// one, some keys with many rows: every key's rows match a `BTreeMap`'s.
    #[test]
    fn follows_a_model_through_churn() {
        let mut d = Direct::default();
        let mut model: BTreeMap<Sym, BTreeSet<RowId>> = BTreeMap::new();
        let mut x: u64 = 7;
        let mut next = |m: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let mut live: Vec<(Sym, RowId)> = Vec::new();
        for id in 0..5000u32 {
            // Keys 1000..1400, a fifth of rows on key 1200 (a status-like column).
            let key = if next(5) == 0 { 1200 } else { 1000 + next(400) as Sym };
            assert!(d.insert(key, id));
            model.entry(key).or_default().insert(id);
            live.push((key, id));
            if next(3) == 0 {
                let (k, r) = live.swap_remove(next(live.len() as u64) as usize);
                d.remove(k, r);
                model.get_mut(&k).map(|s| s.remove(&r));
            }
        }
        assert_eq!(d.rows(), live.len());
        for k in 990..1410 {
            assert_eq!(rows_of(&d, k), model.get(&k).cloned().unwrap_or_default(), "key {k}");
        }
        let all: BTreeSet<RowId> = d.ids().collect();
        assert_eq!(all, live.iter().map(|&(_, r)| r).collect());
    }

    #[test]
    fn a_key_too_far_out_is_refused_and_changes_nothing() {
        let mut d = Direct::default();
        for id in 0..10u32 {
            assert!(d.insert(50_000 + id, id));
        }
        assert!(!d.insert(50_000 + 1_000_000, 10));
        assert!(!d.insert(3, 10));
        assert_eq!(d.rows(), 10);
        assert_eq!(rows_of(&d, 50_003), BTreeSet::from([3]));
        // Below the base, within the range allowed.
        assert!(d.insert(49_000, 11));
        assert_eq!(rows_of(&d, 49_000), BTreeSet::from([11]));
        assert_eq!(rows_of(&d, 50_009), BTreeSet::from([9]));
    }

    #[test]
    fn symbols_near_the_top_and_bottom_work() {
        let mut d = Direct::default();
        assert!(d.insert(u32::MAX - 1, 0));
        assert!(d.insert(u32::MAX - 3, 1));
        assert_eq!(rows_of(&d, u32::MAX - 1), BTreeSet::from([0]));
        assert!(rows_of(&d, u32::MAX).is_empty());
        let mut d = Direct::default();
        assert!(d.insert(2, 0));
        assert!(d.insert(0, 1));
        assert_eq!(rows_of(&d, 0), BTreeSet::from([1]));
        assert!(!d.insert(0, GROUP), "row ids with the group bit are refused");
    }
}
