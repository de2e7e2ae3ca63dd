//! String builtins Congress lacks: prefix, suffix and substring tests, case and
//! whitespace, `split`, `replace`, Python-style slicing, regular expressions (the `regex`
//! crate, linear time) and Kyverno-style `*`/`?` wildcards.
//!
//! Unlike Congress's `concat`, which is Python's `+`, these take strings only: a number
//! where a string is expected is a failure (counted against the rule), as Python's
//! `str` methods raise `TypeError` for it. Lengths and indices count characters (code
//! points), as Python's do.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex::Regex;

use super::arith::MAX_STR_BYTES;
use super::python::{self, type_name};
use crate::value::Value;

/// The string in `v`, or Python's `TypeError` for anything else.
pub(super) fn text<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(format!("{what} must be str, not {}", type_name(other))),
    }
}

/// The int in `v`, or a `TypeError`.
fn index(v: &Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!("{what} must be int, not {}", type_name(other))),
    }
}

fn check_len(bytes: usize) -> Result<(), String> {
    if bytes > MAX_STR_BYTES {
        Err(format!("result would be {bytes} bytes, over the {MAX_STR_BYTES}-byte limit"))
    } else {
        Ok(())
    }
}

/// `startswith(s, prefix)`: Python's `s.startswith(prefix)`.
pub(super) fn startswith(s: &Value, prefix: &Value) -> Result<bool, String> {
    Ok(text(s, "string")?.starts_with(text(prefix, "prefix")?))
}

/// `endswith(s, suffix)`: Python's `s.endswith(suffix)`.
pub(super) fn endswith(s: &Value, suffix: &Value) -> Result<bool, String> {
    Ok(text(s, "string")?.ends_with(text(suffix, "suffix")?))
}

/// `contains(s, part)`: Python's `part in s`.
pub(super) fn contains(s: &Value, part: &Value) -> Result<bool, String> {
    Ok(text(s, "string")?.contains(text(part, "part")?))
}

/// `lower(s, out)`.
pub(super) fn lower(s: &Value) -> Result<Value, String> {
    let low = text(s, "string")?.to_lowercase();
    check_len(low.len())?;
    Ok(Value::from(low))
}

/// `upper(s, out)`.
pub(super) fn upper(s: &Value) -> Result<Value, String> {
    let up = text(s, "string")?.to_uppercase();
    check_len(up.len())?;
    Ok(Value::from(up))
}

/// `strip(s, out)`: Python's `s.strip()`, whitespace at both ends.
pub(super) fn strip(s: &Value) -> Result<Value, String> {
    Ok(Value::str(text(s, "string")?.trim_matches(python::is_space)))
}

