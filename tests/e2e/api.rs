//! Congress's REST API served by the operator, against the real API server: what the API
//! writes becomes the cluster's objects (and what kubectl applies shows in the API at once),
//! rows are read from the operator's engine right after a write, bad rules are refused with
//! `line:col` before anything is written, callers are let in by their Kubernetes token and
//! RBAC, ActionRequests are approved and denied, and the history of violations outlives the
//! operator's process.

use crate::harness::{API_RBAC as RBAC, Cluster, DATASOURCE, Operator, eventually, service_account_token as token};
use congress_model::resources::{ActionRequest, Policy};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// The operator's namespace (its history ConfigMaps, its Secrets), the RBAC of the API's
/// callers, and an admin's token.
async fn setup(cluster: &Cluster) -> String {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "congress-system"}})).unwrap();
    Api::<Namespace>::all(cluster.client().await).create(&PostParams::default(), &ns).await.expect("a namespace");
    cluster.apply(RBAC);
    token(cluster, "admin").await
}

/// One API call: the status and the JSON body (null when there is none).
async fn call(op: &Operator, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{}{path}", op.addr);
    let mut request = match method {
        "POST" => client.post(url),
        "PUT" => client.put(url),
        "DELETE" => client.delete(url),
        _ => client.get(url),
    };
    if let Some(t) = token {
        request = request.header("X-Auth-Token", t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("the operator answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Wait until the operator's API answers (as `token`).
async fn api_up(op: &Operator, token: &str) {
    eventually("the API", op, || async {
        let client = reqwest::Client::new();
        let url = format!("http://{}/v1/policies", op.addr);
        client.get(url).header("X-Auth-Token", token).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
}

/// The history of policy `api-made`, once the API answers.
async fn history(op: &Operator, token: &str) -> Option<Vec<Value>> {
    let (status, h) = call(op, "GET", "/v1/policies/api-made/history", Some(token), None).await;
    (status == 200).then_some(h["results"].as_array().cloned().unwrap_or_default())
}

fn names(list: &Value) -> Vec<String> {
    list["results"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_policies_are_cluster_objects_with_rows_at_once_and_history_outlives_a_restart() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let admin = setup(&cluster).await;
    let policies: Api<Policy> = Api::all(cluster.client().await);
    let op = Operator::start(&cluster, "first", false);
    api_up(&op, &admin).await;

    // Created through the API: a Policy object, whose rows are readable right away.
    let started = std::time::Instant::now();
    let body = json!({"name": "api-made", "description": "made through the API", "rules": [
        {"rule": "p(1)"}, {"rule": "p(2)"}, {"rule": "error(x) :- p(x)", "name": "all-p"}
    ]});
    let (status, created) = call(&op, "POST", "/v1/policies", Some(&admin), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    eprintln!("POST /v1/policies (validated, written, loaded): {:?}", started.elapsed());
    assert_eq!((created["name"].as_str(), created["state"].as_str()), (Some("api-made"), Some("ok")), "{created}");
    let object = policies.get_opt("api-made").await.unwrap().expect("a Policy object");
    assert_eq!(object.spec.rules.as_ref().map(Vec::len), Some(3));
    assert_eq!(object.spec.description.as_deref(), Some("made through the API"));
    let (status, rows) = call(&op, "GET", "/v1/policies/api-made/tables/error/rows", Some(&admin), None).await;
    assert_eq!(status, 200, "{rows}");
    let mut data: Vec<Value> = rows["results"].as_array().unwrap().iter().map(|r| r["data"].clone()).collect();
    data.sort_by_key(|d| d.to_string());
    assert_eq!(data, [json!([1]), json!([2])], "rows read at once after the create");
    let (status, again) = call(&op, "POST", "/v1/policies", Some(&admin), Some(json!({"name": "api-made"}))).await;
    assert_eq!(status, 409, "{again}");

    // A bad rule: 400 with line:col, and no object.
    let bad =
        json!({"name": "broken", "rules": [{"rule": "p(1)"}, {"rule": "error(x) :-\n   p(x", "name": "unclosed"}]});
    let (status, refused) = call(&op, "POST", "/v1/policies", Some(&admin), Some(bad)).await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("unclosed 2:"), "the rule and its line:col: {refused}");
    assert_eq!(refused["error"]["error_data"][0]["line"], 2, "{refused}");
    assert!(policies.get_opt("broken").await.unwrap().is_none(), "nothing written");

    // Applied with kubectl: in the API at once.
    cluster.apply(
        r#"
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: by-kubectl}
spec:
  rules:
  - rule: q(1)
"#,
    );
    let (_, list) = call(&op, "GET", "/v1/policies", Some(&admin), None).await;
    assert!(
        names(&list).contains(&"by-kubectl".to_string()) && names(&list).contains(&"api-made".to_string()),
        "{list}"
    );

    // Rules added through the API: the object's spec, loaded before the answer.
    let (status, rule) =
        call(&op, "POST", "/v1/policies/api-made/rules", Some(&admin), Some(json!({"rule": "p(3)"}))).await;
    assert_eq!(status, 201, "{rule}");
    let (_, rows) = call(&op, "GET", "/v1/policies/api-made/tables/error/rows", Some(&admin), None).await;
    assert_eq!(rows["results"].as_array().map(Vec::len), Some(3), "{rows}");
    assert_eq!(policies.get("api-made").await.unwrap().spec.rules.map(|r| r.len()), Some(4));

    // The history: the leader records the three violations as they appear...
    let recorded = eventually("three violations in the history", &op, || async {
        history(&op, &admin).await.filter(|h| h.iter().filter(|r| r["change"] == "appeared").count() == 3)
    })
    .await;
    assert!(recorded.iter().all(|r| r["policy"] == "api_made" || r["policy"] == "api-made"), "{recorded:?}");
    let (_, seen) = call(&op, "GET", "/v1/policies/api-made/violations?sort=first_seen", Some(&admin), None).await;
    assert!(seen["results"][0]["first_seen"].is_string(), "{seen}");

    // ... and they are still there when another process of the operator answers.
    drop(op);
    let op = Operator::start(&cluster, "second", false);
    api_up(&op, &admin).await;
    let after = history(&op, &admin).await.expect("the history after a restart");
    assert_eq!(after.iter().filter(|r| r["change"] == "appeared").count(), 3, "{after:?}");

    // Deleted through the API: the object goes (its finalizer ran).
    let (status, deleted) = call(&op, "DELETE", "/v1/policies/api-made", Some(&admin), None).await;
    assert_eq!(status, 200, "{deleted}");
    assert!(policies.get_opt("api-made").await.unwrap().is_none(), "the object is gone");
    let (status, _) = call(&op, "GET", "/v1/policies/api-made", Some(&admin), None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_callers_are_let_in_by_their_token_and_rbac() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let admin = setup(&cluster).await;
    let reader = token(&cluster, "reader").await;
    let op = Operator::start(&cluster, "only", false);
    api_up(&op, &admin).await;
    let (status, body) = call(&op, "GET", "/v1/policies", None, None).await;
    assert_eq!(status, 401, "no token: {body}");
    let garbage = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.c2lnbmF0dXJl";
    let (status, body) = call(&op, "GET", "/v1/policies", Some(garbage), None).await;
    assert_eq!(status, 401, "garbage: {body}");
    let (status, body) = call(&op, "GET", "/v1/policies", Some(&reader), None).await;
    assert_eq!(status, 200, "a reader reads: {body}");
    let (status, body) =
        call(&op, "POST", "/v1/policies", Some(&reader), Some(json!({"name": "by-reader", "rules": []}))).await;
    assert_eq!(status, 403, "a reader may not write: {body}");
    let policies: Api<Policy> = Api::all(cluster.client().await);
    assert!(policies.get_opt("by-reader").await.unwrap().is_none());
    let (status, body) =
        call(&op, "POST", "/v1/policies", Some(&admin), Some(json!({"name": "by-admin", "rules": []}))).await;
    assert_eq!(status, 201, "an admin writes: {body}");
    // The metrics and health endpoints stay open beside the API.
    assert!(op.get("/healthz").await.contains("ok"));
    assert!(op.get("/metrics").await.contains("congress_"));
}

const LABEL_REQUEST: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: ActionRequest
metadata: {name: NAME}
spec:
  name: "kube:label"
  args: {positional: ["v1", "Namespace", "", "default", "congress.dev/KEY", "yes"]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_action_requests_are_approved_denied_and_executed() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let admin = setup(&cluster).await;
    cluster.apply(DATASOURCE);
    for (name, key) in [("approve-me", "approved"), ("deny-me", "denied")] {
        cluster.apply(&LABEL_REQUEST.replace("NAME", name).replace("KEY", key));
    }
    let op = Operator::start(&cluster, "only", false);
    api_up(&op, &admin).await;
    let phases = || async {
        let (_, list) = call(&op, "GET", "/v1/action-requests", Some(&admin), None).await;
        let all = list["results"].as_array().cloned().unwrap_or_default();
        let phase =
            |id: &str| all.iter().find(|r| r["id"] == id).map(|r| r["phase"].as_str().unwrap_or("").to_string());
        (phase("approve-me"), phase("deny-me"))
    };
    eventually("both requests wait for approval", &op, || async {
        phases().await == (Some("Pending".into()), Some("Pending".into()))
    })
    .await;

    let (status, view) = call(&op, "POST", "/v1/action-requests/approve-me?action=approve", Some(&admin), None).await;
    assert_eq!((status, view["phase"].as_str()), (200, Some("Succeeded")), "{view}");
    let (status, view) = call(&op, "POST", "/v1/action-requests/deny-me?action=deny", Some(&admin), None).await;
    assert_eq!((status, view["phase"].as_str()), (200, Some("Denied")), "{view}");
    let requests: Api<ActionRequest> = Api::all(cluster.client().await);
    let denied = requests.get("deny-me").await.unwrap();
    assert!(denied.spec.denied && !denied.spec.approved);
    let labels = Api::<Namespace>::all(cluster.client().await).get("default").await.unwrap().metadata.labels;
    let labels = labels.unwrap_or_default();
    assert_eq!(labels.get("congress.dev/approved").map(String::as_str), Some("yes"), "the approved action ran");
    assert!(!labels.contains_key("congress.dev/denied"), "the denied one did not");
    // Finished: neither can be decided again.
    for (id, action) in [("approve-me", "deny"), ("deny-me", "approve")] {
        let (status, body) =
            call(&op, "POST", &format!("/v1/action-requests/{id}?action={action}"), Some(&admin), None).await;
        assert_eq!(status, 409, "{id}: {body}");
    }

    // Executed by hand: an approved ActionRequest, waited for.
    let body = json!({"name": "label", "args": {"positional": ["v1", "Namespace", "", "default", "congress.dev/executed", "yes"]}});
    let (status, answer) = call(&op, "POST", "/v1/data-sources/kube?action=execute", Some(&admin), Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["phase"], "Succeeded", "{answer}");
    let labels = Api::<Namespace>::all(cluster.client().await).get("default").await.unwrap().metadata.labels;
    assert_eq!(labels.unwrap_or_default().get("congress.dev/executed").map(String::as_str), Some("yes"));
}

/// python-congressclient's Python API and `openstack congress ...` against the operator,
/// with a ServiceAccount's token (`--os-auth-type admin_token`): the same checks as against
/// `congress serve` (tests/api/congress_clients.py), so both backends answer alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_the_real_python_clients_work_against_the_operator() {
    let Some(venv) = crate::serve::venv_or_skip() else { return };
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let admin = setup(&cluster).await;
    let op = Operator::start(&cluster, "only", false);
    api_up(&op, &admin).await;
    let url = format!("http://{}", op.addr);
    let (ok, out) =
        tokio::task::spawn_blocking(move || crate::serve::run_client_checks(&venv, &url, &["token", &admin]))
            .await
            .unwrap();
    assert!(ok, "client checks failed:\n{out}\noperator log:\n{}", op.log_tail());
    assert!(out.contains("all client checks passed"), "{out}");
}
