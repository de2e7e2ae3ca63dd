//! Builtins for Kubernetes-shaped data (not in Congress): resource quantities as numbers,
//! container image references split into their parts, semantic versions compared, and
//! values read out of columns that hold JSON text.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

use super::text::text;
use crate::value::Value;

// ---------------------------------------------------------------------------------------
// Quantities

/// `parse_quantity(q, n)`: a Kubernetes quantity (`"500m"`, `"1Gi"`, `"2"`, `"1.5e3"`) as
/// a number: an int when it is a whole number that fits, else a float. A number is
/// already a quantity and is returned as it is.
pub(super) fn parse_quantity(q: &Value) -> Result<Value, String> {
    let s = match q {
        Value::Str(s) => &**s,
        Value::Int(_) => return Ok(q.clone()),
        Value::Float(f) if f.is_finite() => return Ok(q.clone()),
        Value::Float(f) => return Err(format!("quantity {f} is not finite")),
    };
    quantity(s).ok_or_else(|| {
        format!("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {s:?}")
    })
}

fn quantity(s: &str) -> Option<Value> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
        return None;
    }
    // value = digits * 10^exp10 * 2^exp2
    let (mut exp10, exp2): (i64, u32) = match suffix {
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "" => (0, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
                return None;
            }
            (exp.parse().ok()?, 0)
        }
    };
    exp10 -= frac_part.len() as i64;
    let digits = format!("{int_part}{frac_part}");
    let sign = if negative { -1 } else { 1 };
    if let Some(v) = exact(&digits, exp10, exp2) {
        return Some(Value::Int(sign * v));
    }
    let f = format!("{digits}e{exp10}").parse::<f64>().ok()? * 2f64.powi(exp2 as i32);
    f.is_finite().then(|| Value::Float(if negative { -f } else { f }))
}

/// `digits * 10^exp10 * 2^exp2` as an `i64`, if it is a whole number that fits.
fn exact(digits: &str, exp10: i64, exp2: u32) -> Option<i64> {
    let digits = digits.trim_start_matches('0');
    let mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let scaled = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    let whole = if exp10 >= 0 {
        scaled.checked_mul(10i128.checked_pow(u32::try_from(exp10).ok()?)?)?
    } else {
        let den = 10i128.checked_pow(u32::try_from(-exp10).ok()?)?;
        if scaled % den != 0 {
            return None;
        }
        scaled / den
    };
    i64::try_from(whole).ok()
}

// ---------------------------------------------------------------------------------------
// Image references

static PATH: LazyLock<Regex> = LazyLock::new(|| {
    let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    let tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    Regex::new(&format!(r"^({component}(?:/{component})*)(?::({tag}))?(?:@({digest}))?$")).expect("a valid regex")
});

static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    let label = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    Regex::new(&format!(r"^(?:{label}(?:\.{label})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")).expect("a valid regex")
});

/// `parse_image(ref, registry, repository, tag, digest)`: a container image reference,
/// normalised as Docker and Kubernetes do: `nginx` is `docker.io`, `library/nginx`,
/// `latest`, `""`. The tag is `latest` only when there is neither tag nor digest; an
/// absent digest is `""`.
pub(super) fn parse_image(r: &Value) -> Result<Vec<Value>, String> {
    let s = text(r, "image reference")?;
    let bad = || format!("invalid image reference {s:?}");
    if s.is_empty() || s.len() > 255 + 128 + 100 {
        return Err(bad());
    }
    // Docker's splitDockerDomain.
    let (mut registry, rest) = match s.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first => {
            (first, rest)
        }
        _ => ("docker.io", s),
    };
    if registry == "index.docker.io" {
        registry = "docker.io";
    }
    if !DOMAIN.is_match(registry) {
        return Err(bad());
    }
    let caps = PATH.captures(rest).ok_or_else(|| {
        if rest.to_lowercase() != rest && PATH.is_match(&rest.to_lowercase()) {
            format!("invalid image reference {s:?}: repository name must be lowercase")
        } else {
            bad()
        }
    })?;
    let mut repository = caps[1].to_string();
    if registry.len() + 1 + repository.len() > 255 {
        return Err(format!("invalid image reference {s:?}: repository name must not be more than 255 characters"));
    }
    if registry == "docker.io" && !repository.contains('/') {
        repository.insert_str(0, "library/");
    }
    let digest = caps.get(3).map_or("", |m| m.as_str());
    let tag = caps.get(2).map_or(if digest.is_empty() { "latest" } else { "" }, |m| m.as_str());
    Ok(vec![Value::str(registry), Value::from(repository), Value::str(tag), Value::str(digest)])
}

// ---------------------------------------------------------------------------------------
// Semantic versions

