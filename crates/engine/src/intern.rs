//! The symbol table: every value stored in a table is interned once and referred to by a
//! 32-bit [`Sym`], so rows are small arrays of integers and joins compare integers.
//!
//! Strings live in one append-only arena, each behind a one-byte length, and the hash
//! table stores only symbols (hashing through the arena), so a distinct string costs its
//! bytes plus about 10 (a 4-byte entry, its length, a slot of the table), against 60 or
//! more for an `Arc<str>` per value in a `HashMap`: this is most of what keeps a stored
//! fact under the memory target. Symbols are never freed while the
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

fn inline_int(i: i64) -> Option<Sym> {
    let biased = i.checked_add(INLINE_BIAS)?;
    (0..(1i64 << 31)).contains(&biased).then_some(INLINE | biased as u32)
}

/// Prefix of the reserved strings that stand for unbound variables in the answers of
/// `action` policies (whose heads need not be safe). Real data never starts with NUL.
const VAR_MARK: &str = "\u{0}var:";

/// Where a symbol's value lives: below [`OTHER`], the offset in the arena of a string's
/// header (its length, see [`push_len`]) followed by its bytes; from [`OTHER`] up, an
/// index into [`Interner::other`]. Four bytes a symbol where an enum of the three kinds
/// took sixteen: with about two distinct strings per fact in a cloud's tables, this is 20
/// to 25 bytes a fact.
type Entry = u32;

/// First entry that indexes [`Interner::other`]; the arena holds at most this many bytes.
const OTHER: u32 = 1 << 31;

/// Values the arena does not hold.
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

/// The string whose header starts at `at`.
fn read_str(arena: &str, at: usize) -> &str {
    let bytes = arena.as_bytes();
    let (mut len, mut shift, mut p) = (0usize, 0u32, at);
    loop {
        let b = bytes[p];
        p += 1;
        len |= ((b & 0x3f) as usize) << shift;
        if b & 0x40 == 0 {
            break;
        }
        shift += 6;
    }
    &arena[p..p + len]
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
    entries: Vec<Entry>,
    arena: String,
    other: Vec<Other>,
    map: HashTable<Sym>,
    hasher: FixedState,
}

impl Interner {
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, s: Sym) -> ValueRef<'_> {
        if s & INLINE != 0 {
            return ValueRef::Int((s & !INLINE) as i64 - INLINE_BIAS);
        }
        let e = self.entries[s as usize];
        if e < OTHER {
            return ValueRef::Str(read_str(&self.arena, e as usize));
        }
        match &self.other[(e - OTHER) as usize] {
            Other::Big(b) => ValueRef::Str(b),
            Other::Int(i) => ValueRef::Int(*i),
            Other::Float(b) => ValueRef::Float(f64::from_bits(*b)),
        }
    }

    fn push_other(&mut self, o: Other) -> Entry {
        self.other.push(o);
        // Past 2^31 values the engine is far beyond any memory this runs in.
        OTHER.saturating_add(u32::try_from(self.other.len() - 1).unwrap_or(u32::MAX))
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
        let next = Sym::try_from(self.entries.len()).unwrap_or(INLINE - 1).min(INLINE - 1);
        let entry = match r {
            // The header is at most 6 bytes (lengths below 2^36).
            ValueRef::Str(t) if self.arena.len() + t.len() + 6 < OTHER as usize => {
                let at = self.arena.len() as Entry;
                push_len(&mut self.arena, t.len());
                self.arena.push_str(t);
                at
            }
            ValueRef::Str(t) => self.push_other(Other::Big(Box::from(t))),
            ValueRef::Int(i) => self.push_other(Other::Int(i)),
            ValueRef::Float(f) => self.push_other(Other::Float(f.to_bits())),
        };
        self.entries.push(entry);
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

    /// Bytes on the heap: entries, arena (with the other values) and the hash table.
    pub fn heap_bytes(&self) -> (usize, usize, usize) {
        let buckets = crate::eval::relation::buckets(self.map.capacity());
        let other = self.other.capacity() * std::mem::size_of::<Other>();
        (self.entries.capacity() * 4, self.arena.capacity() + other, buckets * 5)
    }

    /// Number of distinct values.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
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
