//! The symbol table: every value stored in a table is interned once and referred to by a
//! 32-bit [`Sym`], so rows are small arrays of integers and joins compare integers.
//!
//! Strings live in one append-only arena, each behind a one-byte length, in the order of
//! their symbols. Only every [`STRIDE`]th symbol's place in the arena is kept; the others
//! are found by stepping over at most `STRIDE - 1` neighbours, which sit in the same few
//! cache lines. The hash table stores only symbols (hashing through the arena). So a
//! distinct string costs its bytes plus about 6 (its length, half a mark, a slot of the
//! table), against 60 or more for an `Arc<str>` per value in a `HashMap`: this is most of
//! what keeps a stored fact under the memory target. Symbols are never freed while the
//! engine lives (as in Souffle's symbol table); the cost is bounded by the number of
//! distinct values ever seen.

use crate::value::Value;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hash, Hasher};

/// An interned value.
pub type Sym = u32;

/// Symbols with this bit set are small integers stored in the symbol itself (no table
/// entry, no memory access to read them back): ids, ports and counts in policies are
/// mostly such integers, and comparing them then costs nothing.
const INLINE: u32 = 1 << 31;
/// Offset that maps the inline range `[-2^30, 2^30)` onto `[0, 2^31)`.
const INLINE_BIAS: i64 = 1 << 30;

/// The integer a symbol holds in itself, if it is one of those (no interner needed).
#[inline]
pub(crate) fn inline_value(s: Sym) -> Option<i64> {
    (s & INLINE != 0).then(|| (s & !INLINE) as i64 - INLINE_BIAS)
}

fn inline_int(i: i64) -> Option<Sym> {
    let biased = i.checked_add(INLINE_BIAS)?;
    (0..(1i64 << 31)).contains(&biased).then_some(INLINE | biased as u32)
}

/// Prefix of the reserved strings that stand for unbound variables in the answers of
/// `action` policies (whose heads need not be safe). Real data never starts with NUL.
const VAR_MARK: &str = "\u{0}var:";

/// One symbol in this many has its place in the arena written down (in
/// [`Interner::marks`]). A place costs 4 bytes; with about two distinct strings per fact
/// in a cloud's tables, one per symbol was 7 bytes a fact of C 100k, and one in 8 is
/// under 1, for a walk over 3.5 short strings on average when a value is read back.
const STRIDE: usize = 8;

/// Arena bytes that strings may fill; past this, a string is kept in [`Other::Big`] and
/// the arena takes only its 2-byte [`OTHER_MARK`], for which the rest is reserved. Marks
/// are `u32`: the arena never grows past `u32::MAX`. (Small under test, so that the
/// tests reach it.)
#[cfg(not(test))]
const STRINGS_MAX: usize = 3 << 30;
#[cfg(test)]
const STRINGS_MAX: usize = 1 << 16;

/// The entry of a value the arena does not hold: a header [`push_len`] never writes (a
/// continuation byte of group 0 followed by a last group of 0).
const OTHER_MARK: [u8; 2] = [0x40, 0x00];

/// Values the arena does not hold: found by symbol in [`Interner::other`].
#[derive(Clone, Debug)]
enum Other {
    /// A string interned once the arena is full.
    Big(Box<str>),
    /// An integer outside the inline range.
    Int(i64),
    /// A float, by bits.
    Float(u64),
}

/// Append `len` to the arena in 6-bit groups, least significant first, bit 6 set on every
/// group but the last: every byte is ASCII, so the arena stays a `String` and string
/// slices of it stay on character boundaries. One byte for strings under 64 bytes.
fn push_len(arena: &mut String, mut len: usize) {
    while len >= 0x40 {
        arena.push(char::from(0x40 | (len & 0x3f) as u8));
        len >>= 6;
    }
    arena.push(char::from(len as u8));
}

/// What starts at `at` in the arena: `Some((start, len))` of a string's bytes, or `None`
/// for an [`OTHER_MARK`] (which is 2 bytes long).
fn read_header(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    if bytes.get(at..at + OTHER_MARK.len()) == Some(&OTHER_MARK[..]) {
        return None;
    }
    let (mut len, mut shift, mut p) = (0usize, 0u32, at);
    loop {
        let b = bytes[p];
        p += 1;
        len |= ((b & 0x3f) as usize) << shift;
        if b & 0x40 == 0 {
            return Some((p, len));
        }
        shift += 6;
    }
}

/// Where the entry after the one at `at` starts.
fn next_entry(bytes: &[u8], at: usize) -> usize {
    match read_header(bytes, at) {
        Some((start, len)) => start + len,
        None => at + OTHER_MARK.len(),
    }
}

/// A borrowed view of an interned value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
}

