//! The command line and the operator load the same manifests the same way: one set of
//! manifests (a Policy with `rules`, one with a `text` block, one with `libraryRef` and an
//! explicit `kind`, the LibraryPolicy, a Datasource and its fixture rows) goes (a) through
//! the CLI's path (`load_policies` + `build`: every policy in one transaction) and (b)
//! through the operator's (the functions `load` calls, each policy in its own transaction
//! into an engine that already holds the datasource and its rows), and the engine states
//! and, for a broken variant, the diagnostics must be equal.
//!
//! Every name has a `-`, as Kubernetes names often do: the operator names a Policy or
//! Datasource `engine_name(metadata.name)` (`ops-team` is `ops_team`, what rules write), and
//! the CLI must do the same with the manifests, the fixture's `datasource:` and the schemas.

use super::Resolved;
use super::{LoadFailure, failure, statements};
use crate::controllers::engine_name;
use congress_engine::{Engine, PolicyKind, Value};
use congress_model::load::{self, LoadError};
use congress_model::loader;
use congress_model::resources::{Datasource, LibraryPolicy, Policy};
use kube::ResourceExt;
use serde::Deserialize;
use std::path::{Path, PathBuf};

const DATASOURCES: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata:
  name: cloud-nova
spec:
  driver: nova
  tables:
    - name: servers
      columns: [id, status, host]
"#;

const DATA: &str = r#"
datasource: cloud-nova
tables:
  servers:
    - {id: vm-1, status: ERROR, host: h1}
    - {id: vm-2, status: ACTIVE, host: h1}
    - {id: vm-3, status: ACTIVE, host: h2}
"#;

const POLICIES: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: ops-team
spec:
  rules:
    - name: down
      comment: servers in ERROR
      rule: |
        error(vm) :-
          cloud_nova:servers(id=vm, status="ERROR")
    - rule: "  busy(host) :- cloud_nova:servers(host=host, status=\"ACTIVE\")  "
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: derived-hosts
spec:
  text: |
    // hosts with a server down
    bad_host(h) :- cloud_nova:servers(id=vm, host=h), ops_team:error(vm)
    # flagged
    error(h) :- bad_host(h), ops_team:busy(h)
---
apiVersion: congress.dev/v1alpha1
kind: LibraryPolicy
metadata:
  name: base-checks
spec:
  text: |
    error(vm) :- cloud_nova:servers(id=vm, status="ACTIVE"), not known(vm)
    known("vm-2")
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: image-audit
spec:
  kind: materialized
  libraryRef: {name: base-checks}
"#;

/// The same, broken: a syntax error on line 2 of a named rule, an unsafe rule (an analysis
/// error) in a text block, and a library text block that does not parse (it stays whole).
const BROKEN: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: ops-team
spec:
  rules:
    - name: down
      rule: |
        error(vm) :-
          cloud_nova:servers(id=vm, status="ERROR"
    - rule: "  busy(host) :- cloud_nova:servers(host=host, status=\"ACTIVE\")  "
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: derived-hosts
spec:
  text: |
    // hosts with a server down
    bad_host(h) :- cloud_nova:servers(id=vm, host=h), ops_team:error(vm)
    # flagged
    error(h) :- bad_host(x)
---
apiVersion: congress.dev/v1alpha1
kind: LibraryPolicy
metadata:
  name: base-checks
spec:
  text: |
    error(vm) :- cloud_nova:servers(id=vm, status="ACTIVE"), not known(vm))
    known("vm-2")
    other(x) :- known(x
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: image-audit
spec:
  kind: materialized
  libraryRef: {name: base-checks}
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The manifests as the API server would hand them to the operator.
#[derive(Default)]
struct Manifests {
    policies: Vec<Policy>,
    libraries: Vec<LibraryPolicy>,
    datasources: Vec<Datasource>,
}

fn manifests(text: &str) -> Manifests {
    let mut m = Manifests::default();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v = serde_json::Value::deserialize(doc).unwrap();
        match v["kind"].as_str() {
            Some("Policy") => m.policies.push(serde_json::from_value(v).unwrap()),
            Some("LibraryPolicy") => m.libraries.push(serde_json::from_value(v).unwrap()),
            Some("Datasource") => m.datasources.push(serde_json::from_value(v).unwrap()),
            other => panic!("unexpected document {other:?}"),
        }
    }
    m
}

