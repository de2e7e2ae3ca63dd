//! The `kubernetes` executor (`congress_drivers::kubernetes_actions`) against a real
//! kube-apiserver: each action for real and as a server dry run (which changes nothing),
//! running again is harmless, and what the server refuses maps to the right error.

use crate::harness::{Cluster, pod};
use congress_drivers::execute::{ActionCall, ExecError, Executor};
use congress_drivers::kubernetes_actions::KubernetesExecutor;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

async fn run(ex: &KubernetesExecutor, action: &str, args: &[&str], dry_run: bool) -> Result<String, ExecError> {
    let positional = args.iter().map(|a| json!(a)).collect();
    let call = ActionCall { action: action.into(), positional, dry_run, ..ActionCall::default() };
    ex.execute(call).await.map(|o| o.summary)
}

fn bad_arguments(result: Result<String, ExecError>) -> String {
    match result {
        Err(ExecError::BadArguments { message, .. }) => message,
        other => panic!("expected BadArguments, got {other:?}"),
    }
}

fn refused(result: Result<String, ExecError>) -> (u16, String) {
    match result {
        Err(e @ ExecError::Refused { .. }) => {
            let ExecError::Refused { status, .. } = &e else { unreachable!() };
            (*status, e.to_string())
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

async fn labels(pods: &Api<Pod>, name: &str) -> BTreeMap<String, String> {
    pods.get(name).await.expect("the pod").metadata.labels.unwrap_or_default()
}

async fn annotations(pods: &Api<Pod>, name: &str) -> BTreeMap<String, String> {
    pods.get(name).await.expect("the pod").metadata.annotations.unwrap_or_default()
}

const QUARANTINE: &str = "congress.dev/quarantine";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_annotations_and_deletes_act_on_pods_and_dry_runs_change_nothing() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let client = cluster.client().await;
    cluster.create_pod(pod("default", "web-1", "registry.example.com/app:1")).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let ex = KubernetesExecutor::new(client.clone());
    let web = ["v1", "Pod", "default", "web-1"];
    let with = |extra: &[&'static str]| [&web[..], extra].concat();

    // label: a dry run changes nothing, the real one sets it, again is harmless.
    let summary = run(&ex, "label", &with(&[QUARANTINE, "true"]), true).await.unwrap();
    assert_eq!(summary, "labelled Pod default/web-1 congress.dev/quarantine=true (server dry run)");
    assert!(!labels(&pods, "web-1").await.contains_key(QUARANTINE));
    for _ in 0..2 {
        let summary = run(&ex, "label", &with(&[QUARANTINE, "true"]), false).await.unwrap();
        assert_eq!(summary, "labelled Pod default/web-1 congress.dev/quarantine=true");
        assert_eq!(labels(&pods, "web-1").await.get(QUARANTINE).map(String::as_str), Some("true"));
    }
    // Named arguments are the same call.
    let named: BTreeMap<String, Value> = ["apiVersion", "kind", "namespace", "name", "key", "value"]
        .iter()
        .zip(with(&["team", "a"]))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let call = ActionCall { action: "label".into(), named, ..ActionCall::default() };
    assert_eq!(ex.execute(call).await.unwrap().summary, "labelled Pod default/web-1 team=a");
    assert_eq!(labels(&pods, "web-1").await.get("team").map(String::as_str), Some("a"));

    // unlabel: dry run, real, again, and a label that never was.
    let summary = run(&ex, "unlabel", &with(&[QUARANTINE]), true).await.unwrap();
    assert_eq!(summary, "removed label congress.dev/quarantine from Pod default/web-1 (server dry run)");
    assert!(labels(&pods, "web-1").await.contains_key(QUARANTINE));
    for key in [QUARANTINE, QUARANTINE, "never-set"] {
        run(&ex, "unlabel", &with(&[key]), false).await.unwrap();
    }
    let now = labels(&pods, "web-1").await;
    assert!(!now.contains_key(QUARANTINE) && now.get("team").is_some_and(|v| v == "a"), "{now:?}");

    // annotate / unannotate.
    let why = "image not approved: evil.io/x";
    run(&ex, "annotate", &with(&["congress.dev/why", why]), true).await.unwrap();
    assert!(!annotations(&pods, "web-1").await.contains_key("congress.dev/why"));
    let summary = run(&ex, "annotate", &with(&["congress.dev/why", why]), false).await.unwrap();
    assert_eq!(summary, format!("annotated Pod default/web-1 congress.dev/why={why}"));
    assert_eq!(annotations(&pods, "web-1").await.get("congress.dev/why").map(String::as_str), Some(why));
    let summary = run(&ex, "unannotate", &with(&["congress.dev/why"]), false).await.unwrap();
    assert_eq!(summary, "removed annotation congress.dev/why from Pod default/web-1");
    assert!(!annotations(&pods, "web-1").await.contains_key("congress.dev/why"));

    // What the server refuses: not retried.
    let (status, message) = refused(run(&ex, "label", &["v1", "Pod", "default", "nope", "k", "v"], false).await);
    assert_eq!(status, 404, "{message}");
    assert!(message.starts_with("label Pod default/nope: the service refused it (404): not found"), "{message}");
    let (status, message) = refused(run(&ex, "label", &with(&["bad key!", "v"]), false).await);
    assert_eq!(status, 422, "{message}");
    let (status, _) = refused(run(&ex, "label", &with(&["k", "not a valid value"]), true).await);
    assert_eq!(status, 422, "a dry run is validated as the real request is");

    // Kinds the cluster does not serve, and namespaces that do not fit the kind's scope.
    for (api_version, kind) in [("example.com/v1", "Gadget"), ("v1", "Gadget"), ("apps/v9", "Deployment")] {
        let message = bad_arguments(run(&ex, "label", &[api_version, kind, "default", "x", "k", "v"], false).await);
        assert_eq!(message, format!("the cluster serves no kind `{kind}` in `{api_version}`"));
    }
    let message = bad_arguments(run(&ex, "delete", &["v1", "Pod", "", "web-1"], false).await);
    assert!(message.contains("`Pod` is namespaced"), "{message}");
    let message = bad_arguments(run(&ex, "label", &["v1", "Namespace", "default", "default", "k", "v"], false).await);
    assert!(message.contains("`Namespace` is cluster-scoped"), "{message}");
    // A cluster-scoped object, namespace "".
    let summary = run(&ex, "label", &["v1", "Namespace", "", "default", "team", "a"], false).await.unwrap();
    assert_eq!(summary, "labelled Namespace default team=a");

    // Arguments that do not fit.
    let message = bad_arguments(run(&ex, "label", &with(&["k"]), false).await);
    assert!(message.contains("`value` is missing"), "{message}");
    let message = bad_arguments(run(&ex, "delete", &with(&["extra"]), false).await);
    assert!(message.contains("takes 4 arguments"), "{message}");
    assert_eq!(labels(&pods, "web-1").await.len(), 1, "no bad call changed anything");

    // delete: a dry run leaves the pod, the real one removes it, again is success.
    let summary = run(&ex, "delete", &web, true).await.unwrap();
    assert_eq!(summary, "deleted Pod default/web-1 (server dry run)");
    assert!(pods.get_opt("web-1").await.unwrap().is_some());
    assert_eq!(run(&ex, "delete", &web, false).await.unwrap(), "deleted Pod default/web-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pods.get_opt("web-1").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the pod was not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run(&ex, "delete", &web, false).await.unwrap(), "Pod default/web-1 already gone");
    assert_eq!(run(&ex, "delete", &web, true).await.unwrap(), "Pod default/web-1 already gone (server dry run)");
}

const DEPLOYMENT_AND_NODE: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: registry.example.com/app:1}]
---
apiVersion: v1
kind: Node
metadata: {name: n1}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_sets_replicas_and_cordon_marks_nodes_with_dry_runs_changing_nothing() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.apply(DEPLOYMENT_AND_NODE);
    let client = cluster.client().await;
    let ex = KubernetesExecutor::new(client.clone());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let replicas = || async { deployments.get("web").await.expect("the deployment").spec.and_then(|s| s.replicas) };
    let web = ["apps/v1", "Deployment", "default", "web"];
    let with = |n: &'static str| [&web[..], &[n]].concat();

    let summary = run(&ex, "scale", &with("3"), true).await.unwrap();
    assert_eq!(summary, "scaled Deployment default/web to 3 replicas (server dry run)");
    assert_eq!(replicas().await, Some(1));
    assert_eq!(run(&ex, "scale", &with("3"), false).await.unwrap(), "scaled Deployment default/web to 3 replicas");
    assert_eq!(replicas().await, Some(3));
    // A number works as well as a numeric string.
    let mut positional: Vec<Value> = web.iter().map(|a| json!(a)).collect();
    positional.push(json!(0));
    ex.execute(ActionCall { action: "scale".into(), positional, ..ActionCall::default() }).await.unwrap();
    assert_eq!(replicas().await, Some(0));
    for n in ["-1", "many"] {
        let message = bad_arguments(run(&ex, "scale", &with(n), false).await);
        assert!(message.contains("`replicas` must be a non-negative integer"), "{message}");
    }
    let message = bad_arguments(run(&ex, "scale", &["v1", "Pod", "default", "web", "2"], false).await);
    assert_eq!(message, "`Pod` of `v1` has no scale subresource");
    let (status, _) = refused(run(&ex, "scale", &["apps/v1", "Deployment", "default", "nope", "2"], false).await);
    assert_eq!(status, 404);
    assert_eq!(replicas().await, Some(0));

    let nodes: Api<Node> = Api::all(client.clone());
    let unschedulable = || async { nodes.get("n1").await.expect("the node").spec.and_then(|s| s.unschedulable) };
    assert_eq!(run(&ex, "cordon", &["n1"], true).await.unwrap(), "cordoned Node n1 (server dry run)");
    assert_eq!(unschedulable().await, None);
    for _ in 0..2 {
        assert_eq!(run(&ex, "cordon", &["n1"], false).await.unwrap(), "cordoned Node n1");
        assert_eq!(unschedulable().await, Some(true));
    }
    assert_eq!(run(&ex, "uncordon", &["n1"], true).await.unwrap(), "uncordoned Node n1 (server dry run)");
    assert_eq!(unschedulable().await, Some(true));
    assert_eq!(run(&ex, "uncordon", &["n1"], false).await.unwrap(), "uncordoned Node n1");
    assert_ne!(unschedulable().await, Some(true));
    let (status, message) = refused(run(&ex, "cordon", &["n2"], false).await);
    assert_eq!(status, 404, "{message}");
    // The same Node through the generic actions (cluster-scoped: namespace "").
    let summary = run(&ex, "label", &["v1", "Node", "", "n1", "congress.dev/drain", "yes"], false).await.unwrap();
    assert_eq!(summary, "labelled Node n1 congress.dev/drain=yes");
}

/// The user `congress-operator` may do nothing: each action is Unauthorized, naming the verb
/// and resource refused; once RBAC grants `patch` on pods, labelling works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_refusals_are_unauthorized_and_name_the_verb_and_resource() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.apply("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n");
    cluster.create_pod(pod("default", "web-1", "registry.example.com/app:1")).await;
    let ex = KubernetesExecutor::new(cluster.client_of(&cluster.operator_kubeconfig()).await);
    let web = ["v1", "Pod", "default", "web-1"];
    let label = [&web[..], &["k", "v"]].concat();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("label", label.clone(), "RBAC refused `patch` on `pods` in namespace `default` (403)"),
        ("delete", web.to_vec(), "RBAC refused `delete` on `pods` in namespace `default` (403)"),
        ("cordon", vec!["n1"], "RBAC refused `patch` on `nodes` (403)"),
        (
            "scale",
            vec!["apps/v1", "Deployment", "default", "web", "2"],
            "RBAC refused `patch` on `deployments/scale` of API group `apps` in namespace `default` (403)",
        ),
    ];
    for (action, args, words) in cases {
        for dry_run in [true, false] {
            match run(&ex, action, &args, dry_run).await {
                Err(ExecError::Unauthorized(message)) => assert!(message.contains(words), "{action}: {message}"),
                other => panic!("{action}: expected Unauthorized, got {other:?}"),
            }
        }
    }

    cluster.apply(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: congress-actions}
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: congress-actions}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: congress-actions}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: congress-operator}
"#,
    );
    // RBAC changes reach the authorizer through a watch.
    let deadline = Instant::now() + Duration::from_secs(30);
    let summary = loop {
        match run(&ex, "label", &label, false).await {
            Ok(summary) => break summary,
            Err(ExecError::Unauthorized(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("label once granted: {e}"),
        }
    };
    assert_eq!(summary, "labelled Pod default/web-1 k=v");
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    assert_eq!(labels(&pods, "web-1").await.get("k").map(String::as_str), Some("v"));
}
