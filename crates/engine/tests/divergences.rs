//! Behaviour where an earlier version of the engine differed from OpenStack Congress and
//! Congress is right (issue 10): system policies, rows of tables a policy does not mention,
//! and simulate's action descriptions and qualified update heads.

use congress_engine::{Engine, EngineError, PolicyKind, Schema, SimulateRequest, Value};

fn s(v: &str) -> Value {
    Value::str(v)
}

fn schema(tables: &[(&str, &[&str])]) -> Schema {
    tables.iter().map(|(t, cols)| (t.to_string(), cols.iter().map(|c| c.to_string()).collect())).collect()
}

fn simulate(e: &mut Engine, policy: &str, query: &str, sequence: &str) -> Vec<String> {
    let req = SimulateRequest { policy, query, sequence, action_policy: "action", delta: false };
    match e.simulate(&req) {
        Ok(v) => v,
        Err(err) => panic!("simulate `{query}` after `{sequence}`: {err}"),
    }
}

#[test]
fn system_policies_cannot_be_deleted() {
    let mut e = Engine::with_default_policies();
    e.insert_rule("classification", "p(1)").unwrap();
    for name in ["classification", "action"] {
        assert!(e.is_system_policy(name));
        assert!(matches!(e.delete_policy(name), Err(EngineError::SystemPolicy(_))), "{name}");
        assert!(e.policy_kind(name).is_some(), "{name} is still there");
        // Not inside a larger transaction either: nothing of it is applied.
        let mut t = e.transaction();
        t.create_policy("other", PolicyKind::Nonrecursive).delete_policy(name);
        assert!(matches!(t.commit(), Err(EngineError::SystemPolicy(_))));
        assert!(e.policy_kind("other").is_none());
    }
    assert_eq!(e.rules("classification").unwrap(), vec!["p(1)"]);
    // Other policies can be deleted.
    e.create_policy("other", PolicyKind::Nonrecursive).unwrap();
    e.delete_policy("other").unwrap();
    // A system policy's rules can still be replaced as a whole.
    let mut t = e.transaction();
    t.replace_policy("classification", PolicyKind::Nonrecursive).insert_rule("classification", "q(2)");
    t.commit().unwrap();
    assert_eq!(e.rules("classification").unwrap(), vec!["q(2)"]);
    assert_eq!(e.query_values("classification", "p(x)").unwrap(), Vec::<Vec<Value>>::new());
    // replace_policy creates a policy that is absent.
    e.replace_policy("fresh", PolicyKind::Nonrecursive).unwrap();
    assert_eq!(e.policy_kind("fresh"), Some(PolicyKind::Nonrecursive));
    // An engine without default policies has no system policies.
    let mut bare = Engine::new();
    bare.create_policy("classification", PolicyKind::Nonrecursive).unwrap();
    bare.delete_policy("classification").unwrap();
    // The copy without rows keeps them.
    let copy = e.without_rows();
    assert!(copy.is_system_policy("classification") && copy.is_system_policy("action"));
}

#[test]
fn rows_of_tables_the_policy_does_not_mention_are_not_found() {
    let mut e = Engine::with_default_policies();
    e.create_datasource("nova", schema(&[("servers", &["id", "status"]), ("flavors", &["id", "name"])])).unwrap();
    e.replace_table("nova", "servers", vec![vec![s("a"), s("ACTIVE")]]).unwrap();
    e.replace_table("nova", "flavors", vec![vec![s("f"), s("tiny")]]).unwrap();
    e.insert_rules("classification", "up(x) :- nova:servers(x, \"ACTIVE\")\nexecute[nova:servers.pause(x)] :- up(x)")
        .unwrap();
    // Mentioned: readable, qualified or not.
    assert_eq!(e.rows("classification", "nova:servers").unwrap(), vec![vec![s("a"), s("ACTIVE")]]);
    assert_eq!(e.rows("classification", "up").unwrap(), vec![vec![s("a")]]);
    assert_eq!(e.rows("classification", "classification:up").unwrap(), vec![vec![s("a")]]);
    assert_eq!(e.rows("nova", "flavors").unwrap().len(), 1);
    // Not mentioned by classification's rules, or an execute table: NotFound.
    for table in ["nova:flavors", "nova:nosuch", "other:t", "nova:servers.pause", "execute[nova:servers.pause]", "down"]
    {
        assert!(
            matches!(e.rows("classification", table), Err(EngineError::NoSuchTable { .. })),
            "{table}: {:?}",
            e.rows("classification", table)
        );
    }
}

