//! `congress test DIR`: policy unit tests, in the manner of `opa test` and `kyverno test`.
//!
//! A test file (`congress-test.yaml`, or any `*.test.yaml` / `*.test.yml`, found
//! recursively) names the policies and fixtures to load, relative to itself, and the
//! rows it expects:
//!
//! ```yaml
//! apiVersion: cli.congress.dev/v1alpha1   # optional; lets the file sit beside manifests
//! kind: Test
//! metadata:
//!   name: cloud classification
//! policies: [policies/]          # files or directories, as `-f`
//! data: [datasources.yaml, data/] # as `--data`
//! tests:
//!   - name: active servers without a connection are errors
//!     table: classification:error   # every row of a table ...
//!     expect: [[vm-3], [vm-4]]       # ... is exactly these rows
//!   - name: vm-1 is fine
//!     query: error("vm-1")          # or the answers to a query (policy: from the prefix,
//!     policy: classification        #   `policy`, or the policy defining the table)
//!     expect: []
//!   - name: a port for vm-3 clears it
//!     sequence: 'neutronv2:ports+("p", "t", "", "net-1", "m", "True", "ACTIVE", "vm-3", "compute:nova")'
//!     query: error(x)               # answers after a simulated change (nothing is kept)
//!     expectAbsent: [[vm-3]]
//!   - name: the pause actions
//!     expectActions: [{service: nova, action: servers.pause, args: [vm-3]}]
//! ```
//!
//! `expect` is the exact set of rows, `expectIncludes` rows that must be present,
//! `expectAbsent` rows that must not be, `expectActions` the exact set of actions the
//! loaded state fires. A row is a list of values (a single value is a one-column row).
//!
//! Output: one line per test (`pass`, `FAIL` with a diff, `ERROR`), then
//! `N passed, M failed`. Exit 0 when everything passes, 1 on a failure, 2 when a test
//! file or its inputs cannot be loaded or a test is malformed (unknown table, bad query).

use crate::cli::input_args::{literal_table, load_all, pick_policy};
use congress_engine::SimulateRequest;
use congress_engine::{ActionEvent, Engine, PolicyKind, Value};
use congress_model::engine_name;
use congress_model::load::PolicySource;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const EXAMPLES: &str = "\
Examples:
  # Run every test file under a directory
  congress test examples/cloud

  # One file, only the tests whose name contains `pause`, with a JUnit report for CI
  congress test examples/cloud/cloud.test.yaml --run pause --junit target/congress-junit.xml

Test files are named congress-test.yaml or *.test.yaml; paths in them are relative to the file:
  apiVersion: cli.congress.dev/v1alpha1
  kind: Test
  metadata: {name: cloud classification}
  policies: [policies/]
  data: [datasources.yaml, data/]
  tests:
    - name: active servers without a connection are errors
      table: classification:error        # or query: error(x); sequence: '...' to simulate first
      expect: [[vm-3], [vm-4]]           # also expectIncludes, expectAbsent
    - name: the pause actions fire
      expectActions: [{service: nova, action: servers.pause, args: [vm-3]}]

Exit status: 0 all passed, 1 a test failed, 2 bad input (unloadable file, unknown table).";

/// `congress test`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct TestArgs {
    /// Test files, or directories searched recursively for `congress-test.yaml` and
    /// `*.test.yaml`.
    #[arg(value_name = "DIR|FILE", required = true)]
    pub paths: Vec<PathBuf>,
    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Run only the tests whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub run: Option<String>,
}

// ------------------------------------------------------------------------- the format

/// One test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestFile {
    /// `cli.congress.dev/v1alpha1` (optional). With `kind: Test`, the file can sit next to
    /// policies and fixtures: their loaders skip documents of other API groups.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `Test` (optional).
    #[serde(default)]
    pub kind: Option<String>,
    /// `name` here is the suite's name, as the top-level `name`.
    #[serde(default)]
    pub metadata: Option<TestMetadata>,
    /// The suite's name (default: `metadata.name`, else the file name).
    #[serde(default)]
    pub name: Option<String>,
    /// Policy sources, relative to the test file.
    pub policies: Vec<String>,
    /// Fixtures and Datasource manifests, relative to the test file.
    #[serde(default)]
    pub data: Vec<String>,
    pub tests: Vec<TestCase>,
}

