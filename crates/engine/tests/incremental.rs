//! The engine's main invariant, checked on random programs: after any sequence of
//! inserts and deletes of facts and rules (in random transactions), every table
//! maintained incrementally equals a from-scratch evaluation of the final state, and
//! the actions a commit fires are exactly the execute rows that newly appeared.

use congress_engine::{Engine, Value};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const BASE: [&str; 3] = ["e0", "e1", "e2"];

/// Derived tables d0..d3; d0,d1 form group 0 and d2,d3 group 1. Positive references go
/// to any table of the same or a lower group (so recursion, even mutual, happens);
/// negation only to base tables and lower groups (so every program is stratified).
fn group(d: usize) -> usize {
    d / 2
}

fn pos_source(d: usize, pick: usize) -> String {
    let mut choices: Vec<String> = BASE.iter().map(|b| format!("ds:{b}")).collect();
    for k in 0..4 {
        if group(k) <= group(d) {
            choices.push(format!("d{k}"));
        }
    }
    choices[pick % choices.len()].clone()
}

fn neg_source(d: usize, pick: usize) -> String {
    let mut choices: Vec<String> = BASE.iter().map(|b| format!("ds:{b}")).collect();
    for k in 0..4 {
        if group(k) < group(d) {
            choices.push(format!("d{k}"));
        }
    }
    choices[pick % choices.len()].clone()
}

fn rule_text(template: u8, d: usize, a: usize, b: usize, c: i64) -> String {
    let head = format!("d{d}");
    let (pa, pb, nb) = (pos_source(d, a), pos_source(d, b), neg_source(d, b));
    match template % 8 {
        0 => format!("{head}(x, y) :- {pa}(x, y)"),
        1 => format!("{head}(x, y) :- {pa}(x, z), {pb}(z, y)"),
        2 => format!("{head}(x, y) :- {pa}(x, y), not {nb}(y, x)"),
        3 => format!("{head}(x, y) :- {pa}(x, y), builtin:lt(x, y)"),
        4 => format!("{head}(x, x) :- {pa}(x, {c})"),
        5 => format!("{head}(x, z) :- {pa}(x, y), builtin:plus(y, 1, z), builtin:lt(z, 5)"),
        6 => format!("{head}(x, w) :- {pa}(x, y), {pb}(y, z), {pa}(z, w), not {nb}(x, w)"),
        _ => format!("execute[svc:act{d}(x)] :- {pa}(x, y), not {nb}(y, x)"),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Row { table: usize, row: (i64, i64), insert: bool },
    Rule { text: String, insert: bool },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..5i64, 0..5i64, any::<bool>())
            .prop_map(|(table, a, b, insert)| Op::Row { table, row: (a, b), insert }),
        1 => (any::<u8>(), 0..4usize, 0..8usize, 0..8usize, 0..5i64, any::<bool>())
            .prop_map(|(t, d, a, b, c, insert)| Op::Rule { text: rule_text(t, d, a, b, c), insert }),
        // Explicit facts in derived tables (recursive ones included).
        1 => (0..4usize, 0..5i64, 0..5i64, any::<bool>())
            .prop_map(|(d, a, b, insert)| Op::Rule { text: format!("d{d}({a}, {b})"), insert }),
    ]
}

fn schema() -> BTreeMap<String, Vec<String>> {
    BASE.iter().map(|b| (b.to_string(), vec!["a".to_string(), "b".to_string()])).collect()
}

fn fresh_engine() -> Engine {
    let mut e = Engine::new();
    e.create_datasource("ds", schema()).expect("datasource");
    e.create_policy("p", congress_engine::PolicyKind::Nonrecursive).expect("policy");
    e
}

/// The model state: which rows and rules are in.
#[derive(Clone, Default)]
struct Model {
    rows: [BTreeSet<(i64, i64)>; 3],
    rules: Vec<String>,
}

fn row(r: (i64, i64)) -> Vec<Value> {
    vec![Value::Int(r.0), Value::Int(r.1)]
}

/// Evaluate a model state from scratch (data first, then all rules in one transaction).
fn from_scratch(m: &Model) -> Engine {
    let mut e = fresh_engine();
    for (i, t) in BASE.iter().enumerate() {
        e.replace_table("ds", t, m.rows[i].iter().map(|r| row(*r)).collect()).expect("load");
    }
    let mut t = e.transaction();
    for r in &m.rules {
        t.insert_rule("p", r);
    }
    t.commit().expect("rules accepted from scratch");
    e
}

fn snapshot(e: &Engine) -> BTreeMap<String, Vec<Vec<Value>>> {
    let mut out = BTreeMap::new();
    for d in 0..4 {
        out.insert(format!("d{d}"), e.query_values("p", &format!("d{d}(x, y)")).expect("query"));
        out.insert(format!("act{d}"), e.query_values("p", &format!("execute[svc:act{d}(x)]")).expect("query"));
    }
    out
}

