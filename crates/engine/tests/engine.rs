//! Behaviour of the engine's library API: transactions, actions, recursion, kinds,
//! diagnostics, simulate, explain, and inputs that must be rejected without harm.

use congress_engine::render_proof;
use congress_engine::{Engine, EngineError, PolicyKind, Value};
use congress_engine::{Schema, SimulateRequest};
use std::collections::BTreeSet;

fn s(v: &str) -> Value {
    Value::str(v)
}

fn schema(tables: &[(&str, &[&str])]) -> Schema {
    tables.iter().map(|(t, cols)| (t.to_string(), cols.iter().map(|c| c.to_string()).collect())).collect()
}

/// nova:servers(id, status), neutron:ports(id, device) and a classification policy.
fn cloud() -> Engine {
    let mut e = Engine::with_default_policies();
    e.create_datasource("nova", schema(&[("servers", &["id", "status"])])).unwrap();
    e.create_datasource("neutron", schema(&[("ports", &["id", "device"])])).unwrap();
    e.insert_rules(
        "classification",
        r#"has_port(x) :- neutron:ports(id=p, device=x)
           error(x) :- nova:servers(id=x, status="ACTIVE"), not has_port(x)"#,
    )
    .unwrap();
    e
}

fn errors(e: &Engine) -> Vec<Vec<Value>> {
    e.query_values("classification", "error(x)").unwrap()
}

#[test]
fn engine_is_send() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Engine>();
}

#[test]
fn failed_transaction_leaves_no_trace() {
    let mut e = cloud();
    e.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")]]).unwrap();
    let rules_before = e.rules("classification").unwrap();
    let mut t = e.transaction();
    t.insert_row("nova", "servers", vec![s("b"), s("ACTIVE")])
        .insert_rule("classification", "ok(x) :- nova:servers(x, y)")
        .insert_rule("classification", "bad(x, y) :- nova:servers(x, z)");
    let err = t.commit().unwrap_err();
    assert!(matches!(err, EngineError::Analysis { .. }), "{err}");
    assert_eq!(e.rules("classification").unwrap(), rules_before);
    assert_eq!(errors(&e), vec![vec![s("a")]], "the row of the failed transaction is not there");
    assert!(e.query_values("classification", "ok(x)").unwrap().is_empty());
}

#[test]
fn commit_reports_rows_that_appeared_and_disappeared() {
    let mut e = cloud();
    let c = e.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")], vec![s("b"), s("ACTIVE")]]).unwrap();
    let err = c.changes.iter().find(|d| d.table == "error").unwrap();
    assert_eq!(err.added.len(), 2);
    let c = e.update_table("neutron", "ports", vec![vec![s("p1"), s("a")]], vec![]).unwrap();
    let err = c.changes.iter().find(|d| d.table == "error").unwrap();
    assert_eq!(err.removed, vec![vec![s("a")]]);
    assert!(err.added.is_empty());
}

#[test]
fn actions_fire_once_per_appearance() {
    let mut e = cloud();
    e.create_policy("reactive", PolicyKind::Nonrecursive).unwrap();
    e.insert_rule("reactive", "execute[nova:servers.pause(x)] :- classification:error(x)").unwrap();
    let c = e.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")]]).unwrap();
    assert_eq!(c.actions.len(), 1);
    assert_eq!((&*c.actions[0].service, &*c.actions[0].action), ("nova", "servers.pause"));
    assert_eq!(c.actions[0].args, vec![s("a")]);
    // An unchanged re-push fires nothing.
    let c = e.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")]]).unwrap();
    assert!(c.actions.is_empty());
    // The row disappears (a port arrives) and comes back (the port goes): fires again,
    // and a deletion making a row appear through negation fires.
    let c = e.update_table("neutron", "ports", vec![vec![s("p"), s("a")]], vec![]).unwrap();
    assert!(c.actions.is_empty());
    let c = e.update_table("neutron", "ports", vec![], vec![vec![s("p"), s("a")]]).unwrap();
    assert_eq!(c.actions.len(), 1);
}

/// The actions a policy asks for now, by execute table: what the operator compares with the
/// ActionRequests it made (after a restart, or on becoming leader).
#[test]
fn execute_rows_list_every_execute_table_of_a_policy() {
    let mut e = cloud();
    e.create_policy("reactive", PolicyKind::Nonrecursive).unwrap();
    e.insert_rules(
        "reactive",
        "execute[nova:servers.pause(x)] :- classification:error(x)\nexecute[nova:servers.stop(x)] :- nova:servers(id=x, status=\"SHUTOFF\")",
    )
    .unwrap();
    assert_eq!(
        e.execute_rows("reactive").unwrap(),
        vec![("nova:servers.pause".to_string(), vec![]), ("nova:servers.stop".to_string(), vec![])]
    );
    e.replace_table(
        "nova",
        "servers",
        vec![vec![s("b"), s("ACTIVE")], vec![s("a"), s("ACTIVE")], vec![s("c"), s("SHUTOFF")]],
    )
    .unwrap();
    assert_eq!(
        e.execute_rows("reactive").unwrap(),
        vec![
            ("nova:servers.pause".to_string(), vec![vec![s("a")], vec![s("b")]]),
            ("nova:servers.stop".to_string(), vec![vec![s("c")]])
        ]
    );
    assert!(e.execute_rows("classification").unwrap().is_empty());
    assert!(matches!(e.execute_rows("nowhere"), Err(EngineError::NoSuchPolicy(_))));
}

/// The datasources a policy reads, through the policies it reads: what the operator waits
/// for before acting on the policy's execute rows.
#[test]
fn datasources_read_follow_the_policies_a_policy_reads() {
    let mut e = cloud();
    e.create_datasource("glance", schema(&[("images", &["id"])])).unwrap();
    e.create_policy("reactive", PolicyKind::Nonrecursive).unwrap();
    e.insert_rule("reactive", "execute[nova:servers.pause(x)] :- classification:error(x)").unwrap();
    assert_eq!(e.datasources_read("reactive").unwrap(), vec!["neutron".to_string(), "nova".to_string()]);
    assert_eq!(e.datasources_read("nova").unwrap(), vec!["nova".to_string()]);
    e.insert_rule("reactive", "q(x) :- glance:images(x), nowhere:t(x)").unwrap();
    assert_eq!(
        e.datasources_read("reactive").unwrap(),
        vec!["glance".to_string(), "neutron".to_string(), "nova".to_string()]
    );
    assert!(matches!(e.datasources_read("missing"), Err(EngineError::NoSuchPolicy(_))));
}

#[test]
fn one_transaction_across_tables_has_no_intermediate_state() {
    let mut e = cloud();
    e.create_policy("reactive", PolicyKind::Nonrecursive).unwrap();
    e.insert_rule("reactive", "execute[nova:servers.pause(x)] :- classification:error(x)").unwrap();
    let mut t = e.transaction();
    t.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")], vec![s("b"), s("ACTIVE")]]).replace_table(
        "neutron",
        "ports",
        vec![vec![s("p"), s("a")]],
    );
    let c = t.commit().unwrap();
    assert_eq!(c.actions.len(), 1, "only b lacks a port: {:?}", c.actions);
    assert_eq!(c.actions[0].args, vec![s("b")]);
}