/// A test file's `metadata`.
#[derive(Debug, Deserialize)]
pub struct TestMetadata {
    #[serde(default)]
    pub name: Option<String>,
}

/// The API version of test files.
pub const TEST_API_VERSION: &str = "cli.congress.dev/v1alpha1";

/// One test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestCase {
    pub name: String,
    /// The policy `table`/`query` are read in, by manifest or engine name (default: from
    /// the literal).
    #[serde(default)]
    pub policy: Option<String>,
    /// `policy:table` (or `table` with `policy`; `policy` a manifest or engine name): every
    /// row of the table.
    #[serde(default)]
    pub table: Option<String>,
    /// A query literal: its answers.
    #[serde(default)]
    pub query: Option<String>,
    /// A simulate sequence applied (and undone) before answering `query`.
    #[serde(default)]
    pub sequence: Option<String>,
    /// The action policy for `sequence` (default `action`; manifest or engine name).
    #[serde(default)]
    pub action_policy: Option<String>,
    #[serde(default)]
    pub expect: Option<Vec<Json>>,
    #[serde(default)]
    pub expect_includes: Option<Vec<Json>>,
    #[serde(default)]
    pub expect_absent: Option<Vec<Json>>,
    #[serde(default)]
    pub expect_actions: Option<Vec<ExpectedAction>>,
}

/// An action expected to fire.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAction {
    pub service: String,
    pub action: String,
    #[serde(default)]
    pub args: Vec<Json>,
}

// ------------------------------------------------------------------------- results

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// The expectations did not hold: the diff, one line each.
    Fail(Vec<String>),
    /// The test could not be run (unknown table, bad query).
    Error(String),
}

/// One test's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub outcome: Outcome,
    pub secs: f64,
}

/// One test file's results.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    pub file: PathBuf,
    pub name: String,
    /// Set when the file or its inputs could not be loaded (then `cases` is empty).
    pub load_error: Option<String>,
    pub cases: Vec<CaseResult>,
    pub secs: f64,
}

impl SuiteResult {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.outcome)).count()
    }
    pub fn passed(&self) -> usize {
        self.count(|o| *o == Outcome::Pass)
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail(_)))
    }
    pub fn errors(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Error(_))) + usize::from(self.load_error.is_some())
    }
}

// ------------------------------------------------------------------------- running

/// Run the subcommand.
pub fn run(args: TestArgs) -> ExitCode {
    let files = match discover(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut suites = Vec::new();
    for file in &files {
        let suite = run_file(file, args.run.as_deref());
        print!("{}", render_suite(&suite));
        suites.push(suite);
    }
    let (passed, failed, errors) = totals(&suites);
    println!();
    println!("{}", summary_line(passed, failed, errors));
    if let Some(path) = &args.junit
        && let Err(e) = std::fs::write(path, junit_xml(&suites))
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitCode::from(2);
    }
    if errors > 0 {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn totals(suites: &[SuiteResult]) -> (usize, usize, usize) {
    suites.iter().fold((0, 0, 0), |(p, f, e), s| (p + s.passed(), f + s.failed(), e + s.errors()))
}

/// `N passed, M failed` (and `, K errors` when there are any).
pub fn summary_line(passed: usize, failed: usize, errors: usize) -> String {
    let mut s = format!("{passed} passed, {failed} failed");
    if errors > 0 {
        let _ = write!(s, ", {errors} error{}", if errors == 1 { "" } else { "s" });
    }
    s
}

/// Whether a file name is a test file's.
pub fn is_test_file(name: &str) -> bool {
    matches!(name, "congress-test.yaml" | "congress-test.yml")
        || name.ends_with(".test.yaml")
        || name.ends_with(".test.yml")
}

/// The test files under the given paths, each directory's in name order.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else if is_test_file(name) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            walk(p, &mut out)?;
            if out.len() == before {
                return Err(format!("no test files (congress-test.yaml, *.test.yaml) under {}", p.display()));
            }
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("{} does not exist", p.display()));
        }
    }
    Ok(out)
}

