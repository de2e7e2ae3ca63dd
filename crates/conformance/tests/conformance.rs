//! The conformance runner: over the recorded Congress cases (when `../shared` is there)
//! and over a small cases file of its own, to show it works on any file of the format.

use congress_conformance::{Deviations, replay_file, run_file};
use std::path::{Path, PathBuf};

#[test]
fn recorded_congress_cases_conform() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/cases.json");
    if !path.exists() {
        eprintln!("skipping: {} is absent (a clone without ../shared)", path.display());
        return;
    }
    let report = run_file(&path).expect("the cases file replays");
    let output = report.lines.join("\n");
    println!("{output}");
    assert_eq!(report.failed, 0, "conformance failures:\n{output}");
    assert!(report.passed > 0, "{output}");
    assert!(!report.lines.iter().any(|l| l.starts_with("note:")), "{output}");
}

/// A scratch directory for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("congress-conformance-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const TINY_CASES: &str = r#"[
  {
    "name": "facts_and_join",
    "policies": {"classification": {"rules": ["p(1)", "p(2.5)", "q(x) :- p(x)"]}},
    "policy_order": ["classification"],
    "rule_results": [
      {"policy": "classification", "rule": "p(1)", "accepted": true, "congress_message": ""},
      {"policy": "classification", "rule": "p(2.5)", "accepted": true, "congress_message": ""},
      {"policy": "classification", "rule": "q(x) :- p(x)", "accepted": true, "congress_message": ""}
    ],
    "queries": [{"policy": "classification", "query": "q(x)", "expected_rows": [[1], [2.5]]}],
    "executed_actions_after_setup": [],
    "some_future_field": {"ignored": true}
  },
  {
    "name": "wrong_answer",
    "policies": {"classification": {"rules": ["r(\"a\")"]}},
    "policy_order": ["classification"],
    "queries": [{"policy": "classification", "query": "r(x)", "expected_rows": [["b"]]}]
  },
  {
    "name": "listed_difference",
    "policies": {"classification": {"rules": ["s(1)"]}},
    "policy_order": ["classification"],
    "queries": [{"policy": "classification", "query": "s(x)", "expected_rows": [[1.0]]}]
  },
  {
    "name": "datasource_actions_and_steps",
    "datasources": {"inv": {"vms": ["id", "state"]}},
    "policies": {"classification": {"rules": ["execute[inv:stop(v)] :- inv:vms(id=v, state=\"error\")"]}},
    "policy_order": ["classification"],
    "data": {"inv:vms": [["v1", "error"], ["v2", "ok"]]},
    "data_order": ["inv:vms"],
    "rule_results": [
      {"policy": "classification", "rule": "execute[inv:stop(v)] :- inv:vms(id=v, state=\"error\")", "accepted": true, "congress_message": ""}
    ],
    "executed_actions_after_setup": [{"service": "inv", "action": "stop", "positional": ["v1"], "named": {}}],
    "steps": [
      {"op": "push_delta", "table": "inv:vms", "add": [["v3", "error"]], "delete": [],
       "executed_actions": [{"service": "inv", "action": "stop", "positional": ["v3"], "named": {}}]},
      {"op": "push_full", "table": "inv:vms", "rows": [["v3", "error"]], "executed_actions": []},
      {"op": "rows", "policy": "inv", "table": "vms", "expected_rows": [["v3", "error"]], "executed_actions": []},
      {"op": "rows", "policy": "inv", "table": "nosuch", "expected_error": "NotFound", "executed_actions": []},
      {"op": "insert_rule", "policy": "classification", "rule": "p(x) :- ", "accepted": false, "executed_actions": []}
    ]
  }
]"#;

const TINY_DEVIATIONS: &str = "# Test deviations\n\n## float-one\n- cases: listed_difference, facts_and_join, no_such_case\n- reason: a test\n- test: none\n";

