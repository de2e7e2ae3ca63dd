//! Checks over the policy library in `library/`: its tests pass (`congress test
//! library/tests`); every LibraryPolicy under `library/{openstack,kubernetes}` has a semver
//! version, a category, a severity, a description and an example, and is activated by a
//! Policy in `library/tests` (so it has tests); its declared `reads` are exactly the
//! `service:table` atoms its rules read; and `library/README.md` lists the library as
//! `congress library list --dir library -o markdown` prints it
//! (`UPDATE_README=1 cargo nextest run --test library` rewrites that list).
//!
//! The same checks run on the fixture libraries (`tests/fixtures/library-v1`, `-v2`), and on
//! a broken library made here, so they are known to catch what they look for even while
//! `library/` has no policies.

use assert_cmd::Command;
use congress_engine::syntax;
use congress_model::resources::{LibraryPolicySpec, PolicySpec};
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FIXTURES: [&str; 2] = ["tests/fixtures/library-v1", "tests/fixtures/library-v2"];
const START: &str = "<!-- library-list:start -->";
const END: &str = "<!-- library-list:end -->";

fn root() -> PathBuf {
    PathBuf::from(ROOT)
}

fn congress(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("congress").unwrap().current_dir(ROOT).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The YAML/JSON files under `dir`, recursively, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json")) {
            out.push(p);
        }
    }
    out
}

/// The documents of a file.
fn documents(file: &Path) -> Vec<Json> {
    let text = std::fs::read_to_string(file).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| Json::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", file.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind(doc: &Json) -> &str {
    doc.get("kind").and_then(Json::as_str).unwrap_or("")
}

/// One LibraryPolicy of a library.
struct Shipped {
    file: PathBuf,
    name: String,
    spec: LibraryPolicySpec,
}

/// The LibraryPolicies under `LIBRARY/{openstack,kubernetes}`; a file with other than one
/// LibraryPolicy is a problem.
fn library_policies(library: &Path, problems: &mut Vec<String>) -> Vec<Shipped> {
    let mut out = Vec::new();
    for group in ["openstack", "kubernetes"] {
        for file in files(&library.join(group)) {
            let docs: Vec<Json> = documents(&file).into_iter().filter(|d| kind(d) == "LibraryPolicy").collect();
            if docs.len() != 1 {
                problems.push(format!("{}: {} LibraryPolicies, not one", file.display(), docs.len()));
            }
            for d in docs {
                let name = d["metadata"]["name"].as_str().unwrap_or("").to_string();
                match serde_json::from_value(d["spec"].clone()) {
                    Ok(spec) => out.push(Shipped { file: file.clone(), name, spec }),
                    Err(e) => problems.push(format!("{}: {name}: invalid spec: {e}", file.display())),
                }
            }
        }
    }
    out
}

/// `x.y.z`, numbers without leading zeros.
fn is_semver(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0')))
}

/// (b) Every policy says what it is: version, category, severity, description, example.
fn check_metadata(policies: &[Shipped]) -> Vec<String> {
    let mut problems = Vec::new();
    for p in policies {
        let at = format!("{} ({})", p.name, p.file.display());
        match &p.spec.version {
            Some(v) if is_semver(v) => {}
            Some(v) => problems.push(format!("{at}: version `{v}` is not x.y.z")),
            None => problems.push(format!("{at}: no version")),
        }
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        for (field, missing) in [
            ("category", blank(&p.spec.category)),
            ("severity", p.spec.severity.is_none()),
            ("description", blank(&p.spec.description)),
            ("example", blank(&p.spec.example)),
        ] {
            if missing {
                problems.push(format!("{at}: no {field}"));
            }
        }
    }
    problems
}

/// (b) Every policy is activated by a Policy in `LIBRARY/tests`, so it has tests.
fn check_tested(library: &Path, policies: &[Shipped]) -> Vec<String> {
    let mut activated = BTreeSet::new();
    for file in files(&library.join("tests")) {
        for d in documents(&file).into_iter().filter(|d| kind(d) == "Policy") {
            if let Ok(spec) = serde_json::from_value::<PolicySpec>(d["spec"].clone())
                && let Some(r) = spec.library_ref
            {
                activated.insert(r.name);
            }
        }
    }
    policies
        .iter()
        .filter(|p| !activated.contains(&p.name))
        .map(|p| format!("{}: no Policy in {}/tests activates it (libraryRef.name)", p.name, library.display()))
        .collect()
}

