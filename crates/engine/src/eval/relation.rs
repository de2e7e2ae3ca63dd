//! Row storage for one table: a flat arena of interned rows with a derivation count per
//! row, a hash set for membership and indexes on column subsets built on demand (hash
//! indexes, or direct ones for a column of densely numbered keys: `direct.rs`).
//!
//! Written by hand rather than with `HashMap<Vec<Sym>, _>` because a row is then a slice of
//! one shared arena (no allocation per row, a few machine words per fact) and indexes
//! hold row ids instead of copies of rows: this is what keeps a stored fact under the
//! memory target.

use super::counts::Counts;
use super::direct::{self, Direct, Hit};
use crate::intern::Sym;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hasher};

/// A row's slot in its relation; stable while the row lives.
pub type RowId = u32;

/// Bit of a row's count meaning "asserted as a fact" (explicit), as opposed to derived.
pub const EXPLICIT: u32 = 1 << 31;

/// Rows sharing one key. Most keys have one row, so the first is inline and only
/// further rows go to the heap (16 bytes per key instead of a `Vec` and its allocation);
/// a key with many rows (a status column) keeps them in a set so removing one stays
/// O(1).
///
/// The key's hash is kept beside the first row (in what would be padding) so that growing
/// the index moves buckets without reading a single row.
#[derive(Clone, Debug)]
pub(super) struct Bucket {
    first: RowId,
    hash: u32,
    rest: Option<Box<Rest>>,
}

#[derive(Clone, Debug)]
enum Rest {
    Few(Vec<RowId>),
    Many(hashbrown::HashSet<RowId, FixedState>),
}

/// Past this many extra rows a bucket switches to a set.
const FEW: usize = 16;

impl Bucket {
    /// A bucket of one row (its hash unset: a [`super::direct::Direct`] group has none).
    pub(super) fn new(first: RowId) -> Self {
        Bucket { first, hash: 0, rest: None }
    }

    pub(super) fn first(&self) -> RowId {
        self.first
    }

    pub(super) fn len(&self) -> usize {
        1 + match self.rest.as_deref() {
            Some(Rest::Few(v)) => v.len(),
            Some(Rest::Many(m)) => m.len(),
            None => 0,
        }
    }

    pub(super) fn is_single(&self) -> bool {
        self.rest.is_none()
    }

    /// Heap bytes of the rows past the first.
    pub(super) fn heap_bytes(&self) -> usize {
        match self.rest.as_deref() {
            Some(Rest::Few(v)) => 32 + v.capacity() * 4,
            Some(Rest::Many(m)) => 32 + m.capacity() * 5,
            None => 0,
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = RowId> + '_ {
        let (few, many) = match self.rest.as_deref() {
            Some(Rest::Few(v)) => (Some(v.iter().copied()), None),
            Some(Rest::Many(m)) => (None, Some(m.iter().copied())),
            None => (None, None),
        };
        std::iter::once(self.first).chain(few.into_iter().flatten()).chain(many.into_iter().flatten())
    }

    pub(super) fn push(&mut self, id: RowId) {
        let rest = self.rest.get_or_insert_with(|| Box::new(Rest::Few(Vec::new())));
        match rest.as_mut() {
            Rest::Few(v) if v.len() < FEW => v.push(id),
            Rest::Few(v) => {
                let mut m: hashbrown::HashSet<RowId, FixedState> = v.drain(..).collect();
                m.insert(id);
                **rest = Rest::Many(m);
            }
            Rest::Many(m) => {
                m.insert(id);
            }
        }
    }

    /// Remove `id`; true when the bucket is now empty.
    pub(super) fn remove(&mut self, id: RowId) -> bool {
        let Some(rest) = self.rest.as_deref_mut() else {
            return self.first == id;
        };
        if self.first == id {
            let next = match rest {
                Rest::Few(v) => v.pop(),
                Rest::Many(m) => {
                    let any = m.iter().next().copied();
                    if let Some(a) = any {
                        m.remove(&a);
                    }
                    any
                }
            };
            if let Some(n) = next {
                self.first = n;
            }
        } else {
            match rest {
                Rest::Few(v) => {
                    if let Some(p) = v.iter().position(|&x| x == id) {
                        v.swap_remove(p);
                    }
                }
                Rest::Many(m) => {
                    m.remove(&id);
                }
            }
        }
        let empty = match self.rest.as_deref() {
            Some(Rest::Few(v)) => v.is_empty(),
            Some(Rest::Many(m)) => m.is_empty(),
            None => true,
        };
        if empty {
            self.rest = None;
        }
        false
    }
}

/// Heap bytes of a relation, by part ([`Relation::heap_bytes`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapBytes {
    /// Row arena and counts.
    pub rows: usize,
    /// Membership set.
    pub sets: usize,
    /// Indexes, buckets with their overflow rows.
    pub indexes: usize,
}