/// The operator's engine before any policy: the datasources, created as the Datasource
/// controller does, with the fixture rows a driver would have written.
fn operator_engine(datasources: &Manifests, data: &Path) -> Engine {
    let mut engine = Engine::new();
    let mut txn = engine.transaction();
    for ds in &datasources.datasources {
        txn.create_datasource(&engine_name(&ds.name_any()), ds.spec.schema());
    }
    txn.commit().unwrap();
    // The fixture's rows, as the driver of each Datasource writes them into its engine name.
    let schemas = datasources.datasources.iter().map(|d| (d.name_any(), d.spec.schema())).collect();
    let fixtures = load::load_fixtures_with_schemas(&[data.to_path_buf()], schemas).unwrap();
    assert!(!fixtures.tables.is_empty());
    for t in fixtures.tables {
        let ds = datasources.datasources.iter().find(|d| engine_name(&d.name_any()) == t.datasource);
        assert!(ds.is_some(), "the fixture names datasource {} by its engine name", t.datasource);
        let mut txn = engine.transaction();
        txn.insert_rows(&t.datasource, &t.table, t.rows);
        txn.commit().unwrap();
    }
    engine
}

/// What the operator's `load` does with a Policy once it has read its LibraryPolicy, in
/// its own transaction on `engine`.
fn operator_load(engine: &mut Engine, policy: &Policy, libraries: &[LibraryPolicy]) -> Result<(), LoadFailure> {
    let library = policy
        .spec
        .library_ref
        .as_ref()
        .and_then(|l| libraries.iter().find(|x| x.name_any() == l.name))
        .map(|l| Resolved::current(&l.name_any(), l.spec.clone()));
    let src = statements(&policy.spec, library.as_ref())?;
    let name = engine_name(&policy.name_any());
    let exists = engine.policy_kind(&name).is_some();
    let before = engine.clone();
    let mut txn = engine.transaction();
    loader::stage(&mut txn, &name, src.kind, &src.statements, exists);
    txn.commit().map(|_| ()).map_err(|e| failure(&name, &src, before, &e))
}

/// A policy's state in an engine: its kind, its rules as the engine prints them, and the
/// rows of each of its tables.
type PolicyState = (String, Option<PolicyKind>, Vec<String>, Vec<(String, Vec<String>)>);