/// Load and run one test file.
pub fn run_file(file: &Path, filter: Option<&str>) -> SuiteResult {
    let start = Instant::now();
    let default_name = file.file_name().and_then(|n| n.to_str()).unwrap_or("tests").to_string();
    let mut suite =
        SuiteResult { file: file.to_path_buf(), name: default_name, load_error: None, cases: Vec::new(), secs: 0.0 };
    let spec = match read_spec(file) {
        Ok(s) => s,
        Err(e) => {
            suite.load_error = Some(e);
            return suite;
        }
    };
    if let Some(n) = spec.name.as_ref().or(spec.metadata.as_ref().and_then(|m| m.name.as_ref())) {
        suite.name = n.clone();
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let resolve = |what: &str, list: &[String]| -> Result<Vec<PathBuf>, String> {
        list.iter()
            .map(|p| {
                let path = base.join(p);
                if path.exists() {
                    Ok(path)
                } else {
                    Err(format!("{}: {what}: `{p}` does not exist ({})", file.display(), path.display()))
                }
            })
            .collect()
    };
    let inputs = resolve("policies", &spec.policies).and_then(|p| Ok((p, resolve("data", &spec.data)?)));
    let (policies, data) = match inputs {
        Ok(x) => x,
        Err(e) => {
            suite.load_error = Some(e);
            return suite;
        }
    };
    let mut loaded = match load_all(&policies, &data) {
        Ok(l) => l,
        Err(errors) => {
            let mut msg = format!("{}: cannot load the policies and data:", file.display());
            for e in &errors {
                let _ = write!(msg, "\n{e}");
            }
            suite.load_error = Some(msg);
            return suite;
        }
    };
    for case in &spec.tests {
        if filter.is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        let t = Instant::now();
        let outcome = run_case(&mut loaded.engine, &loaded.policies, &loaded.actions, case);
        suite.cases.push(CaseResult { name: case.name.clone(), outcome, secs: t.elapsed().as_secs_f64() });
    }
    suite.secs = start.elapsed().as_secs_f64();
    suite
}

fn read_spec(file: &Path) -> Result<TestFile, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let spec: TestFile = serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    if let Some(api) = &spec.api_version
        && api != TEST_API_VERSION
    {
        return Err(format!("{}: apiVersion `{api}` is not a test file's (`{TEST_API_VERSION}`)", file.display()));
    }
    if let Some(kind) = &spec.kind
        && kind != "Test"
    {
        return Err(format!("{}: kind `{kind}` is not a test file's (`Test`)", file.display()));
    }
    let mut names = BTreeSet::new();
    for c in &spec.tests {
        if !names.insert(c.name.as_str()) {
            return Err(format!("{}: two tests are named `{}`", file.display(), c.name));
        }
    }
    Ok(spec)
}

/// A row as printed in reports: `("vm-3", 1)`.
pub fn format_row(row: &[Value]) -> String {
    let cells: Vec<String> = row.iter().map(Value::to_string).collect();
    format!("({})", cells.join(", "))
}

/// A YAML/JSON row (a list, or one scalar for a one-column row) as values.
fn json_row(v: &Json) -> Vec<Value> {
    match v {
        Json::Array(items) => items.iter().map(Value::from_json_congress).collect(),
        other => vec![Value::from_json_congress(other)],
    }
}

fn format_action(service: &str, action: &str, args: &[Value]) -> String {
    format!("{service}:{action}{}", format_row(args))
}

