//! What the API needs from where the state lives: one trait, two implementations. The
//! standalone server ([`super::standalone`]) keeps policies, the library and data sources in
//! SQLite and runs the drivers itself; the operator ([`super::operator`]) keeps them as
//! `Policy`, `LibraryPolicy` and `Datasource` objects in the cluster. Both hand the API the
//! same resource types, and both answer reads of tables and rows from their engine.

use super::error::ApiError;
use crate::controllers::engine::EngineHandle;
use congress_model::resources::{ActionArgs, Datasource, LibraryPolicy, Policy};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

/// A backend call's future.
pub type Reply<'a, T> = BoxFuture<'a, Result<T, ApiError>>;

/// A policy with whether it is loaded.
#[derive(Clone, Debug)]
pub struct PolicyEntry {
    pub policy: Policy,
    /// Why it is not loaded in the engine, when it is not.
    pub problem: Option<String>,
}

/// A data source with what its driver reports.
#[derive(Clone, Debug)]
pub struct DatasourceEntry {
    pub datasource: Datasource,
    pub state: SourceState,
    /// The names of its secret settings (shown as `<hidden>`, never their values).
    pub secret_keys: Vec<String>,
}

/// A driver's health, as the API shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceState {
    /// The driver has delivered a complete listing.
    pub synced: bool,
    pub last_updated: Option<String>,
    pub last_error: Option<String>,
    pub number_of_updates: u64,
    /// Rows in all its tables.
    pub rows: usize,
}

/// An ActionRequest, as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ActionView {
    pub id: String,
    /// `service:action`.
    pub name: String,
    pub args: ActionArgs,
    pub policy: Option<String>,
    /// `Pending`, `Approved`, `Running`, `Succeeded`, `Failed` or `Denied`.
    pub phase: String,
    pub approved: bool,
    /// RFC 3339.
    pub created: String,
    pub message: Option<String>,
}

/// One change of a violation.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct HistoryRecord {
    /// RFC 3339.
    pub at: String,
    pub policy: String,
    pub row: String,
    pub data: Value,
    /// `appeared` or `cleared`.
    pub change: String,
    pub cause: String,
}

/// Which history to read: a policy (engine name), a time range (ms since the epoch), a bound.
#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    pub policy: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: usize,
}

/// Where the API's state lives.
pub trait Backend: Send + Sync + 'static {
    /// The engine the reads go to.
    fn engine(&self) -> &EngineHandle;

    fn policies(&self) -> Reply<'_, Vec<PolicyEntry>>;
    /// Create a policy: validated and loaded all or nothing (400 with `line:col` otherwise);
    /// 409 when the name is taken.
    fn create_policy(&self, policy: Policy) -> Reply<'_, PolicyEntry>;
    /// Replace a policy's spec (its rules changed), with the same checks.
    fn update_policy(&self, policy: Policy) -> Reply<'_, PolicyEntry>;
    fn delete_policy<'a>(&'a self, name: &'a str) -> Reply<'a, Policy>;

    fn library(&self) -> Reply<'_, Vec<LibraryPolicy>>;
    /// Create (`create`: 409 when it exists) or replace a library policy.
    fn put_library(&self, policy: LibraryPolicy, create: bool) -> Reply<'_, LibraryPolicy>;
    fn delete_library<'a>(&'a self, name: &'a str) -> Reply<'a, LibraryPolicy>;

    fn datasources(&self) -> Reply<'_, Vec<DatasourceEntry>>;
    fn create_datasource(&self, datasource: Datasource) -> Reply<'_, DatasourceEntry>;
    fn delete_datasource<'a>(&'a self, name: &'a str) -> Reply<'a, Datasource>;
    /// Replace one table of a data source with `rows` (Congress's `PUT .../rows`).
    fn replace_rows<'a>(&'a self, datasource: &'a str, table: &'a str, rows: Vec<Vec<Value>>) -> Reply<'a, ()>;
    /// Poll a data source now.
    fn refresh<'a>(&'a self, datasource: &'a str) -> Reply<'a, ()>;
    /// Run an action by hand (`service:action`), as an approved ActionRequest.
    fn execute<'a>(&'a self, name: &'a str, args: ActionArgs, policy: Option<&'a str>) -> Reply<'a, ActionView>;

    /// ActionRequests, newest first.
    fn action_requests(&self) -> Reply<'_, Vec<ActionView>>;
    /// Approve (or deny) a pending request; 409 when it has finished.
    fn decide<'a>(&'a self, id: &'a str, approve: bool) -> Reply<'a, ActionView>;

    fn history(&self, filter: HistoryFilter) -> Reply<'_, Vec<HistoryRecord>>;
    /// When each present violation of `policy` (engine name) first appeared, by printed row.
    fn first_seen<'a>(&'a self, policy: &'a str) -> Reply<'a, std::collections::HashMap<String, String>>;
}
