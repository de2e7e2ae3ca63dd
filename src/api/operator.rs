//! The operator's backend of the API: a view of the cluster. Policies, library policies,
//! data sources and ActionRequests are the cluster's objects (`Policy`, `LibraryPolicy`,
//! `Datasource`, `ActionRequest`): a write through the API is a write of an object, which the
//! reconcilers then act on exactly as on one applied with kubectl, and an object applied with
//! kubectl shows in the API at once (reads list the API server). Rows and tables are read
//! from this replica's engine (warm on every replica, leader or not).
//!
//! - A policy is validated before its object is written, as the reconciler will load it (on
//!   a scratch copy of the engine without rows: all or nothing, each problem with its rule
//!   and `line:col`); the call then waits (up to [`LOAD_WAIT`]) until the reconciler has
//!   loaded that version, so rows can be read right after.
//! - A data source's secret settings go into a Secret (`congress-ds-<name>` in the
//!   operator's namespace, listing the data source in `congress.dev/datasources`), named by
//!   `spec.credentialsSecretRef`: never into the object.
//! - `execute` is an approved ActionRequest made by hand, waited for up to
//!   [`ACTION_WAIT`]; approving and denying patch `spec.approved` / `spec.denied`.
//! - The history of violations is the leader's, kept in ConfigMaps
//!   ([`crate::controllers::history`]).

use super::backend::{
    ActionView, Backend, DatasourceEntry, HistoryFilter, HistoryRecord, PolicyEntry, Reply, SourceState,
};
use super::convert;
use super::error::ApiError;
use crate::controllers::datasource::{REFRESH_ANNOTATION, SECRET_USERS_ANNOTATION};
use crate::controllers::engine::EngineHandle;
use crate::controllers::{Context, history, kube_reason, push, resource_name};
use axum::http::StatusCode;
use congress_engine::PolicyKind;
use congress_model::engine_name;
use congress_model::loader::{self, Staged};
use congress_model::resources::library_policy::{ARCHIVE_OF_LABEL, archive_name};
use congress_model::resources::{
    ActionArgs, ActionRequest, ActionRequestSpec, Datasource, LibraryPolicy, LibraryPolicySpec, Policy, PushSource,
    SecretRef,
};
use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// How long a write waits for the reconciler to have acted on it (a policy loaded, a data
/// source's tables created, an object gone).
pub const LOAD_WAIT: Duration = Duration::from_secs(10);
/// How long `execute` (and an approval) waits for the ActionRequest to finish.
pub const ACTION_WAIT: Duration = Duration::from_secs(30);
/// The data source annotation listing the names of its secret settings (never their values).
pub const SECRET_KEYS_ANNOTATION: &str = "congress.dev/secret-keys";
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