/// Run one test against a loaded engine.
pub fn run_case(engine: &mut Engine, policies: &[PolicySource], actions: &[ActionEvent], case: &TestCase) -> Outcome {
    let has_rows = case.expect.is_some() || case.expect_includes.is_some() || case.expect_absent.is_some();
    if !has_rows && case.expect_actions.is_none() {
        return Outcome::Error("no expectation (expect, expectIncludes, expectAbsent or expectActions)".into());
    }
    let mut diff = Vec::new();
    if has_rows {
        let got = match answer_rows(engine, policies, case) {
            Ok(g) => g,
            Err(e) => return Outcome::Error(e),
        };
        let what = case.table.clone().or_else(|| case.query.clone()).unwrap_or_default();
        row_diff(&what, &got, case, &mut diff);
    } else if case.table.is_some() || case.query.is_some() {
        return Outcome::Error(
            "`table`/`query` without a row expectation (expect, expectIncludes, expectAbsent)".into(),
        );
    }
    if let Some(expected) = &case.expect_actions {
        if case.sequence.is_some() {
            return Outcome::Error("expectActions checks the loaded state; it cannot follow a sequence".into());
        }
        let want: BTreeSet<String> = expected
            .iter()
            .map(|a| format_action(&a.service, &a.action, &json_row(&Json::Array(a.args.clone()))))
            .collect();
        let got: BTreeSet<String> = actions.iter().map(|a| format_action(&a.service, &a.action, &a.args)).collect();
        let missing: Vec<&String> = want.difference(&got).collect();
        let extra: Vec<&String> = got.difference(&want).collect();
        if !missing.is_empty() || !extra.is_empty() {
            diff.push("actions (- expected but not fired, + fired but not expected):".into());
            diff.extend(missing.iter().map(|a| format!("  - {a}")));
            diff.extend(extra.iter().map(|a| format!("  + {a}")));
        }
    }
    if diff.is_empty() { Outcome::Pass } else { Outcome::Fail(diff) }
}

/// The rows a test looks at, formatted, sorted.
fn answer_rows(engine: &mut Engine, policies: &[PolicySource], case: &TestCase) -> Result<BTreeSet<String>, String> {
    match (&case.table, &case.query) {
        (Some(_), Some(_)) => Err("give `table` or `query`, not both".into()),
        (None, None) => Err("row expectations need a `table` or a `query`".into()),
        (Some(_), None) if case.sequence.is_some() => Err("`sequence` needs a `query`, e.g. error(x)".into()),
        (Some(table), None) => {
            let (policy, name) = match (table.split_once(':'), &case.policy) {
                (Some((p, t)), _) => (engine_name(p), t.to_string()),
                (None, Some(p)) => (engine_name(p), table.clone()),
                (None, None) => (pick_policy(engine, policies, None, table)?, table.clone()),
            };
            if engine.policy_kind(&policy).is_none() {
                return Err(format!("unknown table `{table}`: there is no policy `{policy}`"));
            }
            let rows = engine.rows(&policy, &name).map_err(|_| unknown_table(engine, &policy, &name))?;
            Ok(rows.iter().map(|r| format_row(r)).collect())
        }
        (None, Some(query)) => {
            let policy = pick_policy(engine, policies, case.policy.as_deref(), query)?;
            let (prefix, name, execute) = literal_table(query);
            let owner = prefix.unwrap_or_else(|| policy.clone());
            if !execute && !engine.tables(&owner).is_ok_and(|t| t.contains(&name)) {
                return Err(unknown_table(engine, &owner, &name));
            }
            match &case.sequence {
                None => {
                    let rows = engine.query_values(&policy, query).map_err(|e| e.to_string())?;
                    Ok(rows.iter().map(|r| format_row(r)).collect())
                }
                Some(sequence) => {
                    let action_policy = engine_name(case.action_policy.as_deref().unwrap_or("action"));
                    if engine.policy_kind(&action_policy).is_none() && action_policy == "action" {
                        let _ = engine.create_policy("action", PolicyKind::Action);
                    }
                    let req = SimulateRequest {
                        policy: &policy,
                        query,
                        sequence,
                        action_policy: &action_policy,
                        delta: false,
                    };
                    let answers = engine.simulate(&req).map_err(|e| format!("simulate: {e}"))?;
                    Ok(answers.iter().map(|a| literal_args(a)).collect())
                }
            }
        }
    }
}