/// An index on some columns: key -> rows with that key.
#[derive(Clone, Debug)]
struct Index {
    cols: Vec<usize>,
    map: KeyMap,
}

/// How an index finds a key's rows.
#[derive(Clone, Debug)]
enum KeyMap {
    /// Any key: a hash table of buckets.
    Hash(HashTable<Bucket>),
    /// One column whose symbols lie in a narrow range: a slot per symbol.
    Direct(Direct),
}

/// One table's rows. A large program has many tables that stay empty or unindexed, so
/// what only some tables need (free slots, indexes) is allocated on first use.
#[derive(Clone, Debug)]
pub struct Relation {
    arity: usize,
    data: Vec<Sym>,
    counts: Counts,
    set: HashTable<RowId>,
    cold: Option<Box<Cold>>,
    len: usize,
}

/// The parts of a relation that only some tables need.
#[derive(Clone, Debug, Default)]
struct Cold {
    free: Vec<RowId>,
    indexes: Vec<Index>,
}

/// An index is built in `2^REGION_BITS` regions of its table (see
/// [`Relation::ensure_index`]).
const REGION_BITS: u32 = 6;

/// Symbols in a relation's rows past which a direct index's lookups read the matching
/// rows in a pass of their own before handing them out (1 MiB: rows that fit in the
/// core's cache gain nothing from it and pay the extra pass; workload c's edges).
const TOUCH_ROWS_PAST: usize = 1 << 18;

/// Rows looked up together by [`Relation::find_batch`] before any is inserted or removed
/// (explicit facts and derived rows alike): their cache misses overlap.
pub(super) const LOOKUP_CHUNK: usize = 512;

/// Every relation hashes with the same fixed seed.
pub(super) const HASHER: FixedState = FixedState::with_seed(0x5eed);

fn hash_cols(hasher: &FixedState, row: &[Sym], cols: &[usize]) -> u64 {
    let mut h = hasher.build_hasher();
    for &c in cols {
        h.write_u32(row[c]);
    }
    short(h.finish())
}

/// An index's hashes are 32 bits (stored in each [`Bucket`]) spread over the 64 the
/// table wants: its low bits pick the slot and its top 7 bits are the control tag.
#[inline]
fn short(h: u64) -> u64 {
    let h = h as u32 as u64;
    h | (h << 32)
}

/// The buckets of a hashbrown table that holds `capacity` entries (a power of two, at
/// most seven eighths full; none when empty).
pub(crate) fn buckets(capacity: usize) -> usize {
    if capacity == 0 { 0 } else { (capacity * 8 / 7).next_power_of_two() }
}

/// Row `i` of a flat array of rows of `arity` symbols each.
#[inline]
fn nth(rows: &[Sym], arity: usize, i: usize) -> &[Sym] {
    &rows[i * arity..i * arity + arity]
}

/// Row equality without a `memcmp` call for the short rows that dominate.
#[inline]
fn row_eq(a: &[Sym], b: &[Sym]) -> bool {
    match (a, b) {
        ([a0], [b0]) => a0 == b0,
        ([a0, a1], [b0, b1]) => a0 == b0 && a1 == b1,
        ([a0, a1, a2], [b0, b1, b2]) => a0 == b0 && a1 == b1 && a2 == b2,
        _ => a == b,
    }
}

fn hash_key(hasher: &FixedState, key: &[Sym]) -> u64 {
    let mut h = hasher.build_hasher();
    for &k in key {
        h.write_u32(k);
    }
    h.finish()
}

impl Relation {
    pub fn new(arity: usize) -> Self {
        Relation { arity, data: Vec::new(), counts: Counts::default(), set: HashTable::new(), cold: None, len: 0 }
    }

    fn indexes(&self) -> &[Index] {
        self.cold.as_deref().map_or(&[], |c| &c.indexes)
    }

