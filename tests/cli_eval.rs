//! End-to-end tests of `congress eval`, `check`, `fmt` and `crds`: the built binary on
//! small inputs in a temporary directory. Bad input exits 2 with a clear message, never
//! a panic.

use assert_cmd::Command;
use std::fs;
use std::path::Path;

const NOVA: &str = "\
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata:
  name: nova
spec:
  driver: nova
  tables:
    - name: servers
      columns: [id, status]
";

const POLICY: &str = "\
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: classification
spec:
  enforcement: reactive
  rules:
    - name: down
      rule: error(vm) :- nova:servers(id=vm, status=\"ERROR\")
    - rule: execute[nova:servers.pause(vm)] :- error(vm)
";

fn setup(data: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("policies")).unwrap();
    fs::create_dir_all(d.path().join("data")).unwrap();
    fs::write(d.path().join("policies/nova.yaml"), NOVA).unwrap();
    fs::write(d.path().join("policies/classification.yaml"), POLICY).unwrap();
    fs::write(d.path().join("data/servers.yaml"), data).unwrap();
    d
}

fn congress(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("congress").unwrap();
    c.current_dir(dir);
    c
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Out {
    let o = congress(dir).args(args).output().unwrap();
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(!out.stderr.contains("panicked"), "panic: {}", out.stderr);
    out
}

const CLEAN: &str = "datasource: nova\ntables:\n  servers:\n    - {id: vm-1, status: ACTIVE}\n";
const VIOLATING: &str =
    "datasource: nova\ntables:\n  servers:\n    - {id: vm-1, status: ERROR}\n    - [vm-2, ACTIVE]\n";

#[test]
fn clean_eval_exits_0() {
    let d = setup(CLEAN);
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("classification: no violations"), "{}", o.stdout);
}

#[test]
fn violations_exit_1_with_a_table_and_actions() {
    let d = setup(VIOLATING);
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("classification: 1 violation\n  vm-1\n"), "{}", o.stdout);
    assert!(o.stdout.contains("actions that would fire (not executed):"), "{}", o.stdout);
    assert!(o.stdout.contains("nova:servers.pause(\"vm-1\")"), "{}", o.stdout);
}

#[test]
fn json_output_parses() {
    let d = setup(VIOLATING);
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data", "-o", "json"]);
    assert_eq!(o.code, 1);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("valid JSON");
    assert_eq!(v["policies"][0]["name"], "classification");
    assert_eq!(v["policies"][0]["violations"], serde_json::json!([["vm-1"]]));
    assert_eq!(v["actions"][0]["service"], "nova");
    assert_eq!(v["actions"][0]["action"], "servers.pause");
    assert_eq!(v["actions"][0]["args"], serde_json::json!(["vm-1"]));
}

#[test]
fn yaml_output_and_query() {
    let d = setup(VIOLATING);
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data", "-o", "yaml"]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("violations:"), "{}", o.stdout);
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data", "-q", "nova:servers(x, y)", "-o", "json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["answers"].as_array().unwrap().len(), 2);
}

#[test]
fn malformed_manifest_exits_2() {
    let d = setup(CLEAN);
    fs::write(
        d.path().join("policies/broken.yaml"),
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: [x\n",
    )
    .unwrap();
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("broken.yaml:"), "{}", o.stderr);
    assert!(o.stderr.contains("malformed YAML"), "{}", o.stderr);
}

#[test]
fn unknown_table_exits_2() {
    let d = setup("datasource: nova\ntables:\n  nope:\n    - [m1]\n");
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("servers.yaml:3:3 (document 1): unknown table `nova:nope`"), "{}", o.stderr);
}

#[test]
fn rule_syntax_error_shows_file_line_col_and_caret() {
    let d = setup(CLEAN);
    fs::write(
        d.path().join("policies/classification.yaml"),
        // The closing parenthesis is missing.
        POLICY.replace("status=\"ERROR\")", "status=\"ERROR\""),
    )
    .unwrap();
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data"]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("classification.yaml:9:"), "{}", o.stderr);
    assert!(o.stderr.contains('^'), "{}", o.stderr);
    assert!(o.stderr.contains("in rule: down"), "{}", o.stderr);
}

