//! Proactive enforcement end to end: the operator's admission webhook, called by a real
//! kube-apiserver over TLS (a CA and serving certificate the operator generates, for
//! `IP:127.0.0.1`), denies what would add a violation to a `proactive` policy, across
//! resources, with the rule in the message; `warn` mode admits with a warning; a server dry
//! run goes through it; `failurePolicy` decides when the webhook is down; the serving
//! certificate is re-issued without a failed request.

use crate::harness::{Cluster, Operator, eventually, free_port};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::Api;
use std::process::Command;
use std::time::{Duration, Instant};

/// A `kubernetes` Datasource over pods (and their containers) and Ingresses (and their
/// hosts), and policies over them: images from one registry (deny), one Ingress per host
/// across the cluster (deny), no `latest` tag (warn).
const POLICIES: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {name: kube}
spec:
  driver: kubernetes
  kubernetes:
    resources:
    - apiVersion: v1
      kind: Pod
      table: pods
      columns:
      - {name: uid, path: metadata.uid}
      - {name: namespace, path: metadata.namespace}
      - {name: name, path: metadata.name}
      children:
      - path: spec.containers
        table: containers
        columns:
        - {name: pod, path: $parent.uid}
        - {name: image, path: image}
    - apiVersion: networking.k8s.io/v1
      kind: Ingress
      table: ingresses
      columns:
      - {name: uid, path: metadata.uid}
      - {name: namespace, path: metadata.namespace}
      - {name: name, path: metadata.name}
      children:
      - path: spec.rules
        table: ingress_hosts
        columns:
        - {name: ingress, path: $parent.uid}
        - {name: host, path: host}
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: registries}
spec:
  enforcement: proactive
  rules:
  - name: unapproved-registry
    rule: error(ns, name, image) :- kube:pods(uid, ns, name), kube:containers(uid, image), not builtin:startswith(image, "registry.example.com/")
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: unique-hosts}
spec:
  enforcement: proactive
  rules:
  - rule: claims(i, ns, name, host) :- kube:ingresses(i, ns, name), kube:ingress_hosts(i, host)
  - name: host-taken
    rule: error(ns, name, host) :- claims(i, ns, name, host), claims(j, ns2, name2, host), not builtin:equal(i, j)
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: no-latest}
spec:
  enforcement: proactive
  admission: {action: warn}
  rules:
  - rule: error(ns, name, image) :- kube:pods(uid, ns, name), kube:containers(uid, image), builtin:endswith(image, ":latest")
"#;

fn webhook_args(port: u16, failure_policy: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        format!("--webhook-addr=127.0.0.1:{port}"),
        format!("--webhook-url=https://127.0.0.1:{port}/validate"),
        "--webhook-ip=127.0.0.1".to_string(),
        format!("--webhook-failure-policy={failure_policy}"),
        "--webhook-timeout-seconds=5".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// `kubectl ARGS` with `stdin`: (success, stdout + stderr).
fn kubectl(cluster: &Cluster, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes()).expect("stdin");
    }
    let out = child.wait_with_output().expect("kubectl output");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  containers: [{{name: app, image: \"{image}\"}}]\n"
    )
}

fn ingress(name: &str, host: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  rules: [{{host: {host}}}]\n"
    )
}

