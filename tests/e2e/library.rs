//! The policy library end to end, on a real kube-apiserver: the chart's library ConfigMap
//! installed as LibraryPolicies by the operator; a real `helm upgrade` with a newer library
//! that updates what nobody changed and leaves a customised LibraryPolicy alone (seed 003's
//! "no overwrite"); Policies that keep the version they activated until they ask for
//! another; re-initialising on purpose; and an activation with parameters that is loaded all
//! or nothing (a failing third rule: nothing changes, nothing fires), whose report results
//! carry the library's category and severity.

use crate::harness::{Cluster, Operator, eventually};
use congress_model::resources::library_policy::{ARCHIVE_OF_LABEL, REINITIALIZE_ANNOTATION};
use congress_model::resources::{ActionRequest, LibraryPolicy, Policy};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NS: &str = "congress-system";
const LIBRARY: &str = "--library=configmap:congress-system/congress-library";

/// A LibraryPolicy manifest whose one fact makes its version visible in a Policy's status.
fn library_file(name: &str, version: &str) -> String {
    format!(
        "apiVersion: congress.dev/v1alpha1\nkind: LibraryPolicy\nmetadata:\n  name: {name}\nspec:\n  version: {version}\n  \
         category: Demo\n  severity: low\n  description: The {name} demo policy.\n  text: |\n    error(\"{name} {version}\")\n"
    )
}

/// `kubectl patch KIND NAME --type=merge -p BODY`.
fn merge_patch(cluster: &Cluster, kind: &str, name: &str, body: &str) {
    cluster.kubectl(&["patch", kind, name, "--type=merge", "-p", body]);
}

/// `congress library ARGS` against the cluster: exit code and stdout (stderr appended).
fn cli(cluster: &Cluster, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_congress"))
        .arg("library")
        .args(args)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .output()
        .expect("run congress library");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A copy of the chart whose `library/` holds exactly `files`.
fn chart_with(dir: &Path, files: &[(&str, String)]) -> String {
    let chart = dir.join("chart");
    if !chart.exists() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/congress");
        let ok = Command::new("cp").arg("-r").arg(&src).arg(&chart).status().expect("cp").success();
        assert!(ok, "copy the chart");
    }
    let lib = chart.join("library");
    let _ = std::fs::remove_dir_all(&lib);
    std::fs::create_dir_all(&lib).expect("library dir");
    for (name, text) in files {
        std::fs::write(lib.join(format!("{name}.yaml")), text).expect("write a library file");
    }
    chart.display().to_string()
}

fn helm_args<'a>(verb: &'a str, chart: &'a str) -> Vec<&'a str> {
    vec![
        verb,
        "congress",
        chart,
        "--namespace",
        NS,
        "--create-namespace",
        "--skip-crds",
        "--set",
        "image.repository=example.invalid/congress",
    ]
}

async fn library(client: &Client, name: &str) -> Option<LibraryPolicy> {
    Api::<LibraryPolicy>::all(client.clone()).get_opt(name).await.ok().flatten()
}

fn condition(conditions: &[congress_model::resources::Condition], type_: &str) -> Option<String> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| c.status.clone())
}

async fn policy(client: &Client, name: &str) -> Option<Policy> {
    Api::<Policy>::all(client.clone()).get_opt(name).await.ok().flatten()
}

