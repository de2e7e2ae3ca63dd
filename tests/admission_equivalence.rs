//! The admission answer equals the audit's: for every Kubernetes library policy activated
//! as `proactive`, the rows admission says an object would add to `error` (computed
//! hypothetically, before the object exists) are exactly the rows that appear in `error`
//! once the object's rows are really in the engine (what `congress eval` and the operator's
//! audit then report) — for a sequence of objects of every kind the library reads, violating
//! and compliant, created, updated and deleted.

use congress_drivers::admission;
use congress_engine::{Engine, Value};
use congress_model::load::{self, Loaded};
use congress_model::resources::DatasourceSpec;
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every Kubernetes library policy, activated under its own name as `proactive`.
fn engine() -> (Loaded, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    let mut activations = String::new();
    for entry in std::fs::read_dir(root().join("library/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        activations.push_str(&format!(
            "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}}}\nspec:\n  enforcement: proactive\n  libraryRef: {{name: {name}}}\n---\n"
        ));
        names.push(congress_model::engine_name(&name));
    }
    std::fs::write(dir.path().join("activations.yaml"), activations).unwrap();
    let sources = load::load_policies(&[root().join("library/kubernetes"), dir.path().join("activations.yaml")])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let fixtures = load::load_fixtures(&[root().join("library/datasources/kubernetes.yaml")]).unwrap();
    let loaded = load::build(&sources, &fixtures, false).unwrap_or_else(|e| panic!("{e:?}"));
    names.sort();
    (loaded, names)
}

fn mappings() -> Vec<admission::KindMapping> {
    let text = std::fs::read_to_string(root().join("library/datasources/kubernetes.yaml")).unwrap();
    let doc: Json = serde_norway::from_str(&text).unwrap();
    let spec: DatasourceSpec = serde_json::from_value(doc["spec"].clone()).unwrap();
    admission::mappings(&[("kube".into(), spec.kubernetes.unwrap())]).unwrap()
}

fn errors(e: &Engine, policies: &[String]) -> BTreeSet<(String, Vec<Value>)> {
    policies
        .iter()
        .flat_map(|p| e.rows(p, "error").unwrap_or_default().into_iter().map(move |r| (p.clone(), r)))
        .collect()
}

fn objects() -> Vec<(Option<Json>, Option<Json>)> {
    let pod = |name: &str, image: &str, privileged: bool, extra: Json| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image,
                "securityContext": {"privileged": privileged, "runAsNonRoot": true},
                "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}]}});
        if let (Some(spec), Some(extra)) = (p["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        p
    };
    let ingress = |name: &str, ns: &str, host: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
            "spec": {"rules": [{"host": host}]}})
    };
    let good = pod("good", "registry.k8s.io/app:1.0", false, json!({}));
    let bad = pod("bad", "evil.io/miner:latest", true, json!({"hostNetwork": true}));
    let bad_fixed = pod("bad", "registry.k8s.io/app:1.0", false, json!({}));
    vec![
        (
            None,
            Some(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "uid": "uid-shop", "labels": {"environment": "production"}}})),
        ),
        (None, Some(good.clone())),
        (None, Some(bad.clone())),
        (Some(bad), Some(bad_fixed.clone())),
        (
            None,
            Some(pod(
                "root",
                "registry.k8s.io/app:1.0",
                false,
                json!({"securityContext": {"runAsUser": 0}, "volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]}),
            )),
        ),
        (None, Some(ingress("one", "shop", "shop.example.com"))),
        (None, Some(ingress("two", "blog", "shop.example.com"))),
        (None, Some(ingress("three", "blog", "blog.example.com"))),
        (Some(ingress("two", "blog", "shop.example.com")), None),
        (
            None,
            Some(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "edge", "namespace": "shop", "uid": "uid-edge"},
            "spec": {"type": "NodePort", "selector": {"app": "nothing"}}})),
        ),
        (
            None,
            Some(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/web:1"}]}}}})),
        ),
        (
            None,
            Some(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "shop", "uid": "uid-np"}, "spec": {"podSelector": {}}})),
        ),
        (
            None,
            Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "everything", "uid": "uid-cr"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})),
        ),
        (
            None,
            Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "oops", "uid": "uid-crb"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "everything"},
            "subjects": [{"kind": "User", "name": "mallory"}]})),
        ),
        (Some(good), None),
        (Some(bad_fixed), None),
    ]
}

#[test]
fn admission_says_exactly_what_the_audit_reports_once_the_object_exists() {
    let (mut loaded, policies) = engine();
    assert!(policies.len() >= 10, "{policies:?}");
    let mappings = mappings();
    let engine = &mut loaded.engine;
    let mut denied_somewhere = 0;
    for (i, (old, new)) in objects().into_iter().enumerate() {
        let changes = admission::row_changes(&mappings, old.as_ref(), new.as_ref());
        assert!(!changes.is_empty(), "object {i} became no rows");
        let predicted: BTreeSet<(String, Vec<Value>)> = admission::new_violations(engine, &changes, &policies)
            .unwrap()
            .into_iter()
            .map(|v| (v.policy, v.row))
            .collect();
        let before = errors(engine, &policies);
        let mut txn = engine.transaction();
        for c in &changes {
            txn.delete_rows(&c.policy, &c.table, c.removed.clone());
            txn.insert_rows(&c.policy, &c.table, c.added.clone());
        }
        txn.commit().unwrap();
        let after = errors(engine, &policies);
        let appeared: BTreeSet<(String, Vec<Value>)> = after.difference(&before).cloned().collect();
        assert_eq!(predicted, appeared, "object {i}: admission and audit disagree");
        denied_somewhere += usize::from(!predicted.is_empty());
    }
    assert!(denied_somewhere >= 5, "the objects exercise too few policies ({denied_somewhere})");
}