fn state(engine: &Engine, policies: &[Policy]) -> Vec<PolicyState> {
    let rows = |p: &str, t: &str| {
        let mut r: Vec<String> = engine
            .rows(p, t)
            .unwrap()
            .iter()
            .map(|row| row.iter().map(Value::to_string).collect::<Vec<_>>().join(", "))
            .collect();
        r.sort();
        r
    };
    let mut out: Vec<PolicyState> = policies
        .iter()
        .map(|p| {
            let name = engine_name(&p.name_any());
            let tables = engine.tables(&name).unwrap_or_default();
            let tables = tables.iter().map(|t| (t.clone(), rows(&name, t))).collect();
            (name.clone(), engine.policy_kind(&name), engine.rules(&name).unwrap_or_default(), tables)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// (policy, rule, line, column, message), sorted.
type Diag = (String, String, u32, u32, String);

fn cli(dir: &Path, policies: &str) -> Result<Engine, Vec<LoadError>> {
    let files = [write(dir, "policies.yaml", policies), write(dir, "datasources.yaml", DATASOURCES)];
    let data = [write(dir, "data.yaml", DATA)];
    // As `congress eval -f policies.yaml -f datasources.yaml --data data.yaml` does.
    let sources = load::load_policies(&files).unwrap();
    let schemas = load::load_schemas(&files).unwrap();
    let fixtures = load::load_fixtures_with_schemas(&data, schemas).unwrap();
    load::build(&sources, &fixtures, false).map(|l| l.engine)
}

#[test]
fn the_cli_and_the_operator_load_the_same_manifests_into_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let by_cli = cli(dir.path(), POLICIES).unwrap();
    let m = manifests(POLICIES);
    let ds = manifests(DATASOURCES);
    let mut by_operator = operator_engine(&ds, &dir.path().join("data.yaml"));
    for p in &m.policies {
        operator_load(&mut by_operator, p, &m.libraries).unwrap();
    }
    let cli_state = state(&by_cli, &m.policies);
    assert_eq!(cli_state, state(&by_operator, &m.policies));
    // Policies arrive in any order in a cluster: the same state in reverse.
    let mut reverse = operator_engine(&ds, &dir.path().join("data.yaml"));
    for p in m.policies.iter().rev() {
        operator_load(&mut reverse, p, &m.libraries).unwrap();
    }
    assert_eq!(cli_state, state(&reverse, &m.policies));

    // And the state is what the rules say (so a shared mistake fails too).
    let find = |name: &str| cli_state.iter().find(|s| s.0 == name).unwrap();
    let names: Vec<&str> = cli_state.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["derived_hosts", "image_audit", "ops_team"]);
    let error_rows = |name: &str| find(name).3.iter().find(|(t, _)| t == "error").unwrap().1.clone();
    // The explicit kind wins over the library's (nonrecursive by default).
    assert_eq!(find("image_audit").1, Some(PolicyKind::Materialized));
    assert_eq!(error_rows("image_audit"), ["\"vm-3\""]);
    assert_eq!(error_rows("ops_team"), ["\"vm-1\""]);
    assert_eq!(error_rows("derived_hosts"), ["\"h1\""]);
    // Rule texts trimmed; the text block split into one statement per rule.
    assert_eq!(find("ops_team").2.len(), 2);
    assert_eq!(find("derived_hosts").2.len(), 2);
    assert!(find("ops_team").2.iter().all(|r| r.trim() == r));
}

#[test]
fn the_cli_and_the_operator_report_the_same_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let errors = cli(dir.path(), BROKEN).expect_err("the broken manifests do not load");
    let mut by_cli: Vec<Diag> = Vec::new();
    let file = std::fs::read_to_string(dir.path().join("policies.yaml")).unwrap();
    for e in &errors {
        match e {
            LoadError::Policy { policy, rule, line, column, message, origin, .. } => {
                by_cli.push((policy.clone(), rule.clone(), *line as u32, *column as u32, message.clone()));
                assert!(origin.file.ends_with("policies.yaml"), "{e}");
                if rule == "down" {
                    let at = file.lines().position(|l| l.contains("status=\"ERROR\"")).unwrap() + 1;
                    assert_eq!(origin.line, at, "the CLI places it in the file: {e}");
                }
            }
            other => panic!("not a statement's problem: {other}"),
        }
    }
    by_cli.sort();

    let m = manifests(BROKEN);
    let mut engine = operator_engine(&manifests(DATASOURCES), &dir.path().join("data.yaml"));
    let mut by_operator: Vec<Diag> = Vec::new();
    let mut reasons = Vec::new();
    for p in &m.policies {
        let f = operator_load(&mut engine, p, &m.libraries).expect_err("every broken policy is refused");
        reasons.push((p.name_any(), f.reason));
        let name = engine_name(&p.name_any());
        by_operator.extend(f.diagnostics.into_iter().map(|d| (name.clone(), d.rule, d.line, d.column, d.message)));
    }
    by_operator.sort();
    assert_eq!(by_cli, by_operator);

    // And they are what the manifests say.
    assert_eq!(
        reasons,
        [
            ("ops-team".to_string(), "SyntaxError"),
            ("derived-hosts".to_string(), "AnalysisError"),
            ("image-audit".to_string(), "SyntaxError")
        ]
    );
    let of = |policy: &str| by_cli.iter().filter(|d| d.0 == policy).collect::<Vec<_>>();
    let ops = of("ops_team");
    assert!(!ops.is_empty() && ops.iter().all(|d| d.1 == "down" && d.2 == 2 && d.3 > 1), "{ops:?}");
    let derived = of("derived_hosts");
    assert!(!derived.is_empty() && derived.iter().all(|d| d.1 == "text" && d.2 == 4), "{derived:?}");
    // The library's block does not parse, so it stays whole: its errors are on its lines.
    let audit = of("image_audit");
    // Labels name the library by its `metadata.name`, as `libraryRef` does.
    assert!(audit.len() >= 2 && audit.iter().all(|d| d.1 == "base-checks/text"), "{audit:?}");
    assert!(audit.iter().any(|d| d.2 == 1) && audit.iter().any(|d| d.2 == 3), "{audit:?}");
}