fn unknown_table(engine: &Engine, policy: &str, table: &str) -> String {
    let known = engine.tables(policy).unwrap_or_default();
    let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
    format!("unknown table `{table}` in policy {policy} (its tables: {known})")
}

/// `("a", 1)` from a printed literal `p("a", 1)` or `execute[s:a("a", 1)]`.
fn literal_args(lit: &str) -> String {
    match (lit.find('('), lit.rfind(')')) {
        (Some(i), Some(j)) if i < j => lit[i..=j].to_string(),
        _ => "()".into(),
    }
}

fn row_diff(what: &str, got: &BTreeSet<String>, case: &TestCase, diff: &mut Vec<String>) {
    let set = |rows: &Option<Vec<Json>>| -> BTreeSet<String> {
        rows.iter().flatten().map(|r| format_row(&json_row(r))).collect()
    };
    let mut missing: BTreeSet<String> = BTreeSet::new();
    let mut unexpected: BTreeSet<String> = BTreeSet::new();
    if case.expect.is_some() {
        let want = set(&case.expect);
        missing.extend(want.difference(got).cloned());
        unexpected.extend(got.difference(&want).cloned());
    }
    if case.expect_includes.is_some() {
        missing.extend(set(&case.expect_includes).difference(got).cloned());
    }
    if case.expect_absent.is_some() {
        unexpected.extend(set(&case.expect_absent).intersection(got).cloned());
    }
    if missing.is_empty() && unexpected.is_empty() {
        return;
    }
    diff.push(format!("rows of {what} (- expected but missing, + present but not expected):"));
    diff.extend(missing.iter().map(|r| format!("  - {r}")));
    diff.extend(unexpected.iter().map(|r| format!("  + {r}")));
    let n = got.len();
    diff.push(format!("  ({n} row{} in all)", if n == 1 { "" } else { "s" }));
}

// ------------------------------------------------------------------------- reports

