//! Reactive enforcement bench (`cargo bench --bench actions`; needs `bash e2e/install.sh`
//! once): a real kube-apiserver v1.20.2 on loopback, the operator as a process, a `push`
//! datasource of alarms, a reactive policy with automatic approval, and an `http` service
//! (a webhook on 127.0.0.1, served by this bench) that owns the action. Prints RESULT lines:
//! - latency from a violating change (the push call starting) to the executor's call
//!   arriving at the service (p50, p90, p99, max over samples, one change at a time): the
//!   engine, the reactor, the ActionRequest's creation and its reconcile (status written
//!   `Running` before the call) are all on the path;
//! - ActionRequests per second from one push of many rows (created, run and recorded),
//!   with a rate limit high enough not to bind;
//! - the same with `actionsPerMinute` binding: how many calls in the first minute.
//!
//! env: BENCH_SAMPLES (default 100), BENCH_BURST (default 1000), BENCH_LIMITED (default 0:
//! skip the 60 s rate-limited run; N: N rows under a limit of N*2/3 per minute).

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/mod.rs"]
mod support;

use axum::extract::{Path, State};
use harness::{Cluster, Operator};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{env_usize, ms, percentile};

const TOKEN: &str = "bench-push-token";

/// When each id's call arrived.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn hook(State(arrivals): State<Arrivals>, Path(id): Path<String>) -> &'static str {
    arrivals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(id).or_insert_with(Instant::now);
    "{}"
}

fn manifests(hook_url: &str, per_minute: usize, suffix: &str) -> String {
    format!(
        r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {{name: alarms{suffix}}}
spec:
  driver: push
  credentialsSecretRef: {{name: bench-push, namespace: congress-system}}
  push: {{maxBodyBytes: 4000000}}
  tables:
  - {{name: alarms, columns: [name, state, resource]}}
---
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {{name: hooks{suffix}}}
spec:
  driver: http
  actionsPerMinute: {per_minute}
  http:
    baseUrl: {hook_url}
    actions:
    - {{name: notify, path: "hook/{{0}}", body: {{resource: "{{0}}"}}, args: [resource]}}
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {{name: notify{suffix}}}
spec:
  enforcement: reactive
  actions: {{maxPerCommit: 100000}}
  rules:
  - rule: execute[hooks{engine}:notify(x)] :- alarms{engine}:alarms(n, "ACTIVE", x)
"#,
        engine = suffix.replace('-', "_")
    )
}

async fn push(client: &reqwest::Client, op: &Operator, datasource: &str, ids: &[String]) -> u16 {
    let rows: Vec<[&str; 3]> = ids.iter().map(|id| ["cpu", "ACTIVE", id.as_str()]).collect();
    let url = format!("http://{}/v1/data-sources/{datasource}/tables/alarms/rows", op.addr);
    client.put(url).bearer_auth(TOKEN).json(&rows).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

async fn wait_for(arrivals: &Arrivals, ids: &[String], limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        {
            let seen = arrivals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if ids.iter().all(|id| seen.contains_key(id)) {
                return ids.iter().filter_map(|id| seen.get(id).copied()).max();
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let samples = env_usize("BENCH_SAMPLES", 100);
    let burst = env_usize("BENCH_BURST", 1000);
    let limited = env_usize("BENCH_LIMITED", 0);
    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let hook_url = format!("http://{}", listener.local_addr().expect("its address"));
    let app = axum::Router::new().route("/hook/{id}", axum::routing::post(hook)).with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cluster = Cluster::up().await;
    let client = cluster.client().await;
    cluster.create_namespace("congress-system").await;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bench-push", "annotations": {"congress.dev/datasources": "*"}},
        "stringData": {"token": TOKEN}
    }))
    .expect("a Secret");
    Api::<Secret>::namespaced(client.clone(), "congress-system")
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the Secret");
    cluster.apply(&manifests(&hook_url, 1_000_000, ""));
    let op = Operator::start_with(&cluster, "bench", false, &["--action-retention-seconds=3600"]);
    let http = reqwest::Client::new();
    harness::eventually("the push endpoint", &op, || async { push(&http, &op, "alarms", &[]).await == 200 }).await;
    // Warm up: the first action (discovery of the service, connections).
    let warm = vec!["warm".to_string()];
    push(&http, &op, "alarms", &warm).await;
    wait_for(&arrivals, &warm, Duration::from_secs(60)).await.expect("the warm-up action");

    // Latency: one new violating row at a time.
    let mut rows = warm.clone();
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let id = format!("lat-{i:05}");
        rows.push(id.clone());
        let t0 = Instant::now();
        assert_eq!(push(&http, &op, "alarms", &rows).await, 200);
        let at = wait_for(&arrivals, std::slice::from_ref(&id), Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("no call for {id} within 30 s; log:\n{}", op.log_tail()));
        latencies.push(at.saturating_duration_since(t0));
    }
    latencies.sort();
    println!(
        "RESULT actions samples={samples} change_to_call_ms p50={:.1} p90={:.1} p99={:.1} max={:.1}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    );

    // Throughput: `burst` new rows in one push.
    let ids: Vec<String> = (0..burst).map(|i| format!("burst-{i:06}")).collect();
    rows.extend(ids.iter().cloned());
    let t0 = Instant::now();
    assert_eq!(push(&http, &op, "alarms", &rows).await, 200);
    let last = wait_for(&arrivals, &ids, Duration::from_secs(600))
        .await
        .unwrap_or_else(|| panic!("not every burst call within 600 s; log:\n{}", op.log_tail()));
    let secs = last.saturating_duration_since(t0).as_secs_f64();
    println!("RESULT actions burst={burst} all_called_s={secs:.2} requests_per_s={:.1}", burst as f64 / secs.max(1e-9));

    // A binding rate limit: N rows, N*2/3 per minute.
    if limited > 0 {
        let per_minute = (limited * 2 / 3).max(1);
        cluster.apply(&manifests(&hook_url, per_minute, "-limited"));
        harness::eventually("the limited push endpoint", &op, || async {
            push(&http, &op, "alarms-limited", &[]).await == 200
        })
        .await;
        let ids: Vec<String> = (0..limited).map(|i| format!("limited-{i:05}")).collect();
        let t0 = Instant::now();
        assert_eq!(push(&http, &op, "alarms-limited", &ids).await, 200);
        let last = wait_for(&arrivals, &ids, Duration::from_secs(300)).await.expect("every limited call");
        let seen = arrivals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let first_minute = ids
            .iter()
            .filter(|id| seen.get(*id).is_some_and(|t| t.duration_since(t0) < Duration::from_secs(60)))
            .count();
        println!(
            "RESULT actions limited rows={limited} per_minute={per_minute} in_first_minute={first_minute} all_called_s={:.1}",
            last.saturating_duration_since(t0).as_secs_f64()
        );
    }
}