#[test]
fn replays_any_file_of_the_format() {
    let dir = scratch("tiny");
    let path = dir.join("cases.json");
    std::fs::write(&path, TINY_CASES).expect("write cases");
    let deviations = Deviations::parse(TINY_DEVIATIONS).expect("deviations parse");
    let report = replay_file(&path, &deviations, true).expect("replays");
    let output = report.lines.join("\n");
    assert_eq!((report.passed, report.failed, report.deviated), (2, 1, 1), "{output}");
    assert!(report.lines.iter().any(|l| l == "pass facts_and_join"), "{output}");
    assert!(report.lines.iter().any(|l| l.starts_with("note: facts_and_join")), "stale listing noted:\n{output}");
    assert!(report.lines.iter().any(|l| l.starts_with("FAIL wrong_answer: ")), "{output}");
    assert!(
        report.lines.iter().any(|l| l.starts_with("note: docs/deviations.md lists no_such_case")),
        "a listed case the file lacks is noted:\n{output}"
    );
    assert!(report.lines.iter().any(|l| l == "deviates (documented) listed_difference: float-one"), "{output}");
    assert!(report.lines.iter().any(|l| l == "pass datasource_actions_and_steps"), "{output}");
    assert_eq!(report.lines.last().map(String::as_str), Some("2 passed, 1 failed"), "{output}");
    assert_eq!(report.lines[report.lines.len() - 2], "1 deviate (documented)", "{output}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_or_malformed_file_is_an_error_not_a_pass() {
    let dir = scratch("bad");
    let deviations = Deviations::default();
    assert!(replay_file(&dir.join("absent.json"), &deviations, false).is_err());
    let path = dir.join("bad.json");
    std::fs::write(&path, "{\"not\": \"cases\"}").expect("write");
    assert!(replay_file(&path, &deviations, false).is_err());
    // A malformed case fails that case only.
    std::fs::write(&path, r#"[{"name": "no_policy_field", "queries": [{"query": "p(x)"}]}]"#).expect("write");
    let report = replay_file(&path, &deviations, false).expect("replays");
    assert_eq!((report.passed, report.failed), (0, 1), "{:?}", report.lines);
    let _ = std::fs::remove_dir_all(dir);
}

/// The project's own cases (`crates/conformance/cases/project.json`): behaviour where
/// Congress is right and this engine once differed (they must pass), and one deliberate
/// deviation (listed in docs/deviations.md).
#[test]
fn project_cases_conform() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/project.json");
    let report = run_file(&path).expect("the project's cases file replays");
    let output = report.lines.join("\n");
    println!("{output}");
    assert_eq!(report.failed, 0, "failures in the project's cases:\n{output}");
    // The one case recording Congress's answer where congress deliberately differs.
    assert_eq!(report.deviated, 1, "{output}");
    assert!(
        report
            .lines
            .iter()
            .any(|l| l == "deviates (documented) simulate_named_columns_in_rules: named-columns-in-simulated-rules"),
        "{output}"
    );
    assert!(report.passed >= 4, "{output}");
    // Deviations written for the recorded cases are not noted as missing here.
    assert!(!report.lines.iter().any(|l| l.starts_with("note:")), "{output}");
}

/// A library policy activated in one batch, with the actions Congress recorded (the
/// late-binding closure sends every row to the last trigger's action) and `intended`.
fn batch_case(name: &str, intended: &str) -> String {
    let rules = r#"["execute[inv:alpha(v)] :- inv:vms(id=v, state=\"error\")", "execute[inv:beta(v)] :- inv:vms(id=v, state=\"stopped\")"]"#;
    format!(
        r#"{{
    "name": "{name}",
    "datasources": {{"inv": {{"vms": ["id", "state"]}}}},
    "policies": {{"SomeLibraryPolicy": {{"rules": {rules}, "batch": true}}}},
    "policy_order": ["SomeLibraryPolicy"],
    "rule_results": [{{"policy": "SomeLibraryPolicy", "rules": {rules}, "accepted": true, "congress_message": ""}}],
    "data": {{"inv:vms": [["v5", "error"], ["v2", "stopped"]]}},
    "data_order": ["inv:vms"],
    "executed_actions_after_setup": [
      {{"service": "inv", "action": "beta", "positional": ["v2"], "named": {{}}}},
      {{"service": "inv", "action": "beta", "positional": ["v5"], "named": {{}}}}
    ],
    "intended_executed_actions_after_setup": {intended}
  }}"#
    )
}

#[test]
fn intended_actions_are_a_documented_deviation_for_any_case() {
    let right = r#"[{"service": "inv", "action": "alpha", "positional": ["v5"], "named": {}},
                   {"service": "inv", "action": "beta", "positional": ["v2"], "named": {}}]"#;
    let wrong = r#"[{"service": "inv", "action": "alpha", "positional": ["v5"], "named": {}},
                   {"service": "inv", "action": "gamma", "positional": ["v2"], "named": {}}]"#;
    let recorded_only = r#"[{"service": "inv", "action": "beta", "positional": ["v2"], "named": {}},
                   {"service": "inv", "action": "beta", "positional": ["v5"], "named": {}}]"#;
    let cases = format!(
        "[{}, {}, {}]",
        batch_case("library_matches_intended", right),
        batch_case("library_matches_neither", wrong),
        batch_case("intended_as_recorded", recorded_only)
    );
    let dir = scratch("intended");
    let path = dir.join("cases.json");
    std::fs::write(&path, cases).expect("write cases");
    // No listing at all: the intended value alone excuses the recorded one.
    let report = replay_file(&path, &Deviations::default(), true).expect("replays");
    let output = report.lines.join("\n");
    assert!(
        report
            .lines
            .iter()
            .any(|l| l
                == "deviates (documented) library_matches_intended: matches intended_executed_actions_after_setup"),
        "{output}"
    );
    assert!(report.lines.iter().any(|l| l.starts_with("FAIL library_matches_neither: ")), "{output}");
    // Intended equal to the recorded value: we match neither, so that fails too.
    assert!(report.lines.iter().any(|l| l.starts_with("FAIL intended_as_recorded: ")), "{output}");
    assert_eq!((report.passed, report.failed, report.deviated), (0, 2, 1), "{output}");
    // A listing does not excuse a difference from the intended value.
    let listed = Deviations::parse("## d\n- cases: library_matches_neither\n- reason: r\n- test: t\n").expect("parses");
    let report = replay_file(&path, &listed, false).expect("replays");
    assert!(report.lines.iter().any(|l| l.starts_with("FAIL library_matches_neither: ")), "{:?}", report.lines);
    let _ = std::fs::remove_dir_all(dir);
}