#[test]
fn every_execute_rule_of_a_batch_fires_its_own_action() {
    let mut e = cloud();
    e.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")], vec![s("b"), s("SHUTOFF")]]).unwrap();
    e.create_policy("r", PolicyKind::Nonrecursive).unwrap();
    let c = e
        .insert_rules(
            "r",
            r#"execute[nova:alpha(x)] :- nova:servers(x, "ACTIVE")
               execute[nova:beta(x)] :- nova:servers(x, "SHUTOFF")
               execute[notify(x)] :- nova:servers(x, "SHUTOFF")"#,
        )
        .unwrap();
    let got: Vec<(String, String, Vec<Value>)> =
        c.actions.iter().map(|a| (a.service.to_string(), a.action.to_string(), a.args.clone())).collect();
    assert_eq!(
        got,
        vec![
            ("nova".into(), "alpha".into(), vec![s("a")]),
            ("nova".into(), "beta".into(), vec![s("b")]),
            ("r".into(), "notify".into(), vec![s("b")]),
        ]
    );
}

#[test]
fn recursion_is_maintained_under_inserts_and_deletes() {
    let mut e = Engine::with_default_policies();
    e.create_datasource("net", schema(&[("link", &["a", "b"])])).unwrap();
    e.insert_rules("classification", "reach(x, y) :- net:link(x, y)\nreach(x, z) :- reach(x, y), net:link(y, z)")
        .unwrap();
    let link = |a: i64, b: i64| vec![Value::Int(a), Value::Int(b)];
    e.replace_table("net", "link", vec![link(1, 2), link(2, 3), link(3, 4)]).unwrap();
    assert_eq!(e.query_values("classification", "reach(1, y)").unwrap().len(), 3);
    // A cycle, then cutting it: DRed must re-derive only what still has support.
    e.update_table("net", "link", vec![link(4, 1)], vec![]).unwrap();
    assert_eq!(e.query_values("classification", "reach(x, y)").unwrap().len(), 16);
    let c = e.update_table("net", "link", vec![], vec![link(2, 3)]).unwrap();
    let mut got = e.query_values("classification", "reach(x, y)").unwrap();
    got.sort();
    let mut want: Vec<Vec<Value>> =
        [(1, 2), (3, 4), (3, 1), (3, 2), (4, 1), (4, 2)].iter().map(|&(a, b)| link(a, b)).collect();
    want.sort();
    assert_eq!(got, want);
    let removed = &c.changes.iter().find(|d| d.table == "reach").unwrap().removed;
    assert_eq!(removed.len(), 10);
}

#[test]
fn negation_in_a_cycle_across_policies_is_rejected_with_the_cycle_named() {
    let mut e = Engine::with_default_policies();
    e.create_policy("a", PolicyKind::Nonrecursive).unwrap();
    e.create_policy("b", PolicyKind::Nonrecursive).unwrap();
    e.insert_rules("a", "base(1)\np(x) :- base(x), b:q(x)").unwrap();
    let err = e.insert_rule("b", "q(x) :- a:base(x), not a:p(x)").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("a:p") && msg.contains("b:q"), "{msg}");
    assert!(e.rules("b").unwrap().is_empty());
}

#[test]
fn builtin_failures_are_counted_per_rule() {
    let mut e = Engine::with_default_policies();
    e.insert_rules("classification", "v(\"x\")\nv(3)\nsmall(x) :- v(x), builtin:lt(x, 5)").unwrap();
    assert_eq!(e.query_values("classification", "small(x)").unwrap(), vec![vec![Value::Int(3)]]);
    let f = e.builtin_failures();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "small(x) :- v(x), builtin:lt(x, 5)");
    assert!(f[0].count >= 1 && f[0].last_error.contains("lt"), "{f:?}");
}

#[test]
fn unknown_policy_in_a_body_is_empty_and_warned() {
    let mut e = Engine::with_default_policies();
    e.insert_rules("classification", "x(1)\nz(a) :- x(a), not nosuch:t(a)").unwrap();
    assert_eq!(e.query_values("classification", "z(a)").unwrap(), vec![vec![Value::Int(1)]]);
    let w = e.warnings();
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("nosuch"), "{w:?}");
}

#[test]
fn policy_kinds_behave() {
    let mut e = Engine::with_default_policies();
    e.create_datasource("ds", schema(&[("t", &["a"])])).unwrap();
    assert!(matches!(e.insert_rule("ds", "p(1)"), Err(EngineError::RuleNotPermitted { .. })));
    e.create_policy("db", PolicyKind::Database).unwrap();
    e.insert_rule("db", "owner(\"v1\", \"ann\")").unwrap();
    assert!(e.insert_rule("db", "x(y) :- owner(y, z)").is_err());
    e.insert_rule("classification", "owned(v) :- db:owner(v, o)").unwrap();
    assert_eq!(e.query_values("classification", "owned(v)").unwrap(), vec![vec![s("v1")]]);
    e.create_policy("m", PolicyKind::Materialized).unwrap();
    e.insert_rule("m", "seen(a) :- ds:t(a)").unwrap();
    e.update_table("ds", "t", vec![vec![Value::Int(7)]], vec![]).unwrap();
    assert_eq!(
        e.query_values("m", "seen(a)").unwrap(),
        vec![vec![Value::Int(7)]],
        "materialized views are never stale"
    );
    e.create_policy("z", "Z3".parse().unwrap()).unwrap();
    e.insert_rules("z", "l(1, 2)\nl(2, 3)\np(x, y) :- l(x, y)\np(x, z) :- l(x, y), p(y, z)").unwrap();
    assert_eq!(e.query_values("z", "p(1, y)").unwrap().len(), 2);
    assert!(matches!("bogus".parse::<PolicyKind>(), Err(EngineError::UnknownKind(_))));
}

#[test]
fn every_error_of_a_text_is_reported_with_line_and_column() {
    let mut e = Engine::with_default_policies();
    let text = "ok(1)\np(x :- q(x)\nr(x) :- , q(x)\nfine(x) :- ok(x)\n";
    let err = e.insert_rules("classification", text).unwrap_err();
    let (src, diags) = err.diagnostics().unwrap();
    assert!(diags.len() >= 2, "{diags:?}");
    let lines: Vec<usize> = diags.iter().map(|d| d.span.line_col(src).0).collect();
    assert!(lines.contains(&2) && lines.contains(&3), "{lines:?}");
    let rendered = diags[0].render("policy.congress", src);
    assert!(rendered.contains("policy.congress:2:"), "{rendered}");
    assert!(rendered.contains('^'), "{rendered}");
    // Analysis errors name the rule and point into it.
    let err = e.insert_rules("classification", "a(1)\nb(x, y) :- a(x)\nc(x) :- a(x), not d(x, w)").unwrap_err();
    let (src, diags) = err.diagnostics().unwrap();
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert_eq!(diags[0].span.line_col(src).0, 2);
    assert_eq!(diags[1].span.line_col(src).0, 3);
    assert!(diags[1].rule.as_deref().unwrap_or("").starts_with("c(x)"));
    assert!(e.rules("classification").unwrap().is_empty());
}

