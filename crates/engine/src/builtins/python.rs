//! Python's semantics for Congress values, as the builtins see them: comparisons between
//! `str`, `int` and `float`, `str()` and `repr()`, the `int()` and `float()` string parsers,
//! truthiness and `%g` formatting. Error texts are Python's own, so a failed builtin says
//! what Congress would have logged.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::value::{Value, format_float};

/// Python's name for the type of a value, as it appears in Python's error messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "str",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
    }
}

/// A Python number.
#[derive(Clone, Copy, Debug)]
pub(super) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    /// Python's `float(n)` (ints round to nearest, as Python does).
    pub(super) fn to_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// The number in a value, if it is one.
pub(super) fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Int(i) => Some(Num::Int(*i)),
        Value::Float(f) => Some(Num::Float(*f)),
        Value::Str(_) => None,
    }
}

/// Python's exact comparison of an int with a float (no rounding of the int).
/// `None` when the float is NaN, which is unordered.
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    // In range, so the conversion is exact.
    let ord = i.cmp(&(whole as i64));
    if ord != Ordering::Equal {
        return Some(ord);
    }
    whole.partial_cmp(&f)
}

/// Python's numeric comparison: exact across int and float, `None` if a NaN is involved.
pub(super) fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
    }
}

/// An ordering operator of Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether an ordering satisfies the operator; unordered (NaN) never does.
    pub(super) fn holds(self, ord: Option<Ordering>) -> bool {
        match ord {
            None => false,
            Some(o) => match self {
                CmpOp::Lt => o.is_lt(),
                CmpOp::Le => o.is_le(),
                CmpOp::Gt => o.is_gt(),
                CmpOp::Ge => o.is_ge(),
            },
        }
    }
}

/// Python's `a <op> b`: numbers numerically, strings by code point, a string against a
/// number is a `TypeError`.
pub(super) fn compare(op: CmpOp, a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(op.holds(Some(x.cmp(y)))),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => Ok(op.holds(cmp_num(x, y))),
            _ => Err(format!(
                "'{}' not supported between instances of '{}' and '{}'",
                op.symbol(),
                type_name(a),
                type_name(b)
            )),
        },
    }
}

/// Python's `a == b`: `1 == 1.0`, `"1" != 1`, `nan != nan`.
pub(super) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => cmp_num(x, y) == Some(Ordering::Equal),
            _ => false,
        },
    }
}

/// Python's `bool(v)`.
pub(super) fn truthy(v: &Value) -> bool {
    match v {
        Value::Str(s) => !s.is_empty(),
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
    }
}

/// Python's `str(v)`: strings as they are, numbers as Python prints them.
pub(super) fn to_str(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Str(s) => Cow::Borrowed(s),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Float(f) => Cow::Owned(format_float(*f)),
    }
}

/// Python's `str.isspace()` for one character.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The whitespace Python's `int()` and `float()` strip: ASCII `" \t\n\x0b\x0c\r"` and
/// non-ASCII whitespace (but not the ASCII separators `\x1c` to `\x1f`, which
/// `str.strip()` removes).
fn is_number_space(c: char) -> bool {
    if c.is_ascii() { matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r') } else { is_space(c) }
}

/// Python's `str.isprintable()` for one character, approximately: control, format,
/// separator (other than the space) and private-use characters are not printable.
/// Unassigned code points, which Python also escapes, are treated as printable.
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{8e2}'
        | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}' | '\u{e000}'..='\u{f8ff}' | '\u{110bd}' | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0001}' | '\u{e0020}'..='\u{e007f}' | '\u{f0000}'..)
}

/// Python's `repr(s)` of a string.
pub(super) fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let n = u32::from(c);
                let escaped = if n < 0x100 {
                    format!("\\x{n:02x}")
                } else if n < 0x1_0000 {
                    format!("\\u{n:04x}")
                } else {
                    format!("\\U{n:08x}")
                };
                out.push_str(&escaped);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Why a string is not an `i64` by Python's `int()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IntError {
    /// Python raises `ValueError: invalid literal for int()`.
    Invalid,
    /// A valid integer that does not fit in 64 bits (Python would make a big int).
    Overflow,
}

/// Python's `int(s)` in base 10: surrounding whitespace, an optional sign, digits with
/// single underscores between them.
pub(super) fn parse_int(s: &str) -> Result<i64, IntError> {
    let t = s.trim_matches(is_number_space);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = scan_digits(digits.as_bytes(), 0).ok_or(IntError::Invalid)?;
    if end == 0 || end != digits.len() {
        return Err(IntError::Invalid);
    }
    let mut acc: i128 = 0;
    for b in digits.bytes().filter(u8::is_ascii_digit) {
        acc = acc * 10 + i128::from(b - b'0');
        if acc > 1 << 63 {
            return Err(IntError::Overflow);
        }
    }
    let signed = if negative { -acc } else { acc };
    i64::try_from(signed).map_err(|_| IntError::Overflow)
}

/// Scans `digit ("_"? digit)*` from `start`. Returns the end index (`start` if there is
/// no digit), or `None` if an underscore is not between two digits.
fn scan_digits(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' => i += 1,
            b'_' if i > start && b.get(i + 1).is_some_and(u8::is_ascii_digit) => i += 1,
            b'_' => return None,
            _ => break,
        }
    }
    Some(i)
}

