//! Our behaviour where it deliberately differs from Congress: one test per deviation in
//! `docs/deviations.md`, named by its `- test:` line.

use congress_engine::Schema;
use congress_engine::{ActionEvent, Engine, EngineError, PolicyKind, Value};
use std::collections::BTreeSet;

fn insert_all(e: &mut Engine, policy: &str, rules: &[&str]) {
    for r in rules {
        if let Err(err) = e.insert_rule(policy, r) {
            panic!("insert into {policy} `{r}`: {err}");
        }
    }
}

/// A query's answers as a set of rows.
fn answers(e: &Engine, policy: &str, query: &str) -> BTreeSet<Vec<Value>> {
    match e.query_values(policy, query) {
        Ok(rows) => rows.into_iter().collect(),
        Err(err) => panic!("query {policy} `{query}`: {err}"),
    }
}

fn int_rows(rows: &[&[i64]]) -> BTreeSet<Vec<Value>> {
    rows.iter().map(|r| r.iter().map(|i| Value::Int(*i)).collect()).collect()
}

fn str_rows(rows: &[&[&str]]) -> BTreeSet<Vec<Value>> {
    rows.iter().map(|r| r.iter().map(Value::str).collect()).collect()
}

fn schema(tables: &[(&str, &[&str])]) -> Schema {
    tables.iter().map(|(t, cols)| (t.to_string(), cols.iter().map(|c| c.to_string()).collect())).collect()
}

fn row(values: &[&str]) -> Vec<Value> {
    values.iter().map(Value::str).collect()
}

/// Actions as sorted `(service, action, args)`.
fn fired(actions: &[ActionEvent]) -> Vec<(String, String, Vec<Value>)> {
    let mut v: Vec<_> = actions.iter().map(|a| (a.service.to_string(), a.action.to_string(), a.args.clone())).collect();
    v.sort();
    v
}

fn action(service: &str, name: &str, args: &[&str]) -> (String, String, Vec<Value>) {
    (service.to_string(), name.to_string(), row(args))
}

#[test]
fn recursion_allowed() {
    let mut e = Engine::with_default_policies();
    // Transitive closure in the default policy.
    insert_all(
        &mut e,
        "classification",
        &[
            "link(1, 2)",
            "link(2, 3)",
            "link(3, 4)",
            "reach(x, y) :- link(x, y)",
            "reach(x, z) :- link(x, y), reach(y, z)",
        ],
    );
    assert_eq!(
        answers(&e, "classification", "reach(x, y)"),
        int_rows(&[&[1, 2], &[1, 3], &[1, 4], &[2, 3], &[2, 4], &[3, 4]])
    );
    // The closure follows later changes.
    insert_all(&mut e, "classification", &["link(4, 5)"]);
    assert!(answers(&e, "classification", "reach(1, y)").contains(&vec![Value::Int(1), Value::Int(5)]));
    // A cycle through negation is still refused.
    assert!(e.insert_rule("classification", "flip(x) :- link(x, y), not flip(x)").is_err());

    // Recursion across two policies.
    e.create_policy("pa", PolicyKind::Nonrecursive).expect("pa");
    e.create_policy("pb", PolicyKind::Nonrecursive).expect("pb");
    insert_all(&mut e, "pa", &["base(1)", "p(x) :- base(x)", "p(x) :- pb:q(x)"]);
    insert_all(&mut e, "pb", &["seed(2)", "q(x) :- seed(x)", "q(x) :- pa:p(x)"]);
    assert_eq!(answers(&e, "pa", "p(x)"), int_rows(&[&[1], &[2]]));
    assert_eq!(answers(&e, "pb", "q(x)"), int_rows(&[&[1], &[2]]));

    // And in a materialized policy.
    e.create_policy("mat", PolicyKind::Materialized).expect("mat");
    insert_all(&mut e, "mat", &["e(1, 2)", "e(2, 3)", "path(x, y) :- e(x, y)", "path(x, z) :- e(x, y), path(y, z)"]);
    assert_eq!(answers(&e, "mat", "path(x, y)"), int_rows(&[&[1, 2], &[1, 3], &[2, 3]]));
}