/// The human report of one suite.
pub fn render_suite(s: &SuiteResult) -> String {
    let mut out = String::new();
    if let Some(e) = &s.load_error {
        let _ = writeln!(out, "{}: ERROR", s.file.display());
        for l in e.lines() {
            let _ = writeln!(out, "  {l}");
        }
        return out;
    }
    let n = s.cases.len();
    let _ = writeln!(out, "{}: {} ({n} test{})", s.file.display(), s.name, if n == 1 { "" } else { "s" });
    for c in &s.cases {
        match &c.outcome {
            Outcome::Pass => {
                let _ = writeln!(out, "  pass   {}", c.name);
            }
            Outcome::Fail(diff) => {
                let _ = writeln!(out, "  FAIL   {}", c.name);
                for l in diff {
                    let _ = writeln!(out, "         {l}");
                }
            }
            Outcome::Error(e) => {
                let _ = writeln!(out, "  ERROR  {}", c.name);
                let _ = writeln!(out, "         {e}");
            }
        }
    }
    out
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry are dropped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report of all suites.
pub fn junit_xml(suites: &[SuiteResult]) -> String {
    let (_, failed, errors) = totals(suites);
    let tests: usize = suites.iter().map(|s| s.cases.len() + usize::from(s.load_error.is_some())).sum();
    let secs: f64 = suites.iter().map(|s| s.secs).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"congress test\" tests=\"{tests}\" failures=\"{failed}\" errors=\"{errors}\" time=\"{secs:.3}\">"
    );
    for s in suites {
        let file = xml_escape(&s.file.display().to_string());
        let name = xml_escape(&s.name);
        let n = s.cases.len() + usize::from(s.load_error.is_some());
        let _ = writeln!(
            x,
            "  <testsuite name=\"{name}\" tests=\"{n}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{:.3}\" file=\"{file}\">",
            s.failed(),
            s.errors(),
            s.secs
        );
        if let Some(e) = &s.load_error {
            let _ = writeln!(x, "    <testcase name=\"(load)\" classname=\"{name}\" file=\"{file}\" time=\"0.000\">");
            let first = e.lines().next().unwrap_or_default();
            let _ =
                writeln!(x, "      <error message=\"{}\" type=\"load\">{}</error>", xml_escape(first), xml_escape(e));
            let _ = writeln!(x, "    </testcase>");
        }
        for c in &s.cases {
            let cname = xml_escape(&c.name);
            let open =
                format!("    <testcase name=\"{cname}\" classname=\"{name}\" file=\"{file}\" time=\"{:.3}\"", c.secs);
            match &c.outcome {
                Outcome::Pass => {
                    let _ = writeln!(x, "{open}/>");
                }
                Outcome::Fail(diff) => {
                    let body = diff.join("\n");
                    let msg = diff.first().map(String::as_str).unwrap_or("failed");
                    let _ = writeln!(x, "{open}>");
                    let _ = writeln!(
                        x,
                        "      <failure message=\"{}\" type=\"assertion\">{}</failure>",
                        xml_escape(msg),
                        xml_escape(&body)
                    );
                    let _ = writeln!(x, "    </testcase>");
                }
                Outcome::Error(e) => {
                    let _ = writeln!(x, "{open}>");
                    let _ = writeln!(
                        x,
                        "      <error message=\"{}\" type=\"error\">{}</error>",
                        xml_escape(e),
                        xml_escape(e)
                    );
                    let _ = writeln!(x, "    </testcase>");
                }
            }
        }
        let _ = writeln!(x, "  </testsuite>");
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_file_names() {
        assert!(is_test_file("congress-test.yaml"));
        assert!(is_test_file("cloud.test.yml"));
        assert!(!is_test_file("cloud.yaml"));
        assert!(!is_test_file("test.yaml"));
    }

    #[test]
    fn escaping() {
        assert_eq!(xml_escape("a<b & \"c\" 'd'>\u{1}"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
    }

    #[test]
    fn rows_and_literals() {
        assert_eq!(format_row(&[Value::str("vm-1"), Value::Int(2)]), "(\"vm-1\", 2)");
        assert_eq!(format_row(&json_row(&serde_json::json!("vm-1"))), "(\"vm-1\")");
        assert_eq!(literal_args("execute[nova:servers.pause(\"vm-1\")]"), "(\"vm-1\")");
        assert_eq!(literal_args("error(\"a\", 1)"), "(\"a\", 1)");
    }

    #[test]
    fn the_format_parses() {
        let spec: TestFile = serde_norway::from_str(
            "name: x\npolicies: [p.yaml]\ntests:\n  - name: t\n    table: classification:error\n    expect: [[vm-1], vm-2]\n    expectActions: [{service: nova, action: servers.pause, args: [vm-1]}]\n",
        )
        .unwrap();
        assert_eq!(spec.tests[0].expect.as_ref().map(Vec::len), Some(2));
        assert!(serde_norway::from_str::<TestFile>("policies: []\ntests: []\nbogus: 1\n").is_err());
    }

    #[test]
    fn junit_counts_and_escapes() {
        let s = SuiteResult {
            file: "a&b.test.yaml".into(),
            name: "s<1>".into(),
            load_error: None,
            cases: vec![
                CaseResult { name: "ok".into(), outcome: Outcome::Pass, secs: 0.0 },
                CaseResult { name: "bad".into(), outcome: Outcome::Fail(vec!["  - (\"x\")".into()]), secs: 0.0 },
            ],
            secs: 0.0,
        };
        let x = junit_xml(&[s]);
        assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"0\""));
        assert!(x.contains("name=\"s&lt;1&gt;\""));
        assert!(x.contains("file=\"a&amp;b.test.yaml\""));
        assert!(x.contains("&quot;x&quot;"));
    }
}
