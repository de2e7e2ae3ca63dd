//! Unit tests of the policy loader: the kind rule, labels, trimming, text splitting,
//! positions, staging and diagnosis.

use super::*;
use crate::resources::PolicyKindSpec;

fn rule(name: Option<&str>, text: &str) -> RuleEntry {
    RuleEntry { name: name.map(str::to_string), comment: None, rule: text.to_string() }
}

fn library(kind: Option<PolicyKindSpec>) -> LibraryPolicySpec {
    LibraryPolicySpec {
        kind,
        rules: Some(vec![rule(Some("fact"), "p(1)"), rule(None, "q(x) :- p(x)")]),
        ..Default::default()
    }
}

fn with_ref(kind: Option<PolicyKindSpec>) -> PolicySpec {
    PolicySpec { library_ref: Some(crate::resources::LibraryRef::named("lib")), kind, ..Default::default() }
}

fn labels(s: &PolicyStatements) -> Vec<&str> {
    s.statements.iter().map(|s| s.label.as_str()).collect()
}

fn texts(s: &PolicyStatements) -> Vec<&str> {
    s.statements.iter().map(|s| s.text.as_str()).collect()
}

#[test]
fn an_explicit_kind_wins_over_the_library_kind() {
    let lib = library(Some(PolicyKindSpec::Materialized));
    let s = statements_from_spec(&with_ref(Some(PolicyKindSpec::Database)), Some(("lib", &lib))).unwrap();
    assert_eq!(s.kind, PolicyKind::Database);
}

#[test]
fn without_an_explicit_kind_the_library_kind_then_the_default() {
    let lib = library(Some(PolicyKindSpec::Materialized));
    let s = statements_from_spec(&with_ref(None), Some(("lib", &lib))).unwrap();
    assert_eq!(s.kind, PolicyKind::Materialized);
    let s = statements_from_spec(&with_ref(None), Some(("lib", &library(None)))).unwrap();
    assert_eq!(s.kind, PolicyKind::Nonrecursive);
    let own = PolicySpec { text: Some("p(1)".into()), ..Default::default() };
    assert_eq!(statements_from_spec(&own, None).unwrap().kind, PolicyKind::Nonrecursive);
    let own = PolicySpec { kind: Some(PolicyKindSpec::Action), ..own };
    assert_eq!(statements_from_spec(&own, None).unwrap().kind, PolicyKind::Action);
}

#[test]
fn labels_name_each_statement_and_library_statements_are_prefixed() {
    let spec = PolicySpec {
        rules: Some(vec![rule(Some("bad-image"), "error(x) :- p(x)"), rule(None, "p(1)")]),
        ..Default::default()
    };
    let s = statements_from_spec(&spec, None).unwrap();
    assert_eq!(labels(&s), ["bad-image", "rules[1]"]);
    assert_eq!(s.statements[0].part, Part::Rule(0));
    let lib = library(None);
    let s = statements_from_spec(&with_ref(None), Some(("lib", &lib))).unwrap();
    assert_eq!(labels(&s), ["lib/fact", "lib/rules[1]"]);
    assert_eq!(texts(&s), ["p(1)", "q(x) :- p(x)"]);
    let text_lib = LibraryPolicySpec { text: Some("p(1)\nq(2)".into()), ..Default::default() };
    let s = statements_from_spec(&with_ref(None), Some(("lib", &text_lib))).unwrap();
    assert_eq!(labels(&s), ["lib/text", "lib/text"]);
    // On its own, a library's statements have no prefix.
    assert_eq!(labels(&library_statements(&lib).unwrap()), ["fact", "rules[1]"]);
}

#[test]
fn spec_errors() {
    let lib = library(None);
    assert_eq!(statements_from_spec(&with_ref(None), None), Err(SpecError::LibraryNotFound("lib".into())));
    assert_eq!(
        statements_from_spec(&with_ref(None), Some(("other", &lib))),
        Err(SpecError::LibraryNotFound("lib".into()))
    );
    assert!(matches!(statements_from_spec(&PolicySpec::default(), None), Err(SpecError::InvalidSpec(_))));
    let bad = LibraryPolicySpec::default();
    assert!(matches!(
        statements_from_spec(&with_ref(None), Some(("lib", &bad))),
        Err(SpecError::InvalidLibrary { name, .. }) if name == "lib"
    ));
}

