//! End-to-end tests of `congress library` (list, show, activate, diff) on the two fixture
//! libraries in `tests/fixtures/library-v1` and `library-v2` (v2 changes a rule of
//! `bad-flavors` and bumps its version, adds `host-network`, removes `quota-limits`), with
//! insta snapshots of the outputs (`tests/snapshots/`). The `--cluster` paths need a
//! cluster and are not run here.

const V1: &str = "tests/fixtures/library-v1";
const V2: &str = "tests/fixtures/library-v2";

#[path = "support/cli.rs"]
mod cli;
use cli::run;

/// Run, expecting exit 0 and nothing on stderr; the output.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "congress {args:?}: exit {code}\n{err}");
    assert_eq!(err, "", "congress {args:?}");
    out
}

// ------------------------------------------------------------------------- list

#[test]
fn list_is_a_table_by_category_then_name() {
    let out = ok(&["library", "list", "--dir", V1]);
    insta::assert_snapshot!("library_list_table", out);
    // The option may come before the subcommand too.
    assert_eq!(ok(&["library", "--dir", V1, "list"]), out);
}

#[test]
fn list_as_json() {
    let out = ok(&["library", "list", "--dir", V2, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["bad-flavors", "host-network", "privileged-pods"]);
    insta::assert_snapshot!("library_list_json", out);
}

#[test]
fn list_as_markdown() {
    let out = ok(&["library", "list", "--dir", V1, "-o", "markdown"]);
    insta::assert_snapshot!("library_list_markdown", out);
}

#[test]
fn a_directory_that_is_not_there_is_bad_input() {
    let (code, out, err) = run(&["library", "list", "--dir", "tests/fixtures/no-such-library"]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(err, "error: tests/fixtures/no-such-library: no such directory\n");
}

#[test]
fn without_a_library_here_it_asks_for_one() {
    let empty = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("congress")
        .unwrap()
        .current_dir(empty.path())
        .args(["library", "list"])
        .output();
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pass --dir DIR or --cluster"), "{err}");
}

#[test]
fn a_broken_manifest_is_reported_where_it_is() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("typo.yaml"),
        "apiVersion: congress.dev/v1alpha1\nkind: LibraryPolicy\nmetadata: {name: typo}\nspec:\n  version: 1.0.0\n  rule: p(1)\n",
    )
    .unwrap();
    let (code, _, err) = run(&["library", "list", "--dir", d.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("typo.yaml:6:3") && err.contains("unknown field `spec.rule`"), "{err}");
}

// ------------------------------------------------------------------------- show

#[test]
fn show_is_human_readable() {
    let out = ok(&["library", "show", "bad-flavors", "--dir", V1]);
    insta::assert_snapshot!("library_show_bad_flavors", out);
    let out = ok(&["library", "show", "quota-limits", "--dir", V1]);
    assert!(out.contains("max_limit(resource: string, limit: integer)"), "{out}");
    assert!(out.contains("      max_limit(\"cores\", 8)\n"), "{out}");
}

#[test]
fn show_yaml_is_the_manifest() {
    let out = ok(&["library", "show", "quota-limits", "--dir", V1, "-o", "yaml"]);
    let shown: serde_json::Value = serde_norway::from_str(&out).unwrap();
    let file = std::fs::read_to_string(format!("{}/{V1}/openstack/quota-limits.yaml", env!("CARGO_MANIFEST_DIR")));
    let file: serde_json::Value = serde_norway::from_str(&file.unwrap()).unwrap();
    // Column types are written out (`type: string` is the default).
    let mut expected = file.clone();
    expected["spec"]["parameters"][0]["columns"][0]["type"] = "string".into();
    assert_eq!(shown, expected);
}

#[test]
fn show_of_an_unknown_name_lists_the_known_ones() {
    let (code, _, err) = run(&["library", "show", "nope", "--dir", V1]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: no library policy `nope` in tests/fixtures/library-v1 (it has: bad-flavors, privileged-pods, quota-limits)\n"
    );
}

// ------------------------------------------------------------------------- activate

#[test]
fn activate_prints_a_pinned_policy_with_the_suggested_enforcement() {
    let out = ok(&["library", "activate", "bad-flavors", "--dir", V1]);
    insta::assert_snapshot!("library_activate_defaults", out);
}

#[test]
fn activate_with_rows_in_both_forms() {
    let out = ok(&[
        "library",
        "activate",
        "quota-limits",
        "--dir",
        V1,
        "--name",
        "tight-quotas",
        "--enforcement",
        "monitor",
        "--set",
        "max_limit=cores,4",
        "--set",
        r#"max_limit={"resource": "ram", "limit": 8192}"#,
        "--set",
        r#"max_limit=["disk", 100]"#,
        "-o",
        "yaml",
    ]);
    insta::assert_snapshot!("library_activate_rows", out);
    let one =
        ok(&["library", "activate", "bad-flavors", "--dir", V1, "--set", "permitted_flavor=m1.tiny", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(v["spec"]["libraryRef"]["parameters"], serde_json::json!({"permitted_flavor": ["m1.tiny"]}));
    assert_eq!(v["spec"]["libraryRef"]["version"], "1.0.0");
}

#[test]
fn a_row_that_does_not_fit_says_where_and_why() {
    let (code, out, err) = run(&[
        "library",
        "activate",
        "quota-limits",
        "--dir",
        V1,
        "--set",
        "max_limit=cores,4",
        "--set",
        "max_limit=ram,lots",
    ]);
    assert_eq!(code, 2);
    assert_eq!(out, "", "nothing is printed");
    assert_eq!(err, "error: libraryRef.parameters.max_limit[1]: column `limit` wants a whole number, not \"lots\"\n");

    let (code, _, err) = run(&["library", "activate", "quota-limits", "--dir", V1, "--set", "max_limit=cores"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("parameters.max_limit[0]") && err.contains("1 values for 2 columns (resource, limit)"),
        "{err}"
    );
}

#[test]
fn an_unknown_table_names_the_known_ones() {
    let (code, out, err) = run(&["library", "activate", "quota-limits", "--dir", V1, "--set", "limits=cores,4"]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "error: libraryRef.parameters.limits: the library has no parameter table `limits` (it has: max_limit)\n"
    );
}

#[test]
fn activating_an_unknown_library_policy_or_version_is_bad_input() {
    let (code, _, err) = run(&["library", "activate", "nope", "--dir", V1]);
    assert_eq!(code, 2);
    assert!(err.contains("no library policy `nope`"), "{err}");
    let (code, _, err) = run(&["library", "activate", "bad-flavors", "--dir", V1, "--version", "1.1.0"]);
    assert_eq!(code, 2);
    assert!(err.contains("`bad-flavors` is version 1.0.0"), "{err}");
    let out = ok(&["library", "activate", "bad-flavors", "--dir", V2, "--version", "1.1.0"]);
    assert!(out.contains("version: 1.1.0"), "{out}");
}

#[test]
fn an_activated_policy_evaluates_with_the_rows_given() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(&["library", "activate", "quota-limits", "--dir", V1, "--set", "max_limit=cores,2"]);
    std::fs::write(d.path().join("policy.yaml"), out).unwrap();
    let policy = d.path().join("policy.yaml");
    let (code, out, err) = run(&[
        "eval",
        "-f",
        policy.to_str().unwrap(),
        "-f",
        &format!("{V1}/openstack"),
        "--data",
        &format!("{V1}/datasources"),
        "--data",
        &format!("{V1}/tests/data.yaml"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("quota_limits: 2 violations\n  p1  cores\n  p2  cores\n"), "{out}");
}

// ------------------------------------------------------------------------- diff

#[test]
fn diff_between_two_libraries_exits_1() {
    let (code, out, err) = run(&["library", "diff", "--dir", V2, "--against", V1]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err, "");
    insta::assert_snapshot!("library_diff_v1_v2", out);
}

#[test]
fn diff_of_a_library_against_itself_is_empty() {
    assert_eq!(ok(&["library", "diff", "--dir", V2, "--against", V2]), "");
    let out = ok(&["library", "diff", "--dir", V2, "--against", V2, "--all"]);
    assert_eq!(out, "= bad-flavors 1.1.0\n= host-network 1.0.0\n= privileged-pods 1.0.0\n");
}

#[test]
fn diff_needs_something_to_compare_with() {
    let (code, _, err) = run(&["library", "diff", "--dir", V2]);
    assert_eq!(code, 2);
    assert!(err.contains("pass --against DIR or --cluster"), "{err}");
    let (code, _, err) = run(&["library", "diff", "--dir", V2, "--against", "tests/fixtures/no-such-library"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-library: no such directory"), "{err}");
}