/// A parsed semantic version; build metadata is dropped (it does not order).
#[derive(Debug, PartialEq)]
struct Version<'a> {
    core: [u64; 3],
    pre: Vec<&'a str>,
}

fn numeric(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// Semantic Versioning 2.0.0, with an optional leading `v` (`v1.28.3`, as Kubernetes
/// writes them).
fn version(s: &str) -> Option<Version<'_>> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let s = match s.split_once('+') {
        Some((v, build)) => {
            let ok =
                build.split('.').all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            ok.then_some(v)?
        }
        None => s,
    };
    let (core, pre) = match s.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (s, None),
    };
    let mut parts = core.split('.');
    let core = [numeric(parts.next()?)?, numeric(parts.next()?)?, numeric(parts.next()?)?];
    if parts.next().is_some() {
        return None;
    }
    let pre = match pre {
        None => Vec::new(),
        Some(p) => {
            let ids: Vec<&str> = p.split('.').collect();
            let valid = |id: &&str| {
                !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id).is_some())
            };
            if !ids.iter().all(valid) {
                return None;
            }
            ids
        }
    };
    Some(Version { core, pre })
}

/// Precedence of two pre-release identifiers: numbers numerically, below alphanumerics.
fn cmp_identifier(a: &str, b: &str) -> Ordering {
    match (numeric(a), numeric(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn cmp_versions(a: &Version<'_>, b: &Version<'_>) -> Ordering {
    a.core.cmp(&b.core).then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a
            .pre
            .iter()
            .zip(&b.pre)
            .map(|(x, y)| cmp_identifier(x, y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.pre.len().cmp(&b.pre.len())),
    })
}

fn semver(v: &Value) -> Result<Version<'_>, String> {
    let s = text(v, "version")?;
    version(s).ok_or_else(|| format!("{s:?} is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build])"))
}

/// `semver_compare(a, b, result)`: -1, 0 or 1 as `a` is below, equal to or above `b` in
/// semantic-version precedence.
pub(super) fn semver_compare(a: &Value, b: &Value) -> Result<Value, String> {
    let order = cmp_versions(&semver(a)?, &semver(b)?);
    Ok(Value::Int(order as i64))
}

/// `semver_lt(a, b)` and the other tests: `a` is below `b` in semantic-version precedence.
pub(super) fn semver_lt(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(cmp_versions(&semver(a)?, &semver(b)?).is_lt())
}

pub(super) fn semver_lteq(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(cmp_versions(&semver(a)?, &semver(b)?).is_le())
}

pub(super) fn semver_gt(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(cmp_versions(&semver(a)?, &semver(b)?).is_gt())
}

pub(super) fn semver_gteq(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(cmp_versions(&semver(a)?, &semver(b)?).is_ge())
}

/// Same precedence: build metadata aside, the same version.
pub(super) fn semver_equal(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(cmp_versions(&semver(a)?, &semver(b)?).is_eq())
}

/// Analysis of constant versions: each must parse.
pub(super) fn check_semver(_arg: usize, v: &Value) -> Result<(), String> {
    semver(v).map(drop)
}

// ---------------------------------------------------------------------------------------
// JSON

/// One step of a path: a key, or a key that may also index a list.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Quoted(String),
}

/// A path as the drivers write them: dotted keys, a number indexes a list (negative
/// numbers from the end), and `["..."]` quotes a key holding dots. `""` is the whole value.
fn path(p: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| format!("bad path {p:?}: {why}");
    let mut steps = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[\"") {
            let end = after.find("\"]").ok_or_else(|| bad("unclosed [\""))?;
            steps.push(Step::Quoted(after[..end].to_string()));
            rest = &after[end + 2..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return Err(bad("empty key"));
            }
            steps.push(Step::Key(rest[..end].to_string()));
            rest = &rest[end..];
        }
        if let Some(after) = rest.strip_prefix('.') {
            if after.is_empty() {
                return Err(bad("ends with a dot"));
            }
            rest = after;
        } else if !rest.is_empty() && !rest.starts_with("[\"") {
            return Err(bad("expected `.` or `[\"` between keys"));
        }
    }
    Ok(steps)
}

