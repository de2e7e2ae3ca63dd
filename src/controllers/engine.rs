//! The operator's one engine, on an OS thread of its own.
//!
//! Engine work (a driver's first listing of 100,000 objects, the reload of a 10,000-rule
//! policy) can take long enough to matter, and the operator's async runtime has two workers
//! that also renew the leader lease and answer `/healthz`. So no engine work runs on them:
//! the engine lives on the thread `congress-engine`, an actor fed by a channel of jobs, and
//! async callers send a job and await its reply ([`EngineHandle::run`], [`EngineHandle::change`]).
//! Jobs run one at a time in arrival order, so a job sees every change sent before it.
//!
//! The thread publishes a [`PolicyView`] of each policy a commit touched (its `error` rows
//! and warnings): at once after a change of policies or rules, and for row changes once
//! no more work is queued (a burst of driver batches costs one publish). The status writer
//! reads those committed results with [`EngineHandle::view`], never waiting for the engine.
//! The engine names of the policies whose views changed go out on a channel that triggers
//! their reconcile.

use super::metrics::Metrics;
use congress_drivers::{Sink, SinkError, TableChange};
use congress_engine::{Commit, Engine, EngineError, PolicyKind, Transaction, Value};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, watch};

/// A unit of work for the engine thread.
type Job = Box<dyn FnOnce(&mut Actor) + Send>;

/// Why a job did not run to completion.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EngineUnavailable {
    /// The engine thread is gone (the operator is shutting down).
    #[error("the engine thread has stopped")]
    Stopped,
    /// The job panicked; the engine is unchanged (commits are all or nothing).
    #[error("an engine job panicked: {0}")]
    Panicked(String),
}

/// A change that failed: refused by the engine, or never run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Rejected(#[from] EngineError),
    #[error(transparent)]
    Unavailable(#[from] EngineUnavailable),
}

/// A policy as of the last commit that touched it: what the status writer publishes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyView {
    pub kind: Option<PolicyKind>,
    /// The rows of its `error` table (empty for datasources).
    pub errors: Vec<Vec<Value>>,
    /// Warnings about its rules (unknown policies, builtin failures), sorted, at most 20.
    pub warnings: Vec<String>,
}

/// The committed views, by engine name.
type Views = HashMap<String, Arc<PolicyView>>;

/// Rows that appeared in and disappeared from one `execute[...]` table in one commit.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecuteDelta {
    /// The policy (engine name) whose rule it is.
    pub policy: String,
    /// The table: `nova:servers.pause`.
    pub table: String,
    pub added: Vec<Vec<Value>>,
    pub removed: Vec<Vec<Value>>,
}

/// What lives on the engine thread: the engine, and which views are out of date.
struct Actor {
    engine: Engine,
    views: Arc<RwLock<Views>>,
    changed: UnboundedSender<String>,
    /// Policies whose tables changed since their views were last published.
    dirty: BTreeSet<String>,
    /// Bumped by every structural commit (rules or policies changed).
    rules: watch::Sender<u64>,
    /// Receives, per commit that changed any, the changes of `execute[...]` tables.
    executes: Option<UnboundedSender<Vec<ExecuteDelta>>>,
}

impl Actor {
    /// Run jobs until every handle is gone. Views of data changes are published when the
    /// queue runs dry, so a burst of driver batches costs one publish, not one per batch.
    fn serve(mut self, queue: std::sync::mpsc::Receiver<Job>) {
        loop {
            let job = match queue.try_recv() {
                Ok(job) => job,
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    self.publish(false);
                    match queue.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
            };
            job(&mut self);
        }
    }

    /// Note what `commit` changed; a structural change (policies or rules) is published at
    /// once, with every policy's view (warnings anywhere may differ), so the reconcile that
    /// made it reads its own result.
    fn committed(&mut self, commit: &Commit, structural: bool) {
        self.dirty.extend(commit.changes.iter().map(|d| d.policy.clone()));
        if let Some(executes) = &self.executes {
            let deltas: Vec<ExecuteDelta> = commit
                .changes
                .iter()
                .filter(|d| d.execute)
                .map(|d| ExecuteDelta {
                    policy: d.policy.clone(),
                    table: d.table.clone(),
                    added: d.added.clone(),
                    removed: d.removed.clone(),
                })
                .collect();
            if !deltas.is_empty() {
                let _ = executes.send(deltas);
            }
        }
        if structural {
            self.publish(true);
            self.rules.send_modify(|n| *n += 1);
        }
    }