    pub fn arity(&self) -> usize {
        self.arity
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Make room for `n` more rows.
    pub fn reserve(&mut self, n: usize) {
        self.data.reserve(n * self.arity);
        self.counts.reserve(n);
        self.grow_set(n);
    }

    /// Make room in the membership set for `n` more rows. The set holds row ids only, so
    /// hashbrown's own growth would re-read every stored row in table order (one cache
    /// miss per row); instead a new set is built reading the rows in slot order.
    fn grow_set(&mut self, n: usize) {
        let have = self.set.capacity() - self.set.len();
        if n <= have {
            return;
        }
        let want = (self.len + n).max(self.set.capacity() * 2);
        let mut set = HashTable::with_capacity(want);
        let (data, arity) = (&self.data, self.arity);
        for id in 0..self.counts.len() {
            if self.counts.get(id) != 0 {
                let h = hash_key(&HASHER, nth(data, arity, id));
                // Never called: the set is sized above.
                set.insert_unique(h, id as RowId, |&r| hash_key(&HASHER, nth(data, arity, r as usize)));
            }
        }
        self.set = set;
    }

    /// The row stored in a slot.
    pub fn row(&self, id: RowId) -> &[Sym] {
        nth(&self.data, self.arity, id as usize)
    }

    /// The count of a slot (0 for a free slot).
    pub fn count(&self, id: RowId) -> u32 {
        self.counts.get(id as usize)
    }

    /// The slot holding `row`, if present.
    pub fn find(&self, row: &[Sym]) -> Option<RowId> {
        if row.len() != self.arity {
            return None;
        }
        let h = hash_key(&HASHER, row);
        let (data, arity) = (&self.data, self.arity);
        self.set.find(h, |&id| row_eq(nth(data, arity, id as usize), row)).copied()
    }

    pub fn contains(&self, row: &[Sym]) -> bool {
        self.find(row).is_some()
    }

    /// The slot of `row`, inserting it with `count` when absent (one hash for both).
    /// Returns the slot and whether it was inserted.
    pub fn find_or_insert(&mut self, row: &[Sym], count: u32) -> (RowId, bool) {
        self.find_or_insert_hashed(row, count, hash_key(&HASHER, row))
    }

    /// [`Relation::find_or_insert`] with the row's hash already computed (by
    /// [`Relation::find_batch`]).
    pub fn find_or_insert_hashed(&mut self, row: &[Sym], count: u32, h: u64) -> (RowId, bool) {
        let (data, arity) = (&self.data, self.arity);
        if let Some(&id) = self.set.find(h, |&id| row_eq(nth(data, arity, id as usize), row)) {
            return (id, false);
        }
        (self.insert_hashed(row, count, h), true)
    }

    /// Find or insert (with count 1) every row of `rows` (`arity` symbols each), calling
    /// `f(self, row, slot, inserted)` for each in order. In chunks: every row of a chunk is
    /// looked up first ([`Relation::find_batch`]: staged, the misses overlap), then the
    /// absent ones are inserted while their slots of the set are still in cache.
    pub fn find_or_insert_each(
        &mut self,
        rows: &[Sym],
        n: usize,
        mut f: impl FnMut(&mut Relation, &[Sym], RowId, bool),
    ) {
        let arity = self.arity;
        let (mut hashes, mut found) = (Vec::with_capacity(LOOKUP_CHUNK), Vec::with_capacity(LOOKUP_CHUNK));
        for start in (0..n).step_by(LOOKUP_CHUNK) {
            let m = LOOKUP_CHUNK.min(n - start);
            let chunk = &rows[start * arity..(start + m) * arity];
            self.find_batch(chunk, m, &mut hashes, &mut found);
            for k in 0..m {
                let row = nth(chunk, arity, k);
                let (id, inserted) = match found[k] {
                    Some(id) => (id, false),
                    // Looked up again: an earlier row of this chunk may be the same row.
                    None => self.find_or_insert_hashed(row, 1, hashes[k]),
                };
                f(self, row, id, inserted);
            }
        }
    }

    /// [`Relation::find`] for a batch of rows (`rows`: `arity` symbols each, `n` rows),
    /// in stages over the batch as [`Relation::lookup_batch`] does so that the cache
    /// misses of different rows overlap: `hashes[k]` gets row `k`'s hash (for
    /// [`Relation::find_or_insert_hashed`]) and `out[k]` its slot if present.
    pub fn find_batch(&self, rows: &[Sym], n: usize, hashes: &mut Vec<u64>, out: &mut Vec<Option<RowId>>) {
        let arity = self.arity;
        debug_assert_eq!(rows.len(), n * arity);
        hashes.clear();
        hashes.extend((0..n).map(|k| hash_key(&HASHER, nth(rows, arity, k))));
        out.clear();
        out.resize(n, None);
        let mut cands: Vec<(usize, RowId)> = Vec::with_capacity(n);
        for (k, &h) in hashes.iter().enumerate() {
            cands.extend(self.set.iter_hash(h).map(|&id| (k, id)));
        }
        let data = &self.data;
        for (k, id) in cands {
            if row_eq(nth(data, arity, id as usize), nth(rows, arity, k)) {
                out[k] = Some(id);
            }
        }
    }

    /// Append rows (`arity` symbols each) known to be distinct and absent, each with
    /// count `count` (nonzero): no lookups. An empty relation gets a set sized for
    /// exactly these rows, dropping a bigger one that earlier contents left.
    pub fn extend_new(&mut self, rows: &[Sym], count: u32) {
        debug_assert!(count != 0 && rows.len().is_multiple_of(self.arity.max(1)));
        let n = rows.len() / self.arity.max(1);
        if self.len == 0 {
            // Free slots of removed rows go too.
            self.clear();
            self.set = HashTable::with_capacity(n);
        } else {
            self.grow_set(n);
        }
        let first = self.counts.len();
        self.data.extend_from_slice(rows);
        self.counts.extend(n, count);
        let (data, arity, hasher) = (&self.data, self.arity, &HASHER);
        for id in first..first + n {
            let h = hash_key(hasher, nth(data, arity, id));
            // Never called: the set is sized above.
            self.set.insert_unique(h, id as RowId, |&r| hash_key(hasher, nth(data, arity, r as usize)));
            for ix in self.cold.iter_mut().flat_map(|c| c.indexes.iter_mut()) {
                index_add(ix, hasher, data, arity, id as RowId);
            }
        }
        self.len += n;
    }

    /// Insert a row known to be absent, with a nonzero count (tests build relations so).
    #[cfg(test)]
    pub fn insert_new(&mut self, row: &[Sym], count: u32) -> RowId {
        let h = hash_key(&HASHER, row);
        self.insert_hashed(row, count, h)
    }

    fn insert_hashed(&mut self, row: &[Sym], count: u32, h: u64) -> RowId {
        debug_assert!(count != 0 && row.len() == self.arity);
        if self.set.len() == self.set.capacity() {
            // Before the row is stored: `grow_set` rebuilds from the live rows.
            self.grow_set(1);
        }
        let id = match self.cold.as_mut().and_then(|c| c.free.pop()) {
            Some(id) => {
                let s = id as usize * self.arity;
                self.data[s..s + self.arity].copy_from_slice(row);
                self.counts.set(id as usize, count);
                id
            }
            None => {
                let id = self.counts.len() as RowId;
                self.data.extend_from_slice(row);
                self.counts.push(count);
                id
            }
        };
        let (data, arity, hasher) = (&self.data, self.arity, &HASHER);
        // Called only when removals left tombstones that take the room `grow_set` saw:
        // hashbrown then rehashes in place, reading rows.
        self.set.insert_unique(h, id, |&r| hash_key(hasher, nth(data, arity, r as usize)));
        for ix in self.cold.iter_mut().flat_map(|c| c.indexes.iter_mut()) {
            index_add(ix, hasher, data, arity, id);
        }
        self.len += 1;
        id
    }

    /// Set a live row's count; a count of zero removes the row.
    pub fn set_count(&mut self, id: RowId, count: u32) {
        if count == 0 {
            self.remove(id);
        } else {
            self.counts.set(id as usize, count);
        }
    }

    /// Remove a live row.
    pub fn remove(&mut self, id: RowId) {
        let (data, arity, hasher) = (&self.data, self.arity, &HASHER);
        let row = nth(data, arity, id as usize);
        let h = hash_key(hasher, row);
        if let Ok(e) = self.set.find_entry(h, |&r| r == id) {
            e.remove();
        }
        for ix in self.cold.iter_mut().flat_map(|c| c.indexes.iter_mut()) {
            let cols = &ix.cols;
            match &mut ix.map {
                KeyMap::Direct(d) => d.remove(row[cols[0]], id),
                KeyMap::Hash(table) => {
                    let kh = hash_cols(hasher, row, cols);
                    let same_key = |b: &Bucket| {
                        let other = nth(data, arity, b.first as usize);
                        cols.iter().all(|&c| other[c] == row[c])
                    };
                    if let Ok(mut e) = table.find_entry(kh, same_key)
                        && e.get_mut().remove(id)
                    {
                        e.remove();
                    }
                }
            }
        }
        self.counts.set(id as usize, 0);
        self.cold.get_or_insert_with(Default::default).free.push(id);
        self.len -= 1;
        if self.len == 0 {
            self.clear();
        }
    }

    /// Remove every row (indexes stay, emptied). New rows get dense, ordered slots again.
    pub fn clear(&mut self) {
        self.data.clear();
        self.counts.clear();
        if let Some(c) = self.cold.as_mut() {
            c.free.clear();
        }
        self.set.clear();
        for ix in self.cold.iter_mut().flat_map(|c| c.indexes.iter_mut()) {
            match &mut ix.map {
                KeyMap::Hash(table) => table.clear(),
                KeyMap::Direct(d) => d.clear(),
            }
        }
        self.len = 0;
    }

    /// The index on exactly these columns (sorted, nonempty), built now if missing: a
    /// direct index when it has one column whose symbols lie in a narrow range
    /// ([`direct::fits`]), else a hash index.
    pub fn ensure_index(&mut self, cols: &[usize]) -> usize {
        if let Some(p) = self.indexes().iter().position(|ix| ix.cols == cols) {
            return p;
        }
        let (data, arity) = (&self.data, self.arity);
        let live = || (0..self.counts.len()).filter(|&id| self.counts.get(id) != 0).map(|id| id as RowId);
        let range = match cols {
            [c] => live()
                .map(|id| data[id as usize * arity + c])
                .fold(None, |r: Option<(Sym, Sym)>, k| Some(r.map_or((k, k), |(lo, hi)| (lo.min(k), hi.max(k))))),
            _ => None,
        };
        let map = match (cols, range) {
            ([_], None) => KeyMap::Direct(Direct::default()),
            ([c], Some((lo, hi))) if direct::fits((hi - lo) as usize + 1, self.len) => {
                let mut d = Direct::with_range(lo, hi);
                for id in live() {
                    // Within the range just measured: never refused.
                    d.insert(data[id as usize * arity + c], id);
                }
                KeyMap::Direct(d)
            }
            _ => KeyMap::Hash(build_hash(data, arity, cols, live(), self.len)),
        };
        let cold = self.cold.get_or_insert_with(Default::default);
        cold.indexes.push(Index { cols: cols.to_vec(), map });
        cold.indexes.len() - 1
    }

    /// The columns of index `ix`, if it exists.
    #[inline]
    pub fn index_cols(&self, ix: usize) -> Option<&[usize]> {
        self.indexes().get(ix).map(|i| i.cols.as_slice())
    }

    /// The index on these columns, if it exists.
    pub fn index_id(&self, cols: &[usize]) -> Option<usize> {
        self.indexes().iter().position(|ix| ix.cols == cols)
    }

    /// Rows whose indexed columns equal `key` (in the index's column order).
    pub fn lookup(&self, index: usize, key: &[Sym]) -> impl Iterator<Item = RowId> + '_ {
        let ix = &self.indexes()[index];
        let hit = match &ix.map {
            KeyMap::Direct(d) => key.first().and_then(|&k| d.get(k)),
            KeyMap::Hash(table) => {
                let h = short(hash_key(&HASHER, key));
                let (data, arity) = (&self.data, self.arity);
                table
                    .find(h, |b| {
                        let row = nth(data, arity, b.first as usize);
                        ix.cols.iter().zip(key).all(|(&c, &k)| row[c] == k)
                    })
                    .map(Hit::Many)
            }
        };
        let (one, many) = match hit {
            Some(Hit::One(id)) => (Some(id), None),
            Some(Hit::Many(b)) => (None, Some(b)),
            None => (None, None),
        };
        one.into_iter().chain(many.into_iter().flat_map(Bucket::iter))
    }