#[test]
fn rule_text_is_trimmed_on_both_sides_and_positions_follow() {
    let rules = [rule(None, "  p(1)  \n\n"), rule(None, "\n  error(x) :-\n    p(x)\n")];
    let s = rule_statements(&rules, "");
    assert_eq!(s[0].text, "p(1)");
    assert_eq!((s[0].line, s[0].column), (1, 3));
    assert_eq!(s[1].text, "error(x) :-\n    p(x)");
    assert_eq!((s[1].line, s[1].column), (2, 3));
    // A position in the text, as a position in the rule entry.
    assert_eq!(s[1].source_position(1, 4), (2, 6));
    assert_eq!(s[1].source_position(2, 5), (3, 5));
}

#[test]
fn text_blocks_split_per_statement_with_positions_and_comments() {
    let s = text_statements("\n// the fact\np(1)\n\n# derived\n#  twice\nq(x) :-\n  p(x)\n", "text");
    let t: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(t, ["p(1)", "q(x) :-\n  p(x)"]);
    assert_eq!(s[0].comment.as_deref(), Some("the fact"));
    assert_eq!(s[1].comment.as_deref(), Some("derived\ntwice"));
    assert_eq!((s[0].line, s[0].column), (3, 1));
    assert_eq!((s[1].line, s[1].column), (7, 1));
    assert!(s.iter().all(|s| s.label == "text" && s.part == Part::Text));
}

#[test]
fn a_text_block_that_does_not_parse_stays_whole() {
    let block = "  p(1)\nq(x :- p(x)\nr(\n";
    let s = text_statements(block, "text");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].text, block.trim());
    assert_eq!((s[0].line, s[0].column), (1, 3));
}

#[test]
fn a_text_block_of_comments_has_no_statements() {
    assert!(text_statements("// nothing yet\n# really\n", "text").is_empty());
    assert!(text_statements("  \n", "text").is_empty());
}

#[test]
fn the_digest_follows_kind_and_texts_not_labels() {
    let a = statements_from_spec(&PolicySpec { text: Some("p(1)\nq(2)".into()), ..Default::default() }, None).unwrap();
    let b = statements_from_spec(
        &PolicySpec { rules: Some(vec![rule(Some("x"), " p(1) "), rule(None, "q(2)\n")]), ..Default::default() },
        None,
    )
    .unwrap();
    assert_eq!(a.digest(), b.digest());
    let c = PolicyStatements { kind: PolicyKind::Database, ..b.clone() };
    assert_ne!(a.digest(), c.digest());
    let d = statements_from_spec(&PolicySpec { text: Some("p(1)\nq(3)".into()), ..Default::default() }, None).unwrap();
    assert_ne!(a.digest(), d.digest());
}

fn load(engine: &mut Engine, policy: &str, s: &PolicyStatements) -> Result<(), Vec<Problem>> {
    let before = engine.clone();
    let exists = engine.policy_kind(policy).is_some();
    let mut txn = engine.transaction();
    stage(&mut txn, policy, s.kind, &s.statements, exists);
    txn.commit()
        .map(|_| ())
        .map_err(|e| diagnose(before, &[Staged { policy, kind: s.kind, statements: &s.statements }], &e))
}

#[test]
fn stage_replaces_the_previous_version_all_or_nothing() {
    let mut engine = Engine::new();
    let v1 = statements_from_spec(&PolicySpec { text: Some("p(1)\nq(x) :- p(x)".into()), ..Default::default() }, None)
        .unwrap();
    load(&mut engine, "pol", &v1).unwrap();
    assert_eq!(engine.rules("pol").unwrap().len(), 2);
    let v2 = statements_from_spec(&PolicySpec { text: Some("p(2)".into()), ..Default::default() }, None).unwrap();
    load(&mut engine, "pol", &v2).unwrap();
    assert_eq!(engine.rules("pol").unwrap(), ["p(2)"]);
    let broken =
        statements_from_spec(&PolicySpec { text: Some("p(3)\nq(x".into()), ..Default::default() }, None).unwrap();
    assert!(load(&mut engine, "pol", &broken).is_err());
    assert_eq!(engine.rules("pol").unwrap(), ["p(2)"], "the previous version stays");
}

