//! End-to-end tests of `congress operator` against a real kube-apiserver v1.20.2 and etcd on
//! loopback, one throwaway control plane per test (`e2e/cluster.sh`; install it once with
//! `e2e/install.sh`). The operator runs as a real process of the built binary, so tests can
//! kill it, restart it, and run two replicas.
//!
//! Every test starts with `let Some(cluster) = Cluster::up_or_skip().await else { return };`:
//! without the control plane installed the test is skipped (a message on stderr), unless
//! `CONGRESS_E2E=require` (set by `scripts/test.sh`), which makes it fail. See harness.rs.

mod actions;
mod admission;
mod api;
mod api_auth;
mod executors;
mod harness;
#[path = "../support/keystone.rs"]
mod keystone;
mod library;
mod openstack;
#[path = "../support/openstack.rs"]
mod openstack_fake;
mod push;
#[path = "../support/serve.rs"]
mod serve;

use harness::{Cluster, DATASOURCE, Operator, POLICY, eventually, pod};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;

const BROKEN_POLICY: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: approved-images}
spec:
  rules:
  - name: approved
    rule: approved("registry.example.com/app:1")
  - name: unapproved-image
    rule: |
      error(uid, ns, name, image) :-
          kube:pods(uid, ns, name), kube:containers(uid, c, image
"#;

async fn policy_status(cluster: &Cluster, name: &str) -> serde_json::Value {
    let api: Api<congress_model::resources::Policy> = Api::all(cluster.client().await);
    match api.get_opt(name).await {
        Ok(Some(p)) => serde_json::to_value(p.status).unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}

async fn violations(cluster: &Cluster, name: &str) -> Option<u64> {
    let s = policy_status(cluster, name).await;
    // Only once the status is written by the operator.
    s.get("observedGeneration")?;
    s.get("violations").and_then(serde_json::Value::as_u64)
}

async fn reports(cluster: &Cluster, namespace: &str) -> Vec<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client().await, namespace, &harness::policy_report());
    api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default()
}