/// The `service:table` atoms the rules of a policy read: body literals with a prefix, but
/// `builtin:` and the policies it `dependsOn` (by engine name).
fn reads_of(spec: &LibraryPolicySpec) -> Result<BTreeSet<String>, String> {
    let depends: BTreeSet<String> = spec.depends_on.iter().map(|d| congress_model::engine_name(d)).collect();
    let texts: Vec<&str> = match (&spec.rules, &spec.text) {
        (Some(rules), _) => rules.iter().map(|r| r.rule.as_str()).collect(),
        (None, Some(text)) => vec![text.as_str()],
        (None, None) => Vec::new(),
    };
    let mut reads = BTreeSet::new();
    for text in texts {
        let parsed = syntax::parse(text);
        if !parsed.is_ok() {
            let messages: Vec<&str> = parsed.diagnostics.iter().map(|d| d.message.as_str()).collect();
            return Err(format!("does not parse: {}", messages.join("; ")));
        }
        for rule in &parsed.rules {
            for lit in &rule.body {
                if let Some(p) = &lit.atom.policy
                    && p != "builtin"
                    && !depends.contains(p)
                {
                    reads.insert(format!("{p}:{}", lit.atom.table));
                }
            }
        }
    }
    Ok(reads)
}

/// (c) The declared `reads` are exactly what the rules read.
fn check_reads(policies: &[Shipped]) -> Vec<String> {
    let mut problems = Vec::new();
    for p in policies {
        let declared: BTreeSet<String> = p.spec.reads.iter().cloned().collect();
        if declared.len() != p.spec.reads.len() {
            problems.push(format!("{}: `reads` lists a table twice", p.name));
        }
        match reads_of(&p.spec) {
            Err(e) => problems.push(format!("{}: {e}", p.name)),
            Ok(read) if read != declared => {
                let missing: Vec<&String> = read.difference(&declared).collect();
                let extra: Vec<&String> = declared.difference(&read).collect();
                problems.push(format!(
                    "{}: `reads` is not what the rules read: missing {missing:?}, not read {extra:?}",
                    p.name
                ));
            }
            Ok(_) => {}
        }
    }
    problems
}

/// (a) `congress test LIBRARY/tests` passes.
fn check_tests_pass(library: &Path) -> Vec<String> {
    let tests = library.join("tests");
    let (code, out, err) = congress(&["test", tests.to_str().unwrap()]);
    if code == 0 { Vec::new() } else { vec![format!("congress test {} exits {code}:\n{out}{err}", tests.display())] }
}

/// Every check of (a), (b) and (c) on one library.
fn check_library(library: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let policies = library_policies(library, &mut problems);
    problems.extend(check_metadata(&policies));
    problems.extend(check_tested(library, &policies));
    problems.extend(check_reads(&policies));
    if library.join("tests").is_dir() {
        problems.extend(check_tests_pass(library));
    }
    problems
}

