//! `congress operator`: the reconcilers and what they share.
//!
//! One engine per replica ([`engine::SharedEngine`]), fed by datasource drivers and
//! policies; one reconciler per kind ([`policy`], [`datasource`]); leader election
//! ([`leader`]) decides which replica writes; [`metrics`] serves `/metrics`, `/healthz` and
//! `/readyz`. Data flows one way: drivers -> engine -> the policies whose `error` rows
//! changed are reconciled -> status, reports, events.

pub mod action_request;
pub mod datasource;
pub mod engine;
pub mod events;
pub mod history;
pub mod leader;
pub mod library;
pub mod metrics;
pub mod outputs;
pub mod policy;
pub mod push;
pub mod reactor;
pub mod reports;
pub mod webhook;

use congress_drivers::kubernetes::ObjectIndex;
use congress_model::resources::{ActionRequest, Condition, Datasource, LibraryPolicy, Policy, PolicyStatus};
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A reconcile error, counted by cause in `congress_reconcile_errors_total{kind, reason}`.
/// Each controller has its own enum; `reason` is the variant's name.
pub trait ReconcileError: std::error::Error + Send + Sync + 'static {
    fn reason(&self) -> &'static str;
}

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    pub http_addr: SocketAddr,
    /// None: no election, this replica always leads.
    pub lease: Option<leader::LeaseConfig>,
    /// The operator's namespace: where a `credentialsSecretRef` without one is looked up.
    pub namespace: String,
    /// False: the kill switch is on; no ActionRequest is created or run.
    pub actions_enabled: bool,
    /// How long finished ActionRequests are kept (once their row is gone).
    pub action_retention: Duration,
    /// Where the shipped policy library is, to install as LibraryPolicies (none: no sync).
    pub library: Option<library::LibrarySource>,
    /// The admission webhook (none: not served).
    pub webhook: Option<webhook::server::WebhookSettings>,
    /// Congress's REST API on the HTTP server (none: not served; push datasources still are).
    pub api: Option<ApiSettings>,
}

/// How the operator serves the REST API.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// The largest request body.
    pub max_body: usize,
    /// Where the dashboard's files are read from (none: the ones compiled in).
    pub ui_dir: Option<std::path::PathBuf>,
}

/// What reconcilers and drivers share.
pub struct Context {
    pub client: Client,
    pub engine: Arc<engine::EngineHandle>,
    pub metrics: Arc<metrics::Metrics>,
    pub objects: Arc<ObjectIndex>,
    /// This replica's name (events, the lease).
    pub identity: String,
    leader: watch::Receiver<bool>,
    policies: Mutex<HashMap<String, policy::PolicyState>>,
    drivers: Mutex<HashMap<String, datasource::DriverHandle>>,
    datasource_store: OnceLock<Store<Datasource>>,
    /// Reports and events, which the operator can live without.
    pub outputs: outputs::Outputs,
    backoff: Backoff,
    /// The operator's namespace.
    pub namespace: String,
    /// Asks for a Datasource reconcile (a driver's status changed).
    ds_trigger: mpsc::UnboundedSender<ObjectRef<Datasource>>,
    /// The `push` datasources' endpoints, by Datasource name.
    pub pushes: Mutex<HashMap<String, Arc<push::PushEndpoint>>>,
    /// Keys the digests of credentials (randomly, per process).
    pub digest_key: hashbrown::DefaultHashBuilder,
    /// Reactive enforcement's shared state.
    pub actions: action_request::Actions,
    /// Asks for a Policy reconcile.
    policy_trigger: mpsc::UnboundedSender<ObjectRef<Policy>>,
}