#[test]
fn simulate_changes_nothing_and_fires_nothing() {
    let mut e = cloud();
    e.create_policy("reactive", PolicyKind::Nonrecursive).unwrap();
    e.insert_rule("reactive", "execute[nova:servers.pause(x)] :- classification:error(x)").unwrap();
    e.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")]]).unwrap();
    let req = SimulateRequest {
        policy: "classification",
        query: "error(x)",
        sequence: "nova:servers+(\"b\", \"ACTIVE\") neutron:ports+(\"p\", \"a\")",
        action_policy: "action",
        delta: true,
    };
    assert_eq!(e.simulate(&req).unwrap(), vec!["error+(\"b\")", "error-(\"a\")"]);
    assert_eq!(errors(&e), vec![vec![s("a")]]);
    // The next real change fires as if the simulation never happened.
    let c = e.update_table("nova", "servers", vec![vec![s("b"), s("ACTIVE")]], vec![]).unwrap();
    assert_eq!(c.actions.len(), 1);
    let bad = SimulateRequest { sequence: "kv(k, v)", ..req };
    assert!(matches!(e.simulate(&bad), Err(EngineError::Sequence(_))));
}

#[test]
fn simulate_runs_actions_described_by_the_action_policy() {
    let mut e = Engine::with_default_policies();
    e.insert_rules("classification", "size(\"d1\", 10)\nbig(d) :- size(d, n), builtin:gt(n, 15)").unwrap();
    e.insert_rules(
        "action",
        "action(\"grow\")\nsize+(d, n) :- grow(d, k), classification:size(d, o), builtin:plus(o, k, n)\nsize-(d, o) :- grow(d, k), classification:size(d, o)",
    )
    .unwrap();
    let req = SimulateRequest {
        policy: "classification",
        query: "size(d, n)",
        sequence: "grow(\"d1\", 7)",
        action_policy: "action",
        delta: false,
    };
    assert_eq!(e.simulate(&req).unwrap(), vec!["size(\"d1\", 17)"]);
    assert_eq!(e.query_values("classification", "size(d, n)").unwrap(), vec![vec![s("d1"), Value::Int(10)]]);
}

#[test]
fn explain_gives_a_proof_tree() {
    let mut e = cloud();
    e.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")]]).unwrap();
    let p = e.explain("classification", "error(\"a\")").unwrap();
    let text = render_proof(&p);
    assert!(text.contains("rule: error(x)"), "{text}");
    assert!(text.contains("nova:servers(\"a\", \"ACTIVE\")"), "{text}");
    assert!(text.contains("not classification:has_port(\"a\")"), "{text}");
    assert!(matches!(e.explain("classification", "error(\"zz\")"), Err(EngineError::NoProof(_))));
    // Recursive derivations get a well-founded proof.
    e.insert_rules("classification", "l(1, 2)\nl(2, 3)\nl(3, 1)\nr(x, y) :- l(x, y)\nr(x, z) :- r(x, y), l(y, z)")
        .unwrap();
    let p = e.explain("classification", "r(1, 1)").unwrap();
    assert!(render_proof(&p).lines().count() >= 5);
}

#[test]
fn hostile_inputs_are_rejected_or_handled_quickly() {
    let mut e = Engine::with_default_policies();
    // A 50,000-rule chain: loads and evaluates without deep recursion.
    let mut text = String::from("p0(1)\n");
    for i in 1..50_000 {
        text.push_str(&format!("p{i}(x) :- p{}(x)\n", i - 1));
    }
    e.insert_rules("classification", &text).unwrap();
    assert_eq!(e.query_values("classification", "p49999(x)").unwrap(), vec![vec![Value::Int(1)]]);
    // A 5 MB string.
    let big = format!("big(\"{}\")", "x".repeat(5 << 20));
    e.insert_rule("classification", &big).unwrap();
    assert_eq!(e.query_values("classification", "big(x)").unwrap().len(), 1);
    // Deep nesting and garbage are errors, not crashes.
    let deep = format!("p{}", "(".repeat(100_000));
    assert!(e.insert_rules("classification", &deep).is_err());
    assert!(e.insert_rule("classification", "\u{0}\u{ffff}:-:-").is_err());
    let wide = format!("w({})", vec!["1"; 5000].join(", "));
    assert!(e.insert_rule("classification", &wide).is_err(), "over-wide atoms are refused");
    let long = format!("l(x) :- {}", vec!["p0(x)"; 1000].join(", "));
    assert!(e.insert_rule("classification", &long).is_err(), "over-long bodies are refused");
}

