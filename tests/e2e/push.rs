//! `push` datasources end to end: rows sent to the operator's HTTP server (Congress's
//! `PUT .../tables/{table}/rows` and the multi-table document), authenticated by a bearer
//! token from a Secret or a ServiceAccount token (TokenReview), with every bad request a 4xx
//! that changes nothing.

use crate::harness::{Cluster, Operator, eventually};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::json;

const DOCTOR: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {name: doctor}
spec:
  driver: push
  credentialsSecretRef: {name: doctor-push, namespace: congress-system}
  push: {maxBodyBytes: 4096}
  tables:
  - {name: events, columns: [time, type, hostname, status, monitor, monitor_event_id]}
---
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {name: vitrage}
spec:
  driver: push
  push: {auth: serviceAccount, allowedUsers: ["system:serviceaccount:default:pusher"]}
  tables:
  - {name: alarms, columns: [name, state, resource]}
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: host-down}
spec:
  rules:
  - rule: error(host) :- doctor:events(t, "compute.host.down", host, "down", m, id)
  - rule: error(r) :- vitrage:alarms(n, "ACTIVE", r)
"#;

async fn violations(cluster: &Cluster) -> Option<u64> {
    let api: Api<congress_model::resources::Policy> = Api::all(cluster.client().await);
    let s = serde_json::to_value(api.get_opt("host-down").await.ok()??.status).ok()?;
    s.get("observedGeneration")?;
    s.get("violations").and_then(serde_json::Value::as_u64)
}

async fn send(op: &Operator, method: &str, path: &str, token: Option<&str>, body: String) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{}{path}", op.addr);
    let mut request = match method {
        "PUT" => client.put(url),
        _ => client.post(url),
    };
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.body(body).send().await.expect("the operator answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_rows_feed_policies_and_bad_pushes_are_refused_with_a_reason() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let client = cluster.client().await;
    cluster.create_namespace("congress-system").await;
    let token = "canary-push-token-4e1";
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "doctor-push", "annotations": {"congress.dev/datasources": "doctor"}},
        "stringData": {"token": token}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), "congress-system").create(&PostParams::default(), &secret).await.unwrap();
    cluster.apply(DOCTOR);
    let op = Operator::start(&cluster, "only", false);
    eventually("the policy loads", &op, || async { violations(&cluster).await == Some(0) }).await;
    let rows = "/v1/data-sources/doctor/tables/events/rows";
    let down = r#"[["2026-12-01T00:00:00Z", "compute.host.down", "compute-1", "down", "zabbix", "e1"]]"#;
    let (status, body) = eventually("the push endpoint", &op, || async {
        let answer = send(&op, "PUT", rows, Some(token), down.to_string()).await;
        (answer.0 != 404).then_some(answer)
    })
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["added"], 1);
    eventually("the violation", &op, || async { violations(&cluster).await == Some(1) }).await;

    // Bad pushes: each a 4xx saying why, none changing anything.
    let too_big = format!("[{}]", vec![r#"["t","x","h","s","m","i"]"#; 200].join(","));
    let cases: Vec<(Option<&str>, &str, String, u16, &str)> = vec![
        (None, rows, down.to_string(), 401, "bearer token is required"),
        (Some("wrong"), rows, down.to_string(), 401, "not the datasource's"),
        (Some(token), "/v1/data-sources/doctor/tables/nope/rows", "[]".into(), 404, "no table `nope`"),
        (Some(token), "/v1/data-sources/nothing/tables/events/rows", "[]".into(), 404, "no push datasource"),
        (Some(token), rows, "[[\"a\"]]".into(), 400, "row 1: 1 values, but the table has 6 columns"),
        (Some(token), rows, "[[\"a\",".into(), 400, "not JSON"),
        (Some(token), rows, too_big, 413, "larger than 4096 bytes"),
    ];
    for (auth, path, body, want, words) in cases {
        let (status, answer) = send(&op, "PUT", path, auth, body).await;
        assert_eq!(status, want, "{path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{path}: {answer}");
        assert_eq!(answer["error"]["error_code"], want);
    }
    assert_eq!(violations(&cluster).await, Some(1), "no bad push changed anything");

    // The multi-table document: the event goes, in one transaction.
    let doc = json!({"patch": {"events": {"remove": [["2026-12-01T00:00:00Z", "compute.host.down", "compute-1", "down", "zabbix", "e1"]]}}});
    let (status, body) = send(&op, "POST", "/v1/data-sources/doctor/tables", Some(token), doc.to_string()).await;
    assert_eq!((status, &body["removed"]), (200, &json!(1)), "{body}");
    eventually("the violation clears", &op, || async { violations(&cluster).await == Some(0) }).await;

    // ServiceAccount tokens, checked by a TokenReview: `pusher` may push, `other` may not.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let mut tokens = Vec::new();
    for name in ["pusher", "other"] {
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        accounts.create(&PostParams::default(), &sa).await.unwrap();
        let request =
            serde_json::from_value(json!({"spec": {"audiences": ["https://kubernetes.default.svc"]}})).unwrap();
        let answer = accounts.create_token_request(name, &PostParams::default(), &request).await.expect("a token");
        tokens.push(answer.status.expect("a token").token);
    }
    let alarms = "/v1/data-sources/vitrage/tables/alarms/rows";
    let (status, body) = send(&op, "PUT", alarms, Some(&tokens[1]), r#"[["a", "ACTIVE", "vm-1"]]"#.into()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("system:serviceaccount:default:other"), "{body}");
    let (status, body) = send(&op, "PUT", alarms, Some("not-a-token"), "[]".into()).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = send(&op, "PUT", alarms, Some(&tokens[0]), r#"[["a", "ACTIVE", "vm-1"]]"#.into()).await;
    assert_eq!(status, 200, "{body}");
    eventually("the alarm's violation", &op, || async { violations(&cluster).await == Some(1) }).await;

    // The Datasource's status counts the rows; the token is in no output.
    let api: Api<congress_model::resources::Datasource> = Api::all(client.clone());
    let status = eventually("vitrage's row count", &op, || async {
        let ds = api.get("vitrage").await.ok()?;
        let s = serde_json::to_value(ds.status?).ok()?;
        (s["tables"][0]["rows"] == 1).then_some(s)
    })
    .await;
    let log = op.log_tail();
    assert!(!log.contains(token) && !status.to_string().contains(token) && !op.get("/metrics").await.contains(token));
}