impl Context {
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Leadership changes of this replica.
    pub fn leader_updates(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Run `f` on `policy`'s state (created on first use).
    pub fn policy_state<T>(&self, policy: &str, f: impl FnOnce(&mut policy::PolicyState) -> T) -> T {
        f(lock(&self.policies).entry(policy.to_string()).or_default())
    }

    fn forget_policy(&self, policy: &str) {
        lock(&self.policies).remove(policy);
    }

    /// Reconcile `ds` soon (its driver's status changed).
    pub fn trigger_datasource(&self, ds: ObjectRef<Datasource>) {
        let _ = self.ds_trigger.send(ds);
    }

    /// Reconcile the Policy `name` soon.
    pub fn trigger_policy(&self, name: &str) {
        let _ = self.policy_trigger.send(ObjectRef::new(name));
    }

    /// Names of the policies this replica has state for.
    pub fn loaded_policies(&self) -> Vec<String> {
        lock(&self.policies).keys().cloned().collect()
    }

    /// Every Datasource has been seen and each driver has delivered its first listing (or
    /// cannot run), so the engine holds the cluster's state.
    pub fn datasources_synced(&self) -> bool {
        let Some(store) = self.datasource_store.get() else { return false };
        if store.wait_until_ready().now_or_never().is_none() {
            return false;
        }
        let drivers = lock(&self.drivers);
        store.state().iter().all(|ds| drivers.get(&ds.name_any()).is_some_and(|d| d.settled()))
    }
}

impl Context {
    /// Which of the datasources `read` (engine names, each with the tables of it that are
    /// read) have not delivered a complete listing of those tables yet (a driver whose first
    /// poll failed has not; one that cannot run at all never will, and does not hold
    /// anything back), as resource names.
    pub fn datasources_not_loaded(&self, read: &[(String, Vec<String>)]) -> Vec<String> {
        let drivers = lock(&self.drivers);
        read.iter()
            .map(|(engine, tables)| (resource_name(engine), tables))
            .filter(|(name, tables)| !drivers.get(name).is_some_and(|d| d.listed(tables)))
            .map(|(name, _)| name)
            .collect()
    }
}

/// Why a Secret named by a spec could not be used: the part of the reason after `Secret` /
/// `ContextSecret` (`NotFound`, `Unreadable`, `NotAllowed`) and a message naming the Secret,
/// never its content.
pub type SecretProblem = (&'static str, String);

/// The keys and values of Secret `r` (namespace: the operator's by default), provided its
/// annotation `annotation` lists `user` or `*` (an empty `user` matches only `*`): an object
/// of the cluster must not be able to send another's secrets to a host of its choosing.
/// `who` names the user in the refusal.
pub async fn listed_secret(
    ctx: &Context,
    r: &congress_model::resources::SecretRef,
    annotation: &str,
    user: &str,
    who: &str,
) -> Result<Vec<(String, Vec<u8>)>, SecretProblem> {
    let namespace = r.namespace.clone().unwrap_or_else(|| ctx.namespace.clone());
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret = match api.get_opt(&r.name).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(("NotFound", format!("Secret {namespace}/{} not found", r.name))),
        Err(e) => return Err(("Unreadable", format!("Secret {namespace}/{}: {}", r.name, kube_reason(&e)))),
    };
    let allowed = secret
        .annotations()
        .get(annotation)
        .is_some_and(|list| list.split(',').map(str::trim).any(|n| n == "*" || (!user.is_empty() && n == user)));
    if !allowed {
        return Err((
            "NotAllowed",
            format!("Secret {namespace}/{} does not list {who} in its annotation `{annotation}`", r.name),
        ));
    }
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .chain(secret.string_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())))
        .collect())
}

/// A kube error's reason without the request (which names nothing secret, but is noisy).
pub fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.reason, s.code),
        other => other.to_string(),
    }
}

pub use congress_model::{engine_name, now_rfc3339, resource_name};
use futures::FutureExt;

/// Lock one of the context's maps. Every lock in the operator is taken this one way: a
/// panic while holding it (a bug) leaves plain per-object bookkeeping that the next
/// reconcile rewrites, so the lock is recovered rather than poisoning the operator.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`lock`] for reading a `RwLock`.
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`lock`] for writing a `RwLock`.
pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let cut = (0..=max).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    &s[..cut]
}