/// The rows of a Policy's violation sample.
fn sample(p: &Policy) -> Vec<String> {
    p.status.iter().flat_map(|s| s.violation_sample.iter()).map(|v| v.row.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_upgrade_updates_the_library_but_never_a_customised_policy() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let client = cluster.client().await;
    // lib-0bad passes the operator's checks but not the CRD's (maxAttempts >= 1): the API
    // server refuses it, and the others are installed all the same.
    let bad = library_file("lib-0bad", "1.0.0")
        .replace("  category: Demo\n", "  category: Demo\n  actions: {maxAttempts: 0}\n");
    let v1 = chart_with(
        cluster.dir(),
        &[("lib-0bad", bad), ("lib-a", library_file("lib-a", "1.0.0")), ("lib-b", library_file("lib-b", "1.0.0"))],
    );
    cluster.helm(&helm_args("install", &v1));
    let op = Operator::start_with(&cluster, "lib", false, &[LIBRARY]);

    // The chart's library is installed, marked as shipped.
    for name in ["lib-a", "lib-b"] {
        let lp = eventually(&format!("{name} installed"), &op, || library(&client, name)).await;
        assert_eq!(lp.spec.version.as_deref(), Some("1.0.0"));
        assert_eq!(lp.spec.category.as_deref(), Some("Demo"));
    }
    assert!(library(&client, "lib-0bad").await.is_none());
    eventually("the refused one counted", &op, || async {
        op.get("/metrics").await.lines().any(|l| {
            l.starts_with("congress_reconcile_errors_total")
                && l.contains(r#"kind="LibrarySync""#)
                && l.contains(r#"reason="Write""#)
        })
    })
    .await;
    eventually("lib-a says it is the shipped version", &op, || async {
        library(&client, "lib-a").await.and_then(|l| l.status).is_some_and(|s| {
            condition(&s.conditions, "Customized").as_deref() == Some("False")
                && s.shipped_version.as_deref() == Some("1.0.0")
        })
    })
    .await;

    // An administrator customises lib-b; a Policy activates lib-a (no version: it keeps the
    // one it first ran).
    merge_patch(&cluster, "librarypolicy", "lib-b", r#"{"spec":{"text":"error(\"lib-b customised\")\n"}}"#);
    cluster.apply("apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: uses-a}\nspec:\n  libraryRef: {name: lib-a}\n");
    eventually("uses-a runs lib-a 1.0.0", &op, || async {
        policy(&client, "uses-a").await.is_some_and(|p| {
            sample(&p) == [r#"error("lib-a 1.0.0")"#]
                && p.status.as_ref().and_then(|s| s.library.as_ref()).is_some_and(|l| l.version == "1.0.0")
        })
    })
    .await;
    eventually("lib-b is seen as customised", &op, || async {
        library(&client, "lib-b")
            .await
            .and_then(|l| l.status)
            .is_some_and(|s| condition(&s.conditions, "Customized").as_deref() == Some("True"))
    })
    .await;

    // The CLI reads the installed library: lib-b is customised.
    let (code, listing) = cli(&cluster, &["--cluster", "list"]);
    assert_eq!(code, 0, "{listing}");
    let row = |name: &str| listing.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or("").to_string();
    assert!(row("lib-a").contains("1.0.0") && row("lib-a").trim_end().ends_with("no"), "{listing}");
    assert!(row("lib-b").trim_end().ends_with("yes"), "{listing}");

    // A real `helm upgrade` with a newer library: lib-a and lib-b at 2.0.0, and a new lib-c.
    let v2 = chart_with(
        cluster.dir(),
        &[
            ("lib-a", library_file("lib-a", "2.0.0")),
            ("lib-b", library_file("lib-b", "2.0.0")),
            ("lib-c", library_file("lib-c", "1.0.0")),
        ],
    );
    // What the upgrade will change, as `congress library diff` sees it beforehand.
    let v2_library = format!("{v2}/library");
    let (code, diff) = cli(&cluster, &["--cluster", "diff", "--dir", &v2_library]);
    assert_eq!(code, 1, "{diff}");
    assert!(diff.contains("~ lib-a 1.0.0 -> 2.0.0"), "{diff}");
    assert!(diff.contains("+ lib-c 1.0.0 (new)"), "{diff}");
    assert!(diff.lines().any(|l| l.starts_with("! lib-b 1.0.0 (customized")), "{diff}");
    cluster.helm(&helm_args("upgrade", &v2));

    let a = eventually("lib-a upgraded", &op, || async {
        library(&client, "lib-a").await.filter(|l| l.spec.version.as_deref() == Some("2.0.0"))
    })
    .await;
    assert_eq!(a.spec.text.as_deref(), Some("error(\"lib-a 2.0.0\")\n"));
    eventually("lib-c installed", &op, || library(&client, "lib-c")).await;
    // The replaced version is kept for the Policies that run it.
    let archived = eventually("lib-a 1.0.0 kept", &op, || library(&client, "lib-a.v1.0.0")).await;
    assert_eq!(archived.spec.version.as_deref(), Some("1.0.0"));
    assert_eq!(archived.labels().get(ARCHIVE_OF_LABEL).map(String::as_str), Some("lib-a"));
    // The customised one is untouched, and says an update is available.
    let b = eventually("lib-b says an update is available", &op, || async {
        library(&client, "lib-b").await.filter(|l| {
            l.status.as_ref().is_some_and(|s| {
                condition(&s.conditions, "UpdateAvailable").as_deref() == Some("True")
                    && s.shipped_version.as_deref() == Some("2.0.0")
            })
        })
    })
    .await;
    assert_eq!(b.spec.text.as_deref(), Some("error(\"lib-b customised\")\n"), "helm upgrade overwrote a customisation");
    assert_eq!(b.spec.version.as_deref(), Some("1.0.0"));

    // The active Policy keeps 1.0.0 and says 2.0.0 is available.
    let p = eventually("uses-a says an update is available", &op, || async {
        policy(&client, "uses-a").await.filter(|p| {
            p.status.as_ref().is_some_and(|s| {
                condition(&s.conditions, "UpdateAvailable").as_deref() == Some("True")
                    && s.library.as_ref().and_then(|l| l.latest_version.as_deref()) == Some("2.0.0")
            })
        })
    })
    .await;
    assert_eq!(sample(&p), [r#"error("lib-a 1.0.0")"#], "the active policy changed version on its own");
    // A restarted operator (nothing in memory) still runs the version the status names.
    drop(op);
    let op = Operator::start_with(&cluster, "lib-2", false, &[LIBRARY]);
    // A new generation, so the status below is the new operator's.
    merge_patch(&cluster, "policy", "uses-a", r#"{"spec":{"description":"after the restart"}}"#);
    let generation = policy(&client, "uses-a").await.and_then(|p| p.metadata.generation);
    let p = eventually("uses-a reloaded after the restart", &op, || async {
        policy(&client, "uses-a").await.filter(|p| {
            p.status.as_ref().and_then(|s| s.observed_generation) == generation
                && p.status.as_ref().is_some_and(|s| s.conditions.iter().all(|c| c.observed_generation == generation))
        })
    })
    .await;
    assert_eq!(sample(&p), [r#"error("lib-a 1.0.0")"#], "a restart moved the policy to another version");
    assert_eq!(p.status.and_then(|s| s.library).map(|l| l.version).as_deref(), Some("1.0.0"));
    // Asked for the new version, it takes it.
    merge_patch(&cluster, "policy", "uses-a", r#"{"spec":{"libraryRef":{"version":"2.0.0"}}}"#);
    eventually("uses-a runs lib-a 2.0.0", &op, || async {
        policy(&client, "uses-a").await.is_some_and(|p| {
            sample(&p) == [r#"error("lib-a 2.0.0")"#]
                && p.status
                    .as_ref()
                    .is_some_and(|s| condition(&s.conditions, "UpdateAvailable").as_deref() == Some("False"))
        })
    })
    .await;
    // A version the library does not keep is refused with the reason.
    merge_patch(&cluster, "policy", "uses-a", r#"{"spec":{"libraryRef":{"version":"9.9.9"}}}"#);
    eventually("an unknown version is refused", &op, || async {
        policy(&client, "uses-a").await.and_then(|p| p.status).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Accepted" && c.status == "False" && c.reason == "LibraryVersionNotFound")
        })
    })
    .await;

    // Re-initialised on purpose: lib-b takes the shipped 2.0.0, its customisation kept as
    // an archived version.
    let (code, out) = cli(&cluster, &["reset", "lib-b"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&cluster, &["reset", "no-such-policy"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no-such-policy"), "{out}");
    let b = eventually("lib-b re-initialised", &op, || async {
        library(&client, "lib-b").await.filter(|l| l.spec.version.as_deref() == Some("2.0.0"))
    })
    .await;
    assert!(!b.annotations().contains_key(REINITIALIZE_ANNOTATION));
    eventually("lib-b is no longer customised", &op, || async {
        library(&client, "lib-b")
            .await
            .and_then(|l| l.status)
            .is_some_and(|s| condition(&s.conditions, "Customized").as_deref() == Some("False"))
    })
    .await;
    let kept = library(&client, "lib-b.v1.0.0").await.expect("the customised version was kept");
    assert_eq!(kept.spec.text.as_deref(), Some("error(\"lib-b customised\")\n"));

    // `congress library activate --apply` activates one from the cluster's library.
    let (code, out) = cli(&cluster, &["--cluster", "activate", "lib-c", "--apply"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("policy/lib-c applied"), "{out}");
    eventually("lib-c activated", &op, || async {
        policy(&client, "lib-c").await.is_some_and(|p| {
            sample(&p) == [r#"error("lib-c 1.0.0")"#]
                && p.spec.library_ref.as_ref().and_then(|l| l.version.as_deref()) == Some("1.0.0")
        })
    })
    .await;
}

const FLAGS_V1: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: LibraryPolicy
metadata: {name: flags}
spec:
  version: 1.0.0
  category: Demo Category
  severity: critical
  parameters:
  - table: flag
    columns: [{name: name}]
    default: [[a]]
  rules:
  - rule: error(x) :- flag(x)
  - rule: execute[demo:act(x)] :- flag(x)
  - rule: worse(x) :- not error(x)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_with_parameters_is_all_or_nothing_and_reports_carry_category_and_severity() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let client = cluster.client().await;
    let op = Operator::start(&cluster, "lib", false);
    cluster.apply(FLAGS_V1);
    cluster.apply(
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: flagged}\nspec:\n  enforcement: reactive\n  \
         libraryRef:\n    name: flags\n    parameters: {flag: [b]}\n",
    );
    // The third rule does not analyse: the whole activation is refused, with where and why.
    let status = eventually("flagged refused", &op, || async {
        policy(&client, "flagged").await.and_then(|p| p.status).filter(|s| {
            s.conditions.iter().any(|c| c.type_ == "Accepted" && c.status == "False" && c.reason == "AnalysisError")
        })
    })
    .await;
    assert!(status.diagnostics.iter().all(|d| d.rule == "flags/rules[2]"), "{:?}", status.diagnostics);
    assert!(!status.diagnostics.is_empty());
    assert_eq!(status.violations, 0, "rules before the failing one left a trace");
    // Nothing fired: no ActionRequest, even after a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let requests = Api::<ActionRequest>::all(client.clone()).list(&ListParams::default()).await.expect("list");
    assert!(requests.items.is_empty(), "an action fired from a refused activation: {:?}", requests.items);

    // The library is fixed: the activation loads, with the parameter given (b, not the default a).
    Api::<LibraryPolicy>::all(client.clone())
        .patch(
            "flags",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rules": [
                {"rule": "error(x) :- flag(x)"},
                {"rule": "execute[demo:act(x)] :- flag(x)"},
                {"rule": "worse(x) :- flag(x), not error(x)"}
            ]}})),
        )
        .await
        .expect("patch the library");
    let p = eventually("flagged loaded", &op, || async {
        policy(&client, "flagged").await.filter(|p| sample(p) == [r#"error("b")"#])
    })
    .await;
    let s = p.status.expect("status");
    assert_eq!(condition(&s.conditions, "Accepted").as_deref(), Some("True"));
    assert_eq!(s.library.as_ref().map(|l| l.version.as_str()), Some("1.0.0"));
    let fired = eventually("the action fires once loaded", &op, || async {
        let all = Api::<ActionRequest>::all(client.clone()).list(&ListParams::default()).await.ok()?;
        all.items.into_iter().find(|r| r.spec.policy.as_deref() == Some("flagged"))
    })
    .await;
    assert_eq!(fired.spec.name, "demo:act");
    assert_eq!(fired.spec.args.positional, [json!("b")]);

    // The report result carries the library's category and severity.
    let cluster_reports =
        ApiResource::from_gvk(&GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "ClusterPolicyReport"));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &cluster_reports);
    let result = eventually("the report of flagged", &op, || async {
        let r = api.get_opt("congress-flagged").await.ok().flatten()?;
        r.data.get("results")?.get(0).cloned()
    })
    .await;
    assert_eq!(result["category"], "Demo Category");
    assert_eq!(result["severity"], "critical");
    assert_eq!(result["message"], r#"error("b")"#);

    // A parameter row that does not fit its table is refused with where and why; the version
    // that runs keeps running.
    merge_patch(&cluster, "policy", "flagged", r#"{"spec":{"libraryRef":{"parameters":{"flag":[["b", "extra"]]}}}}"#);
    let s = eventually("a bad parameter row refused", &op, || async {
        policy(&client, "flagged").await.and_then(|p| p.status).filter(|s| {
            s.conditions.iter().any(|c| c.type_ == "Accepted" && c.status == "False" && c.reason == "InvalidParameters")
        })
    })
    .await;
    let accepted = s.conditions.iter().find(|c| c.type_ == "Accepted").expect("Accepted");
    assert!(accepted.message.contains("libraryRef.parameters.flag[0]: 2 values for 1 columns"), "{}", accepted.message);
    assert_eq!(s.violations, 1, "the running version stopped");
}
