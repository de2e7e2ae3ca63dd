//! Congress's builtin predicates: `builtin:lt(x, y)`, `builtin:plus(x, y, z)`,
//! `builtin:ip_in_network(ip, cidr)` and the rest of `builtin.py`.
//!
//! A builtin is a partial function. Its first `inputs` arguments are inputs, which must be
//! bound; the rest are outputs, which it computes (a bound output is then checked by the
//! engine). A builtin without outputs is a test: it holds or it does not.
//!
//! Each builtin computes what Congress's Python computes on the raw values, so Python's
//! rules apply: `plus("a", "b")` is `"ab"`, `mul("5", 2)` is `"55"`, `equal(1, 1.0)` holds,
//! `div(7, 2)` is `3` (floor division on two ints). Dates are read as python-dateutil reads
//! them, addresses as netaddr 1.x does, option values as oslo.config checks them.
//!
//! Where Congress's builtin raised (a `TypeError` for `lt("a", 1)`, a division by zero,
//! a bad address or date), Congress silently failed the literal, so `not` of it held.
//! [`Builtin::call`] returns a [`BuiltinError`] instead: the engine fails the literal the
//! same way and can say why.
//!
//! After Congress's builtins come this project's, which Congress does not have (string
//! tests and transformations, regular expressions and wildcards, ...): they follow the
//! same conventions, and their names are reserved the same way. A builtin may check its
//! constant inputs during analysis (a bad regular expression is an error at its line
//! and column rather than a failure on every row).
//!
//! Known differences from Congress: ints are 64-bit (Python's are unbounded), so results
//! that overflow are errors; strings a builtin would build beyond 16 MiB are errors;
//! `validate_string` runs its regular expression with Rust's `regex` dialect (no
//! lookaround or backreferences: those patterns are errors); non-ASCII digits are not
//! numbers to `int()`, `float()` or the date parser.

mod arith;
mod dateparse;
mod dates;
mod k8s;
mod net;
mod python;
mod text;
mod validate;

use crate::value::Value;

/// A builtin failed where Congress's would have raised (and silently failed the literal).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{builtin}: {message}")]
pub struct BuiltinError {
    /// The builtin's name.
    pub builtin: &'static str,
    /// What went wrong, in Python's words where Python had them.
    pub message: String,
}

/// The shape of a builtin's implementation.
#[derive(Clone, Copy)]
enum Func {
    /// Two inputs, no output: a test.
    Test(fn(&Value, &Value) -> Result<bool, String>),
    /// No input, one output.
    Nullary(fn() -> Value),
    /// One input, one output.
    Unary(fn(&Value) -> Result<Value, String>),
    /// Two inputs, one output.
    Binary(fn(&Value, &Value) -> Result<Value, String>),
    /// One input, several outputs.
    Unpack(fn(&Value) -> Result<Vec<Value>, String>),
    /// Several inputs, one output.
    Pack(fn(&[Value]) -> Result<Value, String>),
    /// Several inputs, one output or none (the literal is false): a partial function.
    Partial(fn(&[Value]) -> Result<Option<Value>, String>),
}

/// Analysis of a constant input: `check(index, value)` is an error for a constant that
/// would fail on every row (a bad regular expression).
type ConstCheck = fn(usize, &Value) -> Result<(), String>;

/// One builtin: the first `inputs` args are inputs, the remaining `arity - inputs` are outputs.
pub struct Builtin {
    /// The name, without the `builtin:` prefix.
    pub name: &'static str,
    /// The number of arguments.
    pub arity: usize,
    /// How many of the arguments, from the first, are inputs.
    pub inputs: usize,
    func: Func,
    check: Option<ConstCheck>,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin")
            .field("name", &self.name)
            .field("arity", &self.arity)
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

impl Builtin {
    const fn new(name: &'static str, arity: usize, inputs: usize, func: Func) -> Self {
        Builtin { name, arity, inputs, func, check: None }
    }

    const fn checked(mut self, check: ConstCheck) -> Self {
        self.check = Some(check);
        self
    }