#[test]
fn action_descriptions_read_the_simulated_policy() {
    let mut e = Engine::with_default_policies();
    e.insert_rule("classification", "kv(\"a\", 1)").unwrap();
    e.insert_rules("action", "action(\"put\")\nkv-(k, old) :- put(k, v), kv(k, old)\nkv+(k, v) :- put(k, v)").unwrap();
    assert_eq!(simulate(&mut e, "classification", "kv(k, v)", "put(\"a\", 7)"), vec!["kv(\"a\", 7)"]);
    // Two actions in a row: the second reads the state the first left.
    assert_eq!(
        simulate(&mut e, "classification", "kv(k, v)", "put(\"a\", 7) put(\"b\", 2) put(\"a\", 8)"),
        vec!["kv(\"a\", 8)", "kv(\"b\", 2)"]
    );
    // Nothing persists: neither the change nor the simulated rows in the action policy.
    assert_eq!(e.rules("classification").unwrap(), vec!["kv(\"a\", 1)"]);
    assert_eq!(e.rules("action").unwrap().len(), 3);
    assert!(e.query_values("action", "kv(k, v)").unwrap().is_empty());
}

#[test]
fn qualified_update_heads_change_their_table() {
    let mut e = Engine::with_default_policies();
    e.create_datasource("nova", schema(&[("servers", &["id", "name", "status"])])).unwrap();
    e.replace_table("nova", "servers", vec![vec![s("v1"), s("web"), s("ACTIVE")], vec![s("v2"), s("db"), s("ACTIVE")]])
        .unwrap();
    e.create_policy("other", PolicyKind::Nonrecursive).unwrap();
    e.insert_rule("other", "t(0)").unwrap();
    e.insert_rules("classification", "paused(x) :- nova:servers(x, n, \"PAUSED\")\nseen(x) :- other:t(x)").unwrap();
    e.insert_rules(
        "action",
        "action(\"pause\")\n\
         nova:servers-(id, n, s) :- pause(id), nova:servers(id, n, s)\n\
         nova:servers+(id, n, \"PAUSED\") :- pause(id), nova:servers(id, n, s)\n\
         other:t+(7) :- pause(id)",
    )
    .unwrap();
    assert_eq!(simulate(&mut e, "classification", "paused(x)", "pause(\"v1\")"), vec!["paused(\"v1\")"]);
    assert_eq!(simulate(&mut e, "classification", "seen(x)", "pause(\"v1\")"), vec!["seen(0)", "seen(7)"]);
    assert_eq!(
        simulate(&mut e, "nova", "servers(x, n, st)", "pause(\"v2\")"),
        vec!["servers(\"v1\", \"web\", \"ACTIVE\")", "servers(\"v2\", \"db\", \"PAUSED\")"]
    );
    // Sequence steps with qualified heads.
    assert_eq!(
        simulate(
            &mut e,
            "classification",
            "paused(x)",
            "nova:servers-(\"v2\", \"db\", \"ACTIVE\") nova:servers+(\"v2\", \"db\", \"PAUSED\")"
        ),
        vec!["paused(\"v2\")"]
    );
    assert_eq!(simulate(&mut e, "classification", "seen(x)", "other:t+(3) other:t-(0)"), vec!["seen(3)"]);
    // Nothing persists.
    assert!(e.query_values("classification", "paused(x)").unwrap().is_empty());
    assert_eq!(e.query_values("other", "t(x)").unwrap(), vec![vec![Value::Int(0)]]);
}
