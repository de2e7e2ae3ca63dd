//! The `Datasource` reconciler: creates the datasource's tables in the engine and runs its
//! driver (every replica, so a standby's engine is warm); the leader writes its status
//! (tables with columns and row counts, last sync, last error, conditions).
//!
//! A spec change restarts the driver on fresh, empty tables (the driver's first listing
//! fills them again in one transaction). Drivers other than `kubernetes` are not built into
//! the operator yet: their tables are created from `spec.tables`, so policies over them load,
//! and the status says the driver is unsupported.

use super::engine::ChangeError;
use super::{Context, condition, engine_name, lock};
use congress_drivers::kubernetes;
use congress_drivers::{DriverStatus, Sink};
use congress_engine::{EngineError, PolicyKind};
use congress_model::resources::{API_VERSION, Datasource, DatasourceStatus, TableStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The finalizer that removes a datasource's tables.
pub const FINALIZER: &str = "congress.dev/datasource";

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
    task: Option<JoinHandle<()>>,
}

impl Drop for DriverHandle {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl DriverHandle {
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
    let spec = serde_json::to_string(&ds.spec).unwrap_or_default();
    let running = lock(&ctx.drivers).get(&name).is_some_and(|h| h.spec == spec);
    if !running {
        start(ctx, &name, &engine, ds, spec).await;
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
    let engine = engine_name(name);
    if let Err(e) = ctx.engine.remove(&engine).await {
        tracing::warn!(datasource = %name, error = %e, "could not remove the tables");
    }
}

async fn start(ctx: &Arc<Context>, name: &str, engine: &str, ds: &Datasource, spec: String) {
    lock(&ctx.drivers).remove(name);
    let (tx, rx) = watch::channel(DriverStatus::default());
    let mut handle = DriverHandle { spec, status: rx, failure: None, task: None };
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
                        handle.task = Some(tokio::spawn(run_kubernetes(ctx.clone(), name.to_string(), source, tx)))
                    }
                },
            },
            other => {
                handle.failure = Some(("UnsupportedDriver", format!("driver `{other}` is not built into the operator")))
            }
        },
    }
    if let Some((reason, message)) = &handle.failure {
        tracing::warn!(datasource = %name, reason, message = %message, "driver not started");
    } else {
        tracing::info!(datasource = %name, driver = %ds.spec.driver, "driver started");
    }
    lock(&ctx.drivers).insert(name.to_string(), handle);
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