    /// Analysis of input `index` when the rule gives it as the constant `value`: an error
    /// if the builtin would fail for it on every row (a bad regular expression).
    pub fn check_constant(&self, index: usize, value: &Value) -> Result<(), String> {
        match self.check {
            Some(check) if index < self.inputs => check(index, value),
            _ => Ok(()),
        }
    }

    /// The number of outputs.
    pub fn outputs(&self) -> usize {
        self.arity - self.inputs
    }

    /// Ok(None): the literal is false. Ok(Some(outputs)) with outputs.len() == arity - inputs: it holds.
    /// Err: Congress would have raised (TypeError, ZeroDivisionError, bad IP, bad date...) and silently failed the literal; we surface it.
    pub fn call(&self, inputs: &[Value]) -> Result<Option<Vec<Value>>, BuiltinError> {
        if inputs.len() != self.inputs {
            return Err(self.error(format!("takes {} inputs, got {}", self.inputs, inputs.len())));
        }
        let outputs = match (self.func, inputs) {
            (Func::Test(f), [x, y]) => f(x, y).map(|holds| holds.then(Vec::new)),
            (Func::Nullary(f), []) => Ok(Some(vec![f()])),
            (Func::Unary(f), [x]) => f(x).map(|v| Some(vec![v])),
            (Func::Binary(f), [x, y]) => f(x, y).map(|v| Some(vec![v])),
            (Func::Unpack(f), [x]) => f(x).map(Some),
            (Func::Pack(f), args) => f(args).map(|v| Some(vec![v])),
            (Func::Partial(f), args) => f(args).map(|v| v.map(|v| vec![v])),
            _ => Err(format!("takes {} inputs", self.inputs)),
        }
        .map_err(|message| self.error(message))?;
        debug_assert!(outputs.as_ref().is_none_or(|o| o.len() == self.outputs()));
        Ok(outputs)
    }

