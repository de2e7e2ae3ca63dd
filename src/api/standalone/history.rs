//! The history of violations (seed 001's audit "in the future"): when each row of a
//! policy's `error` table appeared and cleared, and what changed just before (a data
//! source's update, a policy's new rules). Kept in the database; read by time range and
//! policy, as JSON or JSON lines.
//!
//! The engine announces the policies whose violations changed; the recorder compares each
//! with what it last saw. The cause is the last change committed before the announcement
//! (a burst of driver updates is announced once, with the last one as its cause). After a
//! restart a row known to be present keeps its first-seen time; one that went while the
//! server was down is recorded as cleared at the first change of its policy, not at start,
//! since a polled data source is empty until its first poll.

use super::store::{HistoryEvent, HistoryQuery, Store, StoreError};
use crate::api::backend::{HistoryFilter, HistoryRecord};
use crate::api::extensions::print_row;
use crate::controllers::engine::EngineHandle;
use congress_drivers::{Sink, SinkError, TableChange};
use congress_engine::Value as EValue;
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedReceiver;

/// Rows present, by policy (engine name): printed row -> (first seen, ms since the epoch).
type Present = HashMap<String, HashMap<String, i64>>;

/// Records the history.
pub struct Recorder {
    store: Arc<Store>,
    cause: Mutex<String>,
    present: Mutex<Present>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Recorder {
    pub fn new(store: Arc<Store>) -> Recorder {
        Recorder { store, cause: Mutex::new("start".into()), present: Mutex::new(HashMap::new()) }
    }

    /// What the next change is caused by.
    pub fn set_cause(&self, cause: String) {
        *lock(&self.cause) = cause;
    }

    /// Take what the database knows, record what appeared while loading, and follow the
    /// engine's announcements from now on.
    pub async fn start(self: &Arc<Self>, engine: &Arc<EngineHandle>, mut changed: UnboundedReceiver<String>) {
        let names = engine.run(|e| e.policy_names()).await.unwrap_or_default();
        let mut events = Vec::new();
        for name in &names {
            let known: HashMap<String, i64> = self.store.present_since(name).unwrap_or_default().into_iter().collect();
            lock(&self.present).insert(name.clone(), known);
            events.extend(self.observe(engine, name, false));
        }
        self.append(events).await;
        // Announcements made while loading are covered by the pass above.
        while changed.try_recv().is_ok() {}
        let me = self.clone();
        let engine = engine.clone();
        tokio::spawn(async move {
            while let Some(first) = changed.recv().await {
                let mut names = vec![first];
                while let Ok(n) = changed.try_recv() {
                    names.push(n);
                }
                names.sort();
                names.dedup();
                let events: Vec<HistoryEvent> = names.iter().flat_map(|n| me.observe(&engine, n, true)).collect();
                me.append(events).await;
            }
        });
    }

    /// Compare `policy`'s violations with those last seen; `clear`: rows gone are cleared.
    fn observe(&self, engine: &EngineHandle, policy: &str, clear: bool) -> Vec<HistoryEvent> {
        let rows: Vec<Vec<EValue>> = engine.view(policy).map(|v| v.errors.clone()).unwrap_or_default();
        let now = chrono::Utc::now().timestamp_millis();
        let cause = lock(&self.cause).clone();
        let mut present = lock(&self.present);
        let known = present.entry(policy.to_string()).or_default();
        let printed: Vec<String> = rows.iter().map(|r| print_row("error", r)).collect();
        let mut events = Vec::new();
        // Cleared first, then appeared: within one change, what went before what came.
        if clear {
            let seen: std::collections::HashSet<&String> = printed.iter().collect();
            let mut gone: Vec<String> = known.keys().filter(|r| !seen.contains(r)).cloned().collect();
            gone.sort();
            for row in gone {
                known.remove(&row);
                events.push(HistoryEvent {
                    at_ms: now,
                    policy: policy.to_string(),
                    row,
                    data: Value::Null,
                    change: "cleared".into(),
                    cause: cause.clone(),
                });
            }
        }
        for (row, text) in rows.iter().zip(printed) {
            if !known.contains_key(&text) {
                known.insert(text.clone(), now);
                events.push(HistoryEvent {
                    at_ms: now,
                    policy: policy.to_string(),
                    row: text,
                    data: Value::Array(row.iter().map(EValue::to_json).collect()),
                    change: "appeared".into(),
                    cause: cause.clone(),
                });
            }
        }
        events
    }

    async fn append(&self, events: Vec<HistoryEvent>) {
        if events.is_empty() {
            return;
        }
        let store = self.store.clone();
        let n = events.len();
        match tokio::task::spawn_blocking(move || store.append_history(&events)).await {
            Ok(Ok(())) => tracing::debug!(events = n, "history recorded"),
            Ok(Err(e)) => tracing::error!(error = %e, events = n, "history not recorded"),
            Err(e) => tracing::error!(error = %e, "history writer failed"),
        }
    }

    pub fn read(&self, f: HistoryFilter) -> Result<Vec<HistoryRecord>, StoreError> {
        let q = HistoryQuery { policy: f.policy, since_ms: f.since_ms, until_ms: f.until_ms, limit: f.limit };
        Ok(self
            .store
            .history(&q)?
            .into_iter()
            .map(|e| HistoryRecord {
                at: rfc3339(e.at_ms),
                policy: e.policy,
                row: e.row,
                data: e.data,
                change: e.change,
                cause: e.cause,
            })
            .collect())
    }

    /// When each present violation of `policy` first appeared (RFC 3339), by printed row.
    pub fn first_seen(&self, policy: &str) -> HashMap<String, String> {
        lock(&self.present)
            .get(policy)
            .map(|m| m.iter().map(|(r, ms)| (r.clone(), rfc3339(*ms))).collect())
            .unwrap_or_default()
    }
}

/// The engine as a driver's sink, noting each update as the cause of what follows.
pub struct CausedSink {
    engine: Arc<EngineHandle>,
    recorder: Arc<Recorder>,
}

impl CausedSink {
    pub fn new(engine: Arc<EngineHandle>, recorder: Arc<Recorder>) -> CausedSink {
        CausedSink { engine, recorder }
    }
}

impl Sink for CausedSink {
    fn apply(&self, datasource: &str, changes: Vec<TableChange>) -> BoxFuture<'_, Result<(), SinkError>> {
        let tables: Vec<&str> = changes.iter().map(|c| c.table.as_str()).collect();
        self.recorder.set_cause(format!("datasource {datasource} (update of {})", tables.join(", ")));
        self.engine.apply(datasource, changes)
    }

    fn tables_read(&self, datasource: &str, tables: Vec<String>) -> BoxFuture<'_, Vec<String>> {
        self.engine.tables_read(datasource, tables)
    }

    fn rules_changed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.engine.rules_changed()
    }
}