    /// Recompute the out-of-date views (all when `everything`) and announce the policies
    /// whose view changed or went away.
    fn publish(&mut self, everything: bool) {
        let mut names = std::mem::take(&mut self.dirty);
        if everything {
            names.extend(self.engine.policy_names());
            names.extend(super::read(&self.views).keys().cloned());
        }
        if names.is_empty() {
            return;
        }
        let engine = &self.engine;
        let mut warnings: HashMap<String, Vec<String>> = HashMap::new();
        for w in engine.warnings() {
            warnings.entry(w.policy).or_default().push(format!("{}: {}", w.rule, w.message));
        }
        for f in engine.builtin_failures() {
            warnings
                .entry(f.policy)
                .or_default()
                .push(format!("{}: {} builtin failure(s), the last: {}", f.rule, f.count, f.last_error));
        }
        let mut fresh = Vec::with_capacity(names.len());
        for name in names {
            let view = engine.policy_kind(&name).map(|kind| {
                let errors = if kind == PolicyKind::Datasource {
                    Vec::new()
                } else {
                    engine.rows(&name, "error").unwrap_or_default()
                };
                let mut w = warnings.remove(&name).unwrap_or_default();
                w.sort();
                w.dedup();
                w.truncate(20);
                PolicyView { kind: Some(kind), errors, warnings: w }
            });
            fresh.push((name, view));
        }
        let mut views = super::write(&self.views);
        for (name, view) in fresh {
            let changed = match view {
                Some(v) if views.get(&name).is_none_or(|old| **old != v) => {
                    views.insert(name.clone(), Arc::new(v));
                    true
                }
                Some(_) => false,
                None => views.remove(&name).is_some(),
            };
            if changed {
                let _ = self.changed.send(name);
            }
        }
    }
}

/// The handle every reconciler and driver holds.
pub struct EngineHandle {
    jobs: std::sync::mpsc::Sender<Job>,
    views: Arc<RwLock<Views>>,
    metrics: Arc<Metrics>,
    rules: watch::Receiver<u64>,
}

impl EngineHandle {
    /// Start the engine thread. `changed` receives the engine names of policies whose
    /// published view changed. The thread ends when the last handle is dropped.
    pub fn start(changed: UnboundedSender<String>, metrics: Arc<Metrics>) -> std::io::Result<EngineHandle> {
        Self::start_with(changed, None, metrics)
    }

    /// [`EngineHandle::start`], and every commit's changes of `execute[...]` tables go to
    /// `executes`, in commit order.
    pub fn start_with(
        changed: UnboundedSender<String>,
        executes: Option<UnboundedSender<Vec<ExecuteDelta>>>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<EngineHandle> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let views = Arc::new(RwLock::new(HashMap::new()));
        let (rules, rules_rx) = watch::channel(0);
        let actor =
            Actor { engine: Engine::new(), views: views.clone(), changed, dirty: BTreeSet::new(), rules, executes };
        std::thread::Builder::new().name("congress-engine".into()).spawn(move || actor.serve(queue))?;
        Ok(EngineHandle { jobs, views, metrics, rules: rules_rx })
    }

    /// Run `f` on the engine thread and return its result. A panic in `f` is caught: the
    /// engine keeps serving (a commit that panicked midway applied nothing).
    pub async fn run<T, F>(&self, f: F) -> Result<T, EngineUnavailable>
    where
        T: Send + 'static,
        F: FnOnce(&mut Engine) -> T + Send + 'static,
    {
        self.run_actor(move |actor| f(&mut actor.engine)).await
    }