    fn error(&self, message: String) -> BuiltinError {
        BuiltinError { builtin: self.name, message }
    }
}

use Func::{Binary, Nullary, Pack, Partial, Test, Unary, Unpack};

/// Every builtin: Congress's, in the order of its `builtin.py`, then this project's.
static BUILTINS: [Builtin; 63] = [
    // comparison
    Builtin::new("lt", 2, 2, Test(arith::lt)),
    Builtin::new("lteq", 2, 2, Test(arith::lteq)),
    Builtin::new("equal", 2, 2, Test(arith::equal)),
    Builtin::new("gt", 2, 2, Test(arith::gt)),
    Builtin::new("gteq", 2, 2, Test(arith::gteq)),
    Builtin::new("max", 3, 2, Binary(arith::max)),
    // arithmetic
    Builtin::new("plus", 3, 2, Binary(arith::plus)),
    Builtin::new("minus", 3, 2, Binary(arith::minus)),
    Builtin::new("mul", 3, 2, Binary(arith::mul)),
    Builtin::new("div", 3, 2, Binary(arith::div)),
    Builtin::new("float", 2, 1, Unary(arith::float)),
    Builtin::new("int", 2, 1, Unary(arith::int)),
    // string (Congress's concat is Python's `x + y`, so it also adds numbers)
    Builtin::new("concat", 3, 2, Binary(arith::plus)),
    Builtin::new("len", 2, 1, Unary(arith::len)),
    // datetime
    Builtin::new("now", 1, 0, Nullary(dates::now)),
    Builtin::new("unpack_date", 4, 1, Unpack(dates::unpack_date)),
    Builtin::new("unpack_time", 4, 1, Unpack(dates::unpack_time)),
    Builtin::new("unpack_datetime", 7, 1, Unpack(dates::unpack_datetime)),
    Builtin::new("pack_time", 4, 3, Pack(dates::pack_time)),
    Builtin::new("pack_date", 4, 3, Pack(dates::pack_date)),
    Builtin::new("pack_datetime", 7, 6, Pack(dates::pack_datetime)),
    Builtin::new("extract_date", 2, 1, Unary(dates::extract_date)),
    Builtin::new("extract_time", 2, 1, Unary(dates::extract_time)),
    Builtin::new("datetime_to_seconds", 2, 1, Unary(dates::datetime_to_seconds)),
    Builtin::new("datetime_plus", 3, 2, Binary(dates::datetime_plus)),
    Builtin::new("datetime_minus", 3, 2, Binary(dates::datetime_minus)),
    Builtin::new("datetime_lt", 2, 2, Test(dates::datetime_lt)),
    Builtin::new("datetime_lteq", 2, 2, Test(dates::datetime_lteq)),
    Builtin::new("datetime_gt", 2, 2, Test(dates::datetime_gt)),
    Builtin::new("datetime_gteq", 2, 2, Test(dates::datetime_gteq)),
    Builtin::new("datetime_equal", 2, 2, Test(dates::datetime_equal)),
    // netaddr
    Builtin::new("ips_equal", 2, 2, Test(net::ips_equal)),
    Builtin::new("ips_lt", 2, 2, Test(net::ips_lt)),
    Builtin::new("ips_lteq", 2, 2, Test(net::ips_lteq)),
    Builtin::new("ips_gt", 2, 2, Test(net::ips_gt)),
    Builtin::new("ips_gteq", 2, 2, Test(net::ips_gteq)),
    Builtin::new("networks_equal", 2, 2, Test(net::networks_equal)),
    Builtin::new("networks_overlap", 2, 2, Test(net::networks_overlap)),
    Builtin::new("ip_in_network", 2, 2, Test(net::ip_in_network)),
    // type
    Builtin::new("validate_int", 4, 3, Pack(validate::validate_int)),
    Builtin::new("validate_float", 4, 3, Pack(validate::validate_float)),
    Builtin::new("validate_string", 6, 5, Pack(validate::validate_string)),
    // strings (not in Congress): string inputs only, the string first
    Builtin::new("startswith", 2, 2, Test(text::startswith)),
    Builtin::new("endswith", 2, 2, Test(text::endswith)),
    Builtin::new("contains", 2, 2, Test(text::contains)),
    Builtin::new("lower", 2, 1, Unary(text::lower)),
    Builtin::new("upper", 2, 1, Unary(text::upper)),
    Builtin::new("strip", 2, 1, Unary(text::strip)),
    Builtin::new("split", 4, 3, Partial(text::split)),
    Builtin::new("replace", 4, 3, Pack(text::replace)),
    Builtin::new("substring", 4, 3, Pack(text::substring)),
    Builtin::new("regex_match", 2, 2, Test(text::regex_match)).checked(text::check_regex_match),
    Builtin::new("glob_match", 2, 2, Test(text::glob_match)),
    // Kubernetes-shaped data and networks (not in Congress)
    Builtin::new("parse_quantity", 2, 1, Unary(k8s::parse_quantity)),
    Builtin::new("parse_image", 5, 1, Unpack(k8s::parse_image)),
    Builtin::new("semver_compare", 3, 2, Binary(k8s::semver_compare)).checked(k8s::check_semver),
    Builtin::new("semver_lt", 2, 2, Test(k8s::semver_lt)).checked(k8s::check_semver),
    Builtin::new("semver_lteq", 2, 2, Test(k8s::semver_lteq)).checked(k8s::check_semver),
    Builtin::new("semver_gt", 2, 2, Test(k8s::semver_gt)).checked(k8s::check_semver),
    Builtin::new("semver_gteq", 2, 2, Test(k8s::semver_gteq)).checked(k8s::check_semver),
    Builtin::new("semver_equal", 2, 2, Test(k8s::semver_equal)).checked(k8s::check_semver),
    Builtin::new("json_get", 3, 2, Partial(k8s::json_get)).checked(k8s::check_json_path),
    Builtin::new("network_in_network", 2, 2, Test(net::network_in_network)),
];

/// The builtin with this name and arity (name without any `builtin:` prefix).
pub fn lookup(name: &str, arity: usize) -> Option<&'static Builtin> {
    all().iter().find(|b| b.name == name && b.arity == arity)
}

