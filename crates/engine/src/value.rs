//! Values stored in tables and written in rules: strings, integers and floats.
//!
//! Identity follows Congress's unifier: a value equals another only when both the type
//! and the content match, so `1`, `1.0` and `"1"` are three different values (joins and
//! constants compare this way in Congress; see `docs/deviations.md` for fact storage).
//! Floats compare by bit pattern so that a value can be hashed and interned.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// One column value.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string (never escape-processed, as in Congress).
    Str(Arc<str>),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
}

impl Value {
    /// A string value.
    pub fn str(s: impl AsRef<str>) -> Self {
        Value::Str(Arc::from(s.as_ref()))
    }

    /// The string content, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A number as f64, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(_) => None,
        }
    }

    /// The type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
        }
    }

    /// Numeric equality across int and float (Python's `1 == 1.0`), type equality otherwise.
    pub fn loose_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => (*a as f64) == *b,
            _ => self == other,
        }
    }

    /// Convert a JSON scalar the way Congress's `value_to_congress` does: booleans become
    /// `"True"`/`"False"`, null becomes `"None"`, strings lose non-ASCII characters,
    /// numbers are kept. Arrays and objects become their JSON text.
    pub fn from_json_congress(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Bool(true) => Value::str("True"),
            serde_json::Value::Bool(false) => Value::str("False"),
            serde_json::Value::Null => Value::str("None"),
            serde_json::Value::String(s) => {
                if s.is_ascii() {
                    Value::str(s)
                } else {
                    Value::str(s.chars().filter(char::is_ascii).collect::<String>())
                }
            }
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            other => Value::str(other.to_string()),
        }
    }

    /// The value as JSON (int vs float preserved).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(format_float(*f))),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Value::Str(s) => {
                0u8.hash(state);
                s.hash(state);
            }
            Value::Int(i) => {
                1u8.hash(state);
                i.hash(state);
            }
            Value::Float(f) => {
                2u8.hash(state);
                f.to_bits().hash(state);
            }
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A total order for sorting output: numbers (by value) before strings.
impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            (Value::Str(_), _) => Ordering::Greater,
            (_, Value::Str(_)) => Ordering::Less,
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (a, b) => {
                let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                x.total_cmp(&y).then_with(|| matches!(a, Value::Float(_)).cmp(&matches!(b, Value::Float(_))))
            }
        }
    }
}

/// Python's `str()` of a float, close enough for printing (`2.0`, `0.5`, `1e+20`).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        // Rust prints `1e20`; Python prints `1e+20`, and keeps two exponent digits.
        if let Some((mant, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mant}e{sign}{digits:0>2}");
        }
        return s;
    }
    if f.fract() == 0.0 { format!("{f:.1}") } else { format!("{f}") }
}

/// Congress's printing: strings double-quoted without escaping, numbers as Python prints them.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "\"{s}\""),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&format_float(*x)),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Arc::from(s))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_separates_types() {
        assert_ne!(Value::Int(1), Value::Float(1.0));
        assert_ne!(Value::Int(1), Value::str("1"));
        assert!(Value::Int(1).loose_eq(&Value::Float(1.0)));
        assert!(!Value::Int(1).loose_eq(&Value::str("1")));
    }

    #[test]
    fn prints_like_congress() {
        assert_eq!(Value::str("a").to_string(), "\"a\"");
        assert_eq!(Value::Float(2.0).to_string(), "2.0");
        assert_eq!(Value::Float(2.5).to_string(), "2.5");
        assert_eq!(Value::Float(1e20).to_string(), "1e+20");
        assert_eq!(Value::Int(-3).to_string(), "-3");
    }

    #[test]
    fn json_conversion_follows_value_to_congress() {
        let j: serde_json::Value = serde_json::json!([true, null, "caf\u{e9}", 7, 2.5]);
        let got: Vec<Value> = j.as_array().unwrap().iter().map(Value::from_json_congress).collect();
        assert_eq!(
            got,
            vec![Value::str("True"), Value::str("None"), Value::str("caf"), Value::Int(7), Value::Float(2.5)]
        );
    }
}