/// Why a call to the API server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{what}: {}", kube_reason(.source))]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> ApiError {
        let ClusterError::Kube { what, source } = &e;
        match source {
            kube::Error::Api(s) if s.code == 404 => ApiError::not_found(e.to_string()),
            kube::Error::Api(s) if s.code == 409 => {
                ApiError::conflict("conflict", format!("{what}: {} (retry)", s.message))
            }
            kube::Error::Api(s) if s.code == 400 || s.code == 422 => {
                ApiError::bad_request(format!("{what}: {}", s.message))
            }
            _ => {
                tracing::warn!(error = %e, "API server call failed");
                ApiError::unavailable(e.to_string())
            }
        }
    }
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ApiError {
    let what = what.into();
    move |source| ClusterError::Kube { what, source }.into()
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The operator's backend.
pub struct OperatorBackend {
    ctx: Arc<Context>,
}

impl OperatorBackend {
    pub fn new(ctx: Arc<Context>) -> OperatorBackend {
        OperatorBackend { ctx }
    }

    fn policies_api(&self) -> Api<Policy> {
        Api::all(self.ctx.client.clone())
    }

    fn library_api(&self) -> Api<LibraryPolicy> {
        Api::all(self.ctx.client.clone())
    }

    fn datasources_api(&self) -> Api<Datasource> {
        Api::all(self.ctx.client.clone())
    }

    fn requests_api(&self) -> Api<ActionRequest> {
        Api::all(self.ctx.client.clone())
    }

    fn secrets_api(&self) -> Api<Secret> {
        Api::namespaced(self.ctx.client.clone(), &self.ctx.namespace)
    }

    /// The library policy `p` runs (the version `libraryRef.version` names), if it names one.
    async fn library_of(&self, p: &Policy) -> Result<Option<(String, LibraryPolicySpec)>, ApiError> {
        let Some(r) = &p.spec.library_ref else { return Ok(None) };
        let api = self.library_api();
        let current = api
            .get_opt(&r.name)
            .await
            .map_err(kube_err(format!("LibraryPolicy {}", r.name)))?
            .ok_or_else(|| ApiError::not_found(format!("library policy {} does not exist", r.name)))?;
        let spec = match &r.version {
            Some(v) if v != current.spec.version() => {
                let archived = api
                    .get_opt(&archive_name(&r.name, v))
                    .await
                    .map_err(kube_err(format!("LibraryPolicy {}", r.name)))?
                    .filter(|a| a.spec.version() == v);
                archived.map(|a| a.spec).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "library policy {} is version {}; version {v} is not kept",
                        r.name,
                        current.spec.version()
                    ))
                })?
            }
            _ => current.spec,
        };
        Ok(Some((r.name.clone(), spec)))
    }

    /// Check that `p` loads, as the reconciler will load it, on a scratch copy of the engine
    /// (`replace`: it replaces the version loaded). The digest of what it loads.
    async fn validate(&self, p: &Policy, replace: bool) -> Result<String, ApiError> {
        let name = p.name_any();
        let library = self.library_of(p).await?;
        let src = loader::statements_from_spec(&p.spec, library.as_ref().map(|(n, s)| (n.as_str(), s)))
            .map_err(|e| ApiError::bad_request(format!("policy {name}: {e}")))?;
        let digest = src.digest();
        let engine = engine_name(&name);
        let (kind, statements) = (src.kind, src.statements);
        let outcome = self
            .ctx
            .engine
            .run(move |e| {
                let exists = e.policy_kind(&engine).is_some();
                if exists && !replace {
                    return Err(None);
                }
                let mut scratch = e.without_rows();
                let mut txn = scratch.transaction();
                loader::stage(&mut txn, &engine, kind, &statements, exists);
                match txn.commit() {
                    Ok(_) => Ok(()),
                    Err(first) => {
                        let staged = [Staged { policy: &engine, kind, statements: &statements }];
                        Err(Some(loader::diagnose(e.without_rows(), &staged, &first)))
                    }
                }
            })
            .await?;
        match outcome {
            Ok(()) => Ok(digest),
            Err(None) => Err(ApiError::conflict("policy_exists", format!("Policy with name {name} already exists"))),
            Err(Some(problems)) => Err(convert::rule_error(&name, &problems)),
        }
    }

    /// Wait (up to [`LOAD_WAIT`]) until this replica's reconciler has loaded the version of
    /// `name` whose digest is `digest`; the reason it did not, if it did not.
    async fn wait_loaded(&self, name: &str, digest: &str) -> Option<String> {
        let started = Instant::now();
        loop {
            let (loaded, failure) = self
                .ctx
                .policy_state(name, |s| (s.loaded_digest() == Some(digest), s.failure().map(|f| f.message.clone())));
            if loaded {
                return None;
            }
            if started.elapsed() > LOAD_WAIT {
                let why = failure.unwrap_or_else(|| "the operator has not loaded it yet".into());
                tracing::warn!(policy = %name, reason = %why, "policy written, not loaded within the wait");
                return Some(why);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Wait (up to [`LOAD_WAIT`]) until `done` says so.
    async fn wait_for<F, Fut>(&self, mut done: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while started.elapsed() < LOAD_WAIT {
            if done().await {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        false
    }

    async fn get_request(&self, id: &str) -> Result<ActionRequest, ApiError> {
        self.requests_api()
            .get_opt(id)
            .await
            .map_err(kube_err(format!("ActionRequest {id}")))?
            .ok_or_else(|| ApiError::not_found(format!("no ActionRequest {id}")))
    }

    /// Wait (up to `limit`) until ActionRequest `id` is `done`; its last view.
    async fn wait_request(
        &self,
        id: &str,
        limit: Duration,
        done: impl Fn(&ActionView) -> bool,
    ) -> Result<ActionView, ApiError> {
        let started = Instant::now();
        loop {
            let view = action_view(&self.get_request(id).await?);
            if done(&view) || started.elapsed() > limit {
                return Ok(view);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Why a Policy is not loaded, from its status: `Accepted=False` (its latest version was
/// refused) or `Ready=False` (nothing loaded).
pub fn problem_of(p: &Policy) -> Option<String> {
    let conditions = p.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let failed = |t: &str| conditions.iter().find(|c| c.type_ == t && c.status == "False");
    failed("Accepted").or_else(|| failed("Ready")).map(|c| format!("{}: {}", c.reason, c.message))
}

/// A data source's state, from its status.
pub fn source_entry(d: Datasource, updates: u64) -> DatasourceEntry {
    let status = d.status.clone().unwrap_or_default();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let state = SourceState {
        synced: ready.is_some_and(|c| c.status == "True"),
        last_updated: status.last_sync_time.clone(),
        last_error: status
            .last_error
            .clone()
            .or_else(|| ready.filter(|c| c.status == "False" && c.reason != "Syncing").map(|c| c.message.clone())),
        number_of_updates: updates,
        rows: status.tables.iter().map(|t| t.rows as usize).sum(),
    };
    let secret_keys = d
        .annotations()
        .get(SECRET_KEYS_ANNOTATION)
        .map(|k| k.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    DatasourceEntry { datasource: d, state, secret_keys }
}

/// An ActionRequest as the API shows it (its id is the object's name).
pub fn action_view(a: &ActionRequest) -> ActionView {
    let status = a.status.clone().unwrap_or_default();
    let phase = match status.phase {
        Some(p) => p.as_str().to_string(),
        None if a.spec.approved => "Approved".into(),
        None => "Pending".into(),
    };
    let waiting = status.conditions.iter().find(|c| c.type_ == "Succeeded" && c.status == "Unknown");
    ActionView {
        id: a.name_any(),
        name: a.spec.name.clone(),
        args: a.spec.args.clone(),
        policy: a.spec.policy.clone(),
        phase,
        approved: a.spec.approved,
        created: a.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
        message: status.last_error.or(status.result).or_else(|| waiting.map(|c| c.message.clone())),
    }
}

fn finished(phase: &str) -> bool {
    matches!(phase, "Succeeded" | "Failed" | "Denied")
}

/// The Secret holding the secret settings of data source `name` made through the API.
pub fn secret_name(name: &str) -> String {
    format!("congress-ds-{name}")
}

impl Backend for OperatorBackend {
    fn engine(&self) -> &EngineHandle {
        &self.ctx.engine
    }

    fn policies(&self) -> Reply<'_, Vec<PolicyEntry>> {
        async move {
            let list = self.policies_api().list(&ListParams::default()).await.map_err(kube_err("listing Policies"))?;
            Ok(list
                .items
                .into_iter()
                .filter(|p| p.meta().deletion_timestamp.is_none())
                .map(|p| PolicyEntry { problem: problem_of(&p), policy: p })
                .collect())
        }
        .instrument(tracing::debug_span!("backend", call = "policies"))
        .boxed()
    }

    fn create_policy(&self, mut policy: Policy) -> Reply<'_, PolicyEntry> {
        async move {
            let name = policy.name_any();
            if self.policies_api().get_opt(&name).await.map_err(kube_err(format!("Policy {name}")))?.is_some() {
                return Err(ApiError::conflict("policy_exists", format!("Policy with name {name} already exists")));
            }
            let digest = self.validate(&policy, false).await?;
            policy.metadata.uid = None;
            policy.metadata.resource_version = None;
            policy.metadata.creation_timestamp = None;
            policy.status = None;
            let created = match self.policies_api().create(&PostParams::default(), &policy).await {
                Ok(p) => p,
                Err(e) if is_code(&e, 409) => {
                    return Err(ApiError::conflict("policy_exists", format!("Policy with name {name} already exists")));
                }
                Err(e) => return Err(kube_err(format!("creating Policy {name}"))(e)),
            };
            tracing::info!(policy = %name, "policy created through the API");
            let problem = self.wait_loaded(&name, &digest).await;
            Ok(PolicyEntry { policy: created, problem })
        }
        .instrument(tracing::debug_span!("backend", call = "create_policy"))
        .boxed()
    }

    fn update_policy(&self, policy: Policy) -> Reply<'_, PolicyEntry> {
        async move {
            let name = policy.name_any();
            let digest = self.validate(&policy, true).await?;
            // Replaced onto the version read (its resourceVersion): a change made meanwhile
            // by another hand is a 409, not lost.
            let replaced = match self.policies_api().replace(&name, &PostParams::default(), &policy).await {
                Ok(p) => p,
                Err(e) if is_code(&e, 404) => return Err(ApiError::no_policy(&name)),
                Err(e) => return Err(kube_err(format!("replacing Policy {name}"))(e)),
            };
            tracing::info!(policy = %name, "policy replaced through the API");
            let problem = self.wait_loaded(&name, &digest).await;
            Ok(PolicyEntry { policy: replaced, problem })
        }
        .instrument(tracing::debug_span!("backend", call = "update_policy"))
        .boxed()
    }

    fn delete_policy<'a>(&'a self, name: &'a str) -> Reply<'a, Policy> {
        async move {
            let api = self.policies_api();
            let policy = api
                .get_opt(name)
                .await
                .map_err(kube_err(format!("Policy {name}")))?
                .ok_or_else(|| ApiError::no_policy(name))?;
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_code(&e, 404) => return Err(ApiError::no_policy(name)),
                Err(e) => return Err(kube_err(format!("deleting Policy {name}"))(e)),
            }
            tracing::info!(policy = %name, "policy deleted through the API");
            // Its finalizer lets the reconciler unload it; wait for that, so that the name
            // can be used again at once.
            let gone = self.wait_for(|| async { matches!(api.get_opt(name).await, Ok(None)) }).await;
            if !gone {
                tracing::warn!(policy = %name, "policy deleted, still there after the wait");
            }
            Ok(policy)
        }
        .instrument(tracing::debug_span!("backend", call = "delete_policy"))
        .boxed()
    }

    fn library(&self) -> Reply<'_, Vec<LibraryPolicy>> {
        async move {
            let list =
                self.library_api().list(&ListParams::default()).await.map_err(kube_err("listing LibraryPolicies"))?;
            // Archived versions (`NAME.vVERSION`) are versions of NAME, not policies.
            Ok(list
                .items
                .into_iter()
                .filter(|l| !l.labels().contains_key(ARCHIVE_OF_LABEL) && l.meta().deletion_timestamp.is_none())
                .collect())
        }
        .instrument(tracing::debug_span!("backend", call = "library"))
        .boxed()
    }

    fn put_library(&self, policy: LibraryPolicy, create: bool) -> Reply<'_, LibraryPolicy> {
        async move {
            let name = policy.name_any();
            loader::library_statements(&policy.spec).map_err(ApiError::bad_request)?;
            let api = self.library_api();
            if create {
                let mut l = policy;
                l.metadata.uid = None;
                l.metadata.resource_version = None;
                return match api.create(&PostParams::default(), &l).await {
                    Ok(l) => Ok(l),
                    Err(e) if is_code(&e, 409) => Err(ApiError::conflict(
                        "library_policy_exists",
                        format!("library policy {name} already exists"),
                    )),
                    Err(e) => Err(kube_err(format!("creating LibraryPolicy {name}"))(e)),
                };
            }
            let mut existing = api
                .get_opt(&name)
                .await
                .map_err(kube_err(format!("LibraryPolicy {name}")))?
                .ok_or_else(|| ApiError::not_found(format!("library policy {name} does not exist")))?;
            existing.spec = policy.spec;
            api.replace(&name, &PostParams::default(), &existing)
                .await
                .map_err(kube_err(format!("replacing LibraryPolicy {name}")))
        }
        .instrument(tracing::debug_span!("backend", call = "put_library"))
        .boxed()
    }

    fn delete_library<'a>(&'a self, name: &'a str) -> Reply<'a, LibraryPolicy> {
        async move {
            let api = self.library_api();
            let l = api
                .get_opt(name)
                .await
                .map_err(kube_err(format!("LibraryPolicy {name}")))?
                .ok_or_else(|| ApiError::not_found(format!("library policy {name} does not exist")))?;
            api.delete(name, &DeleteParams::default())
                .await
                .map_err(kube_err(format!("deleting LibraryPolicy {name}")))?;
            Ok(l)
        }
        .instrument(tracing::debug_span!("backend", call = "delete_library"))
        .boxed()
    }

    fn datasources(&self) -> Reply<'_, Vec<DatasourceEntry>> {
        async move {
            let list =
                self.datasources_api().list(&ListParams::default()).await.map_err(kube_err("listing Datasources"))?;
            Ok(list
                .items
                .into_iter()
                .filter(|d| d.meta().deletion_timestamp.is_none())
                .map(|d| {
                    let updates = push::endpoint(&self.ctx, &d.name_any()).map_or(0, |e| e.status.borrow().polls);
                    source_entry(d, updates)
                })
                .collect())
        }
        .instrument(tracing::debug_span!("backend", call = "datasources"))
        .boxed()
    }

    fn create_datasource(&self, mut datasource: Datasource) -> Reply<'_, DatasourceEntry> {
        async move {
            let name = datasource.name_any();
            let secrets: BTreeMap<String, String> = datasource
                .annotations_mut()
                .remove(super::v1::SECRETS_IN_TRANSIT)
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            if datasource.spec.schema().is_empty() {
                return Err(ApiError::bad_request(format!(
                    "data source {name}: driver `{}` has no tables (give `tables` for a `push` data source)",
                    datasource.spec.driver
                )));
            }
            // A `push` data source made through the API takes pushes from API callers (a
            // Kubernetes token with admin access), not from a shared bearer token.
            if datasource.spec.driver == "push" && datasource.spec.push.is_none() {
                datasource.spec.push =
                    Some(PushSource { auth: Some("serviceAccount".into()), ..PushSource::default() });
            }
            let api = self.datasources_api();
            if api.get_opt(&name).await.map_err(kube_err(format!("Datasource {name}")))?.is_some() {
                return Err(ApiError::conflict("datasource_exists", format!("data source {name} already exists")));
            }
            // The secret settings first, so the driver finds them when it starts.
            let secret = secret_name(&name);
            if !secrets.is_empty() {
                let keys: Vec<&str> = secrets.keys().map(String::as_str).collect();
                datasource.annotations_mut().insert(SECRET_KEYS_ANNOTATION.into(), keys.join(","));
                datasource.spec.credentials_secret_ref =
                    Some(SecretRef { name: secret.clone(), namespace: Some(self.ctx.namespace.clone()) });
                let s: Secret = serde_json::from_value(json!({
                    "metadata": {
                        "name": secret,
                        "namespace": self.ctx.namespace,
                        "labels": {"app.kubernetes.io/managed-by": "congress"},
                        "annotations": {SECRET_USERS_ANNOTATION: name},
                    },
                    "stringData": secrets,
                }))
                .map_err(|e| ApiError::internal("internal", format!("cannot build the Secret: {e}")))?;
                let secrets_api = self.secrets_api();
                match secrets_api.create(&PostParams::default(), &s).await {
                    Ok(_) => {}
                    Err(e) if is_code(&e, 409) => {
                        secrets_api
                            .replace(&secret, &PostParams::default(), &s)
                            .await
                            .map_err(kube_err(format!("replacing Secret {secret}")))?;
                    }
                    Err(e) => return Err(kube_err(format!("creating Secret {secret}"))(e)),
                }
            }
            datasource.metadata.uid = None;
            datasource.metadata.resource_version = None;
            let created = match api.create(&PostParams::default(), &datasource).await {
                Ok(d) => d,
                Err(e) => {
                    if !secrets.is_empty() {
                        let _ = self.secrets_api().delete(&secret, &DeleteParams::default()).await;
                    }
                    if is_code(&e, 409) {
                        return Err(ApiError::conflict("datasource_exists", format!("data source {name} already exists")));
                    }
                    return Err(kube_err(format!("creating Datasource {name}"))(e));
                }
            };
            // The Secret goes with the Datasource, however it is deleted.
            if let (false, Some(uid)) = (secrets.is_empty(), created.meta().uid.clone()) {
                let patch = json!({"metadata": {"ownerReferences": [{
                    "apiVersion": congress_model::resources::API_VERSION, "kind": "Datasource", "name": name, "uid": uid,
                }]}});
                if let Err(e) = self.secrets_api().patch(&secret, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    tracing::warn!(datasource = %name, error = %kube_reason(&e), "the Secret has no owner");
                }
            }
            tracing::info!(datasource = %name, driver = %created.spec.driver, "data source created through the API");
            // Its tables exist (and a push one takes rows) once the reconciler has run.
            let engine = engine_name(&name);
            let push = created.spec.driver == "push";
            let ready = self
                .wait_for(|| {
                    let engine = engine.clone();
                    let name = name.clone();
                    async move {
                        let tables = self.ctx.engine.run(move |e| e.policy_kind(&engine) == Some(PolicyKind::Datasource));
                        tables.await.unwrap_or(false) && (!push || push::endpoint(&self.ctx, &name).is_some())
                    }
                })
                .await;
            if !ready {
                tracing::warn!(datasource = %name, "data source created, its tables not there after the wait");
            }
            Ok(source_entry(created, 0))
        }
        .instrument(tracing::debug_span!("backend", call = "create_datasource"))
        .boxed()
    }

    fn delete_datasource<'a>(&'a self, name: &'a str) -> Reply<'a, Datasource> {
        async move {
            let api = self.datasources_api();
            let d = api
                .get_opt(name)
                .await
                .map_err(kube_err(format!("Datasource {name}")))?
                .ok_or_else(|| ApiError::not_found(format!("data source {name} does not exist")))?;
            api.delete(name, &DeleteParams::default())
                .await
                .map_err(kube_err(format!("deleting Datasource {name}")))?;
            // Its Secret, when the API made it.
            let secret = secret_name(name);
            if d.spec.credentials_secret_ref.as_ref().is_some_and(|r| r.name == secret) {
                match self.secrets_api().delete(&secret, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_code(&e, 404) => {}
                    Err(e) => {
                        tracing::warn!(datasource = %name, error = %kube_reason(&e), "its Secret was not deleted")
                    }
                }
            }
            tracing::info!(datasource = %name, "data source deleted through the API");
            let gone = self.wait_for(|| async { matches!(api.get_opt(name).await, Ok(None)) }).await;
            if !gone {
                tracing::warn!(datasource = %name, "data source deleted, still there after the wait");
            }
            Ok(d)
        }
        .instrument(tracing::debug_span!("backend", call = "delete_datasource"))
        .boxed()
    }

    fn replace_rows<'a>(&'a self, datasource: &'a str, table: &'a str, rows: Vec<Vec<Value>>) -> Reply<'a, ()> {
        async move {
            push::replace_rows(&self.ctx, datasource, table, &rows).await.map(|_| ()).map_err(|r| {
                let reason = if r.status == StatusCode::NOT_FOUND { "not_found" } else { "push_refused" };
                ApiError::new(r.status, 1000, reason, r.message)
            })
        }
        .instrument(tracing::debug_span!("backend", call = "replace_rows"))
        .boxed()
    }

    fn refresh<'a>(&'a self, datasource: &'a str) -> Reply<'a, ()> {
        async move {
            let api = self.datasources_api();
            let d = api
                .get_opt(datasource)
                .await
                .map_err(kube_err(format!("Datasource {datasource}")))?
                .ok_or_else(|| ApiError::not_found(format!("data source {datasource} does not exist")))?;
            if matches!(d.spec.driver.as_str(), "push" | "kubernetes") {
                return Err(ApiError::bad_request(format!(
                    "data source {datasource} is not polled (driver `{}`): nothing to refresh",
                    d.spec.driver
                )));
            }
            let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: uuid::Uuid::new_v4().to_string()}}});
            api.patch(datasource, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube_err(format!("Datasource {datasource}")))?;
            Ok(())
        }
        .instrument(tracing::debug_span!("backend", call = "refresh"))
        .boxed()
    }

    fn execute<'a>(&'a self, name: &'a str, args: ActionArgs, policy: Option<&'a str>) -> Reply<'a, ActionView> {
        async move {
            if !self.ctx.actions.enabled {
                return Err(ApiError::unavailable(
                    "the operator runs with actions disabled (the kill switch): nothing is run",
                ));
            }
            let Some((service, action)) = name.split_once(':').filter(|(s, a)| !s.is_empty() && !a.is_empty()) else {
                return Err(ApiError::bad_request(format!(
                    "action `{name}`: name it `service:action`, e.g. nova:servers.pause"
                )));
            };
            let mut request = ActionRequest::new(
                "",
                ActionRequestSpec {
                    name: format!("{}:{action}", resource_name(service)),
                    args,
                    approved: true,
                    policy: policy.map(resource_name),
                    ..ActionRequestSpec::default()
                },
            );
            request.metadata.name = None;
            request.metadata.generate_name = Some("api-execute-".into());
            request.metadata.labels =
                Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), "congress".to_string())]));
            let created = self
                .requests_api()
                .create(&PostParams::default(), &request)
                .await
                .map_err(kube_err(format!("creating an ActionRequest for {name}")))?;
            let id = created.name_any();
            tracing::info!(request = %id, action = %name, "action asked for through the API");
            let view = self.wait_request(&id, ACTION_WAIT, |v| finished(&v.phase)).await?;
            if view.phase == "Failed" {
                return Err(ApiError::internal("execute_error", view.message.clone().unwrap_or_default())
                    .with_data(json!(view)));
            }
            Ok(view)
        }
        .instrument(tracing::debug_span!("backend", call = "execute"))
        .boxed()
    }

    fn action_requests(&self) -> Reply<'_, Vec<ActionView>> {
        async move {
            let list =
                self.requests_api().list(&ListParams::default()).await.map_err(kube_err("listing ActionRequests"))?;
            let mut items = list.items;
            items.sort_by(|a, b| {
                let t = |r: &ActionRequest| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
                t(b).cmp(&t(a)).then_with(|| b.name_any().cmp(&a.name_any()))
            });
            Ok(items.iter().map(action_view).collect())
        }
        .instrument(tracing::debug_span!("backend", call = "action_requests"))
        .boxed()
    }

    fn decide<'a>(&'a self, id: &'a str, approve: bool) -> Reply<'a, ActionView> {
        async move {
            let request = self.get_request(id).await?;
            let view = action_view(&request);
            let verb = if approve { "approved" } else { "denied" };
            if finished(&view.phase) {
                return Err(ApiError::conflict(
                    "action_finished",
                    format!("ActionRequest {id} has finished ({}): it cannot be {verb}", view.phase),
                ));
            }
            if view.phase == "Running" || (approve && request.spec.denied) || (!approve && request.spec.approved) {
                return Err(ApiError::conflict(
                    "action_started",
                    format!("ActionRequest {id} is {} already: it cannot be {verb}", view.phase),
                ));
            }
            let patch = if approve { json!({"spec": {"approved": true}}) } else { json!({"spec": {"denied": true}}) };
            // Only onto the version read: a request that moved on meanwhile is a 409.
            let mut patch = patch;
            patch["metadata"] = json!({"resourceVersion": request.resource_version()});
            self.requests_api()
                .patch(id, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube_err(format!("ActionRequest {id}")))?;
            tracing::info!(request = %id, decision = verb, "ActionRequest decided through the API");
            if !self.ctx.actions.enabled {
                return Ok(action_view(&self.get_request(id).await?));
            }
            if approve {
                self.wait_request(id, ACTION_WAIT, |v| finished(&v.phase)).await
            } else {
                self.wait_request(id, LOAD_WAIT, |v| v.phase == "Denied").await
            }
        }
        .instrument(tracing::debug_span!("backend", call = "decide"))
        .boxed()
    }

    fn history(&self, filter: HistoryFilter) -> Reply<'_, Vec<HistoryRecord>> {
        async move {
            let of = filter.policy.as_deref().map(resource_name);
            let records = history::read(&self.ctx, of.as_deref()).await.map_err(|e| {
                tracing::warn!(error = %e, "history unreadable");
                ApiError::unavailable(e.to_string())
            })?;
            Ok(history::select(records, &filter))
        }
        .instrument(tracing::debug_span!("backend", call = "history"))
        .boxed()
    }

    fn first_seen<'a>(&'a self, policy: &'a str) -> Reply<'a, HashMap<String, String>> {
        async move {
            let name = resource_name(policy);
            // The history's (the leader's, durable), then this replica's when it publishes.
            let records = history::read(&self.ctx, Some(&name)).await.unwrap_or_default();
            let mut seen = history::first_seen(&records);
            if self.ctx.is_leader() && self.ctx.loaded_policies().contains(&name) {
                self.ctx.policy_state(&name, |s| {
                    for (row, at) in s.first_seen() {
                        seen.entry(row.clone()).or_insert_with(|| at.clone());
                    }
                });
            }
            Ok(seen)
        }
        .instrument(tracing::debug_span!("backend", call = "first_seen"))
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use congress_model::resources::{
        ActionRequestStatus, Condition, DatasourceSpec, DatasourceStatus, Phase, PolicyStatus,
    };

    fn cond(t: &str, status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: t.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: None,
            last_transition_time: None,
        }
    }

    #[test]
    fn a_policy_problem_is_its_refused_version_or_nothing_loaded() {
        let mut p = Policy::new("p", Default::default());
        assert_eq!(problem_of(&p), None);
        p.status = Some(PolicyStatus {
            conditions: vec![
                cond("Accepted", "False", "SyntaxError", "r 1:3: bad"),
                cond("Ready", "True", "PreviousVersionActive", "x"),
            ],
            ..Default::default()
        });
        assert_eq!(problem_of(&p).as_deref(), Some("SyntaxError: r 1:3: bad"));
        p.status = Some(PolicyStatus {
            conditions: vec![cond("Accepted", "True", "Loaded", ""), cond("Ready", "True", "Evaluated", "")],
            ..Default::default()
        });
        assert_eq!(problem_of(&p), None);
    }

    #[test]
    fn a_datasource_shows_its_status_and_secret_key_names() {
        let mut d = Datasource::new("nova", DatasourceSpec { driver: "nova".into(), ..Default::default() });
        d.annotations_mut().insert(SECRET_KEYS_ANNOTATION.into(), "password, token".into());
        d.status = Some(DatasourceStatus {
            conditions: vec![cond("Ready", "True", "Synced", "")],
            tables: vec![
                congress_model::resources::TableStatus { name: "a".into(), columns: vec![], rows: 2 },
                congress_model::resources::TableStatus { name: "b".into(), columns: vec![], rows: 3 },
            ],
            last_sync_time: Some("2026-01-01T00:00:00Z".into()),
            ..Default::default()
        });
        let e = source_entry(d, 4);
        assert!(e.state.synced);
        assert_eq!((e.state.rows, e.state.number_of_updates), (5, 4));
        assert_eq!(e.secret_keys, ["password", "token"]);
        assert_eq!(e.state.last_updated.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn action_views_take_the_phase_from_the_status() {
        let spec = ActionRequestSpec { name: "nova:servers.pause".into(), ..Default::default() };
        let mut a = ActionRequest::new("r1", spec);
        assert_eq!(action_view(&a).phase, "Pending");
        a.spec.approved = true;
        assert_eq!(action_view(&a).phase, "Approved");
        a.status = Some(ActionRequestStatus {
            phase: Some(Phase::Denied),
            conditions: vec![cond("Succeeded", "False", "Denied", "denied")],
            ..Default::default()
        });
        let v = action_view(&a);
        assert_eq!((v.id.as_str(), v.phase.as_str()), ("r1", "Denied"));
        assert!(finished(&v.phase));
        a.status = Some(ActionRequestStatus {
            phase: Some(Phase::Failed),
            last_error: Some("UnknownService: no".into()),
            ..Default::default()
        });
        assert_eq!(action_view(&a).message.as_deref(), Some("UnknownService: no"));
    }
}