/// Wait until the webhook configuration intercepts `plural`.
async fn intercepts(cluster: &Cluster, op: &Operator, plurals: &[&str]) {
    let client = cluster.client().await;
    eventually("the webhook configuration", op, || async {
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let c = api.get_opt("congress.dev").await.ok().flatten()?;
        let v = serde_json::to_value(&c).ok()?;
        let text = v["webhooks"][0]["rules"].to_string();
        plurals.iter().all(|p| text.contains(p)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_denies_new_violations_across_resources_and_warns_in_warn_mode() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.create_namespace("congress-system").await;
    cluster.create_namespace("shop").await;
    cluster.apply(POLICIES);
    let port = free_port();
    let args = webhook_args(port, "Fail", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let op = Operator::start_with(&cluster, "hook", false, &args);
    intercepts(&cluster, &op, &["pods", "ingresses"]).await;

    // A pod from an unapproved registry is denied with the rule and the row.
    let (ok, out) = kubectl(&cluster, &["create", "-f", "-"], &pod("miner", "evil.io/miner:1.0"));
    assert!(!ok, "{out}");
    assert!(out.contains("denied the request"), "{out}");
    assert!(out.contains(r#"registries: error("shop", "miner", "evil.io/miner:1.0")"#), "{out}");
    assert!(out.contains("kube:containers("), "the reason names the facts: {out}");
    // An approved one is admitted.
    let (ok, out) = kubectl(&cluster, &["create", "-f", "-"], &pod("web", "registry.example.com/web:1"));
    assert!(ok, "{out}");
    // `latest` is only a warning (kubectl prints it), and admitted.
    let (ok, out) = kubectl(&cluster, &["create", "-f", "-"], &pod("edge", "registry.example.com/web:latest"));
    assert!(ok, "{out}");
    assert!(out.contains("Warning:") && out.contains("no_latest"), "{out}");
    // A server dry run goes through the webhook, and changes nothing.
    let (ok, out) = kubectl(&cluster, &["apply", "--dry-run=server", "-f", "-"], &pod("dry", "evil.io/x:1"));
    assert!(!ok && out.contains("denied the request"), "{out}");

    // Across resources: a second Ingress with a host in use is denied once the first is
    // in the engine; another host is admitted.
    let (ok, out) = kubectl(&cluster, &["create", "-f", "-"], &ingress("first", "shop.example.com"));
    assert!(ok, "{out}");
    let client = cluster.client().await;
    let ingresses = kube::Api::<k8s_openapi::api::networking::v1::Ingress>::namespaced(client.clone(), "shop");
    let _ = ingresses.get("first").await.expect("created");
    let mut last = String::new();
    let denied = eventually("a second Ingress for the same host is denied", &op, || {
        let (ok, out) =
            kubectl(&cluster, &["create", "--dry-run=server", "-f", "-"], &ingress("second", "shop.example.com"));
        last = out.clone();
        async move { (!ok).then_some(out) }
    })
    .await;
    assert!(denied.contains("unique_hosts: error("), "{denied} / {last}");
    let (ok, out) = kubectl(&cluster, &["create", "-f", "-"], &ingress("third", "blog.example.com"));
    assert!(ok, "{out}");
    // An existing violation does not block an unrelated change: a pod in another namespace
    // is fine although `miner` would be a violation (it was never admitted) ...
    let (ok, out) = kubectl(&cluster, &["label", "ingress", "-n", "shop", "third", "team=blog"], "");
    assert!(ok, "an unrelated update is admitted: {out}");
    let metrics = op.get("/metrics").await;
    assert!(metrics.contains("congress_admission_reviews_total{result=\"denied\"}"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_policy_decides_when_the_webhook_is_down() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.create_namespace("congress-system").await;
    cluster.create_namespace("shop").await;
    cluster.apply(POLICIES);
    for (policy, admitted) in [("Fail", false), ("Ignore", true)] {
        let port = free_port();
        let args = webhook_args(port, policy, &[]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut op = Operator::start_with(&cluster, &format!("hook-{policy}"), false, &args);
        intercepts(&cluster, &op, &["pods"]).await;
        let client = cluster.client().await;
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        eventually("the failure policy written", &op, || async {
            let c = api.get_opt("congress.dev").await.ok().flatten()?;
            let w = c.webhooks?.into_iter().next()?;
            (w.failure_policy.as_deref() == Some(policy)).then_some(())
        })
        .await;
        op.kill();
        let (ok, out) =
            kubectl(&cluster, &["create", "--dry-run=server", "-f", "-"], &pod("p", "registry.example.com/a:1"));
        assert_eq!(ok, admitted, "failurePolicy {policy} with the webhook down: {out}");
        if !admitted {
            assert!(out.contains("failed calling webhook"), "{out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_certificate_is_reissued_without_a_failed_request() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.create_namespace("congress-system").await;
    cluster.create_namespace("shop").await;
    cluster.apply(POLICIES);
    let port = free_port();
    // A 15 s certificate is re-issued once a third of its life is left (every ~10 s).
    let args = webhook_args(port, "Fail", &["--webhook-cert-validity-seconds=15"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let op = Operator::start_with(&cluster, "hook", false, &args);
    intercepts(&cluster, &op, &["pods"]).await;
    let client = cluster.client().await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), "congress-system");
    let first = eventually("the generated certificate", &op, || async {
        secrets.get_opt("congress-webhook-tls").await.ok().flatten()?.data?.get("tls.crt").cloned()
    })
    .await;
    // Requests all along, across at least one re-issue: none fails.
    let started = Instant::now();
    let mut n = 0;
    let mut rotated = false;
    while started.elapsed() < Duration::from_secs(40) && !(rotated && n > 20) {
        let (ok, out) =
            kubectl(&cluster, &["create", "--dry-run=server", "-f", "-"], &pod(&format!("p{n}"), "evil.io/x:1"));
        assert!(!ok && out.contains("denied the request"), "request {n} failed otherwise than by the policy: {out}");
        n += 1;
        let now =
            secrets.get_opt("congress-webhook-tls").await.ok().flatten().and_then(|s| s.data?.get("tls.crt").cloned());
        rotated |= now.is_some_and(|c| c != first);
    }
    assert!(rotated, "the serving certificate was not re-issued in 40 s; operator log:\n{}", op.log_tail());
    assert!(op.log_tail().contains("webhook serving certificate replaced"), "{}", op.log_tail());
}