    async fn run_actor<T, F>(&self, f: F) -> Result<T, EngineUnavailable>
    where
        T: Send + 'static,
        F: FnOnce(&mut Actor) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |actor: &mut Actor| {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(actor))).map_err(|p| panic_message(&*p));
            let _ = tx.send(result);
        });
        self.jobs.send(job).map_err(|_| EngineUnavailable::Stopped)?;
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => {
                tracing::error!(panic = %message, "engine job panicked");
                Err(EngineUnavailable::Panicked(message))
            }
            Err(_) => Err(EngineUnavailable::Stopped),
        }
    }

    /// Build and commit one transaction on the engine thread. `structural` (policies or
    /// rules change): every view is published before this returns. Otherwise (rows
    /// change) the views of the policies it touched are published once the engine has
    /// no more work queued.
    pub async fn change<F>(&self, structural: bool, build: F) -> Result<Commit, ChangeError>
    where
        F: FnOnce(&Before, &mut Transaction<'_>) + Send + 'static,
    {
        let metrics = self.metrics.clone();
        let commit = self
            .run_actor(move |actor| {
                let started = Instant::now();
                let before = Before::of(&actor.engine);
                let mut txn = actor.engine.transaction();
                build(&before, &mut txn);
                let commit = txn.commit()?;
                metrics.evaluation_seconds.observe(started.elapsed().as_secs_f64());
                actor.committed(&commit, structural);
                Ok::<_, EngineError>(commit)
            })
            .await??;
        Ok(commit)
    }

    /// Delete policy (or datasource) `policy` with its tables, if it is loaded.
    pub async fn remove(&self, policy: &str) -> Result<(), ChangeError> {
        let name = policy.to_string();
        self.run_actor(move |actor| {
            if actor.engine.policy_kind(&name).is_none() {
                return Ok(());
            }
            let commit = actor.engine.delete_policy(&name)?;
            actor.committed(&commit, true);
            Ok::<_, EngineError>(())
        })
        .await??;
        Ok(())
    }

    /// The committed view of `policy` (engine name), if it is loaded.
    pub fn view(&self, policy: &str) -> Option<Arc<PolicyView>> {
        let views = super::read(&self.views);
        views.get(policy).cloned()
    }
}

/// What a transaction builder may read of the engine as it was before the transaction:
/// the kind of every policy (a clone of the engine would cost as much as the engine).
pub struct Before {
    kinds: HashMap<String, PolicyKind>,
}

impl Before {
    fn of(engine: &Engine) -> Before {
        let kinds = engine.policy_names().into_iter().filter_map(|n| engine.policy_kind(&n).map(|k| (n, k))).collect();
        Before { kinds }
    }

