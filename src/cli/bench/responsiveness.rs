//! `congress bench --workload responsiveness`: does engine work stall the operator's async
//! runtime? The operator's shape, in-process: a two-worker tokio runtime serving the real
//! `/healthz` router, the real [`EngineHandle`] (the engine on its own thread), and a task
//! that ticks every [`TICK`] as lease renewal does every two seconds. Meanwhile:
//!
//! - `load`: `--n` pods' rows (pods and containers, the kubernetes driver's tables) applied
//!   in one batch, as a driver's first listing;
//! - `reload`: a policy of `--rules` rules replaced by another version of it, in one
//!   transaction.
//!
//! A client thread outside the runtime GETs `/healthz` every [`PROBE`]; the tick task
//! records how late each tick wakes; a third task reads the policy's `error` rows every
//! [`TICK`], as the status writer does (from the committed view; `--inline`: under the
//! engine's mutex, as the operator used to). Both are reported per phase (p50, p99, max) as RESULT
//! lines. `--inline` runs the same work the old way, on an async worker under a mutex, for
//! comparison. With `KUBECONFIG` set, a real Lease (`default/congress-bench`) is also renewed
//! every [`RENEW`] (twenty times as often as the operator does, so that renewals fall inside
//! phases that last well under its two seconds): the time from when each renewal was due to
//! when the API server answered is reported.

use crate::controllers::engine::EngineHandle;
use crate::controllers::lock;
use crate::controllers::metrics::{self, Metrics};
use congress_drivers::TableChange;
use congress_engine::{Engine, PolicyKind, Schema, Transaction, Value};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the stand-in for lease renewal wakes.
const TICK: Duration = Duration::from_millis(20);
/// How often `/healthz` is asked.
const PROBE: Duration = Duration::from_millis(5);
/// How often the bench's Lease is renewed.
const RENEW: Duration = Duration::from_millis(100);
const PHASES: [&str; 3] = ["idle", "load", "reload"];

/// Samples per phase, in milliseconds.
#[derive(Default)]
struct Samples {
    healthz: [Vec<f64>; 3],
    tick_late: [Vec<f64>; 3],
    lease: [Vec<f64>; 3],
}

fn pods(n: usize) -> Vec<TableChange> {
    let pods = (0..n).map(|i| vec![Value::str(format!("uid-{i}")), Value::str("load"), Value::str(format!("p-{i}"))]);
    let containers = (0..n)
        .map(|i| vec![Value::str(format!("uid-{i}")), Value::str("app"), Value::str(format!("img-{}", i % 1000))]);
    vec![
        TableChange { table: "pods".into(), added: pods.collect(), removed: vec![] },
        TableChange { table: "containers".into(), added: containers.collect(), removed: vec![] },
    ]
}

fn schema() -> Schema {
    let mut s = Schema::new();
    s.insert("pods".into(), vec!["uid".into(), "namespace".into(), "name".into()]);
    s.insert("containers".into(), vec!["pod".into(), "name".into(), "image".into()]);
    s
}

