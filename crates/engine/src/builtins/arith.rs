//! The comparison, arithmetic, cast and string builtins: Python's operators on raw values,
//! so `plus("a", "b")` is `"ab"`, `mul("5", 2)` is `"55"` and `lt("a", 1)` is a `TypeError`.

use super::python::{self, CmpOp, Num, num, type_name};
use crate::value::Value;

/// The longest string a builtin may build (Python would try, and maybe exhaust memory).
pub(super) const MAX_STR_BYTES: usize = 16 << 20;

pub(super) fn lt(x: &Value, y: &Value) -> Result<bool, String> {
    python::compare(CmpOp::Lt, x, y)
}

pub(super) fn lteq(x: &Value, y: &Value) -> Result<bool, String> {
    python::compare(CmpOp::Le, x, y)
}

pub(super) fn gt(x: &Value, y: &Value) -> Result<bool, String> {
    python::compare(CmpOp::Gt, x, y)
}

pub(super) fn gteq(x: &Value, y: &Value) -> Result<bool, String> {
    python::compare(CmpOp::Ge, x, y)
}

/// Python's `==`, which never raises.
pub(super) fn equal(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(python::equal(x, y))
}

/// Python's `max(x, y)`: `y` only if `y > x`, so ties (and NaN) keep `x` and its type.
pub(super) fn max(x: &Value, y: &Value) -> Result<Value, String> {
    Ok(if python::compare(CmpOp::Gt, y, x)? { y.clone() } else { x.clone() })
}

/// Python's `x + y`: numbers add, strings concatenate.
pub(super) fn plus(x: &Value, y: &Value) -> Result<Value, String> {
    match (x, y) {
        (Value::Str(a), Value::Str(b)) => {
            check_len(a.len().saturating_add(b.len()))?;
            Ok(Value::from(format!("{a}{b}")))
        }
        (Value::Str(_), _) => Err(format!("can only concatenate str (not \"{}\") to str", type_name(y))),
        _ => numeric('+', x, y, i64::checked_add, |a, b| a + b),
    }
}

/// Python's `x - y`.
pub(super) fn minus(x: &Value, y: &Value) -> Result<Value, String> {
    numeric('-', x, y, i64::checked_sub, |a, b| a - b)
}

/// Python's `x * y`: numbers multiply, a string times an int repeats it.
pub(super) fn mul(x: &Value, y: &Value) -> Result<Value, String> {
    match (x, y) {
        (Value::Str(s), Value::Int(n)) | (Value::Int(n), Value::Str(s)) => repeat(s, *n),
        (Value::Str(_), other) | (other, Value::Str(_)) => {
            Err(format!("can't multiply sequence by non-int of type '{}'", type_name(other)))
        }
        _ => numeric('*', x, y, i64::checked_mul, |a, b| a * b),
    }
}

/// Congress's `div`: `x // y` (floor division) if both are ints, else `x / y`.
pub(super) fn div(x: &Value, y: &Value) -> Result<Value, String> {
    match (x, y) {
        (Value::Int(_), Value::Int(0)) => Err("integer division or modulo by zero".into()),
        (Value::Int(a), Value::Int(b)) => floor_div(*a, *b).map(Value::Int).ok_or_else(overflow),
        _ => match (num(x), num(y)) {
            (Some(a), Some(b)) => {
                let divisor = b.to_f64();
                if divisor == 0.0 {
                    Err("float division by zero".into())
                } else {
                    Ok(Value::Float(a.to_f64() / divisor))
                }
            }
            _ => Err(unsupported('/', x, y)),
        },
    }
}

/// Python's `float(x)`.
pub(super) fn float(x: &Value) -> Result<Value, String> {
    match x {
        Value::Int(i) => Ok(Value::Float(*i as f64)),
        Value::Float(f) => Ok(Value::Float(*f)),
        Value::Str(s) => python::parse_float(s)
            .map(Value::Float)
            .ok_or_else(|| format!("could not convert string to float: {}", python::repr_str(s))),
    }
}

/// Python's `int(x)`: floats truncate toward zero, strings parse in base 10.
pub(super) fn int(x: &Value) -> Result<Value, String> {
    match x {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(f) => float_to_int(*f).map(Value::Int),
        Value::Str(s) => match python::parse_int(s) {
            Ok(i) => Ok(Value::Int(i)),
            Err(python::IntError::Overflow) => Err(overflow()),
            Err(python::IntError::Invalid) => {
                Err(format!("invalid literal for int() with base 10: {}", python::repr_str(s)))
            }
        },
    }
}

