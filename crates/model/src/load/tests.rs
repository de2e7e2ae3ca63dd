//! Unit tests of the loader: positions, every error kind, libraryRef, multi-document
//! files, `.congress` files, fixtures and building.

use super::*;
use crate::resources::Enforcement;
use congress_engine::PolicyKind;
use std::fs;
use std::path::PathBuf;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(d: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = d.path().join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&p, text).unwrap();
    p
}

/// Where a statement read from a file starts.
fn at(st: &StatementSource) -> Origin {
    st.origin.clone().expect("statements read from files have an origin")
}

fn one_error(r: Result<impl std::fmt::Debug, Vec<LoadError>>) -> LoadError {
    let mut errs = r.expect_err("expected an error");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.remove(0)
}

const NOVA: &str = "\
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata:
  name: nova
spec:
  driver: nova
  tables:
    - name: servers
      columns: [id, status, host]
";

const POLICY: &str = "\
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata:
  name: classification
spec:
  rules:
    - name: down
      comment: servers in ERROR
      rule: error(vm) :- nova:servers(id=vm, status=\"ERROR\")
    - rule: |
        warn(vm) :- nova:servers(id=vm, status=s),
          equal(s, \"x\")
";

#[test]
fn origin_display() {
    assert_eq!(Origin::new("a.yaml", 2, 3, 4).to_string(), "a.yaml:3:4 (document 2)");
    assert_eq!(Origin::new("a.congress", 0, 1, 1).to_string(), "a.congress:1:1");
}

#[test]
fn rule_positions_point_into_the_file() {
    let d = dir();
    let f = write(&d, "p.yaml", &format!("{NOVA}---\n{POLICY}"));
    let ps = load_policies(std::slice::from_ref(&f)).unwrap();
    assert_eq!(ps.len(), 1);
    let p = &ps[0];
    assert_eq!(p.name, "classification");
    assert_eq!(p.origin, Origin::new(&f, 2, 11, 1));
    assert_eq!(p.statements.len(), 2);
    let s0 = &p.statements[0];
    assert_eq!(s0.name.as_deref(), Some("down"));
    assert_eq!(s0.comment.as_deref(), Some("servers in ERROR"));
    assert_eq!((at(s0).line, at(s0).col, at(s0).document), (19, 13, 2));
    let s1 = &p.statements[1];
    assert_eq!((at(s1).line, at(s1).col), (21, 9));
    assert!(s1.text.starts_with("warn(vm)") && s1.text.contains('\n'));
}

#[test]
fn text_blocks_split_per_statement_with_positions_and_comments() {
    let d = dir();
    let f = write(
        &d,
        "t.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: t}\nspec:\n  kind: database\n  enforcement: reactive\n  text: |\n    // the fact\n    p(1)\n    q(x) :- p(x)\n",
    );
    let ps = load_policies(&[f]).unwrap();
    let p = &ps[0];
    assert_eq!(p.kind, PolicyKind::Database);
    assert_eq!(p.enforcement, Enforcement::Reactive);
    let texts: Vec<&str> = p.statements.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["p(1)", "q(x) :- p(x)"]);
    assert_eq!(p.statements[0].comment.as_deref(), Some("the fact"));
    assert_eq!((at(&p.statements[0]).line, at(&p.statements[0]).col), (9, 5));
    assert_eq!((at(&p.statements[1]).line, at(&p.statements[1]).col), (10, 5));
}

#[test]
fn congress_files_are_policies_named_by_stem() {
    let d = dir();
    let f = write(&d, "rules/net.congress", "// c\np(1)\n\nq(x) :- p(x)\n");
    let ps = load_policies(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(ps[0].name, "net");
    assert_eq!(ps[0].kind, PolicyKind::Nonrecursive);
    assert_eq!(at(&ps[0].statements[1]), Origin::new(&f, 0, 4, 1));
}

#[test]
fn syntax_error_is_rendered_at_the_file_position_with_a_caret() {
    let d = dir();
    let f = write(&d, "bad.congress", "p(1)\nq(x) :- p(x) r(x)\n");
    let ps = load_policies(&[f]).unwrap();
    let errs = build(&ps, &FixtureSet::default(), false).err().unwrap();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let text = errs[0].to_string();
    assert!(text.contains("bad.congress:2:"), "{text}");
    assert!(text.contains('^'), "{text}");
}

#[test]
fn every_statement_error_is_reported() {
    let d = dir();
    let f = write(
        &d,
        "p.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  rules:\n    - rule: a(x) :- b(y)\n    - rule: b(1)\n    - name: second\n      rule: c(x) :- b(z)\n",
    );
    let ps = load_policies(&[f]).unwrap();
    let errs = build(&ps, &FixtureSet::default(), false).err().unwrap();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    let o: Vec<(usize, usize)> = errs.iter().map(|e| e.origin().map(|o| (o.line, o.col)).unwrap()).collect();
    assert_eq!(o[0].0, 6);
    assert_eq!(o[1].0, 9);
    assert!(errs[1].to_string().contains("second"), "{}", errs[1]);
}

#[test]
fn library_ref_takes_the_library_statements() {
    let d = dir();
    let f = write(
        &d,
        "lib.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: LibraryPolicy\nmetadata: {name: lib}\nspec:\n  kind: materialized\n  text: |\n    p(1)\n---\napiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: active}\nspec:\n  libraryRef: {name: lib}\n",
    );
    let ps = load_policies(&[f]).unwrap();
    assert_eq!(ps.len(), 2);
    let active = ps.iter().find(|p| !p.library).unwrap();
    assert_eq!(active.library_ref.as_deref(), Some("lib"));
    assert_eq!(active.statements.len(), 1);
    assert_eq!(active.kind, PolicyKind::Materialized);
    let loaded = build(&ps, &FixtureSet::default(), false).unwrap();
    assert_eq!(loaded.engine.query_strings("active", "p(x)").unwrap().len(), 1);
    assert!(loaded.engine.policy_kind("lib").is_none(), "libraries stay inactive");
}

#[test]
fn missing_library_is_an_error_at_library_ref() {
    let d = dir();
    let f = write(
        &d,
        "p.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: a}\nspec:\n  libraryRef: {name: nope}\n",
    );
    let e = one_error(load_policies(&[f]));
    let o = e.origin().unwrap();
    assert_eq!((o.line, o.col, o.document), (5, 3, 1));
    assert!(e.to_string().contains("nope"));
}

#[test]
fn manifest_errors() {
    let d = dir();
    let two = write(
        &d,
        "a.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: a}\nspec:\n  text: p(1)\n  libraryRef: {name: x}\n",
    );
    assert!(one_error(load_policies(&[two])).to_string().contains("only one of"));
    let typo = write(
        &d,
        "b.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: b}\nspec:\n  rule: p(1)\n",
    );
    let e = one_error(load_policies(&[typo]));
    assert!(e.to_string().contains("unknown field `spec.rule`"), "{e}");
    assert_eq!(e.origin().unwrap().line, 5);
    let noname = write(&d, "c.yaml", "apiVersion: congress.dev/v1alpha1\nkind: Policy\nspec:\n  text: p(1)\n");
    assert!(one_error(load_policies(&[noname])).to_string().contains("metadata.name"));
    let badkind = write(
        &d,
        "d.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: d}\nspec:\n  kind: datasource\n  text: p(1)\n",
    );
    assert!(one_error(load_policies(&[badkind])).to_string().contains("invalid spec"));
}

#[test]
fn malformed_yaml_names_file_document_and_line() {
    let d = dir();
    let f = write(
        &d,
        "m.yaml",
        &format!("{POLICY}---\napiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: [unclosed\n"),
    );
    let e = one_error(load_policies(&[f]));
    let o = e.origin().unwrap();
    assert_eq!(o.document, 2);
    assert!(o.line >= 14, "{e}");
    assert!(e.to_string().contains("malformed YAML"), "{e}");
}

#[test]
fn duplicate_policies_are_errors() {
    let d = dir();
    let f = write(&d, "a.yaml", &format!("{POLICY}---\n{POLICY}"));
    assert!(one_error(load_policies(&[f])).to_string().contains("defined twice"));
}

#[test]
fn other_documents_are_skipped_by_load_policies() {
    let d = dir();
    write(&d, "nova.yaml", NOVA);
    write(&d, "data.yaml", "datasource: nova\ntables:\n  servers: []\n");
    write(&d, "p.yaml", POLICY);
    assert_eq!(load_policies(&[d.path().to_path_buf()]).unwrap().len(), 1);
}

#[test]
fn fixtures_object_and_positional_rows_with_congress_values() {
    let d = dir();
    write(&d, "nova.yaml", NOVA);
    write(
        &d,
        "f.yaml",
        "datasource: nova\ntables:\n  servers:\n    - {id: vm-1, status: true}\n    - [vm-2, null, 3]\n    - {id: vm-3, host: 1.5}\n",
    );
    let set = load_fixtures(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(set.schemas["nova"]["servers"].len(), 3);
    let rows = &set.tables[0].rows;
    assert_eq!(rows[0], vec![Value::str("vm-1"), Value::str("True"), Value::str("None")]);
    assert_eq!(rows[1], vec![Value::str("vm-2"), Value::str("None"), Value::Int(3)]);
    assert_eq!(rows[2][2], Value::Float(1.5));
}

#[test]
fn schema_files_and_qualified_table_names_in_json() {
    let d = dir();
    write(&d, "schema.yaml", "schema:\n  neutron:\n    ports: [id, device]\n");
    write(&d, "f.json", "{\"tables\": {\"neutron:ports\": [[\"p1\", \"vm-1\"]]}}");
    let set = load_fixtures(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(set.tables[0].datasource, "neutron");
    assert_eq!(set.tables[0].rows.len(), 1);
}

fn fixture_error(body: &str) -> LoadError {
    let d = dir();
    write(&d, "nova.yaml", NOVA);
    write(&d, "z.yaml", body);
    let e = one_error(load_fixtures(&[d.path().to_path_buf()]));
    assert!(e.origin().unwrap().file.ends_with("z.yaml"), "{e}");
    e
}

#[test]
fn fixture_unknown_column() {
    let e = fixture_error("datasource: nova\ntables:\n  servers:\n    - {id: a}\n    - {id: b, colour: red}\n");
    assert!(e.to_string().contains("unknown column `colour`"), "{e}");
    let o = e.origin().unwrap();
    assert_eq!((o.document, o.line), (1, 5));
}

#[test]
fn fixture_wrong_arity() {
    let e = fixture_error("---\ndatasource: nova\ntables:\n  servers:\n  - [a, b, c]\n  - [a, b]\n");
    assert!(e.to_string().contains("2 values but the table has 3 columns"), "{e}");
    let o = e.origin().unwrap();
    assert_eq!((o.document, o.line, o.col), (1, 6, 3));
}

#[test]
fn fixture_unknown_table() {
    // `flavors` is not declared, but the shipped nova driver fills it: it is known.
    let e = fixture_error("datasource: nova\ntables:\n  flavors: []\n  nope: []\n");
    assert!(e.to_string().contains("unknown table `nova:nope`"), "{e}");
    assert_eq!(e.origin().unwrap().line, 4);
}

#[test]
fn fixture_nested_value() {
    let e = fixture_error("datasource: nova\ntables:\n  servers:\n    - {id: a, status: {x: 1}}\n");
    assert!(e.to_string().contains("nested value"), "{e}");
}

#[test]
fn fixture_without_schema() {
    let e = fixture_error("tables:\n  glance:images: [[a]]\n");
    assert!(e.to_string().contains("no schema for datasource `glance`"), "{e}");
}

#[test]
fn fixture_without_datasource() {
    let e = fixture_error("tables:\n  servers: []\n");
    assert!(e.to_string().contains("has no datasource"), "{e}");
}

#[test]
fn fixture_second_document_is_numbered() {
    let e = fixture_error(
        "datasource: nova\ntables:\n  servers: []\n---\ndatasource: nova\ntables:\n  servers:\n    - [a]\n",
    );
    let o = e.origin().unwrap();
    assert_eq!((o.document, o.line), (2, 8), "{e}");
}

#[test]
fn build_loads_fixtures_and_reports_actions() {
    let d = dir();
    write(&d, "nova.yaml", NOVA);
    write(
        &d,
        "f.yaml",
        "datasource: nova\ntables:\n  servers:\n    - {id: vm-1, status: ERROR}\n    - {id: vm-2, status: ACTIVE}\n",
    );
    let p = write(
        &d,
        "p/classification.congress",
        "error(vm) :- nova:servers(id=vm, status=\"ERROR\")\nexecute[nova:servers.pause(vm)] :- error(vm)\n",
    );
    let ps = load_policies(&[p]).unwrap();
    let fx = load_fixtures(&[d.path().join("nova.yaml"), d.path().join("f.yaml")]).unwrap();
    let loaded = build(&ps, &fx, false).unwrap();
    assert_eq!(loaded.engine.rows("classification", "error").unwrap(), vec![vec![Value::str("vm-1")]]);
    assert_eq!(loaded.actions.len(), 1);
    assert_eq!(&*loaded.actions[0].action, "servers.pause");
}

#[test]
fn cross_policy_references_resolve_in_any_order() {
    let d = dir();
    let a = write(&d, "a.congress", "x(v) :- b:y(v)\n");
    let b = write(&d, "b.congress", "y(1)\n");
    let ps = load_policies(&[a, b]).unwrap();
    let loaded = build(&ps, &FixtureSet::default(), false).unwrap();
    assert_eq!(loaded.engine.query_strings("a", "x(v)").unwrap().len(), 1);
}

#[test]
fn missing_paths_are_io_errors() {
    let e = one_error(load_policies(&[PathBuf::from("/nonexistent/congress/x.yaml")]));
    assert!(matches!(e, LoadError::Io { .. }));
}

#[test]
fn an_explicit_kind_wins_over_the_library_kind_and_library_labels_are_prefixed() {
    let d = dir();
    let f = write(
        &d,
        "lib.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: LibraryPolicy\nmetadata: {name: lib}\nspec:\n  kind: materialized\n  rules:\n    - name: one\n      rule: p(1)\n---\napiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: active}\nspec:\n  kind: database\n  libraryRef: {name: lib}\n",
    );
    let ps = load_policies(std::slice::from_ref(&f)).unwrap();
    let active = ps.iter().find(|p| !p.library).unwrap();
    assert_eq!(active.kind, PolicyKind::Database);
    assert_eq!(active.statements[0].label, "lib/one");
    // The statement is placed in the library's document.
    assert_eq!(at(&active.statements[0]), Origin::new(&f, 1, 8, 13));
    let lib = ps.iter().find(|p| p.library).unwrap();
    assert_eq!((lib.kind, lib.statements[0].label.as_str()), (PolicyKind::Materialized, "one"));
}

#[test]
fn policy_errors_carry_the_rule_label_and_the_position_in_the_rule() {
    let d = dir();
    let f = write(
        &d,
        "p.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: broken\n      rule: |\n        error(x) :-\n          q(x\n",
    );
    let ps = load_policies(&[f]).unwrap();
    let errs = build(&ps, &FixtureSet::default(), false).err().unwrap();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let LoadError::Policy { rule, line, column, origin, .. } = &errs[0] else { panic!("{errs:#?}") };
    assert_eq!((rule.as_str(), *line), ("broken", 2));
    // The file position is the rule's position shifted by the block's indentation (8).
    assert_eq!((origin.line, origin.col), (9, 8 + column));
}

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

const POD_SECURITY: &str = "\
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

/// Names are the operator's: `engine_name` of `metadata.name`, of the datasource a fixture
/// names (either spelling) and of a `.congress` file's stem.
#[test]
fn manifest_fixture_and_file_names_are_engine_names() {
    let d = dir();
    let p = write(&d, "p/policies.yaml", POD_SECURITY);
    let f = write(&d, "p/my-rules.congress", "seen(pod) :- kube_data:pods(name=pod)\n");
    write(&d, "data/kube-data.yaml", KUBE_DATA);
    write(&d, "data/a.yaml", "datasource: kube-data\ntables:\n  pods:\n    - [web, default, \"True\"]\n");
    write(&d, "data/b.yaml", "tables:\n  kube-data:pods:\n    - [api, prod, \"True\"]\n");
    write(&d, "data/c.yaml", "tables:\n  kube_data:pods:\n    - [db, prod, \"False\"]\n");
    let ps = load_policies(&[p, f]).unwrap();
    let names: Vec<(&str, &str)> = ps.iter().map(|p| (p.name.as_str(), p.resource.as_str())).collect();
    assert_eq!(names, [("pod_security", "pod-security"), ("prod_audit", "prod-audit"), ("my_rules", "my-rules")]);
    let fx = load_fixtures(&[d.path().join("data")]).unwrap();
    assert_eq!(fx.schemas.keys().collect::<Vec<_>>(), ["kube_data"]);
    assert!(fx.tables.iter().all(|t| t.datasource == "kube_data"), "{:?}", fx.tables);
    let loaded = build(&ps, &fx, false).unwrap();
    let mut bad = loaded.engine.rows("pod_security", "error").unwrap();
    bad.sort();
    assert_eq!(bad, [vec![Value::str("api")], vec![Value::str("web")]]);
    assert_eq!(loaded.engine.rows("prod_audit", "error").unwrap(), [vec![Value::str("api")]]);
    assert_eq!(loaded.engine.rows("my_rules", "seen").unwrap().len(), 3);
    // Schemas known beforehand (as `load_schemas` gives them) may use either spelling.
    let schemas = load_schemas(&[d.path().join("data/kube-data.yaml")]).unwrap();
    assert_eq!(schemas.keys().collect::<Vec<_>>(), ["kube_data"]);
    let by_manifest_name = BTreeMap::from([("kube-data".to_string(), schemas["kube_data"].clone())]);
    let fx = load_fixtures_with_schemas(&[d.path().join("data/b.yaml")], by_manifest_name).unwrap();
    assert_eq!((fx.tables[0].datasource.as_str(), fx.tables.len()), ("kube_data", 1));
}

/// Two sources with one engine name are one policy defined twice; messages about a
/// manifest or a fixture quote its name as written.
#[test]
fn names_that_meet_in_the_engine_are_errors_quoted_as_written() {
    let d = dir();
    let p = write(&d, "pod-security.yaml", POD_SECURITY);
    let f = write(&d, "pod_security.congress", "p(1)\n");
    let e = one_error(load_policies(&[p.clone(), f]));
    assert!(e.to_string().contains("policy `pod_security` and policy `pod-security`"), "{e}");
    assert!(e.to_string().contains("are both `pod_security` in the engine"), "{e}");

    let lib = write(
        &d,
        "lib.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: pod-audit}\nspec:\n  libraryRef: {name: no-such-lib}\n",
    );
    let e = one_error(load_policies(&[lib]));
    assert!(e.to_string().contains("policy `pod-audit`: libraryRef `no-such-lib`"), "{e}");

    write(&d, "data/kube-data.yaml", KUBE_DATA);
    write(&d, "data/x.yaml", "tables:\n  kube-data:nodes:\n    - [n1]\n");
    let e = one_error(load_fixtures(&[d.path().join("data")]));
    assert!(e.to_string().contains("unknown table `kube-data:nodes` (datasource `kube-data` has: pods)"), "{e}");

    // A policy whose engine name is a datasource's.
    let clash = write(
        &d,
        "clash.yaml",
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: kube-data}\nspec:\n  text: p(1)\n",
    );
    let ps = load_policies(&[clash]).unwrap();
    let fx = load_fixtures(&[d.path().join("data/kube-data.yaml")]).unwrap();
    let e = one_error(build(&ps, &fx, false).map(|_| ()));
    assert!(
        e.to_string().contains("policy `kube-data` has the name of a datasource (`kube_data` in the engine)"),
        "{e}"
    );
}