/// True if `name` is a builtin name at any arity (reserved: facts/heads may not use it).
pub fn is_reserved(name: &str) -> bool {
    all().iter().any(|b| b.name == name)
}

/// Every builtin, for docs and `congress` help.
pub fn all() -> &'static [Builtin] {
    &BUILTINS
}

/// Value constructors the builtins' tests share.
#[cfg(test)]
pub(crate) mod test_values {
    use crate::value::Value;

    pub fn s(x: &str) -> Value {
        Value::str(x)
    }
    pub const I: fn(i64) -> Value = Value::Int;
    pub const F: fn(f64) -> Value = Value::Float;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::builtins::test_values::{F, I, s};

    /// Calls builtin `name` with `inputs` and room for `outputs` outputs.
    fn call(name: &str, inputs: &[Value], outputs: usize) -> Result<Option<Vec<Value>>, BuiltinError> {
        let b = lookup(name, inputs.len() + outputs).expect("a builtin");
        b.call(inputs)
    }

    /// The single output, or `None` if the builtin failed or raised.
    fn out(name: &str, inputs: &[Value]) -> Option<Value> {
        call(name, inputs, 1).ok().flatten().and_then(|v| v.into_iter().next())
    }

    /// Whether a test builtin holds (an error counts as false, as in Congress).
    fn holds(name: &str, x: &Value, y: &Value) -> bool {
        matches!(call(name, &[x.clone(), y.clone()], 0), Ok(Some(_)))
    }

    #[test]
    fn table_is_consistent() {
        assert_eq!(all().len(), 63);
        for (i, b) in all().iter().enumerate() {
            assert!(b.inputs <= b.arity, "{}", b.name);
            let shape = match b.func {
                Func::Test(_) => (2, 0),
                Func::Nullary(_) => (0, 1),
                Func::Unary(_) => (1, 1),
                Func::Binary(_) => (2, 1),
                Func::Unpack(_) => (1, b.outputs()),
                Func::Pack(_) | Func::Partial(_) => (b.inputs, 1),
            };
            assert_eq!(shape, (b.inputs, b.outputs()), "{}", b.name);
            let same = all().iter().skip(i + 1).any(|o| o.name == b.name && o.arity == b.arity);
            assert!(!same, "{} listed twice", b.name);
        }
    }

    #[test]
    fn lookup_by_name_and_arity() {
        let plus = lookup("plus", 3).expect("plus/3");
        assert_eq!((plus.name, plus.arity, plus.inputs, plus.outputs()), ("plus", 3, 2, 1));
        assert!(lookup("plus", 2).is_none());
        assert!(lookup("builtin:plus", 3).is_none());
        assert!(lookup("nope", 2).is_none());
        assert_eq!(lookup("unpack_datetime", 7).map(|b| b.inputs), Some(1));
        assert_eq!(lookup("validate_string", 6).map(|b| b.inputs), Some(5));
        assert!(is_reserved("lt"));
        assert!(is_reserved("ip_in_network"));
        assert!(!is_reserved("servers"));
        assert!(!is_reserved(""));
    }

    #[test]
    fn wrong_input_count_is_an_error() {
        let lt = lookup("lt", 2).expect("lt/2");
        let err = lt.call(&[I(1)]).expect_err("one input is too few");
        assert_eq!(err.builtin, "lt");
        assert_eq!(err.to_string(), "lt: takes 2 inputs, got 1");
        assert!(lookup("now", 1).expect("now/1").call(&[I(1)]).is_err());
    }

    #[test]
    fn errors_name_the_builtin() {
        let err = call("div", &[I(1), I(0)], 1).expect_err("division by zero");
        assert_eq!(err, BuiltinError { builtin: "div", message: "integer division or modulo by zero".into() });
        assert_eq!(err.to_string(), "div: integer division or modulo by zero");
    }

