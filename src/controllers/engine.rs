//! The operator's one engine, shared by reconcilers and drivers. Every change is one engine
//! transaction under a mutex (the engine's own changes take microseconds, so a lock is
//! simpler than an actor); after each commit, the policies whose `error` table changed are
//! announced on a channel that triggers their reconcile (status, reports, events).

use super::metrics::Metrics;
use congress_drivers::{Sink, TableChange};
use congress_engine::{Commit, Engine, EngineError, Transaction};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// The engine and who to tell when a policy's violations change.
pub struct SharedEngine {
    engine: Mutex<Engine>,
    changed: UnboundedSender<String>,
    metrics: Arc<Metrics>,
}

impl SharedEngine {
    /// `changed` receives the engine names of policies whose `error` rows changed.
    pub fn new(changed: UnboundedSender<String>, metrics: Arc<Metrics>) -> SharedEngine {
        SharedEngine { engine: Mutex::new(Engine::new()), changed, metrics }
    }

    /// Read the engine (queries, rows, warnings).
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock cannot leave the engine half-changed: commits are
        // all-or-nothing, so a poisoned lock is still safe to use.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Build and commit one transaction, then announce the policies whose violations changed.
    pub fn change(&self, build: impl FnOnce(&mut Transaction<'_>)) -> Result<Commit, EngineError> {
        let started = Instant::now();
        let commit = {
            let mut engine = self.lock();
            let mut txn = engine.transaction();
            build(&mut txn);
            txn.commit()?
        };
        self.metrics.evaluation_seconds.observe(started.elapsed().as_secs_f64());
        let mut seen = Vec::new();
        for delta in &commit.changes {
            if delta.table == "error" && !delta.execute && !seen.contains(&delta.policy) {
                seen.push(delta.policy.clone());
            }
        }
        for policy in seen {
            let _ = self.changed.send(policy);
        }
        Ok(commit)
    }

    /// Delete policy (or datasource) `policy` with its tables, if it is loaded.
    pub fn remove(&self, policy: &str) -> Result<(), EngineError> {
        if self.read(|e| e.policy_kind(policy).is_none()) {
            return Ok(());
        }
        self.change(|txn| {
            txn.delete_policy(policy);
        })
        .map(|_| ())
    }

    /// Announce `policy` as changed (its warnings may differ after another policy loaded).
    pub fn touch(&self, policy: &str) {
        let _ = self.changed.send(policy.to_string());
    }
}

impl Sink for SharedEngine {
    fn apply(&self, datasource: &str, changes: Vec<TableChange>) -> Result<(), EngineError> {
        self.change(|txn| {
            for c in changes {
                txn.delete_rows(datasource, &c.table, c.removed).insert_rows(datasource, &c.table, c.added);
            }
        })
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use congress_engine::{PolicyKind, Value};
    use tokio::sync::mpsc::unbounded_channel;

    fn shared() -> (SharedEngine, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = unbounded_channel();
        (SharedEngine::new(tx, Arc::new(Metrics::new())), rx)
    }

    fn load(e: &SharedEngine, name: &str, rules: &str) -> Result<Commit, EngineError> {
        let exists = e.read(|en| en.policy_kind(name).is_some());
        e.change(|t| {
            if exists {
                t.delete_policy(name);
            }
            t.create_policy(name, PolicyKind::Nonrecursive).insert_rules(name, rules);
        })
    }

    fn errors(e: &SharedEngine, policy: &str) -> Vec<Vec<Value>> {
        e.read(|en| en.rows(policy, "error").unwrap_or_default())
    }

    /// Policies and datasources arrive in any order; references resolve once both exist,
    /// and replacing a policy others read from keeps them working.
    #[test]
    fn references_resolve_whatever_order_things_arrive_in() {
        let (e, mut changed) = shared();
        load(&e, "a", "error(x) :- b:bad(x), kube:pods(x, \"evil\")").unwrap();
        load(&e, "b", "bad(x) :- kube:pods(x, y)").unwrap();
        let mut schema = congress_engine::Schema::new();
        schema.insert("pods".into(), vec!["name".into(), "registry".into()]);
        e.change(|t| {
            t.create_datasource("kube", schema.clone());
        })
        .unwrap();
        while changed.try_recv().is_ok() {}
        e.apply(
            "kube",
            vec![TableChange {
                table: "pods".into(),
                added: vec![vec![Value::str("p1"), Value::str("evil")]],
                removed: vec![],
            }],
        )
        .unwrap();
        assert_eq!(errors(&e, "a"), vec![vec![Value::str("p1")]]);
        assert_eq!(changed.try_recv().ok().as_deref(), Some("a"));
        // Replace b (read by a) with a version that matches nothing, then back.
        load(&e, "b", "bad(x) :- kube:pods(x, \"nothing\")").unwrap();
        assert!(errors(&e, "a").is_empty());
        load(&e, "b", "bad(x) :- kube:pods(x, y)").unwrap();
        assert_eq!(errors(&e, "a").len(), 1);
        // A broken version is rejected whole; the previous one keeps working.
        assert!(load(&e, "a", "error(x) :- kube:pods(x").is_err());
        assert_eq!(errors(&e, "a").len(), 1);
        // The datasource is recreated (a driver restart): rows go, then come back.
        e.change(|t| {
            t.delete_policy("kube").create_datasource("kube", schema.clone());
        })
        .unwrap();
        assert!(errors(&e, "a").is_empty());
    }
}