    /// [`Relation::lookup`] for a batch of keys (`keys`: `width` symbols each, in the
    /// index's column order): calls `f(k, row)` for every row matching key `k`, keys in
    /// order. Done in stages over the whole batch (hash every key, then find every
    /// candidate bucket, then compare every candidate's row, then read the matches) so
    /// that the loads of different keys are independent and overlap, instead of two
    /// dependent cache misses per key one after the other: `unsafe` is forbidden here, so
    /// this is the safe form of a prefetch.
    pub fn lookup_batch(&self, index: usize, keys: &[Sym], width: usize, mut f: impl FnMut(usize, RowId)) {
        let ix = &self.indexes()[index];
        let table = match &ix.map {
            KeyMap::Direct(d) => {
                if self.data.len() < TOUCH_ROWS_PAST {
                    return d.get_batch(keys, f);
                }
                let mut hits: Vec<(usize, RowId)> = Vec::with_capacity(keys.len());
                d.get_batch(keys, |k, id| hits.push((k, id)));
                // Read the first symbol of every matching row before handing any out:
                // independent loads that overlap, so the rows are in cache when `f`
                // reads them (the safe form of a prefetch, as for the hash index's
                // candidate rows below).
                let (data, arity) = (&self.data, self.arity);
                let touched = hits.iter().fold(0, |acc, &(_, id)| acc ^ data[id as usize * arity]);
                std::hint::black_box(touched);
                hits.into_iter().for_each(|(k, id)| f(k, id));
                return;
            }
            KeyMap::Hash(table) => table,
        };
        let n = keys.len().checked_div(width).unwrap_or(0);
        let hashes: Vec<u64> = (0..n).map(|k| short(hash_key(&HASHER, &keys[k * width..k * width + width]))).collect();
        let mut cands: Vec<(usize, &Bucket)> = Vec::with_capacity(n);
        for (k, &h) in hashes.iter().enumerate() {
            cands.extend(table.iter_hash(h).map(|b| (k, b)));
        }
        let (data, arity, cols) = (&self.data, self.arity, &ix.cols);
        cands.retain(|&(k, b)| {
            let row = nth(data, arity, b.first as usize);
            cols.iter().zip(&keys[k * width..k * width + width]).all(|(&c, &kv)| row[c] == kv)
        });
        for (k, b) in cands {
            if b.rest.is_none() {
                f(k, b.first);
            } else {
                b.iter().for_each(|id| f(k, id));
            }
        }
    }

