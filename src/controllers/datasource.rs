//! The `Datasource` reconciler: creates the datasource's tables in the engine and runs its
//! driver (every replica, so a standby's engine is warm); the leader writes its status
//! (tables with columns and row counts, last sync, last error, conditions).
//!
//! Drivers: `kubernetes` (watched), `http` and the OpenStack drivers shipped as `http`
//! configurations (`nova`, `neutronv2`, `glancev2`, `cinder`, `keystonev3`: polled, with
//! credentials from `spec.credentialsSecretRef`). A spec change, or a change of the Secret,
//! restarts the driver on fresh, empty tables (the driver's first listing fills them again in
//! one transaction). Setting the annotation `congress.dev/refresh` to a new value polls at
//! once. Other drivers get their tables from `spec.tables`, so policies over them load, and
//! the status says the driver is unsupported.

use super::action_request::Owner;
use super::engine::ChangeError;
use super::{Context, condition, engine_name, lock};
use congress_drivers::credentials::Credentials;
use congress_drivers::execute::Executor;
use congress_drivers::http::HttpDriver;
use congress_drivers::http_actions::HttpExecutor;
use congress_drivers::kubernetes_actions::KubernetesExecutor;
use congress_drivers::{DriverStatus, Sink, kubernetes, poll};
use congress_engine::{EngineError, PolicyKind};
use congress_model::resources::{API_VERSION, Datasource, DatasourceStatus, TableStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The finalizer that removes a datasource's tables.
pub const FINALIZER: &str = "congress.dev/datasource";
/// A credentials Secret lists the Datasources that may use it in this annotation
/// (comma-separated names, or `*`).
pub const SECRET_USERS_ANNOTATION: &str = "congress.dev/datasources";
/// Setting this annotation to a new value asks a polled driver to poll now.
pub const REFRESH_ANNOTATION: &str = "congress.dev/refresh";

/// Why a Datasource reconcile failed (it is retried with backoff). A driver that cannot run
/// is not an error of the reconcile: it is reported in the status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("setting the finalizer: {0}")]
    Finalizer(#[source] kube::Error),
    #[error("writing the status: {0}")]
    WriteStatus(#[source] kube::Error),
}

impl super::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Finalizer(_) => "Finalizer",
            Error::WriteStatus(_) => "WriteStatus",
        }
    }
}

/// A running driver.
pub struct DriverHandle {
    /// The spec it runs (JSON), to tell when it must restart.
    spec: String,
    pub status: watch::Receiver<DriverStatus>,
    /// Why the driver cannot run (a bad mapping, an unknown driver).
    pub failure: Option<(&'static str, String)>,
    /// Wakes a polled driver for an on-demand poll.
    refresh: Option<Arc<Notify>>,
    /// The value of the refresh annotation last acted on.
    refresh_seen: Option<String>,
    tasks: Vec<JoinHandle<()>>,
    /// The driver's name (`nova`, `kubernetes`).
    driver: String,
    /// What runs the datasource's actions, when its driver can act.
    executor: Option<Arc<dyn Executor>>,
}

impl Drop for DriverHandle {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl DriverHandle {
    /// Who runs this datasource's actions.
    pub fn owner(&self) -> Owner {
        if let Some(e) = &self.executor {
            return Owner::Ready(e.clone());
        }
        if let Some((reason, message)) = &self.failure {
            return Owner::NotReady(format!("{reason}: {message}"));
        }
        Owner::CannotAct(format!("driver `{}` offers no actions", self.driver))
    }

    /// Its tables `tables` hold a complete listing (or it cannot run, and never will fill
    /// them): it has synced, and a driver that fetches only what policies read has fetched
    /// each of them (not so a table that a policy began to read since its last good poll).
    pub fn listed(&self, tables: &[String]) -> bool {
        if self.failure.is_some() {
            return true;
        }
        let status = self.status.borrow();
        status.synced && status.listed.as_ref().is_none_or(|l| tables.iter().all(|t| l.contains(t)))
    }