fn assert_clean(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn the_library_is_complete_consistent_and_tested() {
    let library = root().join("library");
    let mut problems = Vec::new();
    let policies = library_policies(&library, &mut problems);
    // Both parts of the library are there (a moved or emptied library fails here, not silently).
    for part in ["openstack", "kubernetes"] {
        let n = std::fs::read_dir(library.join(part)).map(|d| d.count()).unwrap_or(0);
        assert!(n >= 10, "library/{part} has {n} policies");
    }
    assert!(policies.len() >= 20, "library/ has {} policies", policies.len());
    assert!(library.join("tests").is_dir(), "library/tests does not exist: the library policies have no tests");
    assert_clean("library/", check_library(&library));
}

#[test]
fn the_fixture_libraries_pass_the_same_checks() {
    for f in FIXTURES {
        let library = root().join(f);
        let mut problems = Vec::new();
        let policies = library_policies(&library, &mut problems);
        assert_eq!(policies.len(), 3, "{f}");
        assert_clean(f, check_library(&library));
    }
}

#[test]
fn reads_leave_out_builtins_and_the_policies_depended_on() {
    let mut problems = Vec::new();
    let v2 = library_policies(&root().join(FIXTURES[1]), &mut problems);
    let host = v2.iter().find(|p| p.name == "host-network").unwrap();
    assert_eq!(host.spec.depends_on, ["privileged-pods"]);
    assert_eq!(reads_of(&host.spec).unwrap(), BTreeSet::from(["kube:pods".to_string()]));
    let v1 = library_policies(&root().join(FIXTURES[0]), &mut problems);
    let quota = v1.iter().find(|p| p.name == "quota-limits").unwrap();
    assert!(quota.spec.text.as_deref().unwrap().contains("builtin:gt"));
    assert_eq!(reads_of(&quota.spec).unwrap(), BTreeSet::from(["nova:quotas".to_string()]));
    assert!(problems.is_empty(), "{problems:?}");
}

/// A copy of fixture library v1 with one thing broken per policy.
#[test]
fn a_broken_library_is_caught() {
    let d = tempfile::tempdir().unwrap();
    let src = root().join(FIXTURES[0]);
    for file in files(&src) {
        let to = d.path().join(file.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&file, &to).unwrap();
    }
    let edit = |rel: &str, from: &str, to: &str| {
        let p = d.path().join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{rel}: {from}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    };
    // No example, and a version that is not semver.
    edit(
        "openstack/bad-flavors.yaml",
        "  example: |\n    nova:servers(id=\"vm-1\", flavor_id=\"m1.xlarge\", status=\"ACTIVE\") gives error(\"vm-1\").\n",
        "",
    );
    edit("openstack/bad-flavors.yaml", "version: 1.0.0", "version: \"1.0\"");
    // A table read that `reads` does not declare.
    edit("openstack/quota-limits.yaml", "builtin:gt(used, limit)", "builtin:gt(used, limit), nova:servers(id=project)");
    // No Policy activates privileged-pods, and a test that fails.
    edit("tests/policies.yaml", "libraryRef: {name: privileged-pods}", "libraryRef: {name: bad-flavors}");
    edit("tests/library.test.yaml", "expect: [vm-2, vm-3]", "expect: [vm-2]");

    let problems = check_library(d.path());
    let has = |s: &str| problems.iter().any(|p| p.contains(s));
    assert!(has("bad-flavors") && has("no example"), "{problems:#?}");
    assert!(has("version `1.0` is not x.y.z"), "{problems:#?}");
    assert!(has("quota-limits: `reads` is not what the rules read: missing [\"nova:servers\"]"), "{problems:#?}");
    assert!(has("privileged-pods: no Policy in"), "{problems:#?}");
    assert!(has("congress test") && has("FAIL"), "{problems:#?}");
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

#[test]
fn semver_is_three_numbers() {
    for v in ["1.0.0", "0.10.3", "12.0.1"] {
        assert!(is_semver(v), "{v}");
    }
    for v in ["1.0", "1.0.0.0", "01.0.0", "1.0.x", "v1.0.0", "1.0.0-rc1", ""] {
        assert!(!is_semver(v), "{v}");
    }
}

/// (d) library/README.md lists the library as `congress library list -o markdown` prints
/// it; `UPDATE_README=1` rewrites the list.
#[test]
fn the_readme_lists_the_library() {
    let (code, list, err) = congress(&["library", "list", "--dir", "library", "-o", "markdown"]);
    assert_eq!(code, 0, "congress library list --dir library: {err}");
    assert!(list.starts_with("| Name | Category | Severity | Version | Description |\n"), "{list}");
    let path = root().join("library/README.md");
    let readme = std::fs::read_to_string(&path).expect("library/README.md");
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("library/README.md has no {START} ... {END} markers");
    };
    assert!(start < end, "library/README.md: {END} comes before {START}");
    let from = start + START.len();
    let current = &readme[from..end];
    let wanted = format!("\n{list}");
    if current == wanted {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some_and(|v| v == "1") {
        let updated = format!("{}{wanted}{}", &readme[..from], &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        eprintln!("library/README.md: the list was rewritten");
        return;
    }
    panic!(
        "library/README.md does not list the library as `congress library list --dir library -o markdown` does; \
         run `UPDATE_README=1 cargo nextest run --test library`.\nIt has:{current}\nIt should have:{wanted}"
    );
}