/// A condition; keeps the old transition time when the status did not change.
pub fn condition(
    old: &impl HasConditions,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Condition {
    let previous = old.conditions().iter().find(|c| c.type_ == type_);
    let last_transition_time = match previous {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(now_rfc3339()),
    };
    let message = prefix(message, 4000).to_string();
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Statuses with conditions.
pub trait HasConditions {
    fn conditions(&self) -> &[Condition];
}

impl HasConditions for PolicyStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl HasConditions for congress_model::resources::ActionRequestStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl HasConditions for congress_model::resources::LibraryPolicyStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl HasConditions for congress_model::resources::DatasourceStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// Add (`present`) or remove `finalizer` on a cluster-scoped object, unless it already is
/// that way: a JSON merge patch of the list, guarded by the object's `resourceVersion` (a
/// stale object gets 409 Conflict and the reconcile is retried).
async fn set_finalizer<K>(ctx: &Context, obj: &K, finalizer: &str, present: bool) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let has = obj.finalizers().iter().any(|f| f == finalizer);
    if has == present {
        return Ok(());
    }
    let mut list: Vec<String> = obj.finalizers().iter().filter(|f| *f != finalizer).cloned().collect();
    if present {
        list.push(finalizer.to_string());
    }
    let api: Api<K> = Api::all(ctx.client.clone());
    let patch = serde_json::json!({"metadata": {"finalizers": list, "resourceVersion": obj.resource_version()}});
    match api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Run one reconcile of `obj`, recording its duration; a success resets its backoff.
async fn timed<K, T, E>(
    ctx: &Context,
    obj: &K,
    reconcile: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E>
where
    K: Resource<DynamicType = ()>,
{
    let started = std::time::Instant::now();
    let result = reconcile.await;
    let kind = K::kind(&()).into_owned();
    if result.is_ok() {
        ctx.backoff.succeeded(&kind, &obj.name_any());
    }
    ctx.metrics.reconcile_seconds.get_or_create(&metrics::KindLabel { kind }).observe(started.elapsed().as_secs_f64());
    result
}

/// A failed reconcile: count it by cause, retry after a backoff that doubles per
/// consecutive failure of the object, up to [`Backoff::CAP`].
fn error_policy<K, E>(obj: Arc<K>, error: &E, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
    E: ReconcileError,
{
    let kind = K::kind(&()).into_owned();
    let name = obj.name_any();
    let reason = error.reason();
    let delay = ctx.backoff.failed(&kind, &name);
    tracing::warn!(kind = %kind, name = %name, reason, error = %error, retry_in = ?delay, "reconcile failed");
    ctx.metrics.reconcile_errors.get_or_create(&metrics::ErrorLabel { kind, reason: reason.into() }).inc();
    Action::requeue(delay)
}

/// Consecutive failures per object, and the delay before its next try: [`Backoff::BASE`]
/// doubled per failure up to [`Backoff::CAP`], with up to a tenth more at random so that
/// objects failing together do not retry together.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<(String, String), u32>>,
}

impl Backoff {
    pub const BASE: Duration = Duration::from_millis(500);
    pub const CAP: Duration = Duration::from_secs(300);

    /// Record a failure of `kind`/`name` and return how long to wait.
    pub fn failed(&self, kind: &str, name: &str) -> Duration {
        let mut failures = lock(&self.failures);
        let n = failures.entry((kind.to_string(), name.to_string())).or_default();
        *n = n.saturating_add(1);
        let delay = Self::delay(*n);
        let jitter = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), (kind, name));
        delay + delay.mul_f64((jitter % 1000) as f64 / 10_000.0)
    }

    /// The delay after `n` consecutive failures, without jitter.
    pub fn delay(n: u32) -> Duration {
        let doubled = Self::BASE.saturating_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX));
        doubled.min(Self::CAP)
    }

    /// Record a success: the next failure starts from [`Backoff::BASE`] again.
    pub fn succeeded(&self, kind: &str, name: &str) {
        let mut failures = lock(&self.failures);
        if !failures.is_empty() {
            failures.remove(&(kind.to_string(), name.to_string()));
        }
    }
}