#[test]
fn diagnose_finds_every_problem_with_label_and_position() {
    let spec = PolicySpec {
        rules: Some(vec![
            rule(Some("ok"), "p(1)"),
            rule(Some("unsafe"), "\n  error(x) :-\n    p(y)\n"),
            rule(None, "error(x) :-\n  p(x"),
            rule(None, "p(1)"),
        ]),
        ..Default::default()
    };
    let s = statements_from_spec(&spec, None).unwrap();
    let mut engine = Engine::new();
    let problems = load(&mut engine, "pol", &s).unwrap_err();
    assert!(engine.policy_kind("pol").is_none(), "nothing was loaded");
    let got: Vec<(Option<&str>, Option<usize>, usize, ProblemKind)> =
        problems.iter().map(|p| (p.rule.as_deref(), p.statement, p.line, p.kind)).collect();
    assert_eq!(
        got,
        [
            (Some("unsafe"), Some(1), 2, ProblemKind::Analysis),
            (Some("rules[2]"), Some(2), 2, ProblemKind::Syntax),
            (Some("rules[3]"), Some(3), 1, ProblemKind::Other),
        ],
        "{problems:#?}"
    );
    // Columns are within the rule entry as written (the unsafe rule is indented by 2).
    assert!(problems[0].column >= 3, "{problems:#?}");
    assert!(problems[1].column > 1, "{problems:#?}");
    assert!(problems[2].message.contains("already exists"), "{problems:#?}");
    assert!(problems.iter().all(|p| p.policy == "pol" && p.origin.is_none() && p.diagnostic.is_some()));
}

#[test]
fn diagnose_places_an_order_dependent_failure_on_the_policy() {
    // Creating a policy that exists without replacing it fails; replayed alone, it does not.
    let mut engine = Engine::new();
    engine.create_policy("pol", PolicyKind::Nonrecursive).unwrap();
    let before = engine.clone();
    let s = statements_from_spec(&PolicySpec { text: Some("p(1)".into()), ..Default::default() }, None).unwrap();
    let mut txn = engine.transaction();
    stage(&mut txn, "pol", s.kind, &s.statements, false);
    let e = txn.commit().unwrap_err();
    let problems = diagnose(before, &[Staged { policy: "pol", kind: s.kind, statements: &s.statements }], &e);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!((problems[0].rule.as_deref(), problems[0].statement), (None, None));
    assert!(problems[0].message.contains("already exists"), "{problems:#?}");
}

#[test]
fn file_positions_follow_the_origin() {
    let mut s = rule_statements(&[rule(None, "  error(x) :-\n    p(x")], "").remove(0);
    assert_eq!(s.file_position(1, 1), None);
    s.origin = Some(Origin::new("p.yaml", 1, 10, 15));
    assert_eq!(s.file_position(1, 4), Some(Origin::new("p.yaml", 1, 10, 18)));
    // Line 2 of the text: the source's indentation (15 - 3 = 12 columns) plus its column.
    assert_eq!(s.file_position(2, 5), Some(Origin::new("p.yaml", 1, 11, 17)));
}

fn parameterised() -> LibraryPolicySpec {
    serde_norway::from_str(
        r#"
version: 1.2.0
parameters:
- table: permitted_flavor
  columns: [{name: flavor}]
  default: [m1.tiny, [m1.large]]
- table: limit
  columns: [{name: name}, {name: value, type: number}]
  default: [{name: cpu, value: 2.5}]
rules:
- rule: error(id) :- nova:servers(id=id, flavor_id=f), not permitted_flavor(f)
"#,
    )
    .unwrap()
}