    pub fn policy_kind(&self, name: &str) -> Option<PolicyKind> {
        self.kinds.get(name).copied()
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

impl Sink for EngineHandle {
    fn apply(&self, datasource: &str, changes: Vec<TableChange>) -> BoxFuture<'_, Result<(), SinkError>> {
        let datasource = datasource.to_string();
        async move {
            self.change(false, move |_, txn| {
                for c in changes {
                    txn.delete_rows(&datasource, &c.table, c.removed).insert_rows(&datasource, &c.table, c.added);
                }
            })
            .await
            .map(|_| ())
            .map_err(|e| match e {
                ChangeError::Rejected(e) => SinkError::Rejected(e),
                ChangeError::Unavailable(u) => SinkError::Unavailable(u.to_string()),
            })
        }
        .boxed()
    }

    fn rules_changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.rules.clone())
    }

    fn tables_read(&self, datasource: &str, tables: Vec<String>) -> BoxFuture<'_, Vec<String>> {
        let datasource = datasource.to_string();
        async move {
            let all = tables.clone();
            // An engine that cannot answer: fetch everything (a poll too many, not a table missed).
            self.run(move |e| tables.into_iter().filter(|t| e.is_read(&datasource, t)).collect()).await.unwrap_or(all)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use congress_engine::Schema;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    fn handle() -> (EngineHandle, UnboundedReceiver<String>) {
        let (tx, rx) = unbounded_channel();
        (EngineHandle::start(tx, Arc::new(Metrics::new())).expect("engine thread"), rx)
    }

    async fn load(e: &EngineHandle, name: &'static str, rules: &'static str) -> Result<Commit, ChangeError> {
        e.change(true, move |before, t| {
            if before.policy_kind(name).is_some() {
                t.delete_policy(name);
            }
            t.create_policy(name, PolicyKind::Nonrecursive).insert_rules(name, rules);
        })
        .await
    }

    fn errors(e: &EngineHandle, policy: &str) -> Vec<Vec<Value>> {
        e.view(policy).map(|v| v.errors.clone()).unwrap_or_default()
    }

    fn drain(rx: &mut UnboundedReceiver<String>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        while let Ok(p) = rx.try_recv() {
            out.insert(p);
        }
        out
    }

    /// Policies and datasources arrive in any order; references resolve once both exist,
    /// and replacing a policy others read from keeps them working.
    #[tokio::test]
    async fn references_resolve_whatever_order_things_arrive_in() {
        let (e, mut changed) = handle();
        load(&e, "a", "error(x) :- b:bad(x), kube:pods(x, \"evil\")").await.unwrap();
        load(&e, "b", "bad(x) :- kube:pods(x, y)").await.unwrap();
        let mut schema = Schema::new();
        schema.insert("pods".into(), vec!["name".into(), "registry".into()]);
        let s = schema.clone();
        e.change(true, move |_, t| {
            t.create_datasource("kube", s);
        })
        .await
        .unwrap();
        drain(&mut changed);
        let pods = vec![TableChange {
            table: "pods".into(),
            added: vec![vec![Value::str("p1"), Value::str("evil")]],
            removed: vec![],
        }];
        e.apply("kube", pods).await.unwrap();
        // Row changes are published once the engine is idle, then announced.
        while changed.recv().await.as_deref() != Some("a") {}
        assert_eq!(errors(&e, "a"), vec![vec![Value::str("p1")]]);
        // Replace b (read by a) with a version that matches nothing, then back.
        load(&e, "b", "bad(x) :- kube:pods(x, \"nothing\")").await.unwrap();
        assert!(errors(&e, "a").is_empty());
        load(&e, "b", "bad(x) :- kube:pods(x, y)").await.unwrap();
        assert_eq!(errors(&e, "a").len(), 1);
        // A broken version is rejected whole; the previous one keeps working.
        assert!(matches!(load(&e, "a", "error(x) :- kube:pods(x").await, Err(ChangeError::Rejected(_))));
        assert_eq!(errors(&e, "a").len(), 1);
        // The datasource is recreated (a driver restart): rows go, then come back.
        e.change(true, move |_, t| {
            t.delete_policy("kube").create_datasource("kube", schema);
        })
        .await
        .unwrap();
        assert!(errors(&e, "a").is_empty());
        // Removing a policy removes its view and announces it.
        drain(&mut changed);
        e.remove("a").await.unwrap();
        assert!(e.view("a").is_none());
        assert!(drain(&mut changed).contains("a"));
        e.remove("a").await.unwrap();
    }

    /// Views hold warnings, and only a change that alters a view announces the policy.
    #[tokio::test]
    async fn views_carry_warnings_and_only_real_changes_are_announced() {
        let (e, mut changed) = handle();
        load(&e, "p", "error(x) :- nowhere:t(x)").await.unwrap();
        let view = e.view("p").expect("loaded");
        assert_eq!(view.kind, Some(PolicyKind::Nonrecursive));
        assert!(view.warnings.iter().any(|w| w.contains("nowhere")), "{:?}", view.warnings);
        drain(&mut changed);
        // A commit that changes nothing of p's view announces nothing.
        load(&e, "q", "r(1)").await.unwrap();
        assert_eq!(drain(&mut changed), BTreeSet::from(["q".to_string()]));
    }

    /// A job that panics is reported; the engine keeps serving, unchanged.
    #[tokio::test]
    async fn a_panicking_job_leaves_the_engine_serving() {
        let (e, _changed) = handle();
        load(&e, "p", "error(1)").await.unwrap();
        let r = e.run(|_| -> () { panic!("boom") }).await;
        assert_eq!(r, Err(EngineUnavailable::Panicked("boom".into())));
        assert_eq!(e.run(|en| en.rows("p", "error").unwrap().len()).await, Ok(1));
    }

    /// Engine work does not run on the async workers: with a single worker, a job on the
    /// engine thread that waits for a task of that worker gets its answer (run inline, it
    /// would block the worker and give up after its wait).
    #[tokio::test(flavor = "current_thread")]
    async fn engine_work_leaves_the_async_worker_free() {
        let (e, _changed) = handle();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let job = e.run(move |_| wait.recv_timeout(std::time::Duration::from_secs(10)).is_ok());
        let worker = async {
            tokio::task::yield_now().await;
            release.send(()).expect("the job is waiting");
        };
        let (released, ()) = tokio::join!(job, worker);
        assert_eq!(released, Ok(true), "the engine job waited in vain: it blocked the async worker");
    }
}