#[test]
fn batch_closure_fixed() {
    let mut e = Engine::with_default_policies();
    e.create_datasource("inv", schema(&[("vms", &["id", "state"])])).expect("datasource");
    e.create_policy("batch", PolicyKind::Nonrecursive).expect("policy");
    let mut tx = e.transaction();
    tx.insert_rule("batch", "execute[inv:alpha(v)] :- inv:vms(id=v, state=\"error\")");
    tx.insert_rule("batch", "execute[inv:beta(v)] :- inv:vms(id=v, state=\"stopped\")");
    let commit = tx.commit().expect("batch commits");
    assert!(commit.actions.is_empty(), "no data yet");
    let commit = e.replace_table("inv", "vms", vec![row(&["v5", "error"]), row(&["v2", "stopped"])]).expect("push");
    assert_eq!(fired(&commit.actions), vec![action("inv", "alpha", &["v5"]), action("inv", "beta", &["v2"])]);

    // A batch inserted over existing data fires each rule's own action at once.
    e.create_policy("later", PolicyKind::Nonrecursive).expect("policy");
    let commit = e
        .insert_rules(
            "later",
            "execute[inv:gamma(v)] :- inv:vms(id=v, state=\"error\")\nexecute[inv:delta(v)] :- inv:vms(id=v, state=\"stopped\")",
        )
        .expect("insert_rules");
    assert_eq!(fired(&commit.actions), vec![action("inv", "delta", &["v2"]), action("inv", "gamma", &["v5"])]);
}

#[test]
fn database_kind_works() {
    let mut e = Engine::with_default_policies();
    e.create_policy("facts", PolicyKind::Database).expect("database policy");
    insert_all(&mut e, "facts", &["owner(\"v1\", \"ann\")", "owner(\"v2\", \"bob\")"]);
    assert!(matches!(e.insert_rule("facts", "owner(\"v1\", \"ann\")"), Err(EngineError::RuleExists { .. })));
    assert!(e.insert_rule("facts", "x(y) :- owner(y, z)").is_err(), "database policies hold facts only");
    // Other policies keep working and can read the facts.
    insert_all(&mut e, "classification", &["p(1)", "owned(v) :- facts:owner(v, o)"]);
    assert_eq!(answers(&e, "classification", "p(x)"), int_rows(&[&[1]]));
    assert_eq!(answers(&e, "classification", "owned(v)"), str_rows(&[&["v1"], &["v2"]]));
    e.delete_rule("facts", "owner(\"v2\", \"bob\")").expect("delete fact");
    assert_eq!(answers(&e, "classification", "owned(v)"), str_rows(&[&["v1"]]));
}

#[test]
fn materialized_never_stale() {
    let mut e = Engine::with_default_policies();
    e.create_datasource("inv", schema(&[("vms", &["id", "state"])])).expect("datasource");
    e.replace_table("inv", "vms", vec![row(&["v1", "running"]), row(&["v2", "stopped"])]).expect("push");
    e.create_policy("mat", PolicyKind::Materialized).expect("mat");
    insert_all(
        &mut e,
        "mat",
        &["running(v) :- inv:vms(id=v, state=\"running\")", "good(v) :- running(v), classification:ok(v)"],
    );
    assert_eq!(answers(&e, "mat", "running(v)"), str_rows(&[&["v1"]]));
    // A datasource delta reaches the view.
    e.update_table("inv", "vms", vec![row(&["v8", "running"])], vec![row(&["v1", "running"])]).expect("delta");
    assert_eq!(answers(&e, "mat", "running(v)"), str_rows(&[&["v8"]]));
    // So does a full replace, and a change in another (nonrecursive) policy.
    e.replace_table("inv", "vms", vec![row(&["v8", "running"]), row(&["v9", "running"])]).expect("push");
    assert_eq!(answers(&e, "mat", "running(v)"), str_rows(&[&["v8"], &["v9"]]));
    assert!(answers(&e, "mat", "good(v)").is_empty());
    insert_all(&mut e, "classification", &["ok(\"v9\")"]);
    assert_eq!(answers(&e, "mat", "good(v)"), str_rows(&[&["v9"]]));
}

#[test]
fn line_comment_at_eof() {
    let mut e = Engine::with_default_policies();
    insert_all(
        &mut e,
        "classification",
        &["c(9) // line comment without trailing newline", "c(10) # hash comment without trailing newline"],
    );
    assert_eq!(answers(&e, "classification", "c(x)"), int_rows(&[&[9], &[10]]));
    // A comment alone is still no rule.
    assert!(e.insert_rule("classification", "// only a comment").is_err());
}

#[test]
fn every_documented_deviation_has_its_test_here() {
    use congress_conformance::{DEVIATIONS_MD, Deviations};
    let doc = match Deviations::parse(DEVIATIONS_MD) {
        Ok(doc) => doc,
        Err(e) => panic!("docs/deviations.md: {e}"),
    };
    let source = include_str!("deviations.rs");
    for d in &doc.list {
        assert!(
            source.contains(&format!("#[test]\nfn {}()", d.test)),
            "deviation `{}` names test `{}`, which is not in tests/deviations.rs",
            d.id,
            d.test
        );
    }
}

