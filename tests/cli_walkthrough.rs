//! End-to-end tests of the built `congress` binary on the walk-through in
//! `examples/cloud` (eval, simulate, explain, test, completions) and on bad test input,
//! with insta snapshots of the human output formats (`tests/snapshots/`).

use assert_cmd::Command;
use std::path::Path;

const EX: &str = "examples/cloud";

/// The binary, run from the crate root so that paths in its output are relative.
fn congress() -> Command {
    let mut c = Command::cargo_bin("congress").expect("the congress binary is built");
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = congress().args(args).output().expect("congress runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PORT_FOR_VM3: &str = r#"neutronv2:ports+("port-3", "tenant-a", "", "net-1", "fa:16:3e:00:00:0c", "True", "ACTIVE", "vm-3", "compute:nova")"#;

// ------------------------------------------------------------------------- eval

#[test]
fn eval_reports_the_violations_and_the_actions_and_exits_1() {
    let (code, out, err) = run(&["eval", "-f", EX, "--data", EX]);
    assert_eq!(code, 1, "violations exit 1; stderr: {err}");
    for vm in ["vm-3", "vm-4", "vm-8", "vm-12", "port-99"] {
        assert!(out.contains(vm), "{vm} missing from:\n{out}");
    }
    for vm in ["vm-1", "vm-5", "vm-7", "vm-9"] {
        assert!(!out.lines().any(|l| l.trim() == vm), "{vm} should not be a violation:\n{out}");
    }
    assert!(out.contains(r#"nova:servers.pause("vm-4")"#), "actions listed:\n{out}");
    insta::assert_snapshot!("eval_table", out);
}

// ------------------------------------------------------------------------- simulate

#[test]
fn simulate_delta_shows_the_fixed_violation() {
    let (code, out, err) =
        run(&["simulate", "-f", EX, "--data", EX, "-q", "error(x)", "--delta", "--sequence", PORT_FOR_VM3]);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "error-(\"vm-3\")\n");
}

#[test]
fn simulate_answers_one_per_line_and_as_json() {
    let seq = "neutronv2:networks-(\"net-3\", \"tenant-b\", \"legacy\", \"DOWN\", \"True\", \"False\")\n\
               neutronv2:networks+(\"net-3\", \"tenant-b\", \"legacy\", \"ACTIVE\", \"True\", \"False\")";
    let (code, out, err) = run(&["simulate", "-f", EX, "--data", EX, "-q", "error(x)", "--sequence", seq]);
    assert_eq!(code, 0, "stderr: {err}");
    insta::assert_snapshot!("simulate_answers", out);

    let (code, out, _) =
        run(&["simulate", "-f", EX, "--data", EX, "-q", "error(x)", "--sequence", PORT_FOR_VM3, "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(v["result"], serde_json::json!(["error(\"vm-12\")", "error(\"vm-4\")", "error(\"vm-8\")"]));
}

#[test]
fn simulate_syntax_error_points_at_the_sequence() {
    let (code, _, err) =
        run(&["simulate", "-f", EX, "--data", EX, "-q", "error(x)", "--sequence", "neutronv2:ports+(\"p\", "]);
    assert_eq!(code, 2);
    assert!(err.contains("--sequence:1:"), "{err}");
    assert!(err.contains('^'), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

// ------------------------------------------------------------------------- explain

#[test]
fn explain_prints_the_proof_tree() {
    let (code, out, err) = run(&["explain", "-f", EX, "--data", EX, r#"execute[nova:servers.pause("vm-4")]"#]);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("└─ classification:error(\"vm-4\")"), "{out}");
    assert!(out.contains("not classification:connected(\"vm-4\")  (absent)"), "{out}");
    insta::assert_snapshot!("explain_tree", out);
}

#[test]
fn explain_finds_the_policy_where_the_row_holds() {
    let (code, out, _) = run(&["explain", "-f", EX, "--data", EX, r#"error("port-99")"#]);
    assert_eq!(code, 0);
    assert!(out.starts_with("orphans:error(\"port-99\")"), "{out}");
}

#[test]
fn explain_of_a_row_that_does_not_hold_exits_1() {
    let (code, out, err) = run(&["explain", "-f", EX, "--data", EX, "--policy", "classification", r#"error("vm-1")"#]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("does not hold"), "{err}");
}

// ------------------------------------------------------------------------- test

#[test]
fn the_example_tests_pass() {
    let (code, out, err) = run(&["test", EX]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.ends_with("7 passed, 0 failed\n"), "{out}");
    insta::assert_snapshot!("test_report_pass", out);
}

#[test]
fn junit_report_is_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let (code, _, _) = run(&["test", EX, "--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 0);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "), "{xml}");
    assert!(xml.contains("tests=\"7\" failures=\"0\" errors=\"0\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 7);
    assert!(xml.contains("name=\"the library policy activated as `orphans` finds the port of a deleted server\""));
    assert_balanced(&xml);
}

/// Every element opened is closed, in order (a small check, no XML parser needed).
fn assert_balanced(xml: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("unterminated tag");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            stack.push(tag.split_whitespace().next().unwrap_or_default().to_string());
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(!xml.contains("& "), "unescaped ampersand");
}

/// A test file in a temporary directory whose policies and data are the example's.
fn write_test_file(dir: &Path, body: &str) -> std::path::PathBuf {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join(EX);
    let text = format!(
        "policies: [{}]\ndata: [{}, {}]\n{body}",
        ex.join("policies").display(),
        ex.join("datasources.yaml").display(),
        ex.join("data").display()
    );
    let path = dir.join("bad.test.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_failing_expectation_exits_1_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_test_file(
        dir.path(),
        "tests:\n  - name: wrong\n    table: classification:error\n    expect: [vm-3, vm-4, vm-8, vm-9]\n  - name: \
         right\n    table: classification:error\n    expectIncludes: [vm-3]\n  - name: actions\n    expectActions: \
         [{service: nova, action: servers.pause, args: [vm-1]}]\n",
    );
    let (code, out, _) = run(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let report = out.replace(&dir.path().display().to_string(), "$TMP");
    assert!(report.contains("  - (\"vm-9\")"), "{report}");
    assert!(report.contains("  + (\"vm-12\")"), "{report}");
    assert!(report.ends_with("1 passed, 2 failed\n"), "{report}");
    insta::assert_snapshot!("test_report_fail", report);
}

#[test]
fn an_unknown_table_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file =
        write_test_file(dir.path(), "tests:\n  - name: typo\n    query: classification:eror(x)\n    expect: []\n");
    let (code, out, _) = run(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ERROR  typo"), "{out}");
    assert!(out.contains("unknown table `eror` in policy classification (its tables: "), "{out}");
}

#[test]
fn a_missing_policy_path_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("congress-test.yaml");
    std::fs::write(
        &file,
        "policies: [nope.yaml]\ntests:\n  - name: t\n    table: classification:error\n    expect: []\n",
    )
    .unwrap();
    let (code, out, err) = run(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("policies: `nope.yaml` does not exist"), "{out}");
    assert!(out.ends_with("0 passed, 0 failed, 1 error\n"), "{out}");
}

#[test]
fn a_malformed_test_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.test.yaml");
    std::fs::write(&file, "policies: []\ntests:\n  - name: t\n    tabel: classification:error\n").unwrap();
    let (code, out, _) = run(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.contains("unknown field `tabel`"), "{out}");
}

#[test]
fn a_directory_without_test_files_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("no test files"), "{err}");
}

// ------------------------------------------------------------------------- help, completions

#[test]
fn every_command_has_examples_in_its_help() {
    for cmd in ["test", "simulate", "explain", "completions", "eval"] {
        let (code, out, _) = run(&[cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("Examples:") || out.contains("Example"), "{cmd} --help has no examples:\n{out}");
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, out, _) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(out.contains("simulate") && out.contains("explain"), "{shell}");
    }
}