/// Python's `len(x)` of a string, in characters.
pub(super) fn len(x: &Value) -> Result<Value, String> {
    match x {
        Value::Str(s) => Ok(Value::Int(i64::try_from(s.chars().count()).map_err(|_| overflow())?)),
        _ => Err(format!("object of type '{}' has no len()", type_name(x))),
    }
}

/// Python's `int(f)` for a float that must fit in an `i64`.
pub(super) fn float_to_int(f: f64) -> Result<i64, String> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return Err("cannot convert float NaN to integer".into());
    }
    if f.is_infinite() {
        return Err("cannot convert float infinity to integer".into());
    }
    let whole = f.trunc();
    if (-TWO_63..TWO_63).contains(&whole) {
        // In range, so the conversion is exact.
        Ok(whole as i64)
    } else {
        Err(overflow())
    }
}

/// An arithmetic operator on two numbers: exact on two ints, float otherwise.
fn numeric(
    op: char,
    x: &Value,
    y: &Value,
    on_ints: fn(i64, i64) -> Option<i64>,
    on_floats: fn(f64, f64) -> f64,
) -> Result<Value, String> {
    match (num(x), num(y)) {
        (Some(Num::Int(a)), Some(Num::Int(b))) => on_ints(a, b).map(Value::Int).ok_or_else(overflow),
        (Some(a), Some(b)) => Ok(Value::Float(on_floats(a.to_f64(), b.to_f64()))),
        _ => Err(unsupported(op, x, y)),
    }
}

/// Python's `a // b` on ints (rounds toward negative infinity); `None` on overflow.
fn floor_div(a: i64, b: i64) -> Option<i64> {
    let q = a.checked_div(b)?;
    if a % b != 0 && ((a < 0) != (b < 0)) { Some(q - 1) } else { Some(q) }
}

/// Python's `s * n`: `n` copies of `s`, none if `n` is not positive.
fn repeat(s: &str, n: i64) -> Result<Value, String> {
    let copies = usize::try_from(n).unwrap_or(0);
    check_len(s.len().saturating_mul(copies))?;
    Ok(Value::from(s.repeat(copies)))
}

fn check_len(bytes: usize) -> Result<(), String> {
    if bytes > MAX_STR_BYTES {
        Err(format!("result would be {bytes} bytes, over the {MAX_STR_BYTES}-byte limit"))
    } else {
        Ok(())
    }
}

fn unsupported(op: char, x: &Value, y: &Value) -> String {
    format!("unsupported operand type(s) for {op}: '{}' and '{}'", type_name(x), type_name(y))
}