/// `rules` rules, each flagging the pods of one image (`version` changes every rule's text).
fn policy(rules: usize, version: usize) -> Vec<String> {
    (0..rules)
        .map(|i| {
            format!("error(uid, name, \"v{version}-r{i}\") :- kube:pods(uid, ns, name), kube:containers(uid, c, \"img-{i}\")")
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn summary(v: &[f64]) -> (f64, f64, f64, usize) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (percentile(&s, 0.5), percentile(&s, 0.99), s.last().copied().unwrap_or(0.0), s.len())
}

/// One GET of `/healthz`: the time to the whole answer, or None when it failed.
fn get_healthz(addr: std::net::SocketAddr) -> Option<f64> {
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(60)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n").ok()?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).ok()?;
    body.ends_with(b"ok").then(|| started.elapsed().as_secs_f64() * 1e3)
}

/// The engine, the new way or the old.
enum Work {
    Actor(EngineHandle),
    Inline(Arc<Mutex<Engine>>),
}

impl Work {
    /// What the status writer reads: the number of `error` rows of `p`.
    fn read_errors(&self) -> usize {
        match self {
            Work::Actor(e) => e.view("p").map_or(0, |v| v.errors.len()),
            Work::Inline(e) => lock(e).rows("p", "error").map_or(0, |r| r.len()),
        }
    }

    /// Build and commit one transaction: on the engine thread (`structural` as
    /// [`EngineHandle::change`] takes it), or inline, on an async worker under the mutex.
    async fn commit<F>(&self, structural: bool, build: F) -> Result<(), String>
    where
        F: FnOnce(&mut Transaction<'_>) + Send + 'static,
    {
        match self {
            Work::Actor(e) => e.change(structural, move |_, t| build(t)).await.map(|_| ()).map_err(|e| e.to_string()),
            Work::Inline(e) => {
                let e = e.clone();
                tokio::spawn(async move {
                    let mut e = lock(&e);
                    let mut t = e.transaction();
                    build(&mut t);
                    t.commit().map(|_| ()).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            }
        }
    }

    async fn setup(&self, rules: Vec<String>) -> Result<(), String> {
        self.commit(true, move |t| {
            t.create_datasource("kube", schema()).create_policy("p", PolicyKind::Nonrecursive);
            for r in &rules {
                t.insert_rule("p", r);
            }
        })
        .await
    }

    /// A driver's batch (what `Sink::apply` commits).
    async fn load(&self, changes: Vec<TableChange>) -> Result<(), String> {
        self.commit(false, move |t| {
            for c in changes {
                t.insert_rows("kube", &c.table, c.added);
            }
        })
        .await
    }

    async fn reload(&self, rules: Vec<String>) -> Result<(), String> {
        self.commit(true, move |t| {
            t.delete_policy("p").create_policy("p", PolicyKind::Nonrecursive);
            for r in &rules {
                t.insert_rule("p", r);
            }
        })
        .await
    }
}

/// Renew `default/congress-bench` once; the round trip in ms.
async fn renew(api: &kube::Api<k8s_openapi::api::coordination::v1::Lease>) -> Option<f64> {
    use kube::api::{Patch, PatchParams};
    let now = k8s_openapi::jiff::Timestamp::now();
    let body = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "congress-bench"},
        "spec": {"holderIdentity": "bench", "leaseDurationSeconds": 10,
                 "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(now)},
    });
    let started = Instant::now();
    api.patch("congress-bench", &PatchParams::apply("congress-bench").force(), &Patch::Apply(&body)).await.ok()?;
    Some(started.elapsed().as_secs_f64() * 1e3)
}

/// Run the workload; prints RESULT lines (and the phases' durations on stderr).
pub fn bench(n: usize, rules: usize, inline: bool) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mode = if inline { "inline" } else { "actor" };
    let (samples, durations) = rt.block_on(run(n, rules, inline))?;
    for (p, phase) in PHASES.iter().enumerate() {
        let (h50, h99, hmax, hn) = summary(&samples.healthz[p]);
        let (t50, t99, tmax, _) = summary(&samples.tick_late[p]);
        let mut line = format!(
            "RESULT engine=congress workload=responsiveness mode={mode} n={n} rules={rules} phase={phase} secs={:.3} \
             healthz_p50_ms={h50:.2} healthz_p99_ms={h99:.2} healthz_max_ms={hmax:.2} healthz_n={hn} \
             tick_late_p50_ms={t50:.2} tick_late_p99_ms={t99:.2} tick_late_max_ms={tmax:.2}",
            durations[p]
        );
        if !samples.lease[p].is_empty() {
            let (l50, l99, lmax, ln) = summary(&samples.lease[p]);
            line.push_str(&format!(
                " lease_renew_p50_ms={l50:.2} lease_renew_p99_ms={l99:.2} lease_renew_max_ms={lmax:.2} lease_renew_n={ln}"
            ));
        }
        println!("{line}");
    }
    Ok(())
}

async fn run(n: usize, rules: usize, inline: bool) -> Result<(Samples, [f64; 3]), String> {
    let metrics = Arc::new(Metrics::new());
    let (changed, mut announced) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move { while announced.recv().await.is_some() {} });
    let work = Arc::new(if inline {
        Work::Inline(Arc::new(Mutex::new(Engine::new())))
    } else {
        Work::Actor(EngineHandle::start(changed, metrics.clone()).map_err(|e| e.to_string())?)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, metrics::router(metrics)).await });

    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Samples::default()));
    // The prober: a plain thread, outside the runtime it measures.
    let prober = {
        let (phase, stop, samples) = (phase.clone(), stop.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let p = phase.load(Ordering::Relaxed);
                if let Some(ms) = get_healthz(addr) {
                    lock(&samples).healthz[p].push(ms);
                }
                std::thread::sleep(PROBE);
            }
        })
    };
    // The ticker, and the lease renewal when a cluster is at hand.
    let lease_api = match std::env::var_os("KUBECONFIG") {
        Some(_) => kube::Client::try_default().await.ok().map(|c| kube::Api::namespaced(c, "default")),
        None => None,
    };
    let ticker = {
        let (phase, stop, samples) = (phase.clone(), stop.clone(), samples.clone());
        tokio::spawn(async move {
            let mut due = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let asked = Instant::now();
                tokio::time::sleep(TICK).await;
                let late = asked.elapsed().saturating_sub(TICK).as_secs_f64() * 1e3;
                let p = phase.load(Ordering::Relaxed);
                lock(&samples).tick_late[p].push(late);
                if let Some(api) = &lease_api
                    && Instant::now() >= due
                {
                    // From when the renewal was due to when the API server has it: the
                    // runtime's delay in getting to it, and the round trip.
                    if renew(api).await.is_some() {
                        let ms = due.elapsed().as_secs_f64() * 1e3;
                        lock(&samples).lease[p].push(ms);
                    }
                    due = (due + RENEW).max(Instant::now());
                }
            }
        })
    };

    // The status writer.
    let reader = {
        let (stop, work) = (stop.clone(), work.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                seen = work.read_errors();
                tokio::time::sleep(TICK).await;
            }
            seen
        })
    };

    work.setup(policy(rules, 0)).await?;
    let mut durations = [0.0; 3];
    tokio::time::sleep(Duration::from_secs(2)).await;
    durations[0] = 2.0;

    let rows = pods(n);
    phase.store(1, Ordering::Relaxed);
    let started = Instant::now();
    work.load(rows).await?;
    durations[1] = started.elapsed().as_secs_f64();
    // Let the probes see the aftermath (views published once the engine is idle).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let next = policy(rules, 1);
    phase.store(2, Ordering::Relaxed);
    let started = Instant::now();
    work.reload(next).await?;
    durations[2] = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;

    stop.store(true, Ordering::Relaxed);
    let _ = ticker.await;
    let errors = reader.await.unwrap_or(0);
    let _ = tokio::task::spawn_blocking(move || prober.join()).await;
    eprintln!(
        "responsiveness ({}): load {:.3} s, reload {:.3} s, {errors} error rows at the end",
        if inline { "inline" } else { "actor" },
        durations[1],
        durations[2]
    );
    if errors != n / 1000 * rules.min(1000) {
        return Err(format!("expected {} error rows, the status writer saw {errors}", n / 1000 * rules.min(1000)));
    }
    let samples = std::mem::take(&mut *lock(&samples));
    Ok((samples, durations))
}
