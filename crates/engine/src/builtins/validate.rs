//! The option-validation builtins of Congress's config validator: oslo.config's
//! `types.Integer`, `types.Float` and `types.String` applied to a value. The output is
//! `""` if the value is valid, else the text of the `ValueError` or `TypeError` that
//! oslo.config raised (Congress catches those two). Any other exception (a bad regular
//! expression, `int(inf)`) escapes, and the builtin fails.
//!
//! An empty-string bound or regex means none, as in Congress. Other bounds are used as
//! they are, so a string bound gives Python's `TypeError` text as the result.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex::Regex;

use super::arith::float_to_int;
use super::python::{self, CmpOp, IntError, format_g, num, repr_str, to_str, truthy, type_name};
use crate::value::Value;

/// What validating a value came to: `Ok("")`, `Ok(message)` for a caught error, or
/// `Err` for an exception that escapes.
type Outcome = Result<String, String>;

/// `validate_int(min, max, value)`.
pub(super) fn validate_int(args: &[Value]) -> Result<Value, String> {
    let [min, max, value] = args else {
        return Err("expected 3 inputs".into());
    };
    check_number(NumKind::Int, bound(min), bound(max), value).map(Value::from)
}

/// `validate_float(min, max, value)`.
pub(super) fn validate_float(args: &[Value]) -> Result<Value, String> {
    let [min, max, value] = args else {
        return Err("expected 3 inputs".into());
    };
    check_number(NumKind::Float, bound(min), bound(max), value).map(Value::from)
}

/// `validate_string(regex, max_length, quotes, ignore_case, value)`.
pub(super) fn validate_string(args: &[Value]) -> Result<Value, String> {
    let [regex, max_length, quotes, ignore_case, value] = args else {
        return Err("expected 5 inputs".into());
    };
    let regex = match bound(regex) {
        None => None,
        Some(Value::Str(pattern)) => Some(compile(pattern, truthy(ignore_case))?),
        Some(other) => {
            return Err(format!("'{}' object has no attribute 'pattern'", type_name(other)));
        }
    };
    let max_length = truthy(max_length).then_some(max_length);
    Ok(Value::from(check_string(regex.as_deref(), max_length, truthy(quotes), value)))
}

/// Congress turns an empty-string bound into `None`.
fn bound(v: &Value) -> Option<&Value> {
    match v {
        Value::Str(s) if s.is_empty() => None,
        v => Some(v),
    }
}

#[derive(Clone, Copy)]
enum NumKind {
    Int,
    Float,
}

impl NumKind {
    /// Python's `TypeError` for comparing a converted value with a bound. (A converted
    /// value too big for an `i64` is held as a float, but to Python it is an int.)
    fn type_error(self, op: &str, bound: &Value) -> String {
        let name = match self {
            NumKind::Int => "int",
            NumKind::Float => "float",
        };
        format!("'{op}' not supported between instances of '{name}' and '{}'", type_name(bound))
    }
}

/// oslo.config's `Number(num_type, min=min, max=max)(value)`.
fn check_number(kind: NumKind, min: Option<&Value>, max: Option<&Value>, value: &Value) -> Outcome {
    // The constructor's check.
    if let (Some(lo), Some(hi)) = (min, max) {
        match python::compare(CmpOp::Lt, hi, lo) {
            Err(e) => return Ok(e),
            Ok(true) => return Ok("Max value is less than min value".into()),
            Ok(false) => {}
        }
    }
    let Some(n) = (match convert(kind, value)? {
        Ok(n) => n,
        Err(message) => return Ok(message),
    }) else {
        // Blank strings are "no value", which is valid.
        return Ok(String::new());
    };
    if let Some(lo) = min {
        match python::compare(CmpOp::Lt, &n, lo) {
            Err(_) => return Ok(kind.type_error("<", lo)),
            Ok(true) => return Ok(format!("Should be greater than or equal to {}", g(lo))),
            Ok(false) => {}
        }
    }
    if let Some(hi) = max {
        match python::compare(CmpOp::Gt, &n, hi) {
            Err(_) => return Ok(kind.type_error(">", hi)),
            Ok(true) => return Ok(format!("Should be less than or equal to {}", g(hi))),
            Ok(false) => {}
        }
    }
    Ok(String::new())
}

/// `format(bound, 'g')` for a bound that just compared with a number (so is one).
fn g(v: &Value) -> String {
    num(v).map_or_else(|| to_str(v).into_owned(), |n| format_g(n.to_f64()))
}