async fn events(cluster: &Cluster, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(cluster.client().await, "default");
    let all = api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    all.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_violation_shows_in_status_report_metrics_and_events_then_clears() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.apply(DATASOURCE);
    cluster.apply(POLICY);
    let op = Operator::start(&cluster, "only", false);
    cluster.create_pod(pod("default", "web", "evil.io/app:1")).await;
    cluster.create_pod(pod("default", "good", "registry.example.com/app:1")).await;

    eventually("the violation in the Policy status", &op, || async {
        violations(&cluster, "approved-images").await == Some(1)
    })
    .await;
    let status = policy_status(&cluster, "approved-images").await;
    let sample = &status["violationSample"][0];
    assert!(sample["row"].as_str().unwrap().contains("\"web\", \"evil.io/app:1\""), "{status}");
    assert!(sample["firstSeen"].as_str().unwrap().ends_with('Z'), "{status}");
    let conditions = status["conditions"].to_string();
    assert!(conditions.contains("\"Accepted\"") && conditions.contains("\"Ready\""), "{status}");

    // The report points at the pod.
    let report = eventually("a PolicyReport in `default`", &op, || async {
        reports(&cluster, "default")
            .await
            .into_iter()
            .find(|r| r.metadata.name.as_deref() == Some("congress-approved-images"))
    })
    .await;
    let results = report.data["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["result"], "fail");
    assert_eq!(results[0]["resources"][0]["kind"], "Pod");
    assert_eq!(results[0]["resources"][0]["name"], "web");
    assert_eq!(results[0]["resources"][0]["namespace"], "default");
    assert_eq!(report.data["summary"]["fail"], 1);

    // Metrics.
    let metrics = op.get("/metrics").await;
    assert!(metrics.contains("congress_policy_violations{policy=\"approved-images\"} 1"), "{metrics}");
    assert!(metrics.contains("congress_reconcile_duration_seconds_count{kind=\"Policy\"}"), "{metrics}");
    assert_eq!(op.get("/healthz").await, "ok");
    eventually("/readyz", &op, || async { op.get("/readyz").await == "ok" }).await;
    eventually("a ViolationFound event", &op, || async { !events(&cluster, "ViolationFound").await.is_empty() }).await;

    // The datasource's status lists its tables and rows.
    let ds: Api<congress_model::resources::Datasource> = Api::all(cluster.client().await);
    let ds_status = eventually("the Datasource status", &op, || async {
        let s = ds.get("kube").await.ok()?.status?;
        s.tables.iter().any(|t| t.name == "pods" && t.rows == 2).then_some(s)
    })
    .await;
    assert!(ds_status.tables.iter().any(|t| t.name == "containers" && t.columns == ["pod", "name", "image"]));
    assert!(ds_status.last_sync_time.is_some());

    // Fix the pod: the violation clears, the report goes, an event says so.
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let fix = json!({"spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}});
    pods.patch("web", &PatchParams::default(), &Patch::Strategic(&fix)).await.expect("patch the pod image");
    eventually("the violation to clear", &op, || async { violations(&cluster, "approved-images").await == Some(0) })
        .await;
    eventually("the report to go", &op, || async { reports(&cluster, "default").await.is_empty() }).await;
    eventually("a ViolationCleared event", &op, || async { !events(&cluster, "ViolationCleared").await.is_empty() })
        .await;
    let metrics = op.get("/metrics").await;
    assert!(metrics.contains("congress_policy_violations{policy=\"approved-images\"} 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_version_is_refused_with_line_col_and_the_previous_one_keeps_working() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.apply(DATASOURCE);
    cluster.apply(POLICY);
    let op = Operator::start(&cluster, "only", false);
    cluster.create_pod(pod("default", "one", "evil.io/a:1")).await;
    eventually("one violation", &op, || async { violations(&cluster, "approved-images").await == Some(1) }).await;

    cluster.apply(BROKEN_POLICY);
    let status = eventually("Accepted=False", &op, || async {
        let s = policy_status(&cluster, "approved-images").await;
        let refused = s["conditions"].as_array()?.iter().any(|c| c["type"] == "Accepted" && c["status"] == "False");
        (refused && s["observedGeneration"] == 2).then_some(s)
    })
    .await;
    let accepted = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Accepted").unwrap();
    assert_eq!(accepted["reason"], "SyntaxError", "{status}");
    let d = &status["diagnostics"][0];
    assert_eq!(d["rule"], "unapproved-image", "{status}");
    assert_eq!(d["line"], 2, "{status}");
    assert!(d["column"].as_u64().unwrap() > 1, "{status}");
    let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["reason"], "PreviousVersionActive", "{status}");

    // The previous version still evaluates new data.
    cluster.create_pod(pod("default", "two", "evil.io/b:1")).await;
    eventually("two violations under the previous version", &op, || async {
        violations(&cluster, "approved-images").await == Some(2)
    })
    .await;

    // Deleting the policy removes its report (and the finalizer lets it go).
    eventually("the report", &op, || async { (reports(&cluster, "default").await.len() == 1).then_some(()) }).await;
    let api: Api<congress_model::resources::Policy> = Api::all(cluster.client().await);
    api.delete("approved-images", &DeleteParams::default()).await.expect("delete the policy");
    eventually("the policy to be gone", &op, || async {
        api.get_opt("approved-images").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually("the report to be gone", &op, || async { reports(&cluster, "default").await.is_empty() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_violations_in_one_namespace_split_into_parts() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.apply(DATASOURCE);
    cluster.apply(POLICY);
    let op = Operator::start(&cluster, "only", false);
    cluster.create_namespace("crowd").await;
    let pods: Vec<Pod> = (0..5000).map(|i| pod("crowd", &format!("p-{i:05}"), "evil.io/app:1")).collect();
    cluster.create_pods(pods, 16).await;
    eventually("5000 violations", &op, || async { violations(&cluster, "approved-images").await == Some(5000) }).await;
    let parts = eventually("5000 results in reports", &op, || async {
        let parts = reports(&cluster, "crowd").await;
        let n: usize = parts.iter().map(|r| r.data["results"].as_array().map_or(0, Vec::len)).sum();
        (n == 5000).then_some(parts)
    })
    .await;
    assert!(parts.len() >= 5, "{} parts", parts.len());
    for p in &parts {
        let bytes = serde_json::to_vec(p).unwrap().len();
        assert!(bytes < 1_000_000, "{:?} is {bytes} bytes", p.metadata.name);
        assert!(p.data["results"].as_array().unwrap().len() <= 1000);
    }
    let status = policy_status(&cluster, "approved-images").await;
    assert_eq!(status["violationSample"].as_array().unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_and_a_restart_reports_nothing_twice() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.apply(DATASOURCE);
    cluster.apply(POLICY);
    cluster.create_namespace("congress-system").await;
    let mut a = Operator::start(&cluster, "a", true);
    eventually("a to lead", &a, || async { cluster.lease_holder().await.filter(|h| h == "a") }).await;
    let b = Operator::start(&cluster, "b", true);
    for i in 0..3 {
        cluster.create_pod(pod("default", &format!("bad-{i}"), "evil.io/x:1")).await;
    }
    eventually("3 violations", &a, || async { violations(&cluster, "approved-images").await == Some(3) }).await;
    eventually("b ready (warm engine)", &b, || async { (b.get("/readyz").await == "ok").then_some(()) }).await;
    let found_before = events(&cluster, "ViolationFound").await.len();
    assert_eq!(found_before, 3);

    // Kill the leader outright: b takes over within 15 s and misses nothing.
    a.kill();
    let killed = std::time::Instant::now();
    cluster.create_pod(pod("default", "bad-after", "evil.io/x:1")).await;
    eventually("b to report the violation made after the kill", &b, || async {
        violations(&cluster, "approved-images").await == Some(4)
    })
    .await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(15), "failover took {took:?}");
    assert_eq!(cluster.lease_holder().await.as_deref(), Some("b"));
    let metrics = b.get("/metrics").await;
    assert!(metrics.contains("congress_leader 1"), "{metrics}");

    // A graceful stop and a fresh start (state rebuilt from the API): same violations,
    // same first-seen times, no new events.
    let before = policy_status(&cluster, "approved-images").await;
    let found = events(&cluster, "ViolationFound").await.len();
    drop(b);
    let c = Operator::start(&cluster, "c", true);
    eventually("c to lead", &c, || async { cluster.lease_holder().await.filter(|h| h == "c") }).await;
    eventually("c ready", &c, || async { (c.get("/readyz").await == "ok").then_some(()) }).await;
    // Give c time to publish (it would rewrite status or add events if it were going to).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = policy_status(&cluster, "approved-images").await;
    assert_eq!(after["violations"], 4);
    assert_eq!(after["violationSample"], before["violationSample"], "first-seen times survive a restart");
    assert_eq!(events(&cluster, "ViolationFound").await.len(), found, "no duplicate events");
    assert_eq!(events(&cluster, "ViolationCleared").await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifests_are_refused_or_reported_and_the_rest_keeps_working() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    // Refused by the schema, before the operator sees them.
    let e = cluster.apply_refused(&POLICY.replace("  rules:", "  enforcement: sometimes\n  rules:"));
    assert!(e.contains("enforcement") && e.contains("Unsupported value"), "{e}");
    let e = cluster
        .apply_refused(&DATASOURCE.replace("apiVersion: v1\n      kind: Pod", "apiVersion: v1\n      kind: pod"));
    assert!(e.contains("kind"), "{e}");

    // Accepted by the schema, reported by the operator: a mapping that cannot work, and a
    // kind the server does not serve. The good datasource and policy keep working.
    cluster.apply(DATASOURCE);
    cluster.apply(POLICY);
    cluster.apply(
        r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {name: bad-mapping}
spec:
  driver: kubernetes
  kubernetes:
    resources:
    - {apiVersion: v1, kind: Pod, table: p, columns: [{name: x, path: $parent.uid}]}
---
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {name: no-such-kind}
spec:
  driver: kubernetes
  kubernetes:
    resources:
    - {apiVersion: example.com/v1, kind: Gadget, table: gadgets, columns: [{name: x, path: metadata.name}]}
---
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {name: vcenter}
spec:
  driver: vcenter
  tables: [{name: vms, columns: [id, status]}]
"#,
    );
    let op = Operator::start(&cluster, "only", false);
    let ds: Api<congress_model::resources::Datasource> = Api::all(cluster.client().await);
    let ready = |name: &'static str| {
        let ds = ds.clone();
        async move {
            let s = ds.get(name).await.ok()?.status?;
            let c = s.conditions.iter().find(|c| c.type_ == "Ready")?.clone();
            Some((c, s.last_error))
        }
    };
    let (c, _) = eventually("bad-mapping reported", &op, || async {
        ready("bad-mapping").await.filter(|(c, _)| c.status == "False")
    })
    .await;
    assert_eq!(c.reason, "InvalidMapping");
    assert!(c.message.contains("`$parent` is only meaningful in a child table"), "{}", c.message);
    let (_, last_error) =
        eventually("no-such-kind reported", &op, || async { ready("no-such-kind").await.filter(|(_, e)| e.is_some()) })
            .await;
    assert!(last_error.unwrap().contains("Gadget"));
    let (c, _) = eventually("vcenter reported", &op, || async { ready("vcenter").await }).await;
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "UnsupportedDriver"));

    cluster.create_pod(pod("default", "bad", "evil.io/app:1")).await;
    eventually("the good policy still works", &op, || async {
        violations(&cluster, "approved-images").await == Some(1)
    })
    .await;
    let metrics = op.get("/metrics").await;
    assert!(metrics.contains("congress_datasource_sync_errors_total{datasource=\"no-such-kind\"}"), "{metrics}");
}

/// The condition `type_` of a Policy's status: (status, reason).
async fn condition(cluster: &Cluster, policy: &str, type_: &str) -> Option<(String, String)> {
    let status = policy_status(cluster, policy).await;
    let c = status["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?.clone();
    Some((c["status"].as_str()?.to_string(), c["reason"].as_str()?.to_string()))
}

fn is(c: Option<(String, String)>, status: &str, reason: &str) -> bool {
    c.is_some_and(|(s, r)| s == status && r == reason)
}

async fn cluster_report(cluster: &Cluster, namespace: &str, name: &str) -> Option<DynamicObject> {
    reports(cluster, namespace).await.into_iter().find(|r| r.metadata.name.as_deref() == Some(name))
}

/// Without the PolicyReport CRDs (only `kubectl apply -f crds/`), status and events are
/// written and a condition says why there are no reports; once the CRDs are installed,
/// reports are written without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_report_crds_status_and_events_go_on_and_reports_start_when_the_crds_appear() {
    let Some(cluster) = Cluster::up_or_skip_with(false).await else { return };
    cluster.apply(DATASOURCE);
    cluster.apply(POLICY);
    let op = Operator::start(&cluster, "only", false);
    cluster.create_pod(pod("default", "web", "evil.io/app:1")).await;

    eventually("the violation in the status", &op, || async {
        violations(&cluster, "approved-images").await == Some(1)
    })
    .await;
    eventually("Reports=False CRDNotInstalled", &op, || async {
        is(condition(&cluster, "approved-images", "Reports").await, "False", "CRDNotInstalled")
    })
    .await;
    assert!(is(condition(&cluster, "approved-images", "Ready").await, "True", "Evaluated"));
    eventually("a ViolationFound event", &op, || async { !events(&cluster, "ViolationFound").await.is_empty() }).await;
    assert!(is(condition(&cluster, "approved-images", "Events").await, "True", "Written"));
    let log = op.log_tail();
    assert!(log.contains("CRDNotInstalled") && log.contains("output off"), "the log says why reports are off:\n{log}");

    cluster.install_policy_report_crds();
    let report = eventually("the report once the CRDs exist", &op, || async {
        cluster_report(&cluster, "default", "congress-approved-images").await
    })
    .await;
    assert_eq!(report.data["results"].as_array().map(Vec::len), Some(1), "{:?}", report.data);
    eventually("Reports=True", &op, || async {
        is(condition(&cluster, "approved-images", "Reports").await, "True", "Written")
    })
    .await;
}

/// Least privilege gone wrong: the operator may not write reports or events (403). Status is
/// still written, the conditions say Forbidden, and granting the permission brings reports
/// and events back without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_reports_and_events_leave_status_working_and_resume_when_granted() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.apply(DATASOURCE);
    cluster.apply(POLICY);
    cluster.apply(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: congress-core}
rules:
- apiGroups: ["congress.dev"]
  resources: ["policies", "librarypolicies", "datasources", "actionrequests"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["congress.dev"]
  resources: ["policies/status", "datasources/status", "policies/finalizers", "datasources/finalizers"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: congress-core}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: congress-core}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: congress-operator}
"#,
    );
    let op = Operator::start_as(&cluster, "least", false, &cluster.operator_kubeconfig());
    cluster.create_pod(pod("default", "web", "evil.io/app:1")).await;

    eventually("the violation in the status", &op, || async {
        violations(&cluster, "approved-images").await == Some(1)
    })
    .await;
    eventually("Reports=False and Events=False, Forbidden", &op, || async {
        is(condition(&cluster, "approved-images", "Reports").await, "False", "Forbidden")
            && is(condition(&cluster, "approved-images", "Events").await, "False", "Forbidden")
    })
    .await;
    assert!(cluster_report(&cluster, "default", "congress-approved-images").await.is_none());
    assert!(events(&cluster, "ViolationFound").await.is_empty());

    cluster.apply(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: congress-outputs}
rules:
- apiGroups: ["wgpolicyk8s.io"]
  resources: ["policyreports", "clusterpolicyreports"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: congress-outputs}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: congress-outputs}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: congress-operator}
"#,
    );
    let report = eventually("the report once permitted", &op, || async {
        cluster_report(&cluster, "default", "congress-approved-images").await
    })
    .await;
    assert_eq!(report.data["results"].as_array().map(Vec::len), Some(1), "{:?}", report.data);
    eventually("Reports=True", &op, || async {
        is(condition(&cluster, "approved-images", "Reports").await, "True", "Written")
    })
    .await;
    // Events are tried again with the next change.
    cluster.create_pod(pod("default", "web2", "evil.io/app:2")).await;
    eventually("a ViolationFound event and Events=True", &op, || async {
        !events(&cluster, "ViolationFound").await.is_empty()
            && is(condition(&cluster, "approved-images", "Events").await, "True", "Written")
    })
    .await;
}