#[test]
fn parameters_become_facts_before_the_rules_and_overrides_replace_defaults() {
    let lib = parameterised();
    let s = statements_from_spec(&with_ref(None), Some(("lib", &lib))).unwrap();
    assert_eq!(
        texts(&s),
        [
            r#"permitted_flavor("m1.tiny")"#,
            r#"permitted_flavor("m1.large")"#,
            r#"limit("cpu", 2.5)"#,
            "error(id) :- nova:servers(id=id, flavor_id=f), not permitted_flavor(f)"
        ]
    );
    assert_eq!(
        labels(&s)[..3],
        ["lib/parameters.permitted_flavor[0]", "lib/parameters.permitted_flavor[1]", "lib/parameters.limit[0]"]
    );

    let mut spec = with_ref(None);
    let r = spec.library_ref.as_mut().unwrap();
    r.parameters.insert("permitted_flavor".into(), vec![serde_json::json!(["it's \"quoted\""])]);
    r.parameters.insert("limit".into(), vec![]);
    let e = statements_from_spec(&spec, Some(("lib", &lib))).unwrap_err();
    assert!(e.to_string().contains("libraryRef.parameters.permitted_flavor[0]: column `flavor`"), "{e}");

    let r = spec.library_ref.as_mut().unwrap();
    r.parameters.insert("permitted_flavor".into(), vec![serde_json::json!("m1.small"), serde_json::json!("it's")]);
    let s = statements_from_spec(&spec, Some(("lib", &lib))).unwrap();
    // Single quotes for a string holding a double quote's sibling; an empty override empties the table.
    assert_eq!(texts(&s)[..2], [r#"permitted_flavor("m1.small")"#, r#"permitted_flavor("it's")"#]);
    assert_eq!(s.statements.len(), 3);
    assert_eq!(s.statements[0].label, "libraryRef.parameters.permitted_flavor[0]");
}

#[test]
fn bad_parameters_and_versions_are_refused_with_where_and_why() {
    let lib = parameterised();
    let with = |table: &str, rows: serde_json::Value| {
        let mut spec = with_ref(None);
        let rows = rows.as_array().unwrap().clone();
        spec.library_ref.as_mut().unwrap().parameters.insert(table.into(), rows);
        statements_from_spec(&spec, Some(("lib", &lib))).unwrap_err().to_string()
    };
    let e = with("nope", serde_json::json!([]));
    assert!(e.contains("no parameter table `nope`") && e.contains("permitted_flavor, limit"), "{e}");
    let e = with("limit", serde_json::json!([["cpu"]]));
    assert!(e.contains("libraryRef.parameters.limit[0]: 1 values for 2 columns (name, value)"), "{e}");
    let e = with("limit", serde_json::json!([{"name": "cpu", "valu": 1}]));
    assert!(e.contains("no column `valu`"), "{e}");
    let e = with("limit", serde_json::json!([{"name": "cpu"}]));
    assert!(e.contains("column `value` is missing"), "{e}");
    let e = with("limit", serde_json::json!([["cpu", "2"]]));
    assert!(e.contains("column `value` wants a number, not \"2\""), "{e}");
    let e = with("limit", serde_json::json!([["cpu", -1]]));
    assert!(e.contains("no negative literals"), "{e}");
    let e = with("limit", serde_json::json!(["cpu"]));
    assert!(e.contains("must be a list or an object"), "{e}");

    let mut spec = with_ref(None);
    spec.library_ref.as_mut().unwrap().version = Some("1.0.0".into());
    let e = statements_from_spec(&spec, Some(("lib", &lib))).unwrap_err();
    assert_eq!(e, SpecError::VersionNotFound { name: "lib".into(), wanted: "1.0.0".into(), found: "1.2.0".into() });
    spec.library_ref.as_mut().unwrap().version = Some("1.2.0".into());
    assert!(statements_from_spec(&spec, Some(("lib", &lib))).is_ok());
}

#[test]
fn parameters_with_a_failing_third_rule_load_nothing() {
    // All or nothing: the parameter facts and the first two rules are staged in the same
    // transaction as a third rule that does not analyse, so the commit leaves no trace.
    let mut lib = parameterised();
    lib.rules = Some(vec![
        rule(None, "bad(f) :- permitted_flavor(f)"),
        rule(None, "execute[nova:servers.pause(f)] :- bad(f)"),
        rule(None, "worse(x) :- not bad(x)"),
    ]);
    let s = statements_from_spec(&with_ref(None), Some(("lib", &lib))).unwrap();
    let mut engine = Engine::new();
    let before = engine.clone();
    let mut txn = engine.transaction();
    stage(&mut txn, "lib_active", s.kind, &s.statements, false);
    let e = txn.commit().unwrap_err();
    assert!(engine.policy_kind("lib_active").is_none(), "nothing of the policy is left");
    assert!(engine.query("lib_active", "permitted_flavor(x)").is_err());
    let problems = diagnose(before, &[Staged { policy: "lib_active", kind: s.kind, statements: &s.statements }], &e);
    assert!(!problems.is_empty());
    assert!(problems.iter().all(|p| p.rule.as_deref() == Some("lib/rules[2]")), "{problems:?}");
}
