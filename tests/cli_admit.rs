//! End-to-end tests of `congress simulate --manifest` (admission offline): the library's
//! Kubernetes policies activated as `proactive` (`tests/fixtures/admission/policies.yaml`:
//! allowed registries in `deny`, unique Ingress hosts in `deny`, no `latest` tag in `warn`)
//! and a manifest of pods and Ingresses admitted in order; snapshots of the text and JSON.

const DIR: &str = "tests/fixtures/admission";

#[path = "support/cli.rs"]
mod cli;
use cli::run;

fn admit(extra: &[&str]) -> (i32, String, String) {
    let policies = format!("{DIR}/policies.yaml");
    let mut args =
        vec!["simulate", "-f", &policies, "-f", "library/kubernetes", "--data", "library/datasources/kubernetes.yaml"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn objects_are_admitted_in_order_and_denied_with_the_rows_they_would_add() {
    let manifest = format!("{DIR}/objects.yaml");
    let (code, out, err) = admit(&["--manifest", &manifest]);
    assert_eq!(code, 1, "a denied object exits 1\n{err}");
    let verdicts: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(
        verdicts,
        [
            "Pod shop/good: admitted",
            "Pod shop/bad: denied",
            "Pod shop/latest: admitted with warnings",
            "Ingress shop/one: admitted",
            // The first Ingress was admitted, so the second with its host is a new violation
            // (both rows of the clash are new); a third with another host is not.
            "Ingress blog/two: denied",
            "Ingress blog/three: admitted",
        ]
    );
    insta::assert_snapshot!("admit_text", out);
}

#[test]
fn the_json_answer_has_each_row_with_its_reason_and_proof() {
    let manifest = format!("{DIR}/objects.yaml");
    let (code, out, _) = admit(&["--manifest", &manifest, "-o", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 6);
    let bad = &results[1];
    assert_eq!(bad["allowed"], false);
    assert_eq!(bad["violations"][0]["policy"], "allowed_image_registries");
    assert_eq!(bad["violations"][0]["action"], "deny");
    assert_eq!(bad["violations"][0]["row"][3], "evil.io/miner:1.0");
    assert!(bad["violations"][0]["proof"].as_str().unwrap().contains("[fact of kube]"));
    let warned = &results[2];
    assert_eq!((warned["allowed"].as_bool(), warned["violations"][0]["action"].as_str()), (Some(true), Some("warn")));
    assert_eq!(results[0]["violations"], serde_json::json!([]));
}

#[test]
fn an_admitted_manifest_exits_0() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("ok.yaml");
    std::fs::write(
        &m,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ok, namespace: shop, uid: u}\nspec:\n  containers: [{name: a, image: registry.example.com/a:1}]\n",
    )
    .unwrap();
    let (code, out, _) = admit(&["--manifest", m.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (0, "Pod shop/ok: admitted\n"));
}

#[test]
fn bad_input_is_exit_2_with_where_and_why() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("bad.yaml");
    std::fs::write(&m, "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\n---\nkind: Pod\n").unwrap();
    let (code, _, err) = admit(&["--manifest", m.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.yaml (document 2): not a Kubernetes object"), "{err}");
    // No kubernetes Datasource: objects cannot become rows.
    let policies = format!("{DIR}/policies.yaml");
    let (code, _, err) =
        run(&["simulate", "-f", &policies, "-f", "library/kubernetes", "--manifest", m.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    // --manifest and --query do not mix.
    let (code, _, err) = admit(&["--manifest", m.to_str().unwrap(), "-q", "error(x)"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, _, err) = admit(&["--manifest", "no/such/file.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/file.yaml: no such file or directory"), "{err}");
}