#[test]
fn readme_example_works() -> Result<(), EngineError> {
    let mut engine = Engine::with_default_policies();
    engine.create_datasource("nova", [("servers".into(), vec!["id".into(), "status".into()])].into())?;
    engine.insert_rules("classification", r#"error(vm) :- nova:servers(id=vm, status="ERROR")"#)?;
    let commit = engine.replace_table("nova", "servers", vec![vec![Value::str("vm-1"), Value::str("ERROR")]])?;
    assert_eq!(commit.changes[0].added.len(), 1);
    assert_eq!(engine.query_values("classification", "error(x)")?, vec![vec![s("vm-1")]]);
    Ok(())
}

#[test]
fn recreating_a_datasource_with_another_width_is_refused_while_rules_use_it() {
    let mut e = Engine::with_default_policies();
    e.create_datasource("ds", schema(&[("t", &["a", "b"])])).unwrap();
    e.insert_rule("classification", "p(x) :- ds:t(x, y)").unwrap();
    e.replace_table("ds", "t", vec![vec![Value::Int(1), Value::Int(2)]]).unwrap();
    e.delete_policy("ds").unwrap();
    assert!(e.query_values("classification", "p(x)").unwrap().is_empty());
    let err = e.create_datasource("ds", schema(&[("t", &["a"])])).unwrap_err();
    assert!(matches!(err, EngineError::SchemaConflict { used: 2, columns: 1, .. }), "{err}");
    e.create_datasource("ds", schema(&[("t", &["a", "b"])])).unwrap();
    e.replace_table("ds", "t", vec![vec![Value::Int(3), Value::Int(4)]]).unwrap();
    assert_eq!(e.query_values("classification", "p(x)").unwrap(), vec![vec![Value::Int(3)]]);
    e.delete_rule("classification", "p(x) :- ds:t(x, y)").unwrap();
    e.delete_policy("ds").unwrap();
    e.create_datasource("ds", schema(&[("t", &["a"])])).unwrap();
}

#[test]
fn simulate_data_updates_may_name_columns() {
    let mut e = cloud();
    e.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")]]).unwrap();
    let mut req = SimulateRequest {
        policy: "classification",
        query: "error(x)",
        sequence: "neutron:ports+(device=\"a\", id=\"p\")",
        action_policy: "action",
        delta: true,
    };
    assert_eq!(e.simulate(&req).unwrap(), vec!["error-(\"a\")"]);
    req.sequence = "neutron:ports+(device=\"a\")";
    assert!(matches!(e.simulate(&req), Err(EngineError::Sequence(m)) if m.contains("every column")));
    req.sequence = "neutron:ports+(colour=\"a\", id=\"p\")";
    assert!(matches!(e.simulate(&req), Err(EngineError::Sequence(m)) if m.contains("colour")));
    assert_eq!(errors(&e), vec![vec![s("a")]]);
}

/// `without_rows` keeps every policy, schema and rule, drops every row, and accepts or
/// refuses a change of rules exactly as the engine it was made from.
#[test]
fn a_copy_without_rows_judges_rule_changes_as_the_original() {
    let mut e = Engine::with_default_policies();
    let mut schema = Schema::new();
    schema.insert("servers".into(), vec!["id".into(), "status".into()]);
    let mut t = e.transaction();
    t.create_datasource("nova", schema.clone())
        .create_policy("ops", PolicyKind::Nonrecursive)
        .insert_rule("ops", r#"error(id) :- nova:servers(id, "ERROR"), not ok(id)"#)
        .insert_rule("ops", "ok(\"vm1\")")
        .insert_rows(
            "nova",
            "servers",
            (0..1000).map(|i| vec![Value::str(format!("vm{i}")), Value::str("ERROR")]).collect(),
        );
    t.commit().expect("loads");
    assert_eq!(e.rows("ops", "error").unwrap().len(), 999);

    let mut copy = e.without_rows();
    assert_eq!(copy.policy_names(), e.policy_names());
    assert_eq!(copy.schema("nova"), Some(&schema));
    assert_eq!(copy.rules("ops").unwrap(), e.rules("ops").unwrap());
    assert!(copy.rows("nova", "servers").unwrap().is_empty());
    assert!(copy.rows("ops", "error").unwrap().is_empty());
    for rule in [
        "error(id) :- nova:servers(id)",             // wrong arity
        "ok(x) :- not error(x), nova:servers(x, y)", // recursion through negation
        "ok(\"vm1\")",                               // already there
        "p(x) :- q(y)",                              // unsafe
        "fine(id) :- nova:servers(id, status)",
    ] {
        let original = e.clone().insert_rule("ops", rule).map(|_| ());
        let judged = copy.clone().insert_rule("ops", rule).map(|_| ());
        assert_eq!(judged.is_ok(), original.is_ok(), "{rule}: {original:?} vs {judged:?}");
    }
    // The copy is an engine of its own.
    copy.insert_rule("ops", "extra(1)").expect("accepted");
    assert!(e.rows("ops", "extra").is_err());
}

#[test]
fn images_must_come_from_the_registry_and_not_use_latest() {
    let mut e = Engine::with_default_policies();
    let policy = r#"
image("web", "registry.example.com/team/web:1.4")
image("cache", "registry.example.com/team/cache:latest")
image("db", "docker.io/library/postgres:16")
image("tool", "registry.example.com.evil.io/tool:2")
image("odd", 42)
error(pod, "untrusted registry") :- image(pod, ref), not builtin:startswith(ref, "registry.example.com/")
error(pod, "tag latest") :- image(pod, ref), builtin:endswith(ref, ":latest")
tagged(pod, tag) :- image(pod, ref), builtin:split(ref, ":", 1, tag)
shouting(pod, u) :- image(pod, ref), builtin:regex_match(ref, "^registry\.example\.com/"), builtin:upper(ref, u)
"#;
    e.insert_rules("classification", policy).unwrap();
    let mut errs = e.query_values("classification", "error(pod, why)").unwrap();
    errs.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        errs,
        vec![
            vec![s("cache"), s("tag latest")],
            vec![s("db"), s("untrusted registry")],
            // A number is not a string: startswith fails, so `not startswith` holds.
            vec![s("odd"), s("untrusted registry")],
            vec![s("tool"), s("untrusted registry")],
        ]
    );
    let tags = e.query_values("classification", "tagged(\"web\", t)").unwrap();
    assert_eq!(tags, vec![vec![s("web"), s("1.4")]]);
    let loud = e.query_values("classification", "shouting(\"web\", u)").unwrap();
    assert_eq!(loud, vec![vec![s("web"), s("REGISTRY.EXAMPLE.COM/TEAM/WEB:1.4")]]);
    // The row holding a number fails each string builtin once per evaluation, counted
    // against its rule.
    let f = e.builtin_failures();
    assert!(f.iter().any(|f| f.rule.contains("startswith") && f.last_error.contains("must be str")), "{f:?}");
    assert!(f.iter().any(|f| f.rule.contains("endswith")), "{f:?}");
}

#[test]
fn a_constant_bad_pattern_is_an_analysis_error_with_line_and_column() {
    let mut e = Engine::with_default_policies();
    let text = "img(\"a\")\nbad(x) :- img(x), builtin:regex_match(x, \"(unclosed\")\n";
    let err = e.insert_rules("classification", text).unwrap_err();
    let (src, diags) = err.diagnostics().unwrap();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].span.line_col(src), (2, 42));
    assert!(diags[0].message.contains("regex_match") && diags[0].message.contains("(unclosed"), "{diags:?}");
    assert!(e.rules("classification").unwrap().is_empty());
    // A pattern from the data is checked when the rule runs: a failure, counted.
    e.insert_rules("classification", "img(\"a\")\npat(\"[\")\nm(x) :- img(x), pat(p), regex_match(x, p)").unwrap();
    assert!(e.query_values("classification", "m(x)").unwrap().is_empty());
    let f = e.builtin_failures();
    assert!(f.iter().any(|f| f.last_error.contains("bad regular expression")), "{f:?}");
}

#[test]
fn kubernetes_builtins_in_rules() {
    let mut e = Engine::with_default_policies();
    let policy = r#"
pod("a", "nginx", "500m", "v1.27.3", '{"labels": {"app.kubernetes.io/name": "web"}, "replicas": 3}', "10.1.2.0/24")
pod("b", "ghcr.io/o/tool:2", "2", "1.29.0", '{"labels": {}}', "192.168.0.0/24")
pod("c", "Bad Image", "lots", "latest", "{oops", "10.0.0.0/40")
cpu(p, n) :- pod(p, i, q, v, j, c), parse_quantity(q, n)
hub(p, repo, tag) :- pod(p, i, q, v, j, c), parse_image(i, "docker.io", repo, tag, d)
old(p) :- pod(p, i, q, v, j, c), semver_lt(v, "1.28.0")
newer(p, r) :- pod(p, i, q, v, j, c), semver_compare(v, "1.28.0", r), gt(r, 0)
name(p, n) :- pod(p, i, q, v, j, c), json_get(j, 'labels["app.kubernetes.io/name"]', n)
named(p) :- name(p, n)
unnamed(p) :- pod(p, i, q, v, j, c), not named(p)
internal(p) :- pod(p, i, q, v, j, c), network_in_network(c, "10.0.0.0/8")
"#;
    e.insert_rules("classification", policy).unwrap();
    let q = |e: &Engine, query: &str| {
        let mut rows = e.query_values("classification", query).unwrap();
        rows.sort_by_key(|r| format!("{r:?}"));
        rows
    };
    assert_eq!(q(&e, "cpu(p, n)"), vec![vec![s("a"), Value::Float(0.5)], vec![s("b"), Value::Int(2)]]);
    assert_eq!(q(&e, "hub(p, r, t)"), vec![vec![s("a"), s("library/nginx"), s("latest")]]);
    assert_eq!(q(&e, "old(p)"), vec![vec![s("a")]]);
    assert_eq!(q(&e, "newer(p, r)"), vec![vec![s("b"), Value::Int(1)]]);
    assert_eq!(q(&e, "name(p, n)"), vec![vec![s("a"), s("web")]]);
    // A missing key is no answer (b); text that is not JSON is a failure, so `not` holds (c).
    assert_eq!(q(&e, "unnamed(p)"), vec![vec![s("b")], vec![s("c")]]);
    assert_eq!(q(&e, "internal(p)"), vec![vec![s("a")]]);
    let f = e.builtin_failures();
    for name in ["parse_quantity", "parse_image", "semver_lt", "semver_compare", "json_get", "network_in_network"] {
        assert!(f.iter().any(|f| f.rule.contains(name) && f.count >= 1), "{name}: {f:?}");
    }
    // Constant arguments that can never work are analysis errors.
    let err = e.insert_rules("classification", "x(p) :- pod(p, i, q, v, j, c), semver_lt(v, \"1.28\")").unwrap_err();
    let (src, diags) = err.diagnostics().unwrap();
    assert_eq!(diags[0].span.line_col(src), (1, 45), "{diags:?}");
    let err = e.insert_rules("classification", "y(p) :- pod(p, i, q, v, j, c), json_get(j, \"a..b\", n)").unwrap_err();
    assert!(err.to_string().contains("bad path"), "{err}");
}