    /// Synced, or failing (so it must not hold the other datasources' policies back: a
    /// datasource whose kind is not served, or that may not be listed, reports its error and
    /// the rest publish).
    pub fn settled(&self) -> bool {
        let status = self.status.borrow();
        self.failure.is_some() || status.synced || status.last_error.is_some()
    }
}

pub async fn reconcile(ds: Arc<Datasource>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::debug_span!("reconcile", kind = "Datasource", name = %ds.name_any());
    super::timed(&ctx, &*ds, tracing::Instrument::instrument(reconcile_inner(&ds, &ctx), span)).await
}

async fn reconcile_inner(ds: &Datasource, ctx: &Arc<Context>) -> Result<Action, Error> {
    let name = ds.name_any();
    let engine = engine_name(&name);
    if ds.meta().deletion_timestamp.is_some() {
        stop(ctx, &name).await;
        if ctx.is_leader() {
            super::set_finalizer(ctx, ds, FINALIZER, false).await.map_err(Error::Finalizer)?;
        }
        return Ok(Action::await_change());
    }
    if ctx.is_leader() {
        super::set_finalizer(ctx, ds, FINALIZER, true).await.map_err(Error::Finalizer)?;
    }
    let credentials = read_credentials(ctx, ds).await;
    let version = credentials.as_ref().map_or_else(|e| format!("error: {}", e.1), |(_, v)| v.clone());
    let spec_json = serde_json::to_string(&ds.spec).unwrap_or_default();
    let spec = format!("{spec_json}\n{version}");
    let running = lock(&ctx.drivers).get(&name).is_some_and(|h| {
        // A Secret that cannot be read just now (the API server) leaves a running driver be:
        // a restart would start its tables empty.
        h.spec == spec
            || (matches!(&credentials, Err(("SecretUnreadable", _))) && h.spec.starts_with(&format!("{spec_json}\n")))
    });
    if !running {
        start(ctx, &name, &engine, ds, spec, credentials.map(|(c, _)| c)).await;
    }
    let wanted = ds.annotations().get(REFRESH_ANNOTATION).cloned();
    if let Some(h) = lock(&ctx.drivers).get_mut(&name)
        && h.refresh_seen != wanted
    {
        if let Some(refresh) = &h.refresh {
            tracing::info!(datasource = %name, "refresh requested");
            refresh.notify_one();
        }
        h.refresh_seen = wanted;
    }
    let (status, failure) = {
        let drivers = lock(&ctx.drivers);
        match drivers.get(&name) {
            Some(h) => (h.status.borrow().clone(), h.failure.clone()),
            None => (DriverStatus::default(), None),
        }
    };
    if ctx.is_leader() {
        write_status(ds, ctx, &status, failure.as_ref()).await?;
    }
    Ok(Action::requeue(if status.synced || failure.is_some() {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(2)
    }))
}

async fn stop(ctx: &Context, name: &str) {
    lock(&ctx.drivers).remove(name);
    lock(&ctx.pushes).remove(name);
    let engine = engine_name(name);
    if let Err(e) = ctx.engine.remove(&engine).await {
        tracing::warn!(datasource = %name, error = %e, "could not remove the tables");
    }
}

/// The driver's credentials and the Secret's resourceVersion (a new version restarts the
/// driver); none without `credentialsSecretRef`. The error carries a reason and a message
/// that names the Secret, never its content.
async fn read_credentials(ctx: &Context, ds: &Datasource) -> Result<(Credentials, String), (&'static str, String)> {
    let Some(r) = &ds.spec.credentials_secret_ref else {
        return Ok((Credentials::default(), String::new()));
    };
    // The Secret says which Datasources may use it.
    let name = ds.name_any();
    let who = format!("Datasource `{name}`");
    let data = super::listed_secret(ctx, r, SECRET_USERS_ANNOTATION, &name, &who).await.map_err(|(why, m)| {
        let reason = match why {
            "NotFound" => "SecretNotFound",
            "Unreadable" => "SecretUnreadable",
            _ => "SecretNotAllowed",
        };
        (reason, m)
    })?;
    // The driver restarts when the values change (not on every metadata edit): a digest of
    // them, which reveals nothing of them.
    let version = {
        use std::hash::BuildHasher;
        format!("{:016x}", ctx.digest_key.hash_one(&data))
    };
    Credentials::from_bytes(data).map(|c| (c, version)).map_err(|e| ("InvalidSecret", e.to_string()))
}

async fn start(
    ctx: &Arc<Context>,
    name: &str,
    engine: &str,
    ds: &Datasource,
    spec: String,
    credentials: Result<Credentials, (&'static str, String)>,
) {
    lock(&ctx.drivers).remove(name);
    lock(&ctx.pushes).remove(name);
    let (tx, rx) = watch::channel(DriverStatus::default());
    let mut handle = DriverHandle {
        spec,
        status: rx,
        failure: None,
        refresh: None,
        refresh_seen: None,
        tasks: vec![],
        driver: ds.spec.driver.clone(),
        executor: None,
    };
    handle.refresh_seen = ds.annotations().get(REFRESH_ANNOTATION).cloned();
    let schema = ds.spec.schema();
    let table = engine.to_string();
    // A datasource restarts on fresh, empty tables; a policy of that name is never replaced.
    let created = ctx
        .engine
        .change(true, move |before, txn| {
            if before.policy_kind(&table) == Some(PolicyKind::Datasource) {
                txn.delete_policy(&table);
            }
            txn.create_datasource(&table, schema);
        })
        .await;
    if created.is_ok() {
        // Policies that did not load for want of this datasource's schema load now.
        ctx.retry_unloaded_policies();
    }
    match created {
        Err(ChangeError::Rejected(EngineError::PolicyExists(_))) => {
            handle.failure = Some(("NameConflict", format!("`{engine}` is already the name of a policy")));
        }
        Err(e) => handle.failure = Some(("Rejected", e.to_string())),
        Ok(_) => match ds.spec.driver.as_str() {
            "kubernetes" => match ds.spec.kubernetes.clone() {
                None => handle.failure = Some(("InvalidSpec", "driver `kubernetes` needs `spec.kubernetes`".into())),
                Some(source) => match kubernetes::translators(&source) {
                    Err(e) => handle.failure = Some(("InvalidMapping", e.to_string())),
                    Ok(_) => {
                        handle.executor = Some(Arc::new(KubernetesExecutor::new(ctx.client.clone())));
                        handle.tasks.push(tokio::spawn(run_kubernetes(ctx.clone(), name.to_string(), source, tx)));
                    }
                },
            },
            "push" => match push_endpoint(ds, engine, credentials, tx) {
                Err(failure) => handle.failure = Some(failure),
                Ok(endpoint) => {
                    lock(&ctx.pushes).insert(name.to_string(), Arc::new(endpoint));
                    let object = kube::runtime::reflector::ObjectRef::from_obj(ds);
                    handle.tasks.push(tokio::spawn(report_polls(ctx.clone(), object, handle.status.clone())));
                }
            },
            other => match (ds.spec.http_source(), credentials, ds.spec.conflicting_tables()) {
                (Err(e), _, _) => handle.failure = Some(("InvalidSpec", e.to_string())),
                (Ok(None), _, _) => {
                    handle.failure =
                        Some(("UnsupportedDriver", format!("driver `{other}` is not built into the operator")))
                }
                (Ok(Some(_)), _, conflicts) if !conflicts.is_empty() => {
                    let tables = conflicts.join(", ");
                    handle.failure = Some(("InvalidSpec", format!("`spec.tables` does not fit the driver: {tables}")));
                }
                (Ok(Some(_)), Err(failure), _) => handle.failure = Some(failure),
                (Ok(Some(source)), Ok(credentials), _) => {
                    match (HttpDriver::new(&source, &ds.spec.config, &credentials), executor(&source, ds, &credentials))
                    {
                        (Err(e), _) | (_, Err(e)) => handle.failure = Some(("InvalidSpec", e.to_string())),
                        (Ok(driver), Ok(executor)) => {
                            handle.executor = executor;
                            let refresh = Arc::new(Notify::new());
                            handle.refresh = Some(refresh.clone());
                            let sink: Arc<dyn Sink> = ctx.engine.clone();
                            let schedule = poll::Schedule::from_seconds(ds.spec.poll_interval_seconds);
                            handle.tasks.push(tokio::spawn(poll::run(
                                Arc::new(driver),
                                engine.to_string(),
                                sink,
                                schedule,
                                refresh,
                                tx,
                            )));
                            let object = kube::runtime::reflector::ObjectRef::from_obj(ds);
                            handle.tasks.push(tokio::spawn(report_polls(ctx.clone(), object, handle.status.clone())));
                        }
                    }
                }
            },
        },
    }
    if let Some((reason, message)) = &handle.failure {
        tracing::warn!(datasource = %name, reason, message = %message, "driver not started");
    } else {
        tracing::info!(datasource = %name, driver = %ds.spec.driver, "driver started");
    }
    lock(&ctx.drivers).insert(name.to_string(), handle);
}

/// The executor of an `http` datasource (the OpenStack ones included) that offers actions.
fn executor(
    source: &congress_model::resources::HttpSource,
    ds: &Datasource,
    credentials: &Credentials,
) -> Result<Option<Arc<dyn Executor>>, congress_drivers::http::HttpDriverError> {
    if source.actions.is_empty() {
        return Ok(None);
    }
    let executor = HttpExecutor::new(source, &ds.spec.config, credentials)?.with_name(ds.name_any());
    Ok(Some(Arc::new(executor)))
}

/// The endpoint of a `push` datasource: its tables are `spec.tables`; who may push is
/// `spec.push.auth` (default `bearer`, the Secret's `token`).
fn push_endpoint(
    ds: &Datasource,
    engine: &str,
    credentials: Result<Credentials, (&'static str, String)>,
    status: watch::Sender<DriverStatus>,
) -> Result<super::push::PushEndpoint, (&'static str, String)> {
    let settings = ds.spec.push.clone().unwrap_or_default();
    let auth = match settings.auth.as_deref().unwrap_or("bearer") {
        "bearer" => {
            let credentials = credentials?;
            let token = credentials.require("token", "push bearer auth").map_err(|e| ("InvalidSpec", e.to_string()))?;
            super::push::PushAuth::Bearer(token.clone())
        }
        "serviceAccount" => super::push::PushAuth::ServiceAccount(settings.allowed_users.clone()),
        other => return Err(("InvalidSpec", format!("unknown push auth `{other}` (use bearer or serviceAccount)"))),
    };
    if ds.spec.tables.is_empty() {
        return Err(("InvalidSpec", "a `push` datasource declares its tables in `spec.tables`".into()));
    }
    status.send_modify(|s| s.synced = true);
    Ok(super::push::PushEndpoint {
        engine_name: engine.to_string(),
        auth,
        max_body: settings.max_body_bytes.unwrap_or(super::push::DEFAULT_MAX_BODY),
        state: tokio::sync::Mutex::new(congress_drivers::push::PushState::new(engine, ds.spec.schema())),
        status,
    })
}

/// Export a polled driver's status as metrics, and reconcile the Datasource when what its
/// status shows changes (a poll failed or recovered, row counts moved).
async fn report_polls(
    ctx: Arc<Context>,
    object: kube::runtime::reflector::ObjectRef<Datasource>,
    mut updates: watch::Receiver<DriverStatus>,
) {
    let name = object.name.clone();
    let label = super::metrics::DatasourceLabel { datasource: name.clone() };
    let mut last = DriverStatus::default();
    while updates.changed().await.is_ok() {
        let s = updates.borrow_and_update().clone();
        if s.polls > last.polls {
            ctx.metrics.poll_seconds.get_or_create(&label).observe(s.last_poll_seconds);
            ctx.metrics.poll_rows_changed.get_or_create(&label).inc_by(s.rows_changed);
            ctx.metrics.sync_lag_seconds.get_or_create(&label).set(s.lag_seconds);
        }
        if s.errors > last.errors {
            let reason = s.failure_reason.clone().unwrap_or_default();
            let failures = super::metrics::DatasourceReasonLabel { datasource: name.clone(), reason };
            ctx.metrics.poll_failures.get_or_create(&failures).inc_by(s.errors - last.errors);
            ctx.metrics.sync_errors.get_or_create(&label).inc_by(s.errors - last.errors);
        }
        let shown = |d: &DriverStatus| (d.synced, d.failure_reason.clone(), d.last_error.clone(), d.rows.clone());
        if shown(&s) != shown(&last) {
            ctx.trigger_datasource(object.clone());
        }
        last = s;
    }
}

/// Run the kubernetes driver, restarting it when it stops with an error.
async fn run_kubernetes(
    ctx: Arc<Context>,
    name: String,
    source: congress_model::resources::KubernetesSource,
    status: watch::Sender<DriverStatus>,
) {
    let label = super::metrics::DatasourceLabel { datasource: name.clone() };
    let mut seen_errors = 0;
    let mut updates = status.subscribe();
    let metrics = ctx.metrics.clone();
    let label2 = label.clone();
    // Export the driver's status as metrics (ends when the driver task, and so `status`, goes).
    tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let s = updates.borrow().clone();
            metrics.sync_lag_seconds.get_or_create(&label2).set(s.lag_seconds);
            if s.errors > seen_errors {
                metrics.sync_errors.get_or_create(&label2).inc_by(s.errors - seen_errors);
                seen_errors = s.errors;
            }
        }
    });
    loop {
        let sink: Arc<dyn Sink> = ctx.engine.clone();
        let result = kubernetes::run(
            ctx.client.clone(),
            engine_name(&name),
            source.clone(),
            sink,
            ctx.objects.clone(),
            status.clone(),
        )
        .await;
        if let Err(e) = result {
            tracing::warn!(datasource = %name, error = %e, "driver stopped; restarting");
            ctx.metrics.sync_errors.get_or_create(&label).inc();
            status.send_modify(|s| s.last_error = Some(e.to_string()));
        }
        tokio::time::sleep(kubernetes::RESTART_DELAY).await;
    }
}

async fn write_status(
    ds: &Datasource,
    ctx: &Context,
    driver: &DriverStatus,
    failure: Option<&(&'static str, String)>,
) -> Result<(), Error> {
    let old = ds.status.clone().unwrap_or_default();
    let generation = ds.meta().generation;
    let ready = match (failure, driver.synced) {
        (Some((reason, message)), _) => condition(&old, "Ready", "False", reason, message, generation),
        (None, _) if driver.failure_reason.is_some() => {
            let reason = driver.failure_reason.as_deref().unwrap_or("PollFailed");
            let message = format!(
                "{}; the tables keep their last good rows",
                driver.last_error.as_deref().unwrap_or("the last poll failed")
            );
            condition(&old, "Ready", "False", reason, &message, generation)
        }
        (None, true) => condition(&old, "Ready", "True", "Synced", "the tables hold what the driver sees", generation),
        (None, false) => {
            condition(&old, "Ready", "False", "Syncing", "waiting for the first complete listing", generation)
        }
    };
    let tables = ds
        .spec
        .schema()
        .into_iter()
        .map(|(name, columns)| TableStatus { rows: driver.rows.get(&name).copied().unwrap_or(0), name, columns })
        .collect();
    let status = DatasourceStatus {
        conditions: vec![ready],
        tables,
        last_sync_time: driver.last_sync.clone().or(old.last_sync_time.clone()),
        last_error: driver.last_error.clone().or_else(|| failure.map(|f| f.1.clone())),
        observed_generation: generation,
        failures: (driver.errors > 0 || driver.polls > 0).then_some(driver.errors),
        consecutive_failures: (driver.errors > 0 || driver.polls > 0).then_some(driver.consecutive_errors),
        last_poll_seconds: (driver.polls > 0).then(|| format!("{:.3}", driver.last_poll_seconds)),
    };
    if status != old {
        let api: Api<Datasource> = Api::all(ctx.client.clone());
        let body = json!({"apiVersion": API_VERSION, "kind": "Datasource", "status": status});
        api.patch_status(&ds.name_any(), &PatchParams::apply(super::reports::MANAGER).force(), &Patch::Apply(&body))
            .await
            .map_err(Error::WriteStatus)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(status: DriverStatus, failure: Option<(&'static str, String)>) -> DriverHandle {
        let (_tx, rx) = watch::channel(status);
        DriverHandle {
            spec: String::new(),
            status: rx,
            failure,
            refresh: None,
            refresh_seen: None,
            tasks: vec![],
            driver: "http".into(),
            executor: None,
        }
    }

    #[test]
    fn a_table_is_listed_once_fetched_not_merely_once_the_driver_synced() {
        let tables = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // An http driver whose first poll fetched nothing (no policy read it yet) has synced,
        // but has not listed the table a policy reads now.
        let polled_nothing = DriverStatus { synced: true, listed: Some(Default::default()), ..Default::default() };
        assert!(!handle(polled_nothing, None).listed(&tables(&["things"])));
        let polled = DriverStatus {
            synced: true,
            listed: Some(["things".to_string()].into_iter().collect()),
            ..Default::default()
        };
        assert!(handle(polled.clone(), None).listed(&tables(&["things"])));
        assert!(!handle(polled, None).listed(&tables(&["things", "other"])));
        // Drivers that list everything at once: synced is enough; not synced is not.
        let watched = DriverStatus { synced: true, listed: None, ..Default::default() };
        assert!(handle(watched, None).listed(&tables(&["pods"])));
        assert!(!handle(DriverStatus::default(), None).listed(&[]));
        // A driver that cannot run never fills its tables, and holds nothing back.
        assert!(handle(DriverStatus::default(), Some(("InvalidSpec", "x".into()))).listed(&tables(&["t"])));
    }
}
