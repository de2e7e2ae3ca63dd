//! The symbol table: every value stored in a table is interned once and referred to by a
//! 32-bit [`Sym`], so rows are small arrays of integers and joins compare integers.
//!
//! Strings live in one append-only byte arena and the hash table stores only symbols
//! (hashing through the arena), so a distinct string costs its bytes plus about 22
//! bytes, against 60 or more for an `Arc<str>` per value in a `HashMap`: this is most of
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

fn inline_int(i: i64) -> Option<Sym> {
    let biased = i.checked_add(INLINE_BIAS)?;
    (0..(1i64 << 31)).contains(&biased).then_some(INLINE | biased as u32)
}

/// Prefix of the reserved strings that stand for unbound variables in the answers of
/// `action` policies (whose heads need not be safe). Real data never starts with NUL.
const VAR_MARK: &str = "\u{0}var:";

#[derive(Clone, Copy, Debug)]
enum Entry {
    /// A string in the arena.
    Str {
        start: u32,
        len: u32,
    },
    /// A string stored on its own (once the arena passes 4 GiB).
    Big(u32),
    Int(i64),
    Float(u64),
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
    big: Vec<Box<str>>,
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
        match self.entries[s as usize] {
            Entry::Str { start, len } => ValueRef::Str(&self.arena[start as usize..start as usize + len as usize]),
            Entry::Big(i) => ValueRef::Str(&self.big[i as usize]),
            Entry::Int(i) => ValueRef::Int(i),
            Entry::Float(b) => ValueRef::Float(f64::from_bits(b)),
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
        let next = Sym::try_from(self.entries.len()).unwrap_or(INLINE - 1).min(INLINE - 1);
        let entry = match r {
            ValueRef::Str(s) => match (u32::try_from(self.arena.len()), u32::try_from(s.len())) {
                (Ok(start), Ok(len)) if u32::try_from(self.arena.len() + s.len()).is_ok() => {
                    self.arena.push_str(s);
                    Entry::Str { start, len }
                }
                _ => {
                    self.big.push(Box::from(s));
                    Entry::Big((self.big.len() - 1) as u32)
                }
            },
            ValueRef::Int(i) => Entry::Int(i),
            ValueRef::Float(f) => Entry::Float(f.to_bits()),
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
