//! A [`Sink`] over an in-process engine for driver tests: it commits each batch as one
//! transaction, records every batch, and answers `tables_read` from the loaded rules.

#![allow(dead_code)] // each test binary that includes this uses part of it

use congress_drivers::{Sink, SinkError, TableChange};
use congress_engine::{Engine, PolicyKind, Schema, Value};
use futures::future::BoxFuture;
use std::sync::{Mutex, MutexGuard};

pub struct EngineSink {
    engine: Mutex<Engine>,
    /// Every batch applied, in order.
    pub batches: Mutex<Vec<Vec<TableChange>>>,
}

impl EngineSink {
    /// An engine with datasource `name` of `schema`, and policy `policy` with `rules`.
    pub fn new(name: &str, schema: Schema, rules: &str) -> EngineSink {
        let mut engine = Engine::new();
        engine.create_datasource(name, schema).expect("create the datasource");
        engine.create_policy("policy", PolicyKind::Nonrecursive).expect("create the policy");
        if !rules.trim().is_empty() {
            engine.insert_rules("policy", rules).expect("the rules load");
        }
        EngineSink { engine: Mutex::new(engine), batches: Mutex::new(Vec::new()) }
    }

    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The rows of `policy:table`, sorted.
    pub fn rows(&self, policy: &str, table: &str) -> Vec<Vec<Value>> {
        let mut rows = self.engine().rows(policy, table).expect("a known table");
        rows.sort_by_key(|r| format!("{r:?}"));
        rows
    }

    pub fn batch_count(&self) -> usize {
        self.batches.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

impl Sink for EngineSink {
    fn apply(&self, datasource: &str, changes: Vec<TableChange>) -> BoxFuture<'_, Result<(), SinkError>> {
        let result = {
            let mut engine = self.engine();
            let mut txn = engine.transaction();
            for c in &changes {
                txn.delete_rows(datasource, &c.table, c.removed.clone()).insert_rows(
                    datasource,
                    &c.table,
                    c.added.clone(),
                );
            }
            txn.commit().map(|_| ()).map_err(SinkError::Rejected)
        };
        if result.is_ok() {
            self.batches.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(changes);
        }
        Box::pin(async move { result })
    }

    fn tables_read(&self, datasource: &str, tables: Vec<String>) -> BoxFuture<'_, Vec<String>> {
        let read = {
            let engine = self.engine();
            tables.into_iter().filter(|t| engine.is_read(datasource, t)).collect()
        };
        Box::pin(async move { read })
    }
}