    /// [`Relation::contains`] for a batch of rows (`rows`: `arity` symbols each), in the
    /// same stages as [`Relation::lookup_batch`]; `out[k]` says whether row `k` of the `n`
    /// is present.
    pub fn contains_batch(&self, rows: &[Sym], n: usize, out: &mut Vec<bool>) {
        out.clear();
        if rows.len() != n * self.arity {
            out.resize(n, false);
            return;
        }
        if self.arity == 0 {
            out.resize(n, self.len > 0);
            return;
        }
        let (mut hashes, mut found) = (Vec::new(), Vec::new());
        self.find_batch(rows, n, &mut hashes, &mut found);
        out.extend(found.iter().map(Option::is_some));
    }

    /// Bytes this relation holds on the heap, by part (capacities, not lengths: what
    /// the allocator gave it).
    pub fn heap_bytes(&self) -> HeapBytes {
        // A hashbrown table has one control byte per bucket (plus a group's worth).
        fn table<T>(t: &HashTable<T>) -> usize {
            buckets(t.capacity()) * (std::mem::size_of::<T>() + 1)
        }
        let indexes = self.indexes().iter().map(|ix| match &ix.map {
            KeyMap::Hash(t) => table(t) + t.iter().map(Bucket::heap_bytes).sum::<usize>(),
            KeyMap::Direct(d) => d.heap_bytes(),
        });
        HeapBytes {
            rows: self.data.capacity() * 4 + self.counts.heap_bytes(),
            sets: table(&self.set),
            indexes: indexes.sum(),
        }
    }