/// A 20,000-rule chain with negation between every two levels: ordered without recursion
/// (no stack to overflow), evaluated right (r_i(1) holds when an odd number of levels
/// lies below it), and kept right when one rule in the middle goes and comes back.
#[test]
fn a_deep_chain_with_negation_is_stratified_and_evaluated() {
    let n = 20_000;
    let mut e = Engine::with_default_policies();
    let rules: Vec<String> = (0..n).map(|i| format!("r{i}(x) :- q(x), not r{}(x)", i + 1)).collect();
    e.insert_rules("classification", &rules.join("\n")).expect("stratified");
    e.insert_rule("classification", "q(1)").expect("fact");
    let holds =
        |e: &Engine, i: usize| !e.query_values("classification", &format!("r{i}(1)")).expect("query").is_empty();
    // r_{n-1}(1) holds (r_n has no rules), r_{n-2}(1) does not, and so on.
    assert!(holds(&e, n - 1));
    assert!(!holds(&e, n - 2));
    assert_eq!(holds(&e, 0), (n - 1) % 2 == 0);
    // Cut the chain at level 10,000: r_10000 loses its rule, so everything above flips.
    let middle = &rules[10_000];
    e.delete_rule("classification", middle).expect("delete");
    assert!(!holds(&e, 10_000));
    assert_eq!(holds(&e, 0), 9_999 % 2 == 0);
    e.insert_rule("classification", middle).expect("insert again");
    assert_eq!(holds(&e, 0), (n - 1) % 2 == 0);
}

/// One rule that closes a cycle through negation in a loaded program is refused, by
/// name, and leaves the program as it was.
#[test]
fn a_rule_closing_a_negative_cycle_later_is_refused() {
    let mut e = Engine::with_default_policies();
    let rules: Vec<String> = (0..100).map(|i| format!("c{i}(x) :- c{}(x)", i + 1)).collect();
    e.insert_rules("classification", &rules.join("\n")).expect("a chain");
    let err = e.insert_rule("classification", "c100(x) :- b(x), not c0(x)").expect_err("negative cycle");
    assert!(err.to_string().contains("negation inside a recursive cycle"), "{err}");
    // A positive cycle is recursion, and is accepted.
    e.insert_rule("classification", "c100(x) :- c0(x)").expect("positive cycle");
    e.insert_rule("classification", "c0(7)").expect("fact");
    assert_eq!(e.query_values("classification", "c50(x)").expect("query").len(), 1);
}

/// A head with many rules (its changed inputs are recorded rather than scanned): data
/// changes to a few of its inputs, rules in and out, agree with a from-scratch load.
#[test]
fn a_head_with_many_rules_follows_its_inputs() {
    let schema = schema(&[("q", &["i", "x"]), ("n", &["x"])]);
    let rules: Vec<String> = (0..40)
        .map(
            |i| if i % 3 == 0 { format!("p(x) :- ds:q({i}, x), not ds:n(x)") } else { format!("p(x) :- ds:q({i}, x)") },
        )
        .collect();
    let load = |rows: &[(i64, i64)], negated: &[i64], rules: &[String]| {
        let mut e = Engine::new();
        e.create_datasource("ds", schema.clone()).expect("ds");
        e.create_policy("p", PolicyKind::Nonrecursive).expect("p");
        e.replace_table("ds", "q", rows.iter().map(|(i, x)| vec![Value::Int(*i), Value::Int(*x)]).collect())
            .expect("q");
        e.replace_table("ds", "n", negated.iter().map(|x| vec![Value::Int(*x)]).collect()).expect("n");
        e.insert_rules("p", &rules.join("\n")).expect("rules");
        e
    };
    let p = |e: &Engine| e.query_values("p", "p(x)").expect("query");
    let mut rows = vec![(0, 1), (1, 2), (3, 3), (6, 4), (39, 5)];
    let mut e = load(&rows, &[], &rules);
    for step in 0..30i64 {
        let row = (step % 40, step % 7);
        let q = vec![Value::Int(row.0), Value::Int(row.1)];
        if step % 4 == 3 {
            e.update_table("ds", "q", vec![], vec![q]).expect("delete");
            rows.retain(|r| *r != row);
        } else if !rows.contains(&row) {
            e.update_table("ds", "q", vec![q], vec![]).expect("insert");
            rows.push(row);
        }
        let negated: Vec<i64> = (0..step % 5).collect();
        e.replace_table("ds", "n", negated.iter().map(|x| vec![Value::Int(*x)]).collect()).expect("n");
        assert_eq!(p(&e), p(&load(&rows, &negated, &rules)), "after step {step}");
    }
    // A rule out and back in, on the same head.
    e.delete_rule("p", &rules[3]).expect("delete rule");
    let mut fewer = rules.clone();
    fewer.remove(3);
    let negated: Vec<i64> = (0..29 % 5).collect();
    assert_eq!(p(&e), p(&load(&rows, &negated, &fewer)));
}

#[test]
fn a_datasource_table_is_read_while_a_rule_reads_it() {
    let mut e = Engine::new();
    e.create_datasource("nova", schema(&[("servers", &["id"]), ("flavors", &["id"])])).unwrap();
    e.create_policy("p", PolicyKind::Nonrecursive).unwrap();
    assert!(!e.is_read("nova", "servers"));
    e.insert_rule("p", "up(x) :- nova:servers(x)").unwrap();
    assert!(e.is_read("nova", "servers"));
    assert!(!e.is_read("nova", "flavors"));
    assert!(!e.is_read("nova", "nope") && !e.is_read("glance", "servers"));
    e.delete_rule("p", "up(x) :- nova:servers(x)").unwrap();
    assert!(!e.is_read("nova", "servers"));
    e.insert_rule("p", "up(x) :- nova:servers(x)").unwrap();
    e.delete_policy("p").unwrap();
    assert!(!e.is_read("nova", "servers"), "a deleted policy reads nothing");
}

fn change(table: &str, removed: Vec<Vec<Value>>, added: Vec<Vec<Value>>) -> congress_engine::RowChange {
    let (policy, table) = table.split_once(':').unwrap();
    congress_engine::RowChange { policy: policy.into(), table: table.into(), removed, added }
}