/// Python's `float(s)`: surrounding whitespace, `inf`/`infinity`/`nan` in any case,
/// decimal notation with an optional exponent and underscores between digits.
pub(super) fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim_matches(is_number_space);
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let special = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(x) = special {
        return Some(if negative { -x } else { x });
    }
    let b = body.as_bytes();
    let int_end = scan_digits(b, 0)?;
    let mut i = int_end;
    let mut digits = int_end;
    if b.get(i) == Some(&b'.') {
        let frac_end = scan_digits(b, i + 1)?;
        digits += frac_end - (i + 1);
        i = frac_end;
    }
    if digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_end = scan_digits(b, i)?;
        if exp_end == i {
            return None;
        }
        i = exp_end;
    }
    if i != b.len() {
        return None;
    }
    let cleaned: String = body.chars().filter(|&c| c != '_').collect();
    let x: f64 = cleaned.parse().ok()?;
    Some(if negative { -x } else { x })
}

/// Python's `format(x, 'g')` (also `'%g' % x`): six significant digits, trailing zeros
/// removed, scientific notation below 1e-4 and from 1e6.
pub(super) fn format_g(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{x:.5e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        strip_zeros(&format!("{x:.decimals$}")).to_string()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_zeros(mantissa), exp.unsigned_abs())
    }
}

/// Removes trailing zeros after a decimal point, and the point if nothing follows it.
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_float_comparison_is_exact() {
        let big = (1i64 << 53) + 1;
        assert_eq!(cmp_num(Num::Int(big), Num::Float((1i64 << 53) as f64)), Some(Ordering::Greater));
        assert_eq!(cmp_num(Num::Int(3), Num::Float(3.5)), Some(Ordering::Less));
        assert_eq!(cmp_num(Num::Int(-3), Num::Float(-3.5)), Some(Ordering::Greater));
        assert_eq!(cmp_num(Num::Float(3.0), Num::Int(3)), Some(Ordering::Equal));
        assert_eq!(cmp_num(Num::Int(i64::MAX), Num::Float(9.3e18)), Some(Ordering::Less));
        assert_eq!(cmp_num(Num::Int(i64::MIN), Num::Float(-9.3e18)), Some(Ordering::Greater));
        assert_eq!(cmp_num(Num::Int(i64::MIN), Num::Float(i64::MIN as f64)), Some(Ordering::Equal));
        assert_eq!(cmp_num(Num::Int(0), Num::Float(f64::NAN)), None);
    }

    #[test]
    fn comparisons_follow_python() {
        let (a, b) = (Value::str("apple"), Value::str("banana"));
        assert_eq!(compare(CmpOp::Lt, &a, &b), Ok(true));
        assert_eq!(compare(CmpOp::Lt, &Value::str("10"), &Value::str("9")), Ok(true));
        assert_eq!(
            compare(CmpOp::Lt, &Value::str("5"), &Value::Int(10)),
            Err("'<' not supported between instances of 'str' and 'int'".into())
        );
        assert_eq!(compare(CmpOp::Ge, &Value::Float(f64::NAN), &Value::Float(f64::NAN)), Ok(false));
        assert!(equal(&Value::Int(1), &Value::Float(1.0)));
        assert!(!equal(&Value::Int(1), &Value::str("1")));
        assert!(!equal(&Value::Float(f64::NAN), &Value::Float(f64::NAN)));
    }

    #[test]
    fn truthiness_and_str() {
        assert!(!truthy(&Value::str("")));
        assert!(truthy(&Value::str("False")));
        assert!(!truthy(&Value::Int(0)));
        assert!(!truthy(&Value::Float(-0.0)));
        assert!(truthy(&Value::Float(f64::NAN)));
        assert_eq!(to_str(&Value::Float(2.0)), "2.0");
        assert_eq!(to_str(&Value::Int(-7)), "-7");
        assert_eq!(to_str(&Value::str("x")), "x");
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(repr_str("abc"), "'abc'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr_str("a\\b\n\t\r"), "'a\\\\b\\n\\t\\r'");
        assert_eq!(repr_str("\u{0}\u{7f}\u{a0}\u{2028}é"), "'\\x00\\x7f\\xa0\\u2028é'");
        assert_eq!(repr_str("\u{f0000}"), "'\\U000f0000'");
    }

    #[test]
    fn int_parsing_follows_python() {
        assert_eq!(parse_int(" 42 "), Ok(42));
        assert_eq!(parse_int("-1_000"), Ok(-1000));
        assert_eq!(parse_int("+007"), Ok(7));
        assert_eq!(parse_int("\u{85}5\u{a0}"), Ok(5));
        assert_eq!(parse_int("\u{1f}5"), Err(IntError::Invalid));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), Err(IntError::Overflow));
        assert_eq!(parse_int("99999999999999999999999999999999999999999"), Err(IntError::Overflow));
        for bad in ["", " ", "4.2", "1__0", "_1", "1_", "- 1", "0x10", "1e3", "+"] {
            assert_eq!(parse_int(bad), Err(IntError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn float_parsing_follows_python() {
        assert_eq!(parse_float(" 1e3 "), Some(1000.0));
        assert_eq!(parse_float("1_000.5"), Some(1000.5));
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("5."), Some(5.0));
        assert_eq!(parse_float("1.e2"), Some(100.0));
        assert_eq!(parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float("1e500"), Some(f64::INFINITY));
        assert!(parse_float("nan").is_some_and(f64::is_nan));
        for bad in ["", ".", "e5", "1e", "1e+", "1_.5", "1._5", "1__0", "abc", "0x1p3", "in f", "1.5.2"] {
            assert_eq!(parse_float(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn g_format_matches_python() {
        let cases = [
            (1.0, "1"),
            (10.0, "10"),
            (1.5, "1.5"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (1e20, "1e+20"),
            (0.0, "0"),
            (-0.0, "-0"),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(format_g(x), want, "{x}");
        }
    }
}