impl ValueRef<'_> {
    fn of(v: &Value) -> ValueRef<'_> {
        match v {
            Value::Str(s) => ValueRef::Str(s),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(f) => ValueRef::Float(*f),
        }
    }

    /// Same identity as [`Value`]'s `Eq`: type and content, floats by bits.
    fn same(self, other: ValueRef<'_>) -> bool {
        match (self, other) {
            (ValueRef::Str(a), ValueRef::Str(b)) => a == b,
            (ValueRef::Int(a), ValueRef::Int(b)) => a == b,
            (ValueRef::Float(a), ValueRef::Float(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }

    fn hash_with(self, hasher: &FixedState) -> u64 {
        let mut h = hasher.build_hasher();
        match self {
            ValueRef::Str(s) => {
                0u8.hash(&mut h);
                s.hash(&mut h);
            }
            ValueRef::Int(i) => {
                1u8.hash(&mut h);
                i.hash(&mut h);
            }
            ValueRef::Float(f) => {
                2u8.hash(&mut h);
                f.to_bits().hash(&mut h);
            }
        }
        h.finish()
    }

    /// An owned value.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::str(s),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
        }
    }
}

/// Interns values to symbols and back.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    /// The arena offset of symbols 0, [`STRIDE`], 2 × `STRIDE`, ...
    marks: Vec<u32>,
    /// Every symbol's entry, in symbol order: a string's header and bytes, or an
    /// [`OTHER_MARK`].
    arena: String,
    /// Values behind an [`OTHER_MARK`], by symbol (ascending: symbols are given in order).
    other: Vec<(Sym, Other)>,
    /// Number of symbols given.
    len: u32,
    map: HashTable<Sym>,
    hasher: FixedState,
}