#[test]
fn hypothetical_changes_show_new_violations_and_leave_nothing_behind() {
    let mut e = cloud();
    {
        let mut t = e.transaction();
        t.insert_rows("nova", "servers", vec![vec![s("vm-1"), s("ACTIVE")], vec![s("vm-2"), s("ACTIVE")]]);
        t.commit().unwrap();
    }
    {
        let mut t = e.transaction();
        t.insert_rows("neutron", "ports", vec![vec![s("p-2"), s("vm-2")]]);
        t.commit().unwrap();
    }
    let before_errors = errors(&e);
    assert_eq!(before_errors, vec![vec![s("vm-1")]]);
    // A new server without a port, and vm-2's port removed: two rows appear in `error`; the
    // existing violation (vm-1) is not among the changes.
    let changes = [
        change("nova:servers", vec![], vec![vec![s("vm-3"), s("ACTIVE")], vec![s("vm-1"), s("ACTIVE")]]),
        change("neutron:ports", vec![vec![s("p-2"), s("vm-2")], vec![s("p-9"), s("nowhere")]], vec![]),
    ];
    let (added, proof) = e
        .hypothetically(&changes, |e, commit| {
            let added: Vec<Vec<Value>> = commit
                .changes
                .iter()
                .filter(|d| d.policy == "classification" && d.table == "error")
                .flat_map(|d| d.added.clone())
                .collect();
            (added, e.explain("classification", r#"error("vm-3")"#).map(|p| render_proof(&p)))
        })
        .unwrap();
    let mut added = added;
    added.sort();
    assert_eq!(added, vec![vec![s("vm-2")], vec![s("vm-3")]]);
    let proof = proof.unwrap();
    assert!(proof.contains(r#"nova:servers("vm-3", "ACTIVE")"#), "{proof}");
    // Everything is as it was: rows, derived rows, and a later real change works as before.
    assert_eq!(errors(&e), before_errors);
    let mut servers = e.rows("nova", "servers").unwrap();
    servers.sort();
    assert_eq!(servers, vec![vec![s("vm-1"), s("ACTIVE")], vec![s("vm-2"), s("ACTIVE")]]);
    assert_eq!(e.rows("neutron", "ports").unwrap(), vec![vec![s("p-2"), s("vm-2")]]);
    {
        let mut t = e.transaction();
        t.delete_rows("neutron", "ports", vec![vec![s("p-2"), s("vm-2")]]);
        t.commit().unwrap();
    }
    let mut now = errors(&e);
    now.sort();
    assert_eq!(now, vec![vec![s("vm-1")], vec![s("vm-2")]]);
}

#[test]
fn a_hypothetical_change_that_is_refused_changes_nothing() {
    let mut e = cloud();
    {
        let mut t = e.transaction();
        t.insert_rows("nova", "servers", vec![vec![s("vm-1"), s("ACTIVE")]]);
        t.commit().unwrap();
    }
    let bad = [change("nova:servers", vec![], vec![vec![s("vm-3")]])];
    assert!(e.hypothetically(&bad, |_, _| ()).is_err(), "a row of the wrong arity is refused");
    assert_eq!(e.rows("nova", "servers").unwrap(), vec![vec![s("vm-1"), s("ACTIVE")]]);
    assert!(e.hypothetically(&[change("nova:nope", vec![], vec![])], |_, _| ()).is_err());
}

#[test]
fn has_row_looks_one_row_up() {
    let mut e = cloud();
    let mut t = e.transaction();
    t.insert_rows("nova", "servers", vec![vec![s("vm-1"), s("ACTIVE")]]);
    t.commit().unwrap();
    assert!(e.has_row("nova", "servers", &[s("vm-1"), s("ACTIVE")]));
    assert!(!e.has_row("nova", "servers", &[s("vm-1"), s("DOWN")]));
    assert!(!e.has_row("nova", "servers", &[s("never-seen"), s("ACTIVE")]), "a value never interned");
    assert!(!e.has_row("nova", "servers", &[s("vm-1")]), "another arity");
    assert!(!e.has_row("nova", "nope", &[s("vm-1"), s("ACTIVE")]));
    assert!(e.has_row("classification", "error", &[s("vm-1")]));
}

/// Same generation, evaluated when the rules arrive after the data (the full
/// evaluation, whose rounds are driven by the stratum's rows) and with an explicit fact
/// in the recursive table: the rows a naive fixpoint computed here gives.
#[test]
fn a_recursive_stratum_evaluated_from_scratch_matches_a_naive_fixpoint() {
    let mut e = Engine::with_default_policies();
    e.create_datasource("g", schema(&[("edge", &["p", "c"])])).unwrap();
    let edges: Vec<(i64, i64)> = (1..60).map(|i| ((i * 7) % 23, i)).chain([(60, 61), (61, 62)]).collect();
    e.replace_table("g", "edge", edges.iter().map(|&(p, c)| vec![Value::Int(p), Value::Int(c)]).collect()).unwrap();
    e.insert_rules(
        "classification",
        "sg(x, y) :- g:edge(p, x), g:edge(p, y), not equal(x, y)\n\
         sg(x, y) :- g:edge(a, x), sg(a, b), g:edge(b, y)\n\
         sg(61, 1)",
    )
    .unwrap();
    let mut want: BTreeSet<(i64, i64)> = BTreeSet::from([(61, 1)]);
    for &(p, x) in &edges {
        for &(q, y) in &edges {
            if p == q && x != y {
                want.insert((x, y));
            }
        }
    }
    loop {
        let mut more = Vec::new();
        for &(a, x) in &edges {
            for &(a2, b) in &want {
                if a2 == a {
                    more.extend(edges.iter().filter(|&&(b2, _)| b2 == b).map(|&(_, y)| (x, y)));
                }
            }
        }
        let before = want.len();
        want.extend(more);
        if want.len() == before {
            break;
        }
    }
    let got: BTreeSet<(i64, i64)> = e
        .query_values("classification", "sg(x, y)")
        .unwrap()
        .into_iter()
        .map(|r| match (&r[0], &r[1]) {
            (Value::Int(x), Value::Int(y)) => (*x, *y),
            other => panic!("not integers: {other:?}"),
        })
        .collect();
    assert!(want.contains(&(62, 10)), "the explicit fact derives more");
    assert_eq!(got, want);
}

/// The rows of `policy`'s `table`, as integer pairs.
fn int_pairs(e: &Engine, policy: &str, table: &str) -> BTreeSet<(i64, i64)> {
    e.query_values(policy, &format!("{table}(x, y)"))
        .unwrap()
        .into_iter()
        .map(|r| match (&r[0], &r[1]) {
            (Value::Int(x), Value::Int(y)) => (*x, *y),
            other => panic!("not integers: {other:?}"),
        })
        .collect()
}

/// A linear closure evaluated from scratch (one search per source: `eval/closure.rs`)
/// leaves the same rows, and the same derivations behind them, as the semi-naive rounds
/// of an equivalent rule outside that shape (the step literal written twice): checked
/// after the full evaluation, with explicit facts in the closure, and after edges and
/// facts come and go, which maintenance handles from what the evaluation left.
#[test]
fn a_closure_evaluated_by_search_matches_semi_naive_rounds_through_later_changes() {
    let mut next = 12345u64;
    let mut random = move |n: u64| {
        next = next.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((next >> 33) % n) as i64
    };
    let edges: Vec<(i64, i64)> = (0..120).map(|_| (random(40), random(40))).collect();
    let build = |program: &str| {
        let mut e = Engine::new();
        e.create_datasource("g", schema(&[("edge", &["a", "b"])])).unwrap();
        e.replace_table("g", "edge", edges.iter().map(|&(a, b)| vec![Value::Int(a), Value::Int(b)]).collect()).unwrap();
        e.create_policy("p", PolicyKind::Nonrecursive).unwrap();
        e.insert_rules("p", program).unwrap();
        e
    };
    let facts = "path(3, 100)\npath(100, 5)\npath(7, 7)\nback(100, 9)\n";
    let shaped = format!(
        "path(x, y) :- g:edge(x, y)\npath(x, z) :- path(x, y), g:edge(y, z)\n\
         back(x, y) :- g:edge(x, y)\nback(z, x) :- g:edge(z, y), back(y, x)\n{facts}"
    );
    let generic = format!(
        "path(x, y) :- g:edge(x, y)\npath(x, z) :- path(x, y), g:edge(y, z), g:edge(y, z)\n\
         back(x, y) :- g:edge(x, y)\nback(z, x) :- g:edge(z, y), back(y, x), g:edge(z, y)\n{facts}"
    );
    let (mut a, mut b) = (build(&shaped), build(&generic));

    // From scratch, against a closure computed here.
    let mut want: BTreeSet<(i64, i64)> = edges.iter().copied().chain([(3, 100), (100, 5), (7, 7)]).collect();
    loop {
        let more: Vec<(i64, i64)> =
            want.iter().flat_map(|&(x, y)| edges.iter().filter(move |e| e.0 == y).map(move |e| (x, e.1))).collect();
        let before = want.len();
        want.extend(more);
        if want.len() == before {
            break;
        }
    }
    assert!(want.contains(&(100, 5)) && want.len() > 200, "a closure worth checking: {}", want.len());
    assert_eq!(int_pairs(&a, "p", "path"), want);
    for table in ["path", "back"] {
        assert_eq!(int_pairs(&a, "p", table), int_pairs(&b, "p", table), "{table} from scratch");
    }

    // Then the same changes to both: facts of the closure and edges go and come.
    let edge = |(x, y): (i64, i64)| vec![Value::Int(x), Value::Int(y)];
    type Change = Box<dyn Fn(&mut Engine)>;
    let changes: Vec<Change> = vec![
        Box::new(|e| e.delete_rule("p", "path(7, 7)").map(|_| ()).unwrap()),
        Box::new(|e| {
            let mut t = e.transaction();
            t.delete_rule("p", "path(100, 5)");
            t.delete_rule("p", "back(100, 9)");
            t.commit().unwrap();
        }),
        Box::new(move |e| {
            let mut t = e.transaction();
            t.delete_rows("g", "edge", edges[..30].iter().map(|&r| edge(r)).collect());
            t.commit().unwrap();
        }),
        Box::new(move |e| {
            let mut t = e.transaction();
            t.insert_rows("g", "edge", vec![edge((0, 39)), edge((39, 1)), edge((5, 5))]);
            t.commit().unwrap();
        }),
        Box::new(|e| e.insert_rules("p", "path(100, 39)").map(|_| ()).unwrap()),
    ];
    for (i, change) in changes.iter().enumerate() {
        change(&mut a);
        change(&mut b);
        for table in ["path", "back"] {
            assert_eq!(int_pairs(&a, "p", table), int_pairs(&b, "p", table), "{table} after change {i}");
        }
    }
}

/// Same generation (`sg`), a recursion of no closure's shape, against a naive fixpoint
/// computed here: from scratch with explicit facts seeding the rounds beside derived rows
/// (a round's new rows are read where they were stored, explicit ones from copies), after
/// deletions (re-derived rows then fill the slots removed rows freed, and are copied),
/// and after insertions that only append.
#[test]
fn same_generation_rounds_read_new_rows_in_place_or_copied_and_match_a_naive_fixpoint() {
    let naive = |parents: &BTreeSet<(i64, i64)>, facts: &[(i64, i64)]| {
        let mut sg: BTreeSet<(i64, i64)> = facts.iter().copied().collect();
        for &(x, p) in parents {
            sg.extend(parents.iter().filter(|&&(y, q)| q == p && y != x).map(|&(y, _)| (x, y)));
        }
        loop {
            let before = sg.len();
            let more: Vec<(i64, i64)> = sg
                .iter()
                .flat_map(|&(a, b)| {
                    let ys: Vec<i64> = parents.iter().filter(|e| e.1 == b).map(|e| e.0).collect();
                    parents
                        .iter()
                        .filter(move |e| e.1 == a)
                        .flat_map(move |&(x, _)| ys.clone().into_iter().map(move |y| (x, y)))
                })
                .collect();
            sg.extend(more);
            if sg.len() == before {
                return sg;
            }
        }
    };
    // A forest: node i's parent is i / 3 (nodes 1..=120), plus a second root's subtree.
    let mut parents: BTreeSet<(i64, i64)> = (1..=120).map(|i| (i, i / 3)).collect();
    parents.extend((1000..1030).map(|i| (i, 999 - (i % 2))));
    let facts = [(500, 501), (501, 502), (40, 1001), (2, 2)];
    let row = |(c, p): (i64, i64)| vec![Value::Int(c), Value::Int(p)];
    let mut e = Engine::new();
    e.create_datasource("t", schema(&[("parent", &["c", "p"])])).unwrap();
    e.replace_table("t", "parent", parents.iter().map(|&r| row(r)).collect()).unwrap();
    e.create_policy("p", PolicyKind::Nonrecursive).unwrap();
    let explicit: String = facts.iter().map(|(a, b)| format!("sg({a}, {b})\n")).collect();
    e.insert_rules(
        "p",
        &format!(
            "sg(x, y) :- t:parent(x, p), t:parent(y, p), not equal(x, y)\n\
             sg(x, y) :- t:parent(x, a), sg(a, b), t:parent(y, b)\n{explicit}\
             ready() :- t:parent(1, 0)\nfound() :- ready()\nready() :- found(), sg(1, 2)"
        ),
    )
    .unwrap();
    let want = naive(&parents, &facts);
    assert!(want.len() > 2000, "a fixpoint worth checking: {}", want.len());
    assert_eq!(int_pairs(&e, "p", "sg"), want, "from scratch");
    // A nullary table's round: a run of rows of no columns is as long as its slots, not
    // as its (no) symbols.
    assert_eq!(e.query_values("p", "found()").unwrap(), vec![Vec::<Value>::new()], "a nullary round");

    // Delete a subtree's edges: rows go, some come back into freed slots.
    let gone: Vec<(i64, i64)> = parents.iter().copied().filter(|&(c, _)| c % 7 == 0).collect();
    let mut t = e.transaction();
    t.delete_rows("t", "parent", gone.iter().map(|&r| row(r)).collect());
    t.commit().unwrap();
    gone.iter().for_each(|r| {
        parents.remove(r);
    });
    assert_eq!(int_pairs(&e, "p", "sg"), naive(&parents, &facts), "after deletions");

    // Insert them back with new leaves: the table grows again.
    let back: Vec<(i64, i64)> = gone.iter().copied().chain((121..=200).map(|i| (i, i / 3))).collect();
    let mut t = e.transaction();
    t.insert_rows("t", "parent", back.iter().map(|&r| row(r)).collect());
    t.commit().unwrap();
    parents.extend(back);
    assert_eq!(int_pairs(&e, "p", "sg"), naive(&parents, &facts), "after insertions");
}

/// Deleting the rules of a table whose rows are all derived drops them at once: readers
/// downstream see every row go, and the table fills again when the rules come back; with
/// an explicit fact in the table the fact alone stays.
#[test]
fn a_table_that_loses_its_rules_loses_its_derived_rows_and_its_readers_see_it() {
    let mut e = Engine::new();
    e.create_datasource("g", schema(&[("edge", &["a", "b"])])).unwrap();
    let edges: Vec<Vec<Value>> = (0..50).map(|i| vec![Value::Int(i), Value::Int(i + 1)]).collect();
    e.replace_table("g", "edge", edges).unwrap();
    e.create_policy("p", PolicyKind::Nonrecursive).unwrap();
    let rules = ["path(x, y) :- g:edge(x, y)", "path(x, z) :- path(x, y), g:edge(y, z)"];
    e.insert_rules("p", &format!("{}\n{}\nfar(x) :- path(x, 50)", rules[0], rules[1])).unwrap();
    assert_eq!(int_pairs(&e, "p", "path").len(), 50 * 51 / 2);
    assert_eq!(e.query_values("p", "far(x)").unwrap().len(), 50);
    let delete = |e: &mut Engine| {
        let mut t = e.transaction();
        for r in rules {
            t.delete_rule("p", r);
        }
        t.commit().unwrap();
    };
    delete(&mut e);
    assert!(int_pairs(&e, "p", "path").is_empty());
    assert!(e.query_values("p", "far(x)").unwrap().is_empty(), "the reader saw the rows go");
    e.insert_rules("p", &rules.join("\n")).unwrap();
    assert_eq!(int_pairs(&e, "p", "path").len(), 50 * 51 / 2);
    assert_eq!(e.query_values("p", "far(x)").unwrap().len(), 50);

    e.insert_rules("p", "path(7, 50)\npath(100, 101)").unwrap();
    delete(&mut e);
    assert_eq!(int_pairs(&e, "p", "path"), BTreeSet::from([(7, 50), (100, 101)]));
    assert_eq!(e.query_values("p", "far(x)").unwrap(), vec![vec![Value::Int(7)]]);
}

/// Rows applied in one update are looked up a chunk at a time: more rows than a chunk,
/// duplicates inside a chunk, absent rows deleted, and a delete that empties the table
/// midway end in the same state, and report the same net change, as one row per update.
#[test]
fn rows_applied_in_one_batch_match_rows_applied_one_at_a_time() {
    let build = || {
        let mut e = Engine::new();
        e.create_datasource("d", schema(&[("t", &["a", "b"])])).unwrap();
        e.create_policy("p", PolicyKind::Nonrecursive).unwrap();
        e.insert_rules("p", "both(x, y) :- d:t(x, y), d:t(y, x)\nn(x, y) :- d:t(x, y)").unwrap();
        e
    };
    let row = |a: i64, b: i64| vec![Value::Int(a), Value::Int(b)];
    let snapshot = |e: &Engine| (int_pairs(e, "p", "n"), int_pairs(e, "p", "both"));
    let (mut batched, mut single) = (build(), build());
    // 1300 rows (three chunks), each of the first 100 three times.
    let mut inserts: Vec<Vec<Value>> = (0..1200).map(|k| row(k % 40, k / 40)).collect();
    inserts.extend((0..100).map(|k| row(k % 40, k / 40)));
    inserts.extend((0..100).map(|k| row(k % 40, k / 40)));
    // Every row once, some twice, and rows that were never there.
    let mut deletes: Vec<Vec<Value>> = (0..600).map(|k| row(k % 40, k / 40)).collect();
    deletes.extend((0..50).map(|k| row(k % 40, k / 40)));
    deletes.extend((0..20).map(|k| row(1000 + k, 0)));
    let everything: Vec<Vec<Value>> = (0..1200).rev().map(|k| row(k % 40, k / 40)).chain(deletes.clone()).collect();
    let last = || vec![row(1, 1), row(1, 1)];
    let steps = [(inserts, vec![]), (vec![], deletes), (vec![], everything), (last(), vec![]), (vec![], last())];
    for (add, delete) in steps {
        let before = snapshot(&batched);
        let commit = batched.update_table("d", "t", add.clone(), delete.clone()).unwrap();
        for r in &add {
            single.update_table("d", "t", vec![r.clone()], vec![]).unwrap();
        }
        for r in &delete {
            single.update_table("d", "t", vec![], vec![r.clone()]).unwrap();
        }
        let after = snapshot(&batched);
        assert_eq!(after, snapshot(&single));
        let reported = |sign: bool| -> BTreeSet<(i64, i64)> {
            commit
                .changes
                .iter()
                .filter(|d| d.table == "n")
                .flat_map(|d| if sign { &d.added } else { &d.removed })
                .map(|r| match (&r[0], &r[1]) {
                    (Value::Int(x), Value::Int(y)) => (*x, *y),
                    other => panic!("not integers: {other:?}"),
                })
                .collect()
        };
        assert_eq!(reported(true), after.0.difference(&before.0).copied().collect());
        assert_eq!(reported(false), before.0.difference(&after.0).copied().collect());
    }
    assert!(snapshot(&batched).0.is_empty(), "the last delete empties the table");
}

/// A replaced table holds exactly the rows given, whether it was empty (loaded in bulk) or
/// not (the difference applied, more rows than a lookup chunk each way, duplicates given),
/// and the commit reports exactly what changed.
#[test]
fn a_replaced_table_holds_exactly_the_rows_given() {
    let mut e = Engine::new();
    e.create_datasource("d", schema(&[("t", &["a", "b"])])).unwrap();
    e.create_policy("p", PolicyKind::Nonrecursive).unwrap();
    e.insert_rules("p", "n(x, y) :- d:t(x, y)").unwrap();
    let rows = |range: std::ops::Range<i64>| -> Vec<Vec<Value>> {
        range.map(|k| vec![Value::Int(k % 50), Value::Int(k / 50)]).collect()
    };
    let pairs = |rows: &[Vec<Value>]| -> BTreeSet<(i64, i64)> {
        rows.iter()
            .map(|r| match (&r[0], &r[1]) {
                (Value::Int(x), Value::Int(y)) => (*x, *y),
                other => panic!("not integers: {other:?}"),
            })
            .collect()
    };
    let with_duplicates = |mut r: Vec<Vec<Value>>| {
        let again: Vec<Vec<Value>> = r.iter().step_by(3).cloned().collect();
        r.extend(again);
        r
    };
    let steps = [
        with_duplicates(rows(0..1300)),
        with_duplicates(rows(700..2100)),
        vec![],
        with_duplicates(rows(5..600)),
        rows(5..600),
    ];
    for given in steps {
        let before = int_pairs(&e, "p", "n");
        let commit = e.replace_table("d", "t", given.clone()).unwrap();
        let after = int_pairs(&e, "p", "n");
        assert_eq!(after, pairs(&given));
        let reported = |added: bool| -> BTreeSet<(i64, i64)> {
            let rows: Vec<Vec<Value>> = commit
                .changes
                .iter()
                .filter(|d| d.table == "n")
                .flat_map(|d| if added { d.added.clone() } else { d.removed.clone() })
                .collect();
            pairs(&rows)
        };
        assert_eq!(reported(true), after.difference(&before).copied().collect());
        assert_eq!(reported(false), before.difference(&after).copied().collect());
    }
}