/// `num_type(value)` unless `value` already is one; `Ok(Ok(None))` for a blank string.
/// The inner error is a caught `ValueError`, the outer one an escaping exception.
fn convert(kind: NumKind, value: &Value) -> Result<Result<Option<Value>, String>, String> {
    if to_str(value).trim_matches(python::is_space).is_empty() {
        return Ok(Ok(None));
    }
    Ok(Ok(Some(match (kind, value) {
        (NumKind::Int, Value::Int(_)) | (NumKind::Float, Value::Float(_)) => value.clone(),
        (NumKind::Int, Value::Float(f)) => {
            if f.is_nan() {
                return Ok(Err("cannot convert float NaN to integer".into()));
            }
            // Infinity is an OverflowError, which Congress does not catch.
            match float_to_int(*f) {
                Ok(i) => Value::Int(i),
                Err(e) if f.is_infinite() => return Err(e),
                // Python's int is unbounded; the truncated float compares the same.
                Err(_) => Value::Float(f.trunc()),
            }
        }
        (NumKind::Int, Value::Str(s)) => match python::parse_int(s) {
            Ok(i) => Value::Int(i),
            Err(IntError::Overflow) => Value::Float(python::parse_float(s).unwrap_or(f64::NAN)),
            Err(IntError::Invalid) => {
                return Ok(Err(format!("invalid literal for int() with base 10: {}", repr_str(s))));
            }
        },
        (NumKind::Float, Value::Int(i)) => Value::Float(*i as f64),
        (NumKind::Float, Value::Str(s)) => match python::parse_float(s) {
            Some(f) => Value::Float(f),
            None => {
                return Ok(Err(format!("could not convert string to float: {}", repr_str(s))));
            }
        },
    })))
}

/// oslo.config's `String(quotes=..., max_length=...)` applied to `value`, after the regex
/// was compiled. `max_length` is `None` when it is falsy (oslo.config's `or 0`).
fn check_string(regex: Option<&Compiled>, max_length: Option<&Value>, quotes: bool, value: &Value) -> String {
    let mut text = to_str(value).into_owned();
    if quotes && let Some(first) = text.chars().next().filter(|c| matches!(c, '"' | '\'')) {
        if text.chars().count() == 1 || !text.ends_with(first) {
            return format!("Non-closed quote: {text}");
        }
        text = text[1..text.len() - 1].to_string();
    }
    if let Some(limit) = max_length {
        match python::compare(CmpOp::Gt, limit, &Value::Int(0)) {
            Err(e) => return e,
            Ok(false) => {}
            Ok(true) => {
                let len = Value::Int(i64::try_from(text.chars().count()).unwrap_or(i64::MAX));
                if python::compare(CmpOp::Gt, &len, limit).unwrap_or(false) {
                    return format!("Value {} exceeds maximum length {}", repr_str(&text), to_str(limit));
                }
            }
        }
    }
    if let Some(re) = regex
        && !re.regex.is_match(&text)
    {
        return format!("Value {} doesn't match regex {}", repr_str(&text), repr_str(&re.pattern));
    }
    String::new()
}

/// A regular expression and the Python pattern it came from.
struct Compiled {
    pattern: String,
    regex: Regex,
}

/// Compiled patterns per thread, so a rule evaluated over many rows compiles once.
const CACHE_LIMIT: usize = 64;

thread_local! {
    static CACHE: RefCell<HashMap<(String, bool), Rc<Compiled>>> = RefCell::new(HashMap::new());
}

/// Python's `re.compile(pattern, re.IGNORECASE if ignore_case else 0)`, in Rust's regex
/// dialect (`\Z` becomes `\z`). Patterns Rust cannot run (lookaround, backreferences) are
/// an error, as a bad pattern is in Python.
fn compile(pattern: &str, ignore_case: bool) -> Result<Rc<Compiled>, String> {
    let key = (pattern.to_string(), ignore_case);
    if let Some(hit) = CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(hit);
    }
    let translated = translate(pattern);
    let regex = regex::RegexBuilder::new(&translated)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|e| format!("bad regular expression {}: {e}", repr_str(pattern)))?;
    let compiled = Rc::new(Compiled { pattern: pattern.to_string(), regex });
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
    });
    Ok(compiled)
}