#[test]
fn named_columns_in_simulated_rules() {
    use congress_engine::SimulateRequest;
    let mut e = Engine::with_default_policies();
    e.create_datasource("nova", schema(&[("servers", &["id", "name", "status"])])).expect("datasource");
    e.replace_table("nova", "servers", vec![row(&["v1", "web", "ACTIVE"]), row(&["v2", "db", "SHUTOFF"])])
        .expect("push");
    insert_all(&mut e, "classification", &["watched(\"v1\")", "watched(\"v2\")"]);
    // A rule inserted by the sequence uses named columns; they are resolved against the
    // datasource's schema as in an inserted rule (Congress matches nothing).
    let req = SimulateRequest {
        policy: "classification",
        query: "active(x)",
        sequence: "active+(x) :- watched(x), nova:servers(id=x, status=\"ACTIVE\")",
        action_policy: "action",
        delta: false,
    };
    assert_eq!(e.simulate(&req).expect("simulate"), vec!["active(\"v1\")"]);
    // Named columns in an action description (an ordinary insert) are resolved too.
    insert_all(
        &mut e,
        "action",
        &["action(\"stop\")", "stopped+(x) :- stop(x), nova:servers(id=x, status=\"ACTIVE\")"],
    );
    let req = SimulateRequest { query: "stopped(x)", sequence: "stop(\"v1\") stop(\"v2\")", ..req };
    assert_eq!(e.simulate(&req).expect("simulate"), vec!["stopped(\"v1\")"]);
    // Nothing persists.
    assert!(e.rules("classification").expect("rules").iter().all(|r| !r.starts_with("active")));
}

#[test]
fn execute_arity_checked() {
    let mut e = Engine::with_default_policies();
    insert_all(&mut e, "classification", &["bad(1)", "worse(1, 2)", "execute[nova:servers.pause(x)] :- bad(x)"]);
    let err = e
        .insert_rule("classification", "execute[nova:servers.pause(x, y)] :- worse(x, y)")
        .expect_err("a second arity for one action table");
    assert!(err.to_string().contains("servers.pause"), "{err}");
    // The first rule still stands and dispatches.
    let commit = e.insert_rule("classification", "bad(3)").expect("insert");
    assert_eq!(fired(&commit.actions), vec![("nova".to_string(), "servers.pause".to_string(), vec![Value::Int(3)])]);
}

#[test]
fn materialized_exact() {
    let mut e = Engine::with_default_policies();
    e.create_datasource("inv", schema(&[("vms", &["id", "state"]), ("all", &["id"])])).expect("datasource");
    e.replace_table("inv", "vms", vec![row(&["v1", "running"]), row(&["v1", "paused"])]).expect("push");
    e.replace_table("inv", "all", vec![row(&["v1"]), row(&["v2"])]).expect("push");
    e.create_policy("mat", PolicyKind::Materialized).expect("mat");
    insert_all(&mut e, "mat", &["p(x) :- inv:vms(x, s)", "q(x) :- inv:all(x), not p(x)"]);
    assert_eq!(answers(&e, "mat", "q(x)"), str_rows(&[&["v2"]]));
    // One of v1's two supports goes: p(v1) stays, so q(v1) must not appear.
    e.update_table("inv", "vms", vec![], vec![row(&["v1", "paused"])]).expect("delta");
    assert_eq!(answers(&e, "mat", "q(x)"), str_rows(&[&["v2"]]));
    // The last one goes: now it does.
    e.update_table("inv", "vms", vec![], vec![row(&["v1", "running"])]).expect("delta");
    assert_eq!(answers(&e, "mat", "q(x)"), str_rows(&[&["v1"], &["v2"]]));
    // execute[] rules are accepted in a materialized policy and fire.
    e.insert_rule("mat", "execute[nova:servers.pause(x)] :- q(x)").expect("execute rule");
    let commit = e.update_table("inv", "all", vec![row(&["v3"])], vec![]).expect("delta");
    assert_eq!(fired(&commit.actions), vec![action("nova", "servers.pause", &["v3"])]);
}

#[test]
fn deleted_policy_tables_error() {
    let mut e = Engine::with_default_policies();
    e.create_policy("gone", PolicyKind::Nonrecursive).expect("policy");
    insert_all(&mut e, "gone", &["t(1)", "u(x) :- t(x)"]);
    assert_eq!(answers(&e, "gone", "u(x)"), int_rows(&[&[1]]));
    e.delete_policy("gone").expect("delete");
    assert!(e.rows("gone", "u").is_err(), "rows of a deleted policy's table");
    assert!(e.query_values("gone", "u(x)").is_err(), "a query on a deleted policy");
    // A policy created again under the name starts with nothing of the old one.
    e.create_policy("gone", PolicyKind::Nonrecursive).expect("again");
    assert!(e.query_values("gone", "u(x)").is_ok_and(|r| r.is_empty()));
}
