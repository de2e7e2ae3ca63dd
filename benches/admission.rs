//! Admission bench (`cargo bench --bench admission`; needs `bash e2e/install.sh` once): a
//! real kube-apiserver v1.20.2 on loopback, the operator as a process with its webhook on
//! 127.0.0.1, 10,000 pods watched, and every Kubernetes library policy active as
//! `proactive`. Prints RESULT lines:
//! - the operator's time per admission review (an AdmissionReview for a violating pod POSTed
//!   straight to the webhook over HTTPS, answered with its proof), p50 / p99 / max;
//! - a pod's create call through the API server, without and with the webhook, p50 / p99;
//! - reviews per second with 50 requests in flight.
//!
//! env: BENCH_PODS (default 10000), BENCH_SAMPLES (default 1000), BENCH_CREATES (default 200).

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/mod.rs"]
mod support;

use harness::{Cluster, Operator};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{env_usize, ms, percentile};

/// A pod every library policy accepts.
fn compliant(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench"}},
        "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}]}})
}

fn review(i: usize) -> Value {
    let mut pod = compliant("bench", &format!("review-{i}"));
    pod["spec"]["containers"][0]["image"] = json!("evil.io/miner:latest");
    pod["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    pod["metadata"]["uid"] = json!(format!("uid-review-{i}"));
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": format!("req-{i}"),
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": format!("review-{i}"), "namespace": "bench", "operation": "CREATE",
        "userInfo": {"username": "bench"}, "object": pod, "oldObject": null, "dryRun": false}})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pods = env_usize("BENCH_PODS", 10_000);
    let samples = env_usize("BENCH_SAMPLES", 1000);
    let creates = env_usize("BENCH_CREATES", 200);
    let cluster = Cluster::up().await;
    let client = cluster.client().await;
    for ns in ["congress-system", "load", "bench"] {
        cluster.create_namespace(ns).await;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // The library's kube Datasource, PodDisruptionBudgets as v1.20 serves them.
    let ds = std::fs::read_to_string(root.join("library/datasources/kubernetes.yaml")).expect("the kube Datasource");
    cluster.apply(&ds.replace("apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
    let args = [
        format!("--webhook-addr=127.0.0.1:{port}"),
        format!("--webhook-url=https://127.0.0.1:{port}/validate"),
        "--webhook-ip=127.0.0.1".to_string(),
        "--webhook-timeout-seconds=10".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let op = Operator::start_with(&cluster, "bench", false, &args);

    // The load, before any policy is proactive.
    let started = Instant::now();
    let load: Vec<Pod> =
        (0..pods).map(|i| serde_json::from_value(compliant("load", &format!("p-{i:05}"))).expect("a pod")).collect();
    cluster.create_pods(load, 32).await;
    let dss: Api<congress_model::resources::Datasource> = Api::all(client.clone());
    harness::eventually("every pod in the pods table", &op, || async {
        let s = dss.get("kube").await.ok()?.status?;
        s.tables.iter().any(|t| t.name == "pods" && t.rows as usize == pods).then_some(())
    })
    .await;
    println!("RESULT admission load_pods={pods} created_and_synced_s={:.1}", started.elapsed().as_secs_f64());

    // Pod creation through the API server, no webhook yet.
    let api: Api<Pod> = Api::namespaced(client.clone(), "bench");
    let create = |label: &'static str, offset: usize| {
        let api = api.clone();
        async move {
            let mut times = Vec::with_capacity(creates);
            for i in 0..creates {
                let p: Pod =
                    serde_json::from_value(compliant("bench", &format!("{}-{}", label.replace('_', "-"), i + offset)))
                        .expect("a pod");
                let t = Instant::now();
                api.create(&PostParams::default(), &p).await.unwrap_or_else(|e| panic!("create {label}-{i}: {e}"));
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "RESULT admission create_{label} n={creates} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.99)),
                ms(*times.last().expect("samples"))
            );
        }
    };
    create("without_webhook", 0).await;

    // Every Kubernetes library policy, proactive (deny).
    let mut manifests = String::new();
    for entry in std::fs::read_dir(root.join("library/kubernetes")).expect("library/kubernetes") {
        let path = entry.expect("an entry").path();
        manifests.push_str(&std::fs::read_to_string(&path).expect("a library file"));
        let name = path.file_stem().expect("a name").to_string_lossy().into_owned();
        manifests.push_str(&format!(
            "\n---\napiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}}}\nspec:\n  enforcement: proactive\n  libraryRef: {{name: {name}}}\n---\n"
        ));
    }
    cluster.apply(&manifests);
    let hooks: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    harness::eventually("the webhook configuration", &op, || async {
        hooks.get_opt("congress.dev").await.ok().flatten().map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    create("with_webhook", creates).await;

    // Reviews straight to the webhook.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "congress-system");
    let ca = secrets.get("congress-webhook-tls").await.expect("the webhook's Secret").data.expect("data")["ca.crt"]
        .0
        .clone();
    let http = Arc::new(
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("the CA"))
            .build()
            .expect("a client"),
    );
    let url = format!("https://127.0.0.1:{port}/validate?timeout=10s");
    let post = |http: Arc<reqwest::Client>, url: String, i: usize| async move {
        let answer: Value =
            http.post(url).json(&review(i)).send().await.expect("an answer").json().await.expect("JSON");
        assert_eq!(answer["response"]["allowed"], false, "{answer}");
    };
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        post(http.clone(), url.clone(), i).await;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "RESULT admission review n={samples} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().expect("samples"))
    );

    let window = Duration::from_secs(5);
    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..50 {
        let (http, url, done) = (http.clone(), url.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while started.elapsed() < window {
                post(http.clone(), url.clone(), 100_000 + w * 10_000 + i).await;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("a worker");
    }
    let n = done.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "RESULT admission concurrent=50 reviews={n} seconds={:.1} reviews_per_s={:.0}",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
}