#[test]
fn fixture_with_wrong_column_exits_2() {
    let d = setup("datasource: nova\ntables:\n  servers:\n    - {id: vm-1, state: ACTIVE}\n");
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("servers.yaml:4:"), "{}", o.stderr);
    assert!(o.stderr.contains("unknown column `state`"), "{}", o.stderr);
}

#[test]
fn check_is_clean_or_lists_every_error() {
    let d = setup(CLEAN);
    let o = run(d.path(), &["check", "-f", "policies"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    fs::write(d.path().join("policies/bad.congress"), "a(x) :- b(y)\nc(x) :- d(z)\n").unwrap();
    let o = run(d.path(), &["check", "-f", "policies"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("bad.congress:1:1"), "{}", o.stderr);
    assert!(o.stderr.contains("bad.congress:2:1"), "{}", o.stderr);
    assert!(o.stderr.contains("2 problems found"), "{}", o.stderr);
}

#[test]
fn fmt_check_lists_files_and_fmt_rewrites_them() {
    let d = setup(CLEAN);
    fs::write(d.path().join("policies/r.congress"), "p(x):-q(x)\n").unwrap();
    let o = run(d.path(), &["fmt", "--check", "policies"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("r.congress"), "{}", o.stdout);
    assert!(!o.stdout.contains("classification.yaml"), "{}", o.stdout);
    let o = run(d.path(), &["fmt", "policies"]);
    assert_eq!(o.code, 0);
    assert_eq!(fs::read_to_string(d.path().join("policies/r.congress")).unwrap(), "p(x) :- q(x)\n");
    assert_eq!(run(d.path(), &["fmt", "--check", "policies"]).code, 0);
}

#[test]
fn crds_prints_four_documents() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["crds"]);
    assert_eq!(o.code, 0);
    assert_eq!(o.stdout.matches("kind: CustomResourceDefinition").count(), 4);
    for name in ["policies", "librarypolicies", "datasources", "actionrequests"] {
        assert!(o.stdout.contains(&format!("name: {name}.congress.dev")), "{name}");
    }
}

/// Kubernetes names hold `-`, the policy language's identifiers cannot: as the operator,
/// `eval` names a Policy or Datasource `pod-security` `pod_security` in the engine (what
/// rules write and what the output shows), fixtures may name a datasource either way, and
/// `--policy` takes either spelling.
#[test]
fn dashed_policy_and_datasource_names_are_the_operators_engine_names() {
    const KUBE_DATA: &str = "\
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata:
  name: kube-data
spec:
  driver: kubernetes
  tables:
    - name: pods
      columns: [name, namespace, privileged]
";
    const POLICIES: &str = "\
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: pod-security
spec:
  rules:
    - rule: error(pod) :- kube_data:pods(name=pod, privileged=\"True\")
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: prod-audit
spec:
  rules:
    - rule: error(pod) :- pod_security:error(pod), kube_data:pods(name=pod, namespace=\"prod\")
";
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("policies")).unwrap();
    fs::create_dir_all(d.path().join("data")).unwrap();
    fs::write(d.path().join("policies/kube-data.yaml"), KUBE_DATA).unwrap();
    fs::write(d.path().join("policies/policies.yaml"), POLICIES).unwrap();
    fs::write(
        d.path().join("data/pods.yaml"),
        "datasource: kube-data\ntables:\n  pods:\n    - {name: web, namespace: default, privileged: \"True\"}\n    - {name: api, namespace: prod, privileged: \"True\"}\n",
    )
    .unwrap();
    fs::write(d.path().join("data/more.json"), r#"{"tables": {"kube_data:pods": [["db", "prod", "False"]]}}"#).unwrap();

    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert_eq!(o.stdout, "pod_security: 2 violations\n  api\n  web\nprod_audit: 1 violation\n  api\n", "{}", o.stderr);
    assert!(o.stderr.is_empty(), "no warnings (every table read exists): {}", o.stderr);

    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let names: Vec<&str> = v["policies"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pod_security", "prod_audit"]);

    for policy in ["pod-security", "pod_security"] {
        let o = run(d.path(), &["eval", "-f", "policies", "--data", "data", "-q", "error(x)", "--policy", policy]);
        assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
        assert_eq!(o.stdout, "pod_security: 2 answers to error(x)\n  api\n  web\n", "--policy {policy}");
        // (`explain` reads schemas from `--data` only.)
        let args = ["explain", "-f", "policies", "--data", "policies/kube-data.yaml", "--data", "data", "--policy"];
        let o = run(d.path(), &[&args[..], &[policy, "error(\"web\")"]].concat());
        assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
        assert!(o.stdout.starts_with("pod_security:error(\"web\")"), "{}", o.stdout);
    }

    // Test files take either spelling too.
    fs::write(
        d.path().join("names.test.yaml"),
        "\
policies: [policies/]
data: [policies/kube-data.yaml, data/]
tests:
  - name: by manifest name
    table: pod-security:error
    expect: [[api], [web]]
  - name: by engine name
    table: error
    policy: pod_security
    expect: [[api], [web]]
  - name: a query in a dashed policy
    query: error(x)
    policy: prod-audit
    expect: [[api]]
",
    )
    .unwrap();
    let o = run(d.path(), &["test", "names.test.yaml"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("3 passed"), "{}", o.stdout);

    // A message about a manifest names it as written.
    fs::write(
        d.path().join("policies/broken.yaml"),
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: image-audit}\nspec:\n  libraryRef: {name: no-such-library}\n",
    )
    .unwrap();
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data"]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("policy `image-audit`: libraryRef `no-such-library`"), "{}", o.stderr);
}

#[test]
fn check_shows_at_most_20_errors_per_file_and_counts_the_rest() {
    let d = setup(CLEAN);
    let bad: String = (0..100).map(|i| format!("a{i}(x) :- b(y)\n")).collect();
    fs::write(d.path().join("policies/bad.congress"), bad).unwrap();
    let o = run(d.path(), &["check", "-f", "policies"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("bad.congress:20:1"), "{}", o.stderr);
    assert!(!o.stderr.contains("bad.congress:21:1"), "{}", o.stderr);
    assert!(o.stderr.contains("error: 80 more errors in policies/bad.congress not shown"), "{}", o.stderr);
    assert!(o.stderr.contains("100 problems found"), "{}", o.stderr);
    let o = run(d.path(), &["eval", "-f", "policies", "--data", "data"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("80 more errors in policies/bad.congress not shown"), "{}", o.stderr);
}

#[test]
fn check_quotes_a_window_of_a_huge_line() {
    let d = setup(CLEAN);
    let args: Vec<String> = (0..20_000).map(|i| format!("a{i}")).collect();
    fs::write(d.path().join("policies/wide.congress"), format!("p(a0) :- q({})\n", args.join(", "))).unwrap();
    let body: Vec<String> = (0..20_000).map(|i| format!("q{i}(x)")).collect();
    fs::write(d.path().join("policies/long.congress"), format!("p(x) :- {}\n", body.join(", "))).unwrap();
    let o = run(d.path(), &["check", "-f", "policies"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.len() < 2 * 4096, "{} bytes:\n{}", o.stderr.len(), &o.stderr[..o.stderr.len().min(3000)]);
    assert!(o.stderr.contains("wide.congress:1:10"), "{}", o.stderr);
    assert!(o.stderr.contains("the limit is 1024"), "{}", o.stderr);
    assert!(o.stderr.contains("long.congress:1:1"), "{}", o.stderr);
    assert!(o.stderr.contains("the limit is 512"), "{}", o.stderr);
    assert!(o.stderr.contains('^') && o.stderr.contains('…'), "{}", o.stderr);
}

#[test]
fn comment_only_sources_are_empty_policies() {
    let d = setup(CLEAN);
    fs::write(d.path().join("policies/empty.congress"), "// nothing yet\n# still nothing\n\n").unwrap();
    fs::write(d.path().join("policies/blank.congress"), "  \n\n").unwrap();
    fs::write(
        d.path().join("policies/text.yaml"),
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: later\nspec:\n  text: |\n    // rules to come\n    # and more\n",
    )
    .unwrap();
    let o = run(d.path(), &["check", "-f", "policies"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("ok: 4 policies"), "{}", o.stdout);
}
