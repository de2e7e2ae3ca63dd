//! Poll bench (`cargo bench --bench poll`): a fake nova (tests/support/openstack.rs) with
//! 100,000 servers in 100 pages of 1,000 (nova's default `max_limit`), polled by the shipped
//! nova mapping into a real engine holding a classification policy. Prints RESULT lines:
//! - one full poll: wall time of each stage (fetch + parse + translate + diff, commit, state
//!   update) and
//!   the process's peak memory added by the poll (VmHWM reset before it, less VmRSS before);
//! - a poll in which one server changed: the same stages, the engine time of its commit
//!   (the target: <= 100 us), and the rows it changed;
//! - a poll in which nothing changed (nothing is committed).
//!
//! env: BENCH_SERVERS (default 100000), BENCH_RUNS (default 5; the median is printed).

#[path = "../tests/support/openstack.rs"]
mod openstack;
#[path = "../tests/support/sink.rs"]
mod sink;
#[path = "support/mod.rs"]
mod support;

use congress_drivers::Sink;
use congress_drivers::credentials::Credentials;
use congress_drivers::http::{HttpDriver, PollState};
use congress_model::resources::DatasourceSpec;
use openstack::{FakeCloud, TokenCheck, small_cloud};
use sink::EngineSink;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::env_usize;

fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reset the peak RSS (VmHWM) to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[derive(Debug, Clone, Copy)]
struct Stages {
    fetch: Duration,
    /// The fake nova's share of `fetch` (building and serialising its pages).
    server: Duration,
    diff: Duration,
    commit: Duration,
    changed: u64,
}

/// One poll, in the stages of `poll_once`: fetch, parse, translate and diff (one step: the
/// driver diffs page by page), the engine commit, the state update.
async fn poll(driver: &HttpDriver, sink: &EngineSink, state: &mut PollState, cloud: &FakeCloud) -> Stages {
    let busy = cloud.state().busy;
    let needed: Vec<String> = sink.tables_read("nova", driver.tables().map(str::to_string).collect()).await;
    let t = Instant::now();
    let mut pending = driver.poll(&|t| needed.iter().any(|n| n == t), state).await.expect("the poll");
    let fetch = t.elapsed();
    let server = cloud.state().busy - busy;
    let changed = pending.changed;
    let changes = std::mem::take(&mut pending.changes);
    let t = Instant::now();
    if !changes.is_empty() {
        sink.apply("nova", changes).await.expect("the commit");
    }
    let commit = t.elapsed();
    let t = Instant::now();
    state.commit(pending);
    Stages { fetch, server, diff: t.elapsed(), commit, changed }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn result(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("RESULT poll.{name} {value} {unit}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let servers = env_usize("BENCH_SERVERS", 100_000);
    let runs = env_usize("BENCH_RUNS", 5).max(1);
    let mut state = small_cloud(servers);
    state.page_size = 1000;
    let cloud = FakeCloud::start(state, TokenCheck::None, "p1").await;
    let mut source = congress_model::resources::http::preset("nova").unwrap().unwrap();
    source.catalog = None;
    source.auth = Default::default();
    source.base_url = Some(format!("{}/compute/v2.1", cloud.url));
    let spec = DatasourceSpec { driver: "http".into(), http: Some(source.clone()), ..Default::default() };
    let driver = HttpDriver::new(&source, &BTreeMap::new(), &Credentials::default()).unwrap();
    // Congress's classification example over nova, with a join to a table of the policy.
    let rules = r#"
        zone_allowed("nova")
        error(vm) :- nova:servers(id=vm, status="ACTIVE", zone=z), not zone_allowed(z)
        addresses(vm, a) :- nova:servers.addresses(server_id=vm, address=a)
        tagged(vm) :- nova:tags(server_id=vm, tag="web")
    "#;
    let sink = EngineSink::new("nova", spec.schema(), rules);
    let mut tables = PollState::default();

    let rss_before = status_kb("VmRSS:");
    reset_peak();
    let full = poll(&driver, &sink, &mut tables, &cloud).await;
    let peak = status_kb("VmHWM:").saturating_sub(rss_before);
    eprintln!("full poll of {servers} servers: {full:?}");
    result("full.servers", servers, "servers");
    result("full.fetch_parse_translate_diff_ms", full.fetch.as_millis(), "ms");
    result("full.fake_nova_share_ms", full.server.as_millis(), "ms");
    result("full.state_update_ms", full.diff.as_millis(), "ms");
    result("full.commit_ms", full.commit.as_millis(), "ms");
    result("full.total_ms", (full.fetch + full.diff + full.commit).as_millis(), "ms");
    result("full.rows_changed", full.changed, "rows");
    result("full.peak_memory_mb", peak / 1024, "MiB");
    result("after_full.rss_mb", status_kb("VmRSS:") / 1024, "MiB");

    let (mut fetch, mut diff, mut commit, mut total, mut server) = (vec![], vec![], vec![], vec![], vec![]);
    let mut changed = 0;
    for run in 0..runs {
        let status = if run % 2 == 0 { "SHUTOFF" } else { "ACTIVE" };
        cloud.state().object("compute/servers/detail", &format!("srv-{:06}", servers / 2))["status"] = status.into();
        let s = poll(&driver, &sink, &mut tables, &cloud).await;
        changed = s.changed;
        fetch.push(s.fetch);
        server.push(s.server);
        diff.push(s.diff);
        commit.push(s.commit);
        total.push(s.fetch + s.diff + s.commit);
    }
    result("one_changed.rows_changed", changed, "rows");
    result("one_changed.fetch_parse_translate_diff_ms", median(fetch).as_millis(), "ms");
    result("one_changed.fake_nova_share_ms", median(server).as_millis(), "ms");
    result("one_changed.state_update_ms", median(diff).as_millis(), "ms");
    result("one_changed.commit_us", median(commit).as_micros(), "us");
    result("one_changed.total_ms", median(total).as_millis(), "ms");

    let same = poll(&driver, &sink, &mut tables, &cloud).await;
    result("unchanged.rows_changed", same.changed, "rows");
    result("unchanged.total_ms", (same.fetch + same.diff + same.commit).as_millis(), "ms");
    result("unchanged.fake_nova_share_ms", same.server.as_millis(), "ms");
    assert_eq!(sink.engine().query_strings("policy", "error(x)").unwrap().len(), 0);
}
