//! The symbol table: every value stored in a table is interned once and referred to by a
//! 32-bit [`Sym`], so rows are small arrays of integers and joins compare integers.
//!
//! Symbols are never freed while the engine lives (as in Souffle's symbol table); the
//! cost is bounded by the number of distinct values ever seen.

use crate::datalog::value::Value;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// An interned value.
pub type Sym = u32;

/// Prefix of the reserved strings that stand for unbound variables in the answers of
/// `action` policies (whose heads need not be safe). Real data never starts with NUL.
const VAR_MARK: &str = "\u{0}var:";

/// Interns values to symbols and back.
/// The table stores only symbols and hashes through `values`, so each distinct value is
/// kept once (a `HashMap<Value, Sym>` would hold a second copy of every key).
#[derive(Clone, Debug, Default)]
pub struct Interner {
    values: Vec<Value>,
    map: HashTable<Sym>,
    hasher: FixedState,
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The symbol for `v`, creating it if new.
    pub fn intern(&mut self, v: Value) -> Sym {
        let h = self.hasher.hash_one(&v);
        let values = &self.values;
        if let Some(&s) = self.map.find(h, |&s| values[s as usize] == v) {
            return s;
        }
        let next = Sym::try_from(self.values.len()).unwrap_or(Sym::MAX);
        self.values.push(v);
        let (values, hasher) = (&self.values, &self.hasher);
        self.map
            .insert_unique(h, next, |&s| hasher.hash_one(&values[s as usize]));
        next
    }

    /// The symbol for `v` if it was ever interned.
    pub fn lookup(&self, v: &Value) -> Option<Sym> {
        let h = self.hasher.hash_one(v);
        self.map
            .find(h, |&s| self.values[s as usize] == *v)
            .copied()
    }

    /// The value of a symbol.
    pub fn value(&self, s: Sym) -> &Value {
        &self.values[s as usize]
    }

    /// The symbol standing for the unbound variable `name` (action policies only).
    pub fn var_marker(&mut self, name: &str) -> Sym {
        self.intern(Value::str(format!("{VAR_MARK}{name}")))
    }

    /// If `s` is a variable marker, the variable's name.
    pub fn marker_name(&self, s: Sym) -> Option<&str> {
        self.value(s)
            .as_str()
            .and_then(|t| t.strip_prefix(VAR_MARK))
    }

    /// Number of distinct values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_type_aware() {
        let mut i = Interner::new();
        let a = i.intern(Value::Int(1));
        let b = i.intern(Value::Float(1.0));
        let c = i.intern(Value::str("1"));
        assert_eq!(i.intern(Value::Int(1)), a);
        assert!(a != b && b != c && a != c);
        assert_eq!(i.value(c), &Value::str("1"));
        let v = i.var_marker("y");
        assert_eq!(i.marker_name(v), Some("y"));
        assert_eq!(i.marker_name(c), None);
    }
}