    /// Every stored row, in slot order, when every slot holds a live row (no removed
    /// row left a hole; a datasource's table as loaded): a scan then walks the rows as
    /// one array. `None` for a relation with holes, or of arity 0.
    pub fn dense_rows(&self) -> Option<std::slice::ChunksExact<'_, Sym>> {
        let all_live = matches!(self.counts, Counts::Same { value, .. } if value != 0);
        (all_live && self.arity > 0).then(|| self.data[..self.counts.len() * self.arity].chunks_exact(self.arity))
    }

    /// Slots in use or freed: a row inserted now with no freed slot to reuse takes slot
    /// `slots()`.
    pub fn slots(&self) -> usize {
        self.counts.len()
    }

    /// Whether the next rows inserted go to the end, one slot after another (no removed
    /// row left a slot to reuse).
    pub fn appends(&self) -> bool {
        self.cold.as_ref().is_none_or(|c| c.free.is_empty())
    }

    /// The rows of a run of slots, one after another. The caller sees to it that every
    /// slot of the run is live: a freed slot's symbols are stale.
    pub fn slot_rows(&self, slots: std::ops::Range<usize>) -> &[Sym] {
        &self.data[slots.start * self.arity..slots.end * self.arity]
    }

    /// Live rows with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (RowId, &[Sym])> + '_ {
        (0..self.counts.len() as RowId).filter(|&id| self.counts.get(id as usize) != 0).map(|id| (id, self.row(id)))
    }
}

fn index_add(ix: &mut Index, hasher: &FixedState, data: &[Sym], arity: usize, id: RowId) {
    let row = nth(data, arity, id as usize);
    match &mut ix.map {
        KeyMap::Hash(table) => index_add_hashed(table, &ix.cols, data, arity, id, hash_cols(hasher, row, &ix.cols)),
        KeyMap::Direct(d) => {
            if !d.insert(row[ix.cols[0]], id) {
                // The key lies too far out for slots: a hash index from now on.
                let n = d.rows() + 1;
                let table = build_hash(data, arity, &ix.cols, d.ids().chain([id]), n);
                ix.map = KeyMap::Hash(table);
            }
        }
    }
}