/// A Python index (negative counts from the end) into `len` items, or `None` out of range.
fn item_index(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { i.checked_add(len)? } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// `split(s, sep, i, part)`: Python's `s.split(sep)[i]`. An index out of range is no
/// answer (the literal is false), not a failure; an empty separator is a failure.
pub(super) fn split(args: &[Value]) -> Result<Option<Value>, String> {
    let [s, sep, i] = args else {
        return Err("expected 3 inputs".into());
    };
    let (s, sep, i) = (text(s, "string")?, text(sep, "separator")?, index(i, "index")?);
    if sep.is_empty() {
        return Err("empty separator".into());
    }
    let parts = s.split(sep).count();
    Ok(item_index(i, parts).and_then(|k| s.split(sep).nth(k)).map(Value::str))
}

/// `replace(s, old, new, out)`: Python's `s.replace(old, new)`, every occurrence.
pub(super) fn replace(args: &[Value]) -> Result<Value, String> {
    let [s, old, new] = args else {
        return Err("expected 3 inputs".into());
    };
    let (s, old, new) = (text(s, "string")?, text(old, "old")?, text(new, "new")?);
    // An empty `old` matches between every character and at both ends.
    let count = if old.is_empty() { s.chars().count() + 1 } else { s.matches(old).count() };
    let bytes = (s.len() - count * old.len()).saturating_add(count.saturating_mul(new.len()));
    check_len(bytes)?;
    Ok(Value::from(s.replace(old, new)))
}

/// A Python slice bound (negative counts from the end), clamped to `0..=len`.
fn slice_bound(i: i64, len: usize) -> usize {
    let n = i64::try_from(len).unwrap_or(i64::MAX);
    let i = if i < 0 { i.saturating_add(n).max(0) } else { i.min(n) };
    i as usize
}

/// `substring(s, start, end, out)`: Python's `s[start:end]`, in characters; bounds are
/// clamped, negative ones count from the end, and an empty range gives `""`.
pub(super) fn substring(args: &[Value]) -> Result<Value, String> {
    let [s, start, end] = args else {
        return Err("expected 3 inputs".into());
    };
    let (s, start, end) = (text(s, "string")?, index(start, "start")?, index(end, "end")?);
    let len = s.chars().count();
    let (a, b) = (slice_bound(start, len), slice_bound(end, len));
    if a >= b {
        return Ok(Value::str(""));
    }
    Ok(Value::from(s.chars().skip(a).take(b - a).collect::<String>()))
}

/// Compiled patterns per thread, so a rule evaluated over many rows compiles each
/// pattern once. Bad patterns are remembered too.
const CACHE_LIMIT: usize = 128;

type Compiled = Result<Rc<Regex>, String>;

thread_local! {
    static CACHE: RefCell<HashMap<String, Compiled>> = RefCell::new(HashMap::new());
}

/// Patterns compile to at most this much memory (the `regex` crate's own limit is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compile `pattern` in the `regex` crate's dialect, or say why it is not one.
pub(super) fn compile(pattern: &str) -> Compiled {
    if let Some(hit) = CACHE.with(|c| c.borrow().get(pattern).cloned()) {
        return hit;
    }
    let compiled = regex::RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build().map(Rc::new).map_err(|e| {
        // The crate's syntax errors quote the pattern over several lines; keep the reason.
        let why = e.to_string();
        let why = why.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
        let why = why.trim().trim_start_matches("error: ");
        format!("bad regular expression {}: {why}", python::repr_str(pattern))
    });
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(pattern.to_string(), compiled.clone());
    });
    compiled
}

/// `regex_match(s, pattern)`: the pattern matches somewhere in `s` (anchor it with `^`
/// and `$` to match the whole string). A bad pattern is a failure.
pub(super) fn regex_match(s: &Value, pattern: &Value) -> Result<bool, String> {
    let s = text(s, "string")?;
    let re = compile(text(pattern, "pattern")?)?;
    Ok(re.is_match(s))
}

/// Analysis of a constant `regex_match` pattern: it must be a string that compiles.
pub(super) fn check_regex_match(arg: usize, v: &Value) -> Result<(), String> {
    if arg == 1 {
        compile(text(v, "pattern")?)?;
    }
    Ok(())
}

/// `glob_match(s, pattern)`: Kyverno's wildcards, over the whole string: `*` is any run
/// of characters (`/` included), `?` any one character, everything else itself.
pub(super) fn glob_match(s: &Value, pattern: &Value) -> Result<bool, String> {
    let s: Vec<char> = text(s, "string")?.chars().collect();
    let p: Vec<char> = text(pattern, "pattern")?.chars().collect();
    Ok(wildcard(&s, &p))
}