    #[test]
    fn every_builtin_answers_through_call() {
        assert_eq!(call("lt", &[I(1), I(2)], 0), Ok(Some(vec![])));
        assert_eq!(call("lt", &[I(2), I(1)], 0), Ok(None));
        assert!(matches!(call("now", &[], 1), Ok(Some(v)) if v.len() == 1));
        assert_eq!(call("unpack_time", &[s("2020-01-02 03:04:05")], 3), Ok(Some(vec![I(3), I(4), I(5)])));
        assert_eq!(out("pack_datetime", &[I(2020), I(1), I(2), I(3), I(4), I(5)]), Some(s("2020-1-2 3:4:5")));
        assert_eq!(out("validate_int", &[I(1), I(5), I(9)]), Some(s("Should be less than or equal to 5")));
        assert_eq!(out("validate_float", &[s(""), s(""), F(1.0)]), Some(s("")));
        assert_eq!(
            out("validate_string", &[s(""), I(2), s(""), s(""), s("abc")]),
            Some(s("Value 'abc' exceeds maximum length 2"))
        );
        assert!(holds("networks_equal", &s("10.0.0.1/24"), &s("10.0.0.0/24")));
        assert!(holds("datetime_lt", &s("2020-01-01"), &s("2020-01-02")));
    }

    /// The builtin_* conformance cases recorded from Congress, replayed as direct calls.
    #[test]
    fn conformance_builtin_arithmetic() {
        let rows = [(I(7), I(2)), (F(2.5), F(0.5)), (I(9), I(0)), (I(8), F(3.0))];
        let calc: Vec<[Value; 6]> = rows
            .iter()
            .filter_map(|(a, b)| {
                let ab = [a.clone(), b.clone()];
                Some([a.clone(), b.clone(), out("plus", &ab)?, out("minus", &ab)?, out("mul", &ab)?, out("div", &ab)?])
            })
            .collect();
        assert_eq!(
            calc,
            [
                [I(7), I(2), I(9), I(5), I(14), I(3)],
                [F(2.5), F(0.5), F(3.0), F(2.0), F(1.25), F(5.0)],
                [I(8), F(3.0), F(11.0), F(5.0), F(24.0), F(2.6666666666666665)],
            ]
        );
        let sums: Vec<Value> = rows.iter().filter_map(|(a, b)| out("plus", &[a.clone(), b.clone()])).collect();
        assert_eq!(sums, [I(9), F(3.0), I(9), F(11.0)]);
    }

    #[test]
    fn conformance_builtin_comparisons_and_max() {
        // v(5.0) was rejected as a duplicate of v(5), so v holds 3 and 5.
        let v = [I(3), I(5)];
        let w = [s("apple"), s("banana")];
        let pairs = |vals: &[Value], name: &str| -> Vec<(Value, Value)> {
            let mut found = Vec::new();
            for a in vals {
                for b in vals {
                    if holds(name, a, b) {
                        found.push((a.clone(), b.clone()));
                    }
                }
            }
            found
        };
        assert_eq!(pairs(&v, "lt"), [(I(3), I(5))]);
        assert_eq!(pairs(&v, "lteq"), [(I(3), I(3)), (I(3), I(5)), (I(5), I(5))]);
        assert_eq!(pairs(&v, "equal"), [(I(3), I(3)), (I(5), I(5))]);
        assert_eq!(pairs(&w, "gt"), [(s("banana"), s("apple"))]);
        assert_eq!(
            pairs(&w, "gteq"),
            [(s("apple"), s("apple")), (s("banana"), s("apple")), (s("banana"), s("banana"))]
        );
        let mx: Vec<Option<Value>> =
            [(3, 3), (3, 5), (5, 3), (5, 5)].iter().map(|&(a, b)| out("max", &[I(a), I(b)])).collect();
        assert_eq!(mx, [Some(I(3)), Some(I(5)), Some(I(5)), Some(I(5))]);
    }