/// [`index_add`] to a hash index, with the key's hash (from [`hash_cols`]) already
/// computed.
fn index_add_hashed(table: &mut HashTable<Bucket>, cols: &[usize], data: &[Sym], arity: usize, id: RowId, kh: u64) {
    let row = nth(data, arity, id as usize);
    let same_key = |b: &Bucket| {
        b.hash == kh as u32 && {
            let other = nth(data, arity, b.first as usize);
            cols.iter().all(|&c| other[c] == row[c])
        }
    };
    match table.find_mut(kh, same_key) {
        Some(b) => b.push(id),
        None => {
            table.insert_unique(kh, Bucket { first: id, hash: kh as u32, rest: None }, |b| short(b.hash as u64));
        }
    }
}

/// A hash index on `cols` of the rows `ids` (`n` of them).
///
/// Sized for one key per row so the build never grows the table; shrunk after if the
/// keys are few (moving buckets reads no row: each keeps its hash). Rows are added
/// grouped by the region of the table their key's slot falls in (one counting pass
/// over the keys' hashes), so the inserts sweep the table region by region, each region
/// in cache, instead of one miss per row at random.
fn build_hash(
    data: &[Sym],
    arity: usize,
    cols: &[usize],
    ids: impl Iterator<Item = RowId>,
    n: usize,
) -> HashTable<Bucket> {
    let mut table = HashTable::with_capacity(n);
    let keyed: Vec<(u32, RowId)> =
        ids.map(|id| (hash_cols(&HASHER, nth(data, arity, id as usize), cols) as u32, id)).collect();
    let buckets = buckets(table.capacity()).max(1);
    let shift = buckets.trailing_zeros().saturating_sub(REGION_BITS);
    let region = |h: u32| (h as usize & (buckets - 1)) >> shift;
    let mut starts = vec![0usize; (1 << REGION_BITS) + 1];
    keyed.iter().for_each(|&(h, _)| starts[region(h) + 1] += 1);
    for r in 1..starts.len() {
        starts[r] += starts[r - 1];
    }
    let mut grouped = vec![(0u32, 0 as RowId); keyed.len()];
    for &(h, id) in &keyed {
        let r = region(h);
        grouped[starts[r]] = (h, id);
        starts[r] += 1;
    }
    drop(keyed);
    for (h, id) in grouped {
        index_add_hashed(&mut table, cols, data, arity, id, short(h as u64));
    }
    if table.len() < table.capacity() / 2 {
        table.shrink_to(table.len(), |b| short(b.hash as u64));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_reuses_slots() {
        let mut r = Relation::new(2);
        let a = r.insert_new(&[1, 2], 1);
        let b = r.insert_new(&[1, 3], EXPLICIT);
        assert_eq!(r.len(), 2);
        assert_eq!(r.find(&[1, 3]), Some(b));
        r.remove(a);
        assert!(!r.contains(&[1, 2]));
        let c = r.insert_new(&[4, 4], 2);
        assert_eq!(c, a, "freed slot is reused");
        assert_eq!(r.row(c), &[4, 4]);
        assert_eq!(r.iter().count(), 2);
    }

    #[test]
    fn indexes_follow_inserts_and_removes() {
        let mut r = Relation::new(3);
        for i in 0..100u32 {
            r.insert_new(&[i % 3, i, 7], 1);
        }
        let ix = r.ensure_index(&[0, 2]);
        assert_eq!(r.lookup(ix, &[1, 7]).count(), 33);
        let id = r.find(&[1, 1, 7]).unwrap();
        r.remove(id);
        assert_eq!(r.lookup(ix, &[1, 7]).count(), 32);
        r.insert_new(&[1, 1000, 7], 1);
        assert_eq!(r.lookup(ix, &[1, 7]).count(), 33);
        assert_eq!(r.lookup(ix, &[9, 7]).count(), 0);
    }

    fn is_direct(r: &Relation, ix: usize) -> bool {
        matches!(r.indexes()[ix].map, KeyMap::Direct(_))
    }

    fn rows_with(r: &Relation, ix: usize, key: Sym) -> Vec<Vec<Sym>> {
        let mut rows: Vec<Vec<Sym>> = r.lookup(ix, &[key]).map(|id| r.row(id).to_vec()).collect();
        let mut batch = Vec::new();
        r.lookup_batch(ix, &[key], 1, |_, id| batch.push(r.row(id).to_vec()));
        rows.sort();
        batch.sort();
        assert_eq!(rows, batch, "lookup and lookup_batch agree");
        rows
    }

    /// A one-column index on dense keys is direct; a key far out turns it into a hash
    /// index that still finds every row; an emptied relation starts a direct one afresh.
    #[test]
    fn direct_indexes_turn_into_hash_indexes_when_keys_spread() {
        let mut r = Relation::new(2);
        for i in 0..1000u32 {
            r.insert_new(&[10_000 + i % 300, i], 1);
        }
        let ix = r.ensure_index(&[0]);
        assert!(is_direct(&r, ix));
        let two = r.ensure_index(&[0, 1]);
        assert!(!is_direct(&r, two), "two columns: a hash index");
        assert_eq!(rows_with(&r, ix, 10_007).len(), 4);
        let id = r.find(&[10_007, 307]).unwrap();
        r.remove(id);
        assert_eq!(rows_with(&r, ix, 10_007), vec![vec![10_007, 7], vec![10_007, 607], vec![10_007, 907]]);
        r.insert_new(&[9_000, 5000], 1);
        assert!(is_direct(&r, ix), "below the range but near: still direct");
        assert_eq!(rows_with(&r, ix, 9_000), vec![vec![9_000, 5000]]);
        r.insert_new(&[4_000_000_000, 5001], 1);
        assert!(!is_direct(&r, ix), "a key far out: a hash index");
        assert_eq!(rows_with(&r, ix, 4_000_000_000), vec![vec![4_000_000_000, 5001]]);
        assert_eq!(rows_with(&r, ix, 10_007).len(), 3);
        assert_eq!(rows_with(&r, ix, 9_000).len(), 1);
        assert_eq!((0..400).map(|k| rows_with(&r, ix, 10_000 + k).len()).sum::<usize>(), 999);
        assert!(rows_with(&r, ix, 3).is_empty());

        let mut e = Relation::new(1);
        let ix = e.ensure_index(&[0]);
        assert!(is_direct(&e, ix), "an empty relation's index starts direct");
        let id = e.insert_new(&[77], 1);
        e.insert_new(&[78], 1);
        assert_eq!(rows_with(&e, ix, 77), vec![vec![77]]);
        e.remove(id);
        assert!(rows_with(&e, ix, 77).is_empty());
        assert_eq!(rows_with(&e, ix, 78), vec![vec![78]]);
    }

    /// Past [`TOUCH_ROWS_PAST`] a direct index's batch lookups read the rows in a pass
    /// of their own first: the same rows, keys in order.
    #[test]
    fn big_direct_lookups_hand_out_every_row_in_key_order() {
        let mut r = Relation::new(2);
        let n = (TOUCH_ROWS_PAST / 2 + 1000) as u32;
        for i in 0..n {
            r.insert_new(&[i % 50_000, i], 1);
        }
        let ix = r.ensure_index(&[0]);
        assert!(is_direct(&r, ix));
        let keys: Vec<Sym> = (0..3000u32).map(|k| (k * 7919) % 60_000).collect();
        let mut got = Vec::new();
        r.lookup_batch(ix, &keys, 1, |k, id| got.push((k, r.row(id).to_vec())));
        let mut want = Vec::new();
        for (k, &key) in keys.iter().enumerate() {
            want.extend(r.lookup(ix, &[key]).map(|id| (k, r.row(id).to_vec())));
        }
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "keys in order");
        got.sort();
        want.sort();
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }

    #[test]
    fn counts_add_and_vanish_at_zero() {
        let mut r = Relation::new(1);
        assert_eq!(r.find_or_insert(&[5], 2), (0, true));
        assert_eq!(r.find_or_insert(&[5], 9), (0, false));
        r.set_count(0, 1);
        assert_eq!(r.count(0), 1);
        r.set_count(0, 0);
        assert!(r.is_empty());
    }

    #[test]
    fn churn_with_tombstones_keeps_the_set_consistent() {
        // Removing from a full group leaves a tombstone that does not give back room, so
        // an insert may have to rehash the set in place with the relation's own hasher.
        let mut r = Relation::new(2);
        for i in 0..1000u32 {
            r.insert_new(&[i, 0], 1);
        }
        for round in 1..200u32 {
            let ids: Vec<RowId> =
                (0..500u32).map(|i| r.find(&[i * 2 + round % 2, round - 1]).unwrap_or(RowId::MAX)).collect();
            for id in ids.into_iter().filter(|&id| id != RowId::MAX) {
                r.remove(id);
            }
            for i in 0..500u32 {
                let row = [i * 2 + (round + 1) % 2, round];
                r.find_or_insert(&row, 1);
            }
            assert!(r.len() >= 500);
        }
        assert_eq!(r.iter().filter(|(_, row)| r.contains(row)).count(), r.len());
    }

    #[test]
    fn zero_arity_rows_work() {
        let mut r = Relation::new(0);
        assert!(!r.contains(&[]));
        r.insert_new(&[], 1);
        assert!(r.contains(&[]));
        assert_eq!(r.iter().count(), 1);
    }
}
