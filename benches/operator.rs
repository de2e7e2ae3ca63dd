//! Operator bench (`cargo bench --bench operator`; needs `bash e2e/install.sh` once): a real
//! kube-apiserver v1.20.2 on loopback, the operator as a process, 10,000 pods watched.
//! Prints RESULT lines:
//! - latency from a pod's creation (the create call returning) to its violation in the
//!   Policy's status, seen through a watch on the Policy (p50, p90, p99, max over samples);
//! - the operator's resident memory with 10,000 pods loaded (VmRSS, and VmHWM, the peak);
//! - the operator's CPU while nothing changes (10 s window).
//!
//! env: BENCH_PODS (default 10000), BENCH_SAMPLES (default 200).

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/mod.rs"]
mod support;

use futures::StreamExt;
use harness::{Cluster, DATASOURCE, Operator, POLICY, pod};
use kube::api::Api;
use kube::runtime::watcher;
use std::time::{Duration, Instant};
use support::{env_usize, ms, percentile};
use tokio::sync::mpsc;

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields after the name: state(0) ... utime(11) stime(12).
    get(11) + get(12)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pods = env_usize("BENCH_PODS", 10_000);
    let samples = env_usize("BENCH_SAMPLES", 200);
    let cluster = Cluster::up().await;
    cluster.apply(DATASOURCE);
    cluster.apply(POLICY);
    let op = Operator::start(&cluster, "bench", false);
    let pid = op.pid();
    cluster.create_namespace("load").await;
    cluster.create_namespace("bench").await;

    let started = Instant::now();
    let load: Vec<_> = (0..pods).map(|i| pod("load", &format!("p-{i:05}"), "registry.example.com/app:1")).collect();
    cluster.create_pods(load, 32).await;
    let ds: Api<congress_model::resources::Datasource> = Api::all(cluster.client().await);
    harness::eventually("every pod in the pods table", &op, || async {
        let s = ds.get("kube").await.ok()?.status?;
        s.tables.iter().any(|t| t.name == "pods" && t.rows as usize == pods).then_some(())
    })
    .await;
    println!("RESULT operator load_pods={pods} created_and_synced_s={:.1}", started.elapsed().as_secs_f64());

    // Watch the policy: every status change, with when it arrived.
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let policies: Api<congress_model::resources::Policy> = Api::all(cluster.client().await);
    tokio::spawn(async move {
        let mut stream = watcher(policies, watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = stream.next().await {
            let objs = match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => vec![p],
                _ => vec![],
            };
            for p in objs {
                if let Some(s) = p.status {
                    let _ = tx.send((s.violations, Instant::now()));
                }
            }
        }
    });

    // Idle CPU and memory with everything loaded.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let ticks = cpu_ticks(pid) - c0;
    let idle_cpu = ticks as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
    println!(
        "RESULT operator pods={pods} rss_mb={:.1} peak_rss_mb={:.1} idle_cpu_percent={idle_cpu:.2}",
        proc_status_kb(pid, "VmRSS:") as f64 / 1024.0,
        proc_status_kb(pid, "VmHWM:") as f64 / 1024.0
    );

    // Latency: one bad pod at a time; wait for the count to reach it.
    let mut latencies = Vec::with_capacity(samples);
    while rx.try_recv().is_ok() {}
    for i in 0..samples {
        let t = Instant::now();
        cluster.create_pod(pod("bench", &format!("bad-{i:04}"), "evil.io/app:1")).await;
        let want = i as u64 + 1;
        let seen = loop {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some((v, at))) if v >= want => break at,
                Ok(Some(_)) => continue,
                _ => panic!("no status with {want} violations within 30 s; log:\n{}", op.log_tail()),
            }
        };
        // From the start of the create call: the pod exists at the server some time within it.
        latencies.push(seen.saturating_duration_since(t));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    println!(
        "RESULT operator pods={pods} samples={samples} pod_to_status_ms p50={:.1} p90={:.1} p99={:.1} max={:.1}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    );
    println!(
        "RESULT operator pods={} rss_mb={:.1} peak_rss_mb={:.1} (after the latency run)",
        pods + samples,
        proc_status_kb(pid, "VmRSS:") as f64 / 1024.0,
        proc_status_kb(pid, "VmHWM:") as f64 / 1024.0
    );
}