    #[test]
    fn conformance_builtin_type_errors_fail_silently() {
        let vals = [(s("k1"), I(5)), (s("k2"), s("5")), (s("k3"), s("abc"))];
        let small: Vec<&Value> = vals.iter().filter(|(_, x)| holds("lt", x, &I(10))).map(|(k, _)| k).collect();
        assert_eq!(small, [&s("k1")]);
        // `not lt(x, 10)` holds where lt raised.
        let not_small: Vec<&Value> = vals.iter().filter(|(_, x)| !holds("lt", x, &I(10))).map(|(k, _)| k).collect();
        assert_eq!(not_small, [&s("k2"), &s("k3")]);
        assert!(call("lt", &[s("5"), I(10)], 0).is_err());
        let inc: Vec<Option<Value>> = vals.iter().map(|(_, x)| out("plus", &[x.clone(), I(1)])).collect();
        assert_eq!(inc, [Some(I(6)), None, None]);
        let twice: Vec<Option<Value>> = vals.iter().map(|(_, x)| out("mul", &[x.clone(), I(2)])).collect();
        assert_eq!(twice, [Some(I(10)), Some(s("55")), Some(s("abcabc"))]);
    }

    #[test]
    fn conformance_builtin_strings_and_casts() {
        for (a, b, joined, length, as_int, as_float) in
            [("net", "42", "net-42", 5, 42, 42.0), ("vol", "7", "vol-7", 4, 7, 7.0)]
        {
            let t = out("concat", &[s(a), s("-")]).expect("concat");
            assert_eq!(out("concat", &[t, s(b)]), Some(s(joined)));
            let j = out("concat", &[s(a), s(b)]).expect("concat");
            assert_eq!(out("len", &[j]), Some(I(length)));
            assert_eq!(out("int", &[s(b)]), Some(I(as_int)));
            assert_eq!(out("float", &[s(b)]), Some(F(as_float)));
            let i = out("int", &[s(b)]).expect("int");
            assert_eq!(out("plus", &[i, I(1)]), Some(I(as_int + 1)));
        }
    }

    #[test]
    fn conformance_builtin_network_addresses() {
        let ips = [("a", "10.0.0.5"), ("b", "192.168.1.1"), ("c", "10.0.0.05"), ("d", "::1")];
        let nets = [("n1", "10.0.0.0/24"), ("n2", "10.0.0.0/16"), ("n3", "172.16.0.0/12")];
        let mut inside = Vec::new();
        for (i, a) in ips {
            for (n, c) in nets {
                if holds("ip_in_network", &s(a), &s(c)) {
                    inside.push((i, n));
                }
            }
        }
        assert_eq!(inside, [("a", "n1"), ("a", "n2")]);
        let mut overlap = Vec::new();
        for (n, c) in nets {
            for (m, d) in nets {
                if holds("networks_overlap", &s(c), &s(d)) && !holds("equal", &s(n), &s(m)) {
                    overlap.push((n, m));
                }
            }
        }
        assert_eq!(overlap, [("n1", "n2"), ("n2", "n1")]);
        let mut ordered = Vec::new();
        let mut same = Vec::new();
        for (i, a) in ips {
            for (j, b) in ips {
                if holds("ips_lt", &s(a), &s(b)) {
                    ordered.push((i, j));
                }
                if holds("ips_equal", &s(a), &s(b)) && holds("lt", &s(i), &s(j)) {
                    same.push((i, j));
                }
            }
        }
        assert_eq!(ordered, [("a", "b"), ("a", "d"), ("b", "d")]);
        assert!(same.is_empty());
    }