/// `json_get(json, path, value)`: the value at `path` inside the JSON text `json`,
/// translated as the drivers translate: strings and numbers as themselves, booleans as
/// `"True"`/`"False"`, null as `"None"`, objects and lists as their JSON text. A path
/// that leads nowhere is no answer (the literal is false); text that is not JSON is a
/// failure.
pub(super) fn json_get(args: &[Value]) -> Result<Option<Value>, String> {
    let [json, p] = args else {
        return Err("expected 2 inputs".into());
    };
    let (json, p) = (text(json, "json")?, text(p, "path")?);
    let steps = path(p)?;
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let mut at = &doc;
    for step in &steps {
        let next = match (step, at) {
            (Step::Key(k) | Step::Quoted(k), serde_json::Value::Object(m)) => m.get(k),
            (Step::Key(k), serde_json::Value::Array(items)) => k
                .parse::<i64>()
                .ok()
                .and_then(|i| {
                    let len = i64::try_from(items.len()).ok()?;
                    let i = if i < 0 { i.checked_add(len)? } else { i };
                    usize::try_from(i).ok()
                })
                .and_then(|i| items.get(i)),
            _ => None,
        };
        let Some(next) = next else {
            return Ok(None);
        };
        at = next;
    }
    Ok(Some(match at {
        serde_json::Value::String(s) => Value::str(s),
        serde_json::Value::Bool(b) => Value::str(if *b { "True" } else { "False" }),
        serde_json::Value::Null => Value::str("None"),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => Value::from(other.to_string()),
    }))
}

