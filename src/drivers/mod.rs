//! Drivers: what fills a `Datasource`'s tables. A driver runs as a task, turns what it
//! sees into row changes, and hands them to a [`Sink`] (the operator's engine) one batch
//! per transaction; it reports its health through a [`DriverStatus`] channel.
//!
//! Data flows one way: driver -> [`Sink`] -> engine tables -> rules.
//!
//! This is the library of the root package (`congress_drivers`): the controllers depend on
//! it, never the other way round, and the compiler keeps it so.
//!
//! It also holds [`api_auth`], the REST API's authenticators (Keystone, Kubernetes), so that
//! the integration and e2e tests can call them directly.

pub mod admission;
pub mod api_auth;
pub mod credentials;
pub mod execute;
pub mod http;
pub mod http_actions;
pub mod keystone;
pub mod kubernetes;
pub mod kubernetes_actions;
pub mod poll;
pub mod push;
pub mod rowset;
pub mod translate;

use congress_engine::{EngineError, Value};
use futures::future::BoxFuture;
use std::collections::BTreeMap;

/// Rows that appeared in and disappeared from one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableChange {
    pub table: String,
    pub added: Vec<Vec<Value>>,
    pub removed: Vec<Vec<Value>>,
}

/// Why a batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The engine refused the batch (a row of the wrong width, an unknown table).
    #[error("the engine refused the batch: {0}")]
    Rejected(#[from] EngineError),
    /// The engine could not take it (shutting down, or the job failed).
    #[error("the engine is unavailable: {0}")]
    Unavailable(String),
}

/// Where drivers send their changes: one call is one all-or-nothing transaction. The
/// future resolves once the transaction is committed (the engine works on a thread of its
/// own, so awaiting it never blocks the driver's async worker).
pub trait Sink: Send + Sync + 'static {
    /// Apply `changes` to the tables of datasource `datasource` (its engine name).
    fn apply(&self, datasource: &str, changes: Vec<TableChange>) -> BoxFuture<'_, Result<(), SinkError>>;

    /// Which of `tables` (of datasource `datasource`) a loaded rule reads: polled drivers
    /// fetch only those (Congress's lazy tables). By default, all of them.
    fn tables_read(&self, datasource: &str, tables: Vec<String>) -> BoxFuture<'_, Vec<String>> {
        let _ = datasource;
        Box::pin(async move { tables })
    }

    /// Changes whenever the loaded rules change (so a polled driver can fetch at once a table
    /// a new policy reads). By default, never.
    fn rules_changed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// What a driver last reported about itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DriverStatus {
    /// Every source has delivered its first complete listing.
    pub synced: bool,
    /// For a driver that fetches only the tables policies read (`http`): the tables it has
    /// fetched at least once. A table read since is not listed until the next good poll.
    /// `None`: every table is listed once `synced`.
    pub listed: Option<std::collections::BTreeSet<String>>,
    /// Row counts per table.
    pub rows: BTreeMap<String, u64>,
    /// RFC 3339 time of the last batch applied.
    pub last_sync: Option<String>,
    /// The last error (cleared by the next successful batch).
    pub last_error: Option<String>,
    /// Errors seen since the driver started.
    pub errors: u64,
    /// Seconds the last batch took from its first event to its commit.
    pub lag_seconds: f64,
    /// Why the last poll failed (a CamelCase cause; cleared by the next good poll).
    pub failure_reason: Option<String>,
    /// Failures in a row.
    pub consecutive_errors: u64,
    /// Good polls since the driver started.
    pub polls: u64,
    /// Seconds the last good poll took (fetch, translate, diff, commit).
    pub last_poll_seconds: f64,
    /// Rows added plus removed by the last good poll.
    pub rows_changed: u64,
}