    /// The examples of `docs/language.md` hold.
    #[test]
    fn documented_examples_hold() {
        let holds_with = |name: &str, args: Vec<Value>| {
            let b = lookup(name, args.len()).expect("a builtin");
            let out = b.call(&args[..b.inputs]);
            assert_eq!(out, Ok(Some(args[b.inputs..].to_vec())), "{name}{args:?}");
        };
        holds_with("int", vec![F(3.9), I(3)]);
        holds_with("mul", vec![I(4), F(2.5), F(10.0)]);
        holds_with("mul", vec![s("ab"), I(2), s("abab")]);
        holds_with("div", vec![F(7.0), I(2), F(3.5)]);
        holds_with("unpack_date", vec![s("2020-01-02"), I(2020), I(1), I(2)]);
        holds_with("unpack_time", vec![s("03:04:05"), I(3), I(4), I(5)]);
        holds_with("pack_date", vec![I(2020), I(1), I(2), s("2020-1-2")]);
        holds_with("pack_time", vec![I(3), I(4), I(5), s("3:4:5")]);
        holds_with("extract_date", vec![s("2020-01-02 03:04:05"), s("2020-01-02")]);
        holds_with("extract_time", vec![s("2020-01-02 03:04:05"), s("03:04:05")]);
        holds_with("datetime_to_seconds", vec![s("1900-01-02"), I(86400)]);
        holds_with("datetime_plus", vec![s("2020-01-01 00:00:00"), I(3600), s("2020-01-01 01:00:00")]);
        holds_with("datetime_minus", vec![s("2020-01-01 01:00:00"), s("1:00:00"), s("2020-01-01 00:00:00")]);
        holds_with("validate_float", vec![F(0.5), F(1.5), F(1.0), s("")]);
        holds_with("validate_string", vec![s("^a"), s(""), s(""), s(""), s("abc"), s("")]);
        holds_with("lower", vec![s("NGINX"), s("nginx")]);
        holds_with("strip", vec![s("  a b \n"), s("a b")]);
        holds_with("split", vec![s("a/b/c"), s("/"), I(-1), s("c")]);
        holds_with("replace", vec![s("a:b:c"), s(":"), s("/"), s("a/b/c")]);
        holds_with("substring", vec![s("nginx:1.25"), I(-4), I(100), s("1.25")]);
        holds_with("regex_match", vec![s("nginx:1.25"), s(r":[0-9]+\.[0-9]+$")]);
        holds_with("glob_match", vec![s("registry.example.com/team/app:1.2"), s("registry.example.com/*")]);
        holds_with("parse_quantity", vec![s("100n"), F(1e-07)]);
        holds_with("parse_image", vec![s("nginx"), s("docker.io"), s("library/nginx"), s("latest"), s("")]);
        holds_with(
            "json_get",
            vec![
                s(r#"{"labels": {"app.kubernetes.io/name": "web"}}"#),
                s(r#"labels["app.kubernetes.io/name"]"#),
                s("web"),
            ],
        );
        holds_with("json_get", vec![s(r#"{"ports": [80, 443]}"#), s("ports.1"), I(443)]);
        holds_with("network_in_network", vec![s("10.1.2.0/24"), s("10.0.0.0/8")]);
        holds_with("semver_lt", vec![s("v1.27.3"), s("1.28.0")]);
        assert_eq!(call("split", &[s("a/b/c"), s("/"), I(3)], 1), Ok(None));
    }

    /// Values that reach the builtins' interesting paths, plus arbitrary ones.
    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            (-100i64..100).prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            prop::sample::select(vec![0.0, -0.0, 0.5, 1e308, f64::INFINITY, f64::NAN]).prop_map(Value::Float),
            any::<String>().prop_map(Value::from),
            "[0-9 :./T+-]{0,24}".prop_map(Value::from),
            "[0-9a-fA-Z:./ ()_,-]{0,24}".prop_map(Value::from),
            prop::sample::select(vec![
                "",
                "2020-01-02 03:04:05",
                "10:00 pm",
                "Jan 5 2021",
                "10.0.0.1",
                "::1",
                "10.0.0.0/8",
                "1:2:3",
                "abc",
                "(",
                "^a+$",
                "'q'",
                "500m",
                "1Gi",
                "nginx:latest",
                "registry.example.com/team/app@sha256:0123456789abcdef0123456789abcdef",
                "v1.2.3-rc.1+b",
                "{\"a\": [1, {\"b\": null}]}",
                "a.0.b",
                "*a?",
                "99999999999999999999",
                "inf",
                "nan",
            ])
            .prop_map(Value::str),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No builtin panics, whatever it is given, and a success has one value per output.
        #[test]
        fn no_builtin_panics(args in prop::collection::vec(any_value(), 6)) {
            for b in all() {
                if let Ok(Some(outputs)) = b.call(&args[..b.inputs]) {
                    prop_assert_eq!(outputs.len(), b.outputs(), "{}", b.name);
                }
            }
        }
    }
}