fn execute_rows(s: &BTreeMap<String, Vec<Vec<Value>>>) -> BTreeSet<(String, Vec<Value>)> {
    s.iter()
        .filter(|(k, _)| k.starts_with("act"))
        .flat_map(|(k, rows)| rows.iter().map(move |r| (k.clone(), r.clone())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_from_scratch(ops in prop::collection::vec(op_strategy(), 1..40), split in prop::collection::vec(1..4usize, 40)) {
        let mut engine = fresh_engine();
        let mut model = Model::default();
        let mut before = snapshot(&engine);
        let mut i = 0;
        let mut batch_no = 0;
        while i < ops.len() {
            let n = split[batch_no % split.len()].min(ops.len() - i);
            batch_no += 1;
            let batch = &ops[i..i + n];
            i += n;
            // Apply to the model, skipping ops that are no-ops or would be rejected.
            let mut next = model.clone();
            let mut txn_ops = Vec::new();
            for op in batch {
                match op {
                    Op::Row { table, row: r, insert } => {
                        let changed = if *insert { next.rows[*table].insert(*r) } else { next.rows[*table].remove(r) };
                        if changed { txn_ops.push(op.clone()); }
                    }
                    Op::Rule { text, insert } => {
                        let has = next.rules.contains(text);
                        if *insert && !has { next.rules.push(text.clone()); txn_ops.push(op.clone()); }
                        if !*insert && has { next.rules.retain(|r| r != text); txn_ops.push(op.clone()); }
                    }
                }
            }
            let mut t = engine.transaction();
            for op in &txn_ops {
                match op {
                    Op::Row { table, row: r, insert: true } => { t.insert_row("ds", BASE[*table], row(*r)); }
                    Op::Row { table, row: r, insert: false } => { t.delete_row("ds", BASE[*table], row(*r)); }
                    Op::Rule { text, insert: true } => { t.insert_rule("p", text); }
                    Op::Rule { text, insert: false } => { t.delete_rule("p", text); }
                }
            }
            let commit = t.commit().expect("valid transaction commits");
            model = next;
            let after = snapshot(&engine);
            let expected = snapshot(&from_scratch(&model));
            prop_assert_eq!(&after, &expected, "tables differ from a from-scratch evaluation after {:?}", txn_ops);
            // Actions: exactly the execute rows that newly appeared.
            let appeared: BTreeSet<(String, Vec<Value>)> =
                execute_rows(&after).difference(&execute_rows(&before)).cloned().collect();
            let fired: Vec<(String, Vec<Value>)> =
                commit.actions.iter().map(|a| (a.action.to_string(), a.args.clone())).collect();
            let fired_set: BTreeSet<(String, Vec<Value>)> = fired.iter().cloned().collect();
            prop_assert_eq!(fired.len(), fired_set.len(), "an action fired twice in one commit");
            prop_assert_eq!(fired_set, appeared, "actions differ from newly appeared execute rows");
            before = after;
        }
    }
}

/// Layered programs: derived tables l0..l11 in four groups of three; positive references
/// to the same or a lower group (recursion within a group), negation only to lower groups.
/// Rules arrive and leave one by one in random order, so levels are raised, components
/// form and split, and rules are added to and removed from heads with other rules: the
/// incremental ordering (`eval::strata`) and per-rule deltas against a from-scratch run.
fn layered_source(d: usize, pick: usize, negated: bool) -> String {
    let mut choices: Vec<String> = BASE.iter().map(|b| format!("ds:{b}")).collect();
    for k in 0..12 {
        if k / 3 < d / 3 || (!negated && k / 3 == d / 3) {
            choices.push(format!("l{k}"));
        }
    }
    choices[pick % choices.len()].clone()
}

fn layered_rule(template: u8, d: usize, a: usize, b: usize) -> String {
    let (pa, pb, nb) = (layered_source(d, a, false), layered_source(d, b, false), layered_source(d, b, true));
    match template % 4 {
        0 => format!("l{d}(x, y) :- {pa}(x, y)"),
        1 => format!("l{d}(x, y) :- {pa}(x, z), {pb}(z, y)"),
        2 => format!("l{d}(x, y) :- {pa}(x, y), not {nb}(y, x)"),
        _ => format!("l{d}(y, x) :- {pa}(x, y)"),
    }
}

fn layered_snapshot(e: &Engine) -> BTreeMap<String, Vec<Vec<Value>>> {
    (0..12).map(|d| (format!("l{d}"), e.query_values("p", &format!("l{d}(x, y)")).expect("query"))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn layered_rules_one_at_a_time_equal_from_scratch(
        rows in prop::collection::vec((0..3usize, 0..4i64, 0..4i64), 0..20),
        ops in prop::collection::vec((any::<u8>(), 0..12usize, 0..16usize, 0..16usize, any::<bool>()), 1..60),
    ) {
        let mut engine = fresh_engine();
        let mut model = Model::default();
        for (t, a, b) in rows {
            if model.rows[t].insert((a, b)) {
                engine.update_table("ds", BASE[t], vec![row((a, b))], Vec::new()).expect("row");
            }
        }
        for (template, d, a, b, insert) in ops {
            let text = layered_rule(template, d, a, b);
            let has = model.rules.contains(&text);
            if insert && !has {
                engine.insert_rule("p", &text).expect("stratified by construction");
                model.rules.push(text.clone());
            } else if !insert && has {
                engine.delete_rule("p", &text).expect("present");
                model.rules.retain(|r| *r != text);
            } else {
                continue;
            }
            let expected = layered_snapshot(&from_scratch(&model));
            prop_assert_eq!(layered_snapshot(&engine), expected, "after {} `{}`", if insert { "inserting" } else { "deleting" }, text);
        }
    }
}
