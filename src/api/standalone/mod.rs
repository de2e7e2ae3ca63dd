//! The backend of `congress serve`: the API's state in one SQLite file ([`store`]), the
//! engine on its own thread, and the drivers in-process. For OpenStack clouds without
//! Kubernetes, and for trying the product on a laptop.
//!
//! Every write goes engine first, database second, then the reply: a write the engine
//! refuses changes nothing; one it takes is committed to the file before it is
//! acknowledged, and the start rebuilds the engine from the file. Writes are serialised
//! (one at a time), reads are not.
//!
//! - [`history`] records when each violation appeared and cleared, and why;
//! - [`actions`] turns the `execute[...]` rows of reactive policies into ActionRequests and
//!   runs them with the data source's driver.

pub mod actions;
pub mod history;
pub mod store;

use super::backend::{
    ActionView, Backend, DatasourceEntry, HistoryFilter, HistoryRecord, PolicyEntry, Reply, SourceState,
};
use super::convert;
use super::error::ApiError;
use crate::controllers::engine::{ChangeError, EngineHandle};
use crate::controllers::metrics::Metrics;
use congress_drivers::credentials::Credentials;
use congress_drivers::execute::Executor;
use congress_drivers::http::HttpDriver;
use congress_drivers::http_actions::HttpExecutor;
use congress_drivers::{DriverStatus, Sink, poll};
use congress_engine::{PolicyKind, Value as EValue};
use congress_model::engine_name;
use congress_model::loader::{self, Staged};
use congress_model::resources::{ActionArgs, Datasource, LibraryPolicy, Policy, PolicyKindSpec};
use futures::FutureExt;
use kube::ResourceExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use store::{Kind, Store, StoreError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How `congress serve` starts.
pub struct Options {
    pub store: Store,
    /// Where the library is initialised from on the first start (a directory of
    /// `LibraryPolicy` manifests).
    pub library_dir: Option<PathBuf>,
    /// Objects and rows to serve (from `-f` and `--data`), put in the store at start.
    pub seed: Option<Seed>,
    /// Every ActionRequest waits for a person's approval.
    pub manual_approval: bool,
}

/// What `-f`/`--data` give: objects, and rows for their data sources' tables.
#[derive(Default)]
pub struct Seed {
    pub objects: congress_model::load::Objects,
    /// (datasource engine name, table) -> rows.
    pub rows: BTreeMap<(String, String), Vec<Vec<EValue>>>,
}

/// A data source as stored: the object and its secret settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct StoredSource {
    object: Datasource,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

/// A running driver.
struct Driver {
    status: watch::Receiver<DriverStatus>,
    refresh: Option<Arc<Notify>>,
    executor: Option<Arc<dyn Executor>>,
    /// Why the driver is not running (fixture or pushed data only, a bad configuration).
    note: Option<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// The in-memory copy of what the store holds.
#[derive(Default)]
struct State {
    policies: BTreeMap<String, PolicyEntry>,
    library: BTreeMap<String, LibraryPolicy>,
    datasources: BTreeMap<String, StoredSource>,
    /// Rows pushed (or read from fixtures) per data source, by table.
    pushed: HashMap<String, BTreeMap<String, usize>>,
    pushes: HashMap<String, u64>,
}

/// The standalone backend.
pub struct Standalone {
    engine: Arc<EngineHandle>,
    store: Arc<Store>,
    state: Mutex<State>,
    drivers: Mutex<HashMap<String, Driver>>,
    /// One write at a time.
    writes: tokio::sync::Mutex<()>,
    history: Arc<history::Recorder>,
    actions: Arc<actions::Actions>,
}

fn store_err(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "database failure");
    ApiError::unavailable(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Standalone {
    /// Open the state, rebuild the engine from it, start the drivers.
    pub async fn start(options: Options) -> Result<Arc<Standalone>, String> {
        let (changed_tx, changed_rx) = tokio::sync::mpsc::unbounded_channel();
        let (exec_tx, exec_rx) = tokio::sync::mpsc::unbounded_channel();
        let engine = EngineHandle::start_with(changed_tx, Some(exec_tx), Arc::new(Metrics::new()))
            .map_err(|e| format!("cannot start the engine thread: {e}"))?;
        let engine = Arc::new(engine);
        let store = Arc::new(options.store);
        let history = Arc::new(history::Recorder::new(store.clone()));
        let actions = Arc::new(actions::Actions::new(store.clone(), options.manual_approval));
        let backend = Arc::new(Standalone {
            engine,
            store: store.clone(),
            state: Mutex::new(State::default()),
            drivers: Mutex::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
            history: history.clone(),
            actions: actions.clone(),
        });
        if let Some(seed) = options.seed {
            backend.seed(seed)?;
        }
        if store.created()
            && let Some(dir) = &options.library_dir
        {
            backend.init_library(dir)?;
        }
        backend.restore().await?;
        backend.system_policies().await?;
        history.set_cause("start".into());
        history.start(&backend.engine, changed_rx).await;
        actions.start(Arc::downgrade(&backend), exec_rx);
        Ok(backend)
    }

    /// Put the objects and rows of `-f`/`--data` in the store (replacing what it has).
    fn seed(&self, seed: Seed) -> Result<(), String> {
        let s = &self.store;
        let put = |kind, name: &str, v: Value| s.put(kind, name, &v).map_err(|e| e.to_string());
        for d in seed.objects.datasources {
            let name = d.name_any();
            put(Kind::Datasource, &name, json!(StoredSource { object: with_uid(d), secrets: BTreeMap::new() }))?;
        }
        for l in seed.objects.library {
            let name = l.name_any();
            put(Kind::LibraryPolicy, &name, json!(with_uid(l)))?;
        }
        for p in seed.objects.policies {
            let name = p.name_any();
            put(Kind::Policy, &name, json!(with_uid(p)))?;
        }
        let names: HashMap<String, String> = s
            .list(Kind::Datasource)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|v| v["object"]["metadata"]["name"].as_str().map(|n| (engine_name(n), n.to_string())))
            .collect();
        for ((ds, table), rows) in seed.rows {
            let name = names.get(&ds).cloned().unwrap_or(ds);
            let rows: Vec<Vec<Value>> = rows.iter().map(|r| r.iter().map(EValue::to_json).collect()).collect();
            s.put_rows(&name, &table, &json!(rows)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The first start: the library from `dir`.
    fn init_library(&self, dir: &std::path::Path) -> Result<(), String> {
        if !dir.is_dir() {
            tracing::info!(dir = %dir.display(), "no library directory: the library starts empty");
            return Ok(());
        }
        let objects = congress_model::load::load_objects(&[dir.to_path_buf()]).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            format!("the library in {}: {}", dir.display(), lines.join("; "))
        })?;
        let n = objects.library.len();
        for l in objects.library {
            let name = l.name_any();
            self.store.put(Kind::LibraryPolicy, &name, &json!(with_uid(l))).map_err(|e| e.to_string())?;
        }
        self.store.set_setting("library-initialised-from", &dir.display().to_string()).map_err(|e| e.to_string())?;
        tracing::info!(dir = %dir.display(), policies = n, "library initialised");
        Ok(())
    }

    /// Rebuild the engine from the store: data sources (with their pushed rows), then the
    /// policies (in rounds, until no more load: one may read another), then the drivers.
    async fn restore(&self) -> Result<(), String> {
        let sources: Vec<StoredSource> = self
            .store
            .list(Kind::Datasource)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("database: a stored data source is unreadable: {e}"))?;
        let library: Vec<LibraryPolicy> = parse_all(self.store.list(Kind::LibraryPolicy))?;
        let policies: Vec<Policy> = parse_all(self.store.list(Kind::Policy))?;
        {
            let mut st = lock(&self.state);
            st.library = library.into_iter().map(|l| (l.name_any(), l)).collect();
        }
        for s in sources {
            let name = s.object.name_any();
            let rows = self.store.rows(&name).map_err(|e| e.to_string())?;
            if let Err(e) = self.load_datasource(&s, rows).await {
                tracing::warn!(datasource = %name, error = %e, "data source not loaded");
            }
            lock(&self.state).datasources.insert(name, s);
        }
        let mut pending: Vec<Policy> = policies;
        loop {
            let mut failed = Vec::new();
            let before = pending.len();
            for p in pending {
                let library = lock(&self.state).library.values().cloned().collect::<Vec<_>>();
                match self.load_policy(&p, &library, false).await {
                    Ok(()) => {
                        lock(&self.state).policies.insert(p.name_any(), PolicyEntry { policy: p, problem: None });
                    }
                    Err(e) => failed.push((p, e)),
                }
            }
            if failed.is_empty() || failed.len() == before {
                for (p, e) in failed {
                    tracing::warn!(policy = %p.name_any(), error = %e.message, "policy not loaded");
                    lock(&self.state)
                        .policies
                        .insert(p.name_any(), PolicyEntry { policy: p, problem: Some(e.message) });
                }
                break;
            }
            pending = failed.into_iter().map(|(p, _)| p).collect();
        }
        Ok(())
    }

    /// Congress's own policies, `classification` and `action` (simulate's default action
    /// policy), when the state has none of that name.
    async fn system_policies(&self) -> Result<(), String> {
        for (name, kind) in [("classification", PolicyKindSpec::Nonrecursive), ("action", PolicyKindSpec::Action)] {
            if lock(&self.state).policies.contains_key(name) {
                continue;
            }
            let mut p = Policy::new(name, Default::default());
            p.spec.kind = Some(kind);
            p.spec.rules = Some(vec![]);
            p.annotations_mut().insert(convert::OWNER.to_string(), "system".to_string());
            let p = with_uid(p);
            self.load_policy(&p, &[], false).await.map_err(|e| format!("policy {name}: {}", e.message))?;
            self.store.put(Kind::Policy, name, &json!(p)).map_err(|e| e.to_string())?;
            lock(&self.state).policies.insert(name.to_string(), PolicyEntry { policy: p, problem: None });
        }
        Ok(())
    }

    /// Create (or re-create) a data source's tables with `rows`, and start its driver.
    async fn load_datasource(&self, s: &StoredSource, rows: Vec<(String, Value)>) -> Result<(), ApiError> {
        let name = s.object.name_any();
        let engine = engine_name(&name);
        let schema = s.object.spec.schema();
        let mut tables: Vec<(String, Vec<Vec<EValue>>)> = Vec::new();
        for (table, body) in rows {
            let rows: Vec<Vec<Value>> = serde_json::from_value(body).unwrap_or_default();
            tables.push((table, rows.iter().map(|r| r.iter().map(EValue::from_json_congress).collect()).collect()));
        }
        let counts: BTreeMap<String, usize> = tables.iter().map(|(t, r)| (t.clone(), r.len())).collect();
        let e = engine.clone();
        self.engine
            .change(true, move |before, txn| {
                if before.policy_kind(&e) == Some(PolicyKind::Datasource) {
                    txn.delete_policy(&e);
                }
                txn.create_datasource(&e, schema);
                for (table, rows) in tables {
                    txn.insert_rows(&e, &table, rows);
                }
            })
            .await
            .map_err(change_error)?;
        let static_data = !counts.is_empty();
        lock(&self.state).pushed.insert(name.clone(), counts);
        let driver = self.start_driver(s, &engine, static_data);
        lock(&self.drivers).insert(name, driver);
        Ok(())
    }

    /// Run the data source's driver: the HTTP ones (the OpenStack drivers) poll; a data
    /// source whose rows came from files or pushes, or a `push` one, runs none.
    fn start_driver(&self, s: &StoredSource, engine: &str, static_data: bool) -> Driver {
        let (tx, rx) = watch::channel(DriverStatus::default());
        let mut driver = Driver { status: rx, refresh: None, executor: None, note: None, tasks: vec![] };
        let spec = &s.object.spec;
        if static_data || spec.driver == "push" {
            driver.note = Some(if static_data { "rows from files or pushes" } else { "push" }.to_string());
            let _ = tx.send(DriverStatus {
                synced: true,
                last_sync: Some(congress_model::now_rfc3339()),
                ..Default::default()
            });
            return driver;
        }
        let credentials = Credentials::from_strings(s.secrets.clone());
        match spec.http_source() {
            Ok(Some(source)) => match HttpDriver::new(&source, &spec.config, &credentials) {
                Ok(http) => {
                    if !source.actions.is_empty() {
                        match HttpExecutor::new(&source, &spec.config, &credentials) {
                            Ok(x) => driver.executor = Some(Arc::new(x.with_name(s.object.name_any()))),
                            Err(e) => tracing::warn!(datasource = %engine, error = %e, "no executor"),
                        }
                    }
                    let refresh = Arc::new(Notify::new());
                    driver.refresh = Some(refresh.clone());
                    let sink: Arc<dyn Sink> =
                        Arc::new(history::CausedSink::new(self.engine.clone(), self.history.clone()));
                    let schedule = poll::Schedule::from_seconds(spec.poll_interval_seconds);
                    driver.tasks.push(tokio::spawn(poll::run(
                        Arc::new(http),
                        engine.to_string(),
                        sink,
                        schedule,
                        refresh,
                        tx,
                    )));
                }
                Err(e) => driver.note = Some(format!("cannot run: {e}")),
            },
            Ok(None) => driver.note = Some(format!("driver `{}` does not run in congress serve", spec.driver)),
            Err(e) => driver.note = Some(e.to_string()),
        }
        driver
    }

    /// Stage `p` in the engine, all or nothing; on failure, every problem with its rule and
    /// `line:col`.
    async fn load_policy(&self, p: &Policy, library: &[LibraryPolicy], replace: bool) -> Result<(), ApiError> {
        let statements = convert::statements(p, library)?;
        let kind: PolicyKind = p
            .spec
            .kind
            .or_else(|| {
                p.spec
                    .library_ref
                    .as_ref()
                    .and_then(|r| library.iter().find(|l| l.name_any() == r.name))
                    .and_then(|l| l.spec.kind)
            })
            .unwrap_or_default()
            .into();
        let name = engine_name(&p.name_any());
        let (n, st) = (name.clone(), statements.clone());
        self.history.set_cause(format!("policy {}", p.name_any()));
        let result = self
            .engine
            .change(true, move |before, txn| {
                // Creating a policy whose name is taken fails the commit (the API checked
                // for one of its own; this catches a data source's tables).
                let exists = replace && before.policy_kind(&n).is_some();
                loader::stage(txn, &n, kind, &st, exists);
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(ChangeError::Rejected(first)) => {
                let (n, st) = (name.clone(), statements);
                let problems = self
                    .engine
                    .run(move |e| {
                        let staged = [Staged { policy: &n, kind, statements: &st }];
                        loader::diagnose(e.without_rows(), &staged, &first)
                    })
                    .await?;
                Err(convert::rule_error(&p.name_any(), &problems))
            }
            Err(ChangeError::Unavailable(u)) => Err(u.into()),
        }
    }

    fn entry(&self, name: &str) -> Option<PolicyEntry> {
        lock(&self.state).policies.get(name).cloned()
    }

    fn source_entry(&self, s: &StoredSource) -> DatasourceEntry {
        let name = s.object.name_any();
        let drivers = lock(&self.drivers);
        let st = lock(&self.state);
        let pushed = st.pushed.get(&name);
        let mut state = SourceState::default();
        if let Some(d) = drivers.get(&name) {
            let status = d.status.borrow();
            state.synced = status.synced;
            state.last_updated = status.last_sync.clone();
            state.last_error = status
                .last_error
                .clone()
                .or_else(|| d.note.clone().filter(|n| n.starts_with("cannot") || n.starts_with("driver")));
            state.number_of_updates = st.pushes.get(&name).copied().unwrap_or(0) + status.rows.len() as u64;
            state.rows = status.rows.values().sum::<u64>() as usize + pushed.map_or(0, |p| p.values().sum());
        }
        DatasourceEntry { datasource: s.object.clone(), state, secret_keys: s.secrets.keys().cloned().collect() }
    }

    /// The executor of a data source (`nova`), if its driver can act.
    pub fn executor(&self, datasource: &str) -> Result<Arc<dyn Executor>, String> {
        let drivers = lock(&self.drivers);
        let name = lock(&self.state).datasources.keys().find(|n| engine_name(n) == engine_name(datasource)).cloned();
        let Some(name) = name else { return Err(format!("no data source `{datasource}`")) };
        match drivers.get(&name) {
            Some(Driver { executor: Some(x), .. }) => Ok(x.clone()),
            Some(Driver { note: Some(note), .. }) => {
                Err(format!("data source `{name}` has no driver running ({note}): nothing was executed"))
            }
            _ => Err(format!("data source `{name}` offers no actions")),
        }
    }

    /// The reactive policies' settings, by engine name.
    pub fn reactive(&self, policy: &str) -> Option<Policy> {
        let st = lock(&self.state);
        st.policies.values().map(|e| &e.policy).find(|p| engine_name(&p.name_any()) == policy).cloned()
    }
}

fn with_uid<K: kube::Resource>(mut o: K) -> K {
    if o.meta().uid.is_none() {
        o.meta_mut().uid = Some(uuid::Uuid::new_v4().to_string());
    }
    if o.meta().creation_timestamp.is_none() {
        o.meta_mut().creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
    }
    o
}

fn parse_all<T: serde::de::DeserializeOwned>(list: Result<Vec<Value>, StoreError>) -> Result<Vec<T>, String> {
    list.map_err(|e| e.to_string())?
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(|e| format!("database: an unreadable object: {e}")))
        .collect()
}

fn change_error(e: ChangeError) -> ApiError {
    match e {
        ChangeError::Rejected(e) => e.into(),
        ChangeError::Unavailable(u) => u.into(),
    }
}

impl Backend for Standalone {
    fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    fn policies(&self) -> Reply<'_, Vec<PolicyEntry>> {
        let all = lock(&self.state).policies.values().cloned().collect();
        async move { Ok(all) }.boxed()
    }

    fn create_policy(&self, policy: Policy) -> Reply<'_, PolicyEntry> {
        async move {
            let _w = self.writes.lock().await;
            let name = policy.name_any();
            let taken = self.entry(&name).is_some()
                || lock(&self.state).datasources.keys().any(|d| engine_name(d) == engine_name(&name));
            let system = self
                .engine
                .run({
                    let n = engine_name(&name);
                    move |e| e.policy_kind(&n).is_some()
                })
                .await?;
            if taken || system {
                return Err(ApiError::conflict("policy_exists", format!("Policy with name {name} already exists")));
            }
            let mut policy = with_uid(policy);
            let library: Vec<LibraryPolicy> = lock(&self.state).library.values().cloned().collect();
            self.load_policy(&policy, &library, false).await?;
            if let Some(r) = &mut policy.spec.library_ref
                && r.version.is_none()
            {
                r.version = library.iter().find(|l| l.name_any() == r.name).map(|l| l.spec.version().to_string());
            }
            if let Err(e) = self.store.put(Kind::Policy, &name, &json!(policy)) {
                let _ = self.engine.remove(&engine_name(&name)).await;
                return Err(store_err(e));
            }
            let entry = PolicyEntry { policy, problem: None };
            lock(&self.state).policies.insert(name, entry.clone());
            Ok(entry)
        }
        .boxed()
    }

    fn update_policy(&self, policy: Policy) -> Reply<'_, PolicyEntry> {
        async move {
            let _w = self.writes.lock().await;
            let name = policy.name_any();
            if self.entry(&name).is_none() {
                return Err(ApiError::no_policy(&name));
            }
            let library: Vec<LibraryPolicy> = lock(&self.state).library.values().cloned().collect();
            self.load_policy(&policy, &library, true).await?;
            self.store.put(Kind::Policy, &name, &json!(policy)).map_err(store_err)?;
            let entry = PolicyEntry { policy, problem: None };
            lock(&self.state).policies.insert(name, entry.clone());
            Ok(entry)
        }
        .boxed()
    }

    fn delete_policy<'a>(&'a self, name: &'a str) -> Reply<'a, Policy> {
        async move {
            let _w = self.writes.lock().await;
            let entry = self.entry(name).ok_or_else(|| ApiError::no_policy(name))?;
            self.history.set_cause(format!("policy {name} deleted"));
            if entry.policy.annotations().get(convert::OWNER).is_some_and(|o| o == "system") {
                return Err(ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    1019,
                    "rule_not_permitted",
                    format!("cannot delete system-maintained policy {name}"),
                ));
            }
            self.engine.remove(&engine_name(name)).await.map_err(change_error)?;
            self.store.delete(Kind::Policy, name).map_err(store_err)?;
            lock(&self.state).policies.remove(name);
            Ok(entry.policy)
        }
        .boxed()
    }

    fn library(&self) -> Reply<'_, Vec<LibraryPolicy>> {
        let all = lock(&self.state).library.values().cloned().collect();
        async move { Ok(all) }.boxed()
    }

    fn put_library(&self, policy: LibraryPolicy, create: bool) -> Reply<'_, LibraryPolicy> {
        async move {
            let _w = self.writes.lock().await;
            let name = policy.name_any();
            let exists = lock(&self.state).library.contains_key(&name);
            if create && exists {
                return Err(ApiError::conflict(
                    "library_policy_exists",
                    format!("library policy {name} already exists"),
                ));
            }
            // The rules must at least load on their own (unknown tables are fine).
            loader::library_statements(&policy.spec).map_err(ApiError::bad_request)?;
            let policy = with_uid(policy);
            self.store.put(Kind::LibraryPolicy, &name, &json!(policy)).map_err(store_err)?;
            lock(&self.state).library.insert(name, policy.clone());
            Ok(policy)
        }
        .boxed()
    }

    fn delete_library<'a>(&'a self, name: &'a str) -> Reply<'a, LibraryPolicy> {
        async move {
            let _w = self.writes.lock().await;
            let l = lock(&self.state).library.get(name).cloned();
            let l = l.ok_or_else(|| ApiError::not_found(format!("library policy {name} does not exist")))?;
            self.store.delete(Kind::LibraryPolicy, name).map_err(store_err)?;
            lock(&self.state).library.remove(name);
            Ok(l)
        }
        .boxed()
    }

    fn datasources(&self) -> Reply<'_, Vec<DatasourceEntry>> {
        let all: Vec<StoredSource> = lock(&self.state).datasources.values().cloned().collect();
        let entries = all.iter().map(|s| self.source_entry(s)).collect();
        async move { Ok(entries) }.boxed()
    }

    fn create_datasource(&self, mut datasource: Datasource) -> Reply<'_, DatasourceEntry> {
        async move {
            let _w = self.writes.lock().await;
            let secrets: BTreeMap<String, String> = datasource
                .annotations_mut()
                .remove(super::v1::SECRETS_IN_TRANSIT)
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            let name = datasource.name_any();
            if lock(&self.state).datasources.contains_key(&name) {
                return Err(ApiError::conflict("datasource_exists", format!("data source {name} already exists")));
            }
            if datasource.spec.schema().is_empty() {
                return Err(ApiError::bad_request(format!(
                    "data source {name}: driver `{}` has no tables (give `tables` for a `push` data source)",
                    datasource.spec.driver
                )));
            }
            let stored = StoredSource { object: with_uid(datasource), secrets };
            self.load_datasource(&stored, vec![]).await?;
            if let Err(e) = self.store.put(Kind::Datasource, &name, &json!(stored)) {
                lock(&self.drivers).remove(&name);
                let _ = self.engine.remove(&engine_name(&name)).await;
                return Err(store_err(e));
            }
            lock(&self.state).datasources.insert(name, stored.clone());
            Ok(self.source_entry(&stored))
        }
        .boxed()
    }

    fn delete_datasource<'a>(&'a self, name: &'a str) -> Reply<'a, Datasource> {
        async move {
            let _w = self.writes.lock().await;
            let s = lock(&self.state).datasources.get(name).cloned();
            let s = s.ok_or_else(|| ApiError::not_found(format!("data source {name} does not exist")))?;
            self.history.set_cause(format!("datasource {name} deleted"));
            lock(&self.drivers).remove(name);
            self.engine.remove(&engine_name(name)).await.map_err(change_error)?;
            self.store.delete(Kind::Datasource, name).map_err(store_err)?;
            let mut st = lock(&self.state);
            st.datasources.remove(name);
            st.pushed.remove(name);
            Ok(s.object)
        }
        .boxed()
    }

    fn replace_rows<'a>(&'a self, datasource: &'a str, table: &'a str, rows: Vec<Vec<Value>>) -> Reply<'a, ()> {
        async move {
            let _w = self.writes.lock().await;
            let engine = engine_name(datasource);
            let values: Vec<Vec<EValue>> =
                rows.iter().map(|r| r.iter().map(EValue::from_json_congress).collect()).collect();
            let n = values.len();
            let (e, t) = (engine.clone(), table.to_string());
            self.history.set_cause(format!("datasource {datasource} (rows of {table} replaced)"));
            self.engine
                .change(false, move |_, txn| {
                    txn.replace_table(&e, &t, values);
                })
                .await
                .map_err(change_error)?;
            self.store.put_rows(datasource, table, &json!(rows)).map_err(store_err)?;
            let mut st = lock(&self.state);
            st.pushed.entry(datasource.to_string()).or_default().insert(table.to_string(), n);
            *st.pushes.entry(datasource.to_string()).or_default() += 1;
            Ok(())
        }
        .boxed()
    }

    fn refresh<'a>(&'a self, datasource: &'a str) -> Reply<'a, ()> {
        async move {
            match lock(&self.drivers).get(datasource).and_then(|d| d.refresh.clone()) {
                Some(r) => {
                    r.notify_one();
                    Ok(())
                }
                None => {
                    Err(ApiError::bad_request(format!("data source {datasource} is not polled: nothing to refresh")))
                }
            }
        }
        .boxed()
    }

    fn execute<'a>(&'a self, name: &'a str, args: ActionArgs, policy: Option<&'a str>) -> Reply<'a, ActionView> {
        async move { self.actions.by_hand(self, name, args, policy).await }.boxed()
    }

    fn action_requests(&self) -> Reply<'_, Vec<ActionView>> {
        async move { Ok(self.actions.list()) }.boxed()
    }

    fn decide<'a>(&'a self, id: &'a str, approve: bool) -> Reply<'a, ActionView> {
        async move { self.actions.decide(self, id, approve).await }.boxed()
    }

    fn history(&self, filter: HistoryFilter) -> Reply<'_, Vec<HistoryRecord>> {
        async move { self.history.read(filter).map_err(store_err) }.boxed()
    }

    fn first_seen<'a>(&'a self, policy: &'a str) -> Reply<'a, HashMap<String, String>> {
        async move { Ok(self.history.first_seen(policy)) }.boxed()
    }
}