impl Interner {
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, s: Sym) -> ValueRef<'_> {
        if let Some(i) = inline_value(s) {
            return ValueRef::Int(i);
        }
        let bytes = self.arena.as_bytes();
        let mut at = self.marks[s as usize / STRIDE] as usize;
        for _ in 0..s as usize % STRIDE {
            at = next_entry(bytes, at);
        }
        if let Some((start, len)) = read_header(bytes, at) {
            return ValueRef::Str(&self.arena[start..start + len]);
        }
        match self.other.binary_search_by_key(&s, |(k, _)| *k).map(|i| &self.other[i].1) {
            Ok(Other::Big(b)) => ValueRef::Str(b),
            Ok(Other::Int(i)) => ValueRef::Int(*i),
            Ok(Other::Float(b)) => ValueRef::Float(f64::from_bits(*b)),
            // Every mark has its value: `intern` pushes both.
            Err(_) => ValueRef::Str(""),
        }
    }

    /// The symbol for `v`, creating it if new.
    pub fn intern(&mut self, v: &Value) -> Sym {
        if let Value::Int(i) = v
            && let Some(s) = inline_int(*i)
        {
            return s;
        }
        let r = ValueRef::of(v);
        let h = r.hash_with(&self.hasher);
        if let Some(&s) = self.map.find(h, |&s| self.get(s).same(r)) {
            return s;
        }
        // Table symbols stay below INLINE; past 2^31 distinct values the engine is far
        // beyond any memory this runs in.
        let next = self.len.min(INLINE - 1);
        if (next as usize).is_multiple_of(STRIDE) {
            // The arena stays under u32::MAX: strings stop at STRINGS_MAX, and the rest
            // holds a billion 2-byte marks.
            self.marks.push(u32::try_from(self.arena.len()).unwrap_or(u32::MAX));
        }
        let other = match r {
            // The header is at most 6 bytes (lengths below 2^36).
            ValueRef::Str(t) if self.arena.len() + t.len() + 6 <= STRINGS_MAX => {
                push_len(&mut self.arena, t.len());
                self.arena.push_str(t);
                None
            }
            ValueRef::Str(t) => Some(Other::Big(Box::from(t))),
            ValueRef::Int(i) => Some(Other::Int(i)),
            ValueRef::Float(f) => Some(Other::Float(f.to_bits())),
        };
        if let Some(o) = other {
            OTHER_MARK.iter().for_each(|&b| self.arena.push(char::from(b)));
            self.other.push((next, o));
        }
        self.len = self.len.saturating_add(1);
        // `insert_unique` may rehash: hash existing symbols through the arena.
        let mut map = std::mem::take(&mut self.map);
        {
            let this = &*self;
            map.insert_unique(h, next, |&s| this.get(s).hash_with(&this.hasher));
        }
        self.map = map;
        next
    }

    /// The symbol for `v` if it was ever interned.
    pub fn lookup(&self, v: &Value) -> Option<Sym> {
        if let Value::Int(i) = v
            && let Some(s) = inline_int(*i)
        {
            return Some(s);
        }
        let r = ValueRef::of(v);
        let h = r.hash_with(&self.hasher);
        self.map.find(h, |&s| self.get(s).same(r)).copied()
    }

    /// The value of a symbol, borrowed.
    pub fn value_ref(&self, s: Sym) -> ValueRef<'_> {
        self.get(s)
    }

    /// The value of a symbol.
    pub fn value(&self, s: Sym) -> Value {
        self.get(s).to_value()
    }

    /// The symbol standing for the unbound variable `name` (action policies only).
    pub fn var_marker(&mut self, name: &str) -> Sym {
        self.intern(&Value::str(format!("{VAR_MARK}{name}")))
    }

    /// If `s` is a variable marker, the variable's name.
    pub fn marker_name(&self, s: Sym) -> Option<&str> {
        match self.get(s) {
            ValueRef::Str(t) => t.strip_prefix(VAR_MARK),
            _ => None,
        }
    }

    /// Bytes on the heap: marks, arena (with the other values) and the hash table.
    pub fn heap_bytes(&self) -> (usize, usize, usize) {
        let buckets = crate::eval::relation::buckets(self.map.capacity());
        let other = self.other.capacity() * std::mem::size_of::<(Sym, Other)>();
        (self.marks.capacity() * 4, self.arena.capacity() + other, buckets * 5)
    }

    /// Number of distinct values.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_type_aware() {
        let mut i = Interner::new();
        let a = i.intern(&Value::Int(1));
        let b = i.intern(&Value::Float(1.0));
        let c = i.intern(&Value::str("1"));
        assert_eq!(i.intern(&Value::Int(1)), a);
        assert!(a != b && b != c && a != c);
        assert_eq!(i.value(c), Value::str("1"));
        assert_eq!(i.lookup(&Value::str("1")), Some(c));
        assert_eq!(i.lookup(&Value::str("2")), None);
        let v = i.var_marker("y");
        assert_eq!(i.marker_name(v), Some("y"));
        assert_eq!(i.marker_name(c), None);
    }

    #[test]
    fn small_ints_are_inline_and_big_ones_interned() {
        let mut i = Interner::new();
        for n in [0, 1, -1, (1 << 30) - 1, -(1 << 30), 1 << 30, -(1 << 30) - 1, i64::MAX, i64::MIN] {
            let s = i.intern(&Value::Int(n));
            assert_eq!(i.value(s), Value::Int(n), "{n}");
            assert_eq!(i.lookup(&Value::Int(n)), Some(s));
        }
        assert_eq!(i.len(), 4, "only the four out-of-range ints take table entries");
        assert_ne!(i.intern(&Value::Int(3)), i.intern(&Value::Float(3.0)));
    }

    #[test]
    fn strings_of_every_length_and_script_read_back() {
        let mut i = Interner::new();
        let texts: Vec<String> = [0usize, 1, 63, 64, 65, 4095, 4096, 300_000]
            .iter()
            .map(|&n| "x".repeat(n))
            .chain(["héllo wörld".to_string(), "日本語".to_string(), "\u{0}".to_string(), "@".repeat(70)])
            .collect();
        let syms: Vec<Sym> = texts.iter().map(|t| i.intern(&Value::str(t))).collect();
        let f = i.intern(&Value::Float(-2.5));
        for (t, s) in texts.iter().zip(&syms) {
            assert_eq!(i.value(*s), Value::str(t), "{} bytes", t.len());
            assert_eq!(i.lookup(&Value::str(t)), Some(*s));
        }
        assert_eq!(i.value(f), Value::Float(-2.5));
        assert_eq!(i.len(), texts.len() + 1);
    }

    /// Every kind of value at every place of a stride (so that reading one back steps over
    /// every kind), with empty strings last in the arena, and strings past
    /// [`STRINGS_MAX`] kept aside.
    #[test]
    fn values_of_every_kind_at_every_place_read_back() {
        let mut i = Interner::new();
        let kinds = |n: usize| -> Vec<Value> {
            vec![
                Value::str(""),
                Value::str(format!("s{n}")),
                Value::str("y".repeat(64 + n)),
                Value::Int(i64::MAX - n as i64),
                Value::Float(n as f64 + 0.5),
                Value::str(""),
            ]
        };
        let mut seen = Vec::new();
        for n in 0..3 * STRIDE + 1 {
            for v in kinds(n) {
                seen.push((i.intern(&v), v));
            }
        }
        // Fill the arena past STRINGS_MAX: the next strings are kept aside.
        for n in 0..(STRINGS_MAX / 1000 + 2) {
            let v = Value::str(format!("{n:>1000}"));
            seen.push((i.intern(&v), v));
        }
        assert!(i.other.iter().any(|(_, o)| matches!(o, Other::Big(_))), "some strings are kept aside");
        for n in 0..STRIDE + 1 {
            for v in kinds(1000 + n) {
                seen.push((i.intern(&v), v));
            }
        }
        for (s, v) in &seen {
            assert_eq!(&i.value(*s), v, "symbol {s}");
            assert_eq!(i.lookup(v), Some(*s), "{v:?}");
        }
    }

    #[test]
    fn many_values_survive_rehashing() {
        let mut i = Interner::new();
        let syms: Vec<Sym> = (0..10_000).map(|n| i.intern(&Value::str(format!("v{n}")))).collect();
        for (n, s) in syms.iter().enumerate() {
            assert_eq!(i.lookup(&Value::str(format!("v{n}"))), Some(*s));
            assert_eq!(i.value(*s), Value::str(format!("v{n}")));
        }
        assert_eq!(i.len(), 10_000);
    }
}