/// Analysis of a constant path: it must parse.
pub(super) fn check_json_path(arg: usize, v: &Value) -> Result<(), String> {
    if arg == 1 {
        path(text(v, "path")?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::builtins::test_values::{F, I, s};

    #[test]
    fn quantities() {
        let q = |x: &str| parse_quantity(&s(x));
        assert_eq!(q("500m"), Ok(F(0.5)));
        assert_eq!(q("1Gi"), Ok(I(1_073_741_824)));
        assert_eq!(q("1000m"), Ok(I(1)));
        assert_eq!(q("2"), Ok(I(2)));
        assert_eq!(q("1.5"), Ok(F(1.5)));
        assert_eq!(q("1.5Gi"), Ok(I(1_610_612_736)));
        assert_eq!(q("128Mi"), Ok(I(134_217_728)));
        assert_eq!(q("1k"), Ok(I(1000)));
        assert_eq!(q("1M"), Ok(I(1_000_000)));
        assert_eq!(q("1e3"), Ok(I(1000)));
        assert_eq!(q("1E-3"), Ok(F(0.001)));
        assert_eq!(q("-250m"), Ok(F(-0.25)));
        assert_eq!(q("+3"), Ok(I(3)));
        assert_eq!(q(".5"), Ok(F(0.5)));
        assert_eq!(q("5."), Ok(I(5)));
        assert_eq!(q("100n"), Ok(F(1e-7)));
        assert_eq!(q("0"), Ok(I(0)));
        assert_eq!(q("16Ei"), Ok(F(18_446_744_073_709_551_616.0)), "past i64: a float");
        assert_eq!(parse_quantity(&I(4)), Ok(I(4)));
        assert_eq!(parse_quantity(&F(0.5)), Ok(F(0.5)));
        for bad in
            ["", "Gi", "1gi", "1 Gi", "1.2.3", "1Gib", "e3", "1e", "1e+", "--1", "1e9999999", "0x10", "1Ki1", "."]
        {
            assert!(q(bad).is_err(), "{bad:?}");
        }
        assert!(parse_quantity(&F(f64::INFINITY)).is_err());
    }

    #[test]
    fn image_references() {
        let img = |x: &str| parse_image(&s(x));
        let parts = |r: &str, p: &str, t: &str, d: &str| Ok(vec![s(r), s(p), s(t), s(d)]);
        let dg = format!("sha256:{}", "a".repeat(64));
        assert_eq!(img("nginx"), parts("docker.io", "library/nginx", "latest", ""));
        assert_eq!(img("nginx:1.25"), parts("docker.io", "library/nginx", "1.25", ""));
        assert_eq!(img("bitnami/redis:7"), parts("docker.io", "bitnami/redis", "7", ""));
        assert_eq!(img("index.docker.io/nginx"), parts("docker.io", "library/nginx", "latest", ""));
        assert_eq!(img("registry.example.com/team/app:1.2"), parts("registry.example.com", "team/app", "1.2", ""));
        assert_eq!(img("localhost:5000/app"), parts("localhost:5000", "app", "latest", ""));
        assert_eq!(img("localhost/app"), parts("localhost", "app", "latest", ""));
        assert_eq!(img(&format!("ghcr.io/o/app@{dg}")), parts("ghcr.io", "o/app", "", &dg));
        assert_eq!(img(&format!("app:v1@{dg}")), parts("docker.io", "library/app", "v1", &dg));
        assert_eq!(img("Registry.io/app"), parts("Registry.io", "app", "latest", ""));
        for bad in
            ["", "Nginx", "nginx:", "nginx@sha256:abc", ":tag", "a//b", "app:-x", "reg.io/", "/app", "a b", "app:1:2"]
        {
            assert!(img(bad).is_err(), "{bad:?}");
        }
        assert!(img("team/App").unwrap_err().contains("lowercase"));
        assert!(img("app:tagé").is_err(), "tags are ASCII");
        assert!(img(&"a".repeat(300)).is_err());
        assert!(parse_image(&I(1)).is_err());
    }

    #[test]
    fn semantic_versions() {
        let c = |a: &str, b: &str| semver_compare(&s(a), &s(b));
        assert_eq!(c("1.2.3", "1.2.3"), Ok(I(0)));
        assert_eq!(c("1.2.3", "1.10.0"), Ok(I(-1)));
        assert_eq!(c("v1.28.3", "1.27.9"), Ok(I(1)));
        assert_eq!(c("1.0.0-alpha", "1.0.0"), Ok(I(-1)));
        assert_eq!(c("1.0.0+build.5", "1.0.0"), Ok(I(0)));
        // The chain from the SemVer specification, in order.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for w in chain.windows(2) {
            assert_eq!(c(w[0], w[1]), Ok(I(-1)), "{w:?}");
            assert_eq!(c(w[1], w[0]), Ok(I(1)), "{w:?}");
        }
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "a.b.c",
            "1.2.3-a..b",
            "v",
            "1.2.99999999999999999999",
        ] {
            assert!(c(bad, "1.0.0").is_err(), "{bad:?}");
        }
        assert!(semver_compare(&I(1), &s("1.0.0")).is_err());
        let (a, b) = (s("v1.27.3"), s("1.28.0-rc.1"));
        assert_eq!(semver_lt(&a, &b), Ok(true));
        assert_eq!(semver_lteq(&a, &a), Ok(true));
        assert_eq!(semver_gt(&a, &b), Ok(false));
        assert_eq!(semver_gteq(&b, &a), Ok(true));
        assert_eq!(semver_equal(&s("1.0.0+a"), &s("v1.0.0+b")), Ok(true));
        assert!(semver_lt(&a, &s("1.28")).is_err());
        assert!(semver_equal(&F(1.0), &a).is_err());
        assert!(check_semver(0, &s("1.0")).is_err());
        assert_eq!(check_semver(1, &s("1.0.0")), Ok(()));
    }

    #[test]
    fn json_paths() {
        let doc = r#"{"metadata": {"labels": {"app.kubernetes.io/name": "web", "tier": "front"}},
                      "spec": {"replicas": 3, "ratio": 0.5, "paused": false, "note": null,
                               "containers": [{"name": "a", "ports": [80, 443]}, {"name": "b"}]}}"#;
        let get = |p: &str| json_get(&[s(doc), s(p)]);
        assert_eq!(get("metadata.labels.tier"), Ok(Some(s("front"))));
        assert_eq!(get(r#"metadata.labels["app.kubernetes.io/name"]"#), Ok(Some(s("web"))));
        assert_eq!(get("spec.replicas"), Ok(Some(I(3))));
        assert_eq!(get("spec.ratio"), Ok(Some(F(0.5))));
        assert_eq!(get("spec.paused"), Ok(Some(s("False"))));
        assert_eq!(get("spec.note"), Ok(Some(s("None"))));
        assert_eq!(get("spec.containers.1.name"), Ok(Some(s("b"))));
        assert_eq!(get("spec.containers.-1.name"), Ok(Some(s("b"))));
        assert_eq!(get("spec.containers.0.ports"), Ok(Some(s("[80,443]"))));
        assert_eq!(get("spec.containers.2"), Ok(None));
        assert_eq!(get("spec.missing"), Ok(None));
        assert_eq!(get("spec.replicas.x"), Ok(None));
        assert_eq!(get(r#"spec.containers["0"]"#), Ok(None), "a quoted key never indexes a list");
        assert_eq!(json_get(&[s("[1, 2]"), s("")]), Ok(Some(s("[1,2]"))));
        assert_eq!(json_get(&[s("\"x\""), s("")]), Ok(Some(s("x"))));
        for bad in ["a..b", "a.", ".a", r#"a["b"#, r#"a["b"]c"#, "a[0]"] {
            assert!(get(bad).is_err(), "{bad:?}");
            assert!(check_json_path(1, &s(bad)).is_err(), "{bad:?}");
        }
        assert!(json_get(&[s("{not json"), s("a")]).unwrap_err().contains("not JSON"));
        assert!(json_get(&[I(1), s("a")]).is_err());
        assert!(json_get(&[s("{}"), I(1)]).is_err());
        assert_eq!(check_json_path(1, &s("a.b")), Ok(()));
        assert_eq!(check_json_path(0, &I(1)), Ok(()));
    }
}