/// Run the operator until SIGTERM or SIGINT.
pub async fn run(config: OperatorConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = Client::try_default().await?;
    let metrics = Arc::new(metrics::Metrics::new());
    let (changed_tx, changed_rx) = mpsc::unbounded_channel::<String>();
    let (executes_tx, executes_rx) = mpsc::unbounded_channel::<Vec<engine::ExecuteDelta>>();
    let executes = config.actions_enabled.then_some(executes_tx);
    let engine = Arc::new(engine::EngineHandle::start_with(changed_tx.clone(), executes, metrics.clone())?);
    let (policy_trigger_tx, policy_trigger_rx) = mpsc::unbounded_channel::<ObjectRef<Policy>>();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (leader_tx, leader_rx) = watch::channel(config.lease.is_none());
    let identity = config.lease.as_ref().map_or_else(|| "congress-operator".to_string(), |l| l.identity.clone());
    let (ds_trigger_tx, ds_trigger_rx) = mpsc::unbounded_channel::<ObjectRef<Datasource>>();
    let ctx = Arc::new(Context {
        client: client.clone(),
        engine,
        metrics: metrics.clone(),
        objects: Arc::new(ObjectIndex::default()),
        identity,
        leader: leader_rx.clone(),
        policies: Mutex::new(HashMap::new()),
        drivers: Mutex::new(HashMap::new()),
        datasource_store: OnceLock::new(),
        outputs: outputs::Outputs::default(),
        backoff: Backoff::default(),
        namespace: config.namespace.clone(),
        ds_trigger: ds_trigger_tx.clone(),
        pushes: Mutex::new(HashMap::new()),
        digest_key: hashbrown::DefaultHashBuilder::default(),
        actions: action_request::Actions::new(config.actions_enabled, config.action_retention),
        policy_trigger: policy_trigger_tx.clone(),
    });
    metrics.actions_enabled.set(i64::from(config.actions_enabled));
    if !config.actions_enabled {
        tracing::warn!("the actions kill switch is on: no ActionRequest is created or run");
    }

    // HTTP endpoints.
    let listener = tokio::net::TcpListener::bind(config.http_addr).await?;
    let mut http_shutdown = shutdown_rx.clone();
    let routes = match &config.api {
        None => {
            tracing::info!(addr = %config.http_addr, "serving /metrics, /healthz, /readyz");
            metrics::router(metrics.clone()).merge(push::router(ctx.clone()))
        }
        Some(settings) => {
            tracing::info!(addr = %config.http_addr, "serving the API (/v1), /metrics, /healthz, /readyz");
            api_routes(&ctx, settings)
        }
    };
    let http = tokio::spawn(async move {
        let serve = axum::serve(listener, routes).with_graceful_shutdown(async move {
            let _ = http_shutdown.changed().await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    // Leader election.
    let election = config
        .lease
        .clone()
        .map(|lease| tokio::spawn(leader::run(client.clone(), lease, leader_tx.clone(), shutdown_rx.clone())));
    if config.lease.is_none() {
        ctx.metrics.leader.set(1);
    }

    // Datasources.
    let ds_controller = Controller::new(Api::<Datasource>::all(client.clone()), watcher::Config::default());
    let _ = ctx.datasource_store.set(ds_controller.store());

    // Policies: reconciled on change, when their violations change, when a LibraryPolicy
    // they name changes, and all at once on becoming leader.
    let policy_controller = Controller::new(Api::<Policy>::all(client.clone()), watcher::Config::default());
    let policy_store = policy_controller.store();
    let _ = ctx.actions.policies.set(policy_store.clone());
    let reports_back_tx = policy_trigger_tx.clone();
    let lib_store = policy_store.clone();
    let policy_controller = policy_controller
        .watches(Api::<LibraryPolicy>::all(client.clone()), watcher::Config::default(), move |lib| {
            // An archived version (`NAME.vVERSION`) is a version of NAME.
            let name = lib
                .labels()
                .get(congress_model::resources::library_policy::ARCHIVE_OF_LABEL)
                .cloned()
                .unwrap_or_else(|| lib.name_any());
            lib_store
                .state()
                .into_iter()
                .filter(|p| p.spec.library_ref.as_ref().is_some_and(|l| l.name == name))
                .map(|p| ObjectRef::from_obj(&*p))
                .collect::<Vec<_>>()
        })
        .reconcile_on(futures::stream::select(
            receiver_stream(changed_rx).map(|engine| ObjectRef::new(&resource_name(&engine))),
            receiver_stream(policy_trigger_rx),
        ));

    // ActionRequests: created by the reactor from execute rows, run by their reconciler.
    let ar_controller = Controller::new(Api::<ActionRequest>::all(client.clone()), watcher::Config::default());
    let _ = ctx.actions.requests.set(ar_controller.store());
    let (ar_trigger_tx, ar_trigger_rx) = mpsc::unbounded_channel::<ObjectRef<ActionRequest>>();
    let reactor = tokio::spawn(reactor::run(ctx.clone(), executes_rx));
    let library_sync = config.library.clone().map(|source| tokio::spawn(library::run(ctx.clone(), source)));
    let webhook = config
        .webhook
        .clone()
        .map(|settings| tokio::spawn(webhook::server::run(ctx.clone(), settings, shutdown_rx.clone())));

    // Leadership changes: forget what was published (the other replica wrote since) and
    // reconcile everything.
    let watch_ctx = ctx.clone();
    let mut leader_updates = leader_rx.clone();
    let (p_store, d_store) = (policy_store.clone(), ctx.datasource_store.get().cloned());
    let a_store = ctx.actions.requests.get().cloned();
    let leadership = tokio::spawn(async move {
        while leader_updates.changed().await.is_ok() {
            let leads = *leader_updates.borrow();
            watch_ctx.metrics.leader.set(i64::from(leads));
            if leads {
                for name in watch_ctx.loaded_policies() {
                    watch_ctx.policy_state(&name, policy::PolicyState::forget_published);
                }
                for p in p_store.state() {
                    let _ = policy_trigger_tx.send(ObjectRef::from_obj(&*p));
                }
                for d in d_store.iter().flat_map(|s| s.state()) {
                    let _ = ds_trigger_tx.send(ObjectRef::from_obj(&*d));
                }
                watch_ctx.actions.forget_written();
                watch_ctx.actions.resync.notify_one();
                for a in a_store.iter().flat_map(|s| s.state()) {
                    let _ = ar_trigger_tx.send(ObjectRef::from_obj(&*a));
                }
            }
        }
    });

    // Reports that are off are probed; when they are back, every policy is published again
    // (its reports read back from the API first).
    let probe_ctx = ctx.clone();
    let (probe_store, probe_tx) = (policy_store.clone(), reports_back_tx);
    let probe = tokio::spawn(async move {
        loop {
            tokio::time::sleep(outputs::PROBE_INTERVAL).await;
            if !probe_ctx.is_leader() || probe_ctx.outputs.outage(outputs::Output::Reports).is_none() {
                continue;
            }
            match reports::probe(&probe_ctx.client).await {
                Ok(()) => {
                    probe_ctx.outputs.on(outputs::Output::Reports);
                    for name in probe_ctx.loaded_policies() {
                        probe_ctx.policy_state(&name, policy::PolicyState::forget_published);
                    }
                    for p in probe_store.state() {
                        let _ = probe_tx.send(ObjectRef::from_obj(&*p));
                    }
                }
                Err(e) => {
                    if let Some(outage) = outputs::Outage::of(outputs::Output::Reports, &e) {
                        probe_ctx.outputs.off(outputs::Output::Reports, outage);
                    }
                }
            }
        }
    });

    // Readiness follows the datasources' first sync.
    let ready_ctx = ctx.clone();
    let readiness = tokio::spawn(async move {
        loop {
            ready_ctx.metrics.set_ready(ready_ctx.datasources_synced());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    let shutdown = {
        let tx = shutdown_tx.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            let _ = tx.send(true);
        }
    };
    tokio::spawn(shutdown);
    let stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };

    let ds_run = ds_controller
        .reconcile_on(receiver_stream(ds_trigger_rx))
        .graceful_shutdown_on(stop(shutdown_rx.clone()))
        .run(datasource::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let policy_run = policy_controller
        .graceful_shutdown_on(stop(shutdown_rx.clone()))
        .run(policy::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let ar_run = ar_controller
        .reconcile_on(receiver_stream(ar_trigger_rx))
        .graceful_shutdown_on(stop(shutdown_rx.clone()))
        .run(action_request::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    tokio::join!(ds_run, policy_run, ar_run);

    reactor.abort();
    if let Some(w) = webhook {
        w.abort();
    }
    if let Some(l) = library_sync {
        l.abort();
    }
    readiness.abort();
    probe.abort();
    leadership.abort();
    if let Some(e) = election {
        // The election loop releases the lease when it sees the shutdown.
        let _ = tokio::time::timeout(Duration::from_secs(5), e).await;
    }
    let _ = http.await;
    tracing::info!("stopped");
    Ok(())
}

/// The REST API ([`crate::api`], over [`crate::api::operator::OperatorBackend`], callers
/// authenticated by the API server) beside `/metrics`, `/healthz` and `/readyz`. Pushes to
/// `push` datasources (`PUT .../tables/{t}/rows`, `POST .../tables`) are answered by
/// [`push`] with its own authentication (the Datasource's token), a caller with admin access
/// to the API let in too.
fn api_routes(ctx: &Arc<Context>, settings: &ApiSettings) -> axum::Router {
    use congress_drivers::api_auth::{Authenticator, KubernetesAuth, KubernetesAuthConfig};
    let auth: Arc<dyn Authenticator> =
        Arc::new(KubernetesAuth::new(ctx.client.clone(), KubernetesAuthConfig::default()));
    let backend = Arc::new(crate::api::operator::OperatorBackend::new(ctx.clone()));
    let api =
        Arc::new(crate::api::Api::new(backend, auth.clone(), crate::api::ui::Assets { dir: settings.ui_dir.clone() }));
    let (push_ctx, shown) = (ctx.clone(), api.clone());
    crate::api::router(api, settings.max_body).merge(metrics::health_router(ctx.metrics.clone())).layer(
        axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
            let (ctx, auth, api) = (push_ctx.clone(), auth.clone(), shown.clone());
            async move {
                use axum::response::IntoResponse;
                if request.method() == axum::http::Method::GET && request.uri().path() == "/metrics" {
                    return metrics::encode_with(&ctx.metrics, &api.encode_metrics()).into_response();
                }
                match push::PushTarget::of(request.method(), request.uri().path()) {
                    Some(target) => {
                        let (parts, body) = request.into_parts();
                        push::serve(ctx, auth, target, parts.headers, body).await
                    }
                    None => next.run(request).await,
                }
            }
        }),
    )
}

fn receiver_stream<T: Send + 'static>(rx: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failure_up_to_the_cap_and_resets_on_success() {
        assert_eq!(Backoff::delay(1), Backoff::BASE);
        assert_eq!(Backoff::delay(2), Backoff::BASE * 2);
        assert_eq!(Backoff::delay(4), Backoff::BASE * 8);
        assert_eq!(Backoff::delay(40), Backoff::CAP);
        assert_eq!(Backoff::delay(u32::MAX), Backoff::CAP);
        let b = Backoff::default();
        let first = b.failed("Policy", "p");
        let second = b.failed("Policy", "p");
        assert!(first >= Backoff::BASE && first <= Backoff::BASE.mul_f64(1.1), "{first:?}");
        assert!(second >= Backoff::BASE * 2 && second <= (Backoff::BASE * 2).mul_f64(1.1), "{second:?}");
        // Another object has its own count.
        assert!(b.failed("Policy", "q") <= Backoff::BASE.mul_f64(1.1));
        b.succeeded("Policy", "p");
        assert!(b.failed("Policy", "p") <= Backoff::BASE.mul_f64(1.1));
        for _ in 0..50 {
            b.failed("Datasource", "d");
        }
        assert!(b.failed("Datasource", "d") <= Backoff::CAP.mul_f64(1.1));
    }

    #[test]
    fn conditions_keep_their_transition_time_while_status_holds() {
        let mut old = PolicyStatus::default();
        let c = condition(&old, "Ready", "True", "R", "m", Some(1));
        let mut kept = c.clone();
        kept.last_transition_time = Some("2020-01-01T00:00:00Z".into());
        old.conditions = vec![kept];
        let again = condition(&old, "Ready", "True", "Other", "m2", Some(2));
        assert_eq!(again.last_transition_time.as_deref(), Some("2020-01-01T00:00:00Z"));
        let flipped = condition(&old, "Ready", "False", "R", "m", Some(2));
        assert_ne!(flipped.last_transition_time.as_deref(), Some("2020-01-01T00:00:00Z"));
        assert!(condition(&old, "Ready", "False", "R", &"x".repeat(10_000), None).message.len() <= 4000);
    }
}