/// Greedy matching with one backtrack point (the last `*`): O(len(s) * len(p)) at worst.
fn wildcard(s: &[char], p: &[char]) -> bool {
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if j < p.len() && (p[j] == '?' || p[j] == s[i]) {
            i += 1;
            j += 1;
        } else if j < p.len() && p[j] == '*' {
            star = Some((j, i));
            j += 1;
        } else if let Some((sj, si)) = star {
            j = sj + 1;
            i = si + 1;
            star = Some((sj, si + 1));
        } else {
            return false;
        }
    }
    p[j..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::builtins::test_values::s;
    const I: fn(i64) -> Value = Value::Int;

    #[test]
    fn prefix_suffix_contains() {
        let img = s("registry.example.com/team/app:1.2");
        assert_eq!(startswith(&img, &s("registry.example.com/")), Ok(true));
        assert_eq!(startswith(&img, &s("docker.io/")), Ok(false));
        assert_eq!(startswith(&img, &s("")), Ok(true));
        assert_eq!(endswith(&img, &s(":1.2")), Ok(true));
        assert_eq!(endswith(&s("app:latest"), &s(":latest")), Ok(true));
        assert_eq!(contains(&img, &s("/team/")), Ok(true));
        assert_eq!(contains(&img, &s("TEAM")), Ok(false));
        assert_eq!(startswith(&s("é"), &s("é")), Ok(true));
        assert_eq!(startswith(&I(12), &s("1")), Err("string must be str, not int".into()));
        assert!(endswith(&s("x"), &Value::Float(1.0)).is_err());
        assert!(contains(&I(1), &I(1)).is_err());
    }

    #[test]
    fn case_and_whitespace() {
        assert_eq!(lower(&s("NGINX:Latest")), Ok(s("nginx:latest")));
        assert_eq!(upper(&s("straße")), Ok(s("STRASSE")));
        assert_eq!(strip(&s(" \t a b \n")), Ok(s("a b")));
        assert_eq!(strip(&s("\u{1c}x\u{85}")), Ok(s("x")));
        assert_eq!(strip(&s("")), Ok(s("")));
        assert!(lower(&I(1)).is_err());
        assert!(upper(&Value::Float(1.5)).is_err());
        assert!(strip(&I(1)).is_err());
    }

    #[test]
    fn split_parts() {
        let sp = |x: &str, sep: &str, i: i64| split(&[s(x), s(sep), I(i)]);
        assert_eq!(sp("a/b/c", "/", 0), Ok(Some(s("a"))));
        assert_eq!(sp("a/b/c", "/", 2), Ok(Some(s("c"))));
        assert_eq!(sp("a/b/c", "/", -1), Ok(Some(s("c"))));
        assert_eq!(sp("a/b/c", "/", -3), Ok(Some(s("a"))));
        assert_eq!(sp("a/b/c", "/", 3), Ok(None));
        assert_eq!(sp("a/b/c", "/", -4), Ok(None));
        assert_eq!(sp("a/b/c", "/", i64::MIN), Ok(None));
        assert_eq!(sp("a//b", "/", 1), Ok(Some(s(""))));
        assert_eq!(sp("", ",", 0), Ok(Some(s(""))));
        assert_eq!(sp("a::b", "::", 1), Ok(Some(s("b"))));
        assert_eq!(sp("abc", "", 0), Err("empty separator".into()));
        assert!(split(&[I(1), s(","), I(0)]).is_err());
        assert!(split(&[s("a,b"), s(","), s("0")]).is_err());
        assert!(split(&[s("a,b"), I(0), I(0)]).is_err());
    }

    #[test]
    fn replace_all() {
        let r = |x: &str, a: &str, b: &str| replace(&[s(x), s(a), s(b)]);
        assert_eq!(r("a:b:c", ":", "/"), Ok(s("a/b/c")));
        assert_eq!(r("aaa", "aa", "b"), Ok(s("ba")));
        assert_eq!(r("abc", "", "-"), Ok(s("-a-b-c-")));
        assert_eq!(r("abc", "x", "y"), Ok(s("abc")));
        assert_eq!(r("abc", "b", ""), Ok(s("ac")));
        let big = "x".repeat(1 << 20);
        assert!(r(&big, "x", &"y".repeat(32)).is_err(), "32 MiB result");
        assert!(replace(&[s("a"), I(1), s("b")]).is_err());
        assert!(replace(&[s("a"), s("a"), I(1)]).is_err());
    }

    #[test]
    fn python_slices() {
        let sub = |x: &str, a: i64, b: i64| substring(&[s(x), I(a), I(b)]);
        assert_eq!(sub("nginx:1.25", 0, 5), Ok(s("nginx")));
        assert_eq!(sub("nginx:1.25", 6, 100), Ok(s("1.25")));
        assert_eq!(sub("nginx:1.25", -4, 10), Ok(s("1.25")));
        assert_eq!(sub("abc", -100, -1), Ok(s("ab")));
        assert_eq!(sub("abc", 2, 1), Ok(s("")));
        assert_eq!(sub("abc", i64::MIN, i64::MAX), Ok(s("abc")));
        assert_eq!(sub("héllo", 1, 2), Ok(s("é")));
        assert!(substring(&[s("abc"), s("0"), I(1)]).is_err());
        assert!(substring(&[s("abc"), I(0), Value::Float(1.0)]).is_err());
        assert!(substring(&[I(123), I(0), I(1)]).is_err());
    }

    #[test]
    fn regular_expressions() {
        let m = |x: &str, p: &str| regex_match(&s(x), &s(p));
        assert_eq!(m("nginx:1.25", r":\d+\.\d+$"), Ok(true));
        assert_eq!(m("nginx:latest", r":\d+\.\d+$"), Ok(false));
        assert_eq!(m("abc", "b"), Ok(true), "unanchored");
        assert_eq!(m("abc", "^b"), Ok(false));
        assert_eq!(m("ABC", "(?i)^abc$"), Ok(true));
        assert_eq!(m("x", "("), Err("bad regular expression '(': unclosed group".into()));
        assert!(m("x", "(?=a)").is_err(), "no lookaround");
        assert!(m("x", r"(a)\1").is_err(), "no backreferences");
        assert!(m("x", "a{1000}{1000}").is_err(), "over the size limit");
        assert!(regex_match(&I(1), &s("1")).is_err());
        assert!(regex_match(&s("1"), &I(1)).is_err());
        assert_eq!(check_regex_match(1, &s("^a")), Ok(()));
        assert!(check_regex_match(1, &s("[")).is_err());
        assert!(check_regex_match(1, &I(1)).is_err());
        assert_eq!(check_regex_match(0, &I(1)), Ok(()));
        // Many distinct patterns: the cache stays bounded and answers stay right.
        for k in 0..300 {
            assert_eq!(m(&format!("v{k}"), &format!("^v{k}$")), Ok(true));
        }
        assert!(CACHE.with(|c| c.borrow().len()) <= CACHE_LIMIT);
    }

    #[test]
    fn wildcards() {
        let g = |x: &str, p: &str| glob_match(&s(x), &s(p)).unwrap();
        assert!(g("registry.example.com/team/app:1.2", "registry.example.com/*"));
        assert!(g("nginx:latest", "*:latest"));
        assert!(!g("nginx:latest", "*:1.*"));
        assert!(g("nginx:1.25", "nginx:1.2?"));
        assert!(!g("nginx:1.2", "nginx:1.2?"));
        assert!(g("", ""));
        assert!(g("", "*"));
        assert!(!g("a", ""));
        assert!(g("abcbcd", "a*bcd"));
        assert!(g("a*b", "a*b"));
        assert!(!g("ab", "a?b"));
        assert!(g("héllo", "h?llo"));
        assert!(g(&"a".repeat(2000), &format!("{}b*", "*a".repeat(50)).replace("b*", "*")));
        assert!(!g(&"a".repeat(2000), &format!("{}b", "*a".repeat(50))));
        assert!(glob_match(&I(1), &s("*")).is_err());
        assert!(glob_match(&s("1"), &I(1)).is_err());
    }
}