/// Python's `\Z` (end of text) is Rust's `\z`; everything else is passed through.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\'
            && let Some(next) = chars.next()
        {
            out.push(if next == 'Z' { 'z' } else { next });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::builtins::test_values::{F, I, s};

    fn int3(min: Value, max: Value, value: Value) -> Result<Value, String> {
        validate_int(&[min, max, value])
    }

    fn float3(min: Value, max: Value, value: Value) -> Result<Value, String> {
        validate_float(&[min, max, value])
    }

    fn string5(
        regex: &str,
        max_length: Value,
        quotes: Value,
        ignore_case: Value,
        value: Value,
    ) -> Result<Value, String> {
        validate_string(&[s(regex), max_length, quotes, ignore_case, value])
    }

    #[test]
    fn integers() {
        assert_eq!(int3(I(1), I(5), I(3)), Ok(s("")));
        assert_eq!(int3(s(""), s(""), s(" 42 ")), Ok(s("")));
        assert_eq!(int3(I(1), I(5), I(0)), Ok(s("Should be greater than or equal to 1")));
        assert_eq!(int3(I(1), I(5), I(9)), Ok(s("Should be less than or equal to 5")));
        assert_eq!(int3(I(0), s(""), I(-1)), Ok(s("Should be greater than or equal to 0")));
        assert_eq!(int3(I(1), I(5000000), I(9000000)), Ok(s("Should be less than or equal to 5e+06")));
        assert_eq!(int3(F(1.5), s(""), I(1)), Ok(s("Should be greater than or equal to 1.5")));
        assert_eq!(int3(I(5), I(1), I(3)), Ok(s("Max value is less than min value")));
        assert_eq!(int3(s(""), s(""), F(3.9)), Ok(s("")));
        assert_eq!(int3(I(4), s(""), F(3.9)), Ok(s("Should be greater than or equal to 4")));
        assert_eq!(int3(s(""), s(""), s("   ")), Ok(s("")));
        assert_eq!(int3(s(""), s(""), s("abc")), Ok(s("invalid literal for int() with base 10: 'abc'")));
        assert_eq!(int3(s(""), s(""), s("4.2")), Ok(s("invalid literal for int() with base 10: '4.2'")));
        assert_eq!(int3(s(""), s(""), F(f64::NAN)), Ok(s("cannot convert float NaN to integer")));
        assert_eq!(int3(s(""), I(10), F(1e30)), Ok(s("Should be less than or equal to 10")));
        assert_eq!(int3(s(""), I(10), s("99999999999999999999")), Ok(s("Should be less than or equal to 10")));
        assert_eq!(int3(s("1"), I(5), I(3)), Ok(s("'<' not supported between instances of 'int' and 'str'")));
        assert_eq!(int3(s("1"), s(""), I(3)), Ok(s("'<' not supported between instances of 'int' and 'str'")));
        assert_eq!(int3(s("5"), s("10"), I(3)), Ok(s("Max value is less than min value")));
        assert!(int3(s(""), s(""), F(f64::INFINITY)).is_err());
    }

    #[test]
    fn floats() {
        assert_eq!(float3(F(0.5), F(1.5), F(1.0)), Ok(s("")));
        assert_eq!(float3(F(0.5), F(1.5), I(1)), Ok(s("")));
        assert_eq!(float3(F(0.5), F(1.5), s("2")), Ok(s("Should be less than or equal to 1.5")));
        assert_eq!(float3(I(1), s(""), s("0.5")), Ok(s("Should be greater than or equal to 1")));
        assert_eq!(float3(s(""), s(""), s("abc")), Ok(s("could not convert string to float: 'abc'")));
        assert_eq!(float3(s(""), s(""), s("inf")), Ok(s("")));
        assert_eq!(float3(s(""), I(1), F(f64::NAN)), Ok(s("")));
        assert_eq!(float3(s(""), s("x"), F(1.0)), Ok(s("'>' not supported between instances of 'float' and 'str'")));
    }

    #[test]
    fn strings() {
        let no = || s("");
        assert_eq!(string5("", no(), no(), no(), s("anything")), Ok(s("")));
        assert_eq!(string5("^a", no(), no(), no(), s("abc")), Ok(s("")));
        assert_eq!(string5("^a", no(), no(), no(), s("xbc")), Ok(s("Value 'xbc' doesn't match regex '^a'")));
        assert_eq!(string5("^a", no(), no(), I(1), s("ABC")), Ok(s("")));
        assert_eq!(string5("^a", no(), no(), s("False"), s("ABC")), Ok(s("")));
        assert_eq!(string5("b", no(), no(), no(), s("abc")), Ok(s("")));
        assert_eq!(string5("c\\Z", no(), no(), no(), s("abc")), Ok(s("")));
        assert_eq!(string5("", I(3), no(), no(), s("abcd")), Ok(s("Value 'abcd' exceeds maximum length 3")));
        assert_eq!(string5("", F(3.5), no(), no(), s("abcd")), Ok(s("Value 'abcd' exceeds maximum length 3.5")));
        assert_eq!(string5("", I(4), no(), no(), s("abcd")), Ok(s("")));
        assert_eq!(string5("", I(-1), no(), no(), s("abcd")), Ok(s("")));
        assert_eq!(
            string5("", s("3"), no(), no(), s("abcd")),
            Ok(s("'>' not supported between instances of 'str' and 'int'"))
        );
        assert_eq!(string5("", I(3), I(1), no(), s("'abc'")), Ok(s("")));
        assert_eq!(string5("", no(), I(1), no(), s("'abc")), Ok(s("Non-closed quote: 'abc")));
        assert_eq!(string5("", no(), I(1), no(), s("\"")), Ok(s("Non-closed quote: \"")));
        assert_eq!(string5("", no(), no(), no(), s("'abc")), Ok(s("")));
        assert_eq!(string5("^1", no(), no(), no(), F(1.5)), Ok(s("")));
        assert_eq!(string5("^2", no(), no(), no(), I(15)), Ok(s("Value '15' doesn't match regex '^2'")));
        assert!(string5("(", no(), no(), no(), s("x")).is_err());
        assert!(string5("(?=a)", no(), no(), no(), s("x")).is_err());
        assert!(validate_string(&[I(1), no(), no(), no(), s("x")]).is_err());
    }
}