/// Python's ints are unbounded; ours are 64-bit.
fn overflow() -> String {
    "integer result does not fit in 64 bits".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::builtins::test_values::{F, I, s};

    #[test]
    fn comparisons() {
        assert_eq!(lt(&I(3), &I(5)), Ok(true));
        assert_eq!(lt(&I(5), &F(5.0)), Ok(false));
        assert_eq!(lteq(&I(5), &F(5.0)), Ok(true));
        assert_eq!(gt(&s("banana"), &s("apple")), Ok(true));
        assert_eq!(gteq(&s("apple"), &s("apple")), Ok(true));
        assert_eq!(gt(&F(0.5), &I(0)), Ok(true));
        assert!(lt(&s("5"), &I(10)).is_err());
        assert!(gteq(&I(1), &s("a")).is_err());
        assert_eq!(equal(&I(1), &F(1.0)), Ok(true));
        assert_eq!(equal(&s("1"), &I(1)), Ok(false));
        assert_eq!(equal(&s("a"), &s("a")), Ok(true));
    }

    #[test]
    fn max_keeps_python_tie_and_type_rules() {
        assert_eq!(max(&I(3), &I(5)), Ok(I(5)));
        assert_eq!(max(&I(5), &I(3)), Ok(I(5)));
        assert_eq!(max(&I(5), &F(5.0)), Ok(I(5)));
        assert_eq!(max(&F(5.0), &I(5)), Ok(F(5.0)));
        assert_eq!(max(&I(2), &F(2.5)), Ok(F(2.5)));
        assert_eq!(max(&s("a"), &s("b")), Ok(s("b")));
        assert_eq!(max(&I(1), &s("a")), Err("'>' not supported between instances of 'str' and 'int'".into()));
    }

    #[test]
    fn arithmetic_on_numbers() {
        assert_eq!(plus(&I(7), &I(2)), Ok(I(9)));
        assert_eq!(plus(&I(8), &F(3.0)), Ok(F(11.0)));
        assert_eq!(minus(&F(2.5), &F(0.5)), Ok(F(2.0)));
        assert_eq!(minus(&I(7), &I(2)), Ok(I(5)));
        assert_eq!(mul(&I(7), &I(2)), Ok(I(14)));
        assert_eq!(mul(&F(2.5), &F(0.5)), Ok(F(1.25)));
        assert_eq!(mul(&F(1e308), &I(10)), Ok(F(f64::INFINITY)));
        assert!(plus(&I(i64::MAX), &I(1)).is_err());
        assert!(minus(&I(i64::MIN), &I(1)).is_err());
        assert!(mul(&I(i64::MAX), &I(2)).is_err());
    }

    #[test]
    fn division() {
        assert_eq!(div(&I(7), &I(2)), Ok(I(3)));
        assert_eq!(div(&I(-7), &I(2)), Ok(I(-4)));
        assert_eq!(div(&I(7), &I(-2)), Ok(I(-4)));
        assert_eq!(div(&I(-7), &I(-2)), Ok(I(3)));
        assert_eq!(div(&I(6), &I(-3)), Ok(I(-2)));
        assert_eq!(div(&I(8), &F(3.0)), Ok(F(8.0 / 3.0)));
        assert_eq!(div(&F(2.5), &F(0.5)), Ok(F(5.0)));
        assert_eq!(div(&I(9), &I(0)), Err("integer division or modulo by zero".into()));
        assert_eq!(div(&F(9.0), &I(0)), Err("float division by zero".into()));
        assert_eq!(div(&I(9), &F(-0.0)), Err("float division by zero".into()));
        assert!(div(&I(i64::MIN), &I(-1)).is_err());
        assert_eq!(div(&s("9"), &I(3)), Err("unsupported operand type(s) for /: 'str' and 'int'".into()));
    }

    #[test]
    fn strings_mix_as_in_python() {
        assert_eq!(plus(&s("a"), &s("b")), Ok(s("ab")));
        assert_eq!(mul(&s("5"), &I(2)), Ok(s("55")));
        assert_eq!(mul(&I(2), &s("abc")), Ok(s("abcabc")));
        assert_eq!(mul(&s("abc"), &I(-1)), Ok(s("")));
        assert_eq!(mul(&s("abc"), &I(0)), Ok(s("")));
        assert_eq!(plus(&s("5"), &I(1)), Err("can only concatenate str (not \"int\") to str".into()));
        assert_eq!(plus(&I(1), &s("5")), Err("unsupported operand type(s) for +: 'int' and 'str'".into()));
        assert_eq!(minus(&s("a"), &s("b")), Err("unsupported operand type(s) for -: 'str' and 'str'".into()));
        assert_eq!(mul(&s("a"), &F(2.0)), Err("can't multiply sequence by non-int of type 'float'".into()));
        assert_eq!(mul(&s("a"), &s("b")), Err("can't multiply sequence by non-int of type 'str'".into()));
        assert!(mul(&s("ab"), &I(i64::MAX)).is_err());
        assert!(mul(&s("ab"), &I(9 << 20)).is_err());
    }

    #[test]
    fn casts() {
        assert_eq!(float(&s("42")), Ok(F(42.0)));
        assert_eq!(float(&I(7)), Ok(F(7.0)));
        assert_eq!(float(&F(2.5)), Ok(F(2.5)));
        assert_eq!(float(&s(" 1e3 ")), Ok(F(1000.0)));
        assert_eq!(float(&s("abc")), Err("could not convert string to float: 'abc'".into()));
        assert_eq!(int(&s("42")), Ok(I(42)));
        assert_eq!(int(&s(" -4_2 ")), Ok(I(-42)));
        assert_eq!(int(&F(-4.9)), Ok(I(-4)));
        assert_eq!(int(&F(4.9)), Ok(I(4)));
        assert_eq!(int(&I(3)), Ok(I(3)));
        assert_eq!(int(&s("4.2")), Err("invalid literal for int() with base 10: '4.2'".into()));
        assert_eq!(int(&F(f64::NAN)), Err("cannot convert float NaN to integer".into()));
        assert_eq!(int(&F(f64::INFINITY)), Err("cannot convert float infinity to integer".into()));
        assert!(int(&F(1e19)).is_err());
        assert!(int(&s("99999999999999999999")).is_err());
    }

    #[test]
    fn concat_and_len() {
        assert_eq!(len(&s("net42")), Ok(I(5)));
        assert_eq!(len(&s("é")), Ok(I(1)));
        assert_eq!(len(&s("")), Ok(I(0)));
        assert_eq!(len(&I(5)), Err("object of type 'int' has no len()".into()));
        assert_eq!(len(&F(5.0)), Err("object of type 'float' has no len()".into()));
    }
}
