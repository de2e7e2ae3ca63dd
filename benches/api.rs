//! API bench (`cargo bench --bench api`): `congress serve` (the release binary this bench
//! builds beside it) on loopback, a `push` data source of BENCH_ROWS hosts (default 20,000)
//! and a policy with one violation per host. Prints RESULT lines, p50 / p99 over
//! BENCH_SAMPLES requests (default 200), one at a time:
//! - `GET .../tables/error/rows` (every violation, Congress's call);
//! - `GET .../violations?limit=50` (the dashboard's first page, sorted on the server);
//! - `POST ...?action=simulate&delta=true` (one new host: one new violation);
//! - `GET /v1/overview`.
//!
//! Also the time to push the whole table (`PUT .../rows`). With `CONGRESS_DASHBOARD=1` and the
//! dashboard's node modules installed (`bash scripts/ui-test.sh` once), also the
//! dashboard's first load of the policy page (benches/dashboard.mjs).

#[path = "../tests/support/serve.rs"]
mod serve;
#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::time::Instant;
use support::{env_usize, ms, percentile};

async fn time<F, Fut>(name: &str, samples: usize, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let r = call().await;
        let status = r.status();
        let _ = r.bytes().await.expect("body");
        times.push(started.elapsed());
        assert!(status.is_success(), "{name}: {status}");
    }
    times.sort();
    println!(
        "RESULT api_{name}_p50_ms={:.2} api_{name}_p99_ms={:.2} samples={samples}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99))
    );
}

#[tokio::main]
async fn main() {
    let rows = env_usize("BENCH_ROWS", 20_000);
    let samples = env_usize("BENCH_SAMPLES", 200);
    let server = serve::Server::start(&["--no-auth", "--library", "/nonexistent"]);
    let u = server.url.clone();
    let http = reqwest::Client::new();
    let ds =
        json!({"name": "inv", "driver": "push", "tables": [{"name": "hosts", "columns": ["id", "zone", "patched"]}]});
    assert!(http.post(format!("{u}/v1/data-sources")).json(&ds).send().await.unwrap().status().is_success());
    let policy = json!({"name": "unpatched", "rules": [
        {"rule": "error(h, z) :- inv:hosts(h, z, \"no\")"},
    ]});
    assert!(http.post(format!("{u}/v1/policies")).json(&policy).send().await.unwrap().status().is_success());
    let body: Vec<Value> =
        (0..rows).map(|i| json!([format!("host-{i:06}"), format!("zone-{}", i % 7), "no"])).collect();
    let started = Instant::now();
    let r = http.put(format!("{u}/v1/data-sources/inv/tables/hosts/rows")).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    println!("RESULT api_push_{rows}_rows_ms={:.1}", ms(started.elapsed()));
    let n = http.get(format!("{u}/v1/policies/unpatched/violations?limit=1")).send().await.unwrap();
    let total = n.json::<Value>().await.unwrap()["total"].as_u64().unwrap_or(0);
    assert_eq!(total as usize, rows, "one violation per host");

    let rows_url = format!("{u}/v1/policies/unpatched/tables/error/rows");
    time("rows_20k", samples, || http.get(&rows_url).send().map_ok()).await;
    let page_url = format!("{u}/v1/policies/unpatched/violations?limit=50&sort=row");
    time("violations_page", samples, || http.get(&page_url).send().map_ok()).await;
    let sim_url = format!("{u}/v1/policies/unpatched?action=simulate&delta=true");
    let sim = json!({"query": "error(h, z)", "sequence": "inv:hosts+(\"new-host\", \"zone-1\", \"no\")", "action_policy": "action"});
    time("simulate", samples, || http.post(&sim_url).json(&sim).send().map_ok()).await;
    let overview = format!("{u}/v1/overview");
    time("overview", samples, || http.get(&overview).send().map_ok()).await;

    if std::env::var("CONGRESS_DASHBOARD").is_ok_and(|v| v == "1") {
        let out = std::process::Command::new("node")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("benches/dashboard.mjs")
            .env("CONGRESS_URL", &u)
            .env("DASHBOARD_POLICY", "unpatched")
            .output()
            .expect("node runs");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!("dashboard bench failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// `send()` as a future of the response (a failed request is a bench failure).
trait MapOk {
    fn map_ok(self) -> impl std::future::Future<Output = reqwest::Response>;
}

impl<F: std::future::Future<Output = reqwest::Result<reqwest::Response>>> MapOk for F {
    async fn map_ok(self) -> reqwest::Response {
        self.await.expect("the server answers")
    }
}
